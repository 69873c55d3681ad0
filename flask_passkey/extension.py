"""The Flask extension: ``Passkey(app)`` or ``Passkey().init_app(app)``."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pluggy
from flask import Flask, current_app, has_app_context, has_request_context
from flask_limiter import Limiter

from flask_passkey.builtins.tenant_config import ConfigTenant, load_tenant_data
from flask_passkey.cli.commands import passkey_cli
from flask_passkey.config import Settings, check_unknown_keys
from flask_passkey.core.access import AccessVerifier
from flask_passkey.core.attestation import AttestationGate, metadata_from_settings
from flask_passkey.core.authenticators import (
    AuthenticatorInfo,
    AuthenticatorNames,
    authenticator_names,
)
from flask_passkey.core.ceremony import Ceremonies
from flask_passkey.core.dpop import DPoPVerifier
from flask_passkey.core.grants import Grants
from flask_passkey.core.tokens import KeyRing, TokenIssuer, configured_signing_keys
from flask_passkey.core.validation import Validator
from flask_passkey.errors import ConfigurationError
from flask_passkey.events import PasskeyEvent
from flask_passkey.models import Client, Tenant
from flask_passkey.plugins import build_plugin_manager
from flask_passkey.stores.sessions import SessionStore
from flask_passkey.stores.users import UserStore
from flask_passkey.web.account_views import create_account_blueprint
from flask_passkey.web.blueprint import (
    ACCOUNT_BLUEPRINT_NAME,
    BLUEPRINT_NAME,
    LIMITED_BLUEPRINTS,
    USERINFO_BLUEPRINT_NAME,
    refuse_unroutable_hosts,
    with_request_details,
)
from flask_passkey.web.cors import install_cors
from flask_passkey.web.discovery_views import DISCOVERY_BLUEPRINT_NAME
from flask_passkey.web.lockout import Lockout, create_lockout
from flask_passkey.web.proxy import client_address_func
from flask_passkey.web.ratelimit import (
    DEFAULT_STORAGE_URI,
    create_limiter,
    forget_hits_after_each_request,
)
from flask_passkey.web.resource import Requirement, protect
from flask_passkey.web.views import create_blueprints

EXTENSION_KEY = "passkey"
logger = logging.getLogger("flask_passkey")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class PasskeyState:
    """Everything the extension keeps for one app, in ``app.extensions["passkey"]``."""

    settings: Settings
    plugin_manager: pluggy.PluginManager
    validator: Validator
    sessions: SessionStore
    users: UserStore
    ceremonies: Ceremonies
    grants: Grants
    #: Checks DPoP proofs (token endpoint, protected resources).
    proofs: DPoPVerifier
    #: Checks the access tokens of requests to ``/userinfo`` and the My Account API.
    access: AccessVerifier
    client_address: Callable[[], str]
    #: AAGUID -> passkey provider name and icons (PASSKEY_AUTHENTICATOR_NAMES_FILE, plugins).
    authenticators: AuthenticatorNames = field(default_factory=AuthenticatorNames)
    limiter: Limiter | None = None
    lockout: Lockout | None = None
    _event_hook: Any = field(init=False, repr=False)
    _claims_hook: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._event_hook = self.plugin_manager.hook.passkey_event
        self._claims_hook = self.plugin_manager.hook.passkey_token_claims

    def emit(self, event: PasskeyEvent, *, detailed: bool = False) -> None:
        """Send ``event`` to every ``passkey_event`` plugin. A plugin that raises is logged and
        ignored: by the time an event fires the work is done, and an audit hook must not turn
        it into a failure. Events emitted while handling a request get its details
        (:func:`~flask_passkey.web.blueprint.with_request_details`) unless ``detailed`` says
        the caller made the event with them."""
        try:
            if not detailed and has_request_context():
                event = with_request_details(event)
            self._event_hook(event=event)
        except Exception:
            logger.exception("A passkey_event plugin raised on a %s event", event.name)

    def clients(self) -> list[Client]:
        """Every client the tenant plugins know (for the well-known files)."""
        return self.plugin_manager.hook.passkey_get_clients() or []

    def extra_claims(self, **arguments: Any) -> dict[str, Any]:
        """The merged results of ``passkey_token_claims``; on a conflict the implementation
        pluggy calls first (the last registered, or a ``tryfirst`` one) wins."""
        merged: dict[str, Any] = {}
        for claims in reversed(self._claims_hook(**arguments)):
            merged.update(claims)
        return merged


class Passkey:
    """Passkey sign-up and sign-in for a Flask app, behind an Auth0-compatible API.

    Holds no app state itself: everything lives in ``app.extensions["passkey"]``, so one
    instance can serve several apps (the app-factory pattern). The methods that read an app's
    state take it as ``app``; without it they use ``current_app`` inside an app context, else
    the app given to the constructor (RuntimeError when there is none, or when flask-passkey is
    not initialised on it).
    """

    def __init__(self, app: Flask | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._app = app
        if app is not None:
            self.init_app(app)

    def jwks(self, app: Flask | None = None) -> dict[str, Any]:
        """The JSON Web Key Set the app publishes at ``/.well-known/jwks.json``: the public
        keys that sign its ID and access tokens (a copy: changing it changes nothing)."""
        keys: dict[str, Any] = self._state(app).grants.issuer.keys.jwks()
        return copy.deepcopy(keys)

    def require_token(
        self,
        scope: str | Iterable[str] | None = None,
        *,
        audience: str | Iterable[str] | None = None,
    ) -> Callable[[F], F]:
        """A decorator for the host app's own routes: the view runs only for a request with one
        of this server's access tokens, which it then reads as
        :data:`flask_passkey.current_token`.

        The token is checked as ``/userinfo`` checks its own: ``Authorization: Bearer <token>``,
        or ``DPoP <token>`` with a DPoP proof of the key it is bound to; signed by this server
        for the domain the request came on (its issuer), for ``audience`` (one API identifier,
        or several of which it must name one; by default any of ``PASSKEY_AUDIENCES``),
        unexpired, its user still there, and carrying every scope of ``scope`` (space-separated,
        or a list). A refusal answers the API's JSON error: 401 ``invalid_token`` (or
        ``invalid_dpop_proof``) with a ``WWW-Authenticate`` challenge, 403
        ``insufficient_scope`` for a missing scope, 503 when a store is down.
        """
        requirement = Requirement.of(scope, audience)

        def decorate(view: F) -> F:
            return protect(view, requirement, lambda: get_state(current_app))

        return decorate

    def user_store(self, app: Flask | None = None) -> UserStore:
        """The app's store of users, passkeys, organization memberships and refresh tokens."""
        return self._state(app).users

    def tenant(self, app: Flask | None = None) -> Tenant:
        """The app's tenant, as the ``passkey_get_tenant`` plugins answer it now."""
        return self._state(app).validator.tenant()

    def authenticator_name(self, aaguid: str, app: Flask | None = None) -> AuthenticatorInfo | None:
        """The passkey provider (name and icons) of ``aaguid``, from the app's FIDO metadata
        (``PASSKEY_MDS_BLOB``) or ``PASSKEY_AUTHENTICATOR_NAMES_FILE``; None when unknown."""
        return self._state(app).authenticators.authenticator_name(aaguid)

    def _state(self, app: Flask | None) -> PasskeyState:
        if app is None and has_app_context():
            return get_state(current_app)
        app = app or self._app
        if app is None:
            raise RuntimeError(
                "No app: pass app=..., or call this inside the app's context "
                "(with app.app_context())."
            )
        return get_state(app)

    def init_app(self, app: Flask) -> None:
        """Check the configuration, build the plugins and stores, register the blueprint.

        Raises ConfigurationError for any deployment mistake, and when called twice on one app.
        """
        if EXTENSION_KEY in app.extensions:
            raise ConfigurationError(
                "flask-passkey is already registered on this app; call init_app once per app."
            )
        taken = {
            BLUEPRINT_NAME,
            DISCOVERY_BLUEPRINT_NAME,
            ACCOUNT_BLUEPRINT_NAME,
            USERINFO_BLUEPRINT_NAME,
        } & set(app.blueprints)
        if taken:
            raise ConfigurationError(
                f"The app already has a blueprint named {', '.join(sorted(taken))}; "
                "flask-passkey registers blueprints under these names."
            )
        settings = Settings.from_config(app.config)
        tenant_data = load_tenant_data(
            tenant=settings.tenant, tenant_file=settings.tenant_file, root_path=app.root_path
        )
        extra = {"tenant_config": ConfigTenant(tenant_data)} if tenant_data is not None else {}
        manager = build_plugin_manager(settings, extra=extra)
        plugin_defaults = _merged_config_defaults(manager)
        for key, value in plugin_defaults.items():
            app.config.setdefault(key, value)
        check_unknown_keys(app.config, plugin_keys=plugin_defaults)
        manager.hook.passkey_check_config(config=app.config)

        validator = Validator(manager)
        if not validator.tenant().custom_domains:
            raise ConfigurationError("The tenant has no custom domain: passkeys need one.")
        sessions: SessionStore | None = manager.hook.passkey_session_store(app=app)
        users: UserStore | None = manager.hook.passkey_user_store(app=app)
        if sessions is None or users is None:
            raise ConfigurationError(
                "No session or user store: the built-in store plugins are blocked."
            )
        if not callable(getattr(sessions, "put_marker", None)):
            raise ConfigurationError(
                f"The session store {type(sessions).__name__} has no put_marker method: "
                "a SessionStore needs one (see flask_passkey.SessionStore) to refuse replayed "
                "DPoP proofs."
            )
        clock = self._clock
        tenant_config = extra.get("tenant_config")
        metadata = metadata_from_settings(
            blob=settings.mds_blob,
            root_cert=settings.mds_root_cert,
            root_path=app.root_path,
            connections=tenant_config.connections.values() if tenant_config else (),
            clients=tenant_config.clients.values() if tenant_config else (),
        )
        authenticators = authenticator_names(
            names_file=settings.authenticator_names_file, root_path=app.root_path
        )
        if metadata is not None:
            authenticators.add_source(metadata, first=True)
        ceremonies = Ceremonies(
            sessions=sessions,
            users=users,
            timeout_ms=settings.challenge_timeout,
            clock=clock,
            attestation=AttestationGate(
                get_client=lambda client_id: manager.hook.passkey_get_client(client_id=client_id),
                get_connection=lambda name: manager.hook.passkey_get_connection(name=name),
                metadata=metadata,
            ),
            related_origins=lambda: validator.tenant().related_origins,
        )
        if settings.signing_keys:
            configured = configured_signing_keys(settings.signing_keys)
            keys = KeyRing(load=lambda: configured, clock=clock, refresh_seconds=float("inf"))
        else:
            keys = KeyRing.from_store(users, clock=clock)
        issuer = TokenIssuer(
            keys=keys,
            clock=clock,
            access_token_lifetime=settings.access_token_lifetime,
            id_token_lifetime=settings.id_token_lifetime,
        )
        proofs = DPoPVerifier(
            remember=sessions.put_marker, clock=clock, leeway=settings.dpop_proof_leeway
        )
        limiter_storage = _limiter_storage(app, settings, manager)
        limiter = (
            create_limiter(
                app, settings, storage_uri=limiter_storage, blueprints=LIMITED_BLUEPRINTS
            )
            if settings.rate_limit_enabled
            else None
        )
        state = PasskeyState(
            settings=settings,
            plugin_manager=manager,
            validator=validator,
            sessions=sessions,
            users=users,
            ceremonies=ceremonies,
            grants=Grants(
                ceremonies=ceremonies,
                users=users,
                issuer=issuer,
                clock=clock,
                refresh_token_lifetime=settings.refresh_token_lifetime,
                refresh_token_idle_lifetime=settings.refresh_token_idle_lifetime,
                refresh_token_reuse_interval=settings.refresh_token_reuse_interval,
                audiences=settings.audiences,
                extra_claims=lambda **arguments: state.extra_claims(**arguments),
                get_organization=lambda organization_id: manager.hook.passkey_get_organization(
                    organization_id=organization_id
                ),
            ),
            proofs=proofs,
            access=AccessVerifier(issuer=issuer, users=users, proofs=proofs),
            client_address=client_address_func(settings.trusted_proxies),
            authenticators=authenticators,
            limiter=limiter,
            lockout=create_lockout(
                settings.lockout,
                storage=limiter.storage if limiter is not None else None,
                storage_uri=limiter_storage,
                key_prefix=settings.rate_limit_key_prefix,
                ipv6_prefix=settings.rate_limit_ipv6_prefix,
            ),
        )
        app.extensions[EXTENSION_KEY] = state
        forget_hits_after_each_request(app)
        blueprints = [*create_blueprints(state), create_account_blueprint(state)]
        for blueprint in blueprints:
            app.register_blueprint(blueprint)
        refuse_unroutable_hosts(app, [blueprint.name for blueprint in blueprints])
        install_cors(app, state)
        app.cli.add_command(passkey_cli)
        manager.hook.passkey_init_app(
            app=app, blueprints=tuple(blueprint.name for blueprint in blueprints)
        )


def _limiter_storage(app: Flask, settings: Settings, manager: pluggy.PluginManager) -> str:
    if settings.rate_limit_storage_uri is not None:
        return settings.rate_limit_storage_uri
    provided: str | None = manager.hook.passkey_rate_limit_storage(app=app)
    return provided or DEFAULT_STORAGE_URI


def _merged_config_defaults(manager: pluggy.PluginManager) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for defaults in manager.hook.passkey_config_defaults():
        merged.update(defaults)
    return merged


def known_clients(app: Flask | None = None) -> list[Client]:
    """Every client the tenant plugins of ``app`` (``current_app`` by default) know: the
    tenant configuration's, the stored ones and those of plugins (``passkey_get_clients``)."""
    return get_state(app if app is not None else current_app).clients()


def client_ip() -> str:
    """The IP address of the client of the request in hand as flask-passkey sees it (through
    ``PASSKEY_TRUSTED_PROXIES`` reverse proxies): what events carry and rate limits count."""
    return get_state(current_app).client_address()


def get_state(app: Flask) -> PasskeyState:
    """The extension state of ``app``; raises RuntimeError when the extension is not set up."""
    try:
        state: PasskeyState = app.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError("flask-passkey is not initialised on this app.") from None
    return state
