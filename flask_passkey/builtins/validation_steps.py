"""The built-in validation steps, each its own plugin so it can be blocked (docs/plugins.md
lists them, with the step each takes and the error it answers).

Registered under the names in :data:`STEPS` (``PASSKEY_DISABLED_PLUGINS`` takes these names).
"""

from __future__ import annotations

from flask_passkey.core.client_secrets import secret_matches
from flask_passkey.core.passkey_request import PasskeyRequest, ValidationContext
from flask_passkey.errors import InvalidClient, InvalidRequest, NotFound, UnauthorizedClient
from flask_passkey.hookspecs import hookimpl
from flask_passkey.models import WEBAUTHN_GRANT


class PasskeysEnabled:
    @hookimpl(trylast=True)
    def passkey_check_passkeys_enabled(self, request: PasskeyRequest) -> None:
        if not request.tenant.passkeys_enabled:
            raise NotFound("The Passkey APIs are not enabled for this tenant.")


class CustomDomain:
    @hookimpl(trylast=True)
    def passkey_check_custom_domain(self, request: PasskeyRequest) -> None:
        if not request.is_custom_domain:
            raise InvalidRequest("Passkey requests must be made against a custom domain.")


#: Where a client's ``challenge_without_secret`` waives a missing secret.
_CHALLENGES = ("challenge", "register")


class ClientAuthentication:
    @hookimpl(trylast=True)
    def passkey_authenticate_client(self, context: ValidationContext) -> None:
        client = context.client
        if not client.is_confidential:
            return
        # The secret may come in the body or by HTTP Basic whichever of the two methods the
        # client registered, on every endpoint, as Auth0 accepts it: its SDKs mix them
        # (auth0-server-python posts the secret for the passkey grant, Basic for a refresh).
        if context.client_secret is None:
            if client.challenge_without_secret and context.request.endpoint in _CHALLENGES:
                return
            raise InvalidClient("Client authentication is required for this client.")
        if not secret_matches(
            context.client_secret,
            secret=client.client_secret,
            secret_hash=client.client_secret_hash,
        ):
            raise InvalidClient("Invalid client credentials.")


class FirstParty:
    @hookimpl(trylast=True)
    def passkey_check_first_party(self, context: ValidationContext) -> None:
        if not context.client.is_first_party:
            raise UnauthorizedClient("Third-party applications cannot use the passkey APIs.")


class GrantType:
    @hookimpl(trylast=True)
    def passkey_check_grant_type(self, context: ValidationContext) -> None:
        if WEBAUTHN_GRANT not in context.client.grant_types:
            raise UnauthorizedClient(
                f"The client is not configured for the grant type {WEBAUTHN_GRANT}."
            )


class OidcConformance:
    @hookimpl(trylast=True)
    def passkey_check_oidc_conformance(self, context: ValidationContext) -> None:
        if not context.client.oidc_conformant:
            raise UnauthorizedClient("The client must be OIDC conformant to use passkeys.")


class Realm:
    @hookimpl(trylast=True)
    def passkey_check_realm(self, context: ValidationContext) -> None:
        if context.connection_name is None:
            raise InvalidRequest("realm is required: the client has no default connection.")
        if context.connection is None:
            raise InvalidRequest(f"Unknown realm {context.connection_name!r}.")
        if context.connection.name not in context.client.connections:
            raise InvalidRequest(
                f"The realm {context.connection.name!r} is not enabled for this client."
            )
        if not context.connection.passkeys_enabled:
            raise InvalidRequest(
                f"Passkeys are not enabled for the realm {context.connection.name!r}."
            )


class OrganizationUsage:
    @hookimpl(trylast=True)
    def passkey_check_organization(self, context: ValidationContext) -> None:
        usage = context.client.organization_usage
        if context.organization_id is None:
            if usage == "require":
                raise InvalidRequest("organization is required for this client.")
            return
        if usage == "deny":
            raise InvalidRequest("This client does not accept an organization.")
        if context.organization is None:
            raise InvalidRequest(f"Unknown organization {context.organization_id!r}.")


#: Plugin name -> step, in the order the core calls them.
STEPS: dict[str, object] = {
    "passkeys_enabled": PasskeysEnabled(),
    "custom_domain": CustomDomain(),
    "client_authentication": ClientAuthentication(),
    "first_party": FirstParty(),
    "grant_type": GrantType(),
    "oidc_conformance": OidcConformance(),
    "realm": Realm(),
    "organization": OrganizationUsage(),
}
