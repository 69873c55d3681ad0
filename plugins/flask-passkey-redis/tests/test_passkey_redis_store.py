"""RedisSessionStore against a real Redis: the session store contract, the commands it sends,
and what it does with a Redis it cannot reach."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import redis
from flask_passkey.errors import BackendUnavailable
from flask_passkey.testing.store_contract import NOW, SessionStoreContract, new_session
from passkey_redis_support import RedisServer
from tests.servers import free_port

from flask_passkey_redis import RedisSessionStore
from flask_passkey_redis.connection import client_factory, parse_url

pytestmark = pytest.mark.redis


def store_for(url: str, *, key_prefix: str, socket_timeout: float = 2.0) -> RedisSessionStore:
    """The store exactly as the plugin builds it for PASSKEY_REDIS_URL = ``url``."""
    connect = client_factory(parse_url(url), socket_timeout=socket_timeout)
    return RedisSessionStore(connect, key_prefix=key_prefix)


@pytest.fixture
def store(redis_url: str, key_prefix: str) -> Iterator[RedisSessionStore]:
    store = store_for(redis_url, key_prefix=key_prefix)
    yield store
    store.close()


class TestRedisSessionStoreContract(SessionStoreContract):
    """Every promise of flask_passkey.stores.sessions.SessionStore, kept in Redis."""


def test_session_is_one_key_that_expires_with_the_session(
    store: RedisSessionStore, redis_client: redis.Redis, key_prefix: str
) -> None:
    session = new_session(expires_at=NOW + 60)
    store.put(session, now=NOW)

    key = f"{key_prefix}session:{session.id}"
    assert store.key(session.id) == key
    assert redis_client.keys(f"{key_prefix}*") == [key.encode()]
    assert 59_000 < redis_client.pttl(key) <= 60_000
    assert json.loads(redis_client.get(key) or b"")["id"] == session.id


def test_time_to_live_follows_the_callers_clock_not_the_redis_clock(
    store: RedisSessionStore, redis_client: redis.Redis
) -> None:
    # NOW is in 2023: an absolute expiry (PXAT) would be long past on the Redis clock.
    session = new_session(expires_at=NOW + 1.5)
    store.put(session, now=NOW + 1)
    assert 0 < redis_client.pttl(store.key(session.id)) <= 500


def test_session_expired_when_put_is_not_written(
    store: RedisSessionStore, redis_client: redis.Redis, key_prefix: str
) -> None:
    store.put(new_session(expires_at=NOW), now=NOW)
    assert redis_client.keys(f"{key_prefix}*") == []


def test_unreadable_value_is_dropped_not_returned(
    store: RedisSessionStore, redis_client: redis.Redis
) -> None:
    redis_client.set(store.key("garbled"), b"\xff not json", px=60_000)
    assert store.take("garbled", now=NOW) is None
    assert redis_client.exists(store.key("garbled")) == 0


def test_value_stored_under_another_id_is_not_returned(
    store: RedisSessionStore, redis_client: redis.Redis
) -> None:
    session = new_session()
    redis_client.set(store.key("other-id"), session.to_json(), px=60_000)
    assert store.take("other-id", now=NOW) is None


def test_stores_with_different_prefixes_do_not_see_each_other(
    redis_url: str, key_prefix: str
) -> None:
    first = store_for(redis_url, key_prefix=f"{key_prefix}a:")
    second = store_for(redis_url, key_prefix=f"{key_prefix}b:")
    session = new_session()
    first.put(session, now=NOW)
    assert second.take(session.id, now=NOW) is None
    assert first.take(session.id, now=NOW) == session


def test_a_given_client_is_used_as_is(redis_client: redis.Redis, key_prefix: str) -> None:
    store = RedisSessionStore(redis_client, key_prefix=key_prefix)
    session = new_session()
    store.put(session, now=NOW)
    assert store.client() is redis_client
    assert store.take(session.id, now=NOW) == session


def test_put_is_one_set_and_take_is_one_getdel(own_redis: RedisServer) -> None:
    store = store_for(own_redis.url, key_prefix=f"{uuid.uuid4().hex}:")
    observer = redis.Redis.from_url(own_redis.url)
    store.take("warm-up", now=NOW)  # opens the pooled connection (HELLO, CLIENT SETNAME...)
    observer.config_resetstat()

    session = new_session()
    store.put(session, now=NOW)
    assert store.take(session.id, now=NOW) == session

    stats = observer.info("commandstats")
    observer.close()
    store.close()
    calls = {
        name.removeprefix("cmdstat_"): stat["calls"]
        for name, stat in stats.items()
        if name not in ("cmdstat_info", "cmdstat_config|resetstat")
    }
    assert calls == {"set": 1, "getdel": 1}


def test_unreachable_redis_raises_backend_unavailable() -> None:
    store = store_for(f"redis://127.0.0.1:{free_port()}/0", key_prefix="unused:")
    with pytest.raises(BackendUnavailable):
        store.put(new_session(), now=NOW)
    with pytest.raises(BackendUnavailable):
        store.take("anything", now=NOW)


@pytest.mark.parametrize(
    "url_form", ["redis+cluster://127.0.0.1:{port}", "redis+sentinel://127.0.0.1:{port}/mymaster"]
)
def test_unreachable_cluster_or_sentinel_raises_backend_unavailable(url_form: str) -> None:
    # Making the store connects nothing: an app starts while its Redis is down.
    store = store_for(url_form.format(port=free_port()), key_prefix="unused:", socket_timeout=1)
    with pytest.raises(BackendUnavailable):
        store.put(new_session(), now=NOW)
    with pytest.raises(BackendUnavailable):
        store.take("anything", now=NOW)
