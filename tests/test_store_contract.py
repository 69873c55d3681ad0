"""Every built-in store keeps the store contract: memory, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from flask_passkey.default_plugins.memory_store import MemorySessionStore, MemoryUserStore
from flask_passkey.default_plugins.sql_schema import metadata
from flask_passkey.default_plugins.sql_store import SqlStore
from flask_passkey.store_contract import SessionStoreContract, UserStoreContract
from tests.conftest import PostgresSchemas


def emptied(store: SqlStore) -> SqlStore:
    """``store`` with every table emptied (one database serves a whole module)."""
    with store.engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
    return store


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlStore]:
    path: Path = tmp_path_factory.mktemp("sqlite") / "passkey.sqlite3"
    store = SqlStore(URL.create("sqlite", database=str(path)))
    yield store
    store.close()


@pytest.fixture(scope="module")
def postgres_store(postgres_schemas: PostgresSchemas) -> Iterator[SqlStore]:
    store = SqlStore(postgres_schemas.new_url())
    yield store
    store.close()


class TestMemorySessionStore(SessionStoreContract):
    @pytest.fixture
    def store(self) -> MemorySessionStore:
        return MemorySessionStore()


class TestMemoryUserStore(UserStoreContract):
    @pytest.fixture
    def store(self) -> MemoryUserStore:
        return MemoryUserStore()


class TestSqliteStore(SessionStoreContract, UserStoreContract):
    @pytest.fixture
    def store(self, sqlite_store: SqlStore) -> SqlStore:
        return emptied(sqlite_store)


@pytest.mark.postgres
class TestPostgresStore(SessionStoreContract, UserStoreContract):
    @pytest.fixture
    def store(self, postgres_store: SqlStore) -> SqlStore:
        return emptied(postgres_store)
