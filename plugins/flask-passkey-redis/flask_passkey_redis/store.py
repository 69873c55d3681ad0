"""Pending ceremonies in Redis: one ``SET ... PX`` to keep, one ``GETDEL`` to take; markers
with one ``SET ... NX PX``."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable

import redis
from flask_passkey import AuthSession, BackendUnavailable
from redis.exceptions import (
    ClusterDownError,
    ConnectionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    TimeoutError,
    TryAgainError,
)

from .connection import RedisClient

logger = logging.getLogger(__name__)

#: Prefix of every key the store writes, before ``session:<auth_session>``.
DEFAULT_KEY_PREFIX = "flask-passkey:"

#: Errors that mean "Redis cannot answer now" rather than "this request is wrong": the server
#: is unreachable, slow, loading its data set, out of memory, a replica after a failover, or a
#: cluster without a master for the slot. They become BackendUnavailable (503).
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    ConnectionError,  # includes BusyLoadingError, MaxConnectionsError, MasterNotFoundError
    TimeoutError,
    ReadOnlyError,
    OutOfMemoryError,
    ClusterDownError,  # includes MasterDownError
    TryAgainError,
    RedisClusterException,  # a cluster client that cannot reach any startup node
)


class RedisSessionStore:
    """A :class:`flask_passkey.SessionStore` in Redis, shared by every process.

    ``put`` is one ``SET key value PX <ms left>``: the key expires by itself when the session
    does, measured on the caller's clock (``now``) so an app clock and the Redis clock need not
    agree. ``take`` is one ``GETDEL``, which Redis runs atomically: of any number of concurrent
    takes of one id, exactly one gets the value. Its expiry is checked again against ``now``.

    ``client`` is a redis-py client, or a function that makes one, called on first use (for
    clients that connect when created, such as ``RedisCluster``, so an app can start while
    Redis is down). Errors of :data:`UNAVAILABLE_ERRORS` become
    :class:`~flask_passkey.BackendUnavailable`; the client reconnects by itself.
    """

    def __init__(
        self,
        client: RedisClient | Callable[[], RedisClient],
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
    ) -> None:
        if isinstance(client, redis.Redis | redis.RedisCluster):
            self._client: RedisClient | None = client
            self._connect: Callable[[], RedisClient] = lambda: client
        else:
            self._client = None
            self._connect = client
        self._lock = threading.Lock()
        self.key_prefix = key_prefix

    def key(self, session_id: str) -> str:
        """The Redis key of the session ``session_id``."""
        return f"{self.key_prefix}session:{session_id}"

    def put(self, session: AuthSession, *, now: float) -> None:
        ttl_ms = math.ceil((session.expires_at - now) * 1000)
        if ttl_ms <= 0:  # already expired: nothing could ever take it
            return
        value = session.to_json()
        try:
            self.client().set(self.key(session.id), value, px=ttl_ms)
        except UNAVAILABLE_ERRORS as error:
            raise _unavailable("keep a session", error) from error

    def take(self, session_id: str, *, now: float) -> AuthSession | None:
        try:
            value = self.client().getdel(self.key(session_id))
        except UNAVAILABLE_ERRORS as error:
            raise _unavailable("take a session", error) from error
        if value is None:
            return None
        try:
            session = AuthSession.from_json(value)
        except (ValueError, KeyError, TypeError):
            # Not the key: it holds the auth_session, which must stay out of logs.
            logger.error("Unreadable session under the prefix %r: dropped.", self.key_prefix)
            return None
        if session.id != session_id or session.is_expired(now):
            return None
        return session

    def marker_key(self, key: str) -> str:
        """The Redis key of the marker ``key``."""
        return f"{self.key_prefix}marker:{key}"

    def put_marker(self, key: str, *, expires_at: float, now: float) -> bool:
        """One ``SET ... NX PX``: Redis expires the marker, and of concurrent calls only one
        sets it."""
        ttl_ms = math.ceil((expires_at - now) * 1000)
        if ttl_ms <= 0:  # expired already: nothing to remember, and nothing to refuse
            return True
        try:
            reply = self.client().set(self.marker_key(key), "1", nx=True, px=ttl_ms)
        except UNAVAILABLE_ERRORS as error:
            raise _unavailable("keep a marker", error) from error
        return reply is not None

    def client(self) -> RedisClient:
        """The redis-py client, made on first use; BackendUnavailable if that fails."""
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is None:
                try:
                    self._client = self._connect()
                except UNAVAILABLE_ERRORS as error:
                    raise _unavailable("connect", error) from error
            return self._client

    def close(self) -> None:
        """Close the client's connections (a later call reopens them)."""
        with self._lock:
            if self._client is not None:
                self._client.close()


def _unavailable(action: str, error: Exception) -> BackendUnavailable:
    logger.warning("Redis session store cannot %s: %s: %s", action, type(error).__name__, error)
    return BackendUnavailable(f"Redis is unavailable: {type(error).__name__}")
