"""Authenticator trust: the attestation policy of a ceremony and the FIDO metadata behind it.

Framework-free. A connection's :class:`~flask_passkey.models.AttestationPolicy` (or its client's
override) says which attestation to ask for and which authenticators may register. With
``require_trusted`` the attestation's certificate chain must verify against the roots that the
FIDO Metadata Service (MDS3) BLOB lists for the authenticator's AAGUID; the BLOB is a file the
operator downloads (``PASSKEY_MDS_BLOB``), trusted once its signature verifies against the
FIDO root certificate (``PASSKEY_MDS_ROOT_CERT``). Parsing and that signature check are
python-fido2's (``fido2.mds3``, the ``mds`` extra); the chain check is py_webauthn's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from flask_passkey.core.authenticators import AuthenticatorInfo, data_image
from flask_passkey.errors import AttestationRefused, ConfigurationError
from flask_passkey.models import AttestationPolicy, Client, Connection

if TYPE_CHECKING:
    from fido2.mds3 import MetadataBlobPayload, MetadataBlobPayloadEntry

#: Metadata statuses that refuse an authenticator (FIDO MDS3 §3.1.4): its keys or its user
#: verification can no longer be relied on, or the vendor withdrew it.
COMPROMISED_STATUSES = frozenset(
    {
        "REVOKED",
        "ATTESTATION_KEY_COMPROMISE",
        "USER_KEY_REMOTE_COMPROMISE",
        "USER_KEY_PHYSICAL_COMPROMISE",
        "USER_VERIFICATION_BYPASS",
    }
)
#: ``keyProtection`` values of metadata statements whose keys live in dedicated hardware.
HARDWARE_KEY_PROTECTION = frozenset({"hardware", "secure_element", "tee"})


@dataclass(frozen=True)
class Metadata:
    """A verified MDS3 BLOB: its entries by AAGUID, its serial number and next update."""

    source: str
    number: int
    next_update: date
    entries: dict[str, MetadataBlobPayloadEntry]

    @classmethod
    def from_payload(cls, payload: MetadataBlobPayload, *, source: str) -> Metadata:
        return cls(
            source=source,
            number=payload.no,
            next_update=payload.next_update,
            entries={str(e.aaguid): e for e in payload.entries if e.aaguid is not None},
        )

    def authenticator(self, aaguid: str) -> AuthenticatorInfo | None:
        """The provider the BLOB names for ``aaguid`` (its metadata statement's description and
        icons): the first source of :class:`~flask_passkey.core.authenticators.AuthenticatorNames`
        when a BLOB is loaded."""
        entry = self.entries.get(aaguid)
        statement = entry.metadata_statement if entry is not None else None
        if statement is None or not statement.description:
            return None
        return AuthenticatorInfo(
            name=statement.description,
            icon_light=data_image(statement.icon),
            icon_dark=data_image(statement.icon_dark),
        )

    def expired(self, today: date) -> bool:
        """Past ``nextUpdate``: FIDO has published a newer BLOB; download it."""
        return today > self.next_update


def parse_metadata(blob: bytes, root_cert: bytes, *, source: str) -> Metadata:
    """Parse an MDS3 BLOB after verifying its signature chain up to ``root_cert`` (PEM or DER).

    Raises ValueError saying what is wrong (not a BLOB, bad signature, bad certificate) and
    ImportError when python-fido2 (the ``mds`` extra) is not installed.
    """
    from fido2.mds3 import parse_blob  # the optional ``mds`` extra

    try:
        root = (
            x509.load_pem_x509_certificate(root_cert)
            if root_cert.lstrip().startswith(b"-----")
            else x509.load_der_x509_certificate(root_cert)
        )
    except ValueError:
        raise ValueError("the root certificate is not a PEM or DER X.509 certificate.") from None
    try:
        payload = parse_blob(blob.strip(), root.public_bytes(Encoding.DER))
    except Exception as error:  # fido2 raises whatever its parsers and crypto raise
        reason = str(error) or type(error).__name__  # InvalidSignature has no message
        raise ValueError(
            f"the BLOB does not verify against the root certificate: {reason}."
        ) from None
    return Metadata.from_payload(payload, source=source)


def load_metadata(blob_path: Path, root_cert_path: Path) -> Metadata:
    """:func:`parse_metadata` of two files; any problem is a ConfigurationError naming them."""
    try:
        return parse_metadata(
            blob_path.read_bytes(), root_cert_path.read_bytes(), source=str(blob_path)
        )
    except ImportError:
        raise ConfigurationError(
            "PASSKEY_MDS_BLOB needs python-fido2: pip install 'flask-passkey[mds]'."
        ) from None
    except OSError as error:
        raise ConfigurationError(
            f"PASSKEY_MDS_BLOB: cannot read {error.filename}: {error.strerror}."
        ) from None
    except ValueError as error:
        raise ConfigurationError(f"PASSKEY_MDS_BLOB {blob_path}: {error}") from None


def compromised(entry: MetadataBlobPayloadEntry) -> bool:
    """Whether any status report of ``entry`` says its authenticator is compromised or revoked."""
    return any(report.status.value in COMPROMISED_STATUSES for report in entry.status_reports)


def root_certificates_pem(entry: MetadataBlobPayloadEntry) -> list[bytes]:
    """The attestation roots an entry's metadata statement lists, as PEM (py_webauthn's form)."""
    statement = entry.metadata_statement
    if statement is None:
        return []
    return [
        x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)
        for der in statement.attestation_root_certificates
    ]


class AttestationGate:
    """Resolves a ceremony's policy and judges an authenticator by its AAGUID and metadata."""

    def __init__(
        self,
        *,
        get_client: Callable[[str], Client | None],
        get_connection: Callable[[str], Connection | None],
        metadata: Metadata | None,
    ) -> None:
        self._get_client = get_client
        self._get_connection = get_connection
        self.metadata = metadata

    def policy(self, *, client_id: str, connection: str) -> AttestationPolicy:
        """The client's override, else the connection's policy, else no requirement."""
        client = self._get_client(client_id)
        if client is not None and client.attestation is not None:
            return client.attestation
        found = self._get_connection(connection)
        return found.attestation if found is not None else AttestationPolicy()

    def roots(self, policy: AttestationPolicy, *, aaguid: str) -> list[bytes]:
        """The root certificates (PEM) an attestation chain must verify against under
        ``policy``: those the BLOB lists for ``aaguid`` when the policy requires trust; none
        otherwise, or when the BLOB does not know the AAGUID (:meth:`admit` refuses it then)."""
        if not policy.require_trusted or self.metadata is None:
            return []
        entry = self.metadata.entries.get(aaguid)
        return root_certificates_pem(entry) if entry is not None else []

    def admit(
        self, policy: AttestationPolicy, *, aaguid: str, fmt: str, x5c: Sequence[bytes]
    ) -> bool:
        """Judge a verified attestation (its chain checked against :meth:`roots`) by ``policy``
        and the metadata: whether it proves a hardware key (trust was required and the metadata
        statement's ``keyProtection`` is hardware, a secure element or a TEE).

        Raises :class:`AttestationRefused` (event ``aaguid_denied``) for an AAGUID the policy
        denies or does not allow, and (event ``attestation_refused``) for an authenticator whose
        metadata reports a compromise, or, when trust is required, one without a certificate
        chain (``none`` or self attestation) or that the metadata does not vouch for.
        """
        if aaguid in policy.denied_aaguids or (
            policy.allowed_aaguids and aaguid not in policy.allowed_aaguids
        ):
            raise AttestationRefused(
                f"Authenticators with AAGUID {aaguid} are not allowed here.", event="aaguid_denied"
            )
        entry = self.metadata.entries.get(aaguid) if self.metadata is not None else None
        if entry is not None and compromised(entry):
            raise AttestationRefused("The authenticator's metadata reports it compromised.")
        if not policy.require_trusted:
            return False
        if fmt == "none" or not x5c:
            raise AttestationRefused(
                "A trusted attestation (with a certificate chain) is required."
            )
        if not self.roots(policy, aaguid=aaguid):
            raise AttestationRefused("The authenticator is unknown to the metadata service.")
        assert entry is not None and entry.metadata_statement is not None  # roots came from it
        return bool(HARDWARE_KEY_PROTECTION & set(entry.metadata_statement.key_protection))


def metadata_from_settings(
    *,
    blob: str | None,
    root_cert: str | None,
    root_path: str,
    connections: Iterable[Connection],
    clients: Iterable[Client],
) -> Metadata | None:
    """The BLOB of ``PASSKEY_MDS_BLOB``/``PASSKEY_MDS_ROOT_CERT`` (relative to ``root_path``),
    or None when unset. Raises ConfigurationError when it cannot be loaded, or when it is unset
    and a connection or client of the tenant data requires a trusted attestation."""
    if blob is not None and root_cert is not None:
        return load_metadata(Path(root_path, blob), Path(root_path, root_cert))
    needing = [f"connection {c.name!r}" for c in connections if c.attestation.require_trusted]
    needing += [
        f"client {c.client_id!r}"
        for c in clients
        if c.attestation is not None and c.attestation.require_trusted
    ]
    if needing:
        raise ConfigurationError(
            "A trusted attestation needs FIDO metadata: set PASSKEY_MDS_BLOB and "
            "PASSKEY_MDS_ROOT_CERT.",
            [f"{where} has attestation.require_trusted" for where in needing],
        )
    return None
