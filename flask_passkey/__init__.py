"""flask-passkey: passwordless sign-up and sign-in with passkeys behind an Auth0-compatible API."""

from __future__ import annotations

from . import errors, models
from .errors import ConfigurationError, PasskeyError
from .events import PasskeyEvent
from .extension import Passkey
from .hookspecs import hookimpl

__all__ = [
    "ConfigurationError",
    "Passkey",
    "PasskeyError",
    "PasskeyEvent",
    "errors",
    "hookimpl",
    "models",
]
