"""What the load needs before it starts: databases, users with passkeys, and, for the token
endpoint, sessions issued ahead with their signed assertions, one request body each."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from webauthn.helpers import generate_challenge

from flask_passkey.ceremony import new_session_id
from flask_passkey.default_plugins.sql_schema import auth_sessions
from flask_passkey.default_plugins.sql_store import SqlStore
from flask_passkey.extension import get_state
from flask_passkey.models import WEBAUTHN_GRANT
from flask_passkey.sessions import AuthSession, SessionStore
from flask_passkey.testing import PasskeyFlow, SoftAuthenticator, b64url

from .apps import passkey_app
from .common import (
    BENCH_DATABASE,
    CLIENT_ID,
    CONNECTION,
    HOST,
    LOGIN_SCOPE,
    ORIGIN,
    POSTGRES_URL,
    WORK_DIR,
)
from .loadgen import THREADS

#: Lifetime of the sessions issued ahead: longer than any run.
SESSION_SECONDS = 3600.0


def create_database(name: str) -> None:
    """CREATE DATABASE ``name`` on the server of POSTGRES_URL unless it exists."""
    engine = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            exists = connection.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if exists is None:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        engine.dispose()


@dataclass
class LoginFixture:
    """An in-process app on the same stores as the servers, and passkeys of its users."""

    backend: str
    app: Flask
    authenticator: SoftAuthenticator
    credential_ids: list[bytes]

    @property
    def sessions(self) -> SessionStore:
        return get_state(self.app).sessions


def login_fixture(backend: str, *, users: int = 64, database: str = BENCH_DATABASE) -> LoginFixture:
    """Sign ``users`` new users up through the API (one synced passkey each: counter zero, so
    logins never contend on a sign count)."""
    if backend in ("postgres", "redis"):
        create_database(database)
    WORK_DIR.mkdir(exist_ok=True)
    app = passkey_app(backend, database=database)
    authenticator = SoftAuthenticator(counter="zero")
    flow = PasskeyFlow(
        app.test_client(), client_id=CLIENT_ID, host=HOST, authenticator=authenticator
    )
    run = f"{time.time_ns():x}"
    for index in range(users):
        flow.sign_up({"email": f"bench-{run}-{index}@example.com", "name": f"Bench {index}"})
    return LoginFixture(
        backend, app, authenticator, [c.credential_id for c in authenticator.credentials]
    )


def login_session(expires_at: float) -> AuthSession:
    """A login session for the benchmark's client, as the challenge endpoint issues one."""
    return AuthSession(
        id=new_session_id(),
        operation="login",
        challenge=generate_challenge(),
        client_id=CLIENT_ID,
        connection=CONNECTION,
        organization_id=None,
        rp_id=HOST,
        origin=ORIGIN,
        expires_at=expires_at,
    )


def issue_sessions(fixture: LoginFixture, count: int) -> list[AuthSession]:
    """``count`` login sessions put straight into the store (batched), as the challenge
    endpoint would have issued them."""
    now = time.time()
    sessions = [login_session(now + SESSION_SECONDS) for _ in range(count)]
    _put_all(fixture.sessions, sessions, now=now)
    return sessions


def _put_all(store: SessionStore, sessions: Sequence[AuthSession], *, now: float) -> None:
    if isinstance(store, SqlStore):
        rows = [{"id": s.id, "data": s.to_json(), "expires_at": s.expires_at} for s in sessions]
        with store.engine.begin() as connection:
            for start in range(0, len(rows), 5000):
                connection.execute(auth_sessions.insert(), rows[start : start + 5000])
        return
    client = getattr(store, "client", None)
    if client is not None:  # flask_passkey_redis.RedisSessionStore
        pipeline = client().pipeline(transaction=False)
        for index, session in enumerate(sessions, 1):
            ttl_ms = math.ceil((session.expires_at - now) * 1000)
            pipeline.set(store.key(session.id), session.to_json(), px=ttl_ms)  # type: ignore[attr-defined]
            if index % 2000 == 0:
                pipeline.execute()
        pipeline.execute()
        return
    for session in sessions:
        store.put(session, now=now)


def token_bodies(fixture: LoginFixture, count: int, prefix: Path) -> Path:
    """Issue ``count`` sessions, sign an assertion for each (round robin over the users'
    passkeys) and write the token requests to ``<prefix>-<thread>.jsonl`` for bench/load.lua."""
    sessions = issue_sessions(fixture, count)
    files = [open(f"{prefix}-{thread}.jsonl", "w") for thread in range(THREADS)]  # noqa: SIM115
    try:
        for index, session in enumerate(sessions):
            credential_id = fixture.credential_ids[index % len(fixture.credential_ids)]
            assertion = fixture.authenticator.get(
                {"challenge": b64url(session.challenge), "rpId": HOST},
                origin=ORIGIN,
                credential_id=credential_id,
            )
            body = {
                "grant_type": WEBAUTHN_GRANT,
                "client_id": CLIENT_ID,
                "auth_session": session.id,
                "authn_response": assertion,
                "scope": LOGIN_SCOPE,
            }
            files[index % THREADS].write(json.dumps(body, separators=(",", ":")) + "\n")
    finally:
        for file in files:
            file.close()
    return prefix
