"""Redis going away and coming back, for real: a redis-server of the test's own is killed
(or frozen) and started again on the same port while the app keeps running."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask_passkey.testing import PasskeyFlow, SoftAuthenticator
from passkey_redis_support import RedisServer, running_redis
from tests.apps import CUSTOM_DOMAIN, make_app
from tests.servers import free_port

pytestmark = pytest.mark.redis

UNAVAILABLE = {"error": "temporarily_unavailable"}


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A Redis of this test's own, which it may kill and start again."""
    with running_redis() as server:
        yield server


def flow(app: Flask) -> PasskeyFlow:
    return PasskeyFlow(app.test_client(), client_id="spa", host=CUSTOM_DOMAIN)


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] == UNAVAILABLE["error"]
    assert body["error_description"]
    assert "Traceback" not in response.get_data(as_text=True)


def test_session_store_outage_answers_503_and_recovers_without_a_restart(
    server: RedisServer,
) -> None:
    app = make_app(redis_url=server.url, rate_limit_storage_uri="memory://")
    passkey = flow(app)
    assert passkey.challenge().status_code == 200

    server.kill()
    assert_unavailable(passkey.challenge())
    assert_unavailable(passkey.register({"email": "ann@example.com"}))

    server.start()
    assert passkey.challenge().status_code == 200
    assert passkey.sign_up({"email": "ann@example.com"})["id_token"]


def test_token_exchange_during_an_outage_answers_503(server: RedisServer) -> None:
    app = make_app(redis_url=server.url, rate_limit_storage_uri="memory://")
    passkey = flow(app)
    started = passkey.register({"email": "ann@example.com"}).get_json()
    credential = SoftAuthenticator().create(
        started["authn_params_public_key"], origin=f"https://{CUSTOM_DOMAIN}"
    )

    server.kill()
    assert_unavailable(passkey.token(started["auth_session"], credential))

    server.start()  # an empty Redis: the session died with the old one
    response = passkey.token(started["auth_session"], credential)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_app_starts_while_redis_is_down_and_serves_once_it_is_up() -> None:
    server = RedisServer(free_port())
    app = make_app(redis_url=server.url, rate_limit_storage_uri="memory://")
    passkey = flow(app)
    assert_unavailable(passkey.challenge())
    try:
        server.start()
        assert passkey.challenge().status_code == 200
    finally:
        server.kill()


@pytest.mark.parametrize("limiter_storage", ["memory://", None], ids=["memory", "same-redis"])
def test_frozen_redis_answers_503_after_the_socket_timeout(
    server: RedisServer, limiter_storage: str | None
) -> None:
    # With the limiter on the same Redis, its URI carries the same socket timeouts.
    app = make_app(
        redis_url=server.url,
        redis_socket_timeout=0.5,
        rate_limit_storage_uri=limiter_storage,
    )
    passkey = flow(app)
    assert passkey.challenge().status_code == 200
    assert server.process is not None

    server.process.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        assert_unavailable(passkey.challenge())
        assert time.monotonic() - started < 3
    finally:
        server.process.send_signal(signal.SIGCONT)

    assert passkey.challenge().status_code == 200


def test_limiter_storage_outage_answers_503_too(server: RedisServer) -> None:
    # The limiter's counters in the same dead Redis: flask-passkey has flask-limiter wrap
    # storage errors in limits.errors.StorageError and answers those 503 as well.
    app = make_app(redis_url=server.url)
    passkey = flow(app)
    assert passkey.challenge().status_code == 200

    server.kill()
    assert_unavailable(passkey.challenge())

    server.start()
    assert passkey.challenge().status_code == 200
