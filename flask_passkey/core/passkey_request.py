"""What a validation step sees: the request facts and the tenant entities it names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from flask_passkey.models import Client, Connection, Organization, Tenant

Endpoint = Literal["challenge", "register", "token", "revoke", "discovery", "account", "userinfo"]
SecretSource = Literal["none", "post", "basic"]


@dataclass(frozen=True)
class PasskeyRequest:
    """An incoming request, known before its body is read."""

    endpoint: Endpoint
    #: Host name of the request (lower case, no port); from X-Forwarded-Host only behind a
    #: trusted proxy.
    host: str
    #: The port of the Host header, or None when it names none.
    port: int | None
    client_ip: str
    tenant: Tenant

    @property
    def is_custom_domain(self) -> bool:
        return self.host in self.tenant.custom_domains

    @property
    def origin(self) -> str:
        """The https origin of the custom domain the request came on (port kept if not 443)."""
        return https_origin(self.host, self.port)


def https_origin(host: str, port: int | None) -> str:
    """``https://host``, with ``:port`` unless it is None or 443: the origin tokens issued on
    ``host`` name (their issuer is this origin and ``/``)."""
    if port is None or port == 443:
        return f"https://{host}"
    return f"https://{host}:{port}"


@dataclass(frozen=True)
class ValidationContext:
    """A request whose body has been read, with the client, connection and organization it names.

    ``client`` is always a known client (the core answers 401 for an unknown ``client_id``
    before any step runs); ``connection`` and ``organization`` are None when the request names
    none or an unknown one, and the steps that own those checks reject such requests.
    """

    request: PasskeyRequest
    client_id: str
    client_secret: str | None
    #: Where the secret came from: the body (``post``), HTTP Basic (``basic``) or nowhere.
    secret_source: SecretSource
    #: ``realm`` as sent, and the connection it resolved to (the client's or tenant's default
    #: when ``realm`` was omitted).
    realm: str | None
    connection_name: str | None
    #: The id of the organization the request names (when the tenant allows names, the id of
    #: the one it names by name), or ``organization`` as sent when no organization has it.
    organization_id: str | None
    client: Client
    connection: Connection | None
    organization: Organization | None
    #: The validated ``user_profile`` of a sign-up (``/passkey/register``); None elsewhere.
    user_profile: Mapping[str, str] | None = None
