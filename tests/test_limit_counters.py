"""The limiter's in-process counters (``passkey+memory://``) and what a request remembers of
its hits."""

from __future__ import annotations

from typing import ClassVar

import pytest
from flask import Flask

from flask_passkey.stores.limit_counters import LimitWindow, MemoryCounters
from flask_passkey.testing.store_contract import LimitStorageContract
from tests.apps import make_app
from tests.support import post_challenge


class TestMemoryCounters(LimitStorageContract):
    @pytest.fixture
    def storage(self) -> MemoryCounters:
        return MemoryCounters("passkey+memory://")


def test_ended_windows_of_keys_never_met_again_are_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MemoryCounters, "SWEEP_SECONDS", 0.0)
    storage = MemoryCounters()
    for address in range(100):
        storage.hit_window(f"LIMITER/192.0.2.{address}", -1, 1)  # a window that has ended
    storage.hit_window("LIMITER/192.0.2.200", 60, 1)

    assert storage.read_window("LIMITER/192.0.2.200") is not None
    assert storage.read_window("LIMITER/192.0.2.1") is None
    assert storage.reset() == 1  # only the live window was left


class CountingCounters(MemoryCounters):
    """The in-process counters, counting how often a window is read from the storage."""

    STORAGE_SCHEME = ["passkey-test+counting"]  # noqa: RUF012 -- limits' registry reads a list
    reads: ClassVar[int] = 0
    hit_keys: ClassVar[list[str]] = []

    def hit_window(self, key: str, expiry: int, amount: int) -> LimitWindow:
        type(self).hit_keys.append(key)
        return super().hit_window(key, expiry, amount)

    def read_window(self, key: str) -> LimitWindow | None:
        type(self).reads += 1
        return super().read_window(key)


@pytest.fixture
def counted_app() -> Flask:
    CountingCounters.reads = 0
    CountingCounters.hit_keys = []
    return make_app(rate_limit="5 per hour", rate_limit_storage_uri="passkey-test+counting://")


def test_a_limited_request_reads_its_headers_from_its_hit(counted_app: Flask) -> None:
    responses = [post_challenge(counted_app.test_client()) for _ in range(2)]

    assert [r.headers["X-RateLimit-Remaining"] for r in responses] == ["4", "3"]
    assert CountingCounters.reads == 0


def test_what_a_request_remembers_ends_with_it(counted_app: Flask) -> None:
    post_challenge(counted_app.test_client())
    storage = counted_app.extensions["passkey"].limiter.storage
    (key,) = CountingCounters.hit_keys
    storage.hit_window(key, 60, 3)  # another worker's hits

    assert storage.get(key) == 4
    assert CountingCounters.reads == 1
