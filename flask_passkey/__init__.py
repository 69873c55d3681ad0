"""flask-passkey: passwordless sign-up and sign-in with passkeys behind an Auth0-compatible API.

The names below are the public API, for host apps (:class:`Passkey`, its ``require_token``
decorator and :data:`current_token`) and plugin authors (:data:`hookimpl`, the types hooks
take and return, the errors a plugin raises, the store contracts); ``flask_passkey.testing``
is the public test support. Everything else is internal and may change without notice.
"""

from __future__ import annotations

from flask_passkey import moved
from flask_passkey.core.access import AccessToken
from flask_passkey.core.audiences import MY_ACCOUNT_SCOPES
from flask_passkey.core.authenticators import AuthenticatorInfo
from flask_passkey.core.client_secrets import hash_secret
from flask_passkey.core.clients import ClientStore, ClientTaken
from flask_passkey.core.passkey_request import (
    Endpoint,
    PasskeyRequest,
    SecretSource,
    ValidationContext,
)
from flask_passkey.errors import (
    AccessDenied,
    BackendUnavailable,
    ConfigurationError,
    Conflict,
    InsufficientScope,
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidToken,
    NotFound,
    PasskeyError,
    TemporarilyUnavailable,
    TenantConfigurationError,
    TooManyRequests,
    UnauthorizedClient,
)
from flask_passkey.events import EventName, PasskeyEvent
from flask_passkey.extension import Passkey, client_ip, known_clients
from flask_passkey.hookspecs import hookimpl
from flask_passkey.models import (
    REFRESH_TOKEN_GRANT,
    WEBAUTHN_GRANT,
    AndroidApp,
    AttestationPolicy,
    Client,
    Connection,
    Credential,
    Identifier,
    IosApp,
    Organization,
    RefreshTokenPolicy,
    Tenant,
    User,
)
from flask_passkey.stores.limit_counters import LimitWindow, RememberingStorage
from flask_passkey.stores.sessions import AuthSession, SessionStore
from flask_passkey.stores.users import (
    CredentialTaken,
    CredentialWithUserStore,
    IdentifierTaken,
    RefreshGrant,
    SigningKey,
    UserStore,
)
from flask_passkey.web.blueprint import event_endpoint
from flask_passkey.web.resource import current_token

moved.install()

__all__ = [
    "MY_ACCOUNT_SCOPES",
    "REFRESH_TOKEN_GRANT",
    "WEBAUTHN_GRANT",
    "AccessDenied",
    "AccessToken",
    "AndroidApp",
    "AttestationPolicy",
    "AuthSession",
    "AuthenticatorInfo",
    "BackendUnavailable",
    "Client",
    "ClientStore",
    "ClientTaken",
    "ConfigurationError",
    "Conflict",
    "Connection",
    "Credential",
    "CredentialTaken",
    "CredentialWithUserStore",
    "Endpoint",
    "EventName",
    "Identifier",
    "IdentifierTaken",
    "InsufficientScope",
    "InvalidClient",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidScope",
    "InvalidToken",
    "IosApp",
    "LimitWindow",
    "NotFound",
    "Organization",
    "Passkey",
    "PasskeyError",
    "PasskeyEvent",
    "PasskeyRequest",
    "RefreshGrant",
    "RefreshTokenPolicy",
    "RememberingStorage",
    "SecretSource",
    "SessionStore",
    "SigningKey",
    "TemporarilyUnavailable",
    "Tenant",
    "TenantConfigurationError",
    "TooManyRequests",
    "UnauthorizedClient",
    "User",
    "UserStore",
    "ValidationContext",
    "client_ip",
    "current_token",
    "event_endpoint",
    "hash_secret",
    "hookimpl",
    "known_clients",
]
