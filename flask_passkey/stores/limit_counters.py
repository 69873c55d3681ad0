"""The rate limiter's counters: ``limits`` storages of our own, written against the storage
interface ``limits`` documents for custom backends (subclass :class:`limits.storage.Storage`,
name a ``STORAGE_SCHEME``).

What they add to ``limits``' own storages: a request's limit headers cost no extra read.
flask-limiter reads a window back after hitting it (``X-RateLimit-Remaining`` and ``-Reset``
come from ``get`` and ``get_expiry``), which on Redis is one more round trip per read. A
:class:`RememberingStorage` remembers what each hit answered, on the thread that made it, and
answers those reads from it until the request ends (:func:`forget_hits`, which flask-passkey
calls at every request's teardown), and never for longer than :data:`REMEMBERED_SECONDS`. The
count read back is the count this request's hit produced: what the client has left after this
request.

:class:`MemoryCounters` (``passkey+memory://``, the default) keeps fixed windows in a dict
of this process, expiring them as it meets them (no timer thread, unlike ``memory://``).
"""

from __future__ import annotations

import threading
import time
from abc import abstractmethod
from dataclasses import dataclass

from limits.storage import Storage

#: The in-process storage's URI.
MEMORY_COUNTERS_URI = "passkey+memory://"
#: The longest a hit's window answers reads, should nobody call :func:`forget_hits` (a hit
#: outside a request): past it, reads go to the storage.
REMEMBERED_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class LimitWindow:
    """A fixed window's counter: the hits in it and when it ends (Unix time)."""

    count: int
    expires_at: float


class _Hits(threading.local):
    def __init__(self) -> None:
        #: (storage id, key) -> (the window a hit answered, time.monotonic() of the hit)
        self.windows: dict[tuple[int, str], tuple[LimitWindow, float]] = {}


_hits = _Hits()


def forget_hits() -> None:
    """Forget the windows this thread's hits answered: the next read of any counter goes to the
    storage. Call it when a request ends."""
    _hits.windows.clear()


class RememberingStorage(Storage):
    """A fixed-window ``limits`` storage whose reads of a counter this thread has just hit
    (until :func:`forget_hits`) answer what the hit answered, without asking the backend.

    Subclasses implement :meth:`hit_window` (count a hit, atomically, starting the window if
    there is none), :meth:`read_window`, :meth:`drop_window` and :meth:`drop_windows`, and
    ``check`` and ``base_exceptions`` as ``limits`` defines them. ``limits`` wraps the public
    methods so that with ``wrap_exceptions`` a backend failure raises
    :class:`limits.errors.StorageError`.
    """

    STORAGE_SCHEME: list[str] | None = None

    @abstractmethod
    def hit_window(self, key: str, expiry: int, amount: int) -> LimitWindow:
        """Add ``amount`` to ``key``'s counter, starting a window of ``expiry`` seconds if it
        has none (or its window has ended), and return the window as it is after the hit."""

    @abstractmethod
    def read_window(self, key: str) -> LimitWindow | None:
        """``key``'s current window, None when it has none (or it ended)."""

    @abstractmethod
    def drop_window(self, key: str) -> None:
        """Forget ``key``'s counter."""

    @abstractmethod
    def drop_windows(self) -> int | None:
        """Forget every counter; return how many there were, if the backend can tell."""

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        window = self.hit_window(key, expiry, amount)
        _hits.windows[(id(self), key)] = (window, time.monotonic())
        return window.count

    def get(self, key: str) -> int:
        window = self._window(key)
        return window.count if window is not None else 0

    def get_expiry(self, key: str) -> float:
        window = self._window(key)
        return window.expires_at if window is not None else time.time()

    def clear(self, key: str) -> None:
        _hits.windows.pop((id(self), key), None)
        self.drop_window(key)

    def reset(self) -> int | None:
        forget_hits()
        return self.drop_windows()

    def _window(self, key: str) -> LimitWindow | None:
        remembered = _hits.windows.get((id(self), key))
        if remembered is not None and time.monotonic() - remembered[1] < REMEMBERED_SECONDS:
            return remembered[0]
        return self.read_window(key)


class StorageFailure(Exception):
    """Never raised: the in-process storage cannot fail, but ``limits`` asks every storage
    which exceptions are its backend's."""


class MemoryCounters(RememberingStorage):
    """Fixed windows in a dict of this process (each gunicorn worker counts on its own).

    An ended window is dropped when its key is next met, and every :data:`SWEEP_SECONDS` the
    ended ones of keys not met again are dropped in one pass, so the dict holds no more than the
    windows of the last sweep period. No thread is started (``limits``' ``memory://`` starts a
    timer thread whenever a hit finds none running).
    """

    STORAGE_SCHEME = ["passkey+memory"]  # noqa: RUF012 -- limits' registry reads a list
    SWEEP_SECONDS = 60.0

    def __init__(
        self, uri: str | None = None, wrap_exceptions: bool = False, **options: float | str | bool
    ) -> None:
        super().__init__(uri, wrap_exceptions, **options)
        self._windows: dict[str, LimitWindow] = {}
        self._lock = threading.Lock()
        self._next_sweep = time.time() + self.SWEEP_SECONDS

    @property
    def base_exceptions(self) -> type[Exception]:
        return StorageFailure

    def hit_window(self, key: str, expiry: int, amount: int) -> LimitWindow:
        now = time.time()
        with self._lock:
            if now >= self._next_sweep:
                self._sweep(now)
            window = self._windows.get(key)
            if window is None or window.expires_at <= now:
                window = LimitWindow(amount, now + expiry)
            else:
                window = LimitWindow(window.count + amount, window.expires_at)
            self._windows[key] = window
        return window

    def read_window(self, key: str) -> LimitWindow | None:
        window = self._windows.get(key)
        return window if window is not None and window.expires_at > time.time() else None

    def drop_window(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)

    def check(self) -> bool:
        return True

    def drop_windows(self) -> int | None:
        with self._lock:
            count = len(self._windows)
            self._windows.clear()
        return count

    def _sweep(self, now: float) -> None:
        self._windows = {key: w for key, w in self._windows.items() if w.expires_at > now}
        self._next_sweep = now + self.SWEEP_SECONDS
