"""The demo's and the factory example's server side, through Flask's test client (no browser)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient
from webauthn.helpers import bytes_to_base64url

from flask_passkey.testing import PasskeyFlow, SoftAuthenticator
from tests.examples import EXAMPLES, load_factory

DEMO_TENANT = EXAMPLES / "demo" / "tenant.toml"


@pytest.fixture
def demo_app(demo_module: ModuleType, tmp_path: Path) -> Flask:
    """The demo with its shipped tenant file and in-memory stores."""
    return demo_module.create_app(
        {
            "PASSKEY_TENANT_FILE": str(DEMO_TENANT),
            "PASSKEY_DATABASE_URL": "memory://",
            "SECRET_KEY": "test",
        },
        instance_path=tmp_path / "instance",
    )


@pytest.fixture
def browser_client(demo_app: Flask) -> FlaskClient:
    """A client on the demo's custom domain that holds a CSRF token in its session."""
    client = demo_app.test_client()
    client.environ_base["HTTP_HOST"] = "localhost"
    with client.session_transaction() as session:
        session["csrf"] = "csrf-token"
    return client


def sign_up(client: FlaskClient, email: str = "ann@example.com", **options: Any) -> dict[str, Any]:
    flow = PasskeyFlow(client, client_id="demo-spa", host="localhost", **options)
    return flow.sign_up({"email": email, "name": "Ann Example"}, scope="openid profile email")


def start_session(client: FlaskClient, id_token: str, csrf: str = "csrf-token") -> Any:
    """POST /session as the demo's page does: the ID token and the id of the passkey used."""
    sub = jwt.decode(id_token, options={"verify_signature": False})["sub"]
    users = client.application.extensions["passkey"].users
    credential_id = bytes_to_base64url(users.list_credentials(sub)[0].id)
    return client.post(
        "/session",
        json={"id_token": id_token, "credential_id": credential_id},
        headers={"X-CSRF-Token": csrf},
    )


def signed_in(client: FlaskClient) -> bool:
    """Whether the client's session cookie gets the account page."""
    answer = client.get("/account")
    return answer.status_code == 200


def test_the_shipped_tenant_serves_localhost_5000(
    demo_module: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PASSKEY_DEMO_TENANT", raising=False)
    app = demo_module.create_app(
        {"PASSKEY_DATABASE_URL": "memory://"}, instance_path=tmp_path / "instance"
    )
    state = app.extensions["passkey"]
    assert app.config["PASSKEY_TENANT_FILE"] == str(DEMO_TENANT)
    assert state.validator.tenant().custom_domains == ("localhost",)
    client = state.plugin_manager.hook.passkey_get_client(client_id="demo-spa")
    assert "http://localhost:5000" in client.web_origins
    assert (tmp_path / "instance" / "secret_key").read_text() == app.config["SECRET_KEY"]


def test_the_tenant_file_comes_from_the_environment(
    demo_module: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = tmp_path / "other.toml"
    tenant.write_text(DEMO_TENANT.read_text().replace("localhost:5000", "localhost:8123"))
    monkeypatch.setenv("PASSKEY_DEMO_TENANT", str(tenant))
    app = demo_module.create_app(
        {"PASSKEY_DATABASE_URL": "memory://", "SECRET_KEY": "x"}, instance_path=tmp_path
    )
    client = app.extensions["passkey"].plugin_manager.hook.passkey_get_client(client_id="demo-spa")
    assert client.web_origins == ("http://localhost:8123",)


def test_the_sign_in_page_offers_autofill_and_a_button(browser_client: FlaskClient) -> None:
    page = browser_client.get("/").get_data(as_text=True)
    assert 'autocomplete="username webauthn"' in page
    assert "Sign in with a passkey" in page
    assert 'data-client-id="demo-spa"' in page
    assert re.search(r'<meta name="csrf-token" content="csrf-token">', page)
    assert "Wrong address for passkeys" not in page


def test_another_host_gets_a_pointer_to_the_custom_domain(demo_app: Flask) -> None:
    page = demo_app.test_client().get("/signup", headers={"Host": "127.0.0.1:5000"})
    text = page.get_data(as_text=True)
    assert "Wrong address for passkeys" in text
    assert 'href="http://localhost:5000/signup"' in text


def test_a_verified_id_token_signs_in_and_shows_the_passkeys(browser_client: FlaskClient) -> None:
    tokens = sign_up(browser_client)
    answer = start_session(browser_client, tokens["id_token"])
    assert answer.status_code == 200, answer.get_json()
    sub = answer.get_json()["sub"]
    assert answer.get_json()["redirect"] == "/account"

    page = browser_client.get("/account").get_data(as_text=True)
    assert sub in page and "ann@example.com" in page and "Hello, Ann Example" in page
    assert page.count('class="passkey"') == 1
    assert browser_client.get("/").headers["Location"] == "/account"

    with browser_client.session_transaction() as session:
        csrf = session["csrf"]  # rotated at sign-in
    assert csrf != "csrf-token"
    out = browser_client.post("/signout", data={"csrf_token": csrf})
    assert out.status_code == 302 and out.headers["Location"] == "/"
    assert browser_client.get("/account").headers["Location"] == "/"


def test_synced_passkeys_are_labelled_synced(browser_client: FlaskClient) -> None:
    authenticator = SoftAuthenticator(backup_eligible=True, backed_up=True)
    tokens = sign_up(browser_client, authenticator=authenticator)
    assert start_session(browser_client, tokens["id_token"]).status_code == 200
    page = browser_client.get("/account").get_data(as_text=True)
    assert ">Synced<" in page
    # The token claims only what the server verified (RFC 8176 "pop"), not the BE flag.
    assert "proof of possession of the passkey" in page and "synced passkey" not in page


def test_the_session_route_needs_the_csrf_token(browser_client: FlaskClient) -> None:
    tokens = sign_up(browser_client)
    refused = start_session(browser_client, tokens["id_token"], csrf="wrong")
    assert refused.status_code == 403
    assert "reload" in refused.get_json()["error_description"]
    assert browser_client.get("/account").status_code == 302


def forged(claims: dict[str, Any], kid: str = "forged") -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"aud": "another-client"}, id="audience"),
        pytest.param({"iss": "https://evil.example/"}, id="issuer"),
        pytest.param({"exp": int(time.time()) - 3600}, id="expired"),
    ],
)
def test_id_tokens_for_another_audience_issuer_or_expired_are_refused(
    browser_client: FlaskClient, demo_app: Flask, change: dict[str, Any]
) -> None:
    tokens = sign_up(browser_client)
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False}) | change
    # Signed with the demo's real key: only the claim is wrong.
    token = demo_app.extensions["passkey"].grants.issuer.keys.sign(claims, typ="JWT")
    answer = start_session(browser_client, token)
    assert answer.status_code == 400
    assert answer.get_json()["error_description"].startswith("The sign-in could not be verified")


def test_an_id_token_signed_by_another_key_is_refused(browser_client: FlaskClient) -> None:
    tokens = sign_up(browser_client)
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    header = jwt.get_unverified_header(tokens["id_token"])
    for token in (forged(claims), forged(claims, kid=header["kid"])):
        assert start_session(browser_client, token).status_code == 400
    assert browser_client.get("/account").status_code == 302


def test_a_deleted_account_ends_the_session(
    browser_client: FlaskClient, demo_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = sign_up(browser_client)
    assert start_session(browser_client, tokens["id_token"]).status_code == 200
    # The store contract has no delete_user: make the store forget every user instead.
    monkeypatch.setattr(demo_app.extensions["passkey"].users, "get_user", lambda user_id: None)
    answer = browser_client.get("/account")
    assert answer.headers["Location"] == "/signup"


def test_a_cookie_copied_before_sign_out_stops_working_at_sign_out(
    browser_client: FlaskClient, demo_app: Flask
) -> None:
    assert start_session(browser_client, sign_up(browser_client)["id_token"]).status_code == 200
    cookie = browser_client.get_cookie("session")
    assert cookie is not None
    copy = demo_app.test_client()
    copy.environ_base["HTTP_HOST"] = "localhost"
    copy.set_cookie("session", cookie.value, domain="localhost")
    assert signed_in(copy)
    with browser_client.session_transaction() as session:
        csrf = session["csrf"]

    browser_client.post("/signout", data={"csrf_token": csrf})

    assert not signed_in(copy)


def test_deleting_the_passkey_used_to_sign_in_ends_the_session(
    browser_client: FlaskClient, demo_app: Flask
) -> None:
    tokens = sign_up(browser_client)
    assert start_session(browser_client, tokens["id_token"]).status_code == 200
    assert signed_in(browser_client)
    users = demo_app.extensions["passkey"].users
    sub = jwt.decode(tokens["id_token"], options={"verify_signature": False})["sub"]
    [credential] = users.list_credentials(sub)

    assert users.delete_credential(user_id=sub, credential_id=credential.id)

    assert not signed_in(browser_client)


def test_a_session_names_a_passkey_of_the_user_who_signed_in(
    browser_client: FlaskClient,
) -> None:
    tokens = sign_up(browser_client)
    for credential_id in (None, bytes_to_base64url(b"not-a-passkey-of-ann")):
        answer = browser_client.post(
            "/session",
            json={"id_token": tokens["id_token"], "credential_id": credential_id},
            headers={"X-CSRF-Token": "csrf-token"},
        )
        assert answer.status_code == 400, answer.get_json()
        assert not signed_in(browser_client)


@pytest.mark.parametrize(("scheme", "secure"), [("https", True), ("http", False)])
def test_the_session_cookie_is_secure_under_https(
    demo_app: Flask, scheme: str, secure: bool
) -> None:
    answer = demo_app.test_client().get("/", base_url=f"{scheme}://localhost")

    [cookie] = answer.headers.getlist("Set-Cookie")
    assert ("; Secure" in cookie) is secure
    assert "; HttpOnly" in cookie


# -- the factory example --------------------------------------------------------------------


def test_one_passkey_instance_serves_two_apps_with_their_own_stores() -> None:
    factory = load_factory()
    first = factory.create_app({"PASSKEY_DATABASE_URL": "memory://"})
    second = factory.create_app({"PASSKEY_DATABASE_URL": "memory://"})
    assert first.extensions["passkey"].users is not second.extensions["passkey"].users

    flow = PasskeyFlow(first.test_client(), client_id="acme-spa", host="localhost")
    flow.sign_up({"email": "ann@example.com"})
    assert len(first.extensions["passkey"].users.list_users()) == 1
    assert second.extensions["passkey"].users.list_users() == []


def test_the_factory_api_accepts_its_access_tokens_only() -> None:
    factory = load_factory()
    app = factory.create_app({"PASSKEY_DATABASE_URL": "memory://"})
    client = app.test_client()
    flow = PasskeyFlow(client, client_id="acme-spa", host="localhost")
    tokens = flow.sign_up({"email": "ann@example.com"}, audience=factory.API_AUDIENCE)
    me = client.get(
        "/api/me",
        headers={"Host": "localhost", "Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert me.status_code == 200, me.get_json()
    assert me.get_json()["client_id"] == "acme-spa"

    userinfo_token = flow.sign_in()["access_token"]  # audience: .../userinfo, not the API
    refused = client.get(
        "/api/me", headers={"Host": "localhost", "Authorization": f"Bearer {userinfo_token}"}
    )
    assert refused.status_code == 401
    assert client.get("/api/me", headers={"Host": "localhost"}).status_code == 401
