"""flask-passkey: passwordless sign-up and sign-in with passkeys behind an Auth0-compatible API."""

from __future__ import annotations

from flask_passkey import errors, models, moved
from flask_passkey.errors import ConfigurationError, PasskeyError
from flask_passkey.events import PasskeyEvent
from flask_passkey.extension import Passkey
from flask_passkey.hookspecs import hookimpl

moved.install()

__all__ = [
    "ConfigurationError",
    "Passkey",
    "PasskeyError",
    "PasskeyEvent",
    "errors",
    "hookimpl",
    "models",
]
