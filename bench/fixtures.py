"""What the load needs before it starts: databases, users with passkeys, and, for the token
endpoint, sessions issued ahead with their signed assertions or refresh tokens minted ahead, one
request body each; for the userinfo endpoint, an access token; for the reference token endpoint
(``ref/naive-token``), the same kind of login bodies and a file of the sessions and credentials
they need."""

from __future__ import annotations

import itertools
import json
import math
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from webauthn.helpers import generate_challenge

from flask_passkey.core.ceremony import new_session_id
from flask_passkey.core.grants import hash_token
from flask_passkey.extension import get_state
from flask_passkey.models import REFRESH_TOKEN_GRANT, WEBAUTHN_GRANT
from flask_passkey.stores.sessions import AuthSession, SessionStore
from flask_passkey.stores.sql import SqlStore
from flask_passkey.stores.sql_schema import auth_sessions, refresh_tokens
from flask_passkey.stores.users import RefreshGrant, UserStore, new_family_id
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
    REFRESH_SCOPE,
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


class TokenSupply:
    """Refresh tokens (or login bodies) handed out for the loads, each sent once: the ones a
    load left unsent come back (:meth:`give_back`) and go out first next time; new ones are
    asked of ``mint`` (which may give fewer than asked when it has no more: the load then runs
    out)."""

    def __init__(self, mint: Callable[[int], list[str]]) -> None:
        self._mint = mint
        self._spare: list[str] = []

    def take(self, count: int) -> list[str]:
        taken, self._spare = self._spare[:count], self._spare[count:]
        return taken + self._mint(count - len(taken)) if len(taken) < count else taken

    def give_back(self, tokens: Sequence[str]) -> None:
        self._spare = [*tokens, *self._spare]

    @classmethod
    def of(cls, items: list[str]) -> TokenSupply:
        """A supply of ``items`` only, in their order."""

        def next_items(count: int) -> list[str]:
            taken = items[:count]
            del items[:count]
            return taken

        return cls(next_items)


@dataclass
class LoginFixture:
    """An in-process app on the same stores as the servers, and passkeys of its users."""

    backend: str
    app: Flask
    authenticator: SoftAuthenticator
    credential_ids: list[bytes]
    #: Per user, the grant its sign-up's refresh token stands for (REFRESH_SCOPE, its passkey,
    #: the default lifetimes): what the refresh tokens minted ahead stand for.
    grants: list[RefreshGrant]
    #: The first user's access token for the userinfo audience (valid a day, the default).
    access_token: str
    refresh: TokenSupply = field(init=False)

    def __post_init__(self) -> None:
        self.refresh = TokenSupply(
            lambda count: mint_refresh_tokens(self.users, self.grants, count)
        )

    @property
    def sessions(self) -> SessionStore:
        return get_state(self.app).sessions

    @property
    def users(self) -> UserStore:
        return get_state(self.app).users


@dataclass
class PoolFixture:
    """Request bodies made ahead, in a fixed number: what a server on the memory store made for
    itself before its workers forked (see :func:`memory_pool_app`; the store lives in the
    server's processes, out of our reach), or the reference token endpoint's logins (see
    :func:`naive_token_fixture`)."""

    #: An access token for the userinfo endpoint, when the server made one.
    access_token: str | None
    refresh: TokenSupply
    #: Login requests (JSON, one a line), each redeeming its own session.
    logins: TokenSupply

    @classmethod
    def read(cls, pool_file: Path) -> PoolFixture:
        pool = json.loads(pool_file.read_text())
        return cls(
            pool["access_token"],
            TokenSupply.of(pool["refresh_tokens"]),
            TokenSupply.of(pool["logins"]),
        )


def login_fixture(backend: str, *, users: int = 64, database: str = BENCH_DATABASE) -> LoginFixture:
    """Sign ``users`` new users up through the API (see :func:`sign_up_users`)."""
    if backend in ("postgres", "redis"):
        create_database(database)
    WORK_DIR.mkdir(exist_ok=True)
    return sign_up_users(passkey_app(backend, database=database), backend, users=users)


def sign_up_users(app: Flask, backend: str, *, users: int) -> LoginFixture:
    """Sign ``users`` new users up through ``app``'s API (one synced passkey each: counter
    zero, so logins never contend on a sign count), each with a refresh token
    (REFRESH_SCOPE) whose grant is kept."""
    authenticator = SoftAuthenticator(counter="zero")
    flow = PasskeyFlow(
        app.test_client(), client_id=CLIENT_ID, host=HOST, authenticator=authenticator
    )
    run = f"{time.time_ns():x}"
    answers = [
        flow.sign_up(
            {"email": f"bench-{run}-{index}@example.com", "name": f"Bench {index}"},
            scope=REFRESH_SCOPE,
        )
        for index in range(users)
    ]
    store = get_state(app).users
    grants = []
    for answer in answers:
        grant = store.get_refresh_token(hash_token(answer["refresh_token"]))
        if grant is None:
            raise RuntimeError("a sign-up's refresh token is not in the store")
        grants.append(grant)
    return LoginFixture(
        backend,
        app,
        authenticator,
        [c.credential_id for c in authenticator.credentials],
        grants,
        answers[0]["access_token"],
    )


def mint_refresh_tokens(store: UserStore, grants: Sequence[RefreshGrant], count: int) -> list[str]:
    """``count`` new refresh tokens put straight into the store (batched), as the token
    endpoint would have issued them: round robin over ``grants``, each a family of its own (as
    a sign-in of its own), so a token sent twice revokes nothing but its own."""
    tokens = [secrets.token_urlsafe(32) for _ in range(count)]
    rows = [
        (hash_token(token), replace(grants[index % len(grants)], family_id=new_family_id()))
        for index, token in enumerate(tokens)
    ]
    if isinstance(store, SqlStore):
        values = [{"token_hash": token_hash, **asdict(grant)} for token_hash, grant in rows]
        with store.engine.begin() as connection:
            for start in range(0, len(values), 5000):
                connection.execute(refresh_tokens.insert(), values[start : start + 5000])
    else:
        for token_hash, grant in rows:
            store.put_refresh_token(token_hash, grant)
    return tokens


def memory_pool_app(pool_file: Path, *, logins: int, refresh_tokens: int) -> Flask:
    """flask-passkey on the memory store, for ``gunicorn --preload``: 64 users signed up,
    ``logins`` login sessions issued (with a signed assertion each) and ``refresh_tokens``
    refresh tokens minted in the master, before the workers fork, so that each worker's copy of
    the store knows them all (a session or token is redeemed by one of them); the login bodies,
    the tokens and an access token are written to ``pool_file`` (read by
    :meth:`PoolFixture.read`)."""
    app = passkey_app("memory")
    fixture = sign_up_users(app, "memory", users=64)
    tokens = mint_refresh_tokens(fixture.users, fixture.grants, refresh_tokens)
    bodies = [_line(body) for body in login_bodies(fixture, logins)]
    pool_file.write_text(
        json.dumps(
            {"access_token": fixture.access_token, "refresh_tokens": tokens, "logins": bodies}
        )
    )
    return app


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


def login_body(
    authenticator: SoftAuthenticator, credential_id: bytes, session_id: str, challenge: bytes
) -> dict[str, Any]:
    """The token request of a login: the session's challenge signed with the passkey
    ``credential_id`` of ``authenticator``, scope LOGIN_SCOPE."""
    assertion = authenticator.get(
        {"challenge": b64url(challenge), "rpId": HOST}, origin=ORIGIN, credential_id=credential_id
    )
    return {
        "grant_type": WEBAUTHN_GRANT,
        "client_id": CLIENT_ID,
        "auth_session": session_id,
        "authn_response": assertion,
        "scope": LOGIN_SCOPE,
    }


def login_bodies(fixture: LoginFixture, count: int) -> list[dict[str, Any]]:
    """Issue ``count`` sessions and sign an assertion for each (round robin over the users'
    passkeys): their token requests."""
    return [
        login_body(fixture.authenticator, credential_id, session.id, session.challenge)
        for session, credential_id in zip(
            issue_sessions(fixture, count), itertools.cycle(fixture.credential_ids), strict=False
        )
    ]


def token_bodies(fixture: LoginFixture, count: int, prefix: Path) -> Path:
    """:func:`login_bodies`, written to ``<prefix>-<thread>.jsonl`` for bench/load.lua."""
    return write_bodies(login_bodies(fixture, count), prefix)


def naive_token_fixture(reference_file: Path, count: int, *, users: int = 64) -> PoolFixture:
    """``count`` login bodies for the reference token endpoint (bench.apps.naive_token_app),
    made like the token targets' (:func:`login_body`: a synced ES256 passkey per user, round
    robin, each session redeemed once), and ``reference_file``, which that app reads at
    startup: each session's challenge, and each credential's public key (COSE) and owner."""
    authenticator = SoftAuthenticator(counter="zero")
    owners: dict[str, dict[str, str]] = {}
    for index in range(users):
        email = f"naive-{index}@example.com"
        authenticator.create(
            {
                "challenge": b64url(generate_challenge()),
                "rp": {"id": HOST, "name": "Bench"},
                "user": {"id": b64url(secrets.token_bytes(16)), "name": email, "displayName": ""},
                "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
            },
            origin=ORIGIN,
        )
        credential = authenticator.credentials[-1]
        owners[b64url(credential.credential_id)] = {
            "public_key": b64url(credential.cose_public_key),
            "sub": f"naive|{credential.user_handle.hex()}",
            "name": f"Naive {index}",
            "email": email,
        }
    challenges: dict[str, str] = {}
    bodies = []
    for _, credential in zip(range(count), itertools.cycle(authenticator.credentials)):
        session_id, challenge = secrets.token_urlsafe(32), generate_challenge()
        challenges[session_id] = b64url(challenge)
        body = login_body(authenticator, credential.credential_id, session_id, challenge)
        bodies.append(_line(body))
    reference_file.write_text(json.dumps({"sessions": challenges, "credentials": owners}))
    return PoolFixture(None, TokenSupply.of([]), TokenSupply.of(bodies))


def refresh_bodies(tokens: Sequence[str], prefix: Path) -> Path:
    """The refresh requests of ``tokens`` (no scope: the sign-in's), in ``<prefix>-<thread>.jsonl``;
    thread ``t`` gets ``tokens[t::THREADS]``, in that order."""
    bodies = [
        {"grant_type": REFRESH_TOKEN_GRANT, "client_id": CLIENT_ID, "refresh_token": token}
        for token in tokens
    ]
    return write_bodies(bodies, prefix)


def unsent(tokens: Sequence[str], sent: Sequence[int]) -> list[str]:
    """The tokens of :func:`refresh_bodies` (or lines of :func:`write_lines`) that the load's
    threads did not send (``sent``: how many lines each thread sent)."""
    return [token for thread, count in enumerate(sent) for token in tokens[thread::THREADS][count:]]


def write_bodies(bodies: Sequence[Mapping[str, Any]], prefix: Path) -> Path:
    """One JSON body a line, round robin over ``<prefix>-<thread>.jsonl`` for bench/load.lua."""
    return write_lines([_line(body) for body in bodies], prefix)


def write_lines(lines: Sequence[str], prefix: Path) -> Path:
    """Bodies already in JSON, as :func:`write_bodies` writes them (thread ``t`` gets
    ``lines[t::THREADS]``, in that order)."""
    files = [open(f"{prefix}-{thread}.jsonl", "w") for thread in range(THREADS)]  # noqa: SIM115
    try:
        for index, line in enumerate(lines):
            files[index % THREADS].write(line + "\n")
    finally:
        for file in files:
            file.close()
    return prefix


def _line(body: Mapping[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))
