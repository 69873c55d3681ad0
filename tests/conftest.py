"""The suite's fixtures; the app builder and helpers they use live in plain modules
(tests/apps.py, tests/support.py, tests/databases.py) that tests import directly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import URL

from tests.apps import FakeClock, make_app, shared_signing_key
from tests.case_counts import CASE_COUNTS, CaseCounts
from tests.databases import POSTGRES_URL, PostgresSchemas, backend_missing, require_redis


@pytest.fixture
def app() -> Flask:
    """A new app of ``make_app()``: the test tenant, in-memory stores."""
    return make_app()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def signing_key_pem() -> str:
    """The token-signing key every app of ``make_app`` shares unless told otherwise."""
    return shared_signing_key()


# -- the database and Redis servers ---------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_schemas() -> Iterator[PostgresSchemas]:
    """Schemas on the PostgreSQL server of PASSKEY_TEST_POSTGRES_URL, all dropped at the end."""
    engine = sa.create_engine(POSTGRES_URL, poolclass=sa.NullPool)
    try:
        engine.connect().close()
    except sa.exc.OperationalError as error:
        backend_missing(f"PostgreSQL at {engine.url} is unreachable: {error.orig}")
    schemas = PostgresSchemas(engine)
    yield schemas
    schemas.drop_all()
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> URL:
    """An empty database: a new SQLite file, or a new schema on the PostgreSQL server."""
    if request.param == "sqlite":
        return URL.create("sqlite", database=str(tmp_path / "passkey.sqlite3"))
    schemas: PostgresSchemas = request.getfixturevalue("postgres_schemas")
    return schemas.new_url()


@pytest.fixture(scope="session")
def redis_client() -> Iterator[Any]:
    """A client of the Redis of PASSKEY_TEST_REDIS_URL, to look at and clean up keys."""
    import redis  # the redis extra: only the tests that need the server need the client

    client = redis.Redis.from_url(require_redis(), socket_timeout=5)
    yield client
    client.close()


# -- case counts of the generated tests, printed in the summary -----------------------------------


@pytest.fixture(scope="session")
def case_counts(pytestconfig: pytest.Config) -> CaseCounts:
    """Where generated tests count their cases (see pytest_terminal_summary)."""
    return pytestconfig.stash.setdefault(CASE_COUNTS, CaseCounts())


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    counts = config.stash.get(CASE_COUNTS, None)
    if counts is None or not counts.suites:
        return
    terminalreporter.section("generated test cases")
    for suite, labels in counts.suites.items():
        terminalreporter.write_line(f"{suite}: {counts.total(suite)} cases")
        for label, outcomes in sorted(labels.items()):
            detail = ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items()))
            terminalreporter.write_line(f"  {sum(outcomes.values()):6d}  {label}  ({detail})")
