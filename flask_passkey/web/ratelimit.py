"""Per-IP rate limiting of our blueprints with flask-limiter."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager

from flask import Config, Flask, Response, request
from flask_limiter import Limiter
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage

from flask_passkey.config import Settings
from flask_passkey.errors import ConfigurationError
from flask_passkey.web.proxy import client_bucket_func

_HOST_PREFIX = "RATELIMIT_"
#: The limiter's storage when neither the configuration nor a plugin names one.
DEFAULT_STORAGE_URI = "passkey+memory://"


class PasskeyMemoryStorage(MemoryStorage):
    """``limits``' in-process storage, minus its expiry thread: ``passkey+memory://``.

    ``MemoryStorage`` starts a new ``threading.Timer`` every 10 ms while counters change, to
    drop expired ones; in a busy worker that is a thread start per 10 ms (which waits for the
    new thread) and a thread contending with the requests for the GIL. Here an expired fixed
    window is replaced when it is next incremented (``get`` already ignores it) and the other
    expired counters are swept inline at most once per :attr:`SWEEP_SECONDS`. The fixed-window
    counters keep ``MemoryStorage``'s fields, so everything else it does is unchanged.
    """

    STORAGE_SCHEME = ["passkey+memory"]  # noqa: RUF012 - as limits declares it
    SWEEP_SECONDS = 1.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **_: str) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **_)
        self._counters_lock = threading.Lock()
        self._next_sweep = 0.0

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        with self._counters_lock:
            if self.expirations.get(key, 0.0) <= now:  # no window, or an expired one: a new one
                value = amount
                self.expirations[key] = now + expiry
            else:
                value = self.storage[key] + amount
            self.storage[key] = value
            if now >= self._next_sweep:
                self._sweep(now)
        return value

    def decr(self, key: str, amount: int = 1) -> int:
        now = time.time()
        with self._counters_lock:
            if self.expirations.get(key, 0.0) <= now:
                return 0
            value = self.storage[key] = max(self.storage[key] - amount, 0)
        return value

    def _sweep(self, now: float) -> None:
        for key in [key for key, expires in self.expirations.items() if expires <= now]:
            self.storage.pop(key, None)
            self.expirations.pop(key, None)
            self.locks.pop(key, None)
        self._next_sweep = now + self.SWEEP_SECONDS


def check_limit(limit: str, *, key: str = "PASSKEY_RATE_LIMIT") -> list[RateLimitItem]:
    """The parsed limits; ConfigurationError naming ``key`` for an unparsable string at startup
    (flask-limiter would silently fail open)."""
    try:
        items = parse_many(limit)
        if not items:
            raise ValueError("no limit given")
    except ValueError as error:  # its traceback would only repeat the message
        raise ConfigurationError(
            f"{key}: {limit!r} is not a limit ({error}); write e.g. '60 per minute'."
        ) from None
    return items


def _always() -> bool:
    return True


def create_limiter(
    app: Flask, settings: Settings, *, storage_uri: str, blueprints: Collection[str]
) -> Limiter:
    """A limiter that only ever looks at ``blueprints``, whatever the host app does.

    The host app's own ``RATELIMIT_*`` default and application limits are exempted here, so
    they neither apply twice to the host's routes nor leak onto ours. The caller applies
    ``settings.rate_limit`` to each of ``blueprints`` (``limiter.limit(...)(blueprint)``).
    """
    check_limit(settings.rate_limit)
    limited = frozenset(blueprints)
    limiter = Limiter(
        client_bucket_func(settings.trusted_proxies, settings.rate_limit_ipv6_prefix),
        storage_uri=storage_uri,
        # Storage failures arrive as limits.errors.StorageError, which the blueprint answers 503.
        storage_options={"wrap_exceptions": True},
        headers_enabled=True,
        strategy="fixed-window",
        key_prefix=settings.rate_limit_key_prefix,
        default_limits_exempt_when=_always,
        application_limits_exempt_when=_always,
    )
    limiter.request_filter(lambda: request.blueprint not in limited)
    # Registered before flask-limiter's header writer, so Flask runs it after the writer.
    app.after_request(_retry_after_only_on_429(limited))
    with _host_limiter_config_hidden(app.config):
        limiter.init_app(app)
    # Registered after flask-limiter's header writer, so Flask runs it first.
    app.after_request(_read_window_early(limiter))
    return limiter


def _retry_after_only_on_429(limited: frozenset[str]) -> Callable[[Response], Response]:
    """Drop the ``Retry-After`` flask-limiter's header writer puts on every response of a
    limited endpoint (it has no setting to write it only on a 429): on a 200 it reads as "come
    back later". The ``X-RateLimit-*`` headers stay on every response."""

    def drop(response: Response) -> Response:
        if response.status_code != 429 and request.blueprint in limited:
            response.headers.pop("Retry-After", None)
        return response

    return drop


def _read_window_early(limiter: Limiter) -> Callable[[Response], Response]:
    """An after-request function reading the request's limit window before flask-limiter's
    header writer does (which then reuses it).

    The writer reads the storage again after the view: if the storage went away since the
    request was let in, it would turn an answer already made (a 200, or the view's own 503)
    into a 500. Here such a response just goes out without the X-RateLimit-* headers.
    """

    def read_window(response: Response) -> Response:
        current = limiter.current_limit
        if current is not None:
            try:
                current.reset_at  # noqa: B018 - cached on the RequestLimit for the writer
            except StorageError:
                limiter.context.view_rate_limit = None
        return response

    return read_window


@contextmanager
def _host_limiter_config_hidden(config: Config) -> Iterator[None]:
    """Keep the host's ``RATELIMIT_*`` settings (meant for its own limiter) away from ours, and
    ours away from the host's config: flask-limiter's init_app reads and writes them."""
    hidden = {key: config.pop(key) for key in list(config) if key.startswith(_HOST_PREFIX)}
    try:
        yield
    finally:
        for key in [key for key in config if key.startswith(_HOST_PREFIX)]:
            del config[key]
        config.update(hidden)
