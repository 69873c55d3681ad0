"""POST /passkey/challenge: every status of the spec, the response shape and the stored session."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_passkey.core.client_secrets import hash_secret
from tests.apps import (
    CONFIDENTIAL_SECRET,
    CUSTOM_DOMAIN,
    DB_CONNECTION,
    DEFAULT_DOMAIN,
    FORM,
    FakeClock,
    make_app,
    tenant_data,
)
from tests.support import post_challenge, stable_error

JSON = "application/json"


def b64url_decode(value: str) -> bytes:
    assert re.fullmatch(r"[A-Za-z0-9_-]+", value), f"not unpadded base64url: {value!r}"
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@pytest.fixture(scope="module")
def api() -> FlaskClient:
    """A client of one app shared by the read-only tests (no rate limit, so no cross-talk)."""
    return make_app(rate_limit_enabled=False).test_client()


def assert_error(response: Any, status: int, error: str) -> None:
    """The response is ``status`` with exactly the documented JSON error body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == JSON
    body = response.get_json()
    assert set(body) == {"error", "error_description", "request_id"}
    assert body["error"] == error
    assert isinstance(body["error_description"], str) and body["error_description"]


def with_client(**overrides: Any) -> dict[str, Any]:
    """tenant_data() with overrides applied to the client ``spa``."""
    tenant = tenant_data()
    spa = next(c for c in tenant["clients"] if c["client_id"] == "spa")
    spa.update(overrides)
    return tenant


# -- 200 ---------------------------------------------------------------------------------------


def test_challenge_answers_exactly_auth_session_and_request_options(api: FlaskClient) -> None:
    response = post_challenge(api)

    assert response.status_code == 200
    assert response.mimetype == JSON
    body = response.get_json()
    assert set(body) == {"auth_session", "authn_params_public_key"}
    options = body["authn_params_public_key"]
    # No allowCredentials (usernameless login), nothing else either.
    assert set(options) == {"challenge", "timeout", "rpId", "userVerification"}
    assert options["userVerification"] == "preferred"


def test_auth_session_carries_at_least_128_bits(api: FlaskClient) -> None:
    auth_session = post_challenge(api).get_json()["auth_session"]

    # URL-safe alphabet (6 bits a character): 22 characters are 132 bits.
    assert re.fullmatch(r"[A-Za-z0-9_-]{22,}", auth_session)


def test_challenge_is_base64url_of_at_least_32_bytes(api: FlaskClient) -> None:
    options = post_challenge(api).get_json()["authn_params_public_key"]

    assert len(b64url_decode(options["challenge"])) >= 32


@pytest.mark.parametrize(("configured", "expected"), [(None, 60_000), (120_000, 120_000)])
def test_timeout_is_the_configured_challenge_timeout(configured: int | None, expected: int) -> None:
    app = make_app() if configured is None else make_app(challenge_timeout=configured)

    options = post_challenge(app.test_client()).get_json()["authn_params_public_key"]

    assert options["timeout"] == expected


def test_rp_id_is_the_custom_domain_the_request_came_on() -> None:
    tenant = tenant_data()
    tenant["custom_domains"] = [CUSTOM_DOMAIN, "id.acme.test"]
    client = make_app(tenant=tenant).test_client()

    for host in (CUSTOM_DOMAIN, "id.acme.test"):
        options = post_challenge(client, host=host).get_json()["authn_params_public_key"]
        assert options["rpId"] == host


def test_rp_id_is_the_tenant_rp_id_when_configured() -> None:
    tenant = tenant_data()
    tenant["rp_id"] = "acme.test"

    response = post_challenge(make_app(tenant=tenant).test_client())

    assert response.get_json()["authn_params_public_key"]["rpId"] == "acme.test"


def test_host_is_matched_case_insensitively_and_without_port(api: FlaskClient) -> None:
    response = post_challenge(api, host="LOGIN.Acme.Test:8443")

    assert response.status_code == 200
    assert response.get_json()["authn_params_public_key"]["rpId"] == CUSTOM_DOMAIN


def test_each_call_issues_a_fresh_session_and_challenge(api: FlaskClient) -> None:
    client = api
    bodies = [post_challenge(client).get_json() for _ in range(5)]

    assert len({b["auth_session"] for b in bodies}) == 5
    assert len({b["authn_params_public_key"]["challenge"] for b in bodies}) == 5


def test_unknown_top_level_fields_are_ignored(api: FlaskClient) -> None:
    body = {"client_id": "spa", "username": "alice@example.com", "extra": {"nested": [1, 2]}}

    response = post_challenge(api, body)

    assert response.status_code == 200


@pytest.mark.parametrize("field", ["realm", "organization", "client_secret"])
def test_null_optional_field_is_treated_as_omitted(api: FlaskClient, field: str) -> None:
    response = post_challenge(api, {"client_id": "spa", field: None})

    assert response.status_code == 200


def test_confidential_client_with_its_secret_gets_a_challenge(api: FlaskClient) -> None:
    body = {"client_id": "confidential", "client_secret": CONFIDENTIAL_SECRET}

    assert post_challenge(api, body).status_code == 200


def test_secret_stored_only_as_hash_authenticates_the_client() -> None:
    tenant = with_client(
        token_endpoint_auth_method="client_secret_post",
        client_secret_hash=hash_secret("hashed-only-secret"),
    )
    client = make_app(tenant=tenant).test_client()

    good = post_challenge(client, {"client_id": "spa", "client_secret": "hashed-only-secret"})
    wrong = post_challenge(client, {"client_id": "spa", "client_secret": "something-else"})
    # Whoever reads the stored hash must not be able to log in with it.
    the_hash = post_challenge(
        client, {"client_id": "spa", "client_secret": hash_secret("hashed-only-secret")}
    )

    assert good.status_code == 200
    assert_error(wrong, 401, "invalid_client")
    assert_error(the_hash, 401, "invalid_client")


# -- 400 ---------------------------------------------------------------------------------------


BAD_REQUESTS = [
    # Step 2: host.
    pytest.param({"host": DEFAULT_DOMAIN}, "invalid_request", id="default-domain"),
    pytest.param({"host": "evil.test"}, "invalid_request", id="unknown-host"),
    # Step 3: body.
    pytest.param({"data": "client_id=spa", "content_type": FORM}, "invalid_request", id="form"),
    pytest.param(
        {"data": "{client_id: spa", "content_type": JSON}, "invalid_request", id="bad-json"
    ),
    pytest.param({"data": "", "content_type": JSON}, "invalid_request", id="empty-body"),
    pytest.param({"data": "null", "content_type": JSON}, "invalid_request", id="json-null"),
    pytest.param({"body": [{"client_id": "spa"}]}, "invalid_request", id="array"),
    pytest.param({"body": "spa"}, "invalid_request", id="string"),
    pytest.param({"body": 42}, "invalid_request", id="number"),
    pytest.param({"body": {}}, "invalid_request", id="client_id-missing"),
    pytest.param({"body": {"client_id": 42}}, "invalid_request", id="client_id-number"),
    pytest.param({"body": {"client_id": ["spa"]}}, "invalid_request", id="client_id-list"),
    pytest.param({"body": {"client_id": None}}, "invalid_request", id="client_id-null"),
    pytest.param({"body": {"client_id": ""}}, "invalid_request", id="client_id-empty"),
    pytest.param({"body": {"client_id": "spa", "realm": 7}}, "invalid_request", id="realm-number"),
    pytest.param(
        {"body": {"client_id": "spa", "realm": {"name": DB_CONNECTION}}},
        "invalid_request",
        id="realm-object",
    ),
    pytest.param(
        {"body": {"client_id": "org-allowed", "organization": 7}},
        "invalid_request",
        id="organization-number",
    ),
    pytest.param(
        {"body": {"client_id": "org-allowed", "organization": ["org_acme"]}},
        "invalid_request",
        id="organization-list",
    ),
    # Step 5: client settings.
    pytest.param({"body": {"client_id": "third-party"}}, "unauthorized_client", id="third-party"),
    pytest.param({"body": {"client_id": "no-grant"}}, "unauthorized_client", id="no-grant"),
    pytest.param({"body": {"client_id": "legacy"}}, "unauthorized_client", id="not-oidc"),
    # Step 6: realm.
    pytest.param(
        {"body": {"client_id": "spa", "realm": "nope"}}, "invalid_request", id="unknown-realm"
    ),
    pytest.param(
        {"body": {"client_id": "spa", "realm": "elsewhere"}},
        "invalid_request",
        id="realm-not-enabled-for-client",
    ),
    pytest.param(
        {"body": {"client_id": "spa", "realm": "no-passkeys"}},
        "invalid_request",
        id="realm-without-passkeys",
    ),
    # Step 7: organization.
    pytest.param(
        {"body": {"client_id": "org-required"}}, "invalid_request", id="organization-missing"
    ),
    pytest.param(
        {"body": {"client_id": "spa", "organization": "org_acme"}},
        "invalid_request",
        id="organization-sent-to-deny-client",
    ),
    pytest.param(
        {"body": {"client_id": "org-allowed", "organization": "org_nope"}},
        "invalid_request",
        id="unknown-organization",
    ),
]


@pytest.mark.parametrize(("request_args", "error"), BAD_REQUESTS)
def test_invalid_request_gets_400(
    api: FlaskClient, request_args: dict[str, Any], error: str
) -> None:
    response = post_challenge(api, **request_args)

    assert_error(response, 400, error)


def test_realm_and_organization_that_exist_are_accepted(api: FlaskClient) -> None:
    body = {"client_id": "org-allowed", "realm": "partners", "organization": "org_acme"}

    assert post_challenge(api, body).status_code == 200


# -- 401 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"client_id": "nobody"}, id="unknown-client"),
        pytest.param({"client_id": "confidential"}, id="confidential-without-secret"),
        pytest.param(
            {"client_id": "confidential", "client_secret": None}, id="confidential-null-secret"
        ),
        pytest.param(
            {"client_id": "confidential", "client_secret": CONFIDENTIAL_SECRET + "x"},
            id="wrong-secret",
        ),
        pytest.param(
            {"client_id": "confidential", "client_secret": CONFIDENTIAL_SECRET[:-1]},
            id="secret-prefix",
        ),
    ],
)
def test_bad_client_credentials_get_401_invalid_client(
    api: FlaskClient, body: dict[str, Any]
) -> None:
    assert_error(post_challenge(api, body), 401, "invalid_client")


# -- 404 ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def disabled_api() -> FlaskClient:
    tenant = tenant_data()
    tenant["passkeys_enabled"] = False
    return make_app(tenant=tenant, rate_limit_enabled=False).test_client()


@pytest.mark.parametrize(
    "request_args",
    [
        pytest.param({}, id="valid-request"),
        pytest.param({"host": DEFAULT_DOMAIN}, id="default-domain"),
        pytest.param({"host": "evil.test"}, id="unknown-host"),
        pytest.param({"data": "not json", "content_type": "text/plain"}, id="bad-body"),
        pytest.param({"host": DEFAULT_DOMAIN, "data": "[", "content_type": JSON}, id="all-bad"),
        pytest.param({"body": {"client_id": "nobody"}}, id="unknown-client"),
        pytest.param({"body": {"client_id": "third-party"}}, id="third-party"),
    ],
)
def test_tenant_with_passkeys_disabled_answers_404_before_anything_else(
    disabled_api: FlaskClient, request_args: dict[str, Any]
) -> None:
    response = post_challenge(disabled_api, **request_args)

    assert_error(response, 404, "not_found")


# -- 413, 405 ----------------------------------------------------------------------------------


def padded_body(size: int) -> str:
    """A valid challenge body of exactly ``size`` bytes (padded with an ignored field)."""
    body = {"client_id": "spa", "username": ""}
    body["username"] = "x" * (size - len(json.dumps(body)))
    text = json.dumps(body)
    assert len(text.encode()) == size
    return text


def test_body_over_max_body_size_gets_413() -> None:
    client = make_app(max_body_size=2048).test_client()

    response = post_challenge(client, data=padded_body(2049), content_type=JSON)

    assert_error(response, 413, "invalid_request")


def test_body_of_exactly_max_body_size_is_accepted() -> None:
    client = make_app(max_body_size=2048).test_client()

    response = post_challenge(client, data=padded_body(2048), content_type=JSON)

    assert response.status_code == 200


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_other_methods_get_405_json_with_allow_post(api: FlaskClient, method: str) -> None:
    response = api.open("/passkey/challenge", method=method, headers={"Host": CUSTOM_DOMAIN})

    assert_error(response, 405, "invalid_request")
    assert response.headers["Allow"] == "POST"


# -- validation order --------------------------------------------------------------------------


def test_default_domain_is_refused_before_the_body_is_read(api: FlaskClient) -> None:
    client = api
    bad_body = post_challenge(client, host=DEFAULT_DOMAIN, data="[", content_type=JSON)
    good_body = post_challenge(client, host=DEFAULT_DOMAIN)

    assert_error(bad_body, 400, "invalid_request")
    assert stable_error(bad_body) == stable_error(good_body)
    assert "custom domain" in bad_body.get_json()["error_description"]


def test_malformed_body_is_refused_before_the_client_is_looked_up(api: FlaskClient) -> None:
    response = post_challenge(api, {"client_id": "nobody", "realm": 7})

    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            {"client_id": "nobody", "realm": "nope", "organization": "org_nope"},
            id="unknown-client",
        ),
        pytest.param({"client_id": "confidential", "realm": "nope"}, id="missing-secret"),
    ],
)
def test_client_authentication_fails_with_401_before_realm_errors(
    api: FlaskClient, body: dict[str, Any]
) -> None:
    assert_error(post_challenge(api, body), 401, "invalid_client")


def test_unauthenticated_third_party_client_gets_401_not_unauthorized_client() -> None:
    tenant = with_client(
        is_first_party=False,
        token_endpoint_auth_method="client_secret_post",
        client_secret="x" * 16,
    )

    response = post_challenge(make_app(tenant=tenant).test_client())

    assert_error(response, 401, "invalid_client")


def test_client_settings_are_checked_before_the_realm(api: FlaskClient) -> None:
    response = post_challenge(api, {"client_id": "third-party", "realm": "nope"})

    assert_error(response, 400, "unauthorized_client")


def test_realm_is_checked_before_the_organization(api: FlaskClient) -> None:
    client = api
    both_wrong = post_challenge(client, {"client_id": "org-required", "realm": "nope"})
    realm_wrong = post_challenge(client, {"client_id": "org-allowed", "realm": "nope"})

    assert_error(both_wrong, 400, "invalid_request")
    assert stable_error(both_wrong) == stable_error(realm_wrong)


# -- the stored session ------------------------------------------------------------------------


def issue(app: Flask, body: dict[str, Any] | None = None, **kwargs: Any) -> tuple[str, bytes]:
    response = post_challenge(app.test_client(), body or {"client_id": "spa"}, **kwargs)
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    return data["auth_session"], b64url_decode(data["authn_params_public_key"]["challenge"])


def test_session_binds_challenge_client_default_realm_rp_id_and_expiry(clock: FakeClock) -> None:
    app = make_app(clock=clock)
    auth_session, challenge = issue(app)

    session = app.extensions["passkey"].sessions.take(auth_session, now=clock.now)

    assert session is not None
    assert session.challenge == challenge
    assert session.client_id == "spa"
    assert session.connection == DB_CONNECTION
    assert session.organization_id is None
    assert session.rp_id == CUSTOM_DOMAIN
    assert session.operation == "login"
    assert session.expires_at == clock.now + 60


def test_session_binds_the_realm_and_organization_sent(clock: FakeClock) -> None:
    app = make_app(clock=clock)
    auth_session, _ = issue(
        app, {"client_id": "org-allowed", "realm": "partners", "organization": "org_acme"}
    )

    session = app.extensions["passkey"].sessions.take(auth_session, now=clock.now)

    assert session is not None
    assert (session.client_id, session.connection, session.organization_id) == (
        "org-allowed",
        "partners",
        "org_acme",
    )


def test_session_uses_the_clients_default_connection_when_realm_omitted(clock: FakeClock) -> None:
    app = make_app(clock=clock, tenant=with_client(default_connection="partners"))
    auth_session, _ = issue(app)

    session = app.extensions["passkey"].sessions.take(auth_session, now=clock.now)

    assert session is not None and session.connection == "partners"


def test_session_binds_the_tenant_rp_id(clock: FakeClock) -> None:
    tenant = tenant_data()
    tenant["rp_id"] = "acme.test"
    app = make_app(clock=clock, tenant=tenant)
    auth_session, _ = issue(app)

    session = app.extensions["passkey"].sessions.take(auth_session, now=clock.now)

    assert session is not None and session.rp_id == "acme.test"


def test_session_expiry_follows_the_configured_timeout(clock: FakeClock) -> None:
    app = make_app(clock=clock, challenge_timeout=5_000)
    auth_session, _ = issue(app)

    session = app.extensions["passkey"].sessions.take(auth_session, now=clock.now)

    assert session is not None and session.expires_at == clock.now + 5


def test_session_is_returned_until_its_timeout_and_not_after(clock: FakeClock) -> None:
    app = make_app(clock=clock)
    store = app.extensions["passkey"].sessions
    just_in_time, _ = issue(app)
    too_late, _ = issue(app)

    assert store.take(just_in_time, now=clock.now + 59.999) is not None
    assert store.take(too_late, now=clock.now + 60) is None


def test_session_can_be_taken_only_once(clock: FakeClock) -> None:
    app = make_app(clock=clock)
    store = app.extensions["passkey"].sessions
    auth_session, _ = issue(app)

    assert store.take(auth_session, now=clock.now) is not None
    assert store.take(auth_session, now=clock.now) is None


@pytest.mark.parametrize(
    "request_args",
    [
        pytest.param({"host": DEFAULT_DOMAIN}, id="400-domain"),
        pytest.param({"body": {"client_id": "third-party"}}, id="400-client"),
        pytest.param({"body": {"client_id": "nobody"}}, id="401"),
        pytest.param({"data": padded_body(70_000), "content_type": JSON}, id="413"),
    ],
)
def test_rejected_request_stores_no_session(request_args: dict[str, Any]) -> None:
    app = make_app()
    store = app.extensions["passkey"].sessions
    client = app.test_client()
    issue(app)

    response = post_challenge(client, **request_args)

    assert response.status_code >= 400
    assert len(store) == 1
