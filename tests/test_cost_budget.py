"""Cost budget: the work a request may do, counted, so that the benchmarks' results are hard to
regress (issue #6).

The benchmarks measure time; a unit test that measures time is flaky and, on a loaded CI
machine, meaningless. These tests count instead, deterministically, what makes the hot paths
fast: the statements a request sends to the database (a challenge is one INSERT, a login's
redemption three statements, a refresh four) and the startup work it must never redo
(configuration, schemas, tenant, signing keys). A change that adds a database round trip, an
implicit transaction, a pool pre-ping or per-request setup fails here, whatever the machine's
speed.

The Redis plugin's budget (commands per request) is in
``plugins/flask-passkey-redis/tests/test_passkey_redis_cost_budget.py``.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import marshmallow
import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import URL

from flask_passkey import extension
from flask_passkey.builtins import tenant_config
from flask_passkey.config import Settings
from flask_passkey.core import tokens, validation
from flask_passkey.extension import get_state
from flask_passkey.models import REFRESH_TOKEN_GRANT, WEBAUTHN_GRANT, Client
from flask_passkey.stores import sql as sql_store
from flask_passkey.stores.sql import SqlStore
from flask_passkey.testing import PasskeyFlow
from tests.apps import FakeClock, make_app
from tests.databases import url_text
from tests.support import new_email, passkey_flow, post_challenge

#: Statements, as SQLAlchemy renders them (whitespace collapsed), as regular expressions.
INSERT_SESSION = r"INSERT INTO auth_sessions \(id, data, expires_at\) VALUES \(.+\)"
LOGIN_REDEMPTION = (
    # The session, spent in one statement: one winner among concurrent redemptions.
    r"DELETE FROM auth_sessions WHERE auth_sessions\.id = \S+ RETURNING (auth_sessions\.)?data",
    # The credential and its owner, in one read.
    r"SELECT .+ FROM credentials JOIN users ON users\.id = credentials\.user_id"
    r" WHERE credentials\.id = \S+",
    # The new sign count, compare-and-set.
    r"UPDATE credentials SET .+ WHERE credentials\.id = \S+ AND credentials\.sign_count = \S+",
)
#: A refresh: one statement more than when the token was taken in one DELETE ... RETURNING,
#: the price of validating the request before the token is spent.
REFRESH_REDEMPTION = (
    # The token's grant, read without spending it (a revoked family reads as unknown).
    r"SELECT .+ FROM refresh_tokens WHERE refresh_tokens\.token_hash = \S+"
    r" AND NOT \(EXISTS \(SELECT .+ FROM refresh_token_revocations WHERE .+\)\)",
    # The passkey it was signed in with, and its owner, in one read.
    r"SELECT .+ FROM credentials JOIN users ON users\.id = credentials\.user_id"
    r" WHERE credentials\.id = \S+",
    # The token spent, compare-and-set: one winner among concurrent redemptions.
    r"UPDATE refresh_tokens SET used_at=\S+ WHERE refresh_tokens\.token_hash = \S+"
    r" AND refresh_tokens\.used_at IS NULL AND NOT \(EXISTS \(.+\)\)",
    # Its replacement, of the same family.
    r"INSERT INTO refresh_tokens \(.+\) VALUES \(.+\)",
)


# -- what reaches the database --------------------------------------------------------------------


class StatementLog:
    """What an engine sends to its database while :meth:`recording`, seen at two levels.

    ``statements``: what SQLAlchemy executes (``before_cursor_execute``), to say which ones.
    ``sent``: what the driver sends the database: every statement SQLite runs (its trace
    callback), every statement psycopg sends PostgreSQL (libpq's trace: each simple Query and
    each Execute). Only this level sees what runs around SQLAlchemy's statement events: a pool
    pre-ping, the BEGIN and COMMIT of a transaction the driver opens.

    Create it before the requests to look at: it disposes of the engine's pool, so that every
    connection is traced from its start.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.statements: list[str] = []
        self.sent: list[str] = []
        self._recording = False
        #: Per connection: what it has sent so far.
        self._connections: list[Callable[[], list[str]]] = []
        #: (the traced connection, our descriptor of its trace file, libpq's duplicate)
        self._traces: list[tuple[Any, int, int]] = []
        sa.event.listen(engine, "connect", self._trace)
        sa.event.listen(engine, "before_cursor_execute", self._executed)
        engine.dispose()

    @contextmanager
    def recording(self) -> Iterator[None]:
        before = [len(sent()) for sent in self._connections]
        self._recording = True
        try:
            yield
        finally:
            self._recording = False
            for index, sent in enumerate(self._connections):
                self.sent += sent()[before[index] if index < len(before) else 0 :]

    def close(self) -> None:
        sa.event.remove(self.engine, "connect", self._trace)
        sa.event.remove(self.engine, "before_cursor_execute", self._executed)
        for pgconn, ours, libpqs in self._traces:
            if not pgconn.status:  # still open (CONNECTION_OK is 0): stop libpq writing first
                pgconn.untrace()
            os.close(libpqs)
            os.close(ours)
        self.engine.dispose()

    def _executed(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if self._recording:
            self.statements.append(" ".join(statement.split()))

    def _trace(self, dbapi_connection: Any, record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            statements: list[str] = []
            dbapi_connection.set_trace_callback(statements.append)
            self._connections.append(lambda: statements)
            return
        from psycopg import pq

        trace = os.memfd_create("libpq-trace")  # (libpq's trace is for Linux only)
        # libpq writes through a stdio stream of its own on this descriptor and never closes it.
        libpqs = os.dup(trace)
        self._traces.append((dbapi_connection.pgconn, trace, libpqs))
        dbapi_connection.pgconn.trace(libpqs)
        dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        # libpq flushes its trace before it sends anything: what was sent is in the file.
        self._connections.append(lambda: _libpq_statements(_contents(trace)))


#: One message of a libpq trace (SQL text keeps its line breaks: a message can span lines).
_MESSAGE = re.compile(
    r"^(?P<origin>[FB])\t\d+\t(?P<type>\w+)\t? ?(?P<fields>.*?)\n(?=[FB]\t|\Z)", re.M | re.S
)
_PARSE = re.compile(r'"(?P<name>[^"]*)" "(?P<sql>.*)" \d+', re.S)
_BIND = re.compile(r'"[^"]*" "(?P<name>[^"]*)"')


def _contents(descriptor: int) -> str:
    """The whole file, read without moving the offset libpq writes at (it shares it)."""
    return os.pread(descriptor, os.fstat(descriptor).st_size, 0).decode(errors="replace")


def _libpq_statements(trace: str) -> list[str]:
    """The statements a libpq trace shows sent: each simple Query, and each Execute (as the text
    of the statement its Bind named). A statement psycopg prepares costs one more round trip,
    once per connection: a Parse, not counted here."""
    parsed: dict[str, str] = {}
    bound = ""
    statements: list[str] = []
    for message in _MESSAGE.finditer(trace):
        kind, fields = message["type"], message["fields"]
        if message["origin"] == "B":
            continue
        if kind == "Parse" and (parse := _PARSE.match(fields)):
            parsed[parse["name"]] = " ".join(parse["sql"].split())
        elif kind == "Bind" and (bind := _BIND.match(fields)):
            bound = parsed.get(bind["name"], "?")
        elif kind == "Execute":
            statements.append(bound)
        elif kind == "Query":
            statements.append(" ".join(fields.strip('"').split()))
    return statements


def assert_statements(log: StatementLog, expected: Sequence[str]) -> None:
    """SQLAlchemy ran the statements ``expected`` describes, one for one and in order, and the
    database received those and nothing else (no pre-ping, no BEGIN, COMMIT or ROLLBACK)."""
    assert len(log.statements) == len(expected), log.statements
    for statement, pattern in zip(log.statements, expected, strict=True):
        assert re.fullmatch(pattern, statement), (statement, pattern)
    assert len(log.sent) == len(log.statements), log.sent


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def sql_app(database_url: URL) -> Iterator[Flask]:
    """flask-passkey on the SQL store, its signing key kept there (the default), on a clock that
    stands still: the periodic re-read of the signing keys never comes due in a test."""
    app = make_app(database_url=url_text(database_url), clock=FakeClock(), signing_keys=[])
    yield app
    store_of(app).close()


@pytest.fixture
def statements(sql_app: Flask) -> Iterator[StatementLog]:
    engine = store_of(sql_app).engine
    if engine.dialect.name == "postgresql" and sys.platform != "linux":
        pytest.skip("what reaches PostgreSQL is read from libpq's trace: psycopg has it on Linux")
    log = StatementLog(engine)
    yield log
    log.close()


def store_of(app: Flask) -> SqlStore:
    """The app's one SQL store: its sessions and its users."""
    state = get_state(app)
    assert isinstance(state.sessions, SqlStore)
    assert state.users is state.sessions
    return state.sessions


def login_started(flow: PasskeyFlow) -> tuple[str, dict[str, Any]]:
    """A login's challenge and the authenticator's answer: (auth_session, authn_response)."""
    response = flow.challenge()
    assert response.status_code == 200, response.get_json()
    started = response.get_json()
    assertion = flow.authenticator.get(started["authn_params_public_key"], origin=flow.origin)
    return started["auth_session"], assertion


# -- the database ---------------------------------------------------------------------------------


def test_each_challenge_sends_the_database_one_insert(
    sql_app: Flask, statements: StatementLog
) -> None:
    client = sql_app.test_client()
    # Warm-up: the first put also purges expired rows (then once every PURGE_EVERY puts).
    assert post_challenge(client).status_code == 200

    with statements.recording():
        responses = [post_challenge(client) for _ in range(5)]

    assert [response.status_code for response in responses] == [200] * 5
    assert_statements(statements, [INSERT_SESSION] * 5)


def test_a_login_is_redeemed_in_three_statements(sql_app: Flask, statements: StatementLog) -> None:
    flow = passkey_flow(sql_app)
    flow.sign_up({"email": new_email()})
    flow.sign_in()  # warm-up: the signing keys are read from the store
    auth_session, assertion = login_started(flow)

    with statements.recording():
        response = flow.token(auth_session, assertion)  # the default scope: no refresh token

    assert response.status_code == 200, response.get_json()
    assert_statements(statements, LOGIN_REDEMPTION)


def test_a_refresh_is_redeemed_in_four_statements(sql_app: Flask, statements: StatementLog) -> None:
    store = store_of(sql_app)
    store.add_client(
        Client(
            "offline",
            grant_types=(WEBAUTHN_GRANT, REFRESH_TOKEN_GRANT),
            connections=("Username-Password-Authentication",),
        )
    )
    flow = passkey_flow(sql_app, "offline")
    tokens = flow.sign_up({"email": new_email()}, scope="openid offline_access")

    def refresh(token: str) -> Any:
        body = {"grant_type": REFRESH_TOKEN_GRANT, "client_id": "offline", "refresh_token": token}
        return flow.client.post("/oauth/token", json=body, headers={"Host": flow.host})

    refresh_token = refresh(tokens["refresh_token"]).get_json()["refresh_token"]  # warm-up

    with statements.recording():
        response = refresh(refresh_token)

    assert response.status_code == 200, response.get_json()
    assert_statements(statements, REFRESH_REDEMPTION)


# -- startup work ---------------------------------------------------------------------------------

#: What ``init_app`` does once, and a request must never redo: (where the code looks it up,
#: name). Looked up where the callers find them (``extension`` imports its helpers by name).
STARTUP_WORK: list[tuple[Any, str]] = [
    (Settings, "from_config"),
    (extension, "check_unknown_keys"),
    (extension, "build_plugin_manager"),
    (validation.Validator, "__init__"),
    (marshmallow.Schema, "__init__"),  # any schema: request bodies, the tenant, responses
    (extension, "load_tenant_data"),
    (tenant_config, "load_tenant_data"),
    (tenant_config.ConfigTenant, "__init__"),  # validates the tenant
    (tenant_config, "domain_problems"),
    (extension, "configured_signing_keys"),
    (tokens.KeyRing, "from_store"),
    (tokens, "generate_signing_key"),
    (tokens, "import_key"),  # a signing key, parsed
    (sql_store, "upgrade_database"),
]


def watch(monkeypatch: pytest.MonkeyPatch, calls: Counter[str], owner: Any, name: str) -> None:
    """Replace ``owner.name`` by a wrapper that counts its calls in ``calls``, then calls it."""
    original = inspect.getattr_static(owner, name)
    function = original.__func__ if isinstance(original, classmethod) else original
    if isinstance(owner, ModuleType):
        label = f"{owner.__name__}.{name}"
    elif isinstance(owner, type):
        label = f"{owner.__module__}.{owner.__qualname__}.{name}"
    else:
        label = f"{type(owner).__qualname__}().{name}"

    @functools.wraps(function)
    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[label] += 1
        return function(*args, **kwargs)

    replacement = classmethod(counted) if isinstance(original, classmethod) else counted
    monkeypatch.setattr(owner, name, replacement)


def test_requests_redo_no_startup_work(
    sql_app: Flask, database_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = passkey_flow(sql_app)
    flow.sign_up({"email": new_email()})  # warm-up: each endpoint once, the signing keys read
    flow.sign_in()
    calls: Counter[str] = Counter()
    for owner, name in STARTUP_WORK:
        watch(monkeypatch, calls, owner, name)
    # Where the signing keys come from: the store, read again only every KEY_REFRESH_SECONDS.
    watch(monkeypatch, calls, sql_app.extensions["passkey"].grants.issuer.keys, "_load")

    flow.sign_up({"email": new_email()})  # register and token
    flow.sign_in()  # challenge and token
    assert flow.challenge().status_code == 200

    assert not calls, f"startup work redone by requests: {dict(calls)}"
    # The watches are where the code looks: an app starting is seen doing that work.
    another = make_app(database_url=url_text(database_url), clock=FakeClock(), signing_keys=[])
    store_of(another).close()
    assert {
        "flask_passkey.config.Settings.from_config",
        "flask_passkey.extension.build_plugin_manager",
        "marshmallow.schema.Schema.__init__",
        "flask_passkey.extension.load_tenant_data",
        "flask_passkey.builtins.tenant_config.ConfigTenant.__init__",
        "flask_passkey.core.tokens.KeyRing.from_store",
        "flask_passkey.stores.sql.upgrade_database",
    } <= set(calls), calls
