"""Per-IP rate limiting of our blueprints with flask-limiter, and its response headers.

The limiter keeps its counters in a ``limits`` storage: ``PASSKEY_RATE_LIMIT_STORAGE_URI``, else
a plugin's (``passkey_rate_limit_storage``), else ``passkey+memory://`` (per process,
:class:`~flask_passkey.stores.limit_counters.MemoryCounters`). Every response of
a limited request carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset`` (Unix time); a 429 also carries ``Retry-After`` (seconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from flask import Flask, Response, request
from flask_limiter import Limiter
from limits import RateLimitItem, parse_many
from limits.errors import StorageError

from flask_passkey.config import Settings
from flask_passkey.errors import ConfigurationError
from flask_passkey.stores.limit_counters import MEMORY_COUNTERS_URI, forget_hits
from flask_passkey.web.flask_limiter_4 import init_app_without_host_config
from flask_passkey.web.proxy import client_bucket_func

#: The limiter's storage when neither the configuration nor a plugin names one.
DEFAULT_STORAGE_URI = MEMORY_COUNTERS_URI


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
        # Written by write_limit_headers: flask-limiter's writer puts Retry-After on every
        # response and lets a storage gone since the request was let in turn it into a 500.
        headers_enabled=False,
        strategy="fixed-window",
        key_prefix=settings.rate_limit_key_prefix,
        default_limits_exempt_when=_always,
        application_limits_exempt_when=_always,
    )
    limiter.request_filter(lambda: request.blueprint not in limited)
    init_app_without_host_config(limiter, app)
    app.after_request(write_limit_headers(limiter))
    return limiter


def forget_hits_after_each_request(app: Flask) -> None:
    """End what each request remembers of its limiter and lockout hits with the request
    (:mod:`flask_passkey.stores.limit_counters`): the next request reads the storage again."""

    def forget(error: BaseException | None) -> None:
        forget_hits()

    app.teardown_request(forget)


def write_limit_headers(limiter: Limiter) -> Callable[[Response], Response]:
    """An after-request function writing the headers of the request's limit, if it had one
    (``limiter.current_limit``): ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
    ``X-RateLimit-Reset`` on every response, ``Retry-After`` on a 429 only (on a 200 it would
    read as "come back later").

    A 429 that already says when to retry (the lockout's) keeps the later of that and, when the
    client has no request left in this window, the window's end. If the storage cannot be read
    any more (it went away after the request was let in), the response goes out as it is,
    without these headers: an answer already made (a 200, or the view's own 503) is never
    turned into a 500.
    """

    def write(response: Response) -> Response:
        current = limiter.current_limit
        if current is None:
            return response
        try:
            reset_at, remaining = current.reset_at, current.remaining
        except StorageError:
            return response
        response.headers["X-RateLimit-Limit"] = str(current.limit.amount)
        response.headers["X-RateLimit-Remaining"] = str(remaining)
        response.headers["X-RateLimit-Reset"] = str(reset_at)
        if response.status_code == 429 and (current.breached or remaining == 0):
            window_ends = max(1, int(reset_at - time.time()))
            told = _seconds(response.headers.get("Retry-After"))
            response.headers["Retry-After"] = str(max(window_ends, told))
        return response

    return write


def _seconds(retry_after: str | None) -> int:
    """A ``Retry-After`` in seconds, as this package writes it; 0 for none."""
    return int(retry_after) if retry_after is not None and retry_after.isdigit() else 0
