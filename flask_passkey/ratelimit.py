"""Per-IP rate limiting with flask-limiter, and the proxy-aware client address and host."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Config, Flask, request
from flask_limiter import Limiter
from limits import RateLimitItem, parse_many

from .config import Settings
from .errors import ConfigurationError

BLUEPRINT_NAME = "passkey"
#: The My Account API's blueprint (``/me/v1/...``).
ACCOUNT_BLUEPRINT_NAME = "passkey_account"
#: The blueprints whose every endpoint gets the per-IP limit.
LIMITED_BLUEPRINTS = frozenset({BLUEPRINT_NAME, ACCOUNT_BLUEPRINT_NAME})
_HOST_PREFIX = "RATELIMIT_"


def forwarded_value(header: str | None, trusted_hops: int) -> str | None:
    """The value the outermost trusted proxy saw in an ``X-Forwarded-*`` header.

    Each proxy appends what it received, so with ``trusted_hops`` proxies the trustworthy
    entry is the ``trusted_hops``-th from the right; anything left of it is client-supplied.
    """
    if not header or trusted_hops <= 0:
        return None
    values = [value.strip() for value in header.split(",")]
    if len(values) < trusted_hops:
        return None
    return values[-trusted_hops] or None


def client_address_func(trusted_proxies: int) -> Callable[[], str]:
    """A flask-limiter key function: the client IP, from X-Forwarded-For only behind proxies."""

    def client_address() -> str:
        forwarded = forwarded_value(request.headers.get("X-Forwarded-For"), trusted_proxies)
        return forwarded or request.remote_addr or "unknown"

    return client_address


def check_limit(limit: str, *, key: str = "PASSKEY_RATE_LIMIT") -> list[RateLimitItem]:
    """The parsed limits; ConfigurationError naming ``key`` for an unparsable string at startup
    (flask-limiter would silently fail open)."""
    try:
        items = parse_many(limit)
        if not items:
            raise ValueError("no limit given")
    except ValueError as error:
        raise ConfigurationError(f"Invalid {key} {limit!r}: {error}") from error
    return items


def _always() -> bool:
    return True


def create_limiter(app: Flask, settings: Settings, *, storage_uri: str) -> Limiter:
    """A limiter that only ever looks at our API blueprints, whatever the host app does.

    The host app's own ``RATELIMIT_*`` default and application limits are exempted here, so
    they neither apply twice to the host's routes nor leak onto ours.
    """
    check_limit(settings.rate_limit)
    limiter = Limiter(
        client_address_func(settings.trusted_proxies),
        storage_uri=storage_uri,
        # Storage failures arrive as limits.errors.StorageError, which the blueprint answers 503.
        storage_options={"wrap_exceptions": True},
        headers_enabled=True,
        strategy="fixed-window",
        key_prefix=settings.rate_limit_key_prefix,
        default_limits_exempt_when=_always,
        application_limits_exempt_when=_always,
    )
    limiter.request_filter(lambda: request.blueprint not in LIMITED_BLUEPRINTS)
    with _host_limiter_config_hidden(app.config):
        limiter.init_app(app)
    return limiter


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
