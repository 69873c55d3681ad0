"""The request id: one per request, in every error body and in the log lines about it, so an
operator can find what a caller was not told."""

from __future__ import annotations

import re
import secrets

from flask import g, request

#: The header a proxy or client may name the request by.
HEADER = "X-Request-Id"
#: flask.g attribute holding the request's id once chosen.
_G_KEY = "passkey_request_id"
#: An id we keep as sent: short, printable ASCII, no spaces or quotes (it goes into log lines).
_SANE = re.compile(r"[A-Za-z0-9._:+/=-]{1,200}", re.ASCII)


def request_id() -> str:
    """The id of the request in hand: its ``X-Request-Id`` when that is sane, else a new random
    one (128 bits, hex); the same value every time it is asked for during one request."""
    chosen: str | None = g.get(_G_KEY)
    if chosen is None:
        sent = request.headers.get(HEADER, "")
        chosen = sent if _SANE.fullmatch(sent) else secrets.token_hex(16)
        setattr(g, _G_KEY, chosen)
    return chosen
