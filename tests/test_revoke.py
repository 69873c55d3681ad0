"""POST /oauth/revoke (RFC 7009): revokes a refresh token's family, authenticates the client as
the token endpoint does, and answers 200 with an empty body as Auth0 does, on every store."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests import test_refresh_tokens as refresh_tokens
from tests.apps import (
    BASIC_SECRET,
    CONFIDENTIAL_SECRET,
    CUSTOM_DOMAIN,
    FORM,
    HOST,
    OFFLINE,
    make_app,
    tenant_data,
)
from tests.support import assert_oauth_error, new_email, passkey_flow
from tests.test_refresh_tokens import AppMaker, assert_dead, renewed, signed_in
from tests.test_token_endpoint import basic, basic_sign_up

# The store-parametrized app factory of the refresh-token tests, and what it needs.
database, clock, make = refresh_tokens.database, refresh_tokens.clock, refresh_tokens.make


def revoke(client: FlaskClient, token: str, client_id: str = "refreshing", **body: Any) -> Any:
    return client.post(
        "/oauth/revoke", json={"client_id": client_id, "token": token, **body}, headers=HOST
    )


def assert_revoked_answer(response: Any) -> None:
    """Auth0's answer: 200, empty body."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_data() == b""


def test_revoking_a_token_ends_its_whole_family_and_only_it(make: AppMaker) -> None:
    app = make()
    flow, first = signed_in(app)
    _, bystander = signed_in(app)
    second = renewed(flow.client, first)["refresh_token"]

    # Revoking the spent one of a family is enough: the newest dies with it.
    assert_revoked_answer(revoke(flow.client, first, token_type_hint="refresh_token"))

    assert_dead(flow.client, second)
    assert renewed(flow.client, bystander)["refresh_token"]
    assert_revoked_answer(revoke(flow.client, second))  # again: still 200


def test_a_form_encoded_revocation_works(make: AppMaker) -> None:
    app = make()
    flow, token = signed_in(app)

    response = flow.client.post(
        "/oauth/revoke",
        data={"client_id": "refreshing", "token": token},
        content_type=FORM,
        headers=HOST,
    )

    assert_revoked_answer(response)
    assert_dead(flow.client, token)


@pytest.mark.parametrize("token", ["made-up", "x" * 8192])
def test_an_unknown_token_gets_200(make: AppMaker, token: str) -> None:
    assert_revoked_answer(revoke(make().test_client(), token))


def test_another_client_s_token_gets_200_and_stays_usable(make: AppMaker) -> None:
    app = make()
    flow, token = signed_in(app)

    assert_revoked_answer(revoke(flow.client, token, client_id="refreshing-2"))

    assert renewed(flow.client, token)["refresh_token"]


def test_a_confidential_client_authenticates_as_at_the_token_endpoint() -> None:
    tenant = tenant_data()
    confidential = next(c for c in tenant["clients"] if c["client_id"] == "confidential")
    confidential["grant_types"] = ["urn:okta:params:oauth:grant-type:webauthn", "refresh_token"]
    app = make_app(tenant=tenant)
    flow = passkey_flow(app, "confidential")
    token = flow.sign_up({"email": new_email()}, scope=OFFLINE)["refresh_token"]
    client = flow.client

    assert_oauth_error(revoke(client, token, "confidential"), 401, "invalid_client")
    wrong = revoke(client, token, "confidential", client_secret="wrong")
    assert_oauth_error(wrong, 401, "invalid_client")
    # The secret may come by HTTP Basic as well as in the body (as at the token endpoint).
    response = client.post(
        "/oauth/revoke", json={"token": token}, headers=basic("confidential", "wrong")
    )
    assert_oauth_error(response, 401, "invalid_client")
    assert renewed(client, token, "confidential", client_secret=CONFIDENTIAL_SECRET)

    token = flow.sign_in(scope=OFFLINE)["refresh_token"]
    answer = client.post(
        "/oauth/revoke", json={"token": token}, headers=basic("confidential", CONFIDENTIAL_SECRET)
    )
    assert_revoked_answer(answer)
    assert_oauth_error(
        client.post(
            "/oauth/token",
            json={
                "grant_type": "refresh_token",
                "refresh_token": token,
                "client_id": "confidential",
                "client_secret": CONFIDENTIAL_SECRET,
            },
            headers=HOST,
        ),
        400,
        "invalid_grant",
    )


def test_a_basic_client_revokes_with_http_basic() -> None:
    app = make_app()
    client, _, tokens = basic_sign_up(app)
    token = tokens["refresh_token"]

    response = client.post(
        "/oauth/revoke", json={"token": token}, headers=basic("basic", BASIC_SECRET)
    )

    assert_revoked_answer(response)
    refreshed = client.post(
        "/oauth/token",
        json={"grant_type": "refresh_token", "refresh_token": token},
        headers=basic("basic", BASIC_SECRET),
    )
    assert_oauth_error(refreshed, 400, "invalid_grant")


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        pytest.param({"client_id": "refreshing"}, 400, "invalid_request", id="no token"),
        pytest.param({"client_id": "refreshing", "token": ""}, 400, "invalid_request", id="empty"),
        pytest.param({"token": "t"}, 400, "invalid_request", id="no client_id"),
        pytest.param({"client_id": "nobody", "token": "t"}, 401, "invalid_client", id="client"),
        pytest.param(["token"], 400, "invalid_request", id="not an object"),
    ],
)
def test_a_malformed_revocation_gets_a_json_error(
    make: AppMaker, body: Any, status: int, error: str
) -> None:
    response = make().test_client().post("/oauth/revoke", json=body, headers=HOST)
    assert_oauth_error(response, status, error)


def test_other_methods_get_a_json_405(make: AppMaker) -> None:
    response = make().test_client().get("/oauth/revoke", headers=HOST)
    assert_oauth_error(response, 405, "invalid_request")
    assert response.headers["Allow"] == "POST"


def test_revocation_is_rate_limited_per_ip(make: AppMaker) -> None:
    client = make(rate_limit="2 per minute").test_client()
    assert [revoke(client, "t").status_code for _ in range(2)] == [200, 200]
    assert_oauth_error(revoke(client, "t"), 429, "too_many_requests")


def test_discovery_names_the_revocation_endpoint(make: AppMaker) -> None:
    response = make().test_client().get("/.well-known/openid-configuration", headers=HOST)
    config = response.get_json()
    assert config["revocation_endpoint"] == f"https://{CUSTOM_DOMAIN}/oauth/revoke"
    assert config["revocation_endpoint_auth_methods_supported"] == [
        "none",
        "client_secret_post",
        "client_secret_basic",
    ]
