"""The Flask extension: ``Passkey(app)`` or ``Passkey().init_app(app)``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pluggy
from flask import Flask
from flask_limiter import Limiter

from .ceremony import Ceremonies
from .config import Settings, check_unknown_keys
from .default_plugins.tenant_config import ConfigTenant, load_tenant_data
from .errors import ConfigurationError
from .events import PasskeyEvent
from .plugins import build_plugin_manager
from .ratelimit import client_address_func, create_limiter
from .sessions import SessionStore
from .validation import Validator
from .views import create_blueprint

EXTENSION_KEY = "passkey"


@dataclass
class PasskeyState:
    """Everything the extension keeps for one app, in ``app.extensions["passkey"]``."""

    settings: Settings
    plugin_manager: pluggy.PluginManager
    validator: Validator
    sessions: SessionStore
    ceremonies: Ceremonies
    client_address: Callable[[], str]
    limiter: Limiter | None = None

    def emit(self, event: PasskeyEvent) -> None:
        self.plugin_manager.hook.passkey_event(event=event)


class Passkey:
    """Passkey sign-up and sign-in for a Flask app, behind an Auth0-compatible API.

    Holds no app state itself: everything lives in ``app.extensions["passkey"]``, so one
    instance can serve several apps (the app-factory pattern).
    """

    def __init__(
        self, app: Flask | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._clock = clock
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Check the configuration, build the plugins and stores, register the blueprint.

        Raises ConfigurationError for any deployment mistake, and when called twice on one app.
        """
        if EXTENSION_KEY in app.extensions:
            raise ConfigurationError(
                "flask-passkey is already registered on this app; call init_app once per app."
            )
        settings = Settings.from_config(app.config)
        tenant_data = load_tenant_data(
            tenant=settings.tenant, tenant_file=settings.tenant_file
        )
        extra = (
            {"tenant_config": ConfigTenant(tenant_data)}
            if tenant_data is not None
            else {}
        )
        manager = build_plugin_manager(settings, extra=extra)
        plugin_defaults = _merged_config_defaults(manager)
        for key, value in plugin_defaults.items():
            app.config.setdefault(key, value)
        check_unknown_keys(app.config, plugin_keys=plugin_defaults)

        validator = Validator(manager.hook)
        if not validator.tenant().custom_domains:
            raise ConfigurationError(
                "The tenant has no custom domain: passkeys need one."
            )
        sessions: SessionStore | None = manager.hook.passkey_session_store(app=app)
        if sessions is None:
            raise ConfigurationError(
                "No session store: the memory_session_store plugin is blocked."
            )

        state = PasskeyState(
            settings=settings,
            plugin_manager=manager,
            validator=validator,
            sessions=sessions,
            ceremonies=Ceremonies(
                sessions=sessions,
                timeout_ms=settings.challenge_timeout,
                clock=self._clock,
            ),
            client_address=client_address_func(settings.trusted_proxies),
            limiter=create_limiter(app, settings)
            if settings.rate_limit_enabled
            else None,
        )
        app.extensions[EXTENSION_KEY] = state
        app.register_blueprint(create_blueprint(state))


def _merged_config_defaults(manager: pluggy.PluginManager) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for defaults in manager.hook.passkey_config_defaults():
        merged.update(defaults)
    return merged


def get_state(app: Flask) -> PasskeyState:
    """The extension state of ``app``; raises RuntimeError when the extension is not set up."""
    try:
        state: PasskeyState = app.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError("flask-passkey is not initialised on this app.") from None
    return state
