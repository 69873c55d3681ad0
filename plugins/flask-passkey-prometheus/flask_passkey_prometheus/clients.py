"""Client ids as metric labels: only those of the tenant's clients."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from .metrics import UNKNOWN

#: How long (seconds) the list of known clients is kept before it is asked for again, so a
#: client added with ``flask passkey clients add`` gets its own label within a minute.
REFRESH_SECONDS = 60.0


class KnownClients:
    """Maps a client id to itself when the tenant knows it, to ``unknown`` otherwise (any id a
    request names would make a new series). The list comes from ``load`` (the tenant's
    ``passkey_get_clients``), at most once per ``refresh_seconds``."""

    def __init__(
        self,
        load: Callable[[], Iterable[str]],
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._ids: frozenset[str] = frozenset()
        self._loaded_at: float | None = None

    def label(self, client_id: str | None) -> str:
        now = self._clock()
        if self._loaded_at is None or now - self._loaded_at >= self._refresh_seconds:
            self._ids = frozenset(self._load())
            self._loaded_at = now
        if client_id is not None and client_id in self._ids:
            return client_id
        return UNKNOWN
