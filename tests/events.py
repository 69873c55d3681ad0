"""A ``passkey_event`` plugin for tests: it keeps every event, in order."""

from __future__ import annotations

import flask_passkey
from flask_passkey.events import PasskeyEvent


class Recorder:
    """Register it with ``plugins=[recorder]``; ``events`` is what the app reported."""

    def __init__(self) -> None:
        self.events: list[PasskeyEvent] = []

    @flask_passkey.hookimpl
    def passkey_event(self, event: PasskeyEvent) -> None:
        self.events.append(event)

    def names(self) -> list[str]:
        return [event.name for event in self.events]
