"""Micro-benchmarks of the hot functions (pytest-benchmark): ``make bench-micro``, or
``python -m pytest bench/test_micro.py -p no:cacheprovider``. Not part of the test run (the
root pytest configuration collects tests/ and plugins/ only).

PostgreSQL and Redis cases skip when their server does not answer.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from joserfc import jwt
from joserfc.jwk import RSAKey
from pytest_benchmark.fixture import BenchmarkFixture

from flask_passkey.core.passkey_request import ValidationContext
from flask_passkey.core.tokens import KeyRing, TokenIssuer, generate_signing_key
from flask_passkey.extension import PasskeyState, get_state
from flask_passkey.models import User
from flask_passkey.stores.memory import MemorySessionStore
from flask_passkey.stores.sessions import AuthSession, SessionStore
from flask_passkey.stores.sql import SqlStore
from flask_passkey.testing import PasskeyFlow, SoftAuthenticator, b64url

from .apps import passkey_app
from .common import CLIENT_ID, CONNECTION, HOST, LOGIN_SCOPE, ORIGIN, REDIS_URL, postgres_url
from .fixtures import create_database, login_session


def _state(backend: str = "memory") -> PasskeyState:
    return get_state(passkey_app(backend))


def _context(state: PasskeyState) -> ValidationContext:
    request = state.validator.check_request(
        endpoint="challenge", host=HOST, port=None, client_ip="127.0.0.1"
    )
    return state.validator.check_client(
        request,
        client_id=CLIENT_ID,
        client_secret=None,
        secret_source="none",
        realm=None,
        organization=None,
    )


def _session(ttl: float = 600.0) -> AuthSession:
    return login_session(time.time() + ttl)


# -- challenge issue ------------------------------------------------------------------------


def test_challenge_issue_memory(benchmark: BenchmarkFixture) -> None:
    """Ceremonies.begin_login on the memory session store: the challenge endpoint's core."""
    state = _state()
    context = _context(state)
    result = benchmark(lambda: state.ceremonies.begin_login(context=context))
    assert result.authn_params_public_key["rpId"] == HOST


def test_challenge_validation(benchmark: BenchmarkFixture) -> None:
    """Every validation hook of a challenge (tenant, client, connection, six steps)."""
    state = _state()
    assert benchmark(lambda: _context(state)).client_id == CLIENT_ID


# -- session take -----------------------------------------------------------------------------


@dataclass
class _Stores:
    tmp: Path

    def make(self, kind: str) -> SessionStore:
        if kind == "memory":
            return MemorySessionStore()
        if kind == "sqlite":
            return SqlStore(f"sqlite:///{self.tmp / 'micro.sqlite3'}")
        if kind == "postgres":
            try:
                create_database("passkey_bench")
                return SqlStore(postgres_url("passkey_bench"))
            except (sa.exc.OperationalError, Exception) as error:
                pytest.skip(f"PostgreSQL: {error}")
        try:
            redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
        except redis.RedisError as error:
            pytest.skip(f"Redis: {error}")
        from flask_passkey_redis import RedisSessionStore

        return RedisSessionStore(redis.Redis.from_url(REDIS_URL), key_prefix="passkey-micro:")


@pytest.fixture
def stores(tmp_path: Path) -> _Stores:
    return _Stores(tmp_path)


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres", "redis"])
def test_session_take(benchmark: BenchmarkFixture, stores: _Stores, kind: str) -> None:
    """SessionStore.take of a session put just before (the put is not timed)."""
    store = stores.make(kind)

    def put() -> tuple[tuple[str], dict[str, float]]:
        session = _session()
        store.put(session, now=time.time())
        return (session.id,), {"now": time.time()}

    taken = benchmark.pedantic(store.take, setup=put, rounds=300, warmup_rounds=20)
    assert taken is not None


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres", "redis"])
def test_session_put(benchmark: BenchmarkFixture, stores: _Stores, kind: str) -> None:
    store = stores.make(kind)
    benchmark.pedantic(lambda: store.put(_session(), now=time.time()), rounds=300, warmup_rounds=20)


# -- assertion verify -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed_up() -> Iterator[tuple[Flask, SoftAuthenticator]]:
    app = passkey_app("memory")
    authenticator = SoftAuthenticator(counter="zero")
    PasskeyFlow(
        app.test_client(), client_id=CLIENT_ID, host=HOST, authenticator=authenticator
    ).sign_up({"email": "micro@example.com"})
    yield app, authenticator


def test_assertion_verify(
    benchmark: BenchmarkFixture, signed_up: tuple[Flask, SoftAuthenticator]
) -> None:
    """Ceremonies.finish_login: parse, look up, verify the ES256 assertion (py_webauthn),
    record the login (memory user store; a synced passkey, so the same assertion verifies
    again)."""
    app, authenticator = signed_up
    state = get_state(app)
    session = _session()
    assertion = authenticator.get(
        {"challenge": b64url(session.challenge), "rpId": HOST}, origin=ORIGIN
    )
    client = _context(state).client
    sign_in = benchmark(
        lambda: state.ceremonies.finish_login(session=session, client=client, response=assertion)
    )
    assert sign_in.user.email == "micro@example.com"


# -- token signing ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def issuer() -> TokenIssuer:
    key = generate_signing_key(now=0.0)
    keys = KeyRing(load=lambda: [key], clock=time.time, refresh_seconds=float("inf"))
    return TokenIssuer(
        keys=keys, clock=time.time, access_token_lifetime=86400, id_token_lifetime=36000
    )


_USER = User(
    id="passkey|micro",
    connection=CONNECTION,
    user_handle=os.urandom(16),
    created_at=0.0,
    email="micro@example.com",
    profile={"name": "Micro"},
)


def test_token_signing(benchmark: BenchmarkFixture, issuer: TokenIssuer) -> None:
    """TokenIssuer.issue: an access token and an ID token, two RS256 signatures."""
    tokens = benchmark(
        lambda: issuer.issue(
            issuer=f"{ORIGIN}/",
            user=_USER,
            client_id=CLIENT_ID,
            scope=tuple(LOGIN_SCOPE.split()),
            audience=f"{ORIGIN}/userinfo",
            organization_id=None,
            amr=("swk", "mfa"),
            auth_time=time.time(),
            extra_claims={},
        )
    )
    assert tokens.id_token is not None


def test_one_rs256_signature(benchmark: BenchmarkFixture) -> None:
    """One RS256 token with joserfc's jwt.encode (what TokenIssuer.issue does twice)."""
    key = RSAKey.generate_key(2048, auto_kid=True)
    header = {"alg": "RS256", "kid": key.kid, "typ": "JWT"}
    token = benchmark(
        lambda: jwt.encode(header, {"sub": "passkey|micro", "iat": 1}, key, ["RS256"])
    )
    assert token.count(".") == 2
