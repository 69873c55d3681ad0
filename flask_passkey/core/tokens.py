"""Signed tokens: the key ring (newest key signs, all are published) and the token issuer.

ID and access tokens are RS256 JWTs, the algorithm Auth0's SDKs verify. Keys come from
``PASSKEY_SIGNING_KEYS`` (PEM or JWK) or, when none is configured, from the user store, which
gets a generated key the first time one is needed (not at start: the app starts while its
store is down). The store decides which worker's first key is stored (exactly one, however many
need it at once); every worker then uses the stored ones. Workers re-read stored keys every
``refresh_seconds`` so a rotation reaches every worker's JWKS, and at once when a token names a
key they do not know yet (another worker's newer key).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import ClaimError, ExpiredTokenError, JoseError
from joserfc.jwk import KeySet, RSAKey, import_key

from flask_passkey.core.refreshed import Refreshed
from flask_passkey.errors import ConfigurationError, InvalidToken
from flask_passkey.models import User
from flask_passkey.stores.users import SigningKey, UserStore

ALGORITHM = "RS256"
#: Seconds between two reads of the stored signing keys: the longest a key added by
#: ``flask passkey keys rotate`` (or another worker) takes to sign and be published here.
KEY_REFRESH_SECONDS = 60.0

#: Shortest time between two re-reads of the stored keys caused by tokens naming an unknown
#: ``kid`` (made-up kids must not turn every request into a read of the store).
UNKNOWN_KID_REREAD_SECONDS = 1.0

#: Claims released for each OIDC scope, from the user's identifiers and profile.
SCOPE_CLAIMS: Mapping[str, tuple[str, ...]] = {
    "profile": ("name", "given_name", "family_name", "nickname", "picture", "preferred_username"),
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
}


def generate_signing_key(*, now: float) -> SigningKey:
    """A new 2048-bit RSA key as a private JWK, with a random ``kid``."""
    kid = secrets.token_urlsafe(16)
    key = RSAKey.generate_key(2048, parameters={"kid": kid, "alg": ALGORITHM, "use": "sig"})
    return SigningKey(kid=kid, private_jwk=json.dumps(key.as_dict(private=True)), created_at=now)


def configured_signing_keys(values: Sequence[Any]) -> list[SigningKey]:
    """Keys from config: PEM text or JWK (dict or JSON text); the last one signs."""
    keys: list[SigningKey] = []
    for index, value in enumerate(values):
        try:
            data = (
                json.loads(value)
                if isinstance(value, str) and value.lstrip().startswith("{")
                else value
            )
            key = import_key(data, "RSA")
        except Exception as error:  # joserfc raises a variety of errors for bad key text
            raise ConfigurationError(
                f"PASSKEY_SIGNING_KEYS[{index}] is not an RSA key: {error}"
            ) from error
        if not key.is_private:
            raise ConfigurationError(
                f"PASSKEY_SIGNING_KEYS[{index}] is a public key; a private key is needed."
            )
        kid = key.kid or key.thumbprint()
        jwk = key.as_dict(private=True) | {"kid": kid, "alg": ALGORITHM, "use": "sig"}
        keys.append(SigningKey(kid=kid, private_jwk=json.dumps(jwk), created_at=float(index)))
    return keys


@dataclass(frozen=True)
class _Keys:
    """One reading of the signing keys, and what the ring derives from it once per reading."""

    keys: list[RSAKey]
    kids: frozenset[str]
    key_set: KeySet
    jwks: dict[str, Any]


class KeyRing:
    """The signing keys in use, refreshed from their source at most every ``refresh_seconds``."""

    def __init__(
        self,
        *,
        load: Callable[[], list[SigningKey]],
        clock: Callable[[], float],
        refresh_seconds: float = KEY_REFRESH_SECONDS,
    ) -> None:
        self._load = load
        self._clock = clock
        self._keys = Refreshed(self._read, ttl=refresh_seconds, clock=clock)
        self._reread_at = float("-inf")

    @classmethod
    def from_store(cls, store: UserStore, *, clock: Callable[[], float]) -> KeyRing:
        """Keys persisted in ``store``. Nothing is read before the ring is first used; that read
        generates and persists a first key if there is none. While the store is down, the
        ring's methods raise its BackendUnavailable. Of workers needing the first key at once,
        the store keeps one's; they all use what it then holds."""

        def load() -> list[SigningKey]:
            keys = store.signing_keys()
            if keys:
                return keys
            store.add_first_signing_key(generate_signing_key(now=clock()))
            return store.signing_keys()

        return cls(load=load, clock=clock)

    def _read(self) -> _Keys:
        stored = sorted(self._load(), key=lambda k: k.created_at)
        keys = [import_key(json.loads(k.private_jwk), "RSA") for k in stored]
        return _Keys(
            keys=keys,
            kids=frozenset(str(k.kid) for k in keys),
            key_set=KeySet(list(keys)),
            jwks={"keys": [k.as_dict(private=False) for k in keys]},
        )

    def sign(self, claims: dict[str, Any], *, typ: str) -> str:
        """``claims`` as a compact RS256 JWS signed by the newest key, with the protected header
        ``{"typ": typ, "alg": "RS256", "kid": <that key's kid>}`` (in that order). Raises
        ConfigurationError when there is no key, the store's BackendUnavailable while the keys
        cannot be read."""
        keys = self._keys.get().keys
        if not keys:
            raise ConfigurationError("No signing key is available.")
        key = keys[-1]
        header = {"typ": typ, "alg": ALGORITHM, "kid": key.kid}
        return jwt.encode(header, claims, key, algorithms=[ALGORITHM])

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set of every key, public parts only."""
        return self._keys.get().jwks

    def key_set(self, kid: str | None = None) -> KeySet:
        """Every key, for verifying a token by its ``kid`` (the published ones, nothing else).

        A ``kid`` the ring does not know makes it re-read the stored keys first (another worker
        may have just added that key), at most once per :data:`UNKNOWN_KID_REREAD_SECONDS`.
        """
        keys = self._keys.get()
        if kid is not None and kid not in keys.kids:
            now = self._clock()
            if now - self._reread_at >= UNKNOWN_KID_REREAD_SECONDS:
                self._reread_at = now
                self._keys.invalidate()
                keys = self._keys.get()
        return keys.key_set


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    id_token: str | None
    expires_in: int


class TokenIssuer:
    """Signs ID tokens and JWT access tokens (RFC 9068 shape)."""

    def __init__(
        self,
        *,
        keys: KeyRing,
        clock: Callable[[], float],
        access_token_lifetime: int,
        id_token_lifetime: int,
    ) -> None:
        self.keys = keys
        self._clock = clock
        self._access_token_lifetime = access_token_lifetime
        self._id_token_lifetime = id_token_lifetime

    def issue(
        self,
        *,
        issuer: str,
        user: User,
        client_id: str,
        scope: Sequence[str],
        audience: str,
        organization_id: str | None,
        amr: Sequence[str],
        auth_time: float,
        extra_claims: Mapping[str, Any],
        dpop_jkt: str | None = None,
        organization_name: str | None = None,
    ) -> IssuedTokens:
        """Sign an access token for ``audience`` and, when ``openid`` is in scope, an ID token.

        Both carry ``org_id`` with ``organization_id``, and ``org_name`` with
        ``organization_name``.

        With ``dpop_jkt`` the access token is bound to that DPoP key (``cnf.jkt``, RFC 9449).
        """
        now = int(self._clock())
        common: dict[str, Any] = {"iss": issuer, "sub": user.id, "iat": now}
        if organization_id is not None:
            common["org_id"] = organization_id
        if organization_name is not None:
            common["org_name"] = organization_name
        access_claims = {
            **common,
            "aud": audience,
            "exp": now + self._access_token_lifetime,
            "client_id": client_id,
            "azp": client_id,
            "scope": " ".join(scope),
            "jti": secrets.token_urlsafe(16),
            **extra_claims,
        }
        if dpop_jkt is not None:
            access_claims["cnf"] = {"jkt": dpop_jkt}
        access_token = self.keys.sign(access_claims, typ="at+jwt")
        id_token = None
        if "openid" in scope:
            id_claims = {
                **common,
                "aud": client_id,
                "exp": now + self._id_token_lifetime,
                "auth_time": int(auth_time),
                **({"amr": list(amr)} if amr else {}),
                **profile_claims(user, scope),
                **extra_claims,
            }
            id_token = self.keys.sign(id_claims, typ="JWT")
        return IssuedTokens(access_token, id_token, self._access_token_lifetime)

    def verify_access_token(self, token: str, *, issuer: str, audience: str) -> dict[str, Any]:
        """The claims of ``token`` if it is an access token this issuer signed for ``audience``.

        Checks: a compact JWS signed with RS256 by one of our keys (named by ``kid``), header
        ``typ`` ``at+jwt`` (an ID token is refused), ``iss`` equal to ``issuer``, ``aud``
        naming ``audience``, ``exp`` in the future and ``iat``/``nbf`` not in the future on
        this issuer's clock, ``sub`` and ``client_id`` present. Raises InvalidToken, with a
        description that reveals nothing about the keys, on any failure.
        """
        try:
            decoded = jwt.decode(token, self.keys.key_set(_kid(token)), [ALGORITHM])
        except (JoseError, ValueError, TypeError, KeyError, IndexError):
            raise InvalidToken("The access token is malformed or wrongly signed.") from None
        if decoded.header.get("alg") != ALGORITHM or decoded.header.get("typ") != "at+jwt":
            raise InvalidToken("The token is not an access token.")
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._clock()),
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            sub={"essential": True},
            client_id={"essential": True},
        )
        try:
            registry.validate(decoded.claims)
        except JoseError as error:
            raise InvalidToken(_claim_problem(error)) from None
        return decoded.claims


def _kid(token: str) -> str | None:
    """The ``kid`` in the header of a compact JWS (JoseError or ValueError when malformed)."""
    kid = jws.extract_compact(token.encode()).protected.get("kid")
    return kid if isinstance(kid, str) else None


def _claim_problem(error: JoseError) -> str:
    """A description of why a signed access token's claims are refused."""
    if isinstance(error, ExpiredTokenError):
        return "The access token has expired."
    claim = error.claim if isinstance(error, ClaimError) else None
    if claim == "aud":
        return "The access token is for another audience."
    if claim == "iss":
        return "The access token was issued by another issuer."
    return "The access token's claims are invalid."


def profile_claims(user: User, scope: Sequence[str]) -> dict[str, Any]:
    """The standard OIDC claims the granted ``scope`` releases for ``user``."""
    available: dict[str, Any] = {
        **user.profile,
        "preferred_username": user.username,
        "email": user.email,
        "email_verified": False if user.email else None,
        "phone_number": user.phone_number,
        "phone_number_verified": False if user.phone_number else None,
    }
    claims: dict[str, Any] = {}
    for name in scope:
        for claim in SCOPE_CLAIMS.get(name, ()):
            if available.get(claim) is not None:
                claims[claim] = available[claim]
    return claims
