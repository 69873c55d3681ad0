"""How the installed plugin wires into flask-passkey: through the entry point, only when
PASSKEY_REDIS_URL is set, for the session store and the limiter's storage."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import pytest
import redis
from flask import Flask
from flask_passkey.stores.limit_counters import MemoryCounters
from flask_passkey.testing import DPoPKey, PasskeyFlow
from limits.storage import MemoryStorage
from passkey_redis_support import LIMITER_KEYS, RedisServer, client_from
from tests.apps import CUSTOM_DOMAIN, make_app

from flask_passkey_redis import RedisLimitCounters, RedisSessionStore, plugin

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_config(redis_url: str, key_prefix: str) -> dict[str, Any]:
    """Config for an app on the test Redis, its session keys under the test's prefix."""
    return {"redis_url": redis_url, "redis_key_prefix": key_prefix}


def post_challenge(app: Flask, client_ip: str = "192.0.2.1") -> Any:
    return client_from(app, client_ip).post(
        "/passkey/challenge", json={"client_id": "spa"}, headers={"Host": CUSTOM_DOMAIN}
    )


def test_plugin_is_installed_under_the_flask_passkey_entry_point_group() -> None:
    found = {ep.name: ep for ep in entry_points(group="flask_passkey")}
    assert found["redis"].value == "flask_passkey_redis:plugin"
    assert found["redis"].load() is plugin


def test_app_with_a_redis_url_keeps_sessions_and_limits_in_redis(
    redis_config: dict[str, Any], redis_client: redis.Redis, key_prefix: str, client_ip: str
) -> None:
    app = make_app(**redis_config)
    state = app.extensions["passkey"]
    assert isinstance(state.sessions, RedisSessionStore)
    assert state.plugin_manager.get_plugin("redis") is plugin
    assert state.limiter is not None
    assert type(state.limiter.storage) is RedisLimitCounters

    response = post_challenge(app, client_ip)

    assert response.status_code == 200
    auth_session = response.get_json()["auth_session"]
    assert redis_client.exists(f"{key_prefix}session:{auth_session}") == 1
    limit_keys = redis_client.keys(f"{LIMITER_KEYS}{client_ip}/*")
    assert limit_keys == [f"{LIMITER_KEYS}{client_ip}/passkey.challenge/60/1/minute".encode()]
    assert redis_client.get(limit_keys[0]) == b"1"


def test_sessions_and_limits_go_to_the_database_the_url_names(own_redis: RedisServer) -> None:
    app = make_app(redis_url=f"redis://127.0.0.1:{own_redis.port}/3")
    database_3 = redis.Redis(port=own_redis.port, db=3, socket_timeout=1)
    database_0 = own_redis.client()
    try:
        response = post_challenge(app, "192.0.2.3")

        assert response.status_code == 200
        auth_session = response.get_json()["auth_session"]
        assert database_3.exists(f"flask-passkey:session:{auth_session}") == 1
        assert database_3.get(f"{LIMITER_KEYS}192.0.2.3/passkey.challenge/60/1/minute") == b"1"
        assert database_0.dbsize() == 0
    finally:
        database_3.flushdb()
        database_3.close()
        database_0.close()
        app.extensions["passkey"].sessions.close()


def test_app_without_a_redis_url_is_unchanged_by_the_plugin() -> None:
    without_plugin = make_app(load_entry_points=False).extensions["passkey"]
    app = make_app()
    state = app.extensions["passkey"]

    assert app.config["PASSKEY_REDIS_URL"] is None
    assert not isinstance(state.sessions, RedisSessionStore)
    assert type(state.sessions) is type(without_plugin.sessions)
    assert isinstance(state.limiter.storage, MemoryCounters)
    assert post_challenge(app).status_code == 200


def test_explicit_limiter_storage_wins_over_the_plugins(redis_config: dict[str, Any]) -> None:
    state = make_app(**redis_config, rate_limit_storage_uri="memory://").extensions["passkey"]
    assert isinstance(state.sessions, RedisSessionStore)
    assert isinstance(state.limiter.storage, MemoryStorage)


def test_plugin_can_be_blocked_by_name() -> None:
    state = make_app(disabled_plugins=["redis"]).extensions["passkey"]
    assert state.plugin_manager.get_plugin("redis") is None
    assert not isinstance(state.sessions, RedisSessionStore)


def test_plugin_can_be_named_in_passkey_plugins_instead(redis_config: dict[str, Any]) -> None:
    state = make_app(
        **redis_config,
        load_entry_points=False,
        plugins=["flask_passkey_redis:plugin"],
    ).extensions["passkey"]
    assert isinstance(state.sessions, RedisSessionStore)


def test_sign_up_and_sign_in_with_sessions_in_redis(
    redis_config: dict[str, Any], redis_client: redis.Redis, key_prefix: str, client_ip: str
) -> None:
    app = make_app(**redis_config)
    flow = PasskeyFlow(client_from(app, client_ip), client_id="spa", host=CUSTOM_DOMAIN)

    assert flow.sign_up({"email": "ann@example.com"})["id_token"]
    assert flow.sign_in()["id_token"]

    assert redis_client.keys(f"{key_prefix}session:*") == []  # each one taken, once


def test_dpop_proofs_are_remembered_in_redis_so_a_replay_is_refused_by_any_app(
    redis_config: dict[str, Any], redis_client: redis.Redis, key_prefix: str, client_ip: str
) -> None:
    # Two apps on one Redis, as two workers: a proof one of them accepted, the other refuses.
    first, second = make_app(**redis_config), make_app(**redis_config)
    origin = f"https://{CUSTOM_DOMAIN}"
    proof = DPoPKey().proof("POST", f"{origin}/oauth/token")
    grant = {"grant_type": "urn:okta:params:oauth:grant-type:webauthn", "client_id": "spa"}
    headers = {"Host": CUSTOM_DOMAIN, "DPoP": proof}
    flow = PasskeyFlow(client_from(first, client_ip), client_id="spa", host=CUSTOM_DOMAIN)
    started = flow.register({"email": "dpop@example.com"}).get_json()
    created = flow.authenticator.create(started["authn_params_public_key"], origin=origin)
    signed_up = client_from(first, client_ip).post(
        "/oauth/token",
        json={**grant, "auth_session": started["auth_session"], "authn_response": created},
        headers=headers,
    )
    assert signed_up.status_code == 200, signed_up.get_json()
    assert signed_up.get_json()["token_type"] == "DPoP"
    assert len(redis_client.keys(f"{key_prefix}marker:dpop-jti:*")) == 1

    challenge = post_challenge(second, client_ip).get_json()
    assertion = flow.authenticator.get(challenge["authn_params_public_key"], origin=origin)
    replayed = client_from(second, client_ip).post(
        "/oauth/token",
        json={**grant, "auth_session": challenge["auth_session"], "authn_response": assertion},
        headers=headers,
    )

    assert replayed.status_code == 400
    assert replayed.get_json()["error"] == "invalid_dpop_proof"
    assert "used before" in replayed.get_json()["error_description"]
