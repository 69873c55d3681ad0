"""In-memory stores for one process (tests, a single worker); nothing survives a restart."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from typing import TYPE_CHECKING

from flask_passkey.hookspecs import hookimpl
from flask_passkey.models import IDENTIFIERS, Credential, Identifier, User
from flask_passkey.stores.sessions import AuthSession
from flask_passkey.stores.users import CredentialTaken, IdentifierTaken, RefreshGrant, SigningKey

if TYPE_CHECKING:
    from flask import Flask

#: Spent refresh tokens are kept (to detect their reuse) until their family expires; expired
#: ones are dropped once every this many redemptions.
PURGE_EVERY = 100


class MemorySessionStore:
    """Sessions in a dict guarded by a lock; expired ones are purged as new ones arrive."""

    def __init__(self) -> None:
        self._sessions: OrderedDict[str, AuthSession] = OrderedDict()
        #: put_marker's keys, with their expiry.
        self._markers: dict[str, float] = {}
        self._lock = threading.Lock()

    def put(self, session: AuthSession, *, now: float) -> None:
        with self._lock:
            self._purge_expired(now)
            self._sessions[session.id] = session

    def take(self, session_id: str, *, now: float) -> AuthSession | None:
        with self._lock:
            session = self._sessions.pop(session_id, None)
            self._purge_expired(now)
        if session is None or session.is_expired(now):
            return None
        return session

    def put_marker(self, key: str, *, expires_at: float, now: float) -> bool:
        with self._lock:
            if self._markers.get(key, now) > now:
                return False
            self._markers[key] = expires_at
            if len(self._markers) % 100 == 0:
                self._markers = {k: e for k, e in self._markers.items() if e > now}
        return True

    def __len__(self) -> int:
        return len(self._sessions)

    def _purge_expired(self, now: float) -> None:
        # Sessions share one timeout, so insertion order is (nearly) expiry order: stop at the
        # first live one instead of scanning everything.
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if not oldest.is_expired(now):
                break
            self._sessions.popitem(last=False)


class MemoryUserStore:
    """Users in dicts guarded by one lock: for tests and single-process demos only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[str, User] = {}
        self._identifiers: dict[tuple[str, Identifier, str], str] = {}
        self._credentials: dict[bytes, Credential] = {}
        self._members: set[tuple[str, str]] = set()
        self._refresh: dict[str, RefreshGrant] = {}
        #: Revoked families and when their revocation may be forgotten.
        self._revoked: dict[str, float] = {}
        self._uses = 0
        self._keys: list[SigningKey] = []

    def create_user(
        self, user: User, credential: Credential, *, organization_id: str | None
    ) -> None:
        keys = [
            (user.connection, kind, value)
            for kind in IDENTIFIERS
            if (value := user.identifier(kind)) is not None
        ]
        with self._lock:
            for key in keys:
                if key in self._identifiers:
                    raise IdentifierTaken(key[1])
            if credential.id in self._credentials:
                raise CredentialTaken()
            self._users[user.id] = user
            self._identifiers.update((key, user.id) for key in keys)
            self._credentials[credential.id] = credential
            if organization_id is not None:
                self._members.add((organization_id, user.id))

    def find_user(self, *, connection: str, kind: Identifier, value: str) -> User | None:
        user_id = self._identifiers.get((connection, kind, value))
        return self._users.get(user_id) if user_id is not None else None

    def get_user(self, user_id: str) -> User | None:
        return self._users.get(user_id)

    def get_credential(self, credential_id: bytes) -> Credential | None:
        return self._credentials.get(credential_id)

    def record_login(
        self,
        credential_id: bytes,
        *,
        expected_sign_count: int,
        sign_count: int,
        backed_up: bool,
        used_at: float,
    ) -> bool:
        with self._lock:
            current = self._credentials.get(credential_id)
            if current is None or current.sign_count != expected_sign_count:
                return False
            self._credentials[credential_id] = replace(
                current, sign_count=sign_count, backed_up=backed_up, last_used_at=used_at
            )
            return True

    def list_credentials(self, user_id: str) -> list[Credential]:
        with self._lock:  # a dict another thread adds to cannot be iterated
            found = [c for c in self._credentials.values() if c.user_id == user_id]
        return sorted(found, key=lambda c: c.created_at)

    def add_credential(self, credential: Credential) -> None:
        with self._lock:
            if credential.id in self._credentials:
                raise CredentialTaken()
            self._credentials[credential.id] = credential

    def rename_credential(self, *, user_id: str, credential_id: bytes, name: str) -> bool:
        with self._lock:
            current = self._credentials.get(credential_id)
            if current is None or current.user_id != user_id:
                return False
            self._credentials[credential_id] = replace(current, name=name)
            return True

    def delete_credential(self, *, user_id: str, credential_id: bytes) -> bool:
        with self._lock:
            current = self._credentials.get(credential_id)
            if current is None or current.user_id != user_id:
                return False
            del self._credentials[credential_id]
            return True

    def list_users(self, *, limit: int = 100, offset: int = 0) -> list[User]:
        with self._lock:
            users = sorted(self._users.values(), key=lambda u: u.created_at)
        return users[offset : offset + limit]

    def add_member(self, *, organization_id: str, user_id: str) -> None:
        with self._lock:
            self._members.add((organization_id, user_id))

    def is_member(self, *, organization_id: str, user_id: str) -> bool:
        return (organization_id, user_id) in self._members

    def put_refresh_token(self, token_hash: str, grant: RefreshGrant) -> None:
        with self._lock:
            self._refresh[token_hash] = grant

    def get_refresh_token(self, token_hash: str) -> RefreshGrant | None:
        with self._lock:
            grant = self._refresh.get(token_hash)
            if grant is None or grant.family_id in self._revoked:
                return None
            return grant

    def use_refresh_token(self, token_hash: str, *, now: float) -> bool:
        with self._lock:
            grant = self._refresh.get(token_hash)
            if grant is None or grant.used_at is not None or grant.family_id in self._revoked:
                return False
            self._refresh[token_hash] = replace(grant, used_at=now)
            self._uses += 1
            if self._uses % PURGE_EVERY == 0:
                self._purge_refresh_tokens(now)
            return True

    def revoke_refresh_token_family(self, family_id: str, *, expires_at: float) -> None:
        with self._lock:
            self._revoked[family_id] = expires_at
            for token_hash in [h for h, g in self._refresh.items() if g.family_id == family_id]:
                del self._refresh[token_hash]

    def _purge_refresh_tokens(self, now: float) -> None:
        """Forget tokens and revocations past their family's absolute expiry (lock held)."""
        for token_hash in [h for h, g in self._refresh.items() if g.expires_at <= now]:
            del self._refresh[token_hash]
        for family_id in [f for f, expires_at in self._revoked.items() if expires_at <= now]:
            del self._revoked[family_id]

    def signing_keys(self) -> list[SigningKey]:
        return list(self._keys)

    def add_signing_key(self, key: SigningKey) -> None:
        with self._lock:
            self._keys.append(key)

    def add_first_signing_key(self, key: SigningKey) -> bool:
        with self._lock:
            if self._keys:
                return False
            self._keys.append(key)
            return True


class MemoryStorePlugin:
    @hookimpl(trylast=True)
    def passkey_session_store(self, app: Flask) -> MemorySessionStore:
        return MemorySessionStore()

    @hookimpl(trylast=True)
    def passkey_user_store(self, app: Flask) -> MemoryUserStore:
        return MemoryUserStore()
