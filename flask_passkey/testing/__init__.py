"""A software WebAuthn authenticator ("virtual passkey") for tests.

:class:`SoftAuthenticator` answers ``navigator.credentials.create()`` and
``navigator.credentials.get()`` option dicts with real, correctly signed
responses in the shape of the browser's ``PublicKeyCredential.toJSON()``
(binary values are base64url without padding), so a relying party's
verification code can be exercised end to end without a browser.

Every call also accepts keyword overrides (``user_present``, ``rp_id``,
``challenge``, ...) that make the authenticator lie in one specific way, so
tests can check that a server rejects such responses.

Example::

    passkey = SoftAuthenticator()
    credential = passkey.create(creation_options, origin="https://example.com")
    assertion = passkey.get(request_options, origin="https://example.com")
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, TypeAlias
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID
from joserfc import jws
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, encode_cbor

from flask_passkey.models import android_origin

__all__ = [
    "Algorithm",
    "AttestationCA",
    "DPoPAlgorithm",
    "DPoPKey",
    "PrivateKey",
    "SoftAuthenticator",
    "StoredCredential",
    "android_origin",
    "b64url",
]

Algorithm = Literal["ES256", "EdDSA", "RS256"]
"""Signature algorithms the authenticator can use (COSE -7, -8 and -257)."""

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey

COSE_ALGORITHMS: dict[Algorithm, int] = {"ES256": -7, "EdDSA": -8, "RS256": -257}
_DEFAULT_PUB_KEY_ALGS = (-7, -257)  # what clients assume when pubKeyCredParams is empty

_FLAG_UP = 0x01
_FLAG_UV = 0x04
_FLAG_BE = 0x08
_FLAG_BS = 0x10
_FLAG_AT = 0x40


class _Unset(Enum):
    TOKEN = 0


_UNSET = _Unset.TOKEN


def b64url(data: bytes) -> str:
    """Return ``data`` base64url-encoded without padding (WebAuthn JSON style)."""
    return bytes_to_base64url(data)


@dataclass(frozen=True)
class StoredCredential:
    """A discoverable credential held by a :class:`SoftAuthenticator`.

    Instances are immutable; the authenticator replaces them in its
    ``credentials`` list when the signature counter advances.
    """

    credential_id: bytes
    rp_id: str
    user_handle: bytes
    private_key: PrivateKey = dataclasses.field(repr=False)
    algorithm: Algorithm
    sign_count: int = 0

    @property
    def cose_public_key(self) -> bytes:
        """The credential public key as a CBOR-encoded COSE_Key (what a server stores)."""
        return encode_cbor(_cose_key(self.private_key, self.algorithm))


#: id-fido-gen-ce-aaguid: the extension of an attestation certificate naming its AAGUID.
_AAGUID_EXTENSION = x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")


class AttestationCA:
    """A test certificate authority that issues authenticator attestation certificates.

    Its self-signed P-256 root (:attr:`root_der`, :attr:`root_pem`) is what a FIDO Metadata
    Service entry lists as ``attestationRootCertificates`` for the authenticators it vouches
    for. :meth:`issue` makes a batch attestation certificate meeting WebAuthn's packed
    attestation requirements (§8.2.1): version 3, subject C/O/OU="Authenticator Attestation"/CN,
    not a CA, and the AAGUID extension. Give one to a :class:`SoftAuthenticator`
    (``attestation_ca=``) for ``packed`` attestations with an x5c chain::

        ca = AttestationCA()
        passkey = SoftAuthenticator(attestation="packed", attestation_ca=ca, aaguid=aaguid)
    """

    def __init__(self, name: str = "flask-passkey test attestation root") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )

    @property
    def root_der(self) -> bytes:
        """The root certificate, DER-encoded."""
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def root_pem(self) -> bytes:
        """The root certificate, PEM-encoded."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(self, aaguid: bytes) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
        """A new attestation key and its certificate (DER) for authenticators of ``aaguid``
        (16 bytes), signed by this CA's root."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "flask-passkey tests"),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Authenticator Attestation"),
                x509.NameAttribute(NameOID.COMMON_NAME, "SoftAuthenticator attestation"),
            ]
        )
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                # DER OCTET STRING (0x04) of 16 bytes (0x10): the AAGUID
                x509.UnrecognizedExtension(_AAGUID_EXTENSION, b"\x04\x10" + aaguid),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        return key, certificate.public_bytes(serialization.Encoding.DER)


class SoftAuthenticator:
    """A platform authenticator holding discoverable passkeys in memory.

    Constructor settings describe the honest authenticator; every response it
    produces verifies with a conforming relying party (py_webauthn) when the
    given ``origin`` and the RP ID are the expected ones.

    - ``algorithm``: key type for new credentials (ES256 = P-256, EdDSA =
      Ed25519, RS256 = RSA-2048 PKCS#1 v1.5).
    - ``attestation``: ``"none"`` or ``"packed"``: self attestation (signed with
      the credential key itself, no certificate chain), or with ``attestation_ca``
      an ES256 signature by an attestation key whose certificate, issued by that
      :class:`AttestationCA` for ``aaguid``, is the statement's ``x5c``.
    - ``user_verified``: whether the UV flag is set.
    - ``backup_eligible`` / ``backed_up``: the BE / BS flags (multi-device,
      synced passkey); ``backed_up`` defaults to ``backup_eligible``.
    - ``counter``: ``"zero"`` always reports sign count 0 (like synced
      passkeys); ``"increment"`` reports 1, 2, 3... per credential on ``get``.
    - ``aaguid``: the 16-byte AAGUID put in attested credential data.
    """

    def __init__(
        self,
        *,
        algorithm: Algorithm = "ES256",
        attestation: Literal["none", "packed"] = "none",
        user_verified: bool = True,
        backup_eligible: bool = True,
        backed_up: bool | None = None,
        counter: Literal["zero", "increment"] = "zero",
        aaguid: bytes = bytes(16),
        attestation_ca: AttestationCA | None = None,
    ) -> None:
        if algorithm not in COSE_ALGORITHMS:
            raise ValueError(f"unsupported algorithm {algorithm!r}")
        if attestation not in ("none", "packed"):
            raise ValueError(f"unsupported attestation format {attestation!r}")
        if counter not in ("zero", "increment"):
            raise ValueError(f"unsupported counter mode {counter!r}")
        if len(aaguid) != 16:
            raise ValueError("aaguid must be 16 bytes")
        if attestation_ca is not None and attestation != "packed":
            raise ValueError("an attestation_ca signs packed attestations only")
        self.algorithm: Algorithm = algorithm
        self.attestation = attestation
        self.user_verified = user_verified
        self.backup_eligible = backup_eligible
        self.backed_up = backup_eligible if backed_up is None else backed_up
        self.counter = counter
        self.aaguid = aaguid
        #: The attestation key and its certificate (DER), when an AttestationCA issued one.
        self.attestation_certificate = (
            attestation_ca.issue(aaguid) if attestation_ca is not None else None
        )
        self.credentials: list[StoredCredential] = []

    def create(
        self,
        options: Mapping[str, Any],
        *,
        origin: str,
        user_present: bool = True,
        user_verified: bool | None = None,
        rp_id: str | None = None,
        challenge: str | None = None,
        client_data_type: str = "webauthn.create",
        sign_count: int | None = None,
        credential_id: bytes | None = None,
        top_origin: str | None = None,
    ) -> dict[str, Any]:
        """Answer ``navigator.credentials.create()`` and store the new credential.

        ``options`` is PublicKeyCredentialCreationOptions JSON (camelCase, binary
        values base64url) as a server returns it; ``origin`` is the caller's
        origin (e.g. ``"https://example.com"`` or an :func:`android_origin`).
        The RP ID is ``options["rp"]["id"]``, or the origin's host if absent.

        Returns RegistrationResponseJSON. Raises ValueError, like a real
        authenticator refusing, if this authenticator's algorithm is not in
        ``pubKeyCredParams`` or it already holds a credential listed in
        ``excludeCredentials``.

        Overrides (default: honest behaviour): ``user_present`` /
        ``user_verified`` set the UP / UV flags; ``rp_id`` is hashed into
        authenticatorData instead of the real RP ID; ``challenge`` (base64url)
        and ``client_data_type`` replace those clientData members;
        ``sign_count`` is reported instead of the credential's counter (the
        stored counter is left unchanged); ``credential_id`` replaces the 32
        random bytes of the new credential's id; ``top_origin`` makes it a
        cross-origin ceremony (an iframe in a page of that origin):
        ``crossOrigin: true`` and ``topOrigin`` in clientData.
        """
        real_rp_id = options["rp"].get("id") or _host(origin)
        alg = COSE_ALGORITHMS[self.algorithm]
        offered = [
            p["alg"] for p in options.get("pubKeyCredParams") or () if p.get("type") == "public-key"
        ]
        if alg not in (offered or _DEFAULT_PUB_KEY_ALGS):
            raise ValueError(f"{self.algorithm} (COSE {alg}) is not in pubKeyCredParams {offered}")
        excluded = {base64url_to_bytes(c["id"]) for c in options.get("excludeCredentials") or ()}
        if any(c.rp_id == real_rp_id and c.credential_id in excluded for c in self.credentials):
            raise ValueError("authenticator already holds a credential in excludeCredentials")

        credential = StoredCredential(
            credential_id=os.urandom(32) if credential_id is None else credential_id,
            rp_id=real_rp_id,
            user_handle=base64url_to_bytes(options["user"]["id"]),
            private_key=_generate_key(self.algorithm),
            algorithm=self.algorithm,
        )
        self.credentials.append(credential)

        client_data = _client_data(
            client_data_type,
            options["challenge"] if challenge is None else challenge,
            origin,
            top_origin,
        )
        cose_key = credential.cose_public_key
        attested = (
            self.aaguid
            + len(credential.credential_id).to_bytes(2, "big")
            + credential.credential_id
            + cose_key
        )
        auth_data = self._authenticator_data(
            rp_id or real_rp_id,
            user_present=user_present,
            user_verified=user_verified,
            sign_count=credential.sign_count if sign_count is None else sign_count,
            attested_credential_data=attested,
        )
        att_stmt: dict[str, Any] = {}
        if self.attestation == "packed":
            signed = auth_data + hashlib.sha256(client_data).digest()
            if self.attestation_certificate is None:
                att_stmt = {"alg": alg, "sig": _sign(credential.private_key, signed)}
            else:
                attestation_key, certificate = self.attestation_certificate
                att_stmt = {
                    "alg": COSE_ALGORITHMS["ES256"],
                    "sig": _sign(attestation_key, signed),
                    "x5c": [certificate],
                }
        attestation_object = encode_cbor(
            {"fmt": self.attestation, "attStmt": att_stmt, "authData": auth_data}
        )
        public_key_der = credential.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {
            **_credential_json(credential.credential_id),
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation_object),
                "authenticatorData": b64url(auth_data),
                "publicKey": b64url(public_key_der),
                "publicKeyAlgorithm": alg,
                "transports": ["internal", "hybrid"],
            },
        }

    def get(
        self,
        options: Mapping[str, Any],
        *,
        origin: str,
        credential_id: bytes | None = None,
        user_present: bool = True,
        user_verified: bool | None = None,
        rp_id: str | None = None,
        challenge: str | None = None,
        client_data_type: str = "webauthn.get",
        sign_count: int | None = None,
        user_handle: bytes | _Unset | None = _UNSET,
        top_origin: str | None = None,
    ) -> dict[str, Any]:
        """Answer ``navigator.credentials.get()`` with a signed assertion.

        ``options`` is PublicKeyCredentialRequestOptions JSON as a server
        returns it. The RP ID is ``options["rpId"]``, or the origin's host if
        absent. Among the credentials stored for that RP it signs with
        ``credential_id`` if given (even if not in ``allowCredentials``), else
        the first entry of ``allowCredentials`` it holds, else the most recently
        created one. Raises ValueError if there is no such credential.

        In ``"increment"`` counter mode the credential's stored counter
        advances by one per call (before any ``sign_count`` override).

        Returns AuthenticationResponseJSON. Overrides are those of
        :meth:`create`, plus ``user_handle`` to send instead of the
        credential's user handle (``None`` sends ``null``).
        """
        real_rp_id = options.get("rpId") or _host(origin)
        credential = self._pick(real_rp_id, credential_id, options.get("allowCredentials") or ())
        if self.counter == "increment":
            index = self.credentials.index(credential)
            credential = dataclasses.replace(credential, sign_count=credential.sign_count + 1)
            self.credentials[index] = credential

        client_data = _client_data(
            client_data_type,
            options["challenge"] if challenge is None else challenge,
            origin,
            top_origin,
        )
        auth_data = self._authenticator_data(
            rp_id or real_rp_id,
            user_present=user_present,
            user_verified=user_verified,
            sign_count=credential.sign_count if sign_count is None else sign_count,
        )
        signature = _sign(credential.private_key, auth_data + hashlib.sha256(client_data).digest())
        handle = credential.user_handle if isinstance(user_handle, _Unset) else user_handle
        return {
            **_credential_json(credential.credential_id),
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": None if handle is None else b64url(handle),
            },
        }

    def _pick(self, rp_id: str, credential_id: bytes | None, allowed: Any) -> StoredCredential:
        held = {c.credential_id: c for c in self.credentials if c.rp_id == rp_id}
        if credential_id is not None:
            wanted = [credential_id]
        elif allowed:
            wanted = [base64url_to_bytes(c["id"]) for c in allowed]
        else:
            wanted = list(held)[::-1]
        for cred_id in wanted:
            if cred_id in held:
                return held[cred_id]
        raise ValueError(f"no suitable credential for RP ID {rp_id!r}")

    def _authenticator_data(
        self,
        rp_id: str,
        *,
        user_present: bool,
        user_verified: bool | None,
        sign_count: int,
        attested_credential_data: bytes = b"",
    ) -> bytes:
        uv = self.user_verified if user_verified is None else user_verified
        flags = (
            (_FLAG_UP if user_present else 0)
            | (_FLAG_UV if uv else 0)
            | (_FLAG_BE if self.backup_eligible else 0)
            | (_FLAG_BS if self.backed_up else 0)
            | (_FLAG_AT if attested_credential_data else 0)
        )
        return (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([flags])
            + sign_count.to_bytes(4, "big")
            + attested_credential_data
        )


def _host(origin: str) -> str:
    host = urlsplit(origin).hostname
    if not host:
        raise ValueError(f"options carry no RP ID and origin {origin!r} has no host")
    return host


def _credential_json(credential_id: bytes) -> dict[str, Any]:
    return {
        "id": b64url(credential_id),
        "rawId": b64url(credential_id),
        "type": "public-key",
        "authenticatorAttachment": "platform",
        "clientExtensionResults": {},
    }


def _client_data(type_: str, challenge: str, origin: str, top_origin: str | None) -> bytes:
    data: dict[str, Any] = {
        "type": type_,
        "challenge": challenge,
        "origin": origin,
        "crossOrigin": top_origin is not None,
    }
    if top_origin is not None:
        data["topOrigin"] = top_origin
    return json.dumps(data, separators=(",", ":")).encode()


def _generate_key(algorithm: Algorithm) -> PrivateKey:
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _cose_key(key: PrivateKey, algorithm: Algorithm) -> dict[int, Any]:
    alg = COSE_ALGORITHMS[algorithm]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        numbers = key.public_key().public_numbers()
        return {
            1: 2,
            3: alg,
            -1: 1,
            -2: numbers.x.to_bytes(32, "big"),
            -3: numbers.y.to_bytes(32, "big"),
        }
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return {1: 1, 3: alg, -1: 6, -2: raw}
    rsa_numbers = key.public_key().public_numbers()
    n = rsa_numbers.n.to_bytes((rsa_numbers.n.bit_length() + 7) // 8, "big")
    e = rsa_numbers.e.to_bytes((rsa_numbers.e.bit_length() + 7) // 8, "big")
    return {1: 3, 3: alg, -1: n, -2: e}


def _sign(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


WEBAUTHN_GRANT_TYPE = "urn:okta:params:oauth:grant-type:webauthn"

DPoPAlgorithm = Literal["ES256", "ES384", "PS256", "RS256", "Ed25519"]
"""Algorithms a :class:`DPoPKey` can sign proofs with."""

_DPOP_KEYS: dict[DPoPAlgorithm, Callable[[], Key]] = {
    "ES256": lambda: ECKey.generate_key("P-256"),
    "ES384": lambda: ECKey.generate_key("P-384"),
    "PS256": lambda: RSAKey.generate_key(2048),
    "RS256": lambda: RSAKey.generate_key(2048),
    "Ed25519": lambda: OKPKey.generate_key("Ed25519"),
}


class DPoPKey:
    """A client's DPoP key pair (RFC 9449) that signs proofs, as Auth0's SDKs do.

    Example (in an operator's test)::

        key = DPoPKey()
        response = client.post(
            "/oauth/token", json=body,
            headers={"DPoP": key.proof("POST", "https://login.example.com/oauth/token")},
        )
        access_token = response.get_json()["access_token"]   # token_type "DPoP"
        client.get("/userinfo", headers={
            "Authorization": f"DPoP {access_token}",
            "DPoP": key.proof("GET", "https://login.example.com/userinfo",
                              access_token=access_token),
        })

    ``clock`` gives the proofs' ``iat`` (use the app's clock when it is not the real one).
    ``header`` and ``claims`` of :meth:`proof` add or replace members (``None`` removes one),
    so tests can make a proof wrong in one precise way.
    """

    def __init__(
        self, algorithm: DPoPAlgorithm = "ES256", *, clock: Callable[[], float] = time.time
    ) -> None:
        if algorithm not in _DPOP_KEYS:
            raise ValueError(f"unsupported algorithm {algorithm!r}")
        self.algorithm: DPoPAlgorithm = algorithm
        self.key = _DPOP_KEYS[algorithm]()
        self.clock = clock

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The public key, as a proof's ``jwk`` header carries it."""
        return dict(self.key.as_dict(private=False))

    @property
    def thumbprint(self) -> str:
        """The RFC 7638 thumbprint (``jkt``) tokens bound to this key carry as ``cnf.jkt``."""
        return self.key.thumbprint()

    def proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
        header: Mapping[str, Any] | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A new proof (fresh ``jti``, ``iat`` now) for a ``method`` request to ``url``; with
        ``access_token``, its hash as ``ath`` (for a protected resource)."""
        payload: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(self.clock()),
        }
        if access_token is not None:
            digest = hashlib.sha256(access_token.encode("ascii")).digest()
            payload["ath"] = b64url(digest)
        if nonce is not None:
            payload["nonce"] = nonce
        protected: dict[str, Any] = {
            "typ": "dpop+jwt",
            "alg": self.algorithm,
            "jwk": self.public_jwk,
        }
        protected = _merged(protected, header)
        payload = _merged(payload, claims)
        return jws.serialize_compact(
            protected, json.dumps(payload), self.key, algorithms=[protected.get("alg", "none")]
        )


def _merged(values: dict[str, Any], changes: Mapping[str, Any] | None) -> dict[str, Any]:
    merged = {**values, **(changes or {})}
    return {key: value for key, value in merged.items() if value is not None}


class PasskeyFlow:
    """Drives a flask-passkey API through a Flask test client, the way an Auth0 SDK does.

    Example (in an operator's test)::

        flow = PasskeyFlow(app.test_client(), client_id="my-spa", host="login.example.com")
        tokens = flow.sign_up({"email": "ann@example.com"})
        again = flow.sign_in()
        assert again["id_token"]

    ``sign_up`` and ``sign_in`` assert every step answered 200 and return the token response;
    ``register``, ``challenge`` and ``token`` return the raw test response for failure tests.
    With ``dpop`` (a :class:`DPoPKey`) every token request carries a DPoP proof of that key, so
    the tokens come back bound to it (``token_type`` ``DPoP``).
    """

    def __init__(
        self,
        client: Any,
        *,
        client_id: str,
        host: str,
        origin: str | None = None,
        client_secret: str | None = None,
        authenticator: SoftAuthenticator | None = None,
        path_prefix: str = "",
        dpop: DPoPKey | None = None,
    ) -> None:
        self.client = client
        self.client_id = client_id
        self.client_secret = client_secret
        self.host = host
        self.origin = origin or f"https://{host}"
        self.authenticator = authenticator or SoftAuthenticator()
        self.path_prefix = path_prefix
        self.dpop = dpop

    def url(self, path: str) -> str:
        """The URL of the API endpoint ``path`` on the flow's domain (a DPoP proof's ``htu``)."""
        return f"https://{self.host}{self.path_prefix}{path}"

    def _post(self, path: str, body: Mapping[str, Any]) -> Any:
        credentials = {"client_id": self.client_id}
        if self.client_secret is not None:
            credentials["client_secret"] = self.client_secret
        headers = {"Host": self.host}
        if self.dpop is not None and path == "/oauth/token":
            headers["DPoP"] = self.dpop.proof("POST", self.url(path))
        return self.client.post(
            self.path_prefix + path, json={**credentials, **body}, headers=headers
        )

    def register(self, user_profile: Mapping[str, Any], **body: Any) -> Any:
        """``POST /passkey/register``."""
        return self._post("/passkey/register", {"user_profile": dict(user_profile), **body})

    def challenge(self, **body: Any) -> Any:
        """``POST /passkey/challenge``."""
        return self._post("/passkey/challenge", body)

    def token(self, auth_session: str, authn_response: Mapping[str, Any], **body: Any) -> Any:
        """``POST /oauth/token`` with the passkey grant."""
        return self._post(
            "/oauth/token",
            {
                "grant_type": WEBAUTHN_GRANT_TYPE,
                "auth_session": auth_session,
                "authn_response": dict(authn_response),
                **body,
            },
        )

    def sign_up(self, user_profile: Mapping[str, Any], **body: Any) -> dict[str, Any]:
        """Register a new passkey for a new user; return the token response."""
        token_fields = {k: body.pop(k) for k in ("scope", "audience") if k in body}
        started = _ok(self.register(user_profile, **body))
        credential = self.authenticator.create(
            started["authn_params_public_key"], origin=self.origin
        )
        return _ok(self.token(started["auth_session"], credential, **token_fields))

    def sign_in(self, *, credential_id: bytes | None = None, **body: Any) -> dict[str, Any]:
        """Sign in with the authenticator's passkey; return the token response."""
        token_fields = {k: body.pop(k) for k in ("scope", "audience") if k in body}
        started = _ok(self.challenge(**body))
        assertion = self.authenticator.get(
            started["authn_params_public_key"], origin=self.origin, credential_id=credential_id
        )
        return _ok(self.token(started["auth_session"], assertion, **token_fields))


def _ok(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.get_json()
    assert response.status_code == 200, f"{response.status_code}: {body}"
    return body
