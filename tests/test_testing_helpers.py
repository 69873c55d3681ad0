"""flask_passkey.testing.PasskeyFlow: the helper operators use to test their own apps."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_passkey.testing import PasskeyFlow, SoftAuthenticator
from tests.apps import CONFIDENTIAL_SECRET, CUSTOM_DOMAIN, DEFAULT_DOMAIN, WEB_ORIGIN, make_app
from tests.support import find_user, new_email, verify_jwt


@pytest.fixture(scope="module")
def shared_app() -> Flask:
    return make_app(rate_limit_enabled=False)


def flow_on(app: Flask, client_id: str = "spa", **kwargs: object) -> PasskeyFlow:
    return PasskeyFlow(app.test_client(), client_id=client_id, host=CUSTOM_DOMAIN, **kwargs)


def test_sign_up_then_sign_in_return_tokens_for_one_user(shared_app: Flask) -> None:
    flow = flow_on(shared_app)
    email = new_email()

    signed_up = flow.sign_up({"email": email})
    signed_in = flow.sign_in()

    user = find_user(shared_app, email)
    for tokens in (signed_up, signed_in):
        assert tokens["token_type"] == "Bearer"
        assert verify_jwt(flow.client, tokens["id_token"], audience="spa")["sub"] == user.id
    assert flow.origin == f"https://{CUSTOM_DOMAIN}"
    assert len(flow.authenticator.credentials) == 1


def test_sign_up_passes_scope_and_audience_to_the_token_request(shared_app: Flask) -> None:
    flow = flow_on(shared_app, "refreshing")

    tokens = flow.sign_up({"email": new_email()}, scope="openid offline_access")

    assert tokens["scope"] == "openid offline_access"
    assert tokens["refresh_token"]
    assert flow.sign_in(scope="openid")["scope"] == "openid"


def test_sign_up_passes_realm_and_metadata_to_register(shared_app: Flask) -> None:
    flow = flow_on(shared_app)
    username = "u" + new_email()[5:17]

    flow.sign_up({"username": username}, realm="partners", user_metadata={"plan": "gold"})

    user = shared_app.extensions["passkey"].users.find_user(
        connection="partners", kind="username", value=username
    )
    assert user.user_metadata == {"plan": "gold"}


def test_confidential_client_flow_sends_its_secret(shared_app: Flask) -> None:
    flow = flow_on(shared_app, "confidential", client_secret=CONFIDENTIAL_SECRET)

    flow.sign_up({"email": new_email()})

    assert flow.sign_in()["access_token"]


def test_flow_uses_the_given_origin_and_authenticator(shared_app: Flask) -> None:
    authenticator = SoftAuthenticator(algorithm="EdDSA")
    flow = flow_on(shared_app, origin=WEB_ORIGIN, authenticator=authenticator)

    flow.sign_up({"email": new_email()})

    assert flow.authenticator is authenticator
    assert flow.sign_in()["id_token"]


def test_sign_in_with_a_credential_id_signs_in_that_passkeys_user(shared_app: Flask) -> None:
    flow = flow_on(shared_app)
    first, second = new_email(), new_email()
    flow.sign_up({"email": first})
    flow.sign_up({"email": second})
    first_credential = flow.authenticator.credentials[0].credential_id

    tokens = flow.sign_in(credential_id=first_credential)

    claims = verify_jwt(flow.client, tokens["id_token"], audience="spa")
    assert claims["sub"] == find_user(shared_app, first).id


def test_flow_works_behind_a_url_prefix() -> None:
    app = make_app(url_prefix="/auth")
    flow = flow_on(app, path_prefix="/auth")

    flow.sign_up({"email": new_email()})

    assert flow.sign_in()["id_token"]
    assert flow_on(app).challenge().status_code == 404


def test_register_challenge_and_token_return_the_raw_response(shared_app: Flask) -> None:
    flow = flow_on(shared_app)

    registered = flow.register({"email": "not-an-email"})
    challenged = flow.challenge(realm="nope")
    redeemed = flow.token("no-such-session", {})

    assert (registered.status_code, registered.get_json()["error"]) == (400, "invalid_request")
    assert (challenged.status_code, challenged.get_json()["error"]) == (400, "invalid_request")
    assert (redeemed.status_code, redeemed.get_json()["error"]) == (400, "invalid_grant")


def test_sign_up_fails_loudly_when_register_is_refused(shared_app: Flask) -> None:
    flow = flow_on(shared_app)

    with pytest.raises(AssertionError, match=r"400.*invalid_request"):
        flow.sign_up({"email": "not-an-email"})

    assert flow.authenticator.credentials == []


def test_sign_up_fails_loudly_when_the_token_exchange_is_refused(shared_app: Flask) -> None:
    # The web origin of another client: the attestation is refused at the token endpoint.
    flow = flow_on(shared_app, "confidential", client_secret=CONFIDENTIAL_SECRET, origin=WEB_ORIGIN)
    email = new_email()

    with pytest.raises(AssertionError, match=r"400.*invalid_grant"):
        flow.sign_up({"email": email})

    assert find_user(shared_app, email) is None


def test_sign_in_fails_loudly_when_the_challenge_is_refused(shared_app: Flask) -> None:
    flow = flow_on(shared_app, "third-party")

    with pytest.raises(AssertionError, match=r"400.*unauthorized_client"):
        flow.sign_in()


def test_sign_in_fails_loudly_when_the_passkey_is_no_longer_registered(
    shared_app: Flask,
) -> None:
    flow = flow_on(shared_app)
    email = new_email()
    flow.sign_up({"email": email})
    users = shared_app.extensions["passkey"].users
    assert users.delete_credential(
        user_id=find_user(shared_app, email).id,
        credential_id=flow.authenticator.credentials[0].credential_id,
    )

    with pytest.raises(AssertionError, match=r"400.*invalid_grant"):
        flow.sign_in()


def test_sign_in_fails_loudly_on_the_wrong_host(shared_app: Flask) -> None:
    flow = PasskeyFlow(shared_app.test_client(), client_id="spa", host=DEFAULT_DOMAIN)

    with pytest.raises(AssertionError, match="400"):
        flow.sign_in()
