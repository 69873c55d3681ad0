"""Every built-in store keeps the store contract: memory, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from flask_passkey.stores.memory import (
    PURGE_EVERY,
    MemorySessionStore,
    MemoryUserStore,
)
from flask_passkey.stores.sql import SqlStore
from flask_passkey.stores.sql_schema import metadata
from flask_passkey.testing.store_contract import (
    NOW,
    SessionStoreContract,
    UserStoreContract,
    new_grant,
    new_user,
)
from tests.databases import PostgresSchemas


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


def test_memory_store_forgets_refresh_tokens_and_revocations_once_their_family_expired() -> None:
    store = MemoryUserStore()
    user = new_user()
    store.put_refresh_token("expired", new_grant(user, expires_at=NOW + 1))
    gone = new_grant(user, expires_at=NOW + 1)
    store.revoke_refresh_token_family(gone.family_id, expires_at=gone.expires_at)
    kept = new_grant(user, expires_at=NOW + 3600)
    store.revoke_refresh_token_family(kept.family_id, expires_at=kept.expires_at)
    for n in range(PURGE_EVERY):
        store.put_refresh_token(f"live-{n}", new_grant(user))
        assert store.use_refresh_token(f"live-{n}", now=NOW + 2)

    assert store.get_refresh_token("expired") is None
    assert store.get_refresh_token("live-0") is not None  # spent, kept until its family expires
    # Only the expired revocation is forgotten.
    store.put_refresh_token("late", gone)
    store.put_refresh_token("later", kept)
    assert store.get_refresh_token("late") == gone
    assert store.get_refresh_token("later") is None
