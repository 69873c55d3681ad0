"""Every ``passkey_event`` as a line of the ``flask_passkey`` logger: INFO for what succeeded,
WARNING for what was refused (and lockouts).

Registered as ``event_log``; ``PASSKEY_DISABLED_PLUGINS = ["event_log"]`` silences it. Events
carry no secrets, so neither do these lines. Values are written with ``repr`` so that a
client-supplied one (a ``client_id``, an error description quoting input) cannot forge a line.
The event itself is attached to the record as ``record.passkey_event`` for structured handlers.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from flask_passkey.events import FAILURE_EVENTS, PasskeyEvent
from flask_passkey.hookspecs import hookimpl

logger = logging.getLogger("flask_passkey")


class EventLog:
    @hookimpl(trylast=True)
    def passkey_event(self, event: PasskeyEvent) -> None:
        level = logging.WARNING if event.name in FAILURE_EVENTS else logging.INFO
        if not logger.isEnabledFor(level):
            return
        fields = " ".join(
            f"{key}={value!r}"
            for key, value in asdict(event).items()
            if key != "name" and value is not None
        )
        logger.log(level, "passkey %s %s", event.name, fields, extra={"passkey_event": event})
