"""The redis+cluster:// and redis+sentinel:// URL forms, on throwaway servers of the test's
own: a one-node Redis Cluster holding every slot, and a sentinel watching one master."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask_passkey.testing import PasskeyFlow
from flask_passkey.testing.store_contract import LimitStorageContract, SessionStoreContract
from passkey_redis_support import RedisServer, free_cluster_port, wait_until
from tests.apps import CUSTOM_DOMAIN, make_app
from tests.servers import free_port

from flask_passkey_redis import RedisLimitCounters, RedisSessionStore
from flask_passkey_redis.connection import client_factory, parse_url
from flask_passkey_redis.limit_storage import limiter_storage_uri

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    nodes_file = tmp_path_factory.mktemp("cluster") / "nodes.conf"
    node = RedisServer(
        free_cluster_port(),
        args=[
            *RedisServer.DEFAULT_ARGS,
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            str(nodes_file),
        ],
    )
    try:
        node.start()
        client = node.client()
        client.execute_command("CLUSTER ADDSLOTSRANGE", 0, 16383)  # type: ignore[no-untyped-call]
        wait_until(lambda: client.cluster("info")["cluster_state"] == "ok", "the cluster")
        client.close()
        yield f"redis+cluster://127.0.0.1:{node.port}"
    finally:
        node.kill()


@pytest.fixture(scope="module")
def sentinel_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    master = RedisServer(free_port())
    config = Path(tmp_path_factory.mktemp("sentinel"), "sentinel.conf")  # sentinel rewrites it
    config.write_text(f"sentinel monitor mymaster 127.0.0.1 {master.port} 1\n")
    sentinel = RedisServer(free_port(), args=[str(config), "--sentinel"])
    try:
        master.start()
        sentinel.start()
        client = sentinel.client()
        wait_until(
            lambda: client.sentinel_get_master_addr_by_name("mymaster") is not None,
            "the sentinel",
        )
        client.close()
        yield f"redis+sentinel://127.0.0.1:{sentinel.port}/mymaster"
    finally:
        sentinel.kill()
        master.kill()


def store_for(url: str) -> RedisSessionStore:
    connect = client_factory(parse_url(url), socket_timeout=2.0)
    return RedisSessionStore(connect, key_prefix="flask-passkey-test:")


class TestRedisClusterSessionStoreContract(SessionStoreContract):
    @pytest.fixture
    def store(self, cluster_url: str) -> Iterator[RedisSessionStore]:
        store = store_for(cluster_url)
        yield store
        store.close()


class TestRedisSentinelSessionStoreContract(SessionStoreContract):
    @pytest.fixture
    def store(self, sentinel_url: str) -> Iterator[RedisSessionStore]:
        store = store_for(sentinel_url)
        yield store
        store.close()


@pytest.mark.parametrize("url_fixture", ["cluster_url", "sentinel_url"])
def test_app_on_a_cluster_or_sentinel_url_signs_up_and_limits_there(
    request: pytest.FixtureRequest, url_fixture: str
) -> None:
    app = make_app(redis_url=request.getfixturevalue(url_fixture))
    state = app.extensions["passkey"]
    assert isinstance(state.sessions, RedisSessionStore)
    assert type(state.limiter.storage) is RedisLimitCounters

    passkey = PasskeyFlow(app.test_client(), client_id="spa", host=CUSTOM_DOMAIN)
    assert passkey.sign_up({"email": "ann@example.com"})["id_token"]
    response = passkey.challenge()

    assert response.status_code == 200
    assert response.headers["X-RateLimit-Remaining"] == "59"  # the default 60 per minute


class TestRedisLimitCountersOnClusterAndSentinel(LimitStorageContract):
    @pytest.fixture(params=["cluster_url", "sentinel_url"])
    def storage(self, request: pytest.FixtureRequest) -> Iterator[RedisLimitCounters]:
        url = request.getfixturevalue(request.param)
        storage = RedisLimitCounters(limiter_storage_uri(parse_url(url), socket_timeout=2))
        yield storage
        storage.reset()
