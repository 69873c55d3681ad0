"""``flask passkey doctor``: one test per problem it finds, and "ok" on a sound deployment."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo

from flask_passkey import Passkey, hookimpl
from flask_passkey.cli.commands import passkey_cli
from flask_passkey.cli.doctor import several_workers
from flask_passkey.errors import BackendUnavailable, ConfigurationError
from flask_passkey.models import AndroidApp, Client, Tenant
from tests.apps import CUSTOM_DOMAIN, DB_CONNECTION, make_app
from tests.examples import load_demo

GOOD_FINGERPRINT = ":".join(f"{i:02X}" for i in range(32))
WORKER_VARIABLES = ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "SERVER_SOFTWARE")


@pytest.fixture(autouse=True)
def single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """No hint of a pre-forking server unless a test sets one."""
    for name in WORKER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def sound_tenant() -> dict[str, Any]:
    """A tenant the doctor finds nothing wrong with; each test breaks one thing."""
    return {
        "default_domain": "acme.auth0.com",
        "custom_domains": [CUSTOM_DOMAIN],
        "default_connection": DB_CONNECTION,
        "connections": [
            {"name": DB_CONNECTION},
            {"name": "no-passkeys", "passkeys_enabled": False},
        ],
        "clients": [{"client_id": "spa", "connections": [DB_CONNECTION]}],
    }


def with_client(**fields: Any) -> dict[str, Any]:
    tenant = sound_tenant()
    tenant["clients"][0].update(fields)
    return tenant


def doctor(app: Flask, *options: str) -> Result:
    return app.test_cli_runner().invoke(args=["passkey", "doctor", *options])


def doctor_of_factory(factory: Callable[[], Flask], *options: str) -> Result:
    """The doctor as ``flask --app <factory> passkey doctor`` runs it (entry-point group)."""
    return CliRunner().invoke(passkey_cli, ["doctor", *options], obj=ScriptInfo(create_app=factory))


def problems(result: Result) -> list[str]:
    """The problem lines, checking the doctor's exit status and that each is one line."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith("- ") for line in lines), lines
    assert f"{len(lines)} problem(s) found." in result.stderr
    return lines


def only_problem(result: Result) -> str:
    [line] = problems(result)
    return line


def failing_app(**config: Any) -> Callable[[], Flask]:
    def factory() -> Flask:
        return make_app(**config)

    return factory


# -- a sound deployment ----------------------------------------------------------------------


def test_a_sound_deployment_is_ok() -> None:
    result = doctor(make_app(tenant=sound_tenant()))
    assert result.exit_code == 0, result.output
    assert result.output == "ok\n"


def test_the_demo_is_ok(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PASSKEY_DEMO_TENANT", raising=False)
    app = load_demo().create_app(instance_path=tmp_path)
    result = doctor(app)
    assert result.exit_code == 0, result.output
    assert result.output == "ok\n"


# -- the tenant ------------------------------------------------------------------------------


def test_no_custom_domain() -> None:
    tenant = sound_tenant()
    tenant["custom_domains"] = []
    line = only_problem(doctor_of_factory(failing_app(tenant=tenant)))
    assert "custom_domains: configure at least one custom domain." in line
    assert "Passkeys are served only on a custom domain" in line


def test_no_custom_domain_from_a_tenant_plugin() -> None:
    class NoDomains:
        @hookimpl
        def passkey_get_tenant(self) -> Tenant:
            return Tenant("acme.auth0.com", ())

    line = only_problem(doctor_of_factory(failing_app(plugins=[NoDomains()])))
    assert "The app refuses to start: The tenant has no custom domain" in line


def test_passkeys_turned_off() -> None:
    tenant = sound_tenant()
    tenant["passkeys_enabled"] = False
    line = only_problem(doctor(make_app(tenant=tenant)))
    assert "Passkeys are turned off for the tenant" in line
    assert "passkeys_enabled = true" in line


def test_rp_id_not_a_registrable_suffix_of_the_custom_domains() -> None:
    tenant = sound_tenant()
    tenant["rp_id"] = "elsewhere.test"
    line = only_problem(doctor_of_factory(failing_app(tenant=tenant)))
    assert f"rp_id 'elsewhere.test' is not a registrable suffix of '{CUSTOM_DOMAIN}'" in line


def test_rp_id_not_a_registrable_suffix_from_a_tenant_plugin() -> None:
    class ElsewhereRpId:
        @hookimpl
        def passkey_get_tenant(self) -> Tenant:
            return Tenant("acme.auth0.com", (CUSTOM_DOMAIN,), rp_id="elsewhere.test")

    app = make_app(tenant=sound_tenant(), plugins=[ElsewhereRpId()])
    line = only_problem(doctor(app))
    assert "The tenant's domains are wrong: rp_id 'elsewhere.test' is not a registrable" in line


# -- clients ---------------------------------------------------------------------------------


def test_a_client_missing_the_webauthn_grant() -> None:
    line = only_problem(doctor(make_app(tenant=with_client(grant_types=["refresh_token"]))))
    assert "Client 'spa' lacks the grant urn:okta:params:oauth:grant-type:webauthn" in line
    assert "grant_types" in line


def test_a_third_party_client() -> None:
    line = only_problem(doctor(make_app(tenant=with_client(is_first_party=False))))
    assert "Client 'spa' is a third-party application" in line


def test_a_client_that_is_not_oidc_conformant() -> None:
    line = only_problem(doctor(make_app(tenant=with_client(oidc_conformant=False))))
    assert "Client 'spa' is not OIDC conformant" in line


def test_a_client_without_an_enabled_connection() -> None:
    line = only_problem(doctor(make_app(tenant=with_client(connections=["no-passkeys"]))))
    assert "Client 'spa' has no enabled connection with passkeys on" in line


def test_malformed_android_fingerprint_in_the_configuration() -> None:
    android = {"package_name": "com.acme.app", "sha256_cert_fingerprints": ["ab:cd:ef"]}
    tenant = with_client(app_type="native", android_apps=[android])
    line = only_problem(doctor_of_factory(failing_app(tenant=tenant)))
    assert "clients[0].android_apps[0].sha256_cert_fingerprints[0]: must be 32" in line
    assert "keytool -list -v" in line


def test_an_allowed_origin_with_a_path() -> None:
    tenant = with_client(allowed_origins=["https://app.acme.test/callback"])
    line = only_problem(doctor_of_factory(failing_app(tenant=tenant)))
    assert "clients[0].allowed_origins[0]:" in line
    assert "scheme://host[:port], without a path" in line


class PluginClients:
    """Clients from an operator's plugin, which no configuration schema checked."""

    def __init__(self, *clients: Client) -> None:
        self.clients = {client.client_id: client for client in clients}

    @hookimpl
    def passkey_get_client(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)

    @hookimpl
    def passkey_get_clients(self) -> list[Client]:
        return list(self.clients.values())


def test_malformed_android_fingerprint_from_a_plugin() -> None:
    client = Client(
        "native",
        app_type="native",
        connections=(DB_CONNECTION,),
        android_apps=(AndroidApp("com.acme.app", (GOOD_FINGERPRINT, "AB:CD")),),
    )
    app = make_app(tenant=sound_tenant(), plugins=[PluginClients(client)])
    line = only_problem(doctor(app))
    assert "Android app com.acme.app has a malformed signing certificate" in line
    assert "fingerprint 'AB:CD'" in line


def test_a_plugin_client_naming_an_unknown_connection() -> None:
    client = Client("spa", connections=(DB_CONNECTION, "gone"))
    app = make_app(tenant=sound_tenant(), plugins=[PluginClients(client)])
    line = only_problem(doctor(app))
    assert "Client 'spa' names the unknown connection 'gone'" in line


def test_a_confidential_plugin_client_without_a_secret() -> None:
    client = Client(
        "backend", token_endpoint_auth_method="client_secret_post", connections=(DB_CONNECTION,)
    )
    app = make_app(tenant=sound_tenant(), plugins=[PluginClients(client)])
    assert "has no secret: every request gets invalid_client" in only_problem(doctor(app))


def test_no_client_at_all() -> None:
    tenant = sound_tenant()
    tenant["clients"] = []
    assert "The tenant has no client" in only_problem(doctor(make_app(tenant=tenant)))


def test_a_stored_client_hidden_by_a_configured_one(tmp_path: Path) -> None:
    app = make_app(tenant=sound_tenant(), database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    app.extensions["passkey"].users.add_client(Client("spa", name="stored"))
    line = only_problem(doctor(app))
    assert "Client 'spa' is in the database but the tenant configuration" in line
    assert "flask passkey clients remove spa" in line


# -- processes, stores, keys and limits ------------------------------------------------------


def test_in_memory_rate_limits_with_several_workers(tmp_path: Path) -> None:
    app = make_app(tenant=sound_tenant(), database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert doctor(app).output == "ok\n"  # one process: memory is right
    line = only_problem(doctor(app, "--workers", "4"))
    assert "Several worker processes are likely (--workers 4)" in line
    assert "rate-limit counters are kept in each process's memory" in line


def test_in_memory_sessions_with_several_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    app = make_app(tenant=sound_tenant(), rate_limit_storage_uri="memory://")
    lines = problems(doctor(app))
    assert len(lines) == 3
    assert "pending ceremonies are kept in each process's memory" in lines[0]
    assert "users and passkeys are kept in each process's memory" in lines[1]
    assert "WEB_CONCURRENCY=3" in lines[0]
    assert "ok" in doctor(app, "--workers", "1").output


@pytest.mark.parametrize(
    ("environ", "reason"),
    [
        ({}, None),
        ({"WEB_CONCURRENCY": "1"}, None),
        ({"WEB_CONCURRENCY": "4"}, "WEB_CONCURRENCY=4"),
        ({"GUNICORN_CMD_ARGS": "--bind 0.0.0.0:80 --workers 3"}, "GUNICORN_CMD_ARGS --workers 3"),
        ({"GUNICORN_CMD_ARGS": "-w 2"}, "GUNICORN_CMD_ARGS -w 2"),
        ({"GUNICORN_CMD_ARGS": "-w4 --preload"}, "GUNICORN_CMD_ARGS -w 4"),
        ({"GUNICORN_CMD_ARGS": "--workers=5"}, "GUNICORN_CMD_ARGS --workers 5"),
        ({"GUNICORN_CMD_ARGS": "--workers=1"}, None),
        ({"SERVER_SOFTWARE": "gunicorn/23.0.0"}, "SERVER_SOFTWARE=gunicorn/23.0.0"),
        ({"SERVER_SOFTWARE": "Werkzeug/3.1"}, None),
    ],
)
def test_several_workers_are_guessed_from_the_environment(
    environ: dict[str, str], reason: str | None
) -> None:
    assert several_workers(environ, None) == reason


def test_the_workers_option_wins_over_the_environment() -> None:
    assert several_workers({"WEB_CONCURRENCY": "4"}, 1) is None
    assert several_workers({}, 2) == "--workers 2"


def test_a_signing_key_kept_only_in_memory() -> None:
    app = make_app(tenant=sound_tenant(), signing_keys=[])  # memory:// user store
    line = only_problem(doctor(app))
    assert "Tokens are signed with a key generated at start and kept only in memory" in line
    assert "PASSKEY_SIGNING_KEYS" in line


def test_signing_keys_in_a_database_file_other_users_can_read(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    app = make_app(tenant=sound_tenant(), database_url=f"sqlite:///{path}", signing_keys=[])
    assert app.test_client().get("/.well-known/jwks.json", headers={"Host": CUSTOM_DOMAIN}).json
    assert doctor(app).output == "ok\n"  # created owner-only
    path.chmod(0o644)

    line = only_problem(doctor(app))

    assert f"{path} holds the private signing keys and is readable by other local users" in line
    assert f"chmod 600 {path}" in line


def test_signing_keys_from_the_configuration_are_not_the_database_files_concern(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite3"
    app = make_app(tenant=sound_tenant(), database_url=f"sqlite:///{path}")
    path.chmod(0o644)

    assert doctor(app).output == "ok\n"


def test_rate_limiting_turned_off() -> None:
    line = only_problem(doctor(make_app(tenant=sound_tenant(), rate_limit_enabled=False)))
    assert "PASSKEY_RATE_LIMIT_ENABLED is False" in line


def test_an_unreachable_store(monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(tenant=sound_tenant())
    state = app.extensions["passkey"]

    def down(*_: Any, **__: Any) -> Any:
        raise BackendUnavailable("The database cannot be reached: connection refused")

    monkeypatch.setattr(state.users, "list_users", down)
    monkeypatch.setattr(state.sessions, "take", down)
    lines = problems(doctor(app))
    assert lines[0].startswith("- The user store cannot be reached: The database cannot be")
    assert lines[1].startswith("- The session store cannot be reached")


# -- apps that do not start ------------------------------------------------------------------


def test_any_configuration_error_is_explained() -> None:
    line = only_problem(doctor_of_factory(failing_app(challenge_timeout=5)))
    assert "The app refuses to start: PASSKEY_CHALLENGE_TIMEOUT is in milliseconds" in line
    assert "then run `flask passkey doctor` again" in line


def test_each_start_up_problem_is_a_doctor_line_worded_as_the_error_words_it() -> None:
    tenant = with_client(
        app_type="native",
        web_origins=["https://app.acme.test/"],
        android_apps=[{"package_name": "com.acme.app", "sha256_cert_fingerprints": ["ab:cd"]}],
    )
    with pytest.raises(ConfigurationError) as refused:
        make_app(tenant=tenant)

    lines = problems(doctor_of_factory(failing_app(tenant=tenant)))

    assert refused.value.problems == (
        "clients[0].web_origins[0]: String does not match expected pattern.",
        "clients[0].android_apps[0].sha256_cert_fingerprints[0]: must be 32 colon-separated "
        "upper-case hex bytes.",
    )
    assert [line.split(". ", 1)[0] + "." for line in lines] == [
        f"- The tenant configuration is invalid: {problem}" for problem in refused.value.problems
    ]
    assert "Write each origin as scheme://host[:port], without a path" in lines[0]


def test_a_misspelt_key_gets_did_you_mean() -> None:
    line = only_problem(doctor_of_factory(failing_app(host_config={"PASSKEY_RATE_LIMT": "5/s"})))
    assert line == (
        "- The app refuses to start: PASSKEY_RATE_LIMT: unknown key; did you mean "
        "PASSKEY_RATE_LIMIT? Fix what it names, then run `flask passkey doctor` again."
    )


def test_a_postgres_url_gets_the_url_to_write() -> None:
    url = "postgres://app:pw-secret@db.internal/acme"
    line = only_problem(doctor_of_factory(failing_app(database_url=url)))
    assert line.startswith(
        "- The app refuses to start: PASSKEY_DATABASE_URL: SQLAlchemy knows no postgres:// URLs "
        "(Heroku's spelling): write postgresql+psycopg://user:password@host:5432/database "
    )
    assert "pw-secret" not in line


APP_PY = """
from flask import Flask
from flask_passkey import Passkey

app = Flask(__name__)
app.config["PASSKEY_TENANT_FILE"] = "tenant.toml"
Passkey(app)
"""
TENANT_TOML = f"""
default_domain = "acme.auth0.com"
custom_domains = ["{CUSTOM_DOMAIN}"]
default_connection = "{DB_CONNECTION}"

[[connections]]
name = "{DB_CONNECTION}"

[[clients]]
client_id = "native"
app_type = "native"
connections = ["{DB_CONNECTION}"]

[[clients.android_apps]]
package_name = "com.acme.app"
sha256_cert_fingerprints = ["FINGERPRINT"]
"""


def from_a_shell(
    tmp_path: Path, fingerprint: str, *command: str
) -> subprocess.CompletedProcess[str]:
    """``command`` run in another directory than the app's, which reads ``tenant.toml`` (the
    README's Quickstart) beside ``app.py``."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "app.py").write_text(APP_PY)
    (tmp_path / "app" / "tenant.toml").write_text(TENANT_TOML.replace("FINGERPRINT", fingerprint))
    (tmp_path / "elsewhere").mkdir()
    bin_dir = Path(sys.executable).parent
    return subprocess.run(
        [str(bin_dir / command[0]), *command[1:]],
        cwd=tmp_path / "elsewhere",
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_from_another_directory_the_doctor_reads_the_tenant_file_beside_the_app(
    tmp_path: Path,
) -> None:
    result = from_a_shell(
        tmp_path,
        GOOD_FINGERPRINT,
        "flask",
        "--app",
        str(tmp_path / "app" / "app.py"),
        "passkey",
        "doctor",
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok\n", "")


def test_an_app_with_a_bad_fingerprint_stops_with_the_problem_not_a_dict(tmp_path: Path) -> None:
    result = from_a_shell(tmp_path, "14:6d:E9", "python", str(tmp_path / "app" / "app.py"))

    assert result.returncode == 1
    assert result.stderr.splitlines()[-2:] == [
        "flask_passkey.errors.TenantConfigurationError: Invalid tenant configuration:",
        "  clients[0].android_apps[0].sha256_cert_fingerprints[0]: must be 32 colon-separated "
        "upper-case hex bytes.",
    ]
    assert result.stderr.count("Traceback") == 1  # no chained marshmallow traceback
    assert "{'clients'" not in result.stderr  # marshmallow's dict of messages


def test_an_app_that_crashes_while_loading() -> None:
    def factory() -> Flask:
        raise RuntimeError("boom")

    line = only_problem(doctor_of_factory(factory))
    assert "The app cannot be loaded: RuntimeError: boom" in line


def test_an_app_without_the_extension() -> None:
    result = doctor_of_factory(lambda: Flask(__name__))
    assert result.exit_code == 1
    assert "flask-passkey is not initialised on this app" in result.output


def test_every_problem_is_listed_at_once() -> None:
    tenant = copy.deepcopy(sound_tenant())
    tenant["passkeys_enabled"] = False
    tenant["clients"][0].update(is_first_party=False, oidc_conformant=False)
    app = make_app(tenant=tenant, rate_limit_enabled=False)
    assert len(problems(doctor(app))) == 4


def test_an_app_built_by_passkey_init_app_gets_the_doctor() -> None:
    app = Flask(__name__)
    app.config.update(PASSKEY_TENANT=sound_tenant(), PASSKEY_DATABASE_URL="memory://")
    Passkey().init_app(app)
    result = doctor(app)
    assert result.exit_code == 1  # the generated key lives in memory
    assert "kept only in memory" in result.output
