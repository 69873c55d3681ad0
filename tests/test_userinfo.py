"""``GET``/``POST /userinfo`` (OIDC Core §5.3) with bearer access tokens: the claims of the
token's scopes, and a 401 with a ``Bearer`` challenge for every token it must not accept."""

from __future__ import annotations

import time
from typing import Any

import jwt as pyjwt
import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import URL

from flask_passkey.testing import PasskeyFlow
from tests.apps import (
    API_AUDIENCE,
    CUSTOM_DOMAIN,
    DEFAULT_DOMAIN,
    ISSUER,
    ORIGIN,
    USERINFO,
    FakeClock,
    generate_rsa_pem,
    make_app,
    tenant_data,
)
from tests.databases import url_text
from tests.support import assert_oauth_error, new_email


@pytest.fixture(scope="module")
def shared_app() -> Flask:
    return make_app(rate_limit_enabled=False, audiences=[API_AUDIENCE])


def userinfo(
    app: Flask,
    token: str | None = None,
    *,
    method: str = "GET",
    host: str = CUSTOM_DOMAIN,
    prefix: str = "",
    scheme: str = "Bearer",
    **kwargs: Any,
) -> Any:
    headers = {"Host": host, **kwargs.pop("headers", {})}
    if token is not None:
        headers["Authorization"] = f"{scheme} {token}"
    return app.test_client().open(
        prefix + "/userinfo", method=method, headers=headers, base_url=f"https://{host}", **kwargs
    )


def assert_invalid_token(response: Any, description: str | None = None) -> None:
    """401 ``invalid_token`` with its JSON body and the RFC 6750 ``Bearer`` challenge."""
    assert_oauth_error(response, 401, "invalid_token")
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer error="invalid_token", error_description="'), challenge
    if description is not None:
        assert description in response.get_json()["error_description"]


def mint(app: Flask, **claims: Any) -> str:
    """An access token signed with ``app``'s own key: a valid one for the userinfo audience,
    with ``claims`` replaced (None removes one)."""
    now = int(time.time())
    values = {
        "iss": ISSUER,
        "sub": "auth0|nobody",
        "aud": USERINFO,
        "iat": now,
        "exp": now + 600,
        "client_id": "spa",
        "scope": "openid profile email",
        **claims,
    }
    keys = app.extensions["passkey"].grants.issuer.keys
    return str(
        keys.sign({key: value for key, value in values.items() if value is not None}, typ="at+jwt")
    )


def test_userinfo_answers_sub_and_the_claims_the_scopes_release(shared_app: Flask) -> None:
    flow = PasskeyFlow(shared_app.test_client(), client_id="spa", host=CUSTOM_DOMAIN)
    email = new_email()
    tokens = flow.sign_up(
        {"email": email, "name": "Ann Lee", "nickname": "ann"}, scope="openid profile email"
    )

    response = userinfo(shared_app, tokens["access_token"])

    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    claims = response.get_json()
    id_token = pyjwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["sub"] == id_token["sub"]
    assert claims == {
        "sub": id_token["sub"],
        "email": email,
        "email_verified": False,
        "name": "Ann Lee",
        "nickname": "ann",
    }
    # The same claims the ID token carries for these scopes.
    assert {key: id_token[key] for key in claims} == claims


def test_scopes_not_granted_release_nothing_but_sub(shared_app: Flask) -> None:
    flow = PasskeyFlow(shared_app.test_client(), client_id="spa", host=CUSTOM_DOMAIN)
    tokens = flow.sign_up({"email": new_email(), "name": "Bo"}, scope="openid")

    claims = userinfo(shared_app, tokens["access_token"]).get_json()

    assert list(claims) == ["sub"]


def test_post_with_the_header_or_a_form_field_answers_the_same(shared_app: Flask) -> None:
    flow = PasskeyFlow(shared_app.test_client(), client_id="spa", host=CUSTOM_DOMAIN)
    token = flow.sign_up({"email": new_email()})["access_token"]
    by_get = userinfo(shared_app, token).get_json()

    by_header = userinfo(shared_app, token, method="POST")
    by_form = userinfo(shared_app, method="POST", data={"access_token": token})

    assert by_header.status_code == by_form.status_code == 200
    assert by_header.get_json() == by_form.get_json() == by_get
    both = userinfo(shared_app, token, method="POST", data={"access_token": token})
    assert_oauth_error(both, 400, "invalid_request")


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer a b",
        "Token abc",
        "bearer x.y.z",
    ],
)
def test_missing_or_malformed_authorization_is_401_invalid_token(
    shared_app: Flask, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    assert_invalid_token(userinfo(shared_app, headers=headers))


def test_token_for_another_audience_is_refused(shared_app: Flask) -> None:
    flow = PasskeyFlow(shared_app.test_client(), client_id="spa", host=CUSTOM_DOMAIN)
    flow.sign_up({"email": new_email()})
    for audience in (ISSUER + "me/", API_AUDIENCE):
        token = flow.sign_in(audience=audience)["access_token"]
        assert_invalid_token(userinfo(shared_app, token), "another audience")


def test_token_whose_audience_list_names_userinfo_is_accepted(shared_app: Flask) -> None:
    flow = PasskeyFlow(shared_app.test_client(), client_id="spa", host=CUSTOM_DOMAIN)
    sub = pyjwt.decode(
        flow.sign_up({"email": new_email()})["access_token"], options={"verify_signature": False}
    )["sub"]

    listed = mint(shared_app, sub=sub, aud=[API_AUDIENCE, USERINFO])

    assert userinfo(shared_app, listed).get_json()["sub"] == sub
    assert_invalid_token(userinfo(shared_app, mint(shared_app, sub=sub, aud=[API_AUDIENCE])))


def test_id_token_or_token_signed_elsewhere_is_refused(shared_app: Flask) -> None:
    flow = PasskeyFlow(shared_app.test_client(), client_id="spa", host=CUSTOM_DOMAIN)
    tokens = flow.sign_up({"email": new_email()})
    assert_invalid_token(userinfo(shared_app, tokens["id_token"]))

    stranger = make_app(signing_keys=[generate_rsa_pem()], rate_limit_enabled=False)
    foreign = PasskeyFlow(stranger.test_client(), client_id="spa", host=CUSTOM_DOMAIN)
    foreign_token = foreign.sign_up({"email": new_email()})["access_token"]
    assert_invalid_token(userinfo(shared_app, foreign_token))

    tampered = tokens["access_token"][:-4] + (
        "AAAA" if not tokens["access_token"].endswith("AAAA") else "BBBB"
    )
    assert_invalid_token(userinfo(shared_app, tampered))


def test_expired_token_is_refused() -> None:
    clock = FakeClock(time.time())
    app = make_app(clock=clock, rate_limit_enabled=False)
    flow = PasskeyFlow(app.test_client(), client_id="spa", host=CUSTOM_DOMAIN)
    token = flow.sign_up({"email": new_email()})["access_token"]
    assert userinfo(app, token).status_code == 200

    clock.advance(app.extensions["passkey"].settings.access_token_lifetime + 1)

    assert_invalid_token(userinfo(app, token), "expired")


def test_token_of_a_user_who_does_not_exist_is_refused(shared_app: Flask) -> None:
    assert_invalid_token(userinfo(shared_app, mint(shared_app)), "no longer exists")


def test_token_of_a_deleted_user_is_refused(database_url: URL) -> None:
    app = make_app(
        rate_limit_enabled=False,
        database_url=url_text(database_url),
    )
    flow = PasskeyFlow(app.test_client(), client_id="spa", host=CUSTOM_DOMAIN)
    token = flow.sign_up({"email": new_email()})["access_token"]
    assert userinfo(app, token).status_code == 200
    sub = pyjwt.decode(token, options={"verify_signature": False})["sub"]

    engine = app.extensions["passkey"].users.engine
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM users WHERE id = :id"), {"id": sub})

    assert_invalid_token(userinfo(app, token), "no longer exists")


def test_served_on_each_custom_domain_for_that_domains_tokens_only() -> None:
    tenant = tenant_data()
    tenant["custom_domains"].append("id.acme.test")
    app = make_app(tenant=tenant, rate_limit_enabled=False, url_prefix="/auth")
    tokens = {}
    for host in (CUSTOM_DOMAIN, "id.acme.test"):
        flow = PasskeyFlow(app.test_client(), client_id="spa", host=host, path_prefix="/auth")
        tokens[host] = flow.sign_up({"email": new_email()})["access_token"]
        assert userinfo(app, tokens[host], host=host, prefix="/auth").status_code == 200

    assert_invalid_token(
        userinfo(app, tokens[CUSTOM_DOMAIN], host="id.acme.test", prefix="/auth"),
        "another issuer",
    )
    default = userinfo(app, tokens[CUSTOM_DOMAIN], host=DEFAULT_DOMAIN, prefix="/auth")
    assert_oauth_error(default, 400, "invalid_request")


def test_discovery_names_the_userinfo_endpoint_that_answers() -> None:
    app = make_app(rate_limit_enabled=False, url_prefix="/auth")
    config = (
        app.test_client()
        .get("/.well-known/openid-configuration", headers={"Host": CUSTOM_DOMAIN})
        .get_json()
    )
    assert config["userinfo_endpoint"] == f"{ORIGIN}/auth/userinfo"

    flow = PasskeyFlow(app.test_client(), client_id="spa", host=CUSTOM_DOMAIN, path_prefix="/auth")
    token = flow.sign_up({"email": new_email()})["access_token"]
    assert userinfo(app, token, prefix="/auth").status_code == 200


def test_userinfo_is_rate_limited_per_ip() -> None:
    app = make_app(rate_limit="2 per minute")
    for _ in range(2):
        assert_invalid_token(userinfo(app, "not-a-token"))
    limited = userinfo(app, "not-a-token")
    assert_oauth_error(limited, 429, "too_many_requests")


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_methods_get_a_json_405(shared_app: Flask, method: str) -> None:
    response = userinfo(shared_app, method=method)
    assert_oauth_error(response, 405, "invalid_request")
    assert {m.strip() for m in response.headers["Allow"].split(",")} == {"GET", "POST"}
