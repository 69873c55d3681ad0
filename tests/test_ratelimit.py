"""Per-IP rate limiting of the passkey endpoints; which address and host count behind proxies."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask import current_app
from flask.testing import FlaskClient
from limits.errors import StorageError
from limits.storage import MemoryStorage

from flask_passkey import ConfigurationError, hookimpl
from flask_passkey.stores.limit_counters import MemoryCounters
from tests.apps import CUSTOM_DOMAIN, DEFAULT_DOMAIN, make_app, tenant_data
from tests.support import post_challenge, stable_error


def limited(limit: str = "2 per hour", **config: Any) -> FlaskClient:
    return make_app(rate_limit=limit, **config).test_client()


def from_ip(ip: str) -> dict[str, Any]:
    return {"environ_base": {"REMOTE_ADDR": ip}}


def forwarded_for(value: str, *, ip: str = "10.0.0.1") -> dict[str, Any]:
    """A request arriving from the proxy at ``ip`` with ``X-Forwarded-For: value``."""
    return {"headers": {"X-Forwarded-For": value}, **from_ip(ip)}


# -- 429 ---------------------------------------------------------------------------------------


def test_request_over_the_limit_gets_429_json_with_retry_after() -> None:
    client = limited("2 per hour")
    post_challenge(client)
    post_challenge(client)

    response = post_challenge(client)

    assert response.status_code == 429
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error", "error_description", "request_id"}
    assert body["error"] == "too_many_requests"
    assert 0 < int(response.headers["Retry-After"]) <= 3600


def test_rate_limit_headers_count_down_on_normal_and_limited_responses() -> None:
    client = limited("2 per hour")
    before = time.time()

    responses = [post_challenge(client) for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 429]
    assert [r.headers["X-RateLimit-Limit"] for r in responses] == ["2", "2", "2"]
    assert [r.headers["X-RateLimit-Remaining"] for r in responses] == ["1", "0", "0"]
    for response in responses:
        reset = int(response.headers["X-RateLimit-Reset"])
        assert before <= reset <= before + 3600 + 1


def test_only_a_429_says_when_to_retry() -> None:
    client = limited("2 per hour")

    ok = post_challenge(client)
    refused = post_challenge(client, {"client_id": "nobody"})
    limited_response = post_challenge(client)

    assert (ok.status_code, refused.status_code, limited_response.status_code) == (200, 401, 429)
    assert "Retry-After" not in ok.headers
    assert "Retry-After" not in refused.headers
    assert 0 < int(limited_response.headers["Retry-After"]) <= 3600


def test_the_host_app_keeps_its_own_retry_after() -> None:
    app = make_app(rate_limit="2 per hour")

    @app.get("/maintenance")
    def maintenance() -> tuple[str, int, dict[str, str]]:
        return "back soon", 503, {"Retry-After": "120"}

    assert app.test_client().get("/maintenance").headers["Retry-After"] == "120"


def test_rejected_requests_carry_the_headers_and_use_up_the_limit() -> None:
    client = limited("2 per hour")

    first = post_challenge(client, {"client_id": "nobody"})
    second = post_challenge(client, host=DEFAULT_DOMAIN)
    third = post_challenge(client)

    assert (first.status_code, second.status_code, third.status_code) == (401, 400, 429)
    assert [first.headers["X-RateLimit-Remaining"], second.headers["X-RateLimit-Remaining"]] == [
        "1",
        "0",
    ]


def test_limited_request_writes_nothing_to_the_session_store() -> None:
    client = limited("1 per hour")
    store = client.application.extensions["passkey"].sessions
    assert post_challenge(client).status_code == 200
    assert len(store) == 1

    assert post_challenge(client).status_code == 429

    assert len(store) == 1


def test_rate_limit_comes_before_the_passkeys_switch() -> None:
    tenant = tenant_data()
    tenant["passkeys_enabled"] = False
    client = make_app(tenant=tenant, rate_limit="1 per hour").test_client()

    assert post_challenge(client).status_code == 404
    assert post_challenge(client).status_code == 429


def test_requests_with_a_wrong_method_are_rate_limited_too() -> None:
    client = limited("1 per hour")

    first = client.get("/passkey/challenge", headers={"Host": CUSTOM_DOMAIN})
    second = client.get("/passkey/challenge", headers={"Host": CUSTOM_DOMAIN})

    assert (first.status_code, second.status_code) == (405, 429)
    assert second.get_json()["error"] == "too_many_requests"


def test_each_client_ip_has_its_own_bucket() -> None:
    client = limited("1 per hour")

    assert post_challenge(client, **from_ip("192.0.2.1")).status_code == 200
    assert post_challenge(client, **from_ip("192.0.2.2")).status_code == 200
    assert post_challenge(client, **from_ip("192.0.2.1")).status_code == 429


def test_disabled_rate_limit_never_answers_429_nor_sends_headers() -> None:
    client = limited("1 per hour", rate_limit_enabled=False)

    responses = [post_challenge(client) for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert "X-RateLimit-Limit" not in responses[-1].headers


# -- proxies -----------------------------------------------------------------------------------


def test_spoofed_x_forwarded_for_does_not_escape_the_limit_without_trusted_proxies() -> None:
    client = limited("2 per hour")

    statuses = [
        post_challenge(client, **forwarded_for(f"198.51.100.{i}", ip="192.0.2.9")).status_code
        for i in range(3)
    ]

    assert statuses == [200, 200, 429]


def test_x_forwarded_host_is_ignored_without_trusted_proxies() -> None:
    client = limited("10 per hour")

    response = post_challenge(
        client, host=DEFAULT_DOMAIN, headers={"X-Forwarded-Host": CUSTOM_DOMAIN}
    )

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
    assert stable_error(response) == stable_error(post_challenge(client, host=DEFAULT_DOMAIN))


def test_behind_a_trusted_proxy_each_forwarded_address_has_its_own_bucket() -> None:
    client = limited("1 per hour", trusted_proxies=1)

    assert post_challenge(client, **forwarded_for("203.0.113.1")).status_code == 200
    assert post_challenge(client, **forwarded_for("203.0.113.2")).status_code == 200
    assert post_challenge(client, **forwarded_for("203.0.113.1")).status_code == 429


def test_behind_a_trusted_proxy_a_client_prepended_address_is_ignored() -> None:
    client = limited("1 per hour", trusted_proxies=1)

    first = post_challenge(client, **forwarded_for("1.1.1.1, 203.0.113.7"))
    second = post_challenge(client, **forwarded_for("2.2.2.2, 203.0.113.7"))

    assert (first.status_code, second.status_code) == (200, 429)


def test_behind_two_trusted_proxies_the_address_the_outer_proxy_saw_counts() -> None:
    client = limited("1 per hour", trusted_proxies=2)

    first = post_challenge(client, **forwarded_for("9.9.9.9, 203.0.113.5, 10.0.0.2"))
    second = post_challenge(client, **forwarded_for("8.8.8.8, 203.0.113.5, 10.0.0.3"))
    other = post_challenge(client, **forwarded_for("9.9.9.9, 203.0.113.6, 10.0.0.2"))

    assert (first.status_code, second.status_code, other.status_code) == (200, 429, 200)


def test_behind_a_trusted_proxy_the_forwarded_custom_domain_is_accepted() -> None:
    client = limited("10 per hour", trusted_proxies=1)

    response = post_challenge(
        client, host="backend.internal", headers={"X-Forwarded-Host": CUSTOM_DOMAIN}
    )

    assert response.status_code == 200
    assert response.get_json()["authn_params_public_key"]["rpId"] == CUSTOM_DOMAIN


def test_behind_a_trusted_proxy_a_client_prepended_host_is_ignored() -> None:
    client = limited("10 per hour", trusted_proxies=1)

    response = post_challenge(
        client,
        host=CUSTOM_DOMAIN,
        headers={"X-Forwarded-Host": f"{CUSTOM_DOMAIN}, {DEFAULT_DOMAIN}"},
    )

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


@pytest.mark.parametrize("trusted_proxies", [0, 1])
def test_without_forwarded_headers_the_peer_address_counts(trusted_proxies: int) -> None:
    client = limited("1 per hour", trusted_proxies=trusted_proxies)

    assert post_challenge(client, **from_ip("192.0.2.50")).status_code == 200
    assert post_challenge(client, **from_ip("192.0.2.50")).status_code == 429


# -- storage failing mid-request ---------------------------------------------------------------


class StorageDiesInTheView:
    """Breaks the limiter's storage once the request has been let in (a Redis stopped while the
    view runs)."""

    @hookimpl
    def passkey_check_custom_domain(self, request: Any) -> None:
        storage = current_app.extensions["passkey"].limiter.storage

        def unreachable(*args: Any, **kwargs: Any) -> Any:
            raise StorageError(ConnectionError("Connection refused"))

        for name in ("get", "get_expiry", "incr"):
            setattr(storage, name, unreachable)


def test_storage_failing_after_the_request_was_let_in_leaves_the_answer_alone() -> None:
    app = make_app(rate_limit="5 per hour", plugins=[StorageDiesInTheView()])
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: no re-raise, a 500 answer

    response = post_challenge(app.test_client())

    assert response.status_code == 200, response.get_json()
    assert "auth_session" in response.get_json()
    assert "X-RateLimit-Remaining" not in response.headers


# -- storage -----------------------------------------------------------------------------------


def test_the_default_storage_counts_in_this_process_without_a_thread() -> None:
    threads = threading.active_count()
    client = limited("2 per hour")

    assert type(client.application.extensions["passkey"].limiter.storage) is MemoryCounters
    assert [post_challenge(client).status_code for _ in range(3)] == [200, 200, 429]
    assert threading.active_count() == threads


class PluginStorage:
    @hookimpl
    def passkey_rate_limit_storage(self, app: Any) -> str:
        return "memory://"


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"rate_limit_storage_uri": "memory://"}, id="configured"),
        pytest.param({"plugins": [PluginStorage()]}, id="from-a-plugin"),
    ],
)
def test_limits_own_storages_serve_when_named(config: dict[str, Any]) -> None:
    client = limited("1 per hour", **config)

    assert type(client.application.extensions["passkey"].limiter.storage) is MemoryStorage
    responses = [post_challenge(client) for _ in range(2)]
    assert [response.status_code for response in responses] == [200, 429]
    assert responses[0].headers["X-RateLimit-Remaining"] == "0"


def test_the_default_storage_serves_the_lockout_without_the_rate_limit() -> None:
    app = make_app(rate_limit_enabled=False, lockout="2 per hour")

    assert app.extensions["passkey"].lockout is not None


def test_an_unparsable_limit_is_one_line_naming_the_key() -> None:
    with pytest.raises(ConfigurationError) as refused:
        make_app(rate_limit="5 per fortnight")

    # One line: the key, the value, the parser's reason (its wording is the limits library's),
    # and an example.
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("PASSKEY_RATE_LIMIT: '5 per fortnight' is not a limit (")
    assert message.endswith("); write e.g. '60 per minute'.")
    assert refused.value.__suppress_context__


# -- IPv6 prefixes (PASSKEY_RATE_LIMIT_IPV6_PREFIX) ---------------------------------------------


def test_addresses_of_one_ipv6_64_share_one_bucket() -> None:
    client = limited("3 per hour")

    statuses = [
        post_challenge(client, **from_ip(f"2001:db8:1:2:{i:x}::{i + 1:x}")).status_code
        for i in range(5)
    ]

    assert statuses == [200, 200, 200, 429, 429]
    # Another /64 has its own bucket.
    assert post_challenge(client, **from_ip("2001:db8:1:3::1")).status_code == 200


def test_ipv6_prefix_is_configurable() -> None:
    client = limited("1 per hour", rate_limit_ipv6_prefix=48)
    assert post_challenge(client, **from_ip("2001:db8:1:2::1")).status_code == 200

    # The same /48, another /64: one bucket now.
    assert post_challenge(client, **from_ip("2001:db8:1:ffff::1")).status_code == 429
    assert post_challenge(client, **from_ip("2001:db8:2::1")).status_code == 200


def test_ipv4_counts_by_address_and_ipv4_mapped_ipv6_counts_as_ipv4() -> None:
    client = limited("1 per hour")
    assert post_challenge(client, **from_ip("192.0.2.10")).status_code == 200

    assert post_challenge(client, **from_ip("::ffff:192.0.2.10")).status_code == 429
    assert post_challenge(client, **from_ip("192.0.2.11")).status_code == 200


def test_forwarded_ipv6_addresses_share_their_prefix_bucket() -> None:
    client = limited("1 per hour", trusted_proxies=1)
    assert post_challenge(client, **forwarded_for("2001:db8:5:6::1")).status_code == 200

    assert post_challenge(client, **forwarded_for("2001:db8:5:6::2")).status_code == 429


@pytest.mark.parametrize("prefix", [0, 129, -1])
def test_ipv6_prefix_out_of_range_is_refused(prefix: int) -> None:
    with pytest.raises(ConfigurationError, match="PASSKEY_RATE_LIMIT_IPV6_PREFIX"):
        limited(rate_limit_ipv6_prefix=prefix)
