"""The limiter's counters in Redis: a ``limits`` storage (``passkey+redis://`` and the other
forms of :mod:`flask_passkey_redis.connection` with ``passkey+`` in front, as
:func:`limiter_storage_uri` writes them) that counts a hit and
reads its window in one command, and answers the request's reads of that window from it
(:class:`flask_passkey.RememberingStorage`).

``limits``' own Redis storages take three round trips per limited request: the hit, then
flask-limiter reads the window back (``GET``, ``TTL``) for the ``X-RateLimit-*`` headers. This
one takes one. Keys and values are those of ``limits``' Redis storages (``LIMITS:<key>``, an
integer with a TTL), so either storage reads the other's counters.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from flask_passkey import LimitWindow, RememberingStorage
from redis.commands.core import Script

from .connection import SCHEMES, Location, RedisClient, client_factory, parse_url

#: What a storage URI of this module starts with, before a PASSKEY_REDIS_URL.
SCHEME_PREFIX = "passkey+"
#: The prefix ``limits``' Redis storages put before every key.
KEY_PREFIX = "LIMITS:"
#: Seconds to wait for Redis when the URI does not say (``?socket_timeout=``).
DEFAULT_SOCKET_TIMEOUT = 2.0

#: Count the hit, start the window on the first one, answer the count and the ms left. A key
#: left without a TTL (written by something else) gets one, so it cannot count forever.
_HIT = """
local count = redis.call('INCRBY', KEYS[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if count == tonumber(ARGV[2]) or ttl < 0 then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
    ttl = tonumber(ARGV[1]) * 1000
end
return {count, ttl}
"""


def limiter_storage_uri(location: Location, *, socket_timeout: float) -> str:
    """The limiter's storage URI for the same Redis: ``passkey+`` and the URL, which
    :class:`~flask_passkey_redis.limit_storage.RedisLimitCounters` serves, with
    ``socket_timeout`` (unless the URL sets its own) so a hung Redis cannot hang the limiter."""
    parts = urlsplit(location.url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("socket_timeout", f"{socket_timeout:g}")
    # Spelled out: urlunsplit drops the "//" of a URL without a host (unix:///path).
    return f"{SCHEME_PREFIX}{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"


def redis_url_and_timeout(uri: str) -> tuple[str, float]:
    """The PASSKEY_REDIS_URL and the socket timeout a storage URI of this module names."""
    parts = urlsplit(uri.removeprefix(SCHEME_PREFIX))
    query = dict(parse_qsl(parts.query))
    timeout = float(query.pop("socket_timeout", DEFAULT_SOCKET_TIMEOUT))
    url = urlunsplit(parts._replace(query=urlencode(query)))
    if parts.netloc == "":  # urlunsplit drops the "//" of a URL without a host
        url = url.replace(":", "://", 1)
    return url, timeout


class RedisLimitCounters(RememberingStorage):
    """Fixed windows in Redis, shared by every process and host using it.

    A hit is one script (``EVALSHA``, loaded on first use): ``INCRBY``, ``PTTL`` and, for a new
    window, ``EXPIRE``. Redis errors are ``limits``' ``StorageError`` when the limiter asks for
    wrapped exceptions (flask-passkey's does, and answers 503).
    """

    STORAGE_SCHEME = [SCHEME_PREFIX + scheme for scheme in SCHEMES]  # noqa: RUF012

    def __init__(
        self, uri: str | None = None, wrap_exceptions: bool = False, **options: float | str | bool
    ) -> None:
        super().__init__(uri, wrap_exceptions, **options)
        if uri is None:
            raise ValueError("RedisLimitCounters needs a URI: passkey+redis://host:port/db")
        url, timeout = redis_url_and_timeout(uri)
        self._connect: Callable[[], RedisClient] = client_factory(
            parse_url(url), socket_timeout=timeout
        )
        self._client: RedisClient | None = None
        self._script: Script | None = None
        self._lock = threading.Lock()

    @property
    def base_exceptions(self) -> type[Exception]:
        return redis.RedisError

    def hit_window(self, key: str, expiry: int, amount: int) -> LimitWindow:
        if self._script is None:
            self._script = self.client().register_script(_HIT)
        count, ttl_ms = self._script(keys=[KEY_PREFIX + key], args=[expiry, amount])
        return LimitWindow(int(count), time.time() + int(ttl_ms) / 1000)

    def read_window(self, key: str) -> LimitWindow | None:
        with self.client().pipeline(transaction=False) as pipe:
            pipe.get(KEY_PREFIX + key)
            pipe.pttl(KEY_PREFIX + key)
            count, ttl_ms = pipe.execute()
        if count is None or ttl_ms < 0:
            return None
        return LimitWindow(int(count), time.time() + ttl_ms / 1000)

    def drop_window(self, key: str) -> None:
        self.client().delete(KEY_PREFIX + key)

    def check(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def drop_windows(self) -> int | None:
        client = self.client()
        count = 0
        for key in client.scan_iter(match=f"{KEY_PREFIX}*", count=1000):
            count += int(client.delete(key))
        return count

    def client(self) -> RedisClient:
        """The redis-py client, made on first use (a cluster client connects when made)."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._connect()
                client = self._client
        return client
