"""Tenant data from ``PASSKEY_TENANT`` (a mapping) or ``PASSKEY_TENANT_FILE`` (TOML or JSON).

The data is validated once, when the plugin is built at ``init_app``; lookups afterwards are
dictionary reads. A mistake in it is a :class:`TenantConfigurationError` with one line per
problem, each starting with its path in the data (``clients[0].web_origins[1]: ...``).
"""

from __future__ import annotations

import ipaddress
import json
import re
import tomllib
import uuid
from collections.abc import Iterator, Mapping
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

from flask_passkey.errors import ConfigurationError, TenantConfigurationError
from flask_passkey.hookspecs import hookimpl
from flask_passkey.models import (
    IDENTIFIERS,
    WEBAUTHN_GRANT,
    AndroidApp,
    AttestationPolicy,
    Client,
    Connection,
    IosApp,
    Organization,
    RefreshTokenPolicy,
    Tenant,
)

#: The summary line of every invalid tenant.
_INVALID = "Invalid tenant configuration:"


def validation_messages(messages: Any, path: str = "") -> Iterator[str]:
    """marshmallow's nested error messages as lines ``clients[0].web_origins[1]: message``.

    The one formatter of invalid tenant data and clients, for start-up errors and the doctor
    alike. marshmallow's messages say what is wrong, never the value.
    """
    if isinstance(messages, Mapping):
        for key, nested in messages.items():
            if key == "_schema":  # the object as a whole (e.g. not a mapping): no path of its own
                where = path
            elif isinstance(key, int):
                where = f"{path}[{key}]"
            else:
                where = f"{path}.{key}".lstrip(".")
            yield from validation_messages(nested, where)
    elif isinstance(messages, list | tuple):
        for message in messages:
            yield from validation_messages(message, path)
    else:
        yield f"{path}: {messages}" if path else str(messages)


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


def _aaguid(value: str) -> None:
    try:
        uuid.UUID(value)
    except ValueError:
        raise ValidationError(
            "must be an AAGUID (a UUID such as 00000000-...-000000000000)."
        ) from None


class _AttestationSchema(Schema):
    """A connection's (or a client's overriding) ``attestation`` policy."""

    class Meta:
        unknown = RAISE

    conveyance = fields.String(
        load_default="none", validate=validate.OneOf(["none", "indirect", "direct", "enterprise"])
    )
    require_trusted = fields.Boolean(load_default=False)
    allowed_aaguids = fields.List(fields.String(validate=_aaguid), load_default=list)
    denied_aaguids = fields.List(fields.String(validate=_aaguid), load_default=list)

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> AttestationPolicy:
        if data["require_trusted"] and data["conveyance"] not in ("direct", "enterprise"):
            raise ValidationError(
                "a trusted attestation needs conveyance 'direct' or 'enterprise' (with 'none' or "
                "'indirect' the browser may strip or anonymize it).",
                "conveyance",
            )
        return AttestationPolicy(
            conveyance=data["conveyance"],
            require_trusted=data["require_trusted"],
            allowed_aaguids=frozenset(str(uuid.UUID(a)) for a in data["allowed_aaguids"]),
            denied_aaguids=frozenset(str(uuid.UUID(a)) for a in data["denied_aaguids"]),
        )


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
    allowed_origins = fields.List(
        fields.String(validate=validate.Regexp(r"^https?://[^/]+$")), load_default=None
    )
    android_apps = fields.List(fields.Nested(_AndroidSchema), load_default=list)
    ios_apps = fields.List(fields.Nested(_IosSchema), load_default=list)
    refresh_token = fields.Nested(_RefreshTokenSchema, load_default=dict)
    challenge_without_secret = fields.Boolean(load_default=False)
    attestation = fields.Nested(_AttestationSchema, load_default=None)

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
        if data["challenge_without_secret"] and data["token_endpoint_auth_method"] == "none":
            raise ValidationError(
                "only a confidential client has a secret to start a challenge without.",
                "challenge_without_secret",
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
    attestation = fields.Nested(_AttestationSchema, load_default=AttestationPolicy)

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> Connection:
        return Connection(
            data["name"],
            data["passkeys_enabled"],
            frozenset(data["required_identifiers"]),
            data["attestation"],
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
    allow_organization_name_in_authentication_api = fields.Boolean(load_default=False)
    related_origins = fields.List(
        fields.String(validate=validate.Regexp(r"^https://[^/]+$")), load_default=list
    )
    connections = fields.List(fields.Nested(_ConnectionSchema), load_default=list)
    clients = fields.List(fields.Nested(_ClientSchema), load_default=list)
    organizations = fields.List(fields.Nested(_OrganizationSchema), load_default=list)


class ConfigTenant:
    """Tenant data held in memory, validated at construction."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        try:
            loaded = TenantSchema().load(data)
        except ValidationError as error:  # its traceback would add nothing to the lines
            raise TenantConfigurationError(_INVALID, validation_messages(error.messages)) from None
        self.tenant = Tenant(
            default_domain=loaded["default_domain"],
            custom_domains=tuple(loaded["custom_domains"]),
            passkeys_enabled=loaded["passkeys_enabled"],
            rp_id=loaded["rp_id"],
            rp_name=loaded["rp_name"],
            default_connection=loaded["default_connection"],
            allow_organization_name_in_authentication_api=loaded[
                "allow_organization_name_in_authentication_api"
            ],
            related_origins=tuple(loaded["related_origins"]),
        )
        self.connections: dict[str, Connection] = {c.name: c for c in loaded["connections"]}
        self.clients: dict[str, Client] = {c.client_id: c for c in loaded["clients"]}
        self.organizations: dict[str, Organization] = {o.id: o for o in loaded["organizations"]}
        self.organizations_by_name = {
            o.name.casefold(): o for o in loaded["organizations"] if o.name
        }
        self._check_references(loaded)

    def _check_references(self, loaded: dict[str, Any]) -> None:
        problems = [f"{problem}." for problem in domain_problems(self.tenant)]
        problems += self._unknown_connection("default_connection", self.tenant.default_connection)
        first_of: dict[str, int] = {}
        for index, client in enumerate(loaded["clients"]):
            where = f"clients[{index}]"
            first = first_of.setdefault(client.client_id, index)
            if first != index:
                problems.append(
                    f"{where}.client_id: {client.client_id!r} is already the client_id of "
                    f"clients[{first}]."
                )
            for position, name in enumerate(client.connections):
                problems += self._unknown_connection(f"{where}.connections[{position}]", name)
            problems += self._unknown_connection(
                f"{where}.default_connection", client.default_connection
            )
        first_org: dict[str, int] = {}
        first_name: dict[str, int] = {}
        for index, organization in enumerate(loaded["organizations"]):
            where = f"organizations[{index}]"
            first = first_org.setdefault(organization.id, index)
            if first != index:
                problems.append(
                    f"{where}.id: {organization.id!r} is already the id of organizations[{first}]."
                )
            if organization.name:
                first = first_name.setdefault(organization.name.casefold(), index)
                if first != index:
                    problems.append(
                        f"{where}.name: {organization.name!r} is already the name of "
                        f"organizations[{first}] (names are matched ignoring case)."
                    )
        if problems:
            raise TenantConfigurationError(_INVALID, problems)

    def _unknown_connection(self, where: str, name: str | None) -> list[str]:
        if name is None or name in self.connections:
            return []
        return [f"{where}: {name!r} is not a connection of the tenant."]

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

    @hookimpl(trylast=True)
    def passkey_get_organization_by_name(self, name: str) -> Organization | None:
        return self.organizations_by_name.get(name.casefold())


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
    *, tenant: Mapping[str, Any] | None, tenant_file: str | None, root_path: str
) -> Mapping[str, Any] | None:
    """The tenant mapping from config, else from the named TOML/JSON file, else None.

    A relative ``tenant_file`` is relative to ``root_path`` (the app's, as for Flask's
    ``config.from_file``), never to the working directory of whatever process starts the app.
    """
    if tenant is not None:
        return tenant
    if tenant_file is None:
        return None
    path = Path(root_path, tenant_file)
    try:
        text = path.read_text(encoding="utf-8")
        data: Any = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except OSError as error:
        reason = error.strerror or type(error).__name__
    except ValueError as error:  # a parse error says where, never what the file holds
        reason = str(error)
    else:
        if isinstance(data, Mapping):
            return data
        reason = "its top level must be an object"
    relative = "" if Path(tenant_file).is_absolute() else f" ({tenant_file!r} in app.root_path)"
    raise ConfigurationError(f"PASSKEY_TENANT_FILE: cannot read {path}{relative}: {reason}.")
