"""Organization names in the API (Auth0's tenant setting
``allow_organization_name_in_authentication_api``): with it on, ``organization`` may be an
organization's id or its name (any case), and tokens carry ``org_name`` with ``org_id``; with it
off, only ids, and no ``org_name``."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

import flask_passkey
from flask_passkey import ConfigurationError
from flask_passkey.models import WEBAUTHN_GRANT, Organization
from tests.apps import CUSTOM_DOMAIN, ORIGIN, REFRESH_GRANT, USERINFO, make_app, tenant_data
from tests.support import assert_oauth_error, new_email, passkey_flow, verify_jwt


def names_tenant(*, allowed: bool = True) -> dict[str, Any]:
    """tenant_data() with organization names allowed (or not), a second organization,
    one without a name, and the org-allowed client able to refresh."""
    tenant = tenant_data()
    tenant["allow_organization_name_in_authentication_api"] = allowed
    tenant["organizations"] += [{"id": "org_globex", "name": "globex"}, {"id": "org_unnamed"}]
    client = next(c for c in tenant["clients"] if c["client_id"] == "org-allowed")
    client["grant_types"] = [WEBAUTHN_GRANT, REFRESH_GRANT]
    return tenant


@pytest.fixture(scope="module")
def app() -> Flask:
    return make_app(tenant=names_tenant(), rate_limit_enabled=False)


@pytest.fixture(scope="module")
def ids_only() -> Flask:
    return make_app(
        tenant=names_tenant(allowed=False),
        rate_limit_enabled=False,
    )


def claims(app: Flask, tokens: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The verified ID and access token claims of a token response of client org-allowed."""
    client = app.test_client()
    return (
        verify_jwt(client, tokens["id_token"], audience="org-allowed"),
        verify_jwt(client, tokens["access_token"], audience=USERINFO),
    )


@pytest.mark.parametrize("sent", ["acme", "ACME", "Acme", "org_acme"])
def test_the_organization_may_be_named_by_name_in_any_case_or_by_id(app: Flask, sent: str) -> None:
    flow = passkey_flow(app, "org-allowed")

    tokens = flow.sign_up({"email": new_email()}, organization=sent)

    for token in claims(app, tokens):
        assert token["org_id"] == "org_acme"
        assert token["org_name"] == "acme"
    # The membership is the organization's (by id), whatever the sign-up called it.
    assert flow.sign_in(organization="org_acme")["id_token"]
    assert flow.sign_in(organization="acme")["id_token"]


def test_an_unknown_name_is_400_before_anything_is_stored(app: Flask) -> None:
    flow = passkey_flow(app, "org-allowed")
    users = app.extensions["passkey"].users
    before = users.list_users(limit=1000)

    response = flow.register({"email": new_email()}, organization="initech")

    assert_oauth_error(response, 400, "invalid_request")
    assert users.list_users(limit=1000) == before


def test_the_token_endpoint_accepts_the_sessions_organization_by_name_or_id_only(
    app: Flask,
) -> None:
    flow = passkey_flow(app, "org-allowed")
    flow.sign_up({"email": new_email()}, organization="acme")

    def redeem(**token: Any) -> Any:
        started = flow.challenge(organization="org_acme").get_json()
        assertion = flow.authenticator.get(started["authn_params_public_key"], origin=ORIGIN)
        return flow.token(started["auth_session"], assertion, **token)

    assert redeem(organization="ACME").status_code == 200
    assert redeem(organization="org_acme").status_code == 200
    assert redeem().status_code == 200
    assert_oauth_error(redeem(organization="globex"), 400, "invalid_grant")
    assert_oauth_error(redeem(organization="initech"), 400, "invalid_request")


def test_a_refresh_keeps_org_name(app: Flask) -> None:
    flow = passkey_flow(app, "org-allowed")
    tokens = flow.sign_up(
        {"email": new_email()}, organization="acme", scope="openid offline_access"
    )

    refreshed = flow.client.post(
        "/oauth/token",
        json={
            "grant_type": REFRESH_GRANT,
            "client_id": "org-allowed",
            "refresh_token": tokens["refresh_token"],
        },
        headers={"Host": CUSTOM_DOMAIN},
    )

    assert refreshed.status_code == 200, refreshed.get_json()
    for token in claims(app, refreshed.get_json()):
        assert (token["org_id"], token["org_name"]) == ("org_acme", "acme")


def test_an_organization_without_a_name_gives_only_org_id(app: Flask) -> None:
    tokens = passkey_flow(app, "org-allowed").sign_up(
        {"email": new_email()}, organization="org_unnamed"
    )

    for token in claims(app, tokens):
        assert token["org_id"] == "org_unnamed"
        assert "org_name" not in token


def test_without_the_setting_names_are_unknown_and_tokens_carry_no_org_name(
    ids_only: Flask,
) -> None:
    flow = passkey_flow(ids_only, "org-allowed")

    refused = flow.register({"email": new_email()}, organization="acme")
    tokens = flow.sign_up({"email": new_email()}, organization="org_acme")

    assert_oauth_error(refused, 400, "invalid_request")
    assert "Unknown organization 'acme'" in refused.get_json()["error_description"]
    for token in claims(ids_only, tokens):
        assert token["org_id"] == "org_acme"
        assert "org_name" not in token


def test_names_equal_but_for_case_are_a_configuration_error() -> None:
    tenant = names_tenant()
    tenant["organizations"].append({"id": "org_acme_2", "name": "Acme"})

    with pytest.raises(ConfigurationError) as raised:
        make_app(tenant=tenant)
    assert raised.value.problems == (
        "organizations[3].name: 'Acme' is already the name of organizations[0] "
        "(names are matched ignoring case).",
    )


class Directory:
    """An operator's organizations, kept outside the tenant file."""

    @flask_passkey.hookimpl
    def passkey_get_organization(self, organization_id: str) -> Organization | None:
        return Organization("org_hooli", "hooli") if organization_id == "org_hooli" else None

    @flask_passkey.hookimpl
    def passkey_get_organization_by_name(self, name: str) -> Organization | None:
        return Organization("org_hooli", "hooli") if name.casefold() == "hooli" else None


def test_a_plugin_resolves_names_of_its_own_organizations() -> None:
    app = make_app(tenant=names_tenant(), plugins=[Directory()])

    tokens = passkey_flow(app, "org-allowed").sign_up({"email": new_email()}, organization="Hooli")

    for token in claims(app, tokens):
        assert (token["org_id"], token["org_name"]) == ("org_hooli", "hooli")
