"""``Passkey.require_token``: the host app's own routes accept this server's access tokens as
``/userinfo`` does, show them as ``current_token``, and refuse every other request with the
API's JSON error and an RFC 6750 / RFC 9449 challenge (never the view, never a 500)."""

from __future__ import annotations

import base64
import copy
import json
import time
from typing import Any

import jwt as pyjwt
import pytest
from flask import Blueprint, Flask, jsonify

from flask_passkey import (
    BackendUnavailable,
    Passkey,
    client_ip,
    current_token,
    known_clients,
)
from flask_passkey.testing import DPoPKey, PasskeyFlow
from tests.apps import (
    API_AUDIENCE,
    CUSTOM_DOMAIN,
    DB_CONNECTION,
    REFRESH_GRANT,
    FakeClock,
    tenant_data,
)
from tests.support import assert_oauth_error, new_email

OTHER_DOMAIN = "login.acme.example"
OTHER_API = "https://billing.acme.test/"
ORDERS_CLIENT = "orders-spa"
#: The extension, created once for every app of this module (the app-factory pattern): its
#: decorators are applied at import time, before any app exists.
passkey = Passkey()
api = Blueprint("acme_api", __name__, url_prefix="/api")


def shown() -> Any:
    """What a protected view sees of the token it accepted."""
    return jsonify(
        sub=current_token.user.id,
        email=current_token.user.email,
        client_id=current_token.client_id,
        scope=list(current_token.scope),
        aud=current_token.claims["aud"],
    )


@api.get("/me")
@passkey.require_token(audience=API_AUDIENCE)
def me() -> Any:
    return shown()


@api.get("/orders")
@passkey.require_token("read:orders", audience=API_AUDIENCE)
def list_orders() -> Any:
    return shown()


@api.post("/orders")
@passkey.require_token(["read:orders", "write:orders"], audience=API_AUDIENCE)
def add_order() -> Any:
    return shown()


@api.get("/anything")
@passkey.require_token()
def any_api() -> Any:
    return shown()


def orders_tenant() -> dict[str, Any]:
    """tenant_data() on two custom domains, with a client whose refresh tokens get API
    tokens with the orders scopes (Auth0's refresh-token policies)."""
    tenant = tenant_data()
    tenant["custom_domains"] = [CUSTOM_DOMAIN, OTHER_DOMAIN]
    tenant["clients"].append(
        {
            "client_id": ORDERS_CLIENT,
            "connections": [DB_CONNECTION],
            "grant_types": ["urn:okta:params:oauth:grant-type:webauthn", REFRESH_GRANT],
            "refresh_token": {
                "policies": [
                    {"audience": API_AUDIENCE, "scope": ["read:orders", "write:orders"]},
                ]
            },
        }
    )
    return tenant


def create_app(clock: FakeClock, signing_key_pem: str, **config: Any) -> Flask:
    config = {
        "tenant": copy.deepcopy(orders_tenant()),
        "database_url": "memory://",
        "signing_keys": [signing_key_pem],
        "rate_limit_enabled": False,
        "audiences": [API_AUDIENCE, OTHER_API],
        **config,
    }
    app = Flask(__name__)
    app.config["TESTING"] = True
    app.config.update({f"PASSKEY_{key.upper()}": value for key, value in config.items()})
    Passkey(clock=clock).init_app(app)  # another instance than the decorators': any will do
    app.register_blueprint(api)
    return app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
def app(clock: FakeClock, signing_key_pem: str) -> Flask:
    return create_app(clock, signing_key_pem)


def flow(app: Flask, host: str = CUSTOM_DOMAIN, **kwargs: Any) -> PasskeyFlow:
    return PasskeyFlow(app.test_client(), client_id=ORDERS_CLIENT, host=host, **kwargs)


def call(
    app: Flask,
    path: str,
    authorization: str | None = None,
    *,
    method: str = "GET",
    host: str = CUSTOM_DOMAIN,
    **headers: str,
) -> Any:
    if authorization is not None:
        headers["Authorization"] = authorization
    return app.test_client().open(
        path, method=method, headers={"Host": host, **headers}, base_url=f"https://{CUSTOM_DOMAIN}"
    )


def api_token(app: Flask, scope: str | None = None, host: str = CUSTOM_DOMAIN) -> str:
    """An access token for API_AUDIENCE with the orders scopes of the policy (all of them,
    or those of ``scope``), from a refresh of a new user's sign-up."""
    signing_up = flow(app, host)
    tokens = signing_up.sign_up({"email": new_email()}, scope="openid email offline_access")
    body: dict[str, Any] = {
        "grant_type": REFRESH_GRANT,
        "client_id": ORDERS_CLIENT,
        "refresh_token": tokens["refresh_token"],
        "audience": API_AUDIENCE,
    }
    if scope is not None:
        body["scope"] = scope
    response = signing_up.client.post("/oauth/token", json=body, headers={"Host": host})
    assert response.status_code == 200, response.get_json()
    token: str = response.get_json()["access_token"]
    return token


def assert_invalid_token(response: Any, description: str, scheme: str = "Bearer") -> None:
    assert_oauth_error(response, 401, "invalid_token")
    assert description in response.get_json()["error_description"]
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(f'{scheme} error="invalid_token", error_description="'), challenge


# -- accepted tokens ---------------------------------------------------------------------------


def test_an_api_token_reaches_the_view_which_sees_its_user_and_claims(app: Flask) -> None:
    email = new_email()
    tokens = flow(app).sign_up({"email": email}, scope="openid email", audience=API_AUDIENCE)

    response = call(app, "/api/me", f"Bearer {tokens['access_token']}")

    assert response.status_code == 200, response.get_json()
    seen = response.get_json()
    assert seen["email"] == email
    assert (
        seen["sub"] == pyjwt.decode(tokens["id_token"], options={"verify_signature": False})["sub"]
    )
    assert seen["client_id"] == ORDERS_CLIENT
    assert seen["scope"] == ["openid", "email"]
    assert seen["aud"] == API_AUDIENCE


def test_a_token_with_the_route_s_scopes_is_accepted(app: Flask) -> None:
    token = api_token(app)

    assert call(app, "/api/orders", f"Bearer {token}").status_code == 200
    added = call(app, "/api/orders", f"Bearer {token}", method="POST")
    assert added.status_code == 200, added.get_json()
    assert {"read:orders", "write:orders"} <= set(added.get_json()["scope"])


def test_without_audience_any_of_passkey_audiences_is_accepted(app: Flask) -> None:
    api = flow(app).sign_up({"email": new_email()}, audience=API_AUDIENCE)["access_token"]
    billing = flow(app).sign_up({"email": new_email()}, audience=OTHER_API)["access_token"]
    userinfo = flow(app).sign_up({"email": new_email()})["access_token"]

    assert call(app, "/api/anything", f"Bearer {api}").get_json()["aud"] == API_AUDIENCE
    assert call(app, "/api/anything", f"Bearer {billing}").get_json()["aud"] == OTHER_API
    assert_invalid_token(call(app, "/api/anything", f"Bearer {userinfo}"), "audience")


def test_a_dpop_bound_token_is_accepted_with_a_proof_of_its_key(
    app: Flask, clock: FakeClock
) -> None:
    key = DPoPKey(clock=clock)
    token = flow(app, dpop=key).sign_up({"email": new_email()}, audience=API_AUDIENCE)[
        "access_token"
    ]
    url = f"https://{CUSTOM_DOMAIN}/api/me"

    response = call(app, "/api/me", f"DPoP {token}", DPoP=key.proof("GET", url, access_token=token))

    assert response.status_code == 200, response.get_json()


# -- refused tokens ----------------------------------------------------------------------------


def test_a_token_without_a_scope_of_the_route_gets_403_insufficient_scope(app: Flask) -> None:
    reader = api_token(app, scope="read:orders")

    response = call(app, "/api/orders", f"Bearer {reader}", method="POST")

    assert_oauth_error(response, 403, "insufficient_scope")
    assert "write:orders" in response.get_json()["error_description"]
    assert response.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_scope", scope="read:orders write:orders"'
    )
    plain = flow(app).sign_up({"email": new_email()}, audience=API_AUDIENCE)["access_token"]
    assert_oauth_error(call(app, "/api/orders", f"Bearer {plain}"), 403, "insufficient_scope")


def test_a_token_for_another_audience_is_refused(app: Flask) -> None:
    userinfo = flow(app).sign_up({"email": new_email()})["access_token"]
    billing = flow(app).sign_up({"email": new_email()}, audience=OTHER_API)["access_token"]

    assert_invalid_token(call(app, "/api/me", f"Bearer {userinfo}"), "audience")
    assert_invalid_token(call(app, "/api/me", f"Bearer {billing}"), "audience")


def test_an_expired_token_is_refused(app: Flask, clock: FakeClock) -> None:
    token = flow(app).sign_up({"email": new_email()}, audience=API_AUDIENCE)["access_token"]
    assert call(app, "/api/me", f"Bearer {token}").status_code == 200

    clock.advance(app.config["PASSKEY_ACCESS_TOKEN_LIFETIME"] + 1)

    assert_invalid_token(call(app, "/api/me", f"Bearer {token}"), "expired")


def test_a_token_of_another_custom_domain_is_refused(app: Flask) -> None:
    there = flow(app, OTHER_DOMAIN).sign_up({"email": new_email()}, audience=API_AUDIENCE)
    token = there["access_token"]
    assert call(app, "/api/me", f"Bearer {token}", host=OTHER_DOMAIN).status_code == 200

    assert_invalid_token(call(app, "/api/me", f"Bearer {token}"), "issuer")
    assert_invalid_token(call(app, "/api/me", f"Bearer {token}", host="acme.auth0.com"), "issuer")


def test_a_dpop_bound_token_without_its_proof_is_refused(app: Flask, clock: FakeClock) -> None:
    key = DPoPKey(clock=clock)
    token = flow(app, dpop=key).sign_up({"email": new_email()}, audience=API_AUDIENCE)[
        "access_token"
    ]
    url = f"https://{CUSTOM_DOMAIN}/api/me"

    as_bearer = call(app, "/api/me", f"Bearer {token}")
    assert_invalid_token(as_bearer, "DPoP", scheme="DPoP")
    no_proof = call(app, "/api/me", f"DPoP {token}")
    assert_oauth_error(no_proof, 401, "invalid_dpop_proof")
    assert no_proof.headers["WWW-Authenticate"].startswith('DPoP error="invalid_dpop_proof"')
    other_key = DPoPKey(clock=clock).proof("GET", url, access_token=token)
    assert_oauth_error(
        call(app, "/api/me", f"DPoP {token}", DPoP=other_key), 401, "invalid_dpop_proof"
    )
    wrong_url = key.proof("GET", f"https://{CUSTOM_DOMAIN}/api/orders", access_token=token)
    assert_oauth_error(
        call(app, "/api/me", f"DPoP {token}", DPoP=wrong_url), 401, "invalid_dpop_proof"
    )


def _b64(data: str) -> str:
    return base64.urlsafe_b64encode(data.encode()).rstrip(b"=").decode()


GARBAGE = [
    pytest.param(None, id="no-header"),
    pytest.param("", id="empty"),
    pytest.param("Bearer", id="scheme-only"),
    pytest.param("Basic dXNlcjpwYXNz", id="basic"),
    pytest.param("Bearer a b", id="two-tokens"),
    pytest.param("Bearer not-a-jwt", id="not-a-jwt"),
    pytest.param("Bearer a.b.c", id="three-dots"),
    pytest.param("Bearer " + "x" * 8000, id="long"),
    pytest.param("Bearer é.é.é", id="non-ascii"),
    pytest.param(f"Bearer {_b64('[' * 3000)}.{_b64('[' * 3000)}.c2ln", id="deep-json"),
    pytest.param(
        f"Bearer {_b64(json.dumps({'alg': 'RS256'}))}.{_b64('[' * 3000)}.c2ln", id="deep-payload"
    ),
    pytest.param(f"Bearer {_b64(json.dumps({'alg': 'none'}))}.{_b64('{}')}.", id="alg-none"),
    pytest.param("DPoP garbage", id="dpop-garbage"),
]


@pytest.mark.parametrize("path", ["/api/me", "/api/anything"])
@pytest.mark.parametrize("authorization", GARBAGE)
def test_garbage_gets_401_json_never_the_view(
    app: Flask, authorization: str | None, path: str
) -> None:
    response = call(app, path, authorization)

    assert_oauth_error(response, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"].split()[0] in ("Bearer", "DPoP")
    assert response.headers["Cache-Control"] == "no-store"


def test_a_malformed_host_gets_400_json(app: Flask) -> None:
    token = flow(app).sign_up({"email": new_email()}, audience=API_AUDIENCE)["access_token"]

    response = call(app, "/api/me", f"Bearer {token}", host="login.acme.test:99999")

    assert_oauth_error(response, 400, "invalid_request")


def test_a_store_down_gets_503_json(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    token = flow(app).sign_up({"email": new_email()}, audience=API_AUDIENCE)["access_token"]

    def down(user_id: str) -> None:
        raise BackendUnavailable("the database is down")

    with app.app_context():
        monkeypatch.setattr(passkey.user_store(), "get_user", down)

    assert_oauth_error(call(app, "/api/me", f"Bearer {token}"), 503, "temporarily_unavailable")


# -- set-up mistakes ---------------------------------------------------------------------------


def test_current_token_outside_a_protected_view_is_an_error(app: Flask) -> None:
    with app.test_request_context("/api/me"), pytest.raises(RuntimeError, match="require_token"):
        current_token.client_id  # noqa: B018


def test_a_default_audience_needs_passkey_audiences(clock: FakeClock, signing_key_pem: str) -> None:
    app = create_app(clock, signing_key_pem, audiences=[])

    with pytest.raises(RuntimeError, match="PASSKEY_AUDIENCES"):
        call(app, "/api/anything", "Bearer whatever")


def test_scope_and_audience_must_be_strings() -> None:
    with pytest.raises(TypeError):
        passkey.require_token(["read:orders", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        passkey.require_token(audience=[""])


# -- the extension's other public methods --------------------------------------------------------


def test_jwks_is_what_the_jwks_endpoint_publishes(app: Flask) -> None:
    published = call(app, "/.well-known/jwks.json").get_json()

    with app.app_context():
        assert passkey.jwks() == published
        passkey.jwks()["keys"].clear()  # a copy
        assert passkey.jwks() == published
    assert passkey.jwks(app) == published
    with pytest.raises(RuntimeError, match="No app"):
        passkey.jwks()


def test_an_extension_made_with_its_app_needs_no_app_context(signing_key_pem: str) -> None:
    app = Flask(__name__)
    app.config.update(
        PASSKEY_TENANT=orders_tenant(),
        PASSKEY_DATABASE_URL="memory://",
        PASSKEY_SIGNING_KEYS=[signing_key_pem],
    )
    bound = Passkey(app)

    assert bound.jwks()["keys"][0]["kty"] == "RSA"
    assert bound.tenant().custom_domains == (CUSTOM_DOMAIN, OTHER_DOMAIN)
    assert bound.user_store().list_users() == []
    assert bound.authenticator_name("00000000-0000-0000-0000-000000000000") is None
    assert ORDERS_CLIENT in [client.client_id for client in known_clients(app)]


def test_client_ip_is_the_request_s_as_flask_passkey_sees_it(
    clock: FakeClock, signing_key_pem: str
) -> None:
    app = create_app(clock, signing_key_pem, trusted_proxies=1)

    with app.test_request_context(
        "/", environ_base={"REMOTE_ADDR": "10.0.0.1"}, headers={"X-Forwarded-For": "203.0.113.9"}
    ):
        assert client_ip() == "203.0.113.9"
        assert [c.client_id for c in known_clients()] == [c.client_id for c in known_clients(app)]
