"""Frozen value objects shared by every layer: tenant configuration, users and credentials."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from webauthn.helpers import bytes_to_base64url

WEBAUTHN_GRANT = "urn:okta:params:oauth:grant-type:webauthn"
REFRESH_TOKEN_GRANT = "refresh_token"

AppType = Literal["native", "spa", "regular_web", "non_interactive"]
AuthMethod = Literal["none", "client_secret_post", "client_secret_basic"]
OrganizationUsage = Literal["deny", "allow", "require"]
Identifier = Literal["email", "phone_number", "username"]
#: WebAuthn's ``attestation`` conveyance preference of the creation options.
AttestationConveyance = Literal["none", "indirect", "direct", "enterprise"]
#: Every identifier kind, in the order one is picked as a user's display name.
IDENTIFIERS: tuple[Identifier, ...] = ("email", "phone_number", "username")


@dataclass(frozen=True)
class Tenant:
    """Tenant-wide settings: where passkeys are served and under which RP ID."""

    default_domain: str
    custom_domains: tuple[str, ...]
    passkeys_enabled: bool = True
    #: A custom relying-party ID replacing the custom domain everywhere; None = the domain.
    rp_id: str | None = None
    rp_name: str = "flask-passkey"
    default_connection: str | None = None
    #: Auth0's tenant setting: ``organization`` may be an organization's name as well as its id,
    #: and tokens with an organization carry ``org_name`` besides ``org_id``.
    allow_organization_name_in_authentication_api: bool = False
    #: WebAuthn Related Origin Requests: origins on other registrable domains whose pages may
    #: use the tenant's RP ID, listed in ``/.well-known/webauthn`` and accepted in ceremonies.
    related_origins: tuple[str, ...] = ()

    def rp_id_for(self, domain: str) -> str:
        """The RP ID for a request that came on ``domain`` (a custom domain)."""
        return self.rp_id or domain


@dataclass(frozen=True)
class AndroidApp:
    package_name: str
    #: SHA-256 signing-certificate fingerprints as colon-separated upper-case hex.
    sha256_cert_fingerprints: tuple[str, ...]

    @property
    def origins(self) -> tuple[str, ...]:
        """The WebAuthn origins this app's passkey requests carry, one per signing certificate."""
        return tuple(android_origin(fp) for fp in self.sha256_cert_fingerprints)


def android_origin(sha256_fingerprint: str) -> str:
    """Return the WebAuthn origin of an Android app signed with the given certificate.

    ``sha256_fingerprint`` is the signing certificate's SHA-256 fingerprint as
    colon-separated hex (``"AB:CD:..."``, 32 bytes, case-insensitive), as printed
    by ``keytool`` or listed in ``assetlinks.json``. The result is
    ``"android:apk-key-hash:<base64url of the 32 bytes, no padding>"``.

    Raises ValueError if the fingerprint is not 32 colon-separated hex bytes.
    """
    parts = sha256_fingerprint.strip().split(":")
    if len(parts) != 32 or any(len(part) != 2 for part in parts):
        raise ValueError("expected a SHA-256 fingerprint as 32 colon-separated hex bytes")
    return "android:apk-key-hash:" + bytes_to_base64url(bytes.fromhex("".join(parts)))


@dataclass(frozen=True)
class IosApp:
    team_id: str
    bundle_id: str

    @property
    def app_id(self) -> str:
        return f"{self.team_id}.{self.bundle_id}"


@dataclass(frozen=True)
class RefreshTokenPolicy:
    """One of Auth0's ``refresh_token.policies`` (Multi-Resource Refresh Token): a refresh may
    ask for an access token for ``audience`` with any of ``scope``."""

    audience: str
    scope: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttestationPolicy:
    """Which authenticators may register a passkey (flask_passkey.core.attestation applies it).

    AAGUIDs are lower-case, hyphenated UUID strings. Without ``require_trusted`` the AAGUID is
    the authenticator's own claim; with it, an attestation chain the FIDO Metadata Service
    vouches for backs it.
    """

    conveyance: AttestationConveyance = "none"
    #: Refuse any attestation whose certificate chain does not verify against the roots the
    #: loaded MDS BLOB lists for its AAGUID ("none" and self attestation included).
    require_trusted: bool = False
    #: When not empty, only these AAGUIDs may register.
    allowed_aaguids: frozenset[str] = frozenset()
    denied_aaguids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Client:
    """An application registered with the tenant."""

    client_id: str
    name: str = ""
    #: Plain secret (compared in constant time) ...
    client_secret: str | None = None
    #: ... or its hash as produced by :func:`flask_passkey.core.client_secrets.hash_secret`.
    client_secret_hash: str | None = None
    app_type: AppType = "spa"
    is_first_party: bool = True
    oidc_conformant: bool = True
    grant_types: tuple[str, ...] = (WEBAUTHN_GRANT,)
    token_endpoint_auth_method: AuthMethod = "none"
    organization_usage: OrganizationUsage = "deny"
    connections: tuple[str, ...] = ()
    default_connection: str | None = None
    web_origins: tuple[str, ...] = ()
    #: Origins of pages that may run this client's ceremonies in a cross-origin iframe
    #: (clientData ``crossOrigin: true`` with that ``topOrigin``); none by default.
    allowed_top_origins: tuple[str, ...] = ()
    #: Auth0's "Allowed Origins (CORS)": pages that may read this client's answers
    #: (flask_passkey.web.cors); None means its ``web_origins``.
    allowed_origins: tuple[str, ...] | None = None
    android_apps: tuple[AndroidApp, ...] = ()
    ios_apps: tuple[IosApp, ...] = ()
    refresh_token_policies: tuple[RefreshTokenPolicy, ...] = ()
    #: A confidential client may start a ceremony (``/passkey/register``, ``/passkey/challenge``)
    #: without its secret, as @auth0/auth0-auth-js does; a wrong secret is still refused and
    #: the token endpoint still authenticates it.
    challenge_without_secret: bool = False
    #: Replaces its connection's attestation policy for this client's ceremonies.
    attestation: AttestationPolicy | None = None

    @property
    def is_confidential(self) -> bool:
        return self.token_endpoint_auth_method != "none"


@dataclass(frozen=True)
class Connection:
    """A user database (``realm``)."""

    name: str
    passkeys_enabled: bool = True
    required_identifiers: frozenset[Identifier] = field(
        default_factory=lambda: frozenset({"email"})
    )
    attestation: AttestationPolicy = field(default_factory=AttestationPolicy)


@dataclass(frozen=True)
class Organization:
    id: str
    name: str = ""
    #: Whether a sign-up naming the organization makes the new user a member (Auth0's
    #: behaviour, the default). Off, such a sign-up is refused: members are added by the
    #: operator (``flask passkey users add-to-organization``).
    assign_membership_on_signup: bool = True


@dataclass(frozen=True)
class User:
    """A user of one connection; ``user_handle`` is the WebAuthn ``user.id`` we generated."""

    id: str
    connection: str
    user_handle: bytes
    created_at: float
    email: str | None = None
    phone_number: str | None = None
    username: str | None = None
    #: Profile attributes other than identifiers: name, given_name, family_name, nickname, picture.
    profile: dict[str, str] = field(default_factory=dict)
    user_metadata: dict[str, str] = field(default_factory=dict)

    def identifier(self, kind: Identifier) -> str | None:
        value: str | None = getattr(self, kind)
        return value


@dataclass(frozen=True)
class Credential:
    """A registered passkey (public key credential source) of a user."""

    id: bytes
    user_id: str
    public_key: bytes
    sign_count: int
    rp_id: str
    created_at: float
    backup_eligible: bool = False
    backed_up: bool = False
    transports: tuple[str, ...] = ()
    aaguid: str = "00000000-0000-0000-0000-000000000000"
    last_used_at: float | None = None
    name: str = ""
    #: Registered with an attestation the policy trusted, from an authenticator whose metadata
    #: puts its keys in hardware, and not synced (flask_passkey.core.attestation): its sign-ins
    #: claim ``amr`` "hwk".
    hardware_attested: bool = False

    @property
    def device_type(self) -> Literal["single_device", "multi_device"]:
        return "multi_device" if self.backup_eligible else "single_device"
