"""``flask passkey ...``: every command through Flask's CLI runner, end to end where it matters."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo
from webauthn.helpers import bytes_to_base64url

from flask_passkey import Passkey
from flask_passkey.cli import passkey_cli
from flask_passkey.client_secrets import hash_secret
from flask_passkey.default_plugins.sql_store import SqlStore, upgrade_database
from flask_passkey.errors import BackendUnavailable
from flask_passkey.models import WEBAUTHN_GRANT
from flask_passkey.testing import SoftAuthenticator
from tests.conftest import (
    CUSTOM_DOMAIN,
    DB_CONNECTION,
    FakeClock,
    build_app,
    new_email,
    passkey_flow,
    post_challenge,
    tenant_data,
)


def run(app: Flask, *args: str) -> Result:
    """``flask passkey <args>`` on ``app``."""
    return app.test_cli_runner().invoke(args=["passkey", *args])


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def failed(result: Result) -> str:
    assert result.exit_code != 0, result.output
    return result.output


def secret_of(output: str) -> str:
    found = re.findall(r"^client_secret: (\S+)$", output, re.MULTILINE)
    assert len(found) == 1, output
    return found[0]


@pytest.fixture
def sql_app(tmp_path: Path) -> Flask:
    return build_app(database_url=f"sqlite:///{tmp_path / 'passkey.sqlite3'}")


@pytest.fixture
def memory_app() -> Flask:
    return build_app()


def challenge(app: Flask, client_id: str, secret: str | None = None) -> int:
    body = {"client_id": client_id, **({"client_secret": secret} if secret else {})}
    status: int = post_challenge(app.test_client(), body).status_code
    return status


# -- registration with the app ----------------------------------------------------------------


def test_init_app_registers_the_passkey_group(memory_app: Flask) -> None:
    assert memory_app.cli.get_command(None, "passkey") is passkey_cli  # type: ignore[arg-type]


def test_commands_on_an_app_without_the_extension_say_so() -> None:
    app = Flask(__name__)
    app.cli.add_command(passkey_cli)  # as the flask.commands entry point does
    assert "not initialised" in failed(run(app, "users", "list"))


def test_commands_on_an_app_that_does_not_start_say_so() -> None:
    def broken() -> Flask:
        app = Flask(__name__)
        app.config["PASSKEY_TENANT"] = {"default_domain": "a.example", "custom_domains": []}
        Passkey(app)
        return app

    result = CliRunner().invoke(passkey_cli, ["users", "list"], obj=ScriptInfo(create_app=broken))
    assert result.exit_code == 1
    assert "The app does not start" in result.output
    assert "Traceback" not in result.output


# -- db --------------------------------------------------------------------------------------


def test_db_upgrade_brings_the_schema_to_the_newest_revision(sql_app: Flask) -> None:
    out = ok(run(sql_app, "db", "upgrade"))
    assert "revision 0005 (the newest)" in out


def test_db_current_says_when_the_database_is_behind(sql_app: Flask) -> None:
    assert "revision 0005 (the newest)" in ok(run(sql_app, "db", "current"))

    store: SqlStore = sql_app.extensions["passkey"].users
    with store.engine.begin() as connection:  # as if a worker of an older version made it
        connection.exec_driver_sql("DROP TABLE clients")
        connection.exec_driver_sql("DROP TABLE refresh_token_revocations")
        connection.exec_driver_sql("DROP INDEX ix_refresh_tokens_family_id")
        for column in ("credential_id", "family_id", "idle_expires_at", "used_at"):
            connection.exec_driver_sql(f"ALTER TABLE refresh_tokens DROP COLUMN {column}")
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
    assert "revision 0001 (the newest is 0005: run `flask passkey db upgrade`)" in ok(
        run(sql_app, "db", "current")
    )

    ok(run(sql_app, "db", "upgrade"))
    assert "revision 0005 (the newest)" in ok(run(sql_app, "db", "current"))


def test_db_upgrade_keeps_the_rows_of_an_older_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'passkey.sqlite3'}"
    upgrade_database(url, revision="0001")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO signing_keys (kid, private_jwk, created_at) VALUES ('old', '{}', 1)"
        )
    engine.dispose()

    app = build_app(database_url=url)
    ok(run(app, "db", "upgrade"))

    kids = [key.kid for key in app.extensions["passkey"].users.signing_keys()]
    assert kids == ["old"]


def test_db_commands_need_a_sql_database(memory_app: Flask) -> None:
    assert "no schema to manage" in failed(run(memory_app, "db", "upgrade"))
    assert "no schema to manage" in failed(run(memory_app, "db", "current"))


# -- clients ---------------------------------------------------------------------------------


def test_a_public_client_gets_no_secret_and_works_at_once(sql_app: Flask) -> None:
    out = ok(run(sql_app, "clients", "add", "cli-spa", "--name", "CLI app"))

    assert "Added client 'cli-spa' (spa, none; connections: " + DB_CONNECTION in out
    assert "client_secret" not in out
    assert challenge(sql_app, "cli-spa") == 200


def test_a_confidential_client_secret_is_shown_once_and_stored_as_a_hash(
    sql_app: Flask,
) -> None:
    result = run(sql_app, "clients", "add", "backend", "--type", "regular_web")
    secret = secret_of(ok(result))
    assert "cannot be shown again" in result.stderr

    store: SqlStore = sql_app.extensions["passkey"].users
    with store.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT * FROM clients").all()
    assert len(rows) == 1
    assert secret not in repr(rows)
    assert hash_secret(secret) in repr(rows)
    listing = ok(run(sql_app, "clients", "list"))
    assert secret not in listing
    assert hash_secret(secret) not in listing
    assert hash_secret(secret).partition("$")[2] not in listing


def test_a_client_added_by_the_cli_authenticates_with_its_secret(sql_app: Flask) -> None:
    """End to end: the CLI's secret gets a challenge, and then a sign-up, over HTTP."""
    secret = secret_of(
        ok(run(sql_app, "clients", "add", "backend", "--auth-method", "client_secret_post"))
    )

    assert challenge(sql_app, "backend") == 401
    assert challenge(sql_app, "backend", "not-the-secret") == 401
    assert challenge(sql_app, "backend", secret) == 200
    flow = passkey_flow(sql_app, "backend", client_secret=secret)
    tokens = flow.sign_up({"email": new_email()})
    assert tokens["id_token"]


def test_a_rotated_secret_replaces_the_old_one(sql_app: Flask) -> None:
    old = secret_of(ok(run(sql_app, "clients", "add", "backend", "--type", "regular_web")))
    assert challenge(sql_app, "backend", old) == 200

    out = ok(run(sql_app, "clients", "rotate-secret", "backend"))
    new = secret_of(out)

    assert new != old
    assert "within 30 s" in out
    assert challenge(sql_app, "backend", old) == 401
    assert challenge(sql_app, "backend", new) == 200


def test_clients_list_shows_every_source(sql_app: Flask) -> None:
    ok(run(sql_app, "clients", "add", "cli-spa", "--name", "CLI app"))

    lines = ok(run(sql_app, "clients", "list")).splitlines()

    assert lines[0].split() == [
        "CLIENT_ID",
        "NAME",
        "TYPE",
        "AUTH_METHOD",
        "SOURCE",
        "CONNECTIONS",
    ]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert "configuration" in rows["spa"]
    assert "database" in rows["cli-spa"]
    assert "CLI app" in rows["cli-spa"]


def test_clients_add_takes_every_option(sql_app: Flask) -> None:
    ok(
        run(
            sql_app,
            "clients",
            "add",
            "full",
            "--name",
            "Full",
            "--type",
            "native",
            "--auth-method",
            "client_secret_basic",
            "--connection",
            DB_CONNECTION,
            "--connection",
            "partners",
            "--web-origin",
            "https://one.acme.test",
            "--web-origin",
            "http://localhost:8080",
            "--grant",
            WEBAUTHN_GRANT,
            "--grant",
            "refresh_token",
            "--organization-usage",
            "allow",
        )
    )
    [client] = sql_app.extensions["passkey"].users.list_clients()
    assert client.name == "Full"
    assert client.app_type == "native"
    assert client.token_endpoint_auth_method == "client_secret_basic"
    assert client.connections == (DB_CONNECTION, "partners")
    assert client.web_origins == ("https://one.acme.test", "http://localhost:8080")
    assert client.grant_types == (WEBAUTHN_GRANT, "refresh_token")
    assert client.organization_usage == "allow"
    assert client.client_secret is None
    assert client.client_secret_hash is not None


def test_clients_add_refuses_an_unknown_connection(sql_app: Flask) -> None:
    out = failed(run(sql_app, "clients", "add", "x", "--connection", "nope"))
    assert "Unknown connection(s): 'nope'" in out
    assert sql_app.extensions["passkey"].users.list_clients() == []


def test_clients_add_needs_a_connection_when_the_tenant_has_no_default(tmp_path: Path) -> None:
    tenant = tenant_data()
    del tenant["default_connection"]
    app = build_app(tenant=tenant, database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert "give --connection" in failed(run(app, "clients", "add", "x"))


def test_clients_add_refuses_an_invalid_origin(sql_app: Flask) -> None:
    out = failed(run(sql_app, "clients", "add", "x", "--web-origin", "https://a.test/path"))
    assert "Invalid client: web_origins[0]:" in out


@pytest.mark.parametrize("client_id", ["spa", "stored"])
def test_clients_add_refuses_a_client_id_in_use(sql_app: Flask, client_id: str) -> None:
    ok(run(sql_app, "clients", "add", "stored"))
    assert f"Client {client_id!r} exists already" in failed(
        run(sql_app, "clients", "add", client_id)
    )


def test_configured_clients_cannot_be_rotated_or_removed(sql_app: Flask) -> None:
    for command in ("rotate-secret", "remove"):
        out = failed(run(sql_app, "clients", command, "confidential"))
        assert "comes from the tenant configuration or a plugin" in out
        assert "No client 'nobody'" in failed(run(sql_app, "clients", command, "nobody"))


def test_a_public_client_has_no_secret_to_rotate(sql_app: Flask) -> None:
    ok(run(sql_app, "clients", "add", "cli-spa"))
    assert "it has no secret" in failed(run(sql_app, "clients", "rotate-secret", "cli-spa"))


def test_a_removed_client_is_refused(sql_app: Flask) -> None:
    ok(run(sql_app, "clients", "add", "cli-spa"))
    assert challenge(sql_app, "cli-spa") == 200

    assert "Removed client 'cli-spa'" in ok(run(sql_app, "clients", "remove", "cli-spa"))

    assert challenge(sql_app, "cli-spa") == 401
    assert "cli-spa" not in ok(run(sql_app, "clients", "list"))


def test_client_writes_need_a_client_store(memory_app: Flask) -> None:
    assert "cannot keep clients" in failed(run(memory_app, "clients", "add", "x"))
    assert "spa" in ok(run(memory_app, "clients", "list"))


# -- users -----------------------------------------------------------------------------------


def test_users_list_shows_identifiers_and_passkey_counts(memory_app: Flask) -> None:
    email = new_email()
    passkey_flow(memory_app).sign_up({"email": email})
    passkey_flow(memory_app).sign_up({"username": "partner1"}, realm="partners")
    users = memory_app.extensions["passkey"].users.list_users()

    lines = ok(run(memory_app, "users", "list")).splitlines()

    assert lines[0].split() == ["USER_ID", "CONNECTION", "IDENTIFIERS", "CREATED", "PASSKEYS"]
    assert [line.split()[:3] for line in lines[1:]] == [
        [users[0].id, DB_CONNECTION, email],
        [users[1].id, "partners", "partner1"],
    ]
    assert all(line.split()[-1] == "1" for line in lines[1:])
    filtered = ok(run(memory_app, "users", "list", "--connection", "partners")).splitlines()
    assert [line.split()[0] for line in filtered[1:]] == [users[1].id]


def test_users_list_without_users(memory_app: Flask) -> None:
    assert ok(run(memory_app, "users", "list")) == "No users.\n"


def test_users_passkeys_shows_each_passkey(memory_app: Flask) -> None:
    synced = passkey_flow(memory_app)
    synced.sign_up({"email": new_email()})
    user = memory_app.extensions["passkey"].users.list_users()[0]
    [credential] = memory_app.extensions["passkey"].users.list_credentials(user.id)

    lines = ok(run(memory_app, "users", "passkeys", user.id)).splitlines()

    assert lines[0].split() == ["CREDENTIAL_ID", "CREATED", "LAST_USED", "KIND", "AAGUID"]
    assert len(lines) == 2
    cells = lines[1].split()
    assert cells[0] == bytes_to_base64url(credential.id)
    assert " ".join(cells[1:3]) == when(credential.created_at)
    assert cells[-2:] == ["synced", credential.aaguid]

    synced.sign_in()
    [used] = memory_app.extensions["passkey"].users.list_credentials(user.id)
    cells = ok(run(memory_app, "users", "passkeys", user.id)).splitlines()[1].split()
    assert used.last_used_at is not None
    assert " ".join(cells[3:5]) == when(used.last_used_at)


def when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def test_device_bound_passkeys_are_shown_as_such(memory_app: Flask) -> None:
    flow = passkey_flow(memory_app, authenticator=SoftAuthenticator(backup_eligible=False))
    flow.sign_up({"email": new_email()})
    user = memory_app.extensions["passkey"].users.list_users()[0]
    assert "device-bound" in ok(run(memory_app, "users", "passkeys", user.id))


def test_users_passkeys_of_an_unknown_user(memory_app: Flask) -> None:
    assert "No user 'nobody'" in failed(run(memory_app, "users", "passkeys", "nobody"))


def test_a_revoked_passkey_signs_nobody_in(memory_app: Flask) -> None:
    flow = passkey_flow(memory_app)
    flow.sign_up({"email": new_email()})
    user = memory_app.extensions["passkey"].users.list_users()[0]
    [credential] = memory_app.extensions["passkey"].users.list_credentials(user.id)
    credential_id = bytes_to_base64url(credential.id)

    result = run(memory_app, "users", "revoke-passkey", user.id, credential_id)

    assert f"Revoked passkey {credential_id} of user {user.id!r}; 0 left." in ok(result)
    assert "cannot sign in" in result.stderr
    with pytest.raises(AssertionError, match="400"):
        flow.sign_in()
    out = failed(run(memory_app, "users", "revoke-passkey", user.id, credential_id))
    assert "has no passkey" in out


def test_revoke_passkey_refuses_a_malformed_credential_id(memory_app: Flask) -> None:
    passkey_flow(memory_app).sign_up({"email": new_email()})
    user = memory_app.extensions["passkey"].users.list_users()[0]
    assert "not base64url" in failed(run(memory_app, "users", "revoke-passkey", user.id, "%%"))


# -- keys ------------------------------------------------------------------------------------


def test_a_rotated_key_signs_within_the_refresh_interval(tmp_path: Path) -> None:
    clock = FakeClock()
    app = build_app(
        clock=clock, signing_keys=[], database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}"
    )
    [first] = app.extensions["passkey"].users.signing_keys()
    flow = passkey_flow(app)
    flow.sign_up({"email": new_email()})

    out = ok(run(app, "keys", "rotate"))
    new_kid = re.search(r"Added signing key (\S+):", out)
    assert new_kid is not None
    assert "within 60 s" in out

    lines = ok(run(app, "keys", "list")).splitlines()
    assert lines[0].split() == ["KID", "CREATED", "ACTIVE"]
    assert [(line.split()[0], line.split()[-1]) for line in lines[1:]] == [
        (first.kid, "no"),
        (new_kid.group(1), "yes"),
    ]

    clock.advance(60)
    jwks = app.test_client().get("/.well-known/jwks.json", base_url=f"https://{CUSTOM_DOMAIN}")
    assert {key["kid"] for key in jwks.get_json()["keys"]} == {first.kid, new_kid.group(1)}
    tokens = flow.sign_in()
    assert jwt.get_unverified_header(tokens["id_token"])["kid"] == new_kid.group(1)


def test_configured_keys_are_listed_and_not_rotated(memory_app: Flask) -> None:
    out = failed(run(memory_app, "keys", "rotate"))
    assert "PASSKEY_SIGNING_KEYS" in out

    lines = ok(run(memory_app, "keys", "list")).splitlines()
    assert len(lines) == 2
    assert lines[1].split()[1:] == ["PASSKEY_SIGNING_KEYS[0]", "yes"]


# -- backends down ---------------------------------------------------------------------------


def test_an_unreachable_database_is_one_line_not_a_traceback(sql_app: Flask) -> None:
    store: Any = sql_app.extensions["passkey"].users

    def down(**_: Any) -> Any:
        raise BackendUnavailable("The database cannot be reached: connection refused")

    store.list_users = down
    result = run(sql_app, "users", "list")
    assert result.exit_code == 1
    assert "The database cannot be reached" in result.output
    assert "Traceback" not in result.output


def test_an_existing_user_added_to_an_organization_can_sign_in_there(memory_app: Flask) -> None:
    flow = passkey_flow(memory_app, "org-allowed")
    flow.sign_up({"email": new_email()})
    user = memory_app.extensions["passkey"].users.list_users()[0]
    with pytest.raises(AssertionError, match="403"):
        flow.sign_in(organization="org_acme")

    result = run(memory_app, "users", "add-to-organization", user.id, "org_acme")

    assert "is a member of 'org_acme'" in ok(result)
    assert flow.sign_in(organization="org_acme")["access_token"]
    assert "no such organization" in failed(
        run(memory_app, "users", "add-to-organization", user.id, "org_nope")
    )
