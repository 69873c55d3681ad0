"""Cross-origin iframes: a ceremony run in an iframe (clientData ``crossOrigin: true``) counts
only when the client lists the page around it (``topOrigin``) in ``allowed_top_origins``."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_passkey.testing import PasskeyFlow, SoftAuthenticator
from tests.apps import WEB_ORIGIN, make_app, tenant_data
from tests.support import assert_oauth_error, new_email, passkey_flow, store_snapshot

PORTAL = "https://portal.partner.test"


@pytest.fixture(scope="module")
def app() -> Flask:
    tenant = tenant_data()
    tenant["clients"].append(
        {
            "client_id": "embedded",
            "connections": tenant["clients"][0]["connections"],
            "web_origins": [WEB_ORIGIN],
            "allowed_top_origins": [PORTAL],
        }
    )
    return make_app(tenant=tenant, rate_limit_enabled=False)


def sign_up(flow: PasskeyFlow, **create: Any) -> Any:
    started = flow.register({"email": new_email()}).get_json()
    credential = flow.authenticator.create(
        started["authn_params_public_key"], origin=WEB_ORIGIN, **create
    )
    return flow.token(started["auth_session"], credential)


def sign_in(flow: PasskeyFlow, **get: Any) -> Any:
    started = flow.challenge().get_json()
    assertion = flow.authenticator.get(started["authn_params_public_key"], origin=WEB_ORIGIN, **get)
    return flow.token(started["auth_session"], assertion)


@pytest.mark.parametrize("top_origin", ["https://evil.test", WEB_ORIGIN, PORTAL])
def test_a_cross_origin_sign_up_is_refused_for_a_client_without_allowed_top_origins(
    app: Flask, top_origin: str
) -> None:
    before = store_snapshot(app)

    response = sign_up(passkey_flow(app, "spa"), top_origin=top_origin)

    assert_oauth_error(response, 400, "invalid_grant")
    assert store_snapshot(app) == before


def test_a_cross_origin_sign_in_is_refused_for_a_client_without_allowed_top_origins(
    app: Flask,
) -> None:
    flow = passkey_flow(app, "spa", authenticator=SoftAuthenticator(counter="increment"))
    assert sign_up(flow).status_code == 200
    before = store_snapshot(app)

    response = sign_in(flow, top_origin="https://evil.test")

    assert_oauth_error(response, 400, "invalid_grant")
    assert store_snapshot(app) == before
    assert sign_in(flow).status_code == 200  # the same passkey, not in an iframe


def test_a_listed_top_origin_signs_up_and_in(app: Flask) -> None:
    flow = passkey_flow(app, "embedded")

    assert sign_up(flow, top_origin=PORTAL).status_code == 200
    assert sign_in(flow, top_origin=PORTAL).status_code == 200
    assert sign_in(flow).status_code == 200


@pytest.mark.parametrize("top_origin", ["https://evil.test", f"{PORTAL}:8443", "null"])
def test_an_unlisted_top_origin_is_refused_even_for_a_client_that_lists_some(
    app: Flask, top_origin: str
) -> None:
    flow = passkey_flow(app, "embedded")
    assert sign_up(flow).status_code == 200
    before = store_snapshot(app)

    assert_oauth_error(sign_in(flow, top_origin=top_origin), 400, "invalid_grant")
    assert_oauth_error(sign_up(flow, top_origin=top_origin), 400, "invalid_grant")
    assert store_snapshot(app) == before
