"""Client secrets kept only as ``client_secret_hash``: sign-up, sign-in and refresh with the
secret in the body (client_secret_post) or in HTTP Basic (client_secret_basic); a malformed hash
refused at init_app; secrets never in an event."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from flask import Flask

from flask_passkey import ConfigurationError
from flask_passkey.core.client_secrets import generate_secret, hash_secret, secret_matches
from flask_passkey.models import WEBAUTHN_GRANT
from flask_passkey.testing import SoftAuthenticator
from tests.apps import CUSTOM_DOMAIN, DB_CONNECTION, ORIGIN, REFRESH_GRANT, make_app, tenant_data
from tests.events import Recorder
from tests.support import assert_oauth_error, new_email

POST_SECRET = generate_secret()
BASIC_SECRET = generate_secret()
WRONG_SECRET = generate_secret()


def hashed_client(client_id: str, method: str, secret: str) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "app_type": "regular_web",
        "client_secret_hash": hash_secret(secret),
        "token_endpoint_auth_method": method,
        "connections": [DB_CONNECTION],
        "grant_types": [WEBAUTHN_GRANT, REFRESH_GRANT],
    }


def hashed_tenant(**client: Any) -> dict[str, Any]:
    tenant = tenant_data()
    tenant["clients"] += [
        hashed_client("hashed-post", "client_secret_post", POST_SECRET),
        hashed_client("hashed-basic", "client_secret_basic", BASIC_SECRET),
        {
            **hashed_client("secretless-challenge", "client_secret_post", POST_SECRET),
            "challenge_without_secret": True,
        },
    ]
    if client:
        tenant["clients"].append({"client_id": "odd", "connections": [DB_CONNECTION], **client})
    return tenant


class Confidential:
    """Drives the API as a confidential client: its secret in the body or in HTTP Basic."""

    def __init__(self, app: Flask, client_id: str, secret: str, *, basic: bool) -> None:
        self.client = app.test_client()
        self.client_id = client_id
        self.secret = secret
        self.basic = basic
        self.authenticator = SoftAuthenticator()

    def post(self, path: str, body: dict[str, Any], *, secret: str | None = None) -> Any:
        secret = self.secret if secret is None else secret
        body = {**body, "client_id": self.client_id}
        if self.basic:
            return self.client.post(
                path, json=body, auth=(self.client_id, secret), headers={"Host": CUSTOM_DOMAIN}
            )
        body["client_secret"] = secret
        return self.client.post(path, json=body, headers={"Host": CUSTOM_DOMAIN})

    def sign_up(self, **token: Any) -> Any:
        started = self.post("/passkey/register", {"user_profile": {"email": new_email()}})
        assert started.status_code == 200, started.get_json()
        options = started.get_json()
        credential = self.authenticator.create(options["authn_params_public_key"], origin=ORIGIN)
        return self.exchange(options["auth_session"], credential, **token)

    def sign_in(self, **token: Any) -> Any:
        started = self.post("/passkey/challenge", {})
        assert started.status_code == 200, started.get_json()
        options = started.get_json()
        assertion = self.authenticator.get(options["authn_params_public_key"], origin=ORIGIN)
        return self.exchange(options["auth_session"], assertion, **token)

    def exchange(self, auth_session: str, authn_response: Any, **token: Any) -> Any:
        body = {
            "grant_type": WEBAUTHN_GRANT,
            "auth_session": auth_session,
            "authn_response": authn_response,
            "scope": "openid offline_access",
        }
        return self.post("/oauth/token", body, **token)

    def refresh(self, refresh_token: str, **token: Any) -> Any:
        body = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self.post("/oauth/token", body, **token)


@pytest.fixture(scope="module")
def app() -> Flask:
    return make_app(tenant=hashed_tenant(), rate_limit_enabled=False)


CLIENTS = {
    "post": ("hashed-post", POST_SECRET, False),
    "basic": ("hashed-basic", BASIC_SECRET, True),
}


@pytest.mark.parametrize("method", CLIENTS)
def test_hashed_secret_signs_up_signs_in_and_refreshes(app: Flask, method: str) -> None:
    client_id, secret, basic = CLIENTS[method]
    client = Confidential(app, client_id, secret, basic=basic)

    signed_up = client.sign_up()
    assert signed_up.status_code == 200, signed_up.get_json()
    signed_in = client.sign_in()
    assert signed_in.status_code == 200, signed_in.get_json()
    refreshed = client.refresh(signed_in.get_json()["refresh_token"])
    assert refreshed.status_code == 200, refreshed.get_json()


@pytest.mark.parametrize("method", CLIENTS)
@pytest.mark.parametrize(
    "presented",
    [
        pytest.param(WRONG_SECRET, id="wrong secret"),
        pytest.param(lambda secret: hash_secret(secret), id="the stored hash"),
        pytest.param(lambda secret: hash_secret(secret).partition("$")[2], id="its hex digest"),
        pytest.param(lambda secret: secret[:-1], id="one character short"),
        pytest.param(lambda secret: secret + " ", id="trailing space"),
        pytest.param(lambda secret: secret.upper(), id="upper case"),
    ],
)
def test_anything_but_the_secret_is_refused_at_every_step(
    app: Flask, method: str, presented: Any
) -> None:
    client_id, secret, basic = CLIENTS[method]
    client = Confidential(app, client_id, secret, basic=basic)
    tokens = client.sign_up().get_json()
    guess = presented(secret) if callable(presented) else presented
    before = app.extensions["passkey"].users.list_users(limit=1000)

    for refused in (
        client.post("/passkey/challenge", {}, secret=guess),
        client.post("/passkey/register", {"user_profile": {"email": new_email()}}, secret=guess),
        client.sign_in(secret=guess),
        client.refresh(tokens["refresh_token"], secret=guess),
    ):
        assert_oauth_error(refused, 401, "invalid_client")
    assert app.extensions["passkey"].users.list_users(limit=1000) == before
    # The refresh token was not spent on the failed attempt.
    assert client.refresh(tokens["refresh_token"]).status_code == 200


def test_a_confidential_client_needs_its_secret_to_start_a_challenge_by_default(
    app: Flask,
) -> None:
    client = app.test_client()
    headers = {"Host": CUSTOM_DOMAIN}
    profile = {"email": new_email()}

    for refused in (
        client.post("/passkey/challenge", json={"client_id": "hashed-post"}, headers=headers),
        client.post(
            "/passkey/register",
            json={"client_id": "hashed-post", "user_profile": profile},
            headers=headers,
        ),
    ):
        assert_oauth_error(refused, 401, "invalid_client")


def test_challenge_without_secret_waives_only_a_missing_secret_on_the_challenges(
    app: Flask,
) -> None:
    client = Confidential(app, "secretless-challenge", POST_SECRET, basic=False)
    http, headers = app.test_client(), {"Host": CUSTOM_DOMAIN}
    body = {"client_id": "secretless-challenge"}

    started = http.post(
        "/passkey/register", json={**body, "user_profile": {"email": new_email()}}, headers=headers
    )
    assert started.status_code == 200, started.get_json()
    options = started.get_json()
    created = client.authenticator.create(options["authn_params_public_key"], origin=ORIGIN)
    # The token endpoint still authenticates the client: without its secret, no tokens.
    exchange = {
        **body,
        "grant_type": WEBAUTHN_GRANT,
        "auth_session": options["auth_session"],
        "authn_response": created,
        "scope": "openid offline_access",
    }
    assert_oauth_error(
        http.post("/oauth/token", json=exchange, headers=headers), 401, "invalid_client"
    )
    tokens = client.exchange(options["auth_session"], created)
    assert tokens.status_code == 200, tokens.get_json()
    signed_in = http.post("/passkey/challenge", json=body, headers=headers)
    assert signed_in.status_code == 200, signed_in.get_json()
    # A wrong secret is refused on the challenges too.
    assert_oauth_error(
        client.post("/passkey/challenge", {}, secret=WRONG_SECRET), 401, "invalid_client"
    )
    refresh = {
        **body,
        "grant_type": "refresh_token",
        "refresh_token": tokens.get_json()["refresh_token"],
    }
    assert_oauth_error(
        http.post("/oauth/token", json=refresh, headers=headers), 401, "invalid_client"
    )
    assert client.refresh(tokens.get_json()["refresh_token"]).status_code == 200


def test_challenge_without_secret_is_refused_for_a_public_client() -> None:
    tenant = hashed_tenant(challenge_without_secret=True)

    with pytest.raises(ConfigurationError, match="challenge_without_secret"):
        make_app(tenant=tenant)


@pytest.mark.parametrize(
    "secret_hash",
    [
        pytest.param("sha256$" + "a" * 63, id="63 hex digits"),
        pytest.param("sha256$" + "a" * 65, id="65 hex digits"),
        pytest.param("sha256$", id="no digest"),
        pytest.param("sha256$" + "A" * 64, id="upper-case hex"),
        pytest.param("sha256$" + "g" * 64, id="not hex"),
        pytest.param("a" * 64, id="no scheme"),
        pytest.param("md5$" + "a" * 32, id="another scheme"),
        pytest.param("sha512$" + "a" * 128, id="an unknown scheme"),
        pytest.param(f" {hash_secret('x')}", id="leading space"),
        pytest.param(f"{hash_secret('x')}\n", id="trailing newline"),
        pytest.param("", id="empty"),
        pytest.param("$2b$12$" + "a" * 53, id="bcrypt"),
    ],
)
def test_malformed_secret_hash_is_refused_at_init_app(secret_hash: str) -> None:
    tenant = hashed_tenant(
        client_secret_hash=secret_hash, token_endpoint_auth_method="client_secret_post"
    )

    with pytest.raises(ConfigurationError, match="client_secret_hash"):
        make_app(tenant=tenant)


def test_secret_hash_of_the_wrong_type_is_refused_at_init_app() -> None:
    with pytest.raises(ConfigurationError, match="client_secret_hash"):
        make_app(tenant=hashed_tenant(client_secret_hash=["sha256$" + "a" * 64]))


def test_secret_matches_takes_the_hash_over_a_plain_secret() -> None:
    stored = hash_secret(POST_SECRET)

    assert secret_matches(POST_SECRET, secret=None, secret_hash=stored)
    assert not secret_matches(stored, secret=None, secret_hash=stored)
    assert secret_matches(POST_SECRET, secret=POST_SECRET, secret_hash=None)
    assert not secret_matches(POST_SECRET[:-1], secret=POST_SECRET, secret_hash=None)
    assert not secret_matches(POST_SECRET, secret=None, secret_hash=None)


@pytest.mark.parametrize("method", CLIENTS)
def test_secrets_never_appear_in_events(method: str) -> None:
    recorder = Recorder()
    app = make_app(tenant=hashed_tenant(), lockout="3 per hour", plugins=[recorder])
    client_id, secret, basic = CLIENTS[method]
    client = Confidential(app, client_id, secret, basic=basic)
    tokens = client.sign_up().get_json()
    client.sign_in()
    for guess in (WRONG_SECRET, hash_secret(secret), secret + "x", "L" * 1000):
        client.post("/passkey/challenge", {}, secret=guess)
        client.sign_in(secret=guess)
        client.refresh(tokens["refresh_token"], secret=guess)

    names = {event.name for event in recorder.events}
    assert {"signup_succeeded", "login_succeeded", "request_rejected", "locked_out"} <= names
    dumped = repr([dataclasses.asdict(event) for event in recorder.events])
    for value in (secret, WRONG_SECRET, hash_secret(secret), "L" * 100, tokens["refresh_token"]):
        assert value not in dumped
    assert hash_secret(secret).partition("$")[2] not in dumped
