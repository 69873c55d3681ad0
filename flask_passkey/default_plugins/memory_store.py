"""In-memory session store: the fallback for one process (tests, the demo, a single worker)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from ..hookspecs import hookimpl
from ..sessions import AuthSession

if TYPE_CHECKING:
    from flask import Flask


class MemorySessionStore:
    """Sessions in a dict guarded by a lock; expired ones are purged as new ones arrive."""

    def __init__(self) -> None:
        self._sessions: OrderedDict[str, AuthSession] = OrderedDict()
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


class MemoryStorePlugin:
    @hookimpl(trylast=True)
    def passkey_session_store(self, app: Flask) -> MemorySessionStore:
        return MemorySessionStore()
