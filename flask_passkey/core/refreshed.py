"""A value read from a slow source at most every so many seconds, shared by a process's threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Refreshed(Generic[T]):
    """What ``load`` returns, read again on the first :meth:`get` once ``ttl`` seconds of
    ``clock`` have passed since the last read (or after :meth:`invalidate`).

    Reads between refreshes take no lock; one thread at a time reloads, and the others keep
    the value they see until it has. A ``load`` that raises leaves the old value (and its age)
    in place, so the next :meth:`get` tries again.
    """

    def __init__(self, load: Callable[[], T], *, ttl: float, clock: Callable[[], float]) -> None:
        self._load = load
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        # -inf: the first get() loads, whatever the ttl (even an infinite one).
        self._loaded_at = float("-inf")
        self._value: T

    def get(self) -> T:
        now = self._clock()
        if now - self._loaded_at >= self._ttl:
            with self._lock:
                if now - self._loaded_at >= self._ttl:
                    self._value = self._load()
                    self._loaded_at = now
        return self._value

    def invalidate(self) -> None:
        """Read the source again on the next :meth:`get`."""
        with self._lock:
            self._loaded_at = float("-inf")
