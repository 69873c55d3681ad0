"""Clients in the SQL store: the 0002 migration, the ClientStore methods, the cache and the
plugin hooks that serve stored clients after the tenant configuration's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from flask_passkey import hookimpl
from flask_passkey.core.client_secrets import hash_secret
from flask_passkey.core.clients import ClientCache, ClientStore, ClientTaken
from flask_passkey.models import AndroidApp, Client, IosApp
from flask_passkey.stores.sql import (
    SqlStore,
    database_revision,
    head_revision,
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
)
from tests.apps import (
    ANDROID_FINGERPRINT,
    CUSTOM_DOMAIN,
    DB_CONNECTION,
    FakeClock,
    make_app,
    tenant_data,
)
from tests.support import post_challenge


@pytest.fixture
def store(database_url: URL) -> Iterator[SqlStore]:
    store = SqlStore(database_url)
    yield store
    store.close()


def stored_client(client_id: str = "stored", **overrides: Any) -> Client:
    values: dict[str, Any] = {
        "name": "Stored app",
        "app_type": "regular_web",
        "token_endpoint_auth_method": "client_secret_post",
        "client_secret_hash": hash_secret("stored-secret"),
        "connections": (DB_CONNECTION,),
        **overrides,
    }
    return Client(client_id, **values)


# -- migrations ------------------------------------------------------------------------------


def test_upgrade_from_0001_to_0002_keeps_every_row(database_url: URL) -> None:
    upgrade_database(database_url, revision="0001")
    assert database_revision(database_url) == "0001"
    user = new_user(profile={"name": "Jane"}, user_metadata={"plan": "pro"})
    credential = new_credential(user, transports=("internal", "hybrid"))
    session = new_session()
    grant = new_grant(user)
    key = SigningKey(kid="k1", private_jwk="{}", created_at=NOW)
    tables = metadata.tables
    engine = sa.create_engine(database_url, poolclass=sa.NullPool)
    with engine.begin() as connection:  # written with the 0001 schema, before 0002 exists
        assert not sa.inspect(connection).has_table("clients")
        connection.execute(tables["users"].insert(), asdict(user))
        old_credential = {k: v for k, v in asdict(credential).items() if k != "hardware_attested"}
        connection.execute(tables["credentials"].insert(), old_credential)
        connection.execute(
            tables["organization_members"].insert(),
            {"organization_id": "org_acme", "user_id": user.id},
        )
        connection.execute(
            tables["auth_sessions"].insert(),
            {"id": session.id, "data": session.to_json(), "expires_at": session.expires_at},
        )
        newer = ("credential_id", "family_id", "idle_expires_at", "used_at", "dpop_jkt")
        old_columns = {k: v for k, v in asdict(grant).items() if k not in newer}
        connection.execute(tables["refresh_tokens"].insert(), {"token_hash": "h", **old_columns})
        connection.execute(tables["signing_keys"].insert(), asdict(key))
    engine.dispose()

    upgrade_database(database_url)

    assert database_revision(database_url) == head_revision() == "0010"
    store = SqlStore(database_url)
    assert store.get_user(user.id) == user
    assert store.get_credential(credential.id) == credential
    assert store.is_member(organization_id="org_acme", user_id=user.id)
    assert store.take(session.id, now=NOW) == session
    # A token older than families is a family of its own.
    assert store.get_refresh_token("h") == replace(grant, family_id="h")
    assert store.signing_keys() == [key]
    assert store.list_clients() == []
    store.close()


# -- the store -------------------------------------------------------------------------------


def test_sql_store_is_a_client_store(store: SqlStore) -> None:
    assert isinstance(store, ClientStore)


def test_stored_client_reads_back_equal(store: SqlStore) -> None:
    client = stored_client(
        grant_types=("urn:okta:params:oauth:grant-type:webauthn", "refresh_token"),
        web_origins=("https://app.acme.test",),
        android_apps=(AndroidApp("com.acme.app", (ANDROID_FINGERPRINT,)),),
        ios_apps=(IosApp("ABCDE12345", "com.acme.app"),),
        default_connection=DB_CONNECTION,
        organization_usage="allow",
        is_first_party=False,
        challenge_without_secret=True,
    )
    store.add_client(client)
    store.add_client(stored_client("another"))

    assert store.list_clients() == [stored_client("another"), client]


def test_a_plain_secret_is_never_stored(store: SqlStore) -> None:
    with pytest.raises(ValueError, match="hash"):
        store.add_client(stored_client(client_secret="plain", client_secret_hash=None))
    assert store.list_clients() == []


def test_a_client_id_is_stored_once(store: SqlStore) -> None:
    store.add_client(stored_client())
    with pytest.raises(ClientTaken):
        store.add_client(stored_client(name="again"))
    assert [c.name for c in store.list_clients()] == ["Stored app"]


def test_secret_hash_replacement_and_removal_say_whether_the_client_exists(
    store: SqlStore,
) -> None:
    store.add_client(stored_client())

    assert store.set_client_secret_hash("stored", hash_secret("new"))
    assert not store.set_client_secret_hash("nobody", hash_secret("new"))
    assert store.list_clients()[0].client_secret_hash == hash_secret("new")
    assert store.delete_client("stored")
    assert not store.delete_client("stored")
    assert store.list_clients() == []


def test_writes_refresh_this_process_cache(store: SqlStore) -> None:
    cache = store.cached_clients()
    assert cache.get("stored") is None
    store.add_client(stored_client())
    assert cache.get("stored") == stored_client()
    store.set_client_secret_hash("stored", hash_secret("new"))
    assert cache.get("stored") == stored_client(client_secret_hash=hash_secret("new"))
    store.delete_client("stored")
    assert cache.get("stored") is None


def test_another_process_write_shows_once_the_cache_expires(database_url: URL) -> None:
    """Two stores on one database stand for two workers: the CLI writes through one."""
    writer, reader = SqlStore(database_url), SqlStore(database_url)
    writer.add_client(stored_client())
    assert reader.cached_clients().get("stored") == stored_client()

    writer.set_client_secret_hash("stored", hash_secret("rotated"))

    assert reader.cached_clients().get("stored") == stored_client()  # still cached
    reader.cached_clients().invalidate()  # what CLIENT_CACHE_SECONDS passing does
    assert reader.cached_clients().get("stored") == stored_client(
        client_secret_hash=hash_secret("rotated")
    )
    writer.close()
    reader.close()


# -- the cache -------------------------------------------------------------------------------


class CountingLoader:
    def __init__(self) -> None:
        self.clients = [stored_client()]
        self.loads = 0

    def __call__(self) -> list[Client]:
        self.loads += 1
        return list(self.clients)


def test_cache_reads_the_store_again_only_after_its_ttl() -> None:
    loader, clock = CountingLoader(), FakeClock()
    cache = ClientCache(loader, ttl=30, clock=clock)
    assert cache.get("stored") == stored_client()
    loader.clients = []

    clock.advance(29)
    assert cache.get("stored") == stored_client()
    assert loader.loads == 1
    clock.advance(1)
    assert cache.get("stored") is None
    assert loader.loads == 2


def test_cache_answers_unknown_ids_without_reading_the_store() -> None:
    loader = CountingLoader()
    cache = ClientCache(loader, ttl=30, clock=FakeClock())
    for index in range(100):
        assert cache.get(f"made-up-{index}") is None
    assert cache.all() == [stored_client()]
    assert loader.loads == 1


# -- the plugin: stored clients after the configuration's ------------------------------------


def sql_app(tmp_path: Path, **config: Any) -> Any:
    return make_app(database_url=f"sqlite:///{tmp_path / 'passkey.sqlite3'}", **config)


def users_of(app: Any) -> SqlStore:
    store: SqlStore = app.extensions["passkey"].users
    return store


def test_a_stored_client_gets_a_challenge(tmp_path: Path) -> None:
    app = sql_app(tmp_path)
    users_of(app).add_client(stored_client())
    client = app.test_client()

    assert post_challenge(client, {"client_id": "stored"}).status_code == 401
    response = post_challenge(client, {"client_id": "stored", "client_secret": "stored-secret"})
    assert response.status_code == 200, response.get_json()


def test_the_tenant_configuration_wins_over_a_stored_client(tmp_path: Path) -> None:
    app = sql_app(tmp_path)
    # "spa" is public in the configuration; a stored namesake demands a secret.
    users_of(app).add_client(stored_client("spa"))
    hook = app.extensions["passkey"].plugin_manager.hook

    assert hook.passkey_get_client(client_id="spa").token_endpoint_auth_method == "none"
    assert post_challenge(app.test_client(), {"client_id": "spa"}).status_code == 200
    listed = [c for c in app.extensions["passkey"].clients() if c.client_id == "spa"]
    assert [c.token_endpoint_auth_method for c in listed] == ["none"]


def test_stored_clients_are_listed_after_the_configuration_ones(tmp_path: Path) -> None:
    app = sql_app(tmp_path)
    native = stored_client(
        "stored-native",
        app_type="native",
        token_endpoint_auth_method="none",
        client_secret_hash=None,
        android_apps=(AndroidApp("com.acme.stored", (ANDROID_FINGERPRINT,)),),
    )
    users_of(app).add_client(native)

    clients = app.extensions["passkey"].clients()
    assert clients[-1] == native
    assert [c.client_id for c in clients[:-1]] == [c["client_id"] for c in tenant_data()["clients"]]
    response = app.test_client().get(
        "/.well-known/assetlinks.json", base_url=f"https://{CUSTOM_DOMAIN}"
    )
    packages = [entry["target"]["package_name"] for entry in response.get_json()]
    assert "com.acme.stored" in packages


def test_an_operator_plugin_wins_over_a_stored_client(tmp_path: Path) -> None:
    class Override:
        @hookimpl
        def passkey_get_client(self, client_id: str) -> Client | None:
            return Client(client_id, name="from plugin", connections=(DB_CONNECTION,))

    app = sql_app(tmp_path, plugins=[Override()])
    users_of(app).add_client(stored_client())

    hook = app.extensions["passkey"].plugin_manager.hook
    assert hook.passkey_get_client(client_id="stored").name == "from plugin"


def test_stored_client_lookups_cost_no_query_per_request(tmp_path: Path) -> None:
    app = sql_app(tmp_path)
    store = users_of(app)
    store.add_client(stored_client())
    queries: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "FROM clients" in statement:
            queries.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", capture)
    client = app.test_client()
    for _ in range(5):
        body = {"client_id": "stored", "client_secret": "stored-secret"}
        assert post_challenge(client, body).status_code == 200
    sa.event.remove(store.engine, "before_cursor_execute", capture)

    assert len(queries) == 1


def test_memory_stores_serve_no_stored_clients() -> None:
    app = make_app()  # memory://
    hook = app.extensions["passkey"].plugin_manager.hook
    assert hook.passkey_get_client(client_id="stored") is None
    assert not isinstance(app.extensions["passkey"].users, ClientStore)
