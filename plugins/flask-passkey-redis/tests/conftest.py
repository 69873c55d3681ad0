"""Fixtures for the Redis plugin's tests: the Redis of PASSKEY_TEST_REDIS_URL and a key prefix
unique to this test run, whose keys are deleted at the end.

Test modules import helpers from ``passkey_redis_support`` and the suite's own modules
(``tests.apps``, ``tests.databases``, ``tests.servers``), never from this file.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from passkey_redis_support import LIMITER_KEYS, RedisServer, running_redis
from tests.databases import delete_keys, require_redis


@pytest.fixture(scope="session")
def redis_url() -> str:
    """PASSKEY_TEST_REDIS_URL, once it answers PING (skip, or under CI=true fail, if not)."""
    return require_redis()


@pytest.fixture(scope="session")
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client of the test Redis, to look at and clean up keys."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    yield client
    client.close()


@pytest.fixture(scope="session")
def run_prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A key prefix no other test run uses; every key under it is deleted afterwards."""
    prefix = f"flask-passkey-redis-test:{uuid.uuid4().hex}:"
    yield prefix
    delete_keys(redis_client, prefix)


@pytest.fixture
def key_prefix(run_prefix: str) -> str:
    """A prefix for one test, inside the run's."""
    return f"{run_prefix}{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def new_client_ip(redis_client: redis.Redis) -> Iterator[Callable[[], str]]:
    """Hands out client addresses of the benchmarking range 198.18.0.0/15, so a test's
    rate-limit counters in the test Redis are its own; they are deleted afterwards.

    (The limiter's keys cannot go under the run's prefix: flask-passkey passes the limiter no
    storage options, and the URL has no place for a key prefix.)
    """
    issued: list[str] = []

    def new() -> str:
        issued.append(f"198.18.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}")
        return issued[-1]

    yield new
    for address in issued:
        delete_keys(redis_client, f"{LIMITER_KEYS}{address}/")


@pytest.fixture
def client_ip(new_client_ip: Callable[[], str]) -> str:
    """A client address of this test's own (see ``new_client_ip``)."""
    return new_client_ip()


@pytest.fixture(scope="module")
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of our own, whose command statistics nobody else disturbs."""
    with running_redis() as server:
        yield server
