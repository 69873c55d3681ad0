"""Runs the validation hooks in the order of ``spec/api.md`` and resolves tenant entities."""

from __future__ import annotations

from typing import Any

from .context import Endpoint, PasskeyRequest, SecretSource, ValidationContext
from .errors import ConfigurationError, InvalidClient, InvalidRequest
from .models import Tenant


class Validator:
    """The plugin-driven checks every client-facing endpoint makes before doing any work."""

    def __init__(self, hook: Any) -> None:
        self._hook = hook

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
    ) -> ValidationContext:
        """Steps 4 to 7: client authentication, client settings, realm, organization."""
        client = self._hook.passkey_get_client(client_id=client_id)
        if client is None:
            raise InvalidClient("Unknown client.")
        connection_name = (
            realm or client.default_connection or request.tenant.default_connection
        )
        context = ValidationContext(
            request=request,
            client_id=client_id,
            client_secret=client_secret,
            secret_source=secret_source,
            realm=realm,
            connection_name=connection_name,
            organization_id=organization,
            client=client,
            connection=(
                self._hook.passkey_get_connection(name=connection_name)
                if connection_name is not None
                else None
            ),
            organization=(
                self._hook.passkey_get_organization(organization_id=organization)
                if organization is not None
                else None
            ),
        )
        hook = self._hook
        hook.passkey_authenticate_client(context=context)
        hook.passkey_check_first_party(context=context)
        hook.passkey_check_grant_type(context=context)
        hook.passkey_check_oidc_conformance(context=context)
        hook.passkey_check_realm(context=context)
        hook.passkey_check_organization(context=context)
        if context.connection is None:
            # The realm step was removed and nothing replaced it: we still cannot go on.
            raise InvalidRequest(f"Unknown realm {connection_name!r}.")
        return context
