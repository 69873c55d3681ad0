"""Cost budget of the Redis plugin: the commands a challenge and a login's redemption send Redis,
counted, so that the benchmarks' results are hard to regress.

Counts, not timings: they are deterministic on any machine, and a change that adds a command
(a round trip) fails here. Counted on a redis-server of the test's own, whose command
statistics nothing else disturbs. The SQL store's budget is in ``tests/test_cost_budget.py``.

The limiter's storage is the plugin's (``flask_passkey_redis.limit_storage``): flask-limiter
counts a request with one ``EVALSHA`` (count the hit and read the window's TTL) before the view,
and the ``X-RateLimit-*`` headers it writes after the view come from that hit, not from Redis.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_passkey.testing import PasskeyFlow
from passkey_redis_support import RedisServer, client_from
from tests.apps import CUSTOM_DOMAIN, make_app

pytestmark = pytest.mark.redis

#: Commands of the observer itself, not of the app (Redis 6.2 names CONFIG RESETSTAT
#: ``config``, 7 ``config|resetstat``).
OBSERVER_COMMANDS = frozenset({"config", "echo", "info"})


@pytest.fixture
def redis_app(own_redis: RedisServer, tmp_path: Path) -> Iterator[Flask]:
    """Sessions and the limiter's counters in ``own_redis``; users in a SQLite file."""
    app = make_app(
        redis_url=own_redis.url,
        redis_key_prefix=f"{uuid.uuid4().hex}:",
        database_url=f"sqlite:///{tmp_path / 'users.sqlite3'}",
    )
    yield app
    state = app.extensions["passkey"]
    state.sessions.close()
    state.users.close()


@dataclass
class Traffic:
    """What reached Redis: the commands clients sent (each a round trip), the commands scripts
    ran inside them, and INFO commandstats' calls per command (which counts both)."""

    sent: list[str] = field(default_factory=list)
    scripted: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)


@contextmanager
def redis_traffic(server: RedisServer) -> Iterator[Traffic]:
    """Record the commands ``server`` runs inside the block.

    MONITOR tells a client's commands from a script's; INFO commandstats also counts what MONITOR
    leaves out (administrative commands). ECHO marks where the block begins and ends.
    """
    start, end = f"start-{uuid.uuid4().hex}", f"end-{uuid.uuid4().hex}"
    traffic = Traffic()
    observer = server.client()
    try:
        with observer.monitor() as monitor:
            observer.config_resetstat()
            observer.echo(start)
            yield traffic
            observer.echo(end)
            stats = observer.info("commandstats")
            while monitor.next_command()["command"] != f"ECHO {start}":
                pass
            while (command := monitor.next_command())["command"] != f"ECHO {end}":
                name = command["command"].split(" ", 1)[0].lower()
                (traffic.scripted if command["client_type"] == "lua" else traffic.sent).append(name)
    finally:
        observer.close()
    traffic.calls = {
        name.removeprefix("cmdstat_"): stat["calls"]
        for name, stat in stats.items()
        if name.removeprefix("cmdstat_").partition("|")[0] not in OBSERVER_COMMANDS
    }


def fresh_client_ip() -> str:
    """An address of the benchmarking range 198.18.0.0/15 for one test: its limiter window is
    its own, however often the test runs against the module's Redis."""
    return f"198.18.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


def post_challenge(client: FlaskClient) -> Any:
    return client.post(
        "/passkey/challenge", json={"client_id": "spa"}, headers={"Host": CUSTOM_DOMAIN}
    )


def test_each_challenge_is_one_limiter_command_and_one_set(
    redis_app: Flask, own_redis: RedisServer
) -> None:
    client = client_from(redis_app, fresh_client_ip())
    # Warm-up: both connections opened, the limiter's script loaded, its window started.
    assert post_challenge(client).status_code == 200

    with redis_traffic(own_redis) as traffic:
        responses = [post_challenge(client) for _ in range(5)]

    assert [response.status_code for response in responses] == [200] * 5
    # The limiter's hit, then the session kept; the headers come from the hit.
    assert traffic.sent == ["evalsha", "set"] * 5, traffic.sent
    # No EXPIRE inside the script: the window exists already.
    assert traffic.scripted == ["incrby", "pttl"] * 5, traffic.scripted
    assert traffic.calls == {"evalsha": 5, "incrby": 5, "pttl": 5, "set": 5}
    # ... and the headers are right (the default limit, 60 per minute).
    assert [response.headers["X-RateLimit-Limit"] for response in responses] == ["60"] * 5
    remaining = [response.headers["X-RateLimit-Remaining"] for response in responses]
    assert remaining == ["58", "57", "56", "55", "54"]
    # One window: flask-limiter writes its reset as the window's end + 1, cut to a second,
    # which moves by one when the requests straddle a second.
    resets = [int(response.headers["X-RateLimit-Reset"]) for response in responses]
    assert max(resets) - min(resets) <= 1
    assert time.time() - 1 <= min(resets) <= time.time() + 62


def test_a_login_is_redeemed_with_one_limiter_command_and_one_getdel(
    redis_app: Flask, own_redis: RedisServer
) -> None:
    flow = PasskeyFlow(
        client_from(redis_app, fresh_client_ip()), client_id="spa", host=CUSTOM_DOMAIN
    )
    flow.sign_up({"email": "ann@example.com"})
    flow.sign_in()  # warm-up: the token endpoint's limiter window started
    started = flow.challenge().get_json()
    assertion = flow.authenticator.get(started["authn_params_public_key"], origin=flow.origin)

    with redis_traffic(own_redis) as traffic:
        response = flow.token(started["auth_session"], assertion)

    assert response.status_code == 200, response.get_json()
    # The session, taken once; the credential and its user are read from the SQL store.
    assert traffic.sent == ["evalsha", "getdel"], traffic.sent
    assert traffic.scripted == ["incrby", "pttl"], traffic.scripted
    assert traffic.calls == {"evalsha": 1, "incrby": 1, "pttl": 1, "getdel": 1}
