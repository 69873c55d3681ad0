"""The OAuth token endpoint's grants: passkey (webauthn) and refresh_token. Framework-free."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from .access import userinfo_audience
from .account import MY_ACCOUNT_SCOPES, my_account_audience
from .ceremony import Ceremonies, SignIn
from .errors import AccessDenied, InvalidGrant, UnauthorizedClient
from .models import REFRESH_TOKEN_GRANT, Client, User
from .tokens import IssuedTokens, TokenIssuer
from .users import RefreshGrant, UserStore

SUPPORTED_SCOPES = ("openid", "profile", "email", "phone", "offline_access")
DEFAULT_SCOPE = ("openid", "profile", "email")
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

    @property
    def refresh_binding(self) -> str | None:
        """The DPoP key a refresh token issued now is bound to: a public client's (RFC 9449
        §5; a confidential client's refresh tokens are bound by its authentication)."""
        return None if self.client.is_confidential else self.dpop_jkt


def _same_key(bound: str, proved: str | None) -> bool:
    return proved is not None and hmac.compare_digest(bound.encode(), proved.encode())


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authentication_methods(sign_in: SignIn) -> list[str]:
    """RFC 8176 ``amr`` values: a synced passkey is a software key, a device-bound one a
    hardware key; user verification makes it multi-factor."""
    methods = ["swk" if sign_in.credential.backup_eligible else "hwk"]
    if sign_in.user_verified:
        methods.append("mfa")
    return methods


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
    ) -> None:
        self.ceremonies = ceremonies
        self.users = users
        self.issuer = issuer
        self.clock = clock
        self.refresh_token_lifetime = refresh_token_lifetime
        self.audiences = tuple(audiences)
        self.extra_claims = extra_claims

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
        """Redeem a refresh token once; the answer carries its replacement (rotation)."""
        if REFRESH_TOKEN_GRANT not in request.client.grant_types:
            raise UnauthorizedClient("The client is not allowed the refresh_token grant.")
        grant = self.users.take_refresh_token(hash_token(refresh_token), now=self.clock())
        if grant is None or grant.client_id != request.client.client_id:
            raise InvalidGrant("The refresh token is invalid, expired or already used.")
        if grant.dpop_jkt is not None and not _same_key(grant.dpop_jkt, request.dpop_jkt):
            # Kept for its holder: a request without the key cannot spend it.
            self.users.put_refresh_token(hash_token(refresh_token), grant)
            raise InvalidGrant(
                "The refresh token is bound to a DPoP key: refresh with a DPoP proof of it."
            )
        user = self._grant_user(grant)
        if grant.organization_id is not None and not self.users.is_member(
            organization_id=grant.organization_id, user_id=user.id
        ):
            raise InvalidGrant("The user is no longer a member of the organization.")
        scope = grant.scope
        if request.scope is not None:
            asked = set(request.scope.split())
            if not asked <= set(grant.scope):
                raise InvalidGrant("A refreshed token cannot have a wider scope.")
            kept = {"openid", "offline_access"}
            scope = tuple(s for s in grant.scope if s in asked or s in kept)
        body = self._respond(
            request,
            user=user,
            amr=(),
            grant=replace(
                grant,
                scope=scope,
                audience=grant.audience or self._audience(request),
                dpop_jkt=request.refresh_binding,
            ),
        )
        return TokenResult(
            body, "refresh_succeeded", user.id, user.connection, grant.organization_id
        )

    def _grant_user(self, grant: RefreshGrant) -> User:
        """The grant's user, who must still hold the passkey the grant began with (read with
        its owner in one go where the store can)."""
        if grant.credential_id is not None:
            credential, owner = self.ceremonies.credential_and_user(grant.credential_id)
            if credential is not None and owner is not None and owner.id == grant.user_id:
                return owner
        user = self.users.get_user(grant.user_id)
        if user is None:
            raise InvalidGrant("The refresh token's user no longer exists.")
        if grant.credential_id is not None:
            raise InvalidGrant("The passkey this session was signed in with was removed.")
        return user

    def _respond(
        self, request: TokenRequest, *, user: User, amr: Sequence[str], grant: RefreshGrant
    ) -> dict[str, Any]:
        """Sign the tokens ``grant`` describes; when it includes ``offline_access``, keep it
        under a new refresh token (rotation keeps its first expiry)."""
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
        )
        body: dict[str, Any] = {
            "access_token": tokens.access_token,
            "token_type": "Bearer" if request.dpop_jkt is None else "DPoP",
            "expires_in": tokens.expires_in,
            "scope": " ".join(scope),
        }
        if tokens.id_token is not None:
            body["id_token"] = tokens.id_token
        if "offline_access" in scope:
            token = secrets.token_urlsafe(32)
            self.users.put_refresh_token(hash_token(token), grant)
            body["refresh_token"] = token
        return body

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
