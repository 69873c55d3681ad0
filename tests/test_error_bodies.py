"""What an error body tells a caller: a short, stable description and a request id; the details
(expected origins, py_webauthn's words, which check failed) go to the log under that id."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from flask_passkey.testing import PasskeyFlow, SoftAuthenticator
from tests.apps import CUSTOM_DOMAIN, ORIGIN, make_app
from tests.support import assert_oauth_error, new_email, passkey_flow

#: What a caller without a valid auth_session must never read in a description.
LEAKS = ("android:apk-key-hash", "https://", "expected", "__cause__", "ClientDataType", "Unknown")


@pytest.fixture(scope="module")
def app() -> Flask:
    return make_app(rate_limit_enabled=False)


@pytest.fixture(scope="module")
def ann(app: Flask) -> SoftAuthenticator:
    """A signed-up user's authenticator, on the ``native`` client (it has an Android app)."""
    authenticator = SoftAuthenticator()
    passkey_flow(app, "native", authenticator=authenticator).sign_up({"email": new_email()})
    return authenticator


def login(flow: PasskeyFlow, **overrides: Any) -> tuple[str, dict[str, Any]]:
    started = flow.challenge().get_json()
    assertion = flow.authenticator.get(
        started["authn_params_public_key"], origin=overrides.pop("origin", ORIGIN), **overrides
    )
    return started["auth_session"], assertion


def flip_signature(assertion: dict[str, Any]) -> dict[str, Any]:
    signature = bytearray(base64url_to_bytes(assertion["response"]["signature"]))
    signature[-1] ^= 0x01
    response = {**assertion["response"], "signature": bytes_to_base64url(bytes(signature))}
    return {**assertion, "response": response}


def unknown_credential(assertion: dict[str, Any]) -> dict[str, Any]:
    other = bytes_to_base64url(b"\x07" * 32)
    return {**assertion, "id": other, "rawId": other}


REFUSALS = {
    "wrong origin": lambda a: a,
    "wrong type": lambda a: a,
    "bad signature": flip_signature,
}
OVERRIDES: dict[str, dict[str, Any]] = {
    "wrong origin": {"origin": "https://evil.test"},
    "wrong type": {"client_data_type": "webauthn.create"},
}


@pytest.mark.parametrize("refusal", REFUSALS)
def test_a_refused_assertion_gets_one_short_description_and_a_request_id(
    app: Flask, ann: SoftAuthenticator, refusal: str, caplog: pytest.LogCaptureFixture
) -> None:
    flow = passkey_flow(app, "native", authenticator=ann)
    auth_session, assertion = login(flow, **OVERRIDES.get(refusal, {}))

    with caplog.at_level(logging.INFO, logger="flask_passkey"):
        response = flow.token(auth_session, REFUSALS[refusal](assertion))

    assert_oauth_error(response, 400, "invalid_grant")
    body = response.get_json()
    assert body["error_description"] == "The passkey could not be verified."
    assert not [leak for leak in LEAKS if leak in body["error_description"]]
    # The details are in the log, under the request id the caller was given.
    logged = [r.getMessage() for r in caplog.records if body["request_id"] in r.getMessage()]
    assert logged, [r.getMessage() for r in caplog.records]


def test_an_unknown_credential_is_named_only_to_the_holder_of_a_valid_auth_session(
    app: Flask, ann: SoftAuthenticator
) -> None:
    flow = passkey_flow(app, "native", authenticator=ann)
    auth_session, assertion = login(flow)
    forged = unknown_credential(assertion)

    unknown = flow.token(auth_session, forged)
    without_session = flow.token("no-such-auth-session", forged)

    # A client needs this to tell its user and to call signalUnknownCredential.
    assert_oauth_error(unknown, 400, "invalid_grant")
    assert unknown.get_json()["error_description"] == "Unknown credential."
    assert_oauth_error(without_session, 400, "invalid_grant")
    assert "credential" not in without_session.get_json()["error_description"].lower()


def test_the_log_tells_the_operator_which_origin_was_refused(
    app: Flask, ann: SoftAuthenticator, caplog: pytest.LogCaptureFixture
) -> None:
    flow = passkey_flow(app, "native", authenticator=ann)
    auth_session, assertion = login(flow, origin="https://evil.test")

    with caplog.at_level(logging.INFO, logger="flask_passkey"):
        body = flow.token(auth_session, assertion).get_json()

    details = " ".join(r.getMessage() for r in caplog.records)
    assert "https://evil.test" in details and body["request_id"] in details


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        ("req-42.a_b:c", True),
        ("4bf92f3577b34da6a3ce929d0e0e4736", True),
        ("", False),
        ("a b", False),
        ("x\tforged", False),
        ("é", False),
        ("a" * 201, False),
    ],
)
def test_a_sane_x_request_id_is_kept_and_anything_else_replaced(
    app: Flask, sent: str, echoed: bool
) -> None:
    response = app.test_client().post(
        "/passkey/challenge",
        json={"client_id": "nobody"},
        headers={"Host": CUSTOM_DOMAIN, "X-Request-Id": sent},
    )

    assert_oauth_error(response, 401, "invalid_client")
    request_id = response.get_json()["request_id"]
    assert (request_id == sent) is echoed
    assert request_id.isascii() and request_id.isprintable() and 0 < len(request_id) <= 200


def test_each_request_gets_its_own_request_id(app: Flask) -> None:
    client = app.test_client()
    ids = {
        client.post(
            "/passkey/challenge", json={"client_id": "nobody"}, headers={"Host": CUSTOM_DOMAIN}
        ).get_json()["request_id"]
        for _ in range(3)
    }

    assert len(ids) == 3
