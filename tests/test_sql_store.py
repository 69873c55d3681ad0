"""The SQL store beyond the store contract: migrations, the embedded default, query plans,
housekeeping, and outages of the database."""

from __future__ import annotations

import itertools
import logging
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy.engine import URL

from flask_passkey import Passkey
from flask_passkey.errors import BackendUnavailable, ConfigurationError
from flask_passkey.stores.memory import MemorySessionStore, MemoryUserStore
from flask_passkey.stores.migrations import HEAD, REVISIONS, pending_migrations
from flask_passkey.stores.sql import (
    DEFAULT_SQLITE_FILE,
    PURGE_EVERY,
    SqlStore,
    SqlStorePlugin,
    database_revision,
    upgrade_database,
)
from flask_passkey.stores.sql_schema import metadata
from flask_passkey.stores.users import SigningKey
from flask_passkey.testing.store_contract import (
    NOW,
    new_credential,
    new_grant,
    new_session,
    new_user,
    race,
)
from tests.apps import CUSTOM_DOMAIN, make_app, tenant_data
from tests.databases import PostgresSchemas, url_text
from tests.support import assert_oauth_error, passkey_flow
from tests.tcp_proxy import TcpProxy
from tests.test_docs import DOCS, TABLE_ROW, formatted, sections


@pytest.fixture
def store(database_url: URL) -> Iterator[SqlStore]:
    store = SqlStore(database_url)
    yield store
    store.close()


def count(store: SqlStore, table: sa.Table) -> int:
    with store.engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def current_revision(url: URL) -> str | None:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
    engine.dispose()
    return revision


# -- migrations -----------------------------------------------------------------------------------


def test_store_creates_the_schema_and_records_its_revision(database_url: URL) -> None:
    assert current_revision(database_url) is None
    SqlStore(database_url).close()
    assert current_revision(database_url) == database_revision(database_url) == HEAD


def test_a_store_told_to_migrate_on_first_use_waits_for_it(database_url: URL) -> None:
    store = SqlStore(database_url, migrate="first_use")
    assert database_revision(database_url) is None

    assert store.list_clients() == []

    assert database_revision(database_url) == HEAD
    store.close()


def test_migrated_schema_is_the_schema_the_code_uses(store: SqlStore) -> None:
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def test_upgrading_again_keeps_every_row(database_url: URL) -> None:
    store = SqlStore(database_url)
    user = new_user(profile={"name": "Jane"}, user_metadata={"plan": "pro"})
    credential = new_credential(user)
    session = new_session()
    grant = new_grant(user)
    key = SigningKey(kid="k1", private_jwk="{}", created_at=NOW)
    store.create_user(user, credential, organization_id="org_acme")
    store.put(session, now=NOW)
    store.put_refresh_token("hash", grant)
    store.add_signing_key(key)
    store.close()

    upgrade_database(database_url)
    again = SqlStore(database_url)  # a restart runs the upgrade too

    assert again.get_user(user.id) == user
    assert again.get_credential(credential.id) == credential
    assert again.is_member(organization_id="org_acme", user_id=user.id)
    assert again.signing_keys() == [key]
    assert again.get_refresh_token("hash") == grant
    assert again.take(session.id, now=NOW) == session
    assert current_revision(database_url) == HEAD
    again.close()


def test_workers_starting_together_upgrade_the_schema_once(database_url: URL) -> None:
    results = race(6, lambda: upgrade_database(database_url))

    assert sorted(results) == [False] * 5 + [True]  # one migrated, the others found it done
    assert current_revision(database_url) == HEAD


def test_the_shipped_revisions_are_the_scripts_alembic_runs() -> None:
    """REVISIONS is read from the file names; Alembic reads the scripts: one line, same ids."""
    config = Config()
    config.set_main_option("script_location", "flask_passkey.stores:migrations")
    scripts = ScriptDirectory.from_config(config)
    newest_first = [script.revision for script in scripts.walk_revisions()]

    assert tuple(reversed(newest_first)) == REVISIONS
    assert scripts.get_heads() == [HEAD]
    for older, newer in itertools.pairwise(REVISIONS):
        assert scripts.get_revision(newer).down_revision == older


def test_pending_migrations_are_those_after_the_database_revision() -> None:
    assert pending_migrations(None) == REVISIONS
    assert pending_migrations(REVISIONS[0]) == REVISIONS[1:]
    assert pending_migrations(HEAD) == ()
    assert pending_migrations(None, REVISIONS[0]) == REVISIONS[:1]
    assert pending_migrations("9999") == ()  # a newer version's: its schema only adds to ours


def test_a_database_a_newer_version_upgraded_is_left_alone(database_url: URL) -> None:
    upgrade_database(database_url)
    engine = sa.create_engine(database_url, poolclass=sa.NullPool)
    with engine.begin() as connection:  # as a later flask-passkey would leave it
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()

    assert upgrade_database(database_url) is False
    store = SqlStore(database_url)  # an older worker still serving starts and works
    user = new_user()
    store.create_user(user, new_credential(user), organization_id=None)
    assert store.get_user(user.id) == user
    assert database_revision(database_url) == "9999"
    store.close()


def test_a_store_that_may_not_migrate_waits_for_db_upgrade(
    database_url: URL, caplog: pytest.LogCaptureFixture
) -> None:
    upgrade_database(database_url, revision=REVISIONS[-2])
    store = SqlStore(database_url, migrate="never")
    session = new_session()

    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            with pytest.raises(BackendUnavailable, match="run `flask passkey db upgrade`"):
                store.put(session, now=NOW)
    warnings = [r for r in caplog.records if "flask passkey db upgrade" in r.getMessage()]
    assert len(warnings) == 1  # once, not once per request
    assert database_revision(database_url) == REVISIONS[-2]  # the store changed nothing

    upgrade_database(database_url)  # the release step

    store.put(session, now=NOW)  # no restart needed
    assert store.take(session.id, now=NOW) == session
    store.close()


def test_with_auto_migrate_off_the_app_answers_503_until_the_schema_is_upgraded(
    database_url: URL,
) -> None:
    app = make_app(database_url=url_text(database_url), auto_migrate=False, signing_keys=[])
    client = app.test_client()
    jwks = f"https://{CUSTOM_DOMAIN}/.well-known/jwks.json"

    assert database_revision(database_url) is None  # starting created nothing
    assert_oauth_error(client.get(jwks), 503, "temporarily_unavailable")

    upgrade_database(database_url)

    assert client.get(jwks).status_code == 200
    passkey_flow(app).sign_up({"email": "jane@example.com"})
    app.extensions["passkey"].users.close()


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_auto_migrate_must_be_a_boolean(tmp_path: Path, value: Any) -> None:
    with pytest.raises(ConfigurationError, match="PASSKEY_AUTO_MIGRATE must be True or False"):
        passkey_app(tmp_path, auto_migrate=value)


def test_the_sql_store_key_is_documented_with_its_default() -> None:
    documented = sections(DOCS / "configuration.md")["Keys of the built-in SQL store (`sql_store`)"]
    declared = SqlStorePlugin().passkey_config_defaults()
    assert dict(TABLE_ROW.findall(documented)) == {
        key: formatted(default) for key, default in declared.items()
    }


def table_persistence(url: URL) -> dict[str, str]:
    """PostgreSQL's ``relpersistence`` of each table of the schema at ``url`` (``p``: logged,
    ``u``: unlogged)."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT c.relname, c.relpersistence FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
        ).all()
    engine.dispose()
    return {name: persistence for name, persistence in rows}


@pytest.mark.postgres
def test_on_postgresql_only_auth_sessions_skip_the_write_ahead_log(
    postgres_schemas: PostgresSchemas,
) -> None:
    url = postgres_schemas.new_url()
    upgrade_database(url, revision="0003")
    session = new_session()
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        connection.execute(
            metadata.tables["auth_sessions"].insert(),
            {"id": session.id, "data": session.to_json(), "expires_at": session.expires_at},
        )
    engine.dispose()
    assert table_persistence(url)["auth_sessions"] == "p"

    store = SqlStore(url)  # upgrades to the newest revision

    persistence = table_persistence(url)
    assert persistence.pop("auth_sessions") == "u"
    assert persistence.pop("markers") == "u"
    # Users, credentials, refresh tokens and keys stay crash-safe and replicated.
    assert set(persistence.values()) == {"p"}
    assert {"users", "credentials", "refresh_tokens", "signing_keys"} <= set(persistence)
    # Sessions issued before the upgrade can still be redeemed, once.
    assert store.take(session.id, now=NOW) == session
    assert store.take(session.id, now=NOW) is None
    live = new_session()
    store.put(live, now=NOW)
    store.close()

    downgrade_database(url, "0003")

    assert set(table_persistence(url).values()) == {"p"}
    again = SqlStore(url)  # upgrades again
    assert again.take(live.id, now=NOW) == live
    assert table_persistence(url)["auth_sessions"] == "u"
    again.close()


def downgrade_database(url: URL, revision: str) -> None:
    """What ``alembic downgrade`` does with flask-passkey's migrations."""
    config = Config()
    config.set_main_option("script_location", "flask_passkey.stores:migrations")
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
    engine.dispose()


# -- statements -----------------------------------------------------------------------------------


def test_every_lookup_uses_an_index(store: SqlStore) -> None:
    """The login path must not slow down as users and credentials pile up."""
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.startswith(("SELECT", "UPDATE", "DELETE")) and any(
            table in statement for table in metadata.tables
        ):
            statements.append((statement, parameters))

    user = new_user(phone_number="+14155550100", username="jane")
    credential = new_credential(user)
    sa.event.listen(store.engine, "before_cursor_execute", capture)
    store.create_user(user, credential, organization_id="org_acme")
    for kind in ("email", "phone_number", "username"):
        store.find_user(connection=user.connection, kind=kind, value="x")
    store.get_user(user.id)
    store.get_credential(credential.id)
    store.record_login(
        credential.id, expected_sign_count=0, sign_count=1, backed_up=False, used_at=NOW
    )
    store.list_credentials(user.id)
    store.rename_credential(user_id=user.id, credential_id=credential.id, name="n")
    store.is_member(organization_id="org_acme", user_id=user.id)
    store.get_refresh_token("hash")
    store.use_refresh_token("hash", now=NOW)
    store.revoke_refresh_token_family("family", expires_at=NOW)
    store.put(new_session(), now=NOW)  # the first put also purges expired rows
    store.take("session", now=NOW)
    store.delete_credential(user_id=user.id, credential_id=credential.id)
    sa.event.remove(store.engine, "before_cursor_execute", capture)

    assert len(statements) >= 14
    with store.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            plans = [
                " ".join(
                    row[3]
                    for row in connection.exec_driver_sql(
                        f"EXPLAIN QUERY PLAN {statement}", parameters
                    )
                )
                for statement, parameters in statements
            ]
            full_scans = [p for p in plans if p.startswith("SCAN") or " SCAN " in p]
        else:
            connection.exec_driver_sql("SET enable_seqscan = off")
            plans = [
                " ".join(
                    row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
                )
                for statement, parameters in statements
            ]
            full_scans = [p for p in plans if "Seq Scan" in p]
    assert full_scans == [], plans


def test_expired_sessions_and_refresh_tokens_are_purged(store: SqlStore) -> None:
    user = new_user()
    store.create_user(user, new_credential(user), organization_id=None)
    store.put_refresh_token("expired", new_grant(user, expires_at=NOW + 1))
    store.put_refresh_token("live", new_grant(user, expires_at=NOW + 3600))
    store.revoke_refresh_token_family("expired-family", expires_at=NOW + 1)
    store.revoke_refresh_token_family("live-family", expires_at=NOW + 3600)
    for _ in range(PURGE_EVERY):
        store.put(new_session(expires_at=NOW + 1), now=NOW)
    assert count(store, metadata.tables["auth_sessions"]) == PURGE_EVERY

    live = new_session(expires_at=NOW + 180)
    store.put(live, now=NOW + 120)

    assert count(store, metadata.tables["auth_sessions"]) == 1
    assert count(store, metadata.tables["refresh_tokens"]) == 1
    assert count(store, metadata.tables["refresh_token_revocations"]) == 1
    assert store.take(live.id, now=NOW + 120) == live


def test_database_errors_do_not_list_the_statement_parameters(store: SqlStore) -> None:
    orphan = new_credential(new_user(), name="Jane's private key name")
    with pytest.raises(sa.exc.IntegrityError) as raised:  # no such user
        store.add_credential(orphan)
    assert orphan.name not in str(raised.value)


# -- configuration and the embedded default -------------------------------------------------------


def passkey_app(instance_path: Path, **config: Any) -> Flask:
    app = Flask(__name__, instance_path=str(instance_path))
    app.config.update(TESTING=True, PASSKEY_TENANT=tenant_data())
    app.config.update({f"PASSKEY_{key.upper()}": value for key, value in config.items()})
    Passkey(app)
    return app


def stores_of(app: Flask) -> tuple[Any, Any]:
    """The session store and the user store the plugins give ``app``."""
    state = app.extensions["passkey"]
    return state.sessions, state.plugin_manager.hook.passkey_user_store(app=app)


def test_default_database_is_a_sqlite_file_in_the_instance_folder(tmp_path: Path) -> None:
    instance = tmp_path / "instance"  # not there yet
    app = passkey_app(instance)
    sessions, users = stores_of(app)

    assert isinstance(sessions, SqlStore)
    assert users is sessions  # one engine per app
    assert sessions.url.database == str(instance / DEFAULT_SQLITE_FILE)
    assert (instance / DEFAULT_SQLITE_FILE).is_file()
    sessions.close()


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The usual umask (022), under which files are created readable by every local user."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def access_of_others(path: Path) -> int:
    """The permission bits ``path`` grants its group and everyone else."""
    return stat.S_IMODE(path.stat().st_mode) & 0o077


@pytest.mark.usefixtures("permissive_umask")
def test_default_database_files_and_instance_folder_are_owner_only(tmp_path: Path) -> None:
    instance = tmp_path / "instance"  # not there yet
    app = passkey_app(instance, signing_keys=[])
    # The first key is generated and stored: the WAL and shared-memory files exist now.
    assert app.test_client().get("/.well-known/jwks.json", headers={"Host": CUSTOM_DOMAIN}).json

    files = [instance / (DEFAULT_SQLITE_FILE + suffix) for suffix in ("", "-wal", "-shm")]
    assert {path: access_of_others(path) for path in [instance, *files]} == dict.fromkeys(
        [instance, *files], 0
    )
    stores_of(app)[0].close()


@pytest.mark.usefixtures("permissive_umask")
def test_a_configured_sqlite_file_is_created_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "passkey.sqlite3"
    path.parent.mkdir()
    store = SqlStore(URL.create("sqlite", database=str(path)))
    store.add_first_signing_key(SigningKey(kid="k", private_jwk="{}", created_at=NOW))

    assert access_of_others(path) == 0
    assert access_of_others(path.with_name(path.name + "-wal")) == 0
    store.close()


def test_sqlite_database_uses_the_wal_journal(tmp_path: Path) -> None:
    store = SqlStore(URL.create("sqlite", database=str(tmp_path / "passkey.sqlite3")))
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    store.close()


def test_embedded_database_survives_a_restart(tmp_path: Path) -> None:
    user = new_user()
    credential = new_credential(user)
    session = new_session()
    _, users = stores_of(passkey_app(tmp_path))
    users.create_user(user, credential, organization_id=None)
    users.put(session, now=NOW)
    users.close()

    restarted, _ = stores_of(passkey_app(tmp_path))

    assert restarted.get_user(user.id) == user
    assert restarted.get_credential(credential.id) == credential
    assert restarted.take(session.id, now=NOW) == session
    restarted.close()


def test_each_app_gets_its_own_store(tmp_path: Path) -> None:
    first, _ = stores_of(passkey_app(tmp_path / "a"))
    second, _ = stores_of(passkey_app(tmp_path / "b"))
    assert first is not second
    first.close()
    second.close()


def test_memory_url_selects_the_memory_stores(tmp_path: Path) -> None:
    sessions, users = stores_of(passkey_app(tmp_path, database_url="memory://"))
    assert isinstance(sessions, MemorySessionStore)
    assert isinstance(users, MemoryUserStore)
    assert not tmp_path.joinpath(DEFAULT_SQLITE_FILE).exists()


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "mysql://db/passkey", "not a url", "nosuch://x"]
)
def test_urls_the_store_cannot_serve_are_configuration_errors(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigurationError, match="PASSKEY_DATABASE_URL"):
        passkey_app(tmp_path, database_url=url)


# -- outages --------------------------------------------------------------------------------------


def test_unreachable_postgresql_is_backend_unavailable(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = URL.create("postgresql+psycopg", username="postgres", host="127.0.0.1", port=port)

    with caplog.at_level(logging.WARNING):
        store = SqlStore(url)  # the app can start; the schema waits for the database

    assert "first use" in caplog.text
    with pytest.raises(BackendUnavailable):
        store.get_credential(b"id")
    with pytest.raises(BackendUnavailable):
        store.put(new_session(), now=NOW)


def test_sqlite_store_works_once_its_folder_appears(tmp_path: Path) -> None:
    folder = tmp_path / "not-yet"
    store = SqlStore(URL.create("sqlite", database=str(folder / "passkey.sqlite3")))
    session = new_session()
    with pytest.raises(BackendUnavailable):
        store.put(session, now=NOW)

    folder.mkdir()

    store.put(session, now=NOW)
    assert store.take(session.id, now=NOW) == session
    store.close()


@pytest.mark.postgres
def test_postgresql_outage_answers_unavailable_then_recovers(
    postgres_schemas: PostgresSchemas,
) -> None:
    url = postgres_schemas.new_url()
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    store = SqlStore(url.set(host="127.0.0.1", port=proxy.port))  # starts during an outage
    user = new_user()
    with pytest.raises(BackendUnavailable):
        store.get_user(user.id)

    proxy.start()
    store.create_user(user, new_credential(user), organization_id=None)
    assert store.get_user(user.id) == user

    proxy.stop()
    with pytest.raises(BackendUnavailable):
        store.get_user(user.id)
    with pytest.raises(BackendUnavailable):
        store.put(new_session(), now=NOW)

    proxy.start()
    assert store.get_user(user.id) == user
    proxy.stop()
    store.close()


@pytest.mark.postgres
def test_connections_killed_by_the_server_are_replaced_unnoticed(
    postgres_schemas: PostgresSchemas,
) -> None:
    name = f"passkey-{id(postgres_schemas)}-kill"
    store = SqlStore(postgres_schemas.new_url(application_name=name))
    user = new_user()
    store.create_user(user, new_credential(user), organization_id=None)
    with postgres_schemas.engine.begin() as admin:
        killed = admin.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = :name"
            ),
            {"name": name},
        ).scalar_one()
    assert killed >= 1

    assert store.get_user(user.id) == user
    store.close()
