"""flask-passkey-redis: pending ceremonies and per-IP rate-limit counters in a shared Redis."""

from __future__ import annotations

from .limit_storage import RedisLimitCounters
from .plugin import CONFIG_DEFAULTS, RedisPlugin, plugin
from .store import DEFAULT_KEY_PREFIX, UNAVAILABLE_ERRORS, RedisSessionStore

__all__ = [
    "CONFIG_DEFAULTS",
    "DEFAULT_KEY_PREFIX",
    "UNAVAILABLE_ERRORS",
    "RedisLimitCounters",
    "RedisPlugin",
    "RedisSessionStore",
    "plugin",
]
