"""Our access tokens at protected resources (``/userinfo``, the My Account API, the host
app's routes behind ``Passkey.require_token``): Bearer (RFC 6750) or DPoP-bound (RFC 9449).
Framework-free.

:meth:`AccessVerifier.verify` is the one check every resource makes: the ``Authorization``
header names a token this server signed for the resource's audience on the request's domain,
unexpired, whose user still exists; a token bound to a DPoP key (``cnf.jkt``) is only accepted
as ``Authorization: DPoP <token>`` with a proof of that key for this request and this token.
:func:`require_scopes` then checks the scopes the resource needs.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError

from flask_passkey.core.dpop import ALGORITHMS, DPoPVerifier
from flask_passkey.core.tokens import TokenIssuer, profile_claims
from flask_passkey.errors import (
    InsufficientScope,
    InvalidDPoPProof,
    InvalidResourceDPoPProof,
    InvalidToken,
)
from flask_passkey.models import User
from flask_passkey.stores.users import UserStore


@dataclass(frozen=True)
class Presented:
    """What a request to a protected resource shows: its credentials and where it went."""

    #: The ``Authorization`` header, if any.
    authorization: str | None
    #: The ``DPoP`` header (a proof), if any.
    dpop: str | None
    method: str
    #: The URL the request was made to, as clients are told to write it:
    #: ``https://<custom domain><path>`` without the query.
    url: str


@dataclass(frozen=True)
class AccessToken:
    """An accepted access token: whom it speaks for, for which client, with which scopes.

    ``claims`` are the token's verified claims (``iss``, ``sub``, ``aud``, ``exp``, ``scope``,
    ``client_id``, ``org_id``, a plugin's namespaced claims...); ``user`` is its subject as the
    user store has it now.
    """

    user: User
    client_id: str
    scope: tuple[str, ...]
    claims: Mapping[str, Any]


def credentials(authorization: str | None) -> tuple[str, str]:
    """The scheme (``bearer`` or ``dpop``, lower case) and token of an ``Authorization``
    header; InvalidToken for anything else."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    scheme, token = scheme.lower(), token.strip()
    if scheme not in ("bearer", "dpop") or not token or " " in token:
        raise InvalidToken(
            "An access token is required (Authorization: Bearer <token>, or DPoP <token> with "
            "a DPoP proof).",
            dpop_algs=ALGORITHMS if scheme == "dpop" else None,
        )
    return scheme, token


class AccessVerifier:
    """Accepts or refuses the access token a request to a protected resource presents."""

    def __init__(self, *, issuer: TokenIssuer, users: UserStore, proofs: DPoPVerifier) -> None:
        self.issuer = issuer
        self.users = users
        self.proofs = proofs

    def verify(
        self, presented: Presented, *, issuer: str, audience: str | Sequence[str]
    ) -> AccessToken:
        """The access the token of ``presented`` grants at ``audience`` (or at one of several
        audiences: the token must name one of them).

        ``issuer`` is ``https://<custom domain>/`` of the request. Raises InvalidToken (401)
        when the token is missing, not ours, expired, for another audience or issuer, of a user
        who no longer exists, or sent with the wrong scheme (a DPoP-bound token as Bearer, an
        unbound one as DPoP); InvalidResourceDPoPProof (401) when the DPoP proof is missing,
        invalid, or signed with another key than the token's. Both carry a ``DPoP`` challenge
        when the request used the ``DPoP`` scheme or the token is DPoP-bound.
        """
        scheme, token = credentials(presented.authorization)
        algs = ALGORITHMS if scheme == "dpop" else None
        if not isinstance(audience, str):
            audience = _named_audience(token, audience)
        try:
            claims = self.issuer.verify_access_token(token, issuer=issuer, audience=audience)
        except InvalidToken as error:
            raise InvalidToken(error.description, dpop_algs=algs) from None
        bound = _bound_key(claims)
        if scheme == "bearer" and bound is not None:
            raise InvalidToken(
                "The access token is bound to a DPoP key: send it as Authorization: DPoP "
                "<token> with a DPoP proof.",
                dpop_algs=ALGORITHMS,
            )
        if scheme == "dpop":
            if bound is None:
                raise InvalidToken(
                    "The access token is not DPoP-bound: send it as Authorization: Bearer <token>.",
                    dpop_algs=ALGORITHMS,
                )
            self._check_proof(presented, token=token, bound=bound)
        subject, client_id, scope = claims["sub"], claims["client_id"], claims.get("scope", "")
        if not isinstance(subject, str) or not isinstance(client_id, str):
            raise InvalidToken("The access token's claims are invalid.", dpop_algs=algs)
        user = self.users.get_user(subject)
        if user is None:
            raise InvalidToken("The access token's user no longer exists.", dpop_algs=algs)
        granted = tuple(scope.split()) if isinstance(scope, str) else ()
        return AccessToken(user=user, client_id=client_id, scope=granted, claims=claims)

    def _check_proof(self, presented: Presented, *, token: str, bound: str) -> None:
        if presented.dpop is None:
            raise InvalidResourceDPoPProof(
                "A DPoP proof is required (the DPoP header).", dpop_algs=ALGORITHMS
            )
        try:
            proved = self.proofs.verify(
                presented.dpop, method=presented.method, url=presented.url, access_token=token
            )
        except InvalidDPoPProof as error:
            raise InvalidResourceDPoPProof(error.description, dpop_algs=ALGORITHMS) from None
        if not hmac.compare_digest(proved.encode(), bound.encode()):
            raise InvalidResourceDPoPProof(
                "The DPoP proof is signed with another key than the access token is bound to.",
                dpop_algs=ALGORITHMS,
            )


def require_scopes(token: AccessToken, scopes: Iterable[str]) -> None:
    """Raise InsufficientScope (403) unless ``token`` carries every one of ``scopes``; its
    challenge names them all, its description the missing ones."""
    required = tuple(scopes)
    missing = [scope for scope in required if scope not in token.scope]
    if missing:
        raise InsufficientScope(
            " ".join(required), f"The access token lacks the scope {' '.join(missing)}."
        )


def _named_audience(token: str, audiences: Sequence[str]) -> str:
    """The first of ``audiences`` that ``token``'s ``aud`` names, else the first of them (the
    token is then refused for its audience, unless it fails an earlier check).

    Read from the unverified payload only to pick which audience to verify against: the
    verification checks the signature, then that ``aud`` names it.
    """
    if not audiences:
        raise ValueError("at least one audience is needed")
    try:
        payload = json.loads(jws.extract_compact(token.encode()).payload)
    except (JoseError, ValueError, RecursionError):
        return audiences[0]
    named = payload.get("aud") if isinstance(payload, dict) else None
    names = [named] if isinstance(named, str) else named if isinstance(named, list) else []
    return next((audience for audience in audiences if audience in names), audiences[0])


def _bound_key(claims: Mapping[str, Any]) -> str | None:
    """The DPoP key thumbprint a token is bound to (``cnf.jkt``), if it is bound."""
    confirmation = claims.get("cnf")
    if confirmation is None:
        return None
    jkt = confirmation.get("jkt") if isinstance(confirmation, dict) else None
    if not isinstance(jkt, str) or not jkt:
        raise InvalidToken("The access token's claims are invalid.")
    return jkt


def userinfo_claims(access: AccessToken) -> dict[str, Any]:
    """The ``/userinfo`` answer (OIDC Core §5.3.2): ``sub``, and the claims the token's scopes
    release, as the ID token carries them."""
    return {"sub": access.user.id, **profile_claims(access.user, access.scope)}
