"""DPoP proofs (RFC 9449): check the ``DPoP`` header of a request and name the key it proves.
Framework-free.

A proof is a JWT the client signs for one request with a key of its own, carrying the public
half in its header. :class:`DPoPVerifier` accepts it when it is a ``dpop+jwt`` signed with an
algorithm of :data:`ALGORITHMS` by the public ``jwk`` of its header, names the request's method
(``htm``) and URL (``htu``), was made within ``leeway`` seconds of now (``iat``), has never
been seen before (``jti``, remembered through the session store until the proof is too old
anyway) and, at a protected resource, names the access token it goes with (``ath``). The
answer is the key's RFC 7638 thumbprint (``jkt``), which tokens are bound to as ``cnf.jkt``.
Signatures and thumbprints are joserfc's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlsplit

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import import_key
from joserfc.jws import JWSRegistry

from flask_passkey.errors import InvalidDPoPProof

#: The proof signature algorithms accepted (and published as
#: ``dpop_signing_alg_values_supported``); asymmetric only, never ``none`` or HMAC.
ALGORITHMS = ("ES256", "ES384", "PS256", "RS256", "Ed25519")
#: The ``typ`` header of a DPoP proof.
PROOF_TYPE = "dpop+jwt"
#: Seconds a proof's ``iat`` may be off the server's clock, either way.
DEFAULT_LEEWAY = 60
#: Longest ``DPoP`` header read, in characters (an RSA-4096 proof is about 1.5 kB).
MAX_PROOF_LENGTH = 8192
#: Longest ``jti`` accepted.
MAX_JTI_LENGTH = 256
#: JWK members that only a private (or symmetric) key has.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: What RFC 3986 lets a path carry unencoded (unreserved, sub-delims, ":" and "@").
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
# What joserfc and cryptography raise for a malformed proof or key.
_MALFORMED = (JoseError, ValueError, TypeError, KeyError, IndexError, UnicodeError)


class _ProofRegistry(JWSRegistry):
    """joserfc's JWS registry with room for a proof's header: its default allows 512 bytes,
    too few for the ``jwk`` of an RSA key."""

    max_header_length = 2048


#: One registry per algorithm: a proof is verified with exactly the algorithm it names.
_REGISTRIES = {alg: _ProofRegistry(algorithms=[alg]) for alg in ALGORITHMS}
_READER = _ProofRegistry(algorithms=list(ALGORITHMS))


class Remember(Protocol):
    """Records a key once until an expiry: the session store's ``put_marker``."""

    def __call__(self, key: str, *, expires_at: float, now: float) -> bool:
        """True when ``key`` was not recorded (and now is); False when it already was."""


def access_token_hash(access_token: str) -> str:
    """The ``ath`` of a proof sent with ``access_token``: base64url SHA-256, no padding."""
    digest = hashlib.sha256(access_token.encode("ascii", "surrogateescape")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def normalized_url(url: str) -> str | None:
    """``url`` in the form RFC 9449 §4.3 compares ``htu`` in (RFC 3986 §6.2.2 and §6.2.3):
    scheme and host lower case, the default port dropped, an empty path as ``/``, percent
    encoding in one canonical form, query and fragment dropped. None when ``url`` is not an
    absolute http(s) URL without user info.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number, a bracket left open
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in ("http", "https") or not host or parts.username is not None:
        return None
    if ":" in host:
        host = f"[{host}]"
    default_port = 443 if scheme == "https" else 80
    netloc = host if port in (None, default_port) else f"{host}:{port}"
    path = quote(unquote(parts.path or "/", errors="surrogateescape"), safe=_PATH_SAFE)
    return f"{scheme}://{netloc}{path}"


class DPoPVerifier:
    """Checks DPoP proofs against the request they came with.

    ``remember(key, expires_at=..., now=...)`` records a proof's ``jti`` (hashed with its key)
    and answers False when it was recorded before: the session store's ``put_marker``.
    """

    def __init__(
        self,
        *,
        remember: Remember,
        clock: Callable[[], float],
        leeway: int = DEFAULT_LEEWAY,
    ) -> None:
        self._remember = remember
        self._clock = clock
        self.leeway = leeway

    def verify(self, proof: str, *, method: str, url: str, access_token: str | None = None) -> str:
        """The thumbprint (``jkt``) of the key that signed ``proof`` for a ``method`` request
        to ``url`` (the URL the client was told to use: ``https://<custom domain><path>``).

        ``access_token`` is the token the request presents to a protected resource: the proof
        must then carry its ``ath``. Raises InvalidDPoPProof, recording nothing, for any proof
        that fails a check; the ``jti`` of a proof that passes them all is recorded, and the
        same proof is refused from then on.
        """
        claims, key = self._signed(proof)
        if claims.get("htm") != method:
            raise InvalidDPoPProof(f"The DPoP proof's htm is not {method}.")
        htu = claims.get("htu")
        if not isinstance(htu, str) or normalized_url(htu) != normalized_url(url):
            raise InvalidDPoPProof("The DPoP proof's htu is not the URL of this request.")
        iat = claims.get("iat")
        if isinstance(iat, bool) or not isinstance(iat, int | float) or not math.isfinite(iat):
            raise InvalidDPoPProof("The DPoP proof has no iat.")
        now = self._clock()
        if abs(now - iat) > self.leeway:
            raise InvalidDPoPProof(
                f"The DPoP proof's iat is more than {self.leeway} seconds off the server's time."
            )
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
            raise InvalidDPoPProof("The DPoP proof has no jti.")
        if access_token is not None:
            ath = claims.get("ath")
            if not isinstance(ath, str) or not hmac.compare_digest(
                ath.encode("utf-8", "surrogateescape"),
                access_token_hash(access_token).encode("ascii"),
            ):
                raise InvalidDPoPProof("The DPoP proof's ath is not the access token's hash.")
        jkt: str = key.thumbprint()
        seen = hashlib.sha256(f"{jkt} {jti}".encode("utf-8", "surrogateescape")).hexdigest()
        # Beyond iat + leeway the proof is refused as too old: no need to remember it longer.
        if not self._remember(f"dpop-jti:{seen}", expires_at=iat + self.leeway + 1, now=now):
            raise InvalidDPoPProof("The DPoP proof has been used before.")
        return jkt

    def _signed(self, proof: str) -> tuple[dict[str, Any], Any]:
        """The claims of ``proof`` and the public key of its header, once its type, algorithm,
        key and signature are checked."""
        if not proof or len(proof) > MAX_PROOF_LENGTH:
            raise InvalidDPoPProof("The DPoP header must hold one DPoP proof.")
        try:
            signed = jws.extract_compact(proof.encode("ascii"), registry=_READER)
            header = signed.headers()
        except _MALFORMED:
            raise InvalidDPoPProof("The DPoP proof is not a compact JWS.") from None
        if header.get("typ") != PROOF_TYPE:
            raise InvalidDPoPProof(f"The DPoP proof's typ is not {PROOF_TYPE}.")
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise InvalidDPoPProof(f"The DPoP proof's alg must be one of {', '.join(ALGORITHMS)}.")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict):
            raise InvalidDPoPProof("The DPoP proof's header has no jwk.")
        if _PRIVATE_MEMBERS & jwk.keys():
            raise InvalidDPoPProof("The DPoP proof's jwk must be a public key.")
        try:
            key = import_key(jwk)
            valid = not key.is_private and jws.validate_compact(
                signed, key, registry=_REGISTRIES[alg]
            )
        except _MALFORMED:
            valid = False
        if not valid:
            raise InvalidDPoPProof("The DPoP proof is not signed by the key of its jwk.")
        try:
            claims = json.loads(signed.payload)
        except _MALFORMED:
            claims = None
        if not isinstance(claims, dict):
            raise InvalidDPoPProof("The DPoP proof's payload is not a JSON object.")
        return claims, key
