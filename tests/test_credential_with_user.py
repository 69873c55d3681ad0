"""The SQL store's one-read login lookup agrees with its two reads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from flask_passkey.core.ceremony import Ceremonies
from flask_passkey.models import Credential, User
from flask_passkey.stores.memory import MemorySessionStore, MemoryUserStore
from flask_passkey.stores.sql import SqlStore
from tests.databases import PostgresSchemas


def _user() -> tuple[User, Credential]:
    user_id = f"passkey|{os.urandom(6).hex()}"
    user = User(
        id=user_id,
        connection="db",
        user_handle=os.urandom(16),
        created_at=1.0,
        email=f"{user_id[8:]}@example.com",
        profile={"name": "Ann"},
    )
    credential = Credential(
        id=os.urandom(32),
        user_id=user_id,
        public_key=b"key",
        sign_count=3,
        rp_id="login.acme.test",
        created_at=2.0,
        transports=("internal", "hybrid"),
    )
    return user, credential


def test_sqlite_lookup_in_one_read(tmp_path: Path) -> None:
    store = SqlStore(URL.create("sqlite", database=str(tmp_path / "db.sqlite3")))
    user, credential = _user()
    store.create_user(user, credential, organization_id=None)

    assert store.get_credential_with_user(credential.id) == (
        store.get_credential(credential.id),
        store.get_user(user.id),
    )
    assert store.get_credential_with_user(credential.id) == (credential, user)
    assert store.get_credential_with_user(b"unknown") is None
    store.close()


@pytest.mark.postgres
def test_postgresql_lookup_in_one_read(postgres_schemas: PostgresSchemas) -> None:
    url = postgres_schemas.new_url()
    store = SqlStore(url)
    user, credential = _user()
    store.create_user(user, credential, organization_id=None)
    assert store.get_credential_with_user(credential.id) == (credential, user)
    assert store.get_credential_with_user(b"unknown") is None
    store.close()


def test_ceremonies_use_it_only_where_the_store_has_it(tmp_path: Path) -> None:
    sql = SqlStore(URL.create("sqlite", database=str(tmp_path / "db.sqlite3")))
    memory = MemoryUserStore()
    for users in (sql, memory):
        user, credential = _user()
        users.create_user(user, credential, organization_id=None)
        ceremonies = Ceremonies(
            sessions=MemorySessionStore(), users=users, timeout_ms=60_000, clock=lambda: 0.0
        )
        assert (ceremonies._joined is not None) == (users is sql)
        assert ceremonies.credential_and_user(credential.id) == (credential, user)
        assert ceremonies.credential_and_user(b"unknown") == (None, None)
    sql.close()
