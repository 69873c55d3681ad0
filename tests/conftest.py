"""Shared fixtures: a tenant, an app factory, and a test client on the custom domain."""

from __future__ import annotations

import copy
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import URL

from flask_passkey import Passkey
from flask_passkey.models import WEBAUTHN_GRANT

CUSTOM_DOMAIN = "login.acme.test"
DEFAULT_DOMAIN = "acme.auth0.com"
DB_CONNECTION = "Username-Password-Authentication"
WEB_ORIGIN = "https://app.acme.test"
CONFIDENTIAL_SECRET = "s3cret-value-for-tests"


def tenant_data() -> dict[str, Any]:
    """A tenant with one client per interesting configuration."""
    connections = [DB_CONNECTION, "partners"]
    return {
        "default_domain": DEFAULT_DOMAIN,
        "custom_domains": [CUSTOM_DOMAIN],
        "rp_name": "Acme",
        "default_connection": DB_CONNECTION,
        "connections": [
            {"name": DB_CONNECTION, "required_identifiers": ["email"]},
            {"name": "partners", "required_identifiers": ["username"]},
            {"name": "no-passkeys", "passkeys_enabled": False},
            {"name": "elsewhere"},
        ],
        "clients": [
            {
                "client_id": "spa",
                "connections": [*connections, "no-passkeys"],
                "web_origins": [WEB_ORIGIN],
            },
            {
                "client_id": "confidential",
                "app_type": "regular_web",
                "client_secret": CONFIDENTIAL_SECRET,
                "token_endpoint_auth_method": "client_secret_post",
                "connections": connections,
            },
            {"client_id": "third-party", "is_first_party": False, "connections": connections},
            {
                "client_id": "no-grant",
                "grant_types": ["authorization_code"],
                "connections": connections,
            },
            {"client_id": "legacy", "oidc_conformant": False, "connections": connections},
            {
                "client_id": "org-required",
                "organization_usage": "require",
                "connections": connections,
            },
            {"client_id": "org-allowed", "organization_usage": "allow", "connections": connections},
        ],
        "organizations": [{"id": "org_acme", "name": "acme"}],
    }


AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app() -> AppFactory:
    """Build an app with flask-passkey; keyword arguments become PASSKEY_* config."""

    def factory(*, tenant: dict[str, Any] | None = None, **config: Any) -> Flask:
        config.setdefault("database_url", "memory://")  # pass database_url=... for SQL stores
        app = Flask(__name__)
        app.config.update(TESTING=True, PASSKEY_TENANT=copy.deepcopy(tenant or tenant_data()))
        app.config.update({f"PASSKEY_{key.upper()}": value for key, value in config.items()})
        Passkey(app)
        return app

    return factory


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app()


class CustomDomainClient(FlaskClient):
    """A test client whose requests go to the tenant's custom domain unless told otherwise."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("base_url", f"https://{CUSTOM_DOMAIN}")
        return super().open(*args, **kwargs)


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    app.test_client_class = CustomDomainClient
    with app.test_client() as test_client:
        yield test_client


__all__ = ["WEBAUTHN_GRANT"]


# -- helpers added for the API test modules -------------------------------------------------------

SPA_BODY: dict[str, Any] = {"client_id": "spa"}


class FakeClock:
    """A clock for ``Passkey(app, clock=...)`` that only moves when told to."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def post_challenge(
    client: FlaskClient,
    body: Any = SPA_BODY,
    *,
    host: str = CUSTOM_DOMAIN,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> Any:
    """POST /passkey/challenge with ``body`` as JSON (or ``data=`` as raw bytes) on ``host``.

    The Host goes in as a header: werkzeug's EnvironBuilder overwrites an ``HTTP_HOST`` put in
    ``environ_base`` with its own ``localhost``.
    """
    if "data" not in kwargs:
        kwargs["json"] = body
    return client.post("/passkey/challenge", headers={"Host": host, **(headers or {})}, **kwargs)


_SIGNING_KEY: list[str] = []


def shared_signing_key() -> str:
    """One RSA key for every build_app() app (generating one per app is slow)."""
    if not _SIGNING_KEY:
        _SIGNING_KEY.append(generate_rsa_pem())
    return _SIGNING_KEY[0]


def build_app(
    *,
    tenant: dict[str, Any] | None = None,
    clock: Callable[[], float] | None = None,
    host_config: dict[str, Any] | None = None,
    **config: Any,
) -> Flask:
    """Like ``make_app`` but usable outside a test (module fixtures), with a clock and host keys.

    ``host_config`` is the host app's own (non-PASSKEY) configuration, set before init_app.
    In-memory stores and one shared signing key unless ``database_url``/``signing_keys`` given.
    """
    config.setdefault("database_url", "memory://")
    config.setdefault("signing_keys", [shared_signing_key()])
    app = Flask(__name__)
    app.config.update(TESTING=True, PASSKEY_TENANT=copy.deepcopy(tenant or tenant_data()))
    app.config.update(host_config or {})
    app.config.update({f"PASSKEY_{key.upper()}": value for key, value in config.items()})
    if clock is None:
        Passkey(app)
    else:
        Passkey(app, clock=clock)
    return app


# -- ceremony helpers: sign-up, sign-in, tokens and discovery test modules ---------------------
# (test_signup, test_login, test_token_endpoint, test_tokens, test_discovery,
# test_testing_helpers). Imports are local so this block stays a pure append.

ANDROID_PACKAGE = "com.acme.app"
#: The signing-certificate fingerprint of the ``native`` client's Android app.
ANDROID_FINGERPRINT = ":".join(f"{i:02X}" for i in range(32))
#: The fingerprint of another client's Android app (``native-beta``).
BETA_ANDROID_FINGERPRINT = ":".join(f"{i:02X}" for i in range(100, 132))
#: A fingerprint no client lists.
UNLISTED_ANDROID_FINGERPRINT = ":".join(f"{255 - i:02X}" for i in range(32))
IOS_TEAM_ID = "ABCDE12345"
IOS_BUNDLE_ID = "com.acme.app"
BASIC_SECRET = "basic-s3cret-for-tests"
API_AUDIENCE = "https://api.acme.test/"
REFRESH_GRANT = "refresh_token"


def ceremony_tenant() -> dict[str, Any]:
    """tenant_data() plus native apps, refresh-token clients and a client_secret_basic client."""
    tenant = tenant_data()
    connections = [DB_CONNECTION, "partners"]
    with_refresh = [WEBAUTHN_GRANT, REFRESH_GRANT]
    tenant["clients"] += [
        {
            "client_id": "native",
            "app_type": "native",
            "connections": connections,
            "grant_types": with_refresh,
            "android_apps": [
                {"package_name": ANDROID_PACKAGE, "sha256_cert_fingerprints": [ANDROID_FINGERPRINT]}
            ],
            "ios_apps": [{"team_id": IOS_TEAM_ID, "bundle_id": IOS_BUNDLE_ID}],
        },
        {
            "client_id": "native-beta",
            "app_type": "native",
            "connections": connections,
            "android_apps": [
                {
                    "package_name": "com.acme.beta",
                    "sha256_cert_fingerprints": [BETA_ANDROID_FINGERPRINT, ANDROID_FINGERPRINT],
                }
            ],
            "ios_apps": [{"team_id": "ZYXWV98765", "bundle_id": "com.acme.beta"}],
        },
        {"client_id": "refreshing", "connections": connections, "grant_types": with_refresh},
        {"client_id": "refreshing-2", "connections": connections, "grant_types": with_refresh},
        {
            "client_id": "basic",
            "app_type": "regular_web",
            "client_secret": BASIC_SECRET,
            "token_endpoint_auth_method": "client_secret_basic",
            "connections": connections,
            "grant_types": with_refresh,
        },
    ]
    return tenant


def generate_rsa_pem() -> str:
    """A new 2048-bit RSA private key as PKCS#8 PEM text (slow: reuse it)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="session")
def signing_key_pem() -> str:
    """One token-signing key for every ceremony app, so no app pays for RSA key generation."""
    return generate_rsa_pem()


def new_ceremony_app(
    *,
    signing_key_pem: str,
    tenant: dict[str, Any] | None = None,
    clock: Callable[[], float] | None = None,
    **config: Any,
) -> Flask:
    """An app over ceremony_tenant(), in-memory stores and the shared signing key.

    ``clock=`` builds it with ``Passkey(app, clock=clock)``; other keyword arguments become
    PASSKEY_* config (``signing_keys=[]`` makes the app generate and persist its own key).
    Usable from module-scoped fixtures, unlike ``make_app``.
    """
    import time

    config.setdefault("signing_keys", [signing_key_pem])
    config.setdefault("database_url", "memory://")
    if not config["signing_keys"]:
        del config["signing_keys"]
    app = Flask(__name__)
    app.config.update(TESTING=True, PASSKEY_TENANT=copy.deepcopy(tenant or ceremony_tenant()))
    app.config.update({f"PASSKEY_{key.upper()}": value for key, value in config.items()})
    Passkey(app, clock=clock or time.time)
    return app


@pytest.fixture
def make_ceremony_app(signing_key_pem: str) -> AppFactory:
    """``new_ceremony_app`` with the session's signing key: one fresh app per call."""

    def factory(**kwargs: Any) -> Flask:
        return new_ceremony_app(signing_key_pem=signing_key_pem, **kwargs)

    return factory


@pytest.fixture
def ceremony_app(make_ceremony_app: AppFactory) -> Flask:
    return make_ceremony_app()


def passkey_flow(app: Flask, client_id: str = "spa", **kwargs: Any) -> Any:
    """A PasskeyFlow on ``app``'s custom domain with a fresh test client and authenticator."""
    from flask_passkey.testing import PasskeyFlow

    kwargs.setdefault("host", CUSTOM_DOMAIN)
    if client_id == "confidential":
        kwargs.setdefault("client_secret", CONFIDENTIAL_SECRET)
    return PasskeyFlow(app.test_client(), client_id=client_id, **kwargs)


def store_snapshot(app: Flask) -> list[tuple[Any, tuple[Any, ...]]]:
    """Every user of the app's user store with its credentials (counters, last use, backup)."""
    users = app.extensions["passkey"].users
    return [(user, tuple(users.list_credentials(user.id))) for user in users.list_users()]


def assert_oauth_error(response: Any, status: int, error: str) -> None:
    """``response`` is ``status`` with the JSON error body of the spec carrying ``error``."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert_error_body(body, status)
    assert body["error"] == error, body


#: The description of a sign-in with a passkey the server does not hold
#: (flask_passkey.core.ceremony).
UNKNOWN_CREDENTIAL = "Unknown credential."
#: RFC 7807 members the My Account endpoints add to the error body for Auth0's SDKs.
PROBLEM_DETAILS = {"type", "title", "status", "detail"}


def assert_error_body(body: Any, status: int) -> None:
    """The spec's error body with its request id, optionally with consistent RFC 7807 members
    (My Account API)."""
    assert {"error", "error_description", "request_id"} <= set(body), body
    assert all(isinstance(body[k], str) for k in ("error", "error_description", "request_id"))
    extra = set(body) - {"error", "error_description", "request_id"}
    if body["error_description"] == UNKNOWN_CREDENTIAL:  # the token endpoint's one extra member
        assert extra == {"unknown_credential_id"} and body["unknown_credential_id"], body
        return
    assert extra in (set(), PROBLEM_DETAILS), body
    if extra:
        assert body["status"] == status and body["detail"] == body["error_description"], body


def stable_error(response: Any) -> dict[str, Any]:
    """The response's error body without its ``request_id`` (new on every request)."""
    return {k: v for k, v in response.get_json().items() if k != "request_id"}


def verify_jwt(
    client: FlaskClient,
    token: str,
    *,
    audience: str,
    host: str = CUSTOM_DOMAIN,
) -> dict[str, Any]:
    """Check ``token`` with PyJWT against GET /.well-known/jwks.json of ``host``.

    Verifies the RS256 signature with the published key named by the token's ``kid``, ``iss``
    (``https://<host>/``), ``aud``, ``exp`` and ``iat``; returns the claims.
    """
    import jwt

    response = client.get("/.well-known/jwks.json", headers={"Host": host})
    assert response.status_code == 200, response.get_data(as_text=True)
    keys = {key.key_id: key for key in jwt.PyJWKSet.from_dict(response.get_json()).keys}
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["kid"] in keys, f"kid {header['kid']!r} is not in the JWKS"
    claims: dict[str, Any] = jwt.decode(
        token,
        keys[header["kid"]].key,
        algorithms=["RS256"],
        audience=audience,
        issuer=f"https://{host}/",
        options={"require": ["iss", "sub", "aud", "iat", "exp"]},
    )
    return claims


def new_email() -> str:
    """An email no other test uses, for tests sharing one app (and so one user store)."""
    import uuid

    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def find_user(app: Flask, email: str, connection: str = DB_CONNECTION) -> Any:
    """The stored user with ``email`` (lower-cased) in ``connection``, or None."""
    return app.extensions["passkey"].users.find_user(
        connection=connection, kind="email", value=email.lower()
    )


# -- database backends (SQL store tests) ----------------------------------------------------------

POSTGRES_URL = os.environ.get(
    "PASSKEY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def backend_missing(reason: str) -> NoReturn:
    """Skip a test whose backend server cannot be reached; fail it instead when CI is set."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI is set, so backend tests must run)", pytrace=False)
    pytest.skip(reason)


class PostgresSchemas:
    """Throwaway schemas on the test server; each URL of :meth:`new_url` is an empty database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.names: list[str] = []

    def new_url(self, **query: str) -> URL:
        """The server URL with ``search_path`` set to a new schema (and ``query`` added)."""
        name = f"passkey_test_{secrets.token_hex(6)}"
        with self.engine.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        self.names.append(name)
        return self.engine.url.update_query_dict({"options": f"-csearch_path={name}", **query})

    def drop_all(self) -> None:
        with self.engine.begin() as connection:
            for name in self.names:
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


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


def url_text(url: URL) -> str:
    """``url`` as PASSKEY_DATABASE_URL takes it (``str(url)`` masks a password)."""
    return url.render_as_string(hide_password=False)


# -- case counts of the generated tests (schemathesis, hypothesis), printed in the summary ------
# Kept in the pytest config (not a module global), so the count survives however this conftest
# gets imported; the summary is written whether or not output is captured (-s or not).


class CaseCounts:
    """How many generated cases each suite ran, per label, with their outcomes."""

    def __init__(self) -> None:
        self.suites: dict[str, dict[str, dict[str, int]]] = {}

    def add(self, suite: str, label: str, outcome: object) -> None:
        outcomes = self.suites.setdefault(suite, {}).setdefault(label, {})
        outcomes[str(outcome)] = outcomes.get(str(outcome), 0) + 1

    def total(self, suite: str) -> int:
        return sum(sum(o.values()) for o in self.suites.get(suite, {}).values())


_CASE_COUNTS = pytest.StashKey[CaseCounts]()


@pytest.fixture(scope="session")
def case_counts(pytestconfig: pytest.Config) -> CaseCounts:
    """Where generated tests count their cases (see pytest_terminal_summary)."""
    return pytestconfig.stash.setdefault(_CASE_COUNTS, CaseCounts())


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    counts = config.stash.get(_CASE_COUNTS, None)
    if counts is None or not counts.suites:
        return
    terminalreporter.section("generated test cases")
    for suite, labels in counts.suites.items():
        terminalreporter.write_line(f"{suite}: {counts.total(suite)} cases")
        for label, outcomes in sorted(labels.items()):
            detail = ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items()))
            terminalreporter.write_line(f"  {sum(outcomes.values()):6d}  {label}  ({detail})")
