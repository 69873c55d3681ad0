"""The contract of the durable store: users, their passkeys, organization membership, refresh
tokens and signing keys.

Implementations raise :class:`flask_passkey.errors.BackendUnavailable` when their backend
cannot be reached, and leave no partial write behind when any method fails.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Protocol

from flask_passkey.models import Credential, Identifier, User


class IdentifierTaken(Exception):
    """``create_user`` found the user's email, phone number or username already in use."""

    def __init__(self, kind: Identifier) -> None:
        self.kind = kind
        super().__init__(kind)


class CredentialTaken(Exception):
    """``create_user`` or ``add_credential`` found the credential id already registered."""


def new_family_id() -> str:
    """A new refresh-token family's id (random, URL-safe)."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class RefreshGrant:
    """What a refresh token stands for; the token itself is stored only as a hash.

    Every token rotated out of one sign-in shares its ``family_id`` and the grant of that
    sign-in (scope, audience, organization, absolute expiry): rotation never changes them.
    """

    user_id: str
    client_id: str
    scope: tuple[str, ...]
    audience: str | None
    organization_id: str | None
    #: The family's absolute expiry: every rotation keeps the first one.
    expires_at: float
    #: When the user signed in with the passkey; refreshed ID tokens keep it as ``auth_time``.
    auth_time: float
    #: The passkey that signed in: once it is deleted, the refresh token stops working.
    credential_id: bytes | None = None
    #: A public client's DPoP key (RFC 7638 thumbprint): only a proof signed with it redeems
    #: the token (RFC 9449 §5).
    dpop_jkt: str | None = None
    #: The tokens rotated out of one sign-in; reusing a spent one revokes them all.
    family_id: str = field(default_factory=new_family_id)
    #: Inactivity expiry of this token (never after ``expires_at``); None = none.
    idle_expires_at: float | None = None
    #: When this token was redeemed (rotated); None while it is unused.
    used_at: float | None = None

    def expired(self, now: float) -> bool:
        """Whether the token is past its absolute or its inactivity expiry at ``now``."""
        return now >= self.expires_at or (
            self.idle_expires_at is not None and now >= self.idle_expires_at
        )


@dataclass(frozen=True)
class SigningKey:
    """A private JWK (JSON text) and when it was created; the newest is the active one."""

    kid: str
    private_jwk: str
    created_at: float = field(compare=False)


class UserStore(Protocol):
    """Users and everything durable that hangs off them."""

    def create_user(
        self, user: User, credential: Credential, *, organization_id: str | None
    ) -> None:
        """Create ``user`` with its first ``credential`` (and membership of ``organization_id``),
        all in one transaction.

        Identifiers are unique per connection (emails compared lower-case, as given by the
        caller). Raises IdentifierTaken or CredentialTaken, writing nothing, on a conflict.
        """

    def find_user(self, *, connection: str, kind: Identifier, value: str) -> User | None:
        """The user of ``connection`` whose identifier ``kind`` equals ``value``, if any."""

    def get_user(self, user_id: str) -> User | None:
        """The user with ``user_id``, if any."""

    def get_credential(self, credential_id: bytes) -> Credential | None:
        """The credential with ``credential_id`` (the WebAuthn ``rawId``), if any."""

    def record_login(
        self,
        credential_id: bytes,
        *,
        expected_sign_count: int,
        sign_count: int,
        backed_up: bool,
        used_at: float,
    ) -> bool:
        """Store a verified login's counter, backup state and time, as a compare-and-set.

        Updates only if the stored sign count still equals ``expected_sign_count``, so two
        logins racing with the same counter cannot both succeed. Returns whether it updated.
        """

    def list_credentials(self, user_id: str) -> list[Credential]:
        """The user's credentials, oldest first."""

    def add_credential(self, credential: Credential) -> None:
        """Register another credential of an existing user. Raises CredentialTaken."""

    def rename_credential(self, *, user_id: str, credential_id: bytes, name: str) -> bool:
        """Rename the user's credential; False when the user has no such credential."""

    def delete_credential(self, *, user_id: str, credential_id: bytes) -> bool:
        """Delete the user's credential; False when the user has no such credential."""

    def list_users(self, *, limit: int = 100, offset: int = 0) -> list[User]:
        """Users ordered by creation time, for operators."""

    def add_member(self, *, organization_id: str, user_id: str) -> None:
        """Make the user a member of the organization (idempotent)."""

    def is_member(self, *, organization_id: str, user_id: str) -> bool:
        """Whether the user belongs to the organization."""

    def put_refresh_token(self, token_hash: str, grant: RefreshGrant) -> None:
        """Keep ``grant`` (``used_at`` included: None for a new token) under the hash of its
        refresh token."""

    def get_refresh_token(self, token_hash: str) -> RefreshGrant | None:
        """The grant of the token with ``token_hash``, used or not (``used_at``), expired or
        not; None if unknown or if its family was revoked."""

    def use_refresh_token(self, token_hash: str, *, now: float) -> bool:
        """Mark the token used at ``now`` if it is still unused, as one compare-and-set: of
        concurrent calls for one token, exactly one returns True. False for a used, unknown
        or revoked token."""

    def revoke_refresh_token_family(self, family_id: str, *, expires_at: float) -> None:
        """Revoke every token of the family, including any put after this call; the
        revocation may be forgotten once ``expires_at`` (the family's absolute expiry) has
        passed. Idempotent."""

    def signing_keys(self) -> list[SigningKey]:
        """Persisted signing keys, oldest first."""

    def add_signing_key(self, key: SigningKey) -> None:
        """Persist a new signing key."""

    def add_first_signing_key(self, key: SigningKey) -> bool:
        """Persist ``key`` only if no signing key is stored yet; True if it was. The store
        decides atomically: of concurrent calls, from any number of processes sharing it,
        exactly one stores its key."""


class CredentialWithUserStore(Protocol):
    """An optional capability of a user store: a login's two reads in one.

    A store whose ``get_credential`` and ``get_user`` each cost a round trip (a database) can
    offer this; :class:`~flask_passkey.core.ceremony.Ceremonies` then uses it at every login.
    """

    def get_credential_with_user(self, credential_id: bytes) -> tuple[Credential, User] | None:
        """``get_credential(credential_id)`` and ``get_user`` of its ``user_id``, together;
        None when either is missing."""
