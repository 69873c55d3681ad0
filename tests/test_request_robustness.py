"""Requests that once got past validation and broke halfway: lone surrogates, a failing audit
plugin, and a session redeemed on another custom domain."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask

from flask_passkey import hookimpl
from flask_passkey.models import WEBAUTHN_GRANT
from tests.apps import CONFIDENTIAL_SECRET, CUSTOM_DOMAIN, make_app, tenant_data
from tests.support import assert_oauth_error, new_email, passkey_flow, refresh, store_snapshot

SURROGATE = "\\ud800"  # JSON text for a lone surrogate


def raw_post(app: Flask, path: str, text: str, host: str = CUSTOM_DOMAIN) -> Any:
    return app.test_client().post(
        path, data=text, headers={"Host": host, "Content-Type": "application/json"}
    )


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/passkey/register",
            '{"client_id": "spa", "user_profile": {"email": "a@b.test", "name": "x%s"}}',
        ),
        ("/passkey/challenge", '{"client_id": "spa", "realm": "%s"}'),
        (
            "/passkey/challenge",
            '{"client_id": "confidential", "client_secret": "%s"}',
        ),
        (
            "/oauth/token",
            '{"grant_type": "refresh_token", "client_id": "refreshing", "refresh_token": "%s"}',
        ),
        (
            "/oauth/token",
            '{"grant_type": "' + WEBAUTHN_GRANT + '", "client_id": "spa",'
            ' "auth_session": "%s", "authn_response": {}}',
        ),
    ],
)
def test_lone_surrogates_are_refused_at_the_door(app: Flask, path: str, body: str) -> None:
    before = store_snapshot(app)

    response = raw_post(app, path, body % SURROGATE)

    assert_oauth_error(response, 400, "invalid_request")
    assert store_snapshot(app) == before


def test_a_form_encoded_credential_with_a_lone_surrogate_is_refused(app: Flask) -> None:
    response = app.test_client().post(
        "/oauth/token",
        data={
            "grant_type": WEBAUTHN_GRANT,
            "client_id": "spa",
            "auth_session": "x",
            "authn_response": '{"id": "' + SURROGATE + '"}',
        },
        headers={"Host": CUSTOM_DOMAIN},
    )

    assert_oauth_error(response, 400, "invalid_request")


def test_ordinary_unicode_escapes_are_still_welcome(app: Flask) -> None:
    body = json.dumps(
        {"client_id": "spa", "user_profile": {"email": new_email(), "name": "Zoë 😀"}}
    )
    assert "\\u" in body

    assert raw_post(app, "/passkey/register", body).status_code == 200


class ExplodingAudit:
    @hookimpl
    def passkey_event(self, event: Any) -> None:
        raise RuntimeError("the audit database is down")


def test_a_failing_event_plugin_does_not_undo_a_finished_sign_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app(plugins=[ExplodingAudit()])

    tokens = passkey_flow(app).sign_up({"email": new_email()})

    assert tokens["id_token"]
    assert "passkey_event plugin raised" in caplog.text


def test_a_session_cannot_be_redeemed_on_another_custom_domain() -> None:
    tenant = tenant_data()
    tenant["custom_domains"].append("login.other.test")
    app = make_app(tenant=tenant)
    flow = passkey_flow(app)
    flow.sign_up({"email": new_email()})
    started = flow.challenge().get_json()
    assertion = flow.authenticator.get(
        started["authn_params_public_key"], origin=f"https://{CUSTOM_DOMAIN}"
    )

    elsewhere = passkey_flow(app, host="login.other.test", origin=f"https://{CUSTOM_DOMAIN}")
    response = elsewhere.token(started["auth_session"], assertion)

    assert_oauth_error(response, 400, "invalid_grant")


def test_basic_authentication_needs_no_client_id_in_the_challenge_body(
    app: Flask,
) -> None:
    response = app.test_client().post(
        "/passkey/challenge",
        json={},
        headers={"Host": CUSTOM_DOMAIN},
        auth=("confidential", CONFIDENTIAL_SECRET),
    )

    assert response.status_code == 200, response.get_json()


def test_an_unknown_realm_at_the_token_endpoint_is_refused_before_the_session_is_spent(
    app: Flask,
) -> None:
    flow = passkey_flow(app)
    flow.sign_up({"email": new_email()})
    started = flow.challenge().get_json()
    assertion = flow.authenticator.get(
        started["authn_params_public_key"], origin=f"https://{CUSTOM_DOMAIN}"
    )

    refused = flow.token(started["auth_session"], assertion, realm="nope")
    accepted = flow.token(started["auth_session"], assertion)

    assert_oauth_error(refused, 400, "invalid_request")
    assert accepted.status_code == 200, accepted.get_json()


def test_a_client_made_third_party_can_no_longer_refresh() -> None:
    app = make_app()
    tokens = passkey_flow(app, "refreshing").sign_up(
        {"email": new_email()}, scope="openid offline_access"
    )
    demoted = tenant_data()
    next(c for c in demoted["clients"] if c["client_id"] == "refreshing")["is_first_party"] = False
    app.extensions["passkey"].plugin_manager.get_plugin("tenant_config").__init__(demoted)

    response = refresh(app.test_client(), tokens["refresh_token"])

    assert_oauth_error(response, 400, "unauthorized_client")


def test_deleting_the_passkey_ends_the_refresh_tokens_it_signed_in(app: Flask) -> None:
    flow = passkey_flow(app, "refreshing")
    tokens = flow.sign_up({"email": new_email()}, scope="openid offline_access")
    users = app.extensions["passkey"].users
    sub = users.list_users()[-1].id
    (credential,) = users.list_credentials(sub)
    assert users.delete_credential(user_id=sub, credential_id=credential.id)

    response = refresh(app.test_client(), tokens["refresh_token"])

    assert_oauth_error(response, 400, "invalid_grant")


@pytest.mark.parametrize("path", ["/passkey/challenge", "/oauth/token"])
@pytest.mark.parametrize("authorization", ["Basic \x80", "Basic \x80\x81=="])
def test_basic_credentials_werkzeug_cannot_decode_get_a_json_400(
    path: str, authorization: str
) -> None:
    app = make_app()
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a crash would be a 500 here, not a raise
    response = app.test_client().post(
        path,
        json={"client_id": "spa", "grant_type": WEBAUTHN_GRANT},
        headers={"Host": CUSTOM_DOMAIN, "Authorization": authorization},
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
