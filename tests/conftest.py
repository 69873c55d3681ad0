"""Shared fixtures: a tenant, an app factory, and a test client on the custom domain."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

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
            {"client_id": "spa", "connections": [*connections, "no-passkeys"], "web_origins": [WEB_ORIGIN]},
            {
                "client_id": "confidential",
                "app_type": "regular_web",
                "client_secret": CONFIDENTIAL_SECRET,
                "token_endpoint_auth_method": "client_secret_post",
                "connections": connections,
            },
            {"client_id": "third-party", "is_first_party": False, "connections": connections},
            {"client_id": "no-grant", "grant_types": ["authorization_code"], "connections": connections},
            {"client_id": "legacy", "oidc_conformant": False, "connections": connections},
            {"client_id": "org-required", "organization_usage": "require", "connections": connections},
            {"client_id": "org-allowed", "organization_usage": "allow", "connections": connections},
        ],
        "organizations": [{"id": "org_acme", "name": "acme"}],
    }


AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app() -> AppFactory:
    """Build an app with flask-passkey; keyword arguments become PASSKEY_* config."""

    def factory(*, tenant: dict[str, Any] | None = None, **config: Any) -> Flask:
        app = Flask(__name__)
        app.config.update(TESTING=True, PASSKEY_TENANT=copy.deepcopy(tenant or tenant_data()))
        app.config.update({f"PASSKEY_{key.upper()}": value for key, value in config.items()})
        Passkey(app)
        return app

    return factory


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as test_client:
        test_client.environ_base["HTTP_HOST"] = CUSTOM_DOMAIN
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
    return client.post(
        "/passkey/challenge", headers={"Host": host, **(headers or {})}, **kwargs
    )
