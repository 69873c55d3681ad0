"""Sign-up membership is per organization: one that does not take members at sign-up refuses a
stranger's sign-up naming it, while its members still sign in with it."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.apps import USERINFO, make_app, tenant_data
from tests.support import (
    assert_oauth_error,
    find_user,
    new_email,
    passkey_flow,
    store_snapshot,
    verify_jwt,
)


@pytest.fixture(scope="module")
def app() -> Flask:
    tenant = tenant_data()
    tenant["organizations"].append(
        {"id": "org_closed", "name": "closed", "assign_membership_on_signup": False}
    )
    return make_app(tenant=tenant, rate_limit_enabled=False)


def test_a_strangers_sign_up_naming_a_closed_organization_gets_403_and_stores_nothing(
    app: Flask,
) -> None:
    before = store_snapshot(app)
    flow = passkey_flow(app, "org-allowed")

    response = flow.register({"email": new_email()}, organization="org_closed")

    assert_oauth_error(response, 403, "access_denied")
    assert store_snapshot(app) == before


def test_a_member_added_by_the_operator_signs_in_to_a_closed_organization(app: Flask) -> None:
    email = new_email()
    flow = passkey_flow(app, "org-allowed")
    flow.sign_up({"email": email})
    app.extensions["passkey"].users.add_member(
        organization_id="org_closed", user_id=find_user(app, email).id
    )

    tokens = flow.sign_in(organization="org_closed")

    assert (
        verify_jwt(flow.client, tokens["access_token"], audience=USERINFO)["org_id"] == "org_closed"
    )


def test_an_organization_takes_members_at_sign_up_by_default(app: Flask) -> None:
    flow = passkey_flow(app, "org-allowed")

    tokens = flow.sign_up({"email": new_email()}, organization="org_acme")

    assert (
        verify_jwt(flow.client, tokens["id_token"], audience="org-allowed")["org_id"] == "org_acme"
    )
