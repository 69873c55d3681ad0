"""Apps in one process stay apart, and the host app keeps its own routes, errors and limits."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, abort
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

import flask_passkey
from flask_passkey import Passkey, PasskeyError
from tests.apps import (
    CUSTOM_DOMAIN,
    DEFAULT_DOMAIN,
    FakeClock,
    make_app,
    shared_signing_key,
    tenant_data,
)
from tests.events import Recorder
from tests.support import post_challenge

GLOBEX_DOMAIN = "login.globex.test"


def globex_tenant() -> dict[str, Any]:
    return {
        "default_domain": "globex.auth0.com",
        "custom_domains": [GLOBEX_DOMAIN],
        "default_connection": "globex-users",
        "connections": [{"name": "globex-users"}],
        "clients": [{"client_id": "globex-spa", "connections": ["globex-users"]}],
    }


def auth_session(response: Any) -> str:
    assert response.status_code == 200, response.get_json()
    value: str = response.get_json()["auth_session"]
    return value


class Refuse:
    @flask_passkey.hookimpl
    def passkey_check_first_party(self, context: Any) -> None:
        raise PasskeyError("refused by the acme-only plugin")


# -- two apps in one process -------------------------------------------------------------------


def test_each_app_serves_only_its_own_tenant() -> None:
    acme = make_app().test_client()
    globex = make_app(tenant=globex_tenant()).test_client()

    assert post_challenge(acme).status_code == 200
    assert (
        post_challenge(globex, {"client_id": "globex-spa"}, host=GLOBEX_DOMAIN).status_code == 200
    )
    # Each app knows neither the other's domain nor the other's clients.
    assert post_challenge(acme, {"client_id": "globex-spa"}, host=GLOBEX_DOMAIN).status_code == 400
    assert post_challenge(globex, host=GLOBEX_DOMAIN).status_code == 401
    assert post_challenge(acme, {"client_id": "globex-spa"}).status_code == 401


def test_plugins_registered_on_one_app_do_not_run_on_another() -> None:
    recorder = Recorder()
    acme = make_app(plugins=[Refuse(), recorder]).test_client()
    other = make_app().test_client()

    assert post_challenge(acme).status_code == 400
    assert post_challenge(other).status_code == 200
    assert [event.name for event in recorder.events] == ["request_rejected"]


def test_disabled_plugins_of_one_app_stay_enabled_on_another() -> None:
    lax = make_app(disabled_plugins=["first_party"]).test_client()
    strict = make_app().test_client()

    assert post_challenge(lax, {"client_id": "third-party"}).status_code == 200
    assert post_challenge(strict, {"client_id": "third-party"}).status_code == 400


def test_sessions_issued_by_one_app_are_not_in_the_others_store(clock: FakeClock) -> None:
    one = make_app(clock=clock)
    two = make_app(clock=clock)
    issued_by_one = auth_session(post_challenge(one.test_client()))

    assert two.extensions["passkey"].sessions.take(issued_by_one, now=clock.now) is None
    assert one.extensions["passkey"].sessions.take(issued_by_one, now=clock.now) is not None


def test_rate_limit_counters_are_per_app() -> None:
    one = make_app(rate_limit="1 per hour").test_client()
    two = make_app(rate_limit="1 per hour").test_client()

    assert post_challenge(one).status_code == 200
    assert post_challenge(one).status_code == 429
    response = post_challenge(two)
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Remaining"] == "0"


def test_settings_of_one_app_do_not_leak_into_another() -> None:
    slow = make_app(challenge_timeout=120_000).test_client()
    default = make_app().test_client()

    slow_options = post_challenge(slow).get_json()["authn_params_public_key"]
    default_options = post_challenge(default).get_json()["authn_params_public_key"]

    assert (slow_options["timeout"], default_options["timeout"]) == (120_000, 60_000)


def test_one_extension_instance_serves_two_apps(clock: FakeClock) -> None:
    extension = Passkey(clock=clock)
    apps = []
    for tenant in (tenant_data(), globex_tenant()):
        app = Flask(__name__)
        app.config.update(
            PASSKEY_TENANT=tenant,
            PASSKEY_DATABASE_URL="memory://",
            PASSKEY_SIGNING_KEYS=[shared_signing_key()],
            PASSKEY_CHALLENGE_TIMEOUT=10_000 * (len(apps) + 1),
        )
        extension.init_app(app)
        apps.append(app)
    acme, globex = apps

    acme_session = auth_session(post_challenge(acme.test_client()))
    globex_session = auth_session(
        post_challenge(globex.test_client(), {"client_id": "globex-spa"}, host=GLOBEX_DOMAIN)
    )

    acme_store = acme.extensions["passkey"].sessions
    globex_store = globex.extensions["passkey"].sessions
    assert acme_store is not globex_store
    assert globex_store.take(acme_session, now=clock.now) is None
    taken = globex_store.take(globex_session, now=clock.now)
    assert taken is not None
    assert (taken.client_id, taken.rp_id, taken.expires_at) == (
        "globex-spa",
        GLOBEX_DOMAIN,
        clock.now + 20,
    )
    assert acme_store.take(acme_session, now=clock.now) is not None


# -- the host app ------------------------------------------------------------------------------


@pytest.fixture
def host() -> Flask:
    app = Flask(__name__)

    @app.get("/hello")
    def hello() -> str:
        return "hello from the host"

    @app.get("/broken")
    def broken() -> str:
        abort(400)

    @app.errorhandler(404)
    def not_found(error: Exception) -> tuple[str, int]:
        return "host 404 page", 404

    return app


def add_passkey(app: Flask, **config: Any) -> Flask:
    app.config.update(
        PASSKEY_TENANT=tenant_data(),
        PASSKEY_DATABASE_URL="memory://",
        PASSKEY_SIGNING_KEYS=[shared_signing_key()],
    )
    app.config.update({f"PASSKEY_{key.upper()}": value for key, value in config.items()})
    Passkey(app)
    return app


def test_host_routes_are_not_rate_limited_by_the_extension(host: Flask) -> None:
    client = add_passkey(host, rate_limit="1 per hour").test_client()

    responses = [client.get("/hello", headers={"Host": CUSTOM_DOMAIN}) for _ in range(5)]

    assert [r.status_code for r in responses] == [200] * 5
    assert all("X-RateLimit-Limit" not in r.headers for r in responses)
    assert post_challenge(client).status_code == 200
    assert post_challenge(client).status_code == 429


@pytest.mark.parametrize("domain", [CUSTOM_DOMAIN, DEFAULT_DOMAIN])
def test_host_404_handler_still_answers_unknown_paths(host: Flask, domain: str) -> None:
    client = add_passkey(host).test_client()

    for path in ("/nope", "/passkey/nope", "/passkey/challenge/extra"):
        response = client.get(path, headers={"Host": domain})
        assert (response.status_code, response.get_data(as_text=True)) == (404, "host 404 page")


def test_host_errors_keep_the_hosts_format(host: Flask) -> None:
    client = add_passkey(host).test_client()

    response = client.get("/broken", headers={"Host": CUSTOM_DOMAIN})

    assert response.status_code == 400
    assert response.mimetype == "text/html"


def test_host_catch_all_error_handler_does_not_swallow_passkey_errors(host: Flask) -> None:
    @host.errorhandler(Exception)
    def catch_all(error: Exception) -> tuple[str, int]:
        return "host caught it", 500

    client = add_passkey(host, rate_limit="1 per hour").test_client()

    rejected = post_challenge(client, {"client_id": "third-party"})
    limited = post_challenge(client)

    assert (rejected.status_code, rejected.get_json()["error"]) == (400, "unauthorized_client")
    assert (limited.status_code, limited.get_json()["error"]) == (429, "too_many_requests")


def test_host_ratelimit_defaults_do_not_apply_to_passkey_endpoints(host: Flask) -> None:
    host.config.update(RATELIMIT_DEFAULT="1 per hour", RATELIMIT_APPLICATION="1 per hour")
    client = add_passkey(host, rate_limit="5 per hour").test_client()

    responses = [post_challenge(client) for _ in range(3)]
    hello = [client.get("/hello") for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [r.headers.getlist("X-RateLimit-Limit") for r in responses] == [["5"]] * 3
    assert [r.status_code for r in hello] == [200, 200, 200]


def test_host_limiter_limits_host_routes_once(host: Flask) -> None:
    host.config.update(RATELIMIT_DEFAULT="3 per hour")
    Limiter(get_remote_address, app=host, storage_uri="memory://", headers_enabled=True)
    client = add_passkey(host, rate_limit="100 per hour").test_client()

    responses = [client.get("/hello") for _ in range(4)]

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[0].headers.getlist("X-RateLimit-Limit") == ["3"]
    assert responses[0].headers.getlist("X-RateLimit-Remaining") == ["2"]


@pytest.mark.parametrize(
    "host_config",
    [
        pytest.param({"RATELIMIT_HEADERS_ENABLED": False}, id="headers-off"),
        pytest.param({"RATELIMIT_KEY_PREFIX": "host"}, id="key-prefix"),
        pytest.param({"RATELIMIT_STORAGE_URI": "memory://"}, id="storage"),
        pytest.param({"RATELIMIT_STRATEGY": "moving-window"}, id="strategy"),
        pytest.param({"RATELIMIT_DEFAULTS_PER_METHOD": True}, id="per-method"),
    ],
)
def test_host_ratelimit_settings_leave_the_passkey_limit_as_documented(
    host: Flask, host_config: dict[str, Any]
) -> None:
    host.config.update(host_config)
    client = add_passkey(host, rate_limit="1 per hour").test_client()

    first, second = post_challenge(client), post_challenge(client)

    assert (first.status_code, second.status_code) == (200, 429)
    assert second.headers["X-RateLimit-Limit"] == "1"
    assert second.headers["X-RateLimit-Remaining"] == "0"
    assert int(second.headers["Retry-After"]) > 0


def test_host_ratelimit_header_names_do_not_rename_the_passkey_headers(host: Flask) -> None:
    host.config.update(
        RATELIMIT_HEADER_LIMIT="RateLimit-Limit", RATELIMIT_HEADER_REMAINING="RateLimit-Left"
    )
    client = add_passkey(host, rate_limit="1 per hour").test_client()

    post_challenge(client)
    limited = post_challenge(client)

    assert limited.headers.get("X-RateLimit-Limit") == "1"
    assert limited.headers.get("X-RateLimit-Remaining") == "0"


def test_host_disabling_its_own_rate_limits_keeps_the_passkey_limit(host: Flask) -> None:
    host.config["RATELIMIT_ENABLED"] = False
    client = add_passkey(host, rate_limit="1 per hour").test_client()

    assert post_challenge(client).status_code == 200
    assert post_challenge(client).status_code == 429


def test_host_limiter_created_disabled_after_passkey_stays_disabled(host: Flask) -> None:
    add_passkey(host)
    Limiter(
        get_remote_address,
        app=host,
        enabled=False,
        default_limits=["1 per hour"],
        storage_uri="memory://",
    )
    client = host.test_client()

    assert [client.get("/hello").status_code for _ in range(3)] == [200, 200, 200]
