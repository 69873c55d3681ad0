"""Deployment mistakes are refused at init_app with ConfigurationError; defaults land in config."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

import flask_passkey
from flask_passkey import ConfigurationError, Passkey
from flask_passkey.config import Settings, documented_settings
from flask_passkey.models import Tenant
from tests.apps import CUSTOM_DOMAIN, make_app, tenant_data
from tests.support import post_challenge


def tenant_with(**changes: Any) -> dict[str, Any]:
    tenant = tenant_data()
    tenant.update(changes)
    return tenant


def with_spa(**changes: Any) -> dict[str, Any]:
    tenant = tenant_data()
    tenant["clients"][0].update(changes)
    return tenant


# -- PASSKEY_* keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["PASSKEY_CHALENGE_TIMEOUT", "PASSKEY_RATELIMIT", "PASSKEY_DISABLED_PLUGIN", "PASSKEY_TENANTS"],
)
def test_misspelled_key_is_refused_by_name(key: str) -> None:
    with pytest.raises(ConfigurationError, match=key):
        make_app(host_config={key: "anything"})


def test_non_passkey_keys_of_the_host_are_not_checked() -> None:
    app = make_app(host_config={"SECRET_KEY": "x", "MY_PASSKEYS_SETTING": 1})

    assert post_challenge(app.test_client()).status_code == 200


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("challenge_timeout", "60"),
        ("challenge_timeout", 60.5),
        ("rate_limit_enabled", 1),
        ("rate_limit_enabled", "yes"),
        ("trusted_proxies", True),
        ("trusted_proxies", "1"),
        ("max_body_size", "64k"),
        ("rate_limit", 60),
        ("plugins", "some.module:plugin"),
        ("disabled_plugins", "realm"),
        ("load_entry_points", "false"),
    ],
)
def test_key_of_the_wrong_type_is_refused_by_name(key: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=f"PASSKEY_{key.upper()}"):
        make_app(**{key: value})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("challenge_timeout", 60),  # seconds by mistake: the key is in milliseconds
        ("trusted_proxies", -1),
        ("max_body_size", 100),
        ("url_prefix", "auth"),
    ],
)
def test_out_of_range_value_is_refused_by_name(key: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=f"PASSKEY_{key.upper()}"):
        make_app(**{key: value})


@pytest.mark.parametrize(
    "limit", ["lots", "", "5 per fortnight", "per minute", "5/minute; nonsense"]
)
def test_invalid_rate_limit_is_refused(limit: str) -> None:
    with pytest.raises(ConfigurationError, match="PASSKEY_RATE_LIMIT"):
        make_app(rate_limit=limit)


@pytest.mark.parametrize("limit", ["5/minute", "10 per hour; 100 per day", "2 per 30 seconds"])
def test_valid_rate_limit_strings_are_accepted(limit: str) -> None:
    assert post_challenge(make_app(rate_limit=limit).test_client()).status_code == 200


def test_defaults_are_set_in_app_config_and_explicit_values_kept() -> None:
    app = make_app(challenge_timeout=90_000)

    assert app.config["PASSKEY_CHALLENGE_TIMEOUT"] == 90_000
    for key, (default, _doc) in documented_settings().items():
        assert key in app.config, key
        if key not in {
            "PASSKEY_CHALLENGE_TIMEOUT",
            "PASSKEY_TENANT",
            "PASSKEY_DATABASE_URL",
            "PASSKEY_SIGNING_KEYS",
        }:
            assert app.config[key] == default, key
    assert app.config["PASSKEY_RATE_LIMIT"] == "60 per minute"
    assert app.config["PASSKEY_TRUSTED_PROXIES"] == 0


def test_every_setting_is_documented() -> None:
    for key, (_default, doc) in documented_settings().items():
        assert key.startswith("PASSKEY_")
        assert doc.strip(), key


# -- the tenant --------------------------------------------------------------------------------


def test_app_without_any_tenant_is_refused() -> None:
    app = Flask(__name__)
    app.config["PASSKEY_DATABASE_URL"] = "memory://"

    with pytest.raises(ConfigurationError, match="tenant"):
        Passkey(app)


def test_tenant_without_custom_domain_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="custom domain"):
        make_app(tenant=tenant_with(custom_domains=[]))


def test_tenant_plugin_without_custom_domain_is_refused() -> None:
    class BareTenant:
        @flask_passkey.hookimpl
        def passkey_get_tenant(self) -> Tenant:
            return Tenant(default_domain="acme.auth0.com", custom_domains=())

    app = Flask(__name__)
    app.config.update(PASSKEY_PLUGINS=[BareTenant()], PASSKEY_DATABASE_URL="memory://")

    with pytest.raises(ConfigurationError, match="custom domain"):
        Passkey(app)


TOML_TENANT = f"""
default_domain = "acme.auth0.com"
custom_domains = ["{CUSTOM_DOMAIN}"]
default_connection = "db"

[[connections]]
name = "db"

[[clients]]
client_id = "from-file"
connections = ["db"]
"""


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_tenant_file_is_loaded(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"tenant{suffix}"
    if suffix == ".toml":
        path.write_text(TOML_TENANT)
    else:
        path.write_text(json.dumps(tomllib.loads(TOML_TENANT)))
    app = make_app(tenant_file=str(path), host_config={"PASSKEY_TENANT": None})

    response = post_challenge(app.test_client(), {"client_id": "from-file"})

    assert response.status_code == 200
    assert post_challenge(app.test_client()).status_code == 401  # "spa" is not in the file


def test_tenant_mapping_wins_over_tenant_file(tmp_path: Path) -> None:
    path = tmp_path / "tenant.toml"
    path.write_text(TOML_TENANT)

    app = make_app(tenant_file=str(path))

    assert post_challenge(app.test_client()).status_code == 200
    assert post_challenge(app.test_client(), {"client_id": "from-file"}).status_code == 401


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("missing.toml", None, id="missing"),
        pytest.param("directory.toml", "<dir>", id="directory"),
        pytest.param("broken.toml", 'default_domain = "acme', id="bad-toml"),
        pytest.param("broken.json", '{"default_domain": ', id="bad-json"),
        pytest.param("latin1.toml", b'default_domain = "\xe9"\n', id="not-utf8"),
    ],
)
def test_unreadable_tenant_file_is_refused(
    tmp_path: Path, name: str, content: str | bytes | None
) -> None:
    path = tmp_path / name
    if content == "<dir>":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)

    with pytest.raises(ConfigurationError, match="PASSKEY_TENANT_FILE"):
        make_app(tenant_file=str(path), host_config={"PASSKEY_TENANT": None})


def test_tenant_file_with_a_list_at_top_level_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tenant.json"
    path.write_text(json.dumps([tenant_data()]))

    with pytest.raises(ConfigurationError):
        make_app(tenant_file=str(path), host_config={"PASSKEY_TENANT": None})


BAD_TENANTS = [
    pytest.param(tenant_with(colour="blue"), "colour", id="unknown-tenant-field"),
    pytest.param(with_spa(secret_color="x"), "secret_color", id="unknown-client-field"),
    pytest.param(
        with_spa(
            app_type="native",
            android_apps=[{"package_name": "com.acme", "sha256_cert_fingerprints": ["AB:CD"]}],
        ),
        "sha256_cert_fingerprints",
        id="short-android-fingerprint",
    ),
    pytest.param(
        with_spa(
            android_apps=[
                {
                    "package_name": "com.acme",
                    "sha256_cert_fingerprints": [":".join(["ab"] * 32)],
                }
            ]
        ),
        "sha256_cert_fingerprints",
        id="lower-case-android-fingerprint",
    ),
    pytest.param(with_spa(connections=["nope"]), "nope", id="client-names-unknown-connection"),
    pytest.param(
        with_spa(default_connection="nope"), "nope", id="client-default-connection-unknown"
    ),
    pytest.param(tenant_with(default_connection="nope"), "nope", id="tenant-default-unknown"),
    pytest.param(tenant_with(custom_domains=["10.0.0.1"]), "10.0.0.1", id="ipv4-custom-domain"),
    pytest.param(tenant_with(custom_domains=["::1"]), "custom_domains", id="ipv6-custom-domain"),
    pytest.param(
        tenant_with(custom_domains=["https://login.acme.test"]),
        "custom_domains",
        id="custom-domain-with-scheme",
    ),
    pytest.param(
        tenant_with(custom_domains=["login.acme.test:443"]),
        "custom_domains",
        id="custom-domain-with-port",
    ),
    pytest.param(
        tenant_with(custom_domains=["Login.Acme.Test"]),
        "custom_domains",
        id="custom-domain-upper-case",
    ),
    pytest.param(tenant_with(rp_id="example.org"), "example.org", id="rp-id-elsewhere"),
    pytest.param(tenant_with(rp_id="cme.test"), "cme.test", id="rp-id-partial-label"),
    pytest.param(
        tenant_with(rp_id="id.login.acme.test"), "id.login.acme.test", id="rp-id-subdomain"
    ),
    pytest.param(
        tenant_with(custom_domains=["acme.auth0.com"]), "default domain", id="default-is-custom"
    ),
    pytest.param(
        tenant_with(clients=[{"client_id": "a"}, {"client_id": "a"}]),
        "clients[1].client_id: 'a' is already the client_id of clients[0].",
        id="duplicate-client-id",
    ),
    pytest.param(
        with_spa(token_endpoint_auth_method="client_secret_post"),
        "client_secret",
        id="confidential-without-secret",
    ),
    pytest.param(
        with_spa(organization_usage="sometimes"), "organization_usage", id="bad-org-usage"
    ),
]


@pytest.mark.parametrize(("tenant", "named"), BAD_TENANTS)
def test_bad_tenant_data_is_refused(tenant: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(named)):
        make_app(tenant=tenant)


@pytest.mark.parametrize("rp_id", ["acme.test", CUSTOM_DOMAIN])
def test_rp_id_that_is_a_registrable_suffix_is_accepted(rp_id: str) -> None:
    app = make_app(tenant=tenant_with(rp_id=rp_id))

    options = post_challenge(app.test_client()).get_json()["authn_params_public_key"]

    assert options["rpId"] == rp_id


def test_rp_id_that_is_a_top_level_domain_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="rp_id"):
        make_app(tenant=tenant_with(rp_id="test"))


# -- init_app ----------------------------------------------------------------------------------


def test_init_app_twice_on_one_app_is_refused() -> None:
    app = make_app()

    with pytest.raises(ConfigurationError):
        Passkey().init_app(app)
    with pytest.raises(ConfigurationError):
        Passkey(app)


def test_failed_init_app_registers_nothing() -> None:
    app = Flask(__name__)
    app.config.update(
        PASSKEY_TENANT=tenant_with(custom_domains=[]), PASSKEY_DATABASE_URL="memory://"
    )

    with pytest.raises(ConfigurationError):
        Passkey(app)

    assert "passkey" not in app.extensions
    assert post_challenge(app.test_client()).status_code == 404


def test_client_with_both_a_secret_and_its_hash_is_refused() -> None:
    tenant = tenant_data()
    tenant["clients"][1]["client_secret_hash"] = "sha256$" + "0" * 64

    with pytest.raises(ConfigurationError, match="not both"):
        make_app(tenant=tenant)


# -- PASSKEY_TENANT_FILE is relative to the app ---------------------------------------------------


def assert_no_chained_traceback(error: BaseException) -> None:
    """Python prints no "direct cause" or "during handling" traceback before ``error``'s."""
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def app_in(root: Path, **config: Any) -> Flask:
    """An app whose root_path is ``root``, as ``Flask(__name__)`` in ``root/app.py`` gets."""
    app = Flask("app", root_path=str(root))
    app.config.update(PASSKEY_DATABASE_URL="memory://", SECRET_KEY="x")
    app.config.update({f"PASSKEY_{key.upper()}": value for key, value in config.items()})
    Passkey(app)
    return app


def test_relative_tenant_file_is_read_from_the_app_root_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, elsewhere = tmp_path / "app", tmp_path / "elsewhere"
    (root / "config").mkdir(parents=True)
    elsewhere.mkdir()
    (root / "config" / "tenant.toml").write_text(TOML_TENANT)
    (elsewhere / "config").mkdir()
    (elsewhere / "config" / "tenant.toml").write_text("this is not the app's tenant")
    monkeypatch.chdir(elsewhere)

    app = app_in(root, tenant_file="config/tenant.toml")

    assert post_challenge(app.test_client(), {"client_id": "from-file"}).status_code == 200


def test_absolute_tenant_file_is_read_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "tenant.toml").write_text(TOML_TENANT)

    app = app_in(tmp_path / "app", tenant_file=str(tmp_path / "tenant.toml"))

    assert post_challenge(app.test_client(), {"client_id": "from-file"}).status_code == 200


def test_missing_relative_tenant_file_names_where_it_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as refused:
        app_in(tmp_path, tenant_file="tenant.toml")

    assert str(refused.value) == (
        f"PASSKEY_TENANT_FILE: cannot read {tmp_path / 'tenant.toml'} ('tenant.toml' in "
        "app.root_path): No such file or directory."
    )
    assert_no_chained_traceback(refused.value)


def test_tenant_file_syntax_error_says_where(tmp_path: Path) -> None:
    path = tmp_path / "tenant.toml"
    path.write_text('default_domain = "acme.auth0.com"\ncustom_domains = [login.acme.test]\n')

    with pytest.raises(ConfigurationError) as refused:
        app_in(tmp_path, tenant_file=str(path))

    assert str(refused.value) == (
        f"PASSKEY_TENANT_FILE: cannot read {path}: Invalid value (at line 2, column 19)."
    )


# -- readable errors: one line per problem, each with where it is --------------------------------


def test_tenant_mistakes_are_listed_one_per_line_with_their_path() -> None:
    tenant = with_spa(
        app_type="native",
        web_origins=["https://app.acme.test/login"],
        connections=["nope"],
        android_apps=[{"package_name": "com.acme", "sha256_cert_fingerprints": ["14:6d:E9"]}],
    )

    with pytest.raises(ConfigurationError) as refused:
        make_app(tenant=tenant)

    assert str(refused.value).splitlines() == [
        "Invalid tenant configuration:",
        "  clients[0].web_origins[0]: String does not match expected pattern.",
        "  clients[0].android_apps[0].sha256_cert_fingerprints[0]: must be 32 colon-separated "
        "upper-case hex bytes.",
    ]
    assert_no_chained_traceback(refused.value)  # marshmallow's would repeat the lines


def test_tenant_references_are_listed_one_per_line_with_their_path() -> None:
    tenant = tenant_with(default_connection="gone")
    tenant["clients"][0].update(connections=["Username-Password-Authentication", "nope"])

    with pytest.raises(ConfigurationError) as refused:
        make_app(tenant=tenant)

    assert refused.value.problems == (
        "default_connection: 'gone' is not a connection of the tenant.",
        "clients[0].connections[1]: 'nope' is not a connection of the tenant.",
    )


def test_a_tenant_json_file_that_is_no_object_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "tenant.json"
    path.write_text(json.dumps([tenant_data()]))

    with pytest.raises(ConfigurationError) as refused:
        make_app(tenant_file=str(path), host_config={"PASSKEY_TENANT": None})

    assert str(refused.value) == (
        f"PASSKEY_TENANT_FILE: cannot read {path}: its top level must be an object."
    )


def test_every_wrongly_typed_key_is_listed_at_once() -> None:
    with pytest.raises(ConfigurationError) as refused:
        make_app(challenge_timeout="60s", rate_limit_enabled="yes")

    assert str(refused.value).splitlines() == [
        "Invalid flask-passkey configuration:",
        "  PASSKEY_CHALLENGE_TIMEOUT: must be int, not str.",
        "  PASSKEY_RATE_LIMIT_ENABLED: must be bool, not str.",
    ]


@pytest.mark.parametrize(
    ("key", "meant"),
    [
        ("PASSKEY_RATE_LIMT", "PASSKEY_RATE_LIMIT"),
        ("PASSKEY_CHALENGE_TIMEOUT", "PASSKEY_CHALLENGE_TIMEOUT"),
        ("PASSKEY_SIGNING_KEY", "PASSKEY_SIGNING_KEYS"),
        ("PASSKEY_TENANTFILE", "PASSKEY_TENANT_FILE"),
    ],
)
def test_a_misspelt_key_gets_did_you_mean(key: str, meant: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        make_app(host_config={key: "anything"})

    assert str(refused.value).splitlines() == [
        "Unknown configuration keys:",
        f"  {key}: unknown key; did you mean {meant}?",
    ]


def test_a_key_like_no_other_is_refused_without_listing_every_key() -> None:
    with pytest.raises(ConfigurationError) as refused:
        make_app(host_config={"PASSKEY_ZEBRA": 1})

    assert refused.value.problems == (
        "PASSKEY_ZEBRA: unknown key: neither flask-passkey nor a registered plugin declares it "
        "(docs/configuration.md lists the keys).",
    )


POSTGRES_HINT = (
    "write postgresql+psycopg://user:password@host:5432/database (psycopg 3, installed by "
    "flask-passkey[postgres])."
)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "postgres://alice:pw-7f3@db.internal/acme",
            f"SQLAlchemy knows no postgres:// URLs (Heroku's spelling): {POSTGRES_HINT}",
        ),
        (
            "postgres+psycopg://alice:pw-7f3@db.internal/acme",
            "SQLAlchemy knows no postgres+psycopg:// URLs (Heroku's spelling): " + POSTGRES_HINT,
        ),
        (
            "postgresql://alice:pw-7f3@db.internal/acme",
            "postgresql:// names no driver, so SQLAlchemy would use psycopg2, which is not "
            f"installed: {POSTGRES_HINT}",
        ),
    ],
)
def test_a_postgres_url_without_a_usable_driver_gets_the_url_to_write(
    url: str, message: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_config({"PASSKEY_DATABASE_URL": url})

    assert str(refused.value) == f"PASSKEY_DATABASE_URL: {message}"
    assert "pw-7f3" not in str(refused.value)


def test_a_postgres_url_naming_its_driver_passes_the_settings() -> None:
    url = "postgresql+psycopg://alice:pw@db.internal/acme"
    assert Settings.from_config({"PASSKEY_DATABASE_URL": url}).database_url == url


SECRET = "s3cret-value-never-shown"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param(
            "signing_keys",
            f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n",
            id="pem-instead-of-a-list",
        ),
        pytest.param(
            "tenant",
            json.dumps(with_spa(client_secret=SECRET)),
            id="tenant-as-json-text",
        ),
        pytest.param("rate_limit_storage_uri", [f"redis://:{SECRET}@cache"], id="uri-in-a-list"),
        pytest.param("database_url", f"postgres://app:{SECRET}@db/acme", id="postgres-url"),
    ],
)
def test_a_configuration_error_never_shows_the_value(key: str, value: Any) -> None:
    with pytest.raises(ConfigurationError) as refused:
        make_app(**{key: value})

    assert f"PASSKEY_{key.upper()}" in str(refused.value)
    assert SECRET not in str(refused.value)


def test_a_pem_instead_of_a_list_gets_told_to_use_a_list() -> None:
    with pytest.raises(ConfigurationError) as refused:
        make_app(signing_keys=f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n")

    assert refused.value.problems == (
        'PASSKEY_SIGNING_KEYS: must be list or tuple, not str (put it in a list: ["..."]).',
    )


def test_a_bad_client_secret_is_refused_without_showing_it() -> None:
    tenant = with_spa(client_secret=SECRET, client_secret_hash="sha256$" + "0" * 64)

    with pytest.raises(ConfigurationError) as refused:
        make_app(tenant=tenant)

    assert refused.value.problems == (
        "clients[0].client_secret_hash: give client_secret or client_secret_hash, not both.",
    )
    assert SECRET not in str(refused.value)


def test_configuration_md_shows_the_errors_as_they_are(tmp_path: Path) -> None:
    page = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    section = page.partition("## Configuration errors")[2].partition("\n## ")[0]
    shown = re.findall(r"^```\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    fingerprint = {"package_name": "com.acme", "sha256_cert_fingerprints": ["14:6d:E9"]}
    errors = []
    for config in (
        {"tenant": with_spa(app_type="native", android_apps=[fingerprint])},
        {"host_config": {"PASSKEY_RATE_LIMT": "5/second"}},
    ):
        with pytest.raises(ConfigurationError) as refused:
            make_app(**config)
        kind = type(refused.value)
        errors.append(f"{kind.__module__}.{kind.__name__}: {refused.value}\n")
    assert shown == errors
    with pytest.raises(ConfigurationError) as refused:
        make_app(signing_keys="-----BEGIN PRIVATE KEY-----...")
    assert f"`{refused.value.problems[0]}`" in " ".join(section.split())
