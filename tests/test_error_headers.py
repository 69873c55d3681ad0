"""Errors carry their own response headers: the built-in ones (``Allow``, ``Retry-After``,
``WWW-Authenticate``) and those of a plugin's own error class."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from flask import Flask

import flask_passkey
from flask_passkey import PasskeyError
from tests.apps import HOST, make_app, tenant_data
from tests.support import assert_oauth_error, post_challenge


class Maintenance(PasskeyError):
    """A plugin's own error with a header of its own."""

    error = "temporarily_unavailable"
    status = 503
    default_description = "Down for maintenance."

    def headers(self, *, authorization_header: bool = False) -> dict[str, str]:
        return {"Retry-After": "120"}


class DownForMaintenance:
    @flask_passkey.hookimpl
    def passkey_check_first_party(self, context: Any) -> None:
        raise Maintenance()


def basic(client_id: str, secret: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


@pytest.fixture(scope="module")
def app() -> Flask:
    tenant = tenant_data()
    tenant["clients"].append(
        {
            "client_id": "basic-client",
            "app_type": "regular_web",
            "client_secret": "right-secret",
            "token_endpoint_auth_method": "client_secret_basic",
        }
    )
    return make_app(tenant=tenant, rate_limit_enabled=False)


def test_a_client_failing_http_basic_gets_a_basic_challenge(app: Flask) -> None:
    response = post_challenge(app.test_client(), {}, headers=basic("basic-client", "wrong-secret"))

    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["WWW-Authenticate"] == 'Basic realm="passkey"'
    assert response.headers["Cache-Control"] == "no-store"


def test_a_client_failing_without_http_authentication_gets_no_challenge(app: Flask) -> None:
    response = post_challenge(app.test_client(), {"client_id": "nobody"})

    assert_oauth_error(response, 401, "invalid_client")
    assert "WWW-Authenticate" not in response.headers


def test_a_method_not_allowed_names_the_allowed_ones(app: Flask) -> None:
    response = app.test_client().get("/oauth/token", headers=HOST)

    assert_oauth_error(response, 405, "invalid_request")
    assert response.headers["Allow"] == "POST"


def test_a_plugin_error_sends_its_own_headers() -> None:
    client = make_app(rate_limit_enabled=False, plugins=[DownForMaintenance()]).test_client()

    response = post_challenge(client)

    assert_oauth_error(response, 503, "temporarily_unavailable")
    assert response.headers["Retry-After"] == "120"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_json()["error_description"] == "Down for maintenance."
