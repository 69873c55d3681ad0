"""Tenant data from ``PASSKEY_TENANT`` (a mapping) or ``PASSKEY_TENANT_FILE`` (TOML or JSON).

The data is validated once, when the plugin is built at ``init_app``; lookups afterwards are
dictionary reads.
"""

from __future__ import annotations

import ipaddress
import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
)

from ..errors import ConfigurationError
from ..hookspecs import hookimpl
from ..models import (
    IDENTIFIERS,
    WEBAUTHN_GRANT,
    AndroidApp,
    Client,
    Connection,
    IosApp,
    Organization,
    RefreshTokenPolicy,
    Tenant,
)

_FINGERPRINT = re.compile(r"^([0-9A-F]{2}:){31}[0-9A-F]{2}$")


def _domain(value: str) -> None:
    if value != value.lower() or not value or "/" in value or ":" in value:
        raise ValidationError("must be a lower-case host name without scheme or port.")


class _AndroidSchema(Schema):
    class Meta:
        unknown = RAISE

    package_name = fields.String(required=True, validate=validate.Length(min=1))
    sha256_cert_fingerprints = fields.List(
        fields.String(
            validate=validate.Regexp(
                _FINGERPRINT, error="must be 32 colon-separated upper-case hex bytes."
            )
        ),
        required=True,
        validate=validate.Length(min=1),
    )

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> AndroidApp:
        return AndroidApp(data["package_name"], tuple(data["sha256_cert_fingerprints"]))


class _IosSchema(Schema):
    class Meta:
        unknown = RAISE

    team_id = fields.String(required=True, validate=validate.Regexp(r"^[A-Z0-9]{10}$"))
    bundle_id = fields.String(required=True, validate=validate.Length(min=1))

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> IosApp:
        return IosApp(**data)


class _RefreshTokenPolicySchema(Schema):
    class Meta:
        unknown = RAISE

    audience = fields.String(required=True, validate=validate.Length(min=1))
    scope = fields.List(fields.String(validate=validate.Length(min=1)), load_default=list)

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> RefreshTokenPolicy:
        return RefreshTokenPolicy(data["audience"], tuple(data["scope"]))


class _RefreshTokenSchema(Schema):
    """Auth0's client ``refresh_token`` object; of it, only the MRRT ``policies``."""

    class Meta:
        unknown = RAISE

    policies = fields.List(fields.Nested(_RefreshTokenPolicySchema), load_default=list)


class _ClientSchema(Schema):
    class Meta:
        unknown = RAISE

    client_id = fields.String(required=True, validate=validate.Length(min=1))
    name = fields.String(load_default="")
    client_secret = fields.String(load_default=None)
    client_secret_hash = fields.String(
        load_default=None, validate=validate.Regexp(r"sha256\$[0-9a-f]{64}\Z")
    )
    app_type = fields.String(
        load_default="spa",
        validate=validate.OneOf(["native", "spa", "regular_web", "non_interactive"]),
    )
    is_first_party = fields.Boolean(load_default=True)
    oidc_conformant = fields.Boolean(load_default=True)
    grant_types = fields.List(fields.String(), load_default=lambda: [WEBAUTHN_GRANT])
    token_endpoint_auth_method = fields.String(
        load_default="none",
        validate=validate.OneOf(["none", "client_secret_post", "client_secret_basic"]),
    )
    organization_usage = fields.String(
        load_default="deny", validate=validate.OneOf(["deny", "allow", "require"])
    )
    connections = fields.List(fields.String(), load_default=list)
    default_connection = fields.String(load_default=None)
    web_origins = fields.List(
        fields.String(validate=validate.Regexp(r"^https?://[^/]+$")), load_default=list
    )
    allowed_top_origins = fields.List(
        fields.String(validate=validate.Regexp(r"^https://[^/]+$")), load_default=list
    )
    android_apps = fields.List(fields.Nested(_AndroidSchema), load_default=list)
    ios_apps = fields.List(fields.Nested(_IosSchema), load_default=list)
    refresh_token = fields.Nested(_RefreshTokenSchema, load_default=dict)

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> Client:
        if data["client_secret"] and data["client_secret_hash"]:
            raise ValidationError(
                "give client_secret or client_secret_hash, not both.", "client_secret_hash"
            )
        if data["token_endpoint_auth_method"] != "none" and not (
            data["client_secret"] or data["client_secret_hash"]
        ):
            raise ValidationError(
                "a confidential client needs client_secret or client_secret_hash.",
                "token_endpoint_auth_method",
            )
        refresh_token = data.pop("refresh_token")
        values: dict[str, Any] = {
            key: tuple(value) if isinstance(value, list) else value for key, value in data.items()
        }
        return Client(**values, refresh_token_policies=tuple(refresh_token.get("policies", ())))


class _ConnectionSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(min=1))
    passkeys_enabled = fields.Boolean(load_default=True)
    required_identifiers = fields.List(
        fields.String(validate=validate.OneOf(IDENTIFIERS)),
        load_default=lambda: ["email"],
    )

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> Connection:
        return Connection(
            data["name"],
            data["passkeys_enabled"],
            frozenset(data["required_identifiers"]),
        )


class _OrganizationSchema(Schema):
    class Meta:
        unknown = RAISE

    id = fields.String(required=True, validate=validate.Length(min=1))
    name = fields.String(load_default="")
    assign_membership_on_signup = fields.Boolean(load_default=True)

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> Organization:
        return Organization(**data)


class TenantSchema(Schema):
    """The format of ``PASSKEY_TENANT`` / ``PASSKEY_TENANT_FILE`` (documented in the README)."""

    class Meta:
        unknown = RAISE

    default_domain = fields.String(required=True, validate=_domain)
    custom_domains = fields.List(
        fields.String(validate=_domain),
        required=True,
        validate=validate.Length(min=1, error="configure at least one custom domain."),
    )
    passkeys_enabled = fields.Boolean(load_default=True)
    rp_id = fields.String(load_default=None, validate=_domain)
    rp_name = fields.String(load_default="flask-passkey")
    default_connection = fields.String(load_default=None)
    connections = fields.List(fields.Nested(_ConnectionSchema), load_default=list)
    clients = fields.List(fields.Nested(_ClientSchema), load_default=list)
    organizations = fields.List(fields.Nested(_OrganizationSchema), load_default=list)


class ConfigTenant:
    """Tenant data held in memory, validated at construction."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        try:
            loaded = TenantSchema().load(data)
        except ValidationError as error:
            raise ConfigurationError(f"Invalid tenant configuration: {error.messages}") from error
        self.tenant = Tenant(
            default_domain=loaded["default_domain"],
            custom_domains=tuple(loaded["custom_domains"]),
            passkeys_enabled=loaded["passkeys_enabled"],
            rp_id=loaded["rp_id"],
            rp_name=loaded["rp_name"],
            default_connection=loaded["default_connection"],
        )
        self.connections: dict[str, Connection] = {c.name: c for c in loaded["connections"]}
        self.clients: dict[str, Client] = {c.client_id: c for c in loaded["clients"]}
        self.organizations: dict[str, Organization] = {o.id: o for o in loaded["organizations"]}
        self._check_references(loaded)

    def _check_references(self, loaded: dict[str, Any]) -> None:
        problems = domain_problems(self.tenant)
        tenant = self.tenant
        if len(self.clients) != len(loaded["clients"]):
            problems.append("client_id values must be unique")
        if (
            tenant.default_connection is not None
            and tenant.default_connection not in self.connections
        ):
            problems.append(f"default_connection {tenant.default_connection!r} is not a connection")
        for client in self.clients.values():
            for name in (*client.connections, client.default_connection):
                if name is not None and name not in self.connections:
                    problems.append(
                        f"client {client.client_id!r} names unknown connection {name!r}"
                    )
        if problems:
            raise ConfigurationError("Invalid tenant configuration: " + "; ".join(problems) + ".")

    @hookimpl(trylast=True)
    def passkey_get_tenant(self) -> Tenant:
        return self.tenant

    @hookimpl(trylast=True)
    def passkey_get_client(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)

    @hookimpl(trylast=True)
    def passkey_get_clients(self) -> list[Client]:
        return list(self.clients.values())

    @hookimpl(trylast=True)
    def passkey_get_connection(self, name: str) -> Connection | None:
        return self.connections.get(name)

    @hookimpl(trylast=True)
    def passkey_get_organization(self, organization_id: str) -> Organization | None:
        return self.organizations.get(organization_id)


def domain_problems(tenant: Tenant) -> list[str]:
    """What is wrong with the tenant's domains and RP ID, whoever provides the tenant."""
    problems: list[str] = []
    if tenant.default_domain in tenant.custom_domains:
        problems.append("the default domain cannot also be a custom domain")
    if tenant.rp_id is not None:
        problems.extend(
            f"rp_id {tenant.rp_id!r} is not a registrable suffix of {domain!r}"
            for domain in tenant.custom_domains
            if domain != tenant.rp_id and not domain.endswith("." + tenant.rp_id)
        )
    named = [("custom domain", d) for d in tenant.custom_domains]
    if tenant.rp_id is not None:
        named.append(("rp_id", tenant.rp_id))
    for what, domain in named:
        if _is_ip_address(domain):
            problems.append(f"{what} {domain!r} is an IP address: never a valid RP ID")
        elif "." not in domain and domain != "localhost":
            problems.append(f"{what} {domain!r} is a top-level domain: never a valid RP ID")
    return problems


def load_client(data: Mapping[str, Any]) -> Client:
    """A client from its tenant-file form (``[[clients]]``), checked by the same rules.

    Raises marshmallow's ValidationError, whose ``messages`` name each bad field.
    """
    client: Client = _ClientSchema().load(data)
    return client


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def load_tenant_data(
    *, tenant: Mapping[str, Any] | None, tenant_file: str | None
) -> Mapping[str, Any] | None:
    """The tenant mapping from config, else from the named TOML/JSON file, else None."""
    if tenant is not None:
        return tenant
    if tenant_file is None:
        return None
    path = Path(tenant_file)
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            data: Mapping[str, Any] = json.loads(text)
        else:
            data = tomllib.loads(text)
    except (OSError, ValueError) as error:
        raise ConfigurationError(
            f"Cannot read PASSKEY_TENANT_FILE {tenant_file!r}: {error}"
        ) from error
    return data
