"""Header attacks: a forged client address, host or origin buys nothing an honest request lacks.

The rate-limit proxy tests of ``test_ratelimit.py`` cover ``X-Forwarded-For`` on the challenge
endpoint; these add the other address headers, the token endpoint, the lockout's buckets, forged
``Host``/``X-Forwarded-Host`` values as a WSGI server hands them over, and origins that almost
match at the token endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import EnvironBuilder, run_wsgi_app

from flask_passkey.testing import SoftAuthenticator
from tests.apps import (
    CUSTOM_DOMAIN,
    DEFAULT_DOMAIN,
    ORIGIN,
    OTHER_DOMAIN,
    WEB_ORIGIN,
    make_app,
    tenant_data,
)
from tests.support import (
    assert_oauth_error,
    new_email,
    passkey_flow,
    post_challenge,
    store_snapshot,
)

PROXY = "10.0.0.1"


def from_proxy(forwarded_for: str | list[str], *, peer: str = PROXY) -> dict[str, Any]:
    """Request options: sent by ``peer`` with ``X-Forwarded-For`` (a list: one header line each)."""
    lines = [forwarded_for] if isinstance(forwarded_for, str) else forwarded_for
    return {
        "headers": [("Host", CUSTOM_DOMAIN), *(("X-Forwarded-For", line) for line in lines)],
        "environ_base": {"REMOTE_ADDR": peer},
    }


def challenge(client: Any, **options: Any) -> Any:
    return client.post("/passkey/challenge", json={"client_id": "spa"}, **options)


def failed_exchange(client: Any, **options: Any) -> Any:
    """A token exchange that fails (an auth_session nobody issued), as ``options`` say."""
    body = {
        "grant_type": "urn:okta:params:oauth:grant-type:webauthn",
        "client_id": "spa",
        "auth_session": "never-issued",
        "authn_response": {},
    }
    options.setdefault("headers", {"Host": CUSTOM_DOMAIN})
    return client.post("/oauth/token", json=body, **options)


# -- client address ----------------------------------------------------------------------------

#: Headers some proxies and CDNs use for the client address. flask-passkey reads only
#: X-Forwarded-For, and that only behind PASSKEY_TRUSTED_PROXIES.
ADDRESS_HEADERS = [
    "X-Real-IP",
    "Forwarded",
    "True-Client-IP",
    "CF-Connecting-IP",
    "X-Client-IP",
    "X-Cluster-Client-IP",
    "Client-IP",
]


@pytest.mark.parametrize("header", ADDRESS_HEADERS)
@pytest.mark.parametrize("trusted_proxies", [0, 1])
def test_other_client_address_headers_never_open_a_new_bucket(
    header: str, trusted_proxies: int
) -> None:
    client = make_app(rate_limit="2 per hour", trusted_proxies=trusted_proxies).test_client()
    prefix = "for=" if header == "Forwarded" else ""
    spoofed = [f"{prefix}198.51.100.{i}" for i in (1, 2, 3)]

    statuses = [
        post_challenge(
            client, headers={header: value}, environ_base={"REMOTE_ADDR": PROXY}
        ).status_code
        for value in spoofed
    ]

    assert statuses == [200, 200, 429]


def test_spoofed_x_forwarded_for_does_not_escape_the_token_endpoint_limit() -> None:
    client = make_app(rate_limit="2 per hour").test_client()

    statuses = [
        failed_exchange(client, **from_proxy(f"198.51.100.{i}")).status_code for i in (1, 2, 3)
    ]

    assert statuses == [400, 400, 429]


def test_spoofed_x_forwarded_for_does_not_escape_the_lockout() -> None:
    client = make_app(rate_limit="100 per hour", lockout="2 per hour").test_client()

    responses = [failed_exchange(client, **from_proxy(f"198.51.100.{i}")) for i in (1, 2, 3)]

    assert [r.status_code for r in responses] == [400, 400, 429]
    assert responses[2].get_json()["error"] == "too_many_attempts"


def test_behind_two_proxies_a_client_prepended_address_keeps_the_lockout_bucket() -> None:
    app = make_app(rate_limit="100 per hour", lockout="2 per hour", trusted_proxies=2)
    client = app.test_client()

    first = failed_exchange(client, **from_proxy("9.9.9.9, 203.0.113.5, 10.0.0.2"))
    second = failed_exchange(client, **from_proxy("8.8.8.8, 203.0.113.5, 10.0.0.3"))
    third = failed_exchange(client, **from_proxy("7.7.7.7, 6.6.6.6, 203.0.113.5, 10.0.0.2"))
    other = failed_exchange(client, **from_proxy("9.9.9.9, 203.0.113.6, 10.0.0.2"))

    assert [r.status_code for r in (first, second, third, other)] == [400, 400, 429, 400]


def test_behind_two_proxies_an_address_on_its_own_header_line_is_still_client_supplied() -> None:
    # The client sends its own X-Forwarded-For line; the proxies add theirs. The server joins
    # the lines into one list, of which only the last two entries are the proxies'.
    client = make_app(rate_limit="1 per hour", trusted_proxies=2).test_client()

    first = challenge(client, **from_proxy(["9.9.9.9", "203.0.113.5, 10.0.0.2"]))
    second = challenge(client, **from_proxy(["8.8.8.8", "203.0.113.5, 10.0.0.2"]))

    assert (first.status_code, second.status_code) == (200, 429)


def test_behind_two_proxies_too_few_forwarded_addresses_count_as_the_peer() -> None:
    # A request that reached the app without passing both proxies cannot pick its bucket.
    client = make_app(rate_limit="1 per hour", trusted_proxies=2).test_client()

    first = challenge(client, **from_proxy("203.0.113.1"))
    second = challenge(client, **from_proxy("203.0.113.2"))

    assert (first.status_code, second.status_code) == (200, 429)


# -- Host and X-Forwarded-Host ---------------------------------------------------------------


def post_raw(
    app: Flask, path: str, body: dict[str, Any], *, host: str | None, **environ: str
) -> tuple[int, Any]:
    """POST ``body`` straight into the WSGI app with ``HTTP_HOST = host`` (None: no Host at all)
    and the other ``environ`` keys, as a server would: Flask's test client would normalise (or
    choke on) the forged hosts. Returns the status and the JSON body (None if not JSON)."""
    builder = EnvironBuilder(
        path=path, method="POST", data=json.dumps(body), content_type="application/json"
    )
    env = builder.get_environ()
    env.pop("HTTP_HOST", None)
    if host is not None:
        env["HTTP_HOST"] = host
    env.update({"SERVER_NAME": "backend.internal", "REMOTE_ADDR": PROXY, **environ})
    app_iter, status, headers = run_wsgi_app(app, env, buffered=True)
    data = b"".join(app_iter)
    is_json = headers.get("Content-Type", "").startswith("application/json")
    return int(status.split()[0]), json.loads(data) if is_json else None


#: Hosts that name the custom domain in an equivalent spelling: accepted, as that domain.
EQUIVALENT_HOSTS = [
    "LOGIN.ACME.TEST",
    "Login.Acme.Test",
    f"{CUSTOM_DOMAIN}.",
    f"{CUSTOM_DOMAIN}:443",
    f"{CUSTOM_DOMAIN}:8443",
]
#: Hosts that are not a custom domain, or not a host at all: refused, never a challenge.
FORGED_HOSTS = [
    "evil.com",
    DEFAULT_DOMAIN,
    f"evil.com@{CUSTOM_DOMAIN}",
    f"user:password@{CUSTOM_DOMAIN}",
    f"{CUSTOM_DOMAIN}@evil.com",
    f"{CUSTOM_DOMAIN}.evil.com",
    f"evil.{CUSTOM_DOMAIN}",
    f"{CUSTOM_DOMAIN}/evil",
    f"{CUSTOM_DOMAIN}?evil",
    f"{CUSTOM_DOMAIN}#evil",
    f"{CUSTOM_DOMAIN}\\evil",
    f"{CUSTOM_DOMAIN} evil.com",
    f"{CUSTOM_DOMAIN}..",
    f".{CUSTOM_DOMAIN}",
    f"{CUSTOM_DOMAIN}:",
    f"{CUSTOM_DOMAIN}:0",
    f"{CUSTOM_DOMAIN}:99999",
    f"{CUSTOM_DOMAIN}:+443",
    f"{CUSTOM_DOMAIN}:443:443",
    f"{CUSTOM_DOMAIN}:https",
    "l\u043egin.acme.test",  # Cyrillic o
    "\uff4cogin.acme.test",  # full-width l
    "xn--lgin-9ve.acme.test",  # punycode of the Cyrillic look-alike
    "login.acme.test\u3002",  # ideographic full stop
    "[::1]",
    "[::1]:443",
    "127.0.0.1",
    "",
    " ",
    "*.acme.test",
]
#: What servers that join repeated Host lines hand over. (In X-Forwarded-Host a comma separates
#: the hops: only the trusted proxy's entry counts, see test_ratelimit.py.)
REPEATED_HOSTS = [
    f"evil.com,{CUSTOM_DOMAIN}",
    f"{CUSTOM_DOMAIN},evil.com",
    f"{CUSTOM_DOMAIN}, {CUSTOM_DOMAIN}",
]
ENDPOINTS = {
    "challenge": ("/passkey/challenge", {"client_id": "spa"}),
    "register": (
        "/passkey/register",
        {"client_id": "spa", "user_profile": {"email": "mallory@example.com"}},
    ),
}


def rp_id_of(endpoint: str, body: dict[str, Any]) -> str:
    options = body["authn_params_public_key"]
    rp_id: str = options["rpId"] if endpoint == "challenge" else options["rp"]["id"]
    return rp_id


@pytest.fixture(scope="module")
def direct_app() -> Flask:
    """No proxy in front: the Host header counts."""
    return make_app(rate_limit_enabled=False)


@pytest.fixture(scope="module")
def proxied_app() -> Flask:
    """One trusted proxy: its X-Forwarded-Host counts."""
    return make_app(rate_limit_enabled=False, trusted_proxies=1)


def forge(app: Flask, endpoint: str, host: str, *, via: str) -> tuple[int, Any]:
    path, body = ENDPOINTS[endpoint]
    if via == "Host":
        return post_raw(app, path, body, host=host)
    return post_raw(app, path, body, host="backend.internal", HTTP_X_FORWARDED_HOST=host)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("host", [*FORGED_HOSTS, *REPEATED_HOSTS])
def test_forged_host_header_gets_no_challenge(direct_app: Flask, endpoint: str, host: str) -> None:
    status, body = forge(direct_app, endpoint, host, via="Host")

    assert status == 400, body
    assert body is not None and body["error"] == "invalid_request", body


#: Hosts werkzeug's router cannot IDNA-encode: it refuses them before any blueprint is chosen.
UNROUTABLE_HOSTS = {
    "label-over-63": f"{'a' * 64}.acme.test",
    "name-over-255": ".".join(["a" * 60] * 5) + ".test",
}


def api_routes(app: Flask) -> list[tuple[str, str]]:
    """(method, path) of every flask-passkey route of ``app``."""
    ours = {bp.name for bp in app.iter_blueprints() if bp.import_name.startswith("flask_passkey")}
    return [
        ("POST" if "POST" in rule.methods else "GET", rule.rule.replace("<", "").replace(">", ""))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.partition(".")[0] in ours and not rule.endpoint.endswith("_other_methods")
    ]


@pytest.mark.parametrize("host", UNROUTABLE_HOSTS.values(), ids=list(UNROUTABLE_HOSTS))
def test_an_unroutable_host_gets_a_json_400_on_every_endpoint(direct_app: Flask, host: str) -> None:
    routes = api_routes(direct_app)
    assert len(routes) > 10

    for method, path in routes:
        builder = EnvironBuilder(path=path, method=method, json={"client_id": "spa"})
        env = {**builder.get_environ(), "HTTP_HOST": host}
        app_iter, status, headers = run_wsgi_app(direct_app, env, buffered=True)
        assert status.startswith("400"), (method, path, status)
        assert headers["Content-Type"] == "application/json", (method, path)
        assert json.loads(b"".join(app_iter))["error"] == "invalid_request", (method, path)


def test_an_unroutable_host_on_a_host_app_route_is_left_to_the_host_app() -> None:
    app = make_app(rate_limit_enabled=False)
    app.add_url_rule("/hello", "hello", lambda: "hello")
    builder = EnvironBuilder(path="/hello")
    env = {**builder.get_environ(), "HTTP_HOST": UNROUTABLE_HOSTS["label-over-63"]}

    _, status, headers = run_wsgi_app(app, env, buffered=True)

    assert status.startswith("400")
    assert headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("host", [*FORGED_HOSTS, *UNROUTABLE_HOSTS.values()])
def test_forged_x_forwarded_host_gets_no_challenge(
    proxied_app: Flask, endpoint: str, host: str
) -> None:
    status, body = forge(proxied_app, endpoint, host, via="X-Forwarded-Host")

    assert (status, body["error"]) == (400, "invalid_request")


@pytest.mark.parametrize("via", ["Host", "X-Forwarded-Host"])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("host", EQUIVALENT_HOSTS)
def test_equivalent_spelling_of_the_custom_domain_gets_its_rp_id(
    direct_app: Flask, proxied_app: Flask, endpoint: str, host: str, via: str
) -> None:
    status, body = forge(direct_app if via == "Host" else proxied_app, endpoint, host, via=via)

    assert status == 200, body
    assert rp_id_of(endpoint, body) == CUSTOM_DOMAIN


def test_x_forwarded_host_does_not_pick_another_custom_domain_without_a_trusted_proxy() -> None:
    tenant = tenant_data()
    tenant["custom_domains"] = [CUSTOM_DOMAIN, OTHER_DOMAIN]
    client = make_app(tenant=tenant).test_client()

    response = post_challenge(client, headers={"X-Forwarded-Host": OTHER_DOMAIN})

    assert response.get_json()["authn_params_public_key"]["rpId"] == CUSTOM_DOMAIN


@pytest.mark.parametrize("trusted_proxies", [0, 1])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("host", [*EQUIVALENT_HOSTS, OTHER_DOMAIN, *FORGED_HOSTS, *REPEATED_HOSTS])
def test_a_configured_rp_id_is_the_only_one_ever_offered(
    endpoint: str, host: str, trusted_proxies: int, rp_id_apps: dict[int, Flask]
) -> None:
    status, body = forge(
        rp_id_apps[trusted_proxies],
        endpoint,
        host,
        via="Host" if trusted_proxies == 0 else "X-Forwarded-Host",
    )

    if status == 200:
        assert rp_id_of(endpoint, body) == "acme.test"
    else:
        assert status == 400
        assert body is None or "authn_params_public_key" not in body


@pytest.fixture(scope="module")
def rp_id_apps() -> dict[int, Flask]:
    """Apps of a tenant with two custom domains and the custom RP ID acme.test, by the number
    of trusted proxies."""
    tenant = tenant_data()
    tenant["custom_domains"] = [CUSTOM_DOMAIN, OTHER_DOMAIN]
    tenant["rp_id"] = "acme.test"
    return {
        hops: make_app(tenant=tenant, rate_limit_enabled=False, trusted_proxies=hops)
        for hops in (0, 1)
    }


# -- origins at the token endpoint -----------------------------------------------------------

#: Origins that almost match https://login.acme.test or the spa client's https://app.acme.test.
#: (Other hosts, http and a non-default port are in test_signup.py and test_login.py.)
NEAR_MISS_ORIGINS = [
    f"https://{CUSTOM_DOMAIN}/",
    f"https://{CUSTOM_DOMAIN}:443",
    f"https://{CUSTOM_DOMAIN}.",
    f"https://{CUSTOM_DOMAIN.upper()}",
    f"HTTPS://{CUSTOM_DOMAIN}",
    f"https://{CUSTOM_DOMAIN}.evil.com",
    f"https://evil.{CUSTOM_DOMAIN}",
    f"https://{CUSTOM_DOMAIN}evil.com",
    f"https://evil.com/{CUSTOM_DOMAIN}",
    f"https://{CUSTOM_DOMAIN}@evil.com",
    f"wss://{CUSTOM_DOMAIN}",
    "https://acme.test",
    f"{WEB_ORIGIN}/",
    WEB_ORIGIN.upper(),
    f"{WEB_ORIGIN}:443",
    "null",
    "",
    CUSTOM_DOMAIN,
]


@pytest.fixture(scope="module")
def origin_app() -> Flask:
    return make_app(rate_limit_enabled=False)


@pytest.fixture(scope="module")
def member(origin_app: Flask) -> Iterator[SoftAuthenticator]:
    """A user signed up honestly, whose passkey counts its uses."""
    authenticator = SoftAuthenticator(counter="increment")
    passkey_flow(origin_app, authenticator=authenticator).sign_up({"email": new_email()})
    yield authenticator


@pytest.mark.parametrize("origin", [ORIGIN, WEB_ORIGIN])
def test_sign_up_and_sign_in_from_the_exact_origins_work(origin_app: Flask, origin: str) -> None:
    # The control for the refusals below.
    flow = passkey_flow(origin_app, origin=origin)
    flow.sign_up({"email": new_email()})
    assert flow.sign_in()["id_token"]


@pytest.mark.parametrize("origin", NEAR_MISS_ORIGINS)
def test_sign_up_from_a_near_miss_origin_is_refused_and_stores_nothing(
    origin_app: Flask, origin: str
) -> None:
    before = store_snapshot(origin_app)
    flow = passkey_flow(origin_app)
    started = flow.register({"email": new_email()}).get_json()
    credential = flow.authenticator.create(started["authn_params_public_key"], origin=origin)

    assert_oauth_error(flow.token(started["auth_session"], credential), 400, "invalid_grant")
    assert store_snapshot(origin_app) == before


@pytest.mark.parametrize("origin", NEAR_MISS_ORIGINS)
def test_sign_in_from_a_near_miss_origin_is_refused_and_changes_nothing(
    origin_app: Flask, member: SoftAuthenticator, origin: str
) -> None:
    before = store_snapshot(origin_app)
    flow = passkey_flow(origin_app, authenticator=member)
    started = flow.challenge().get_json()
    assertion = member.get(started["authn_params_public_key"], origin=origin)

    assert_oauth_error(flow.token(started["auth_session"], assertion), 400, "invalid_grant")
    assert store_snapshot(origin_app) == before


def test_a_challenge_issued_on_a_port_accepts_only_that_port(origin_app: Flask) -> None:
    flow = passkey_flow(origin_app, host=f"{CUSTOM_DOMAIN}:8443")
    started = flow.register({"email": new_email()}).get_json()
    credential = flow.authenticator.create(started["authn_params_public_key"], origin=ORIGIN)

    assert_oauth_error(flow.token(started["auth_session"], credential), 400, "invalid_grant")
