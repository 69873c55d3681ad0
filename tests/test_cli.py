"""``flask passkey ...``: every command through Flask's CLI runner, end to end where it matters."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import click
import jwt
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo
from webauthn.helpers import bytes_to_base64url

from flask_passkey import Passkey
from flask_passkey.cli.commands import passkey_cli
from flask_passkey.core.client_secrets import hash_secret
from flask_passkey.models import WEBAUTHN_GRANT
from flask_passkey.stores.migrations import HEAD, REVISIONS
from flask_passkey.stores.sql import SqlStore, database_revision, upgrade_database
from flask_passkey.testing import SoftAuthenticator
from tests import ROOT
from tests.apps import CUSTOM_DOMAIN, DB_CONNECTION, FakeClock, make_app, tenant_data
from tests.support import new_email, passkey_flow, post_challenge
from tests.test_docs import DOCS, sections


def run(app: Flask, *args: str) -> Result:
    """``flask passkey <args>`` on ``app``."""
    return app.test_cli_runner().invoke(args=["passkey", *args])


def run_loading(create_app: Callable[[], Flask], *args: str) -> Result:
    """``flask passkey <args>`` as from a shell: the command loads the app itself."""
    return CliRunner().invoke(passkey_cli, list(args), obj=ScriptInfo(create_app=create_app))


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def failed(result: Result) -> str:
    """The error line of a command that failed as each must: status 1 and one ``Error:`` line
    on stderr (a usage error: status 2, click's usage lines, then that line), no traceback."""
    assert result.exit_code in (1, 2), result.output
    assert isinstance(result.exception, SystemExit), result.exception  # raised nothing else
    assert result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert lines[-1].startswith("Error: "), result.stderr
    assert len(lines) == 1 or (result.exit_code == 2 and lines[0].startswith("Usage: "))
    return lines[-1]


def secret_of(output: str) -> str:
    found = re.findall(r"^client_secret: (\S+)$", output, re.MULTILINE)
    assert len(found) == 1, output
    return found[0]


@pytest.fixture
def sql_app(tmp_path: Path) -> Flask:
    return make_app(database_url=f"sqlite:///{tmp_path / 'passkey.sqlite3'}")


@pytest.fixture
def memory_app() -> Flask:
    return make_app()


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
    assert f"is at revision {HEAD} (the newest): nothing to do." in out  # the app migrated


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'passkey.sqlite3'}"


def test_db_commands_see_the_schema_the_app_has_not_migrated_yet(tmp_path: Path) -> None:
    url, older = sqlite_url(tmp_path), REVISIONS[-2]
    upgrade_database(url, revision=older)  # as the previous version left it

    def create_app() -> Flask:  # starting it would migrate
        return make_app(database_url=url)

    assert ok(run_loading(create_app, "db", "current")) == (
        f"{url} is at revision {older} (the newest is {HEAD}: run `flask passkey db upgrade`).\n"
    )
    assert database_revision(url) == older
    assert ok(run_loading(create_app, "db", "upgrade")) == (
        f"Upgraded {url} from revision {older} to {HEAD} (the newest).\n"
    )
    assert ok(run_loading(create_app, "db", "upgrade")) == (
        f"{url} is at revision {HEAD} (the newest): nothing to do.\n"
    )
    assert (
        ok(run_loading(create_app, "db", "current"))
        == f"{url} is at revision {HEAD} (the newest).\n"
    )


def test_db_current_on_a_new_database_says_there_is_no_schema(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    out = ok(run_loading(lambda: make_app(database_url=url), "db", "current"))
    assert out == f"{url} is at revision none (no schema yet: run `flask passkey db upgrade`).\n"


def test_other_commands_migrate_as_the_app_does(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    upgrade_database(url, revision=REVISIONS[0])
    assert ok(run_loading(lambda: make_app(database_url=url), "users", "list")) == "No users.\n"
    assert database_revision(url) == HEAD


def test_db_current_with_auto_migrate_off_reports_what_the_app_waits_for(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    upgrade_database(url, revision=REVISIONS[0])

    def create_app() -> Flask:
        return make_app(database_url=url, auto_migrate=False)

    error = failed(run_loading(create_app, "users", "list"))
    assert error == (
        f"Error: The database schema is at revision {REVISIONS[0]}; this version of "
        f"flask-passkey needs {HEAD}: run `flask passkey db upgrade`."
    )
    ok(run_loading(create_app, "db", "upgrade"))
    assert ok(run_loading(create_app, "users", "list")) == "No users.\n"


def flask_passkey(url: str, instance: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``flask --app <the demo on url> passkey <args>``, run as from a shell."""
    app = (
        f"examples/demo/app.py:create_app({{'PASSKEY_DATABASE_URL': {url!r}}}, "
        f"instance_path={str(instance)!r})"
    )
    return subprocess.run(
        [Path(sys.executable).with_name("flask"), "--app", app, "passkey", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_from_a_shell_db_current_is_truthful_and_an_outage_is_one_line(tmp_path: Path) -> None:
    url, older = sqlite_url(tmp_path), REVISIONS[-2]
    upgrade_database(url, revision=older)

    current = flask_passkey(url, tmp_path, "db", "current")
    down = flask_passkey(f"sqlite:///{tmp_path / 'absent' / 'db'}", tmp_path, "users", "list")

    assert (current.returncode, current.stderr) == (0, "")
    assert f"is at revision {older} (the newest is {HEAD}" in current.stdout
    assert (down.returncode, down.stdout) == (1, "")
    assert down.stderr.startswith("Error: The database cannot be reached: ")
    assert down.stderr.count("\n") == 1, down.stderr


# -- cli.md's database section is what the commands print --------------------------------------


def cli_md_section(command: str) -> str:
    return sections(DOCS / "cli.md")[f"`flask passkey {command}`"]


def sample(command: str) -> tuple[str, str]:
    """The URL and the output of the ``$ flask passkey <command>`` sample in cli.md."""
    match = re.search(
        rf"^\$ flask passkey {command}\n(.*?)\n```", cli_md_section(command), re.M | re.S
    )
    assert match, f"cli.md has no sample of flask passkey {command}"
    url = re.search(r"\b(?:sqlite|postgresql\+psycopg):/+\S+", match[1])
    assert url, match[1]
    return url[0], match[1] + "\n"


def test_cli_md_lists_every_shipped_migration() -> None:
    rows = re.findall(r"^\| `(\d{4})` \|", cli_md_section("db current"), re.M)
    assert tuple(rows) == REVISIONS


def test_cli_md_db_samples_are_what_the_commands_print(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    shown_url, shown = sample("db current")
    older = re.search(r"is at revision (\d{4})", shown)
    assert older, shown
    upgrade_database(url, revision=older[1])

    def create_app() -> Flask:
        return make_app(database_url=url)

    for command in ("db current", "db upgrade"):
        shown_url, shown = sample(command)
        printed = ok(run_loading(create_app, *command.split()))
        assert printed.replace(url, shown_url) == shown


def test_db_current_says_when_the_database_is_behind(sql_app: Flask) -> None:
    assert f"revision {HEAD} (the newest)" in ok(run(sql_app, "db", "current"))

    store: SqlStore = sql_app.extensions["passkey"].users
    with store.engine.begin() as connection:  # as if a worker of an older version made it
        connection.exec_driver_sql("DROP TABLE clients")
        connection.exec_driver_sql("DROP TABLE refresh_token_revocations")
        connection.exec_driver_sql("DROP TABLE markers")
        connection.exec_driver_sql("DROP INDEX ix_refresh_tokens_family_id")
        for column in ("credential_id", "family_id", "idle_expires_at", "used_at", "dpop_jkt"):
            connection.exec_driver_sql(f"ALTER TABLE refresh_tokens DROP COLUMN {column}")
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
    assert f"revision 0001 (the newest is {HEAD}: run `flask passkey db upgrade`)" in ok(
        run(sql_app, "db", "current")
    )

    ok(run(sql_app, "db", "upgrade"))
    assert f"revision {HEAD} (the newest)" in ok(run(sql_app, "db", "current"))


def test_db_upgrade_keeps_the_rows_of_an_older_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'passkey.sqlite3'}"
    upgrade_database(url, revision="0001")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO signing_keys (kid, private_jwk, created_at) VALUES ('old', '{}', 1)"
        )
    engine.dispose()

    app = make_app(database_url=url)
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


def test_a_client_added_with_challenge_without_secret_starts_challenges_without_it(
    sql_app: Flask,
) -> None:
    out = ok(
        run(
            sql_app,
            "clients",
            "add",
            "backend",
            "--type",
            "regular_web",
            "--challenge-without-secret",
        )
    )
    secret = secret_of(out)

    assert challenge(sql_app, "backend") == 200
    assert challenge(sql_app, "backend", "not-the-secret") == 401
    assert challenge(sql_app, "backend", secret) == 200


def test_clients_add_refuses_challenge_without_secret_for_a_public_client(sql_app: Flask) -> None:
    out = failed(run(sql_app, "clients", "add", "x", "--challenge-without-secret"))

    assert "challenge_without_secret" in out
    assert sql_app.extensions["passkey"].users.list_clients() == []


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
            "--allowed-origin",
            "https://app.acme.test",
            "--grant",
            WEBAUTHN_GRANT,
            "--grant",
            "refresh_token",
            "--organization-usage",
            "allow",
            "--challenge-without-secret",
        )
    )
    [client] = sql_app.extensions["passkey"].users.list_clients()
    assert client.name == "Full"
    assert client.app_type == "native"
    assert client.token_endpoint_auth_method == "client_secret_basic"
    assert client.connections == (DB_CONNECTION, "partners")
    assert client.web_origins == ("https://one.acme.test", "http://localhost:8080")
    assert client.allowed_origins == ("https://app.acme.test",)
    assert client.grant_types == (WEBAUTHN_GRANT, "refresh_token")
    assert client.organization_usage == "allow"
    assert client.challenge_without_secret
    assert client.client_secret is None
    assert client.client_secret_hash is not None


def test_clients_add_refuses_an_unknown_connection(sql_app: Flask) -> None:
    out = failed(run(sql_app, "clients", "add", "x", "--connection", "nope"))
    assert out == "Error: Unknown connection 'nope'."
    assert sql_app.extensions["passkey"].users.list_clients() == []


def test_clients_add_needs_a_connection_when_the_tenant_has_no_default(tmp_path: Path) -> None:
    tenant = tenant_data()
    del tenant["default_connection"]
    app = make_app(tenant=tenant, database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}")
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

    assert lines[0].split() == ["CREDENTIAL_ID", "NAME", "CREATED", "LAST_USED", "KIND", "AAGUID"]
    assert len(lines) == 2
    cells = lines[1].split()
    assert cells[:2] == [bytes_to_base64url(credential.id), "-"]  # no name, no known provider
    assert " ".join(cells[2:4]) == when(credential.created_at)
    assert cells[-2:] == ["synced", credential.aaguid]

    synced.sign_in()
    [used] = memory_app.extensions["passkey"].users.list_credentials(user.id)
    cells = ok(run(memory_app, "users", "passkeys", user.id)).splitlines()[1].split()
    assert used.last_used_at is not None
    assert " ".join(cells[4:6]) == when(used.last_used_at)


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
    app = make_app(
        clock=clock, signing_keys=[], database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}"
    )
    assert ok(run(app, "keys", "list")).startswith("No signing key yet")
    flow = passkey_flow(app)
    flow.sign_up({"email": new_email()})  # the first token: the first key
    [first] = app.extensions["passkey"].users.signing_keys()

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


#: A command line for every command that reads or writes the database.
ON_THE_DATABASE = [
    ("db", "upgrade"),
    ("db", "current"),
    ("clients", "add", "x"),
    ("clients", "list"),
    ("clients", "rotate-secret", "x"),
    ("clients", "remove", "x"),
    ("users", "list"),
    ("users", "passkeys", "u"),
    ("users", "revoke-passkey", "u", "AAAA"),
    ("users", "add-to-organization", "u", "org_acme"),
    ("keys", "rotate"),
    ("keys", "list"),
]


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from command_paths(command, (*prefix, name))
        else:
            yield (*prefix, name)


def test_every_command_but_doctor_is_checked_against_an_outage() -> None:
    every = set(command_paths(passkey_cli))
    checked = {path for path in every if any(line[: len(path)] == path for line in ON_THE_DATABASE)}
    # doctor reports an outage as a problem (its tests); the mds commands read files only
    assert checked == every - {("doctor",), ("mds", "info"), ("mds", "load")}


@pytest.fixture(
    params=["sqlite", "postgresql"],
    ids=["sqlite file out of reach", "postgresql refusing connections"],
)
def unreachable_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":  # its folder is not there (a volume not mounted, say)
        return f"sqlite:///{tmp_path / 'not-mounted' / 'passkey.sqlite3'}"
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/acme"


@pytest.mark.parametrize("command", ON_THE_DATABASE, ids=" ".join)
def test_an_unreachable_database_is_one_error_line(
    unreachable_url: str, command: tuple[str, ...]
) -> None:
    def create_app() -> Flask:  # the keys of the database, not of the configuration
        return make_app(database_url=unreachable_url, signing_keys=[])

    error = failed(run_loading(create_app, *command))

    assert error.startswith("Error: The database cannot be reached: "), error


def test_users_list_refuses_an_unknown_connection(memory_app: Flask) -> None:
    assert failed(run(memory_app, "users", "list", "--connection", "nope")) == (
        "Error: Unknown connection 'nope'."
    )


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
