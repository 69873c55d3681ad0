"""Runs the validation hooks in their fixed order and resolves tenant entities.

The order: passkeys enabled, custom domain (every endpoint); then, once the body is read, the
client's authentication, first party, grant type, OIDC conformance, realm and organization
(docs/plugins.md, "Validation steps"). A step that fails stops the request with its error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import SimpleNamespace

import pluggy

from flask_passkey.core.passkey_request import (
    Endpoint,
    PasskeyRequest,
    SecretSource,
    ValidationContext,
)
from flask_passkey.errors import ConfigurationError, InvalidClient, InvalidRequest
from flask_passkey.models import Organization, Tenant

#: The hooks that check a client-facing request once its body is read, in order.
ALL_CLIENT_STEPS = (
    "passkey_authenticate_client",
    "passkey_check_first_party",
    "passkey_check_grant_type",
    "passkey_check_oidc_conformance",
    "passkey_check_realm",
    "passkey_check_organization",
)
#: What the revocation endpoint checks: only who the client is (RFC 7009 §2.1).
REVOKE_STEPS = ("passkey_authenticate_client",)


#: The hooks a validation calls, looked up once.
_HOOKS = (
    "passkey_get_tenant",
    "passkey_check_passkeys_enabled",
    "passkey_check_custom_domain",
    "passkey_get_client",
    "passkey_get_connection",
    "passkey_get_organization",
    "passkey_get_organization_by_name",
    *ALL_CLIENT_STEPS,
)


class Validator:
    """The plugin-driven checks every client-facing endpoint makes before doing any work."""

    def __init__(self, manager: pluggy.PluginManager) -> None:
        self._hook = SimpleNamespace(**{name: getattr(manager.hook, name) for name in _HOOKS})
        self._steps = [(step, getattr(self._hook, step)) for step in ALL_CLIENT_STEPS]

    def tenant(self) -> Tenant:
        tenant: Tenant | None = self._hook.passkey_get_tenant()
        if tenant is None:
            raise ConfigurationError(
                "No tenant configured: set PASSKEY_TENANT or PASSKEY_TENANT_FILE, "
                "or register a plugin implementing passkey_get_tenant."
            )
        return tenant

    def check_request(
        self, *, endpoint: Endpoint, host: str, port: int | None, client_ip: str
    ) -> PasskeyRequest:
        """Steps 1 and 2: passkeys enabled, custom domain."""
        request = PasskeyRequest(endpoint, host, port, client_ip, self.tenant())
        self._hook.passkey_check_passkeys_enabled(request=request)
        self._hook.passkey_check_custom_domain(request=request)
        return request

    def check_client(
        self,
        request: PasskeyRequest,
        *,
        client_id: str,
        client_secret: str | None,
        secret_source: SecretSource,
        realm: str | None,
        organization: str | None,
        user_profile: Mapping[str, str] | None = None,
        steps: Sequence[str] = ALL_CLIENT_STEPS,
    ) -> ValidationContext:
        """Steps 4 to 7 (or the given subset, in their fixed order) for a known client.

        Each grant of the token endpoint names its own subset
        (:attr:`flask_passkey.core.grant_types.GrantType.steps`).
        """
        client = self._hook.passkey_get_client(client_id=client_id)
        if client is None:
            raise InvalidClient("Unknown client.")
        connection_name = realm or client.default_connection or request.tenant.default_connection
        known = (
            self._organization(request.tenant, organization)
            if organization is not None and "passkey_check_organization" in steps
            else None
        )
        context = ValidationContext(
            request=request,
            client_id=client_id,
            client_secret=client_secret,
            secret_source=secret_source,
            realm=realm,
            connection_name=connection_name,
            organization_id=known.id if known is not None else organization,
            client=client,
            connection=(
                self._hook.passkey_get_connection(name=connection_name)
                if connection_name is not None and "passkey_check_realm" in steps
                else None
            ),
            organization=known,
            user_profile=user_profile,
        )
        for step, call in self._steps:
            if step in steps:
                call(context=context)
        if "passkey_check_realm" in steps and context.connection is None:
            # The realm step was removed and nothing replaced it: we still cannot go on.
            raise InvalidRequest(f"Unknown realm {connection_name!r}.")
        return context

    def _organization(self, tenant: Tenant, sent: str) -> Organization | None:
        """The organization ``sent`` names: by id, else by name when the tenant allows names."""
        found: Organization | None = self._hook.passkey_get_organization(organization_id=sent)
        if found is None and tenant.allow_organization_name_in_authentication_api:
            found = self._hook.passkey_get_organization_by_name(name=sent)
        return found
