"""RedisLimitCounters, the limiter's storage in Redis, against a redis-server of the test's own
(its ``reset`` clears every counter): the limiter storage contract, the keys it shares with
``limits``' own Redis storage, and a Redis it cannot reach."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask_passkey.testing.store_contract import LimitStorageContract
from limits.errors import StorageError
from limits.storage import RedisStorage, storage_from_string
from passkey_redis_support import RedisServer
from tests.servers import free_port

from flask_passkey_redis import RedisLimitCounters
from flask_passkey_redis.connection import parse_url
from flask_passkey_redis.limit_storage import limiter_storage_uri

pytestmark = pytest.mark.redis
KEY = LimitStorageContract.KEY


def counters_for(url: str, **options: bool) -> RedisLimitCounters:
    """The storage exactly as flask-limiter makes it from the plugin's URI."""
    storage = storage_from_string(
        limiter_storage_uri(parse_url(url), socket_timeout=1.0), **options
    )
    assert isinstance(storage, RedisLimitCounters)
    return storage


class TestRedisLimitCounters(LimitStorageContract):
    @pytest.fixture
    def storage(self, own_redis: RedisServer) -> Iterator[RedisLimitCounters]:
        storage = counters_for(own_redis.url)
        storage.reset()
        yield storage
        storage.reset()


def test_limits_own_redis_storage_reads_the_same_counters(own_redis: RedisServer) -> None:
    ours = counters_for(own_redis.url)
    theirs = RedisStorage(own_redis.url)
    try:
        ours.incr(KEY, 60)
        theirs.incr(KEY, 60)

        assert theirs.get(KEY) == 2
        assert ours.incr(KEY, 60) == 3
        assert 55 < theirs.get_expiry(KEY) - ours.get_expiry(KEY) + 60 < 65
    finally:
        ours.reset()


def test_a_counter_left_without_a_ttl_gets_one(own_redis: RedisServer) -> None:
    storage = counters_for(own_redis.url)
    client = own_redis.client()
    try:
        client.set(f"LIMITS:{KEY}", 7)  # written by something else, with no expiry

        assert storage.incr(KEY, 60) == 8
        assert 0 < client.ttl(f"LIMITS:{KEY}") <= 60
    finally:
        storage.reset()
        client.close()


def test_an_unreachable_redis_is_a_storage_error() -> None:
    storage = counters_for(f"redis://127.0.0.1:{free_port()}/0", wrap_exceptions=True)

    with pytest.raises(StorageError):
        storage.incr(KEY, 60)
    with pytest.raises(StorageError):
        storage.get(KEY)
    assert storage.check() is False
