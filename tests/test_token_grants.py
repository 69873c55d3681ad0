"""The token endpoint's grants: the ones discovery advertises are the ones the OpenAPI document
describes and the endpoint accepts, and each runs its documented validation steps."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

import flask_passkey
from flask_passkey.models import REFRESH_TOKEN_GRANT, WEBAUTHN_GRANT
from tests.apps import HOST, make_app
from tests.support import assert_oauth_error, passkey_flow

#: The validation hooks that see a request's context, in the order they run.
CONTEXT_STEPS = (
    "passkey_authenticate_client",
    "passkey_check_first_party",
    "passkey_check_grant_type",
    "passkey_check_oidc_conformance",
    "passkey_check_realm",
    "passkey_check_organization",
)


class TokenSteps:
    """Records the context steps each ``/oauth/token`` request passes."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def clear(self) -> None:
        self.seen.clear()


def recording_plugin(steps: TokenSteps) -> object:
    """A plugin implementing every context step: each notes its name for token requests."""

    def recorder(hook: str) -> Any:
        def impl(self: object, context: Any) -> None:
            if context.request.endpoint == "token":
                steps.seen.append(hook)

        return flask_passkey.hookimpl(impl)

    return type("TokenStepRecorder", (), {hook: recorder(hook) for hook in CONTEXT_STEPS})()


@pytest.fixture(scope="module")
def steps() -> TokenSteps:
    return TokenSteps()


@pytest.fixture(scope="module")
def app(signing_key_pem: str, steps: TokenSteps) -> Flask:
    return make_app(
        rate_limit_enabled=False,
        plugins=[recording_plugin(steps)],
    )


def token_body_grants(document: dict[str, Any], media_type: str) -> list[str]:
    operation = document["paths"]["/oauth/token"]["post"]
    schema = operation["requestBody"]["content"][media_type]["schema"]
    return list(schema["discriminator"]["mapping"])


def test_discovery_the_document_and_the_endpoint_agree_on_the_grants(app: Flask) -> None:
    client = app.test_client()
    configuration = client.get("/.well-known/openid-configuration", headers=HOST).get_json()
    document = client.get("/passkey/openapi.json", headers=HOST).get_json()

    advertised = configuration["grant_types_supported"]
    assert advertised == [WEBAUTHN_GRANT, REFRESH_TOKEN_GRANT]
    assert token_body_grants(document, "application/json") == advertised
    assert token_body_grants(document, "application/x-www-form-urlencoded") == advertised
    for grant_type in advertised:
        # The grant's own schema answers: its required fields are missing.
        response = client.post(
            "/oauth/token", json={"grant_type": grant_type, "client_id": "spa"}, headers=HOST
        )
        assert_oauth_error(response, 400, "invalid_request")
        assert "Missing data for required field" in response.get_json()["error_description"]


def test_a_grant_type_not_advertised_is_unsupported(app: Flask) -> None:
    response = app.test_client().post(
        "/oauth/token",
        json={"grant_type": "password", "client_id": "spa", "username": "ann"},
        headers=HOST,
    )

    assert_oauth_error(response, 400, "unsupported_grant_type")
    assert response.get_json()["error_description"] == "Unsupported grant_type 'password'."


def test_the_passkey_grant_runs_the_client_steps(app: Flask, steps: TokenSteps) -> None:
    flow = passkey_flow(app, "refreshing")
    flow.sign_up({"email": "grants-steps@acme.test"})
    steps.clear()

    flow.sign_in()

    assert steps.seen == list(CONTEXT_STEPS[:4])


def test_the_passkey_grant_checks_the_realm_and_organization_it_names(
    app: Flask, steps: TokenSteps
) -> None:
    flow = passkey_flow(app, "refreshing")
    flow.sign_up({"email": "grants-named@acme.test"})
    started = flow.challenge().get_json()
    assertion = flow.authenticator.get(started["authn_params_public_key"], origin=flow.origin)
    steps.clear()

    flow.token(
        started["auth_session"],
        assertion,
        realm="Username-Password-Authentication",
        organization="org_acme",
    )

    # The challenge named no organization: whatever the answer, both named steps ran first.
    assert steps.seen == list(CONTEXT_STEPS)


def test_the_refresh_token_grant_skips_the_passkey_grant_type_step(
    app: Flask, steps: TokenSteps
) -> None:
    flow = passkey_flow(app, "refreshing")
    tokens = flow.sign_up({"email": "grants-refresh@acme.test"}, scope="openid offline_access")
    steps.clear()

    response = app.test_client().post(
        "/oauth/token",
        json={
            "grant_type": REFRESH_TOKEN_GRANT,
            "client_id": "refreshing",
            "refresh_token": tokens["refresh_token"],
            # Not fields of this grant: ignored, and no step runs for them.
            "realm": "partners",
            "organization": "org_acme",
        },
        headers=HOST,
    )

    assert response.status_code == 200, response.get_json()
    assert steps.seen == [
        "passkey_authenticate_client",
        "passkey_check_first_party",
        "passkey_check_oidc_conformance",
    ]
