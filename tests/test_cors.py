"""CORS (flask_passkey.web.cors): what a browser on another origin may read.

Preflights are answered for an origin any client allows; an actual request's answer carries
``Access-Control-Allow-Origin`` only when the client it names allows the origin.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.engine import URL

from flask_passkey.core.audiences import MY_ACCOUNT_SCOPES
from flask_passkey.models import Client
from flask_passkey.stores.sql import SqlStore
from flask_passkey.testing import PasskeyFlow
from tests.apps import BASIC_SECRET, CUSTOM_DOMAIN, HOST, WEB_ORIGIN, make_app, tenant_data
from tests.databases import url_text
from tests.support import new_email

#: An origin only the ``cors`` client allows (its allowed_origins, not its web origins).
CORS_ORIGIN = "https://widgets.acme.test"
#: An origin no client allows.
STRANGER = "https://evil.example"


def cors_tenant() -> dict[str, Any]:
    tenant = tenant_data()
    for client in tenant["clients"]:
        if client["client_id"] == "basic":
            client["allowed_origins"] = [CORS_ORIGIN]
    tenant["clients"].append(
        {
            "client_id": "cors",
            "connections": ["Username-Password-Authentication"],
            "web_origins": [WEB_ORIGIN],  # its passkeys; but only CORS_ORIGIN may read answers
            "allowed_origins": ["https://Widgets.ACME.test"],  # host names have no case
            "grant_types": ["urn:okta:params:oauth:grant-type:webauthn", "refresh_token"],
        }
    )
    return tenant


@pytest.fixture(scope="module")
def app() -> Flask:
    return make_app(tenant=cors_tenant())


def preflight(app: Flask, path: str, origin: str, method: str = "POST") -> Any:
    return app.test_client().options(
        path,
        headers={
            **HOST,
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type,auth0-client",
        },
    )


def post(app: Flask, path: str, origin: str, **kwargs: Any) -> Any:
    headers = {**HOST, "Origin": origin, **kwargs.pop("headers", {})}
    return app.test_client().post(path, headers=headers, **kwargs)


@pytest.mark.parametrize("path", ["/passkey/challenge", "/passkey/register", "/oauth/token"])
def test_a_preflight_of_an_allowed_origin_is_answered(app: Flask, path: str) -> None:
    response = preflight(app, path, WEB_ORIGIN)

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == WEB_ORIGIN
    assert response.headers["Access-Control-Allow-Methods"] == "POST"
    allowed = {
        h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert {"content-type", "authorization", "dpop", "auth0-client"} <= allowed
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Origin" in response.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_a_preflight_of_an_origin_no_client_allows_gets_no_cors_headers(app: Flask) -> None:
    response = preflight(app, "/passkey/challenge", STRANGER)

    assert response.status_code < 500
    assert not [name for name, _ in response.headers.items() if name.startswith("Access-Control-")]


def test_the_actual_request_is_decided_by_the_client_it_names(app: Flask) -> None:
    # Both preflights pass (some client allows each origin) ...
    assert preflight(app, "/passkey/challenge", CORS_ORIGIN).status_code == 204
    # ... but the answer goes only to the origins of the client the body names.
    mine = post(app, "/passkey/challenge", CORS_ORIGIN, json={"client_id": "cors"})
    assert mine.status_code == 200
    assert mine.headers["Access-Control-Allow-Origin"] == CORS_ORIGIN
    assert "WWW-Authenticate" in mine.headers["Access-Control-Expose-Headers"]
    assert "Origin" in mine.headers["Vary"]

    others = post(app, "/passkey/challenge", CORS_ORIGIN, json={"client_id": "spa"})
    assert others.status_code == 200  # the server answers; the browser withholds it
    assert "Access-Control-Allow-Origin" not in others.headers


def test_allowed_origins_replace_the_web_origins(app: Flask) -> None:
    response = post(app, "/passkey/challenge", WEB_ORIGIN, json={"client_id": "cors"})

    assert "Access-Control-Allow-Origin" not in response.headers


def test_web_origins_are_the_default(app: Flask) -> None:
    response = post(app, "/passkey/challenge", WEB_ORIGIN, json={"client_id": "spa"})

    assert response.headers["Access-Control-Allow-Origin"] == WEB_ORIGIN


def test_an_error_answer_is_readable_by_the_clients_origin(app: Flask) -> None:
    # Form body, the client named by HTTP Basic: the page can read why it failed.
    basic = base64.b64encode(f"basic:{BASIC_SECRET}".encode()).decode()
    response = post(
        app,
        "/oauth/token",
        CORS_ORIGIN,
        data={"grant_type": "refresh_token", "refresh_token": "not-a-token"},
        headers={"Authorization": f"Basic {basic}"},
    )

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"
    assert response.headers["Access-Control-Allow-Origin"] == CORS_ORIGIN


def test_a_form_body_names_its_client(app: Flask) -> None:
    response = post(app, "/oauth/revoke", CORS_ORIGIN, data={"client_id": "cors", "token": "x"})

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == CORS_ORIGIN


def test_an_unreadable_body_gets_no_cors_headers_and_no_server_error(app: Flask) -> None:
    response = post(app, "/oauth/token", CORS_ORIGIN, data=b"{", content_type="application/json")

    assert response.status_code == 400
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("path", ["/me/v1/authentication-methods", "/userinfo"])
def test_a_token_too_deeply_nested_to_read_gets_a_401_not_a_server_error(
    app: Flask, path: str
) -> None:
    def part(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()

    header = part('{"alg":"RS256"}')
    nested = f"{header}.{part('[' * 5000)}.c2ln"
    headers = {**HOST, "Origin": CORS_ORIGIN, "Authorization": f"Bearer {nested}"}

    response = app.test_client().get(path, headers=headers)

    assert response.status_code == 401, response.get_data(as_text=True)[:300]
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.fixture(scope="module")
def my_account_token(app: Flask) -> str:
    """An access token of the ``cors`` client for the My Account API (and /userinfo)."""
    flow = PasskeyFlow(app.test_client(), client_id="cors", host=CUSTOM_DOMAIN)
    tokens = flow.sign_up(
        {"email": new_email()},
        scope=" ".join(("openid", *MY_ACCOUNT_SCOPES)),
        audience=f"https://{CUSTOM_DOMAIN}/me/",
    )
    return str(tokens["access_token"])


@pytest.mark.parametrize("path", ["/me/v1/authentication-methods", "/userinfo"])
def test_protected_resources_answer_the_origin_of_the_tokens_client(
    app: Flask, my_account_token: str, path: str
) -> None:
    headers = {**HOST, "Authorization": f"Bearer {my_account_token}"}
    client = app.test_client()

    assert preflight(app, path, CORS_ORIGIN, "GET").status_code == 204
    allowed = client.get(path, headers={**headers, "Origin": CORS_ORIGIN})
    refused = client.get(path, headers={**headers, "Origin": WEB_ORIGIN})

    assert allowed.headers["Access-Control-Allow-Origin"] == CORS_ORIGIN
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_my_account_preflight_names_its_methods(app: Flask) -> None:
    response = preflight(app, "/me/v1/authentication-methods/x", CORS_ORIGIN, "DELETE")

    assert response.status_code == 204
    assert "DELETE" in response.headers["Access-Control-Allow-Methods"]
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"]


@pytest.mark.parametrize("path", ["/.well-known/jwks.json", "/.well-known/openid-configuration"])
def test_discovery_and_keys_are_readable_from_any_origin(app: Flask, path: str) -> None:
    response = app.test_client().get(path, headers={**HOST, "Origin": STRANGER})

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert preflight(app, path, STRANGER, "GET").headers["Access-Control-Allow-Origin"] == "*"


def test_preflights_cost_nothing_of_the_rate_limit() -> None:
    limited = make_app(tenant=cors_tenant(), rate_limit="2 per minute")
    for _ in range(3):
        assert preflight(limited, "/passkey/challenge", WEB_ORIGIN).status_code == 204
    assert (
        post(limited, "/passkey/challenge", WEB_ORIGIN, json={"client_id": "spa"}).status_code
        == 200
    )


# -- clients kept in SQL ---------------------------------------------------------------------


@pytest.fixture
def sql_app(database_url: URL) -> Iterator[Flask]:
    tenant = cors_tenant()
    tenant["clients"] = [c for c in tenant["clients"] if c["client_id"] == "spa"]
    app = make_app(tenant=tenant, database_url=url_text(database_url))
    yield app
    store: SqlStore = app.extensions["passkey"].users
    store.close()


def test_stored_clients_allowed_origins(sql_app: Flask) -> None:
    store: SqlStore = sql_app.extensions["passkey"].users
    connections = ("Username-Password-Authentication",)
    store.add_client(Client("by-web", connections=connections, web_origins=(STRANGER,)))
    store.add_client(Client("by-cors", connections=connections, allowed_origins=(CORS_ORIGIN,)))
    by_id = {client.client_id: client for client in store.list_clients()}
    assert by_id["by-web"].allowed_origins is None
    assert by_id["by-cors"].allowed_origins == (CORS_ORIGIN,)

    for client_id, origin in (("by-web", STRANGER), ("by-cors", CORS_ORIGIN)):
        assert preflight(sql_app, "/passkey/challenge", origin).status_code == 204
        answer = post(sql_app, "/passkey/challenge", origin, json={"client_id": client_id})
        assert answer.headers["Access-Control-Allow-Origin"] == origin
