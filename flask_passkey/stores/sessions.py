"""Pending passkey ceremonies (``auth_session``) and the contract of the stores that keep them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

#: ``login`` and ``signup`` are redeemed at the token endpoint; ``enroll`` (a signed-in user
#: adding a passkey) only through the My Account API.
Operation = Literal["login", "signup", "enroll"]


@dataclass(frozen=True)
class AuthSession:
    """One issued challenge, bound to everything the token exchange must match."""

    id: str
    operation: Operation
    challenge: bytes
    client_id: str
    connection: str
    organization_id: str | None
    rp_id: str
    #: The https origin of the custom domain the challenge was issued on; accepted at redeem.
    origin: str
    #: Epoch seconds after which the session can no longer be redeemed.
    expires_at: float
    #: Sign-up only: the WebAuthn user handle generated for the new user.
    user_handle: bytes | None = None
    #: Sign-up only: the validated ``user_profile`` and ``user_metadata`` of the request.
    user_profile: dict[str, str] = field(default_factory=dict)
    user_metadata: dict[str, str] = field(default_factory=dict)
    #: Enrollment only: the id of the user adding a passkey.
    user_id: str | None = None

    def is_expired(self, now: float) -> bool:
        return now >= self.expires_at

    def to_json(self) -> str:
        """A compact JSON form for stores that keep sessions as text.

        Keys are only ever added, and optional ones left out when empty, so text written by an
        older version still reads back with :meth:`from_json`.
        """
        data: dict[str, Any] = {
            "id": self.id,
            "op": self.operation,
            "ch": bytes_to_base64url(self.challenge),
            "cid": self.client_id,
            "conn": self.connection,
            "org": self.organization_id,
            "rp": self.rp_id,
            "ori": self.origin,
            "exp": self.expires_at,
        }
        if self.user_handle is not None:
            data["uh"] = bytes_to_base64url(self.user_handle)
            data["up"] = self.user_profile
            data["um"] = self.user_metadata
        if self.user_id is not None:
            data["uid"] = self.user_id
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> AuthSession:
        data = json.loads(text)
        handle = data.get("uh")
        return cls(
            id=data["id"],
            operation=data["op"],
            challenge=base64url_to_bytes(data["ch"]),
            client_id=data["cid"],
            connection=data["conn"],
            organization_id=data["org"],
            rp_id=data["rp"],
            origin=data["ori"],
            expires_at=data["exp"],
            user_handle=base64url_to_bytes(handle) if handle is not None else None,
            user_profile=data.get("up", {}),
            user_metadata=data.get("um", {}),
            user_id=data.get("uid"),
        )


class SessionStore(Protocol):
    """Where pending ceremonies wait for their token exchange.

    Implementations raise :class:`flask_passkey.errors.BackendUnavailable` when their backend
    cannot be reached, and never return a session that has expired.
    """

    def put(self, session: AuthSession, *, now: float) -> None:
        """Keep ``session`` until ``session.expires_at`` (it may be dropped any time after).

        ``now`` is the caller's clock, for stores that compute a time to live.
        """

    def take(self, session_id: str, *, now: float) -> AuthSession | None:
        """Remove and return the session, atomically.

        Of any number of concurrent calls with the same id, at most one gets the session.
        Returns None when the id is unknown, already taken, or expired at ``now``.
        """

    def put_marker(self, key: str, *, expires_at: float, now: float) -> bool:
        """Record ``key`` until ``expires_at`` unless it is recorded already (put-if-absent).

        True for the call that records it; False while it stays recorded. Once expired (at
        ``now``, the caller's clock, or by the backend's own clock for stores that let it
        expire keys) the key counts as absent again. Of any number of concurrent calls with
        one key, exactly one gets True. Markers live apart from sessions: ``take`` never
        returns one. Used to refuse a DPoP proof seen before (its ``jti``).
        """
