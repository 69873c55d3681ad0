"""The limiter's Redis storage: one round trip per request instead of three.

flask-limiter counts a request with the strategy's ``hit`` (``limits``' ``RedisStorage.incr``:
one Lua call) and, to write the ``X-RateLimit-*`` headers, asks for the window again
(``get_window_stats``: a ``GET`` and a ``TTL``, two more round trips). The storages here are
``limits``' own Redis storages with an ``incr`` whose Lua script also returns the window's
TTL; what it returned is remembered for the rest of the request (in :data:`flask.g`), and
``get`` and ``get_expiry`` of that key answer from it. Anything else (another key, no request,
a key cleared since) goes to Redis as before.

They are registered under the ``limits`` schemes ``passkey+redis``, ``passkey+rediss``,
``passkey+redis+unix``, ``passkey+redis+sentinel`` and ``passkey+redis+cluster``: the plugin's
limiter URI is the ``limits`` URI with :data:`SCHEME_PREFIX` in front.

This module restates how ``limits`` 5 counts in Redis (its script, its key prefixing), so it is
used with that major version only (:func:`supported`); with another, the plugin hands the
limiter ``limits``' own storage.
"""

from __future__ import annotations

import time
from typing import Any

import limits
from flask import g, has_app_context
from limits.storage import RedisClusterStorage, RedisSentinelStorage, RedisStorage
from redis.exceptions import NoScriptError

from .connection import command

SCHEME_PREFIX = "passkey+"
#: The ``limits`` major version whose RedisStorage this module was written (and measured) for.
LIMITS_MAJOR = 5

#: ``limits``' incr_expire.lua, returning the window's TTL (seconds) beside the new count.
INCR_WINDOW = b"""
local amount = tonumber(ARGV[2])
local current = redis.call("incrby", KEYS[1], amount)
if current == amount then
    redis.call("expire", KEYS[1], ARGV[1])
end
return {current, redis.call("ttl", KEYS[1])}
"""

_SEEN = "_flask_passkey_redis_windows"


def supported() -> bool:
    """Whether the installed ``limits`` is of :data:`LIMITS_MAJOR`, the one this module knows."""
    return limits.__version__.partition(".")[0] == str(LIMITS_MAJOR)


def storage_uri(uri: str) -> str:
    """The limiter URI for the ``limits`` Redis URI ``uri``: this module's storage where
    :func:`supported`, else ``uri`` itself."""
    return SCHEME_PREFIX + uri if supported() else uri


def _windows() -> dict[tuple[int, str], tuple[int, float]] | None:
    """This request's ``(storage id, key) -> (count, expiry)``, or None outside a request."""
    if not has_app_context():
        return None
    windows: dict[tuple[int, str], tuple[int, float]] = g.setdefault(_SEEN, {})
    return windows


class WindowFromHit(RedisStorage):
    """Mixin: ``incr`` also reads the TTL, and the rest of the request reuses both."""

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri.removeprefix(SCHEME_PREFIX), **options)
        self.lua_incr_window = self.get_connection().register_script(INCR_WINDOW)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        prefixed = self.prefixed_key(key)
        try:
            count, ttl = command(
                self.storage, "EVALSHA", self.lua_incr_window.sha, 1, prefixed, expiry, amount
            )
        except NoScriptError:  # not loaded yet (or flushed): the Script object loads it
            count, ttl = self.lua_incr_window([prefixed], [expiry, amount])
        windows = _windows()
        if windows is not None:
            # As RedisStorage.get_expiry computes it from TTL.
            windows[(id(self), key)] = (int(count), max(int(ttl), 0) + time.time())
        return int(count)

    def get(self, key: str) -> int:
        seen = self._seen(key)
        return seen[0] if seen is not None else super().get(key)

    def get_expiry(self, key: str) -> float:
        seen = self._seen(key)
        return seen[1] if seen is not None else super().get_expiry(key)

    def clear(self, key: str) -> None:
        windows = _windows()
        if windows is not None:
            windows.pop((id(self), key), None)
        super().clear(key)

    def reset(self) -> int | None:
        windows = _windows()
        if windows is not None:
            for seen in [seen for seen in windows if seen[0] == id(self)]:
                del windows[seen]
        return super().reset()

    def _seen(self, key: str) -> tuple[int, float] | None:
        windows = _windows()
        return windows.get((id(self), key)) if windows is not None else None


class PasskeyRedisStorage(WindowFromHit, RedisStorage):
    STORAGE_SCHEME = [SCHEME_PREFIX + s for s in ("redis", "rediss", "redis+unix")]  # noqa: RUF012


class PasskeyRedisSentinelStorage(WindowFromHit, RedisSentinelStorage):
    STORAGE_SCHEME = [SCHEME_PREFIX + "redis+sentinel"]  # noqa: RUF012


class PasskeyRedisClusterStorage(WindowFromHit, RedisClusterStorage):
    STORAGE_SCHEME = [SCHEME_PREFIX + "redis+cluster"]  # noqa: RUF012
