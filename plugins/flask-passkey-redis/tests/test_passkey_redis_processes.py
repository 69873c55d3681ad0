"""Two real app server processes sharing one Redis, like two workers behind a load balancer:
the per-IP limit and the pending ceremonies hold across them."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pytest
from flask_passkey.testing import PasskeyFlow, SoftAuthenticator
from passkey_redis_support import AppServer, HttpClient
from tests.apps import CUSTOM_DOMAIN

pytestmark = pytest.mark.redis

LIMIT = 5


@pytest.fixture(scope="module")
def ports(
    redis_url: str, run_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[int]]:
    """The ports of two app servers on the test Redis and one SQLite user database, behind
    one trusted proxy (each test claims its own client address in X-Forwarded-For, so its
    counters are its own)."""
    prefix = f"{run_prefix}processes:"
    files = tmp_path_factory.mktemp("app-servers")
    config = {
        "database_url": f"sqlite:///{files / 'users.sqlite3'}",
        "redis_url": redis_url,
        "redis_key_prefix": prefix,
        "rate_limit": f"{LIMIT} per minute",
        "trusted_proxies": 1,
    }
    servers = [AppServer(config, files / f"server-{n}.log") for n in (1, 2)]
    try:
        for server in servers:  # one after the other: the first creates the database
            server.start()
        yield [server.port for server in servers]
    finally:
        for server in servers:
            server.stop()


def test_per_ip_limit_holds_across_two_processes(ports: list[int], client_ip: str) -> None:
    http = HttpClient(ports, forwarded_for=client_ip)
    body = {"client_id": "spa"}

    allowed = [http.post("/passkey/challenge", json=body) for _ in range(LIMIT)]
    refused = [http.post("/passkey/challenge", json=body) for _ in range(len(ports))]

    assert {response.port for response in allowed} == set(ports)
    assert [r.status_code for r in allowed] == [200] * LIMIT
    remaining = [int(r.headers["X-RateLimit-Remaining"]) for r in allowed]
    assert remaining == list(range(LIMIT - 1, -1, -1))
    assert {response.port for response in refused} == set(ports)
    for response in refused:
        assert response.status_code == 429
        assert response.get_json()["error"] == "too_many_requests"
        assert int(response.headers["Retry-After"]) > 0


def test_another_client_address_has_its_own_counter(
    ports: list[int], new_client_ip: Callable[[], str]
) -> None:
    first = HttpClient(ports, forwarded_for=new_client_ip())
    for _ in range(LIMIT + 1):
        first.post("/passkey/challenge", json={"client_id": "spa"})
    second = HttpClient(ports, forwarded_for=new_client_ip())
    assert second.post("/passkey/challenge", json={"client_id": "spa"}).status_code == 200


def test_ceremonies_started_on_one_process_finish_on_the_other(
    ports: list[int], client_ip: str
) -> None:
    # Sign-up: register on the first server, token on the second; sign-in the other way
    # round. Sessions are in the shared Redis, users in the shared SQLite database.
    authenticator = SoftAuthenticator()
    forth = HttpClient(ports, forwarded_for=client_ip)
    back = HttpClient(ports[::-1], forwarded_for=client_ip)

    signed_up = PasskeyFlow(
        forth, client_id="spa", host=CUSTOM_DOMAIN, authenticator=authenticator
    ).sign_up({"email": f"{secrets.token_hex(4)}@example.com"})
    signed_in = PasskeyFlow(
        back, client_id="spa", host=CUSTOM_DOMAIN, authenticator=authenticator
    ).sign_in()

    assert signed_up["id_token"]
    assert signed_in["id_token"]
    assert (forth.sent, back.sent) == (2, 2)


def test_auth_session_redeemed_on_one_process_is_refused_on_the_other(
    ports: list[int], client_ip: str
) -> None:
    http = HttpClient(ports, forwarded_for=client_ip)
    passkey = PasskeyFlow(http, client_id="spa", host=CUSTOM_DOMAIN)
    started = passkey.register({"email": f"{secrets.token_hex(4)}@example.com"}).get_json()
    credential = SoftAuthenticator().create(
        started["authn_params_public_key"], origin=f"https://{CUSTOM_DOMAIN}"
    )

    first = passkey.token(started["auth_session"], credential)
    replayed = passkey.token(started["auth_session"], credential)

    assert (first.port, replayed.port) == (ports[1], ports[0])
    assert first.status_code == 200
    assert replayed.status_code == 400
    assert replayed.get_json()["error"] == "invalid_grant"
