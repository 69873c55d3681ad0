"""A test FIDO Metadata Service: a root, a BLOB signer, and BLOBs as fido2.mds3 verifies them.

fido2.mds3.parse_blob checks a BLOB (a JWS compact serialization) so: the header's ``x5c``
chain, followed by the trust root the operator provides, must verify link by link, and the
header's ``alg`` signature by the first certificate's key must verify over
``header.payload``. The real BLOB is signed RS256; so is this one.
"""

from __future__ import annotations

import base64
import datetime
import json
import uuid
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from flask_passkey.testing import AttestationCA, b64url


def _certificate(
    subject: str, key: Any, *, issuer: x509.Name | None, signer: Any, ca: bool
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )


class MetadataService:
    """Stands in for the FIDO Alliance: its root certificate and a BLOB signing certificate."""

    def __init__(self) -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = _certificate(
            "Test FIDO MDS root", self.root_key, issuer=None, signer=self.root_key, ca=True
        )
        self.signer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.signer = _certificate(
            "Test MDS signer",
            self.signer_key,
            issuer=self.root.subject,
            signer=self.root_key,
            ca=False,
        )

    @property
    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    def blob(
        self,
        entries: Sequence[dict[str, Any]],
        *,
        number: int = 7,
        next_update: str = "2027-01-01",
    ) -> bytes:
        """A signed BLOB with ``entries`` (see :func:`entry`)."""
        header = {
            "alg": "RS256",
            "typ": "JWT",
            "x5c": [
                base64.b64encode(self.signer.public_bytes(serialization.Encoding.DER)).decode()
            ],
        }
        payload = {
            "legalHeader": "Test metadata: no legal meaning.",
            "no": number,
            "nextUpdate": next_update,
            "entries": list(entries),
        }
        message = ".".join(b64url(json.dumps(part).encode()) for part in (header, payload)).encode()
        signature = self.signer_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return message + b"." + b64url(signature).encode()


def entry(
    aaguid: bytes,
    ca: AttestationCA,
    *,
    status: str = "FIDO_CERTIFIED_L1",
    key_protection: Sequence[str] = ("hardware", "secure_element"),
    description: str = "Test Key",
) -> dict[str, Any]:
    """A BLOB entry vouching for authenticators of ``aaguid`` whose attestations chain to ``ca``."""
    return {
        "aaguid": str(uuid.UUID(bytes=aaguid)),
        "statusReports": [{"status": status, "effectiveDate": "2025-01-01"}],
        "timeOfLastStatusChange": "2025-01-01",
        "metadataStatement": {
            "description": description,
            "aaguid": str(uuid.UUID(bytes=aaguid)),
            "authenticatorVersion": 1,
            "schema": 3,
            "upv": [{"major": 1, "minor": 0}],
            "attestationTypes": ["basic_full"],
            "userVerificationDetails": [[{"userVerificationMethod": "presence_internal"}]],
            "keyProtection": list(key_protection),
            "matcherProtection": ["on_chip"],
            "attachmentHint": ["external"],
            "tcDisplay": [],
            "attestationRootCertificates": [base64.b64encode(ca.root_der).decode()],
        },
    }
