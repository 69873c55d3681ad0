"""The one place flask-passkey relies on flask-limiter beyond its documented API, pinned to
flask-limiter 4.

flask-limiter's ``init_app`` has no way to ignore the app's config: whatever the constructor
says, it reads ``RATELIMIT_ENABLED``, ``RATELIMIT_STORAGE_OPTIONS``, ``RATELIMIT_META`` and the
in-memory fallback from ``app.config``, and writes ``RATELIMIT_ENABLED`` for a limiter the host
creates later. Which keys it reads and writes is version 4's behaviour, not a documented
contract, so :func:`init_app_without_host_config` is written for major version
:data:`SUPPORTED_MAJOR` only: ``tests/test_pinned_internals.py`` fails on any other, and the
dependency is capped below the next major. Before raising the cap, check ``init_app`` again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version

from flask import Config, Flask
from flask_limiter import Limiter

#: The flask-limiter major version this module was written for.
SUPPORTED_MAJOR = 4
_HOST_PREFIX = "RATELIMIT_"


def is_supported(installed: str) -> bool:
    """True for a flask-limiter version string of :data:`SUPPORTED_MAJOR`."""
    return installed.split(".", 1)[0] == str(SUPPORTED_MAJOR)


def installed_version() -> str:
    """The installed flask-limiter's version."""
    return version("flask-limiter")


def init_app_without_host_config(limiter: Limiter, app: Flask) -> None:
    """``limiter.init_app(app)`` with the host's ``RATELIMIT_*`` settings (meant for its own
    limiter) kept away from ours, and ours away from the host's config."""
    with _host_limiter_config_hidden(app.config):
        limiter.init_app(app)


@contextmanager
def _host_limiter_config_hidden(config: Config) -> Iterator[None]:
    hidden = {key: config.pop(key) for key in list(config) if key.startswith(_HOST_PREFIX)}
    try:
        yield
    finally:
        for key in [key for key in config if key.startswith(_HOST_PREFIX)]:
            del config[key]
        config.update(hidden)
