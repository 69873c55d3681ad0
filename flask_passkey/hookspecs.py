"""Every hook of flask-passkey. Each docstring is the contract an implementation must keep.

Hooks are called with keyword arguments. An implementation may accept fewer arguments than the
specification names (pluggy passes only those it asks for), so specifications only ever grow
by new arguments. Built-in behaviour is registered as ordinary plugins marked ``trylast``, so an
operator's implementation of a first-result hook wins over the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from flask import Flask

    from flask_passkey.core.passkey_request import PasskeyRequest, ValidationContext
    from flask_passkey.events import PasskeyEvent
    from flask_passkey.models import Client, Connection, Organization, Tenant, User
    from flask_passkey.stores.sessions import SessionStore
    from flask_passkey.stores.users import UserStore

PROJECT = "flask_passkey"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- configuration --------------------------------------------------------------------------


@hookspec
def passkey_config_defaults() -> dict[str, Any]:  # type: ignore[empty-body]
    """Declare the ``PASSKEY_*`` configuration keys a plugin reads, with their defaults.

    Called once at ``init_app``; all results are merged. Declared keys are set with
    ``app.config.setdefault`` and are not reported as unknown keys.
    """


@hookspec
def passkey_check_config(config: Mapping[str, Any]) -> None:
    """Check the values of the keys a plugin declared, once, at ``init_app``.

    ``config`` is the app's configuration with every declared default filled in. Raise
    :class:`flask_passkey.ConfigurationError` for a bad value so the app refuses to
    start instead of failing at the first request.
    """


@hookspec
def passkey_init_app(app: Flask, blueprints: tuple[str, ...]) -> None:
    """Add to ``app`` what a plugin serves or observes beside the API: a route, a request
    signal, a CLI command.

    Called once, at the end of ``init_app``, after flask-passkey registered its blueprints
    (``blueprints`` are their names, to tell flask-passkey's requests from the app's own) and
    put its state in ``app.extensions["passkey"]``. Raise
    :class:`flask_passkey.ConfigurationError` to refuse to start.
    """


# -- tenant data (first result wins) ---------------------------------------------------------


@hookspec(firstresult=True)
def passkey_get_tenant() -> Tenant | None:
    """Return the tenant: its domains, RP ID and the passkeys switch.

    Called at ``init_app`` (to check the deployment) and once per request; keep it cheap.
    The first non-None result is used; returning None defers to the next implementation.
    """


@hookspec(firstresult=True)
def passkey_get_client(client_id: str) -> Client | None:
    """Return the client (application) with ``client_id``, or None if this plugin has none."""


@hookspec(firstresult=True)
def passkey_get_clients() -> list[Client] | None:
    """Return every client, for the well-known files that list apps (assetlinks, AASA)."""


@hookspec(firstresult=True)
def passkey_get_connection(name: str) -> Connection | None:
    """Return the connection (realm) called ``name``, or None if this plugin has none."""


@hookspec(firstresult=True)
def passkey_get_organization(organization_id: str) -> Organization | None:
    """Return the organization with ``organization_id``, or None if this plugin has none."""


@hookspec(firstresult=True)
def passkey_get_organization_by_name(name: str) -> Organization | None:
    """Return the organization called ``name``, ignoring case, or None if this plugin has none.

    Asked only when the tenant allows organization names in the API
    (``allow_organization_name_in_authentication_api``) and no organization has the id the
    request sent (:func:`passkey_get_organization` returned None).
    """


# -- validation steps ------------------------------------------------------------------------
# The core calls the steps in this order, each with all of its implementations. An
# implementation accepts by returning None and rejects by raising a PasskeyError, whose code
# and status reach the client unchanged. Steps 1 and 2 run before the body is read.


@hookspec
def passkey_check_passkeys_enabled(request: PasskeyRequest) -> None:
    """Step 1. Reject (built-in: 404 ``not_found``) when the tenant has passkeys turned off."""


@hookspec
def passkey_check_custom_domain(request: PasskeyRequest) -> None:
    """Step 2. Reject (built-in: 400 ``invalid_request``) a request not made on a custom domain."""


@hookspec
def passkey_authenticate_client(context: ValidationContext) -> None:
    """Step 4. Reject (built-in: 401 ``invalid_client``) a missing or wrong secret.

    An unknown ``client_id`` never reaches the step: the core answers 401 for it first.

    The built-in step compares secrets in constant time. A ``client_secret_post`` or
    ``client_secret_basic`` client may send its secret in the body or by HTTP Basic on every
    endpoint, as Auth0 accepts it (its SDKs mix the two); ``context.secret_source`` says which.
    """


@hookspec
def passkey_check_first_party(context: ValidationContext) -> None:
    """Step 5a. Reject (built-in: 400 ``unauthorized_client``) a third-party client."""


@hookspec
def passkey_check_grant_type(context: ValidationContext) -> None:
    """Step 5b. Reject (built-in: 400 ``unauthorized_client``) a client lacking the webauthn
    grant."""


@hookspec
def passkey_check_oidc_conformance(context: ValidationContext) -> None:
    """Step 5c. Reject (built-in: 400 ``unauthorized_client``) a client that is not OIDC
    conformant."""


@hookspec
def passkey_check_realm(context: ValidationContext) -> None:
    """Step 6. Reject (built-in: 400 ``invalid_request``) a realm that is unknown, not enabled
    for the client, or without passkeys."""


@hookspec
def passkey_check_organization(context: ValidationContext) -> None:
    """Step 7. Reject (built-in: 400 ``invalid_request``) an organization that is missing while
    the client requires one, present while it denies them, or unknown."""


# -- storage (first result wins) -------------------------------------------------------------


@hookspec(firstresult=True)
def passkey_session_store(app: Flask) -> SessionStore | None:
    """Return the store for pending ceremonies (a
    :class:`~flask_passkey.SessionStore`).

    Called once at ``init_app``; the store is kept for the life of the app. Built in: the SQL
    store (``PASSKEY_DATABASE_URL``, SQLite by default), then the in-memory one for
    ``memory://``.
    """


@hookspec(firstresult=True)
def passkey_user_store(app: Flask) -> UserStore | None:
    """Return the durable store of users, credentials, memberships, refresh tokens and signing
    keys (see :class:`flask_passkey.UserStore`).

    Called once at ``init_app``; the store is kept for the life of the app.
    """


@hookspec(firstresult=True)
def passkey_rate_limit_storage(app: Flask) -> str | None:
    """Return the flask-limiter storage URI for the per-IP limits (e.g. a shared Redis).

    Consulted once at ``init_app`` only when ``PASSKEY_RATE_LIMIT_STORAGE_URI`` is not set;
    None from every implementation means in-process memory.
    """


# -- tokens ----------------------------------------------------------------------------------


@hookspec
def passkey_token_claims(  # type: ignore[empty-body]
    user: User,
    client: Client,
    scope: tuple[str, ...],
    audience: str,
    organization_id: str | None,
) -> dict[str, Any]:
    """Return extra claims for the ID and access tokens about to be issued to ``user``.

    Every implementation is called and the results merged; on a conflict the implementation
    called first (the last registered, or a ``tryfirst`` one) wins. Registered claims
    (``iss``, ``sub``, ``aud``, ``exp``, ``iat``, ``scope``, ``amr``, ``org_id``...) cannot be
    replaced and are dropped. Namespace custom claims (``https://example.com/roles``).
    """


# -- events ----------------------------------------------------------------------------------


@hookspec
def passkey_event(event: PasskeyEvent) -> None:
    """Observe something that happened (challenge issued, login succeeded or failed, ...).

    Every implementation is called, synchronously, on the request's thread; keep it fast and
    never raise. Events carry no secrets, challenges, tokens or key material.
    """
