"""Events sent to the ``passkey_event`` hook for audit logs and metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EventName = Literal[
    "challenge_issued",
    "request_rejected",
    "rate_limited",
    "locked_out",
    "lockout_started",
    "attestation_refused",
    "aaguid_denied",
    "possible_clone",
    "login_succeeded",
    "signup_succeeded",
    "refresh_succeeded",
    "refresh_revoked",
    "origin_refused",
    "passkey_enrolled",
    "passkey_renamed",
    "passkey_deleted",
    "refresh_token_reused",
]


#: Events that report a refused request (or a lockout it caused); the rest report successes.
FAILURE_EVENTS: frozenset[EventName] = frozenset(
    {
        "request_rejected",
        "rate_limited",
        "locked_out",
        "lockout_started",
        "attestation_refused",
        "aaguid_denied",
        "origin_refused",
        "possible_clone",
        "refresh_token_reused",
    }
)


@dataclass(frozen=True)
class PasskeyEvent:
    """Something that happened. Never carries secrets, challenges, tokens or key material."""

    name: EventName
    endpoint: str
    client_ip: str
    client_id: str | None = None
    #: For rejections: the wire error code (``invalid_grant``...) and its description.
    error: str | None = None
    description: str | None = None
    #: For rejections: what actually failed, for the operator's logs only (callers get the
    #: short, stable ``description``); like every field here, never a secret.
    detail: str | None = None
    user_id: str | None = None
    connection: str | None = None
    organization_id: str | None = None
    #: What the request said about itself, filled in for every event emitted while handling
    #: one: the ``grant_type`` of a token request (once it is one the server knows, so it is a
    #: bounded value), an id shared by the request's events,
    #: the Host it was sent to and its User-Agent (both as sent, cut to 256 characters).
    grant_type: str | None = None
    request_id: str | None = None
    hostname: str | None = None
    user_agent: str | None = None
