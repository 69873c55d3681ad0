"""Begin and finish passkey ceremonies over py_webauthn. Framework-free; keyword-only; typed."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from webauthn.helpers import bytes_to_base64url, generate_challenge

from .context import ValidationContext
from .sessions import AuthSession, SessionStore

USER_VERIFICATION = "preferred"


@dataclass(frozen=True)
class Challenge:
    """What a challenge endpoint answers: the session id and the WebAuthn options."""

    auth_session: str
    authn_params_public_key: dict[str, Any]


def new_session_id() -> str:
    """An opaque ``auth_session``: 256 bits from :mod:`secrets`, URL-safe."""
    return secrets.token_urlsafe(32)


class Ceremonies:
    """Issues challenges into a session store; later, redeems them (see ``finish_*``)."""

    def __init__(
        self, *, sessions: SessionStore, timeout_ms: int, clock: Callable[[], float]
    ) -> None:
        self.sessions = sessions
        self.timeout_ms = timeout_ms
        self.clock = clock

    def begin_login(self, *, context: ValidationContext) -> Challenge:
        """Store a new login session for ``context`` and return its request options."""
        request = context.request
        rp_id = request.tenant.rp_id_for(request.host)
        now = self.clock()
        session = AuthSession(
            id=new_session_id(),
            operation="login",
            challenge=generate_challenge(),
            client_id=context.client.client_id,
            connection=_connection_name(context),
            organization_id=context.organization_id,
            rp_id=rp_id,
            origin=request.origin,
            expires_at=now + self.timeout_ms / 1000,
        )
        self.sessions.put(session, now=now)
        return Challenge(
            auth_session=session.id,
            authn_params_public_key={
                "challenge": bytes_to_base64url(session.challenge),
                "timeout": self.timeout_ms,
                "rpId": rp_id,
                "userVerification": USER_VERIFICATION,
            },
        )


def _connection_name(context: ValidationContext) -> str:
    assert context.connection is not None, "validation guarantees a connection"
    return context.connection.name
