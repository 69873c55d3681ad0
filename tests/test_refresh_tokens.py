"""Refresh tokens: rotation, reuse detection and the reuse interval, absolute and inactivity
expiry, requests refused without spending the token, concurrent redemptions, and the
per-client refresh-token policies (Auth0's Multi-Resource Refresh Token), on every store."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import URL

from flask_passkey import PasskeyEvent, hookimpl
from flask_passkey.core.audiences import SCOPE_DELETE, SCOPE_READ
from flask_passkey.errors import ConfigurationError
from flask_passkey.models import WEBAUTHN_GRANT, RefreshTokenPolicy
from flask_passkey.stores.sql import SqlStore, upgrade_database
from flask_passkey.testing import PasskeyFlow
from flask_passkey.testing.store_contract import NOW, new_grant, new_user, race
from tests.apps import (
    API_AUDIENCE,
    CUSTOM_DOMAIN,
    DB_CONNECTION,
    HOST,
    OFFLINE,
    REFRESH_GRANT,
    USERINFO,
    FakeClock,
    make_app,
    tenant_data,
)
from tests.databases import PostgresSchemas, url_text
from tests.support import assert_oauth_error, new_email, passkey_flow, refresh, verify_jwt

MY_ACCOUNT = f"https://{CUSTOM_DOMAIN}/me/"
#: An API the tenant knows (PASSKEY_AUDIENCES) that no refresh-token policy names.
OTHER_API = "https://billing.acme.test/"
UNKNOWN = "Unknown or invalid refresh token."


class TokenEvents:
    """The token endpoint's events: name, grant type and error."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None, str | None]] = []

    @hookimpl
    def passkey_event(self, event: PasskeyEvent) -> None:
        if event.endpoint == "token":
            self.seen.append((event.name, event.grant_type, event.error))


def policy_tenant() -> dict[str, Any]:
    """tenant_data() plus ``mrrt``, a client whose refresh tokens may get My Account and
    API tokens (Auth0's ``refresh_token.policies``)."""
    tenant = tenant_data()
    tenant["clients"].append(
        {
            "client_id": "mrrt",
            "connections": [DB_CONNECTION],
            "grant_types": ["urn:okta:params:oauth:grant-type:webauthn", REFRESH_GRANT],
            "refresh_token": {
                "policies": [
                    # "update:..." is a My Account scope, "write:orders" is not one: ignored.
                    {"audience": MY_ACCOUNT, "scope": [SCOPE_READ, "write:orders"]},
                    {"audience": API_AUDIENCE, "scope": ["read:orders", "write:orders"]},
                ]
            },
        }
    )
    return tenant


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """PASSKEY_DATABASE_URL of an empty store of each kind."""
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return url_text(URL.create("sqlite", database=str(tmp_path / "passkey.sqlite3")))
    schemas: PostgresSchemas = request.getfixturevalue("postgres_schemas")
    return url_text(schemas.new_url())


AppMaker = Callable[..., Flask]


@pytest.fixture
def clock() -> FakeClock:
    """Now, standing still: tokens are checked with PyJWT against the real time."""
    return FakeClock(time.time())


@pytest.fixture
def make(database: str, clock: FakeClock) -> Iterator[AppMaker]:
    """Apps over ``database`` and policy_tenant() on ``clock``; keyword arguments are
    PASSKEY_* config."""
    apps: list[Flask] = []

    def factory(*, tenant: dict[str, Any] | None = None, **config: Any) -> Flask:
        config.setdefault("audiences", [API_AUDIENCE, OTHER_API])
        app = make_app(
            tenant=tenant or policy_tenant(),
            clock=clock,
            database_url=database,
            **config,
        )
        apps.append(app)
        return app

    yield factory
    for app in apps:
        store = app.extensions["passkey"].users
        if isinstance(store, SqlStore):
            store.close()


def renewed(client: FlaskClient, token: str, client_id: str = "refreshing", **body: Any) -> Any:
    """The body of a successful refresh."""
    response = refresh(client, token, client_id, **body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def assert_dead(client: FlaskClient, token: str, client_id: str = "refreshing") -> None:
    """The refresh token is refused with Auth0's invalid_grant and text."""
    response = refresh(client, token, client_id)
    assert_oauth_error(response, 400, "invalid_grant")
    assert response.get_json()["error_description"] == UNKNOWN


def signed_in(app: Flask, client_id: str = "refreshing", **body: Any) -> tuple[PasskeyFlow, str]:
    """A new user signed up with ``offline_access``: the flow and the refresh token."""
    flow = passkey_flow(app, client_id)
    body.setdefault("scope", OFFLINE)
    tokens = flow.sign_up({"email": new_email(), "name": "Ann"}, **body)
    return flow, tokens["refresh_token"]


# -- rotation and reuse ---------------------------------------------------------------------------


def test_each_refresh_rotates_and_a_replay_revokes_the_whole_family(make: AppMaker) -> None:
    app = make()
    flow, first = signed_in(app)
    _, bystander = signed_in(app)  # another sign-in: another family
    second = renewed(flow.client, first)["refresh_token"]
    third = renewed(flow.client, second)["refresh_token"]
    assert len({first, second, third}) == 3

    assert_dead(flow.client, first)  # a thief replays a spent token...

    assert_dead(flow.client, third)  # ...and the newest token of its family dies with it
    assert_dead(flow.client, second)
    assert renewed(flow.client, bystander)["refresh_token"]


def test_a_replay_is_reported_as_reuse_and_other_dead_tokens_are_not(make: AppMaker) -> None:
    recorder = TokenEvents()
    app = make(plugins=[recorder])
    flow, first = signed_in(app)
    renewed(flow.client, first)

    assert_dead(flow.client, first)  # a spent token came back
    assert_dead(flow.client, "never-issued")  # dead, but no reuse

    assert recorder.seen == [
        ("signup_succeeded", WEBAUTHN_GRANT, None),
        ("refresh_succeeded", REFRESH_GRANT, None),
        ("refresh_token_reused", REFRESH_GRANT, "invalid_grant"),
        ("request_rejected", REFRESH_GRANT, "invalid_grant"),
    ]


def test_within_the_reuse_interval_a_replay_gets_a_new_token_of_the_family(
    make: AppMaker, clock: FakeClock
) -> None:
    app = make(refresh_token_reuse_interval=10)
    flow, first = signed_in(app)
    second = renewed(flow.client, first)["refresh_token"]

    clock.advance(10)
    retried = renewed(flow.client, first)  # e.g. the answer to the first redemption was lost
    assert retried["refresh_token"] not in (first, second)
    assert retried["scope"] == OFFLINE and retried["access_token"]

    # Both answers' tokens work: nothing was revoked.
    assert renewed(flow.client, second)["refresh_token"]
    fourth = renewed(flow.client, retried["refresh_token"])["refresh_token"]

    clock.advance(1)  # past the interval of the first token's redemption
    assert_dead(flow.client, first)
    assert_dead(flow.client, fourth)  # the family is revoked


def test_concurrent_redemptions_of_one_token_have_exactly_one_winner(make: AppMaker) -> None:
    app = make()
    flow, token = signed_in(app)

    responses = race(8, lambda: refresh(app.test_client(), token))

    assert not [r for r in responses if isinstance(r, Exception)], responses
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * 7
    assert {r.get_json()["error_description"] for r in responses if r.status_code == 400} == {
        UNKNOWN
    }
    # The losers were replays: without a reuse interval, the family is revoked.
    winner = next(r for r in responses if r.status_code == 200).get_json()
    assert_dead(flow.client, winner["refresh_token"])


def test_with_a_reuse_interval_concurrent_redemptions_all_get_tokens(make: AppMaker) -> None:
    app = make(refresh_token_reuse_interval=30)
    flow, token = signed_in(app)

    responses = race(6, lambda: refresh(app.test_client(), token))

    assert [getattr(r, "status_code", r) for r in responses] == [200] * 6
    tokens = {r.get_json()["refresh_token"] for r in responses}
    assert len(tokens) == 6
    for new in tokens:
        assert renewed(flow.client, new)["refresh_token"]


# -- expiry ---------------------------------------------------------------------------------------


def test_inactivity_expiry_restarts_with_each_rotation(make: AppMaker, clock: FakeClock) -> None:
    app = make(refresh_token_lifetime=1000, refresh_token_idle_lifetime=100)
    flow, token = signed_in(app)

    for _ in range(3):  # 297 s in all, more than the inactivity lifetime
        clock.advance(99)
        token = renewed(flow.client, token)["refresh_token"]

    clock.advance(100)
    assert_dead(flow.client, token)


def test_inactivity_expiry_never_extends_past_the_absolute_one(
    make: AppMaker, clock: FakeClock
) -> None:
    app = make(refresh_token_lifetime=150, refresh_token_idle_lifetime=100)
    flow, token = signed_in(app)
    clock.advance(90)
    token = renewed(flow.client, token)["refresh_token"]
    clock.advance(59)
    token = renewed(flow.client, token)["refresh_token"]

    clock.advance(1)  # 150 s after the sign-in, though this token was issued a second ago

    assert_dead(flow.client, token)


def test_no_inactivity_expiry_when_it_is_none(make: AppMaker, clock: FakeClock) -> None:
    app = make(refresh_token_lifetime=10_000_000, refresh_token_idle_lifetime=None)
    flow, token = signed_in(app)
    clock.advance(9_999_999)
    assert renewed(flow.client, token)["refresh_token"]


def test_default_inactivity_lifetime_is_auth0_s_fifteen_days(
    make: AppMaker, clock: FakeClock
) -> None:
    app = make()
    assert app.config["PASSKEY_REFRESH_TOKEN_IDLE_LIFETIME"] == 15 * 86_400
    flow, token = signed_in(app)
    clock.advance(15 * 86_400)
    assert_dead(flow.client, token)


@pytest.mark.parametrize(
    ("key", "value"),
    [("REFRESH_TOKEN_IDLE_LIFETIME", 0), ("REFRESH_TOKEN_REUSE_INTERVAL", -1)],
)
def test_out_of_range_refresh_settings_are_refused(key: str, value: int) -> None:
    app = Flask(__name__)
    app.config.update(PASSKEY_TENANT=tenant_data(), **{f"PASSKEY_{key}": value})
    from flask_passkey import Passkey

    with pytest.raises(ConfigurationError, match=f"PASSKEY_{key}"):
        Passkey(app)


# -- refused requests do not spend the token ------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        pytest.param({"scope": "openid phone"}, 400, "invalid_scope", id="wider scope"),
        pytest.param({"client_id": "refreshing-2"}, 400, "invalid_grant", id="another client"),
        pytest.param({"audience": "https://nowhere.test/"}, 403, "access_denied", id="audience"),
    ],
)
def test_a_refused_refresh_leaves_the_token_usable(
    make: AppMaker, body: dict[str, Any], status: int, error: str
) -> None:
    app = make()
    flow, token = signed_in(app)

    assert_oauth_error(refresh(flow.client, token, **body), status, error)

    assert renewed(flow.client, token)["refresh_token"]


def test_another_client_s_token_is_unknown_to_it(make: AppMaker) -> None:
    app = make()
    flow, token = signed_in(app)
    assert_dead(flow.client, token, client_id="refreshing-2")


def test_every_dead_token_gets_auth0_s_text(make: AppMaker, clock: FakeClock) -> None:
    app = make(refresh_token_lifetime=100)
    flow, token = signed_in(app)
    assert_dead(flow.client, "made-up")
    clock.advance(100)
    assert_dead(flow.client, token)


def test_deleting_the_passkey_ends_its_tokens_with_auth0_s_text(make: AppMaker) -> None:
    app = make()
    users = app.extensions["passkey"].users
    flow, token = signed_in(app)
    (user,) = [u for u in users.list_users(limit=1000) if users.list_credentials(u.id)]
    (credential,) = users.list_credentials(user.id)

    assert users.delete_credential(user_id=user.id, credential_id=credential.id)

    assert_dead(flow.client, token)


def test_leaving_the_organization_ends_the_family_for_good(
    make: AppMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = policy_tenant()
    org_client = next(c for c in tenant["clients"] if c["client_id"] == "org-allowed")
    org_client["grant_types"] = ["urn:okta:params:oauth:grant-type:webauthn", REFRESH_GRANT]
    app = make(tenant=tenant)
    flow, token = signed_in(app, "org-allowed", organization="org_acme")
    token = renewed(flow.client, token, "org-allowed")["refresh_token"]
    users = app.extensions["passkey"].users

    with monkeypatch.context() as patched:  # the user leaves the organization...
        patched.setattr(users, "is_member", lambda **_: False)
        assert_dead(flow.client, token, "org-allowed")

    # ...and comes back: the tokens of the earlier membership stay dead.
    assert users.is_member(organization_id="org_acme", user_id=_user_id(flow))
    assert_dead(flow.client, token, "org-allowed")


def _user_id(flow: PasskeyFlow) -> str:
    """The id of the user whose passkey ``flow`` holds (signs in again to learn it)."""
    tokens = flow.sign_in(scope="openid", organization="org_acme")
    sub: str = verify_jwt(flow.client, tokens["id_token"], audience=flow.client_id)["sub"]
    return sub


# -- multi-resource refresh tokens (refresh-token policies) --------------------------------------


def test_a_policy_gives_a_my_account_token_with_the_policy_s_scopes(make: AppMaker) -> None:
    app = make()
    flow, token = signed_in(app, "mrrt")

    body = renewed(
        flow.client,
        token,
        "mrrt",
        audience=MY_ACCOUNT,
        scope=f"openid {SCOPE_READ} {SCOPE_DELETE}",  # delete: not in the policy
    )

    assert body["scope"] == f"openid offline_access {SCOPE_READ}"
    access = verify_jwt(flow.client, body["access_token"], audience=MY_ACCOUNT)
    assert access["scope"] == body["scope"]
    methods = flow.client.get(
        "/me/v1/authentication-methods",
        headers={**HOST, "Authorization": f"Bearer {body['access_token']}"},
    )
    assert methods.status_code == 200, methods.get_json()
    assert len(methods.get_json()) == 1

    # The family is unchanged: its next refresh is for the sign-in's audience and scope.
    again = renewed(flow.client, body["refresh_token"], "mrrt")
    assert again["scope"] == OFFLINE
    verify_jwt(flow.client, again["access_token"], audience=USERINFO)


def test_a_policy_for_an_api_gives_its_scopes_and_the_sign_in_s_openid_ones(
    make: AppMaker,
) -> None:
    app = make()
    flow, token = signed_in(app, "mrrt", scope="openid email offline_access")

    body = renewed(flow.client, token, "mrrt", audience=API_AUDIENCE)

    assert body["scope"] == "openid email offline_access read:orders write:orders"
    access = verify_jwt(flow.client, body["access_token"], audience=API_AUDIENCE)
    assert access["scope"] == body["scope"]

    narrowed = renewed(
        flow.client,
        body["refresh_token"],
        "mrrt",
        audience=API_AUDIENCE,
        scope="read:orders profile",
    )
    assert narrowed["scope"] == "openid offline_access read:orders"


def test_a_policy_for_the_sign_in_s_own_audience_adds_scopes_a_refresh_may_ask_for(
    make: AppMaker,
) -> None:
    app = make()
    flow, token = signed_in(app, "mrrt", audience=API_AUDIENCE)

    body = renewed(flow.client, token, "mrrt", scope="openid read:orders")

    assert body["scope"] == "openid offline_access read:orders"
    access = verify_jwt(flow.client, body["access_token"], audience=API_AUDIENCE)
    assert access["scope"] == body["scope"]
    wider = refresh(flow.client, body["refresh_token"], "mrrt", scope="openid delete:orders")
    assert_oauth_error(wider, 400, "invalid_scope")
    assert renewed(flow.client, body["refresh_token"], "mrrt")["scope"] == OFFLINE


def test_an_audience_no_policy_names_is_ignored_as_auth0_does(make: AppMaker) -> None:
    app = make()
    for client_id, audience in (("mrrt", OTHER_API), ("refreshing", MY_ACCOUNT)):
        flow, token = signed_in(app, client_id)

        body = renewed(flow.client, token, client_id, audience=audience)

        assert body["scope"] == OFFLINE
        verify_jwt(flow.client, body["access_token"], audience=USERINFO)


def test_tenant_file_policies_must_have_auth0_s_shape() -> None:
    tenant = policy_tenant()
    client = tenant["clients"][-1]
    broken = copy.deepcopy(tenant)
    broken["clients"][-1]["refresh_token"] = {"policies": [{"scope": ["read:orders"]}]}
    with pytest.raises(ConfigurationError, match="audience"):
        make_app(tenant=broken)
    broken["clients"][-1]["refresh_token"] = {"policy": client["refresh_token"]["policies"]}
    with pytest.raises(ConfigurationError, match="policy"):
        make_app(tenant=broken)


def test_the_cli_stores_a_client_s_refresh_token_policies(tmp_path: Path) -> None:
    url = URL.create("sqlite", database=str(tmp_path / "passkey.sqlite3"))
    app = make_app(database_url=url_text(url))
    result = app.test_cli_runner().invoke(
        args=[
            "passkey",
            "clients",
            "add",
            "stored-mrrt",
            "--grant",
            "urn:okta:params:oauth:grant-type:webauthn",
            "--grant",
            REFRESH_GRANT,
            "--refresh-token-policy",
            f"{MY_ACCOUNT}={SCOPE_READ},{SCOPE_DELETE}",
            "--refresh-token-policy",
            API_AUDIENCE,
        ]
    )
    assert result.exit_code == 0, result.output
    store: SqlStore = app.extensions["passkey"].users
    (stored,) = [c for c in store.list_clients() if c.client_id == "stored-mrrt"]
    assert stored.refresh_token_policies == (
        RefreshTokenPolicy(MY_ACCOUNT, (SCOPE_READ, SCOPE_DELETE)),
        RefreshTokenPolicy(API_AUDIENCE, ()),
    )
    store.close()


# -- migration 0005 -------------------------------------------------------------------------------


def test_upgrade_to_0005_keeps_each_refresh_token_as_a_family_of_its_own(tmp_path: Path) -> None:
    url = URL.create("sqlite", database=str(tmp_path / "passkey.sqlite3"))
    upgrade_database(url, revision="0004")
    user = new_user()
    grant = new_grant(user, credential_id=b"passkey")
    old = {
        k: v for k, v in vars(grant).items() if k not in ("family_id", "idle_expires_at", "used_at")
    }
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        tables = sa.MetaData()
        tables.reflect(connection)
        connection.execute(tables.tables["users"].insert(), vars(user))
        for token_hash in ("a", "b"):
            connection.execute(
                tables.tables["refresh_tokens"].insert(), {"token_hash": token_hash, **old}
            )
        connection.execute(
            tables.tables["clients"].insert(),
            {
                "client_id": "old",
                "name": "",
                "app_type": "spa",
                "is_first_party": True,
                "oidc_conformant": True,
                "grant_types": [],
                "token_endpoint_auth_method": "none",
                "organization_usage": "deny",
                "connections": [],
                "web_origins": [],
                "android_apps": [],
                "ios_apps": [],
            },
        )
    engine.dispose()

    store = SqlStore(url)

    first, second = store.get_refresh_token("a"), store.get_refresh_token("b")
    assert first is not None and second is not None
    assert (first.family_id, second.family_id) == ("a", "b")
    assert first.used_at is None and first.idle_expires_at is None
    assert store.use_refresh_token("a", now=NOW)
    store.revoke_refresh_token_family("a", expires_at=first.expires_at)
    assert store.get_refresh_token("b") == second  # its own family: untouched
    (client,) = store.list_clients()
    assert client.refresh_token_policies == ()
    store.close()
