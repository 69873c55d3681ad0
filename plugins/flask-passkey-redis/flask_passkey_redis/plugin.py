"""The flask-passkey plugin: its configuration keys and the two hooks that hand out Redis."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask_passkey import ConfigurationError, hookimpl

from .connection import Location, client_factory, parse_url
from .limit_storage import limiter_storage_uri
from .store import DEFAULT_KEY_PREFIX, RedisSessionStore

if TYPE_CHECKING:
    from flask import Flask

#: The keys this plugin reads, with their defaults (declared to flask-passkey, which fills
#: them into ``app.config`` at ``init_app`` and accepts them as known keys).
CONFIG_DEFAULTS: dict[str, Any] = {
    #: Where Redis is (see :mod:`flask_passkey_redis.connection` for the forms);
    #: None = this plugin does nothing.
    "PASSKEY_REDIS_URL": None,
    #: Prefix of every session key (``<prefix>session:<auth_session>``); give each deployment
    #: sharing one Redis database its own.
    "PASSKEY_REDIS_KEY_PREFIX": DEFAULT_KEY_PREFIX,
    #: Seconds to wait for a connection or a reply before answering 503.
    "PASSKEY_REDIS_SOCKET_TIMEOUT": 2.0,
}


@dataclass(frozen=True)
class RedisSettings:
    """The plugin's configuration for one app, checked at ``init_app``."""

    location: Location
    key_prefix: str
    socket_timeout: float

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RedisSettings | None:
        """None when ``PASSKEY_REDIS_URL`` is unset; ConfigurationError for a bad value."""
        url = config.get("PASSKEY_REDIS_URL")
        if url is None or url == "":
            return None
        if not isinstance(url, str):
            raise ConfigurationError(f"PASSKEY_REDIS_URL must be str, not {url!r}.")
        key_prefix = config.get("PASSKEY_REDIS_KEY_PREFIX", DEFAULT_KEY_PREFIX)
        if not isinstance(key_prefix, str) or not key_prefix:
            raise ConfigurationError(
                f"PASSKEY_REDIS_KEY_PREFIX must be a non-empty str, not {key_prefix!r}."
            )
        timeout = config.get("PASSKEY_REDIS_SOCKET_TIMEOUT", 2.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigurationError(
                f"PASSKEY_REDIS_SOCKET_TIMEOUT must be a number of seconds > 0, not {timeout!r}."
            )
        return cls(location=parse_url(url), key_prefix=key_prefix, socket_timeout=float(timeout))


class RedisPlugin:
    """Registered as ``redis`` from the ``flask_passkey`` entry-point group (block it with
    ``PASSKEY_DISABLED_PLUGINS = ["redis"]``). Holds no per-app state."""

    @hookimpl
    def passkey_config_defaults(self) -> dict[str, Any]:
        return dict(CONFIG_DEFAULTS)

    @hookimpl
    def passkey_session_store(self, app: Flask) -> RedisSessionStore | None:
        settings = RedisSettings.from_config(app.config)
        if settings is None:
            return None
        connect = client_factory(settings.location, socket_timeout=settings.socket_timeout)
        return RedisSessionStore(connect, key_prefix=settings.key_prefix)

    @hookimpl
    def passkey_rate_limit_storage(self, app: Flask) -> str | None:
        settings = RedisSettings.from_config(app.config)
        if settings is None:
            return None
        # passkey+<the URL>: served by RedisLimitCounters (importing it registers its schemes).
        return limiter_storage_uri(settings.location, socket_timeout=settings.socket_timeout)


#: The instance the entry point names.
plugin = RedisPlugin()
