"""``flask passkey ...``: the command group (:mod:`.commands`) and the doctor (:mod:`.doctor`)."""

from __future__ import annotations

from flask_passkey.cli.commands import passkey_cli

__all__ = ["passkey_cli"]
