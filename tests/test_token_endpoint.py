"""POST /oauth/token: body encodings, client authentication, grant types, scope, audience,
refresh tokens and the token-claims hook."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_passkey.hookspecs import hookimpl
from flask_passkey.models import WEBAUTHN_GRANT
from flask_passkey.testing import PasskeyFlow
from tests.apps import (
    API_AUDIENCE,
    BASIC_SECRET,
    CONFIDENTIAL_SECRET,
    DEFAULT_DOMAIN,
    FORM,
    HOST,
    ORIGIN,
    REFRESH_GRANT,
    USERINFO,
    FakeClock,
    make_app,
    tenant_data,
)
from tests.support import (
    assert_oauth_error,
    find_user,
    new_email,
    passkey_flow,
    store_snapshot,
    verify_jwt,
)


def basic(client_id: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {**HOST, "Authorization": f"Basic {token}"}


def post_token(client: FlaskClient, body: dict[str, Any], **kwargs: Any) -> Any:
    kwargs.setdefault("headers", HOST)
    return client.post("/oauth/token", json=body, **kwargs)


def login_ready(flow: PasskeyFlow, **challenge: Any) -> tuple[str, dict[str, Any]]:
    """A signed-up user's new login session and its (honest) assertion."""
    response = flow.challenge(**challenge)
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    assertion = flow.authenticator.get(data["authn_params_public_key"], origin=ORIGIN)
    return data["auth_session"], assertion


@pytest.fixture(scope="module")
def shared_app() -> Flask:
    """One app for the whole module (tests use their own users); no rate limit."""
    return make_app(rate_limit_enabled=False, audiences=[API_AUDIENCE])


@pytest.fixture
def ann(shared_app: Flask) -> PasskeyFlow:
    """Ann, signed up through the public client ``spa``."""
    flow = passkey_flow(shared_app)
    flow.sign_up({"email": new_email()})
    return flow


def webauthn_body(auth_session: str, authn_response: Any, **extra: Any) -> dict[str, Any]:
    return {
        "grant_type": WEBAUTHN_GRANT,
        "auth_session": auth_session,
        "authn_response": authn_response,
        **extra,
    }


# -- body encodings ----------------------------------------------------------------------------


def test_json_token_response_has_the_spec_shape_and_no_store(shared_app: Flask) -> None:
    flow = passkey_flow(shared_app)
    flow.sign_up({"email": new_email()})
    auth_session, assertion = login_ready(flow)

    response = flow.token(auth_session, assertion)

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert set(body) == {"access_token", "id_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == shared_app.config["PASSKEY_ACCESS_TOKEN_LIFETIME"] == 86_400
    assert body["scope"].split() == ["openid", "profile", "email"]


def test_form_encoded_login_with_authn_response_as_json_text_works(ann: PasskeyFlow) -> None:
    auth_session, assertion = login_ready(ann)

    response = ann.client.post(
        "/oauth/token",
        data={
            "grant_type": WEBAUTHN_GRANT,
            "client_id": "spa",
            "auth_session": auth_session,
            "authn_response": json.dumps(assertion),
        },
        headers=HOST,
    )

    assert response.status_code == 200, response.get_json()
    assert response.request.mimetype == FORM
    assert verify_jwt(ann.client, response.get_json()["id_token"], audience="spa")


def test_form_encoded_sign_up_works(shared_app: Flask) -> None:
    flow = passkey_flow(shared_app)
    email = new_email()
    started = flow.register({"email": email}).get_json()
    credential = flow.authenticator.create(started["authn_params_public_key"], origin=ORIGIN)

    response = flow.client.post(
        "/oauth/token",
        data={
            "grant_type": WEBAUTHN_GRANT,
            "client_id": "spa",
            "auth_session": started["auth_session"],
            "authn_response": json.dumps(credential),
            "scope": "openid email",
        },
        headers=HOST,
    )

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["scope"] == "openid email"
    user = find_user(shared_app, email)
    assert verify_jwt(flow.client, response.get_json()["id_token"], audience="spa")["sub"] == (
        user.id
    )


@pytest.mark.parametrize("authn_response", ["{not json", "[1, 2]", '"text"', ""])
def test_form_encoded_authn_response_that_is_not_a_json_object_gets_invalid_request(
    ann: PasskeyFlow, authn_response: str
) -> None:
    auth_session, _ = login_ready(ann)
    before = store_snapshot(ann.client.application)

    response = ann.client.post(
        "/oauth/token",
        data={
            "grant_type": WEBAUTHN_GRANT,
            "client_id": "spa",
            "auth_session": auth_session,
            "authn_response": authn_response,
        },
        headers=HOST,
    )

    assert_oauth_error(response, 400, "invalid_request")
    assert store_snapshot(ann.client.application) == before


@pytest.mark.parametrize(
    "body",
    [
        pytest.param([], id="json list"),
        pytest.param("grant_type", id="json string"),
        pytest.param({"client_id": "spa"}, id="grant_type missing"),
        pytest.param({"client_id": "spa", "grant_type": ""}, id="grant_type empty"),
        pytest.param({"client_id": "spa", "grant_type": 7}, id="grant_type a number"),
        pytest.param(
            {"client_id": "spa", "grant_type": WEBAUTHN_GRANT, "authn_response": {}},
            id="auth_session missing",
        ),
        pytest.param(
            {"client_id": "spa", "grant_type": WEBAUTHN_GRANT, "auth_session": "x"},
            id="authn_response missing",
        ),
        pytest.param(
            {
                "client_id": "spa",
                "grant_type": WEBAUTHN_GRANT,
                "auth_session": 5,
                "authn_response": {},
            },
            id="auth_session a number",
        ),
        pytest.param(
            {"grant_type": WEBAUTHN_GRANT, "auth_session": "x", "authn_response": {}},
            id="client_id missing",
        ),
        pytest.param({"client_id": "spa", "grant_type": REFRESH_GRANT}, id="refresh_token missing"),
    ],
)
def test_malformed_token_request_gets_invalid_request(shared_app: Flask, body: Any) -> None:
    response = post_token(shared_app.test_client(), body)

    assert_oauth_error(response, 400, "invalid_request")
    assert response.headers["Cache-Control"] == "no-store"


def test_body_that_is_not_json_gets_invalid_request(shared_app: Flask) -> None:
    response = shared_app.test_client().post(
        "/oauth/token", data="grant_type=x", headers={**HOST, "Content-Type": "text/plain"}
    )

    assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "grant_type",
    [
        "password",
        "authorization_code",
        "client_credentials",
        "urn:okta:params:oauth:grant-type:otp",
    ],
)
def test_unsupported_grant_type_gets_unsupported_grant_type(
    shared_app: Flask, grant_type: str
) -> None:
    response = post_token(shared_app.test_client(), {"grant_type": grant_type, "client_id": "spa"})

    assert_oauth_error(response, 400, "unsupported_grant_type")


def test_token_endpoint_refuses_the_default_domain_and_a_disabled_tenant(shared_app: Flask) -> None:
    app = shared_app
    body = {
        "grant_type": WEBAUTHN_GRANT,
        "client_id": "spa",
        "auth_session": "x",
        "authn_response": {},
    }
    on_default = post_token(app.test_client(), body, headers={"Host": DEFAULT_DOMAIN})
    assert_oauth_error(on_default, 400, "invalid_request")

    tenant = tenant_data()
    tenant["passkeys_enabled"] = False
    disabled = make_app(tenant=tenant)
    assert_oauth_error(post_token(disabled.test_client(), body), 404, "not_found")


# -- client authentication ---------------------------------------------------------------------


def test_public_client_authenticates_with_its_client_id_only(ann: PasskeyFlow) -> None:
    auth_session, assertion = login_ready(ann)

    response = post_token(ann.client, webauthn_body(auth_session, assertion, client_id="spa"))

    assert response.status_code == 200, response.get_json()


def test_client_secret_post_client_authenticates_with_its_secret_in_the_body(
    shared_app: Flask,
) -> None:
    flow = passkey_flow(shared_app, "confidential")
    flow.sign_up({"email": new_email()})
    auth_session, assertion = login_ready(flow)

    response = post_token(
        flow.client,
        webauthn_body(
            auth_session, assertion, client_id="confidential", client_secret=CONFIDENTIAL_SECRET
        ),
    )

    assert response.status_code == 200, response.get_json()
    assert verify_jwt(flow.client, response.get_json()["id_token"], audience="confidential")


def basic_sign_up(app: Flask) -> tuple[FlaskClient, Any, dict[str, Any]]:
    """Sign up through the client_secret_basic client (HTTP Basic on every call)."""
    from flask_passkey.testing import SoftAuthenticator

    client = app.test_client()
    authenticator = SoftAuthenticator()
    started = client.post(
        "/passkey/register",
        # The challenge endpoints take client_id from the body (required there).
        json={"client_id": "basic", "user_profile": {"email": new_email()}},
        headers=basic("basic", BASIC_SECRET),
    )
    assert started.status_code == 200, started.get_json()
    data = started.get_json()
    credential = authenticator.create(data["authn_params_public_key"], origin=ORIGIN)
    response = post_token(
        client,
        webauthn_body(data["auth_session"], credential, scope="openid offline_access"),
        headers=basic("basic", BASIC_SECRET),
    )
    assert response.status_code == 200, response.get_json()
    return client, authenticator, response.get_json()


def test_client_secret_basic_client_authenticates_with_http_basic(shared_app: Flask) -> None:
    client, authenticator, tokens = basic_sign_up(shared_app)
    started = client.post(
        "/passkey/challenge", json={"client_id": "basic"}, headers=basic("basic", BASIC_SECRET)
    )
    assert started.status_code == 200, started.get_json()
    data = started.get_json()
    assertion = authenticator.get(data["authn_params_public_key"], origin=ORIGIN)

    response = post_token(
        client,
        webauthn_body(data["auth_session"], assertion),
        headers=basic("basic", BASIC_SECRET),
    )

    assert response.status_code == 200, response.get_json()
    first = verify_jwt(client, tokens["id_token"], audience="basic")
    again = verify_jwt(client, response.get_json()["id_token"], audience="basic")
    assert first["sub"] == again["sub"]


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param(
            {"client_id": "confidential", "client_secret": "wrong"}, HOST, id="post wrong secret"
        ),
        pytest.param({"client_id": "confidential"}, HOST, id="post secret missing"),
        pytest.param(
            {"client_id": "confidential", "client_secret": CONFIDENTIAL_SECRET + "x"},
            HOST,
            id="post secret with a suffix",
        ),
        pytest.param({}, basic("basic", "wrong"), id="basic wrong secret"),
        pytest.param({}, basic("basic", ""), id="basic empty secret"),
        pytest.param({"client_id": "basic"}, HOST, id="basic secret missing"),
        pytest.param({"client_id": "nobody"}, HOST, id="unknown client"),
        pytest.param({}, basic("nobody", "x"), id="unknown basic client"),
    ],
)
def test_failed_client_authentication_gets_401_invalid_client(
    shared_app: Flask, body: dict[str, Any], headers: dict[str, str]
) -> None:
    flow = passkey_flow(shared_app, "confidential")
    flow.sign_up({"email": new_email()})
    auth_session, assertion = login_ready(flow)
    before = store_snapshot(shared_app)

    response = post_token(
        flow.client, webauthn_body(auth_session, assertion, **body), headers=headers
    )

    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["Cache-Control"] == "no-store"
    if "Authorization" in headers:
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert store_snapshot(shared_app) == before


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param(
            {"client_secret": BASIC_SECRET},
            basic("basic", BASIC_SECRET),
            id="basic and secret in the body",
        ),
        pytest.param(
            {"client_id": "spa"}, basic("basic", BASIC_SECRET), id="basic for another client_id"
        ),
    ],
)
def test_ambiguous_client_authentication_gets_invalid_request(
    shared_app: Flask, body: dict[str, Any], headers: dict[str, str]
) -> None:
    response = post_token(shared_app.test_client(), webauthn_body("x", {}, **body), headers=headers)

    assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param(
            {"client_id": "basic", "client_secret": BASIC_SECRET},
            HOST,
            id="basic client using post",
        ),
        pytest.param({}, basic("confidential", CONFIDENTIAL_SECRET), id="post client using basic"),
    ],
)
def test_client_may_send_its_secret_by_the_other_method(
    shared_app: Flask, body: dict[str, Any], headers: dict[str, str]
) -> None:
    """As at Auth0, whose SDKs mix the two (auth0-server-python: body for the passkey grant,
    HTTP Basic for a refresh)."""
    client, authenticator, _ = basic_sign_up(shared_app)
    client_id = "basic" if body else "confidential"
    secret = BASIC_SECRET if body else CONFIDENTIAL_SECRET
    started = client.post(
        "/passkey/challenge", json={"client_id": client_id, "client_secret": secret}, headers=HOST
    )
    assert started.status_code == 200, started.get_json()
    data = started.get_json()
    assertion = authenticator.get(data["authn_params_public_key"], origin=ORIGIN)

    response = post_token(
        client, webauthn_body(data["auth_session"], assertion, **body), headers=headers
    )

    assert response.status_code == 200, response.get_json()
    assert verify_jwt(client, response.get_json()["id_token"], audience=client_id)


@pytest.mark.parametrize(
    ("client_id", "error"),
    [
        ("third-party", "unauthorized_client"),
        ("no-grant", "unauthorized_client"),
        ("legacy", "unauthorized_client"),
    ],
)
def test_client_not_allowed_passkeys_gets_unauthorized_client_at_the_token_endpoint(
    shared_app: Flask, client_id: str, error: str
) -> None:
    response = post_token(shared_app.test_client(), webauthn_body("x", {}, client_id=client_id))

    assert_oauth_error(response, 400, error)


# -- scope -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "granted"),
    [
        (None, "openid profile email"),
        ("openid", "openid"),
        ("profile", "openid profile"),
        ("email profile", "openid email profile"),
        ("openid openid email", "openid email"),
        ("offline_access", "openid"),
    ],
)
def test_granted_scope_always_includes_openid(
    ann: PasskeyFlow, scope: str | None, granted: str
) -> None:
    auth_session, assertion = login_ready(ann)
    extra = {} if scope is None else {"scope": scope}

    response = ann.token(auth_session, assertion, **extra)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["scope"] == granted
    assert "refresh_token" not in body  # spa has no refresh_token grant
    assert verify_jwt(ann.client, body["id_token"], audience="spa")
    access = verify_jwt(ann.client, body["access_token"], audience=USERINFO)
    assert access["scope"] == granted


def test_offline_access_gives_a_refresh_token_to_a_client_with_the_refresh_grant(
    shared_app: Flask,
) -> None:
    flow = passkey_flow(shared_app, "refreshing")

    tokens = flow.sign_up({"email": new_email()}, scope="openid offline_access")

    assert tokens["scope"] == "openid offline_access"
    assert isinstance(tokens["refresh_token"], str) and len(tokens["refresh_token"]) >= 22
    assert "refresh_token" not in flow.sign_in(scope="openid")


# -- refresh tokens ----------------------------------------------------------------------------


def refresh(client: FlaskClient, token: str, client_id: str = "refreshing", **extra: Any) -> Any:
    return post_token(
        client,
        {"grant_type": REFRESH_GRANT, "client_id": client_id, "refresh_token": token, **extra},
    )


@pytest.fixture
def refreshing(shared_app: Flask) -> tuple[PasskeyFlow, dict[str, Any]]:
    flow = passkey_flow(shared_app, "refreshing")
    tokens = flow.sign_up(
        {"email": new_email(), "name": "Ann"}, scope="openid profile email offline_access"
    )
    return flow, tokens


def test_refresh_token_gives_new_tokens_for_the_same_user_and_a_new_refresh_token(
    refreshing: tuple[PasskeyFlow, dict[str, Any]],
) -> None:
    flow, tokens = refreshing

    response = refresh(flow.client, tokens["refresh_token"])

    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    renewed = response.get_json()
    assert renewed["refresh_token"] != tokens["refresh_token"]
    assert renewed["scope"] == tokens["scope"]
    first = verify_jwt(flow.client, tokens["id_token"], audience="refreshing")
    again = verify_jwt(flow.client, renewed["id_token"], audience="refreshing")
    assert again["sub"] == first["sub"]
    assert again["name"] == "Ann"
    access = verify_jwt(flow.client, renewed["access_token"], audience=USERINFO)
    assert access["sub"] == first["sub"]
    # The replacement works in turn.
    assert refresh(flow.client, renewed["refresh_token"]).status_code == 200


def test_used_refresh_token_is_rejected(refreshing: tuple[PasskeyFlow, dict[str, Any]]) -> None:
    flow, tokens = refreshing
    assert refresh(flow.client, tokens["refresh_token"]).status_code == 200

    assert_oauth_error(refresh(flow.client, tokens["refresh_token"]), 400, "invalid_grant")


def test_refresh_token_of_another_client_is_rejected(
    refreshing: tuple[PasskeyFlow, dict[str, Any]],
) -> None:
    flow, tokens = refreshing

    response = refresh(flow.client, tokens["refresh_token"], client_id="refreshing-2")

    assert_oauth_error(response, 400, "invalid_grant")


def test_unknown_refresh_token_is_rejected(shared_app: Flask) -> None:
    assert_oauth_error(refresh(shared_app.test_client(), "made-up"), 400, "invalid_grant")


def test_refresh_grant_for_a_client_without_it_is_refused(
    refreshing: tuple[PasskeyFlow, dict[str, Any]],
) -> None:
    flow, tokens = refreshing

    response = refresh(flow.client, tokens["refresh_token"], client_id="spa")

    assert_oauth_error(response, 400, "unauthorized_client")


def test_refresh_can_narrow_one_response_s_scope_but_not_widen_it(shared_app: Flask) -> None:
    flow = passkey_flow(shared_app, "refreshing")
    tokens = flow.sign_up({"email": new_email()}, scope="openid email offline_access")

    wider = refresh(flow.client, tokens["refresh_token"], scope="openid email phone")
    assert_oauth_error(wider, 400, "invalid_scope")

    # The refused request left the token usable.
    narrower = refresh(flow.client, tokens["refresh_token"], scope="openid")
    assert narrower.status_code == 200, narrower.get_json()
    claims = verify_jwt(flow.client, narrower.get_json()["id_token"], audience="refreshing")
    assert "email" not in claims

    # RFC 6749 §6: the next refresh has the sign-in's scope again.
    again = refresh(flow.client, narrower.get_json()["refresh_token"])
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["scope"] == "openid email offline_access"
    claims = verify_jwt(flow.client, again.get_json()["id_token"], audience="refreshing")
    assert "email" in claims


def test_client_secret_basic_client_refreshes_with_http_basic(shared_app: Flask) -> None:
    client, _, tokens = basic_sign_up(shared_app)

    response = post_token(
        client,
        {"grant_type": REFRESH_GRANT, "refresh_token": tokens["refresh_token"]},
        headers=basic("basic", BASIC_SECRET),
    )
    assert response.status_code == 200, response.get_json()

    wrong = post_token(
        client,
        {"grant_type": REFRESH_GRANT, "refresh_token": response.get_json()["refresh_token"]},
        headers=basic("basic", "wrong"),
    )
    assert_oauth_error(wrong, 401, "invalid_client")


def test_refresh_token_expires_and_rotation_keeps_the_first_expiry() -> None:
    clock = FakeClock(1_900_000_000.0)
    app = make_app(clock=clock, refresh_token_lifetime=100)
    flow = passkey_flow(app, "refreshing")
    tokens = flow.sign_up({"email": new_email()}, scope="openid offline_access")

    clock.advance(60)
    renewed = refresh(flow.client, tokens["refresh_token"])
    assert renewed.status_code == 200, renewed.get_json()
    clock.advance(40)

    assert_oauth_error(
        refresh(flow.client, renewed.get_json()["refresh_token"]), 400, "invalid_grant"
    )


def test_refresh_keeps_the_organization_and_audience() -> None:
    tenant = tenant_data()
    org_client = next(c for c in tenant["clients"] if c["client_id"] == "org-allowed")
    org_client["grant_types"] = [WEBAUTHN_GRANT, REFRESH_GRANT]
    app = make_app(tenant=tenant, audiences=[API_AUDIENCE])
    flow = passkey_flow(app, "org-allowed")
    tokens = flow.sign_up(
        {"email": new_email()},
        organization="org_acme",
        scope="openid offline_access",
        audience=API_AUDIENCE,
    )

    response = refresh(flow.client, tokens["refresh_token"], client_id="org-allowed")

    assert response.status_code == 200, response.get_json()
    access = verify_jwt(flow.client, response.get_json()["access_token"], audience=API_AUDIENCE)
    assert access["org_id"] == "org_acme"


# -- audience ----------------------------------------------------------------------------------


def test_configured_audience_goes_into_the_access_token(shared_app: Flask) -> None:
    flow = passkey_flow(shared_app)
    flow.sign_up({"email": new_email()})

    tokens = flow.sign_in(audience=API_AUDIENCE)

    access = verify_jwt(flow.client, tokens["access_token"], audience=API_AUDIENCE)
    assert access["aud"] == API_AUDIENCE
    assert verify_jwt(flow.client, tokens["id_token"], audience="spa")["aud"] == "spa"


def test_access_token_audience_defaults_to_userinfo(ann: PasskeyFlow) -> None:
    tokens = ann.sign_in()

    assert verify_jwt(ann.client, tokens["access_token"], audience=USERINFO)["aud"] == USERINFO


def test_unknown_audience_gets_403_access_denied(shared_app: Flask) -> None:
    app = shared_app
    flow = passkey_flow(app)
    flow.sign_up({"email": new_email()})
    auth_session, assertion = login_ready(flow)
    before = store_snapshot(app)

    response = flow.token(auth_session, assertion, audience="https://other.api/")

    assert_oauth_error(response, 403, "access_denied")
    assert response.headers["Cache-Control"] == "no-store"
    assert store_snapshot(app) == before


# -- the passkey_token_claims hook -------------------------------------------------------------


class RolesClaims:
    """Adds a namespaced roles claim, and tries to take over registered claims."""

    @hookimpl
    def passkey_token_claims(self, user: Any, client: Any, scope: Any) -> dict[str, Any]:
        return {
            "https://acme.test/roles": ["admin"] if user.email == "ann@example.com" else [],
            "https://acme.test/client": client.client_id,
            "sub": "attacker",
            "iss": "https://evil.example/",
            "aud": "evil",
            "org_id": "org_evil",
            "scope": "admin",
        }


def test_token_claims_plugin_adds_claims_but_cannot_override_registered_ones() -> None:
    app = make_app(plugins=[RolesClaims()])
    flow = passkey_flow(app)

    tokens = flow.sign_up({"email": "ann@example.com"})

    (user,) = app.extensions["passkey"].users.list_users()
    id_claims = verify_jwt(flow.client, tokens["id_token"], audience="spa")
    access = verify_jwt(flow.client, tokens["access_token"], audience=USERINFO)
    for claims in (id_claims, access):
        assert claims["https://acme.test/roles"] == ["admin"]
        assert claims["https://acme.test/client"] == "spa"
        assert claims["sub"] == user.id
        assert "org_id" not in claims
    assert access["scope"] == "openid profile email"
    assert tokens["scope"] == "openid profile email"
