"""WebAuthn Related Origin Requests (Level 3 §5.11): the tenant's ``related_origins`` are listed
in ``/.well-known/webauthn`` and accepted in ceremonies; other origins still are not."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_passkey.errors import TenantConfigurationError
from tests.apps import CUSTOM_DOMAIN, DB_CONNECTION, make_app, tenant_data
from tests.support import assert_oauth_error, new_email, passkey_flow

RP_ID = "acme.test"
SHOP = "https://shop.example.test"
OUTLET = "https://outlet.example.org:8443"


def related_tenant(*origins: str) -> dict[str, Any]:
    """tenant_data() with the RP ID ``acme.test`` served on its own host too."""
    tenant = tenant_data()
    tenant["rp_id"] = RP_ID
    tenant["custom_domains"] = [CUSTOM_DOMAIN, RP_ID]
    tenant["related_origins"] = list(origins)
    return tenant


@pytest.fixture
def related_app() -> Flask:
    return make_app(tenant=related_tenant(SHOP, OUTLET))


@pytest.mark.parametrize("host", [RP_ID, CUSTOM_DOMAIN])
def test_the_well_known_file_lists_the_related_origins_as_json(
    related_app: Flask, host: str
) -> None:
    response = related_app.test_client().get("/.well-known/webauthn", headers={"Host": host})

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"origins": [SHOP, OUTLET]}
    assert "public" in response.headers["Cache-Control"]


def test_other_methods_get_a_json_405(related_app: Flask) -> None:
    response = related_app.test_client().post("/.well-known/webauthn", headers={"Host": RP_ID})
    assert_oauth_error(response, 405, "invalid_request")
    assert {m.strip() for m in response.headers["Allow"].split(",")} == {"GET", "HEAD"}


def test_without_related_origins_the_list_is_empty() -> None:
    app = make_app()
    response = app.test_client().get("/.well-known/webauthn", headers={"Host": CUSTOM_DOMAIN})
    assert response.get_json() == {"origins": []}


def test_the_well_known_file_is_not_served_on_unknown_hosts(related_app: Flask) -> None:
    response = related_app.test_client().get(
        "/.well-known/webauthn", headers={"Host": "evil.example"}
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_a_page_on_a_related_origin_signs_up_and_in_with_the_rp_id(related_app: Flask) -> None:
    flow = passkey_flow(related_app, origin=SHOP)

    tokens = flow.sign_up({"email": new_email()})
    again = flow.sign_in()

    assert tokens["access_token"] and again["access_token"]
    [credential] = flow.authenticator.credentials
    assert credential.rp_id == RP_ID


def test_an_origin_not_listed_is_refused_and_nothing_is_stored(related_app: Flask) -> None:
    flow = passkey_flow(related_app, origin="https://shop.example.net")
    email = new_email()
    started = flow.register({"email": email}).get_json()
    attestation = flow.authenticator.create(started["authn_params_public_key"], origin=flow.origin)

    response = flow.token(started["auth_session"], attestation)

    assert_oauth_error(response, 400, "invalid_grant")
    users = related_app.extensions["passkey"].users
    assert users.find_user(connection=DB_CONNECTION, kind="email", value=email) is None


@pytest.mark.parametrize(
    "origin", ["http://shop.example.test", "https://shop.example.test/", "shop.example.test"]
)
def test_related_origins_must_be_https_origins_without_a_path(origin: str) -> None:
    with pytest.raises(TenantConfigurationError, match=r"related_origins\[0\]"):
        make_app(tenant=related_tenant(origin))
