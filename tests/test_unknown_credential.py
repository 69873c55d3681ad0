"""The token endpoint tells a page that a passkey is unknown (so it can call
``PublicKeyCredential.signalUnknownCredential``), but only to a caller whose ``auth_session``
was valid: ``error_description`` "Unknown credential." and ``unknown_credential_id``."""

from __future__ import annotations

from typing import Any

from flask import Flask

from flask_passkey.core.ceremony import UNKNOWN_CREDENTIAL
from tests.apps import DB_CONNECTION
from tests.support import assert_oauth_error, new_email, passkey_flow


def signed_up(app: Flask, **profile: Any) -> Any:
    flow = passkey_flow(app)
    flow.sign_up(profile or {"email": new_email()})
    return flow


def deleted_passkey_assertion(app: Flask) -> tuple[Any, str, dict[str, Any]]:
    """A user's flow, a fresh auth_session and an assertion of a passkey deleted since."""
    flow = signed_up(app)
    [credential] = flow.authenticator.credentials
    users = app.extensions["passkey"].users
    owner = users.get_credential(credential.credential_id).user_id
    assert users.delete_credential(user_id=owner, credential_id=credential.credential_id)
    started = flow.challenge().get_json()
    assertion = flow.authenticator.get(started["authn_params_public_key"], origin=flow.origin)
    return flow, started["auth_session"], assertion


def test_a_deleted_passkey_is_reported_unknown_with_its_id(app: Flask) -> None:
    flow, auth_session, assertion = deleted_passkey_assertion(app)

    response = flow.token(auth_session, assertion)

    assert_oauth_error(response, 400, "invalid_grant")
    body = response.get_json()
    assert body["error_description"] == UNKNOWN_CREDENTIAL
    assert body["unknown_credential_id"] == assertion["id"]


def test_without_a_valid_auth_session_nothing_is_said_about_the_passkey(
    app: Flask,
) -> None:
    flow, auth_session, assertion = deleted_passkey_assertion(app)
    assert flow.token(auth_session, assertion).status_code == 400  # the session is used up

    for session in (auth_session, "made-up-session"):
        body = flow.token(session, assertion).get_json()
        assert body["error"] == "invalid_grant"
        assert body["error_description"] != UNKNOWN_CREDENTIAL
        assert "unknown_credential_id" not in body


def test_a_passkey_of_another_connection_is_not_reported_unknown(app: Flask) -> None:
    partner = passkey_flow(app)
    partner.sign_up({"username": "partner-" + new_email().split("@")[0]}, realm="partners")
    started = partner.challenge(realm=DB_CONNECTION).get_json()
    assertion = partner.authenticator.get(started["authn_params_public_key"], origin=partner.origin)

    response = partner.token(started["auth_session"], assertion)

    assert_oauth_error(response, 400, "invalid_grant")
    assert "unknown_credential_id" not in response.get_json()
