"""The token service behind the OAuth token endpoint's grants, passkey (webauthn) and
refresh_token: turns a verified ceremony or a refresh token into signed tokens. Framework-free.

:mod:`flask_passkey.core.grant_types` describes each grant (its validation steps, which method
here redeems it).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, NoReturn

from flask_passkey.core.audiences import MY_ACCOUNT_SCOPES, my_account_audience, userinfo_audience
from flask_passkey.core.ceremony import Ceremonies, SignIn
from flask_passkey.core.tokens import IssuedTokens, TokenIssuer
from flask_passkey.errors import (
    AccessDenied,
    InvalidGrant,
    InvalidScope,
    RefreshTokenReused,
    UnauthorizedClient,
)
from flask_passkey.models import REFRESH_TOKEN_GRANT, Client, Organization, RefreshTokenPolicy, User
from flask_passkey.stores.users import RefreshGrant, UserStore

SUPPORTED_SCOPES = ("openid", "profile", "email", "phone", "offline_access")
DEFAULT_SCOPE = ("openid", "profile", "email")
#: Auth0's ``error_description`` for every refresh token that cannot be redeemed (unknown,
#: expired, revoked, reused, another client's): Auth0's SDKs recognise a dead token by it.
UNKNOWN_REFRESH_TOKEN = "Unknown or invalid refresh token."
#: Claims a ``passkey_token_claims`` plugin may not replace.
RESERVED_CLAIMS = frozenset(
    {
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "nbf",
        "jti",
        "auth_time",
        "azp",
        "client_id",
        "scope",
        "amr",
        "org_id",
        "org_name",
        "nonce",
        "cnf",
    }
)

ClaimsProvider = Callable[..., Mapping[str, Any]]


@dataclass(frozen=True)
class TokenRequest:
    """The parts of a token request every grant shares, after client authentication."""

    client: Client
    #: ``https://<custom domain>/``: the ``iss`` of every token.
    issuer: str
    scope: str | None
    audience: str | None
    #: The thumbprint of the key of the request's valid DPoP proof, if it sent one: the
    #: access token is bound to it, and so is a public client's refresh token.
    dpop_jkt: str | None = None
    #: The tenant's ``allow_organization_name_in_authentication_api``: tokens with an
    #: organization carry its ``org_name`` too.
    organization_names: bool = False

    @property
    def refresh_binding(self) -> str | None:
        """The DPoP key a refresh token issued now is bound to: a public client's (RFC 9449
        §5; a confidential client's refresh tokens are bound by its authentication)."""
        return None if self.client.is_confidential else self.dpop_jkt


def _same_key(bound: str, proved: str | None) -> bool:
    return proved is not None and hmac.compare_digest(bound.encode(), proved.encode())


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


#: RFC 8176 ``amr`` of a passkey sign-in: "pop", proof of possession of a key, the one thing
#: the server verifies itself (a signature by the registered key over its challenge). With
#: "none" attestation the authenticator's BE and UV flags are its own word, so neither "hwk"
#: / "swk" nor "mfa" is claimed (README, "What the tokens claim").
PASSKEY_AMR = ("pop",)


def authentication_methods(sign_in: SignIn) -> tuple[str, ...]:
    """RFC 8176 ``amr`` of a passkey sign-in: :data:`PASSKEY_AMR`, and "hwk" too for a passkey
    registered with an attestation the policy trusted and whose metadata puts the key in
    hardware (:attr:`Credential.hardware_attested`), never from the authenticator's own
    flags."""
    return (*PASSKEY_AMR, "hwk") if sign_in.credential.hardware_attested else PASSKEY_AMR


@dataclass(frozen=True)
class TokenResult:
    """The token response body, and what the audit event needs to know about it."""

    body: dict[str, Any]
    event: Literal["login_succeeded", "signup_succeeded", "refresh_succeeded"]
    user_id: str
    connection: str
    organization_id: str | None


class Grants:
    """Turns a verified passkey ceremony or a refresh token into tokens."""

    def __init__(
        self,
        *,
        ceremonies: Ceremonies,
        users: UserStore,
        issuer: TokenIssuer,
        clock: Callable[[], float],
        refresh_token_lifetime: int,
        audiences: Sequence[str],
        extra_claims: ClaimsProvider,
        get_organization: Callable[[str], Organization | None],
        refresh_token_idle_lifetime: int | None = None,
        refresh_token_reuse_interval: int = 0,
    ) -> None:
        self.ceremonies = ceremonies
        self.users = users
        self.issuer = issuer
        self.clock = clock
        self.refresh_token_lifetime = refresh_token_lifetime
        self.refresh_token_idle_lifetime = refresh_token_idle_lifetime
        self.refresh_token_reuse_interval = refresh_token_reuse_interval
        self.audiences = tuple(audiences)
        self.extra_claims = extra_claims
        self.get_organization = get_organization

    def webauthn(
        self,
        request: TokenRequest,
        *,
        auth_session: str,
        authn_response: Mapping[str, Any],
        realm: str | None,
        organization: str | None,
    ) -> TokenResult:
        """Redeem ``auth_session`` with the browser's credential: sign-up or login by session."""
        audience = self._audience(request)
        scope = self._scope(
            request.scope,
            request.client,
            my_account=audience == my_account_audience(request.issuer),
        )
        session = self.ceremonies.take_session(
            auth_session,
            client=request.client,
            origin=request.issuer.removesuffix("/"),
            realm=realm,
            organization=organization,
        )
        finish = (
            self.ceremonies.finish_signup
            if session.operation == "signup"
            else self.ceremonies.finish_login
        )
        sign_in = finish(session=session, client=request.client, response=authn_response)
        now = self.clock()
        body = self._respond(
            request,
            user=sign_in.user,
            amr=authentication_methods(sign_in),
            grant=RefreshGrant(
                user_id=sign_in.user.id,
                client_id=request.client.client_id,
                scope=scope,
                audience=audience,
                organization_id=session.organization_id,
                expires_at=now + self.refresh_token_lifetime,
                auth_time=now,
                credential_id=sign_in.credential.id,
                dpop_jkt=request.refresh_binding,
            ),
        )
        event: Literal["login_succeeded", "signup_succeeded"] = (
            "signup_succeeded" if session.operation == "signup" else "login_succeeded"
        )
        return TokenResult(
            body, event, sign_in.user.id, session.connection, session.organization_id
        )

    def refresh(self, request: TokenRequest, *, refresh_token: str) -> TokenResult:
        """Redeem a refresh token; the answer carries its replacement (rotation).

        Everything is checked before the token is spent, so a refused request (another
        client's token, an unknown audience, a wider scope) leaves it usable. Spending is a
        compare-and-set: of concurrent redemptions one wins, and the others, like any later
        replay of a spent token, revoke its whole family (RFC 9700 §4.14.2), unless they come
        within the reuse interval of its first redemption: those are answered like it, with
        a new token of the family. The family keeps the grant of its sign-in (scope, audience,
        absolute expiry) whatever one refresh asks for.
        """
        if REFRESH_TOKEN_GRANT not in request.client.grant_types:
            raise UnauthorizedClient("The client is not allowed the refresh_token grant.")
        token_hash = hash_token(refresh_token)
        now = self.clock()
        grant = self.users.get_refresh_token(token_hash)
        if grant is None or grant.client_id != request.client.client_id or grant.expired(now):
            raise InvalidGrant(UNKNOWN_REFRESH_TOKEN)
        if grant.dpop_jkt is not None and not _same_key(grant.dpop_jkt, request.dpop_jkt):
            # Before reuse detection: without the key, a bound token can neither be redeemed
            # nor be used to revoke its holder's family.
            raise InvalidGrant(
                "The refresh token is bound to a DPoP key: refresh with a DPoP proof of it."
            )
        if grant.used_at is not None and not self._reusable(grant.used_at, now):
            self._revoke_family(grant, reused=True)
        user = self._grant_user(grant)
        if user is None or (
            grant.organization_id is not None
            and not self.users.is_member(organization_id=grant.organization_id, user_id=user.id)
        ):
            # The user, the passkey it signed in with, or its membership is gone: for good,
            # even if a membership comes back.
            self._revoke_family(grant)
        scope, audience = self._refreshed_access(request, grant)
        if grant.used_at is None:
            won = self.users.use_refresh_token(token_hash, now=now)
            # Lost: another request spent it since it was read, a moment ago (so within any
            # reuse interval there is).
            if not won and self.refresh_token_reuse_interval <= 0:
                self._revoke_family(grant, reused=True)
        body = self._respond(
            request,
            user=user,
            amr=(),
            grant=replace(grant, scope=scope, audience=audience),
            family=replace(grant, dpop_jkt=request.refresh_binding),
        )
        return TokenResult(
            body, "refresh_succeeded", user.id, user.connection, grant.organization_id
        )

    def revoke(self, client: Client, *, token: str) -> None:
        """RFC 7009: revoke the family of ``client``'s refresh ``token``. Unknown tokens, and
        tokens of another client (which are left alone), are no error."""
        grant = self.users.get_refresh_token(hash_token(token))
        if grant is not None and grant.client_id == client.client_id:
            self.users.revoke_refresh_token_family(grant.family_id, expires_at=grant.expires_at)

    def _reusable(self, used_at: float, now: float) -> bool:
        """Whether a token spent at ``used_at`` may be redeemed again at ``now``."""
        return self.refresh_token_reuse_interval > 0 and (
            now - used_at <= self.refresh_token_reuse_interval
        )

    def _revoke_family(self, grant: RefreshGrant, *, reused: bool = False) -> NoReturn:
        """Revoke every token of ``grant``'s family and refuse the request: a spent token came
        back (``reused``: the family's tokens may be a thief's as well as the user's), or what
        the family stood for is gone."""
        self.users.revoke_refresh_token_family(grant.family_id, expires_at=grant.expires_at)
        raise (RefreshTokenReused if reused else InvalidGrant)(UNKNOWN_REFRESH_TOKEN)

    def _refreshed_access(
        self, request: TokenRequest, grant: RefreshGrant
    ) -> tuple[tuple[str, ...], str]:
        """The scope and audience of a refreshed access token.

        The family's audience unless the request names another one that one of the client's
        refresh-token policies (MRRT) covers; another audience this tenant knows is ignored,
        as Auth0 does, and an unknown one refused (AccessDenied). For the family's audience, a
        requested scope may narrow the granted one (with the policy's for that audience, if
        any) but not widen it (InvalidScope). For a policy's audience, the scope is ``openid``,
        the sign-in's OpenID scopes and the policy's, cut down to the requested ones.
        """
        audience = grant.audience or f"{request.issuer}userinfo"
        if request.audience is not None and request.audience != audience:
            wanted = self._audience(request)
            policy = _policy_scopes(request.client, wanted, request.issuer)
            if policy is not None:
                oidc = [s for s in grant.scope if s in SUPPORTED_SCOPES]
                scope = ["openid", *oidc, *policy]
                if request.scope is not None:
                    asked = set(request.scope.split()) | {"openid", "offline_access"}
                    scope = [s for s in scope if s in asked]
                return tuple(dict.fromkeys(scope)), wanted
        if request.scope is None:
            return grant.scope, audience
        allowed = [*grant.scope, *(_policy_scopes(request.client, audience, request.issuer) or ())]
        asked = set(request.scope.split())
        if not asked <= set(allowed):
            raise InvalidScope("A refresh cannot ask for a scope the sign-in was not granted.")
        kept = asked | {"openid", "offline_access"}
        return tuple(s for s in dict.fromkeys(allowed) if s in kept), audience

    def _organization_name(self, request: TokenRequest, organization_id: str | None) -> str | None:
        """The ``org_name`` of tokens for ``organization_id``: its current name, when the
        tenant allows names and it has one (a refresh looks it up again)."""
        if organization_id is None or not request.organization_names:
            return None
        organization = self.get_organization(organization_id)
        return organization.name or None if organization is not None else None

    def _grant_user(self, grant: RefreshGrant) -> User | None:
        """The grant's user, if it still exists and holds the passkey the grant began with
        (read with its owner in one go where the store can)."""
        if grant.credential_id is not None:
            credential, owner = self.ceremonies.credential_and_user(grant.credential_id)
            if credential is not None and owner is not None and owner.id == grant.user_id:
                return owner
            return None
        return self.users.get_user(grant.user_id)

    def _respond(
        self,
        request: TokenRequest,
        *,
        user: User,
        amr: Sequence[str],
        grant: RefreshGrant,
        family: RefreshGrant | None = None,
    ) -> dict[str, Any]:
        """Sign the tokens ``grant`` describes; when ``family`` (a refresh: the redeemed
        token's grant), else ``grant``, includes ``offline_access``, keep it under a new
        refresh token of its family."""
        scope, audience, organization_id = grant.scope, grant.audience, grant.organization_id
        assert audience is not None, "both grants settle the audience first"
        extra = {
            key: value
            for key, value in self.extra_claims(
                user=user,
                client=request.client,
                scope=scope,
                audience=audience,
                organization_id=organization_id,
            ).items()
            if key not in RESERVED_CLAIMS
        }
        tokens: IssuedTokens = self.issuer.issue(
            issuer=request.issuer,
            user=user,
            client_id=request.client.client_id,
            scope=scope,
            audience=audience,
            organization_id=organization_id,
            amr=amr,
            auth_time=grant.auth_time,
            extra_claims=extra,
            dpop_jkt=request.dpop_jkt,
            organization_name=self._organization_name(request, organization_id),
        )
        body: dict[str, Any] = {
            "access_token": tokens.access_token,
            "token_type": "Bearer" if request.dpop_jkt is None else "DPoP",
            "expires_in": tokens.expires_in,
            "scope": " ".join(scope),
        }
        if tokens.id_token is not None:
            body["id_token"] = tokens.id_token
        kept = family or grant
        if "offline_access" in kept.scope:
            token = secrets.token_urlsafe(32)
            self.users.put_refresh_token(hash_token(token), self._next_token(kept))
            body["refresh_token"] = token
        return body

    def _next_token(self, grant: RefreshGrant) -> RefreshGrant:
        """A new, unused token of ``grant``'s family: same absolute expiry, inactivity expiry
        from now (never later than the absolute one)."""
        idle = self.refresh_token_idle_lifetime
        return replace(
            grant,
            used_at=None,
            idle_expires_at=(None if idle is None else min(self.clock() + idle, grant.expires_at)),
        )

    def _scope(self, requested: str | None, client: Client, *, my_account: bool) -> tuple[str, ...]:
        """The asked scopes the client may have (others are dropped), always with ``openid``;
        the My Account scopes only when the token is for the My Account audience."""
        asked = requested.split() if requested else list(DEFAULT_SCOPE)
        allowed = set(SUPPORTED_SCOPES)
        if my_account:
            allowed.update(MY_ACCOUNT_SCOPES)
        if REFRESH_TOKEN_GRANT not in client.grant_types:
            allowed.discard("offline_access")
        granted = ["openid", *(s for s in dict.fromkeys(asked) if s in allowed and s != "openid")]
        return tuple(granted)

    def _audience(self, request: TokenRequest) -> str:
        """The requested audience: userinfo by default, the My Account API of the request's
        domain, or a configured API identifier; AccessDenied for anything else."""
        userinfo = userinfo_audience(request.issuer)
        if request.audience is None or request.audience == userinfo:
            return userinfo
        if request.audience == my_account_audience(request.issuer):
            return request.audience
        if request.audience not in self.audiences:
            raise AccessDenied(f"Service not found: {request.audience}")
        return request.audience


def _policy_scopes(client: Client, audience: str, issuer: str) -> tuple[str, ...] | None:
    """The scopes ``client``'s refresh-token policies allow for ``audience`` (None: no policy
    names it). For the My Account API only its own scopes count."""
    policies: list[RefreshTokenPolicy] = [
        p for p in client.refresh_token_policies if p.audience == audience
    ]
    if not policies:
        return None
    scopes = [s for p in policies for s in p.scope]
    if audience == my_account_audience(issuer):
        scopes = [s for s in scopes if s in MY_ACCOUNT_SCOPES]
    return tuple(dict.fromkeys(scopes))
