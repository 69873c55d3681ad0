"""The tenant log (``PASSKEY_TENANT_LOG``): Auth0-style JSON lines, with Auth0's type codes,
without secrets, with client IPs masked on demand, and never at a request's expense."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from flask_passkey.builtins.tenant_log import LOGGER_NAME, IpMasker, TenantLog
from flask_passkey.errors import ConfigurationError
from flask_passkey.models import WEBAUTHN_GRANT
from flask_passkey.testing import PasskeyFlow
from tests.apps import CONFIDENTIAL_SECRET, CUSTOM_DOMAIN, HOST, make_app, tenant_data
from tests.support import new_email
from tests.test_docs import DOCS, TABLE_ROW, formatted, sections
from tests.test_event_log import Secrets

FOREIGN_ORIGIN = "https://evil.example"


class Lines(logging.Handler):
    """The tenant log lines the app wrote, parsed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def parsed(self) -> list[dict[str, Any]]:
        return [json.loads(record.getMessage()) for record in self.records]

    def types(self) -> list[str]:
        return [line["type"] for line in self.parsed()]


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    tenant_logger = logging.getLogger(LOGGER_NAME)
    level = tenant_logger.level
    tenant_logger.addHandler(handler)
    try:
        yield handler
    finally:
        tenant_logger.removeHandler(handler)
        tenant_logger.setLevel(level)


def tenant_log_app(**config: Any) -> Flask:
    return make_app(tenant_log=True, **config)


def plugin(app: Flask) -> TenantLog:
    found = app.extensions["passkey"].plugin_manager.get_plugin("tenant_log")
    assert isinstance(found, TenantLog)
    return found


def written(app: Flask, lines: Lines) -> list[dict[str, Any]]:
    assert plugin(app).flush()
    return lines.parsed()


class Harvesting:
    """A Flask test client that keeps every secret it sends or receives (see Secrets)."""

    def __init__(self, app: Flask, secrets: Secrets) -> None:
        self.client = app.test_client()
        self.secrets = secrets

    def post(self, path: str, **kwargs: Any) -> Any:
        self.secrets.harvest(kwargs.get("json"))
        if kwargs.get("auth"):
            self.secrets.add(kwargs["auth"][1])
        response = self.client.post(path, **kwargs)
        if response.is_json:
            self.secrets.harvest(response.get_json())
        return response


# -- the acceptance test -----------------------------------------------------------------------


def test_sign_up_login_refresh_429_and_refused_origin_lines_have_auth0_codes_and_no_secret(
    lines: Lines,
) -> None:
    app = tenant_log_app(rate_limit="12 per hour")
    secrets = Secrets()
    http = Harvesting(app, secrets)
    flow = PasskeyFlow(http, client_id="refreshing", host=CUSTOM_DOMAIN)
    confidential = PasskeyFlow(
        http, client_id="confidential", client_secret=CONFIDENTIAL_SECRET, host=CUSTOM_DOMAIN
    )

    confidential.sign_up({"email": new_email()})
    flow.sign_up({"email": new_email()}, scope="openid offline_access")
    signed_in = flow.sign_in(scope="openid offline_access")
    refreshed = http.post(
        "/oauth/token",
        json={
            "grant_type": "refresh_token",
            "client_id": "refreshing",
            "refresh_token": signed_in["refresh_token"],
        },
        headers=HOST,
    )
    assert refreshed.status_code == 200
    refused_origin = http.post(
        "/passkey/challenge",
        json={"client_id": "refreshing", "realm": "Username-Password-Authentication"},
        headers={**HOST, "Origin": FOREIGN_ORIGIN},
    )
    assert refused_origin.status_code == 200
    assert "Access-Control-Allow-Origin" not in refused_origin.headers
    for _ in range(12):
        limited = http.post("/passkey/challenge", json={"client_id": "refreshing"}, headers=HOST)
        if limited.status_code == 429:
            break
    assert limited.status_code == 429
    secrets.authenticator(flow.authenticator)
    secrets.authenticator(confidential.authenticator)
    assert CONFIDENTIAL_SECRET in secrets.values

    logged = written(app, lines)
    assert [t for t in lines.types() if t != "passkey_challenge_started"] == [
        "ss",
        "ss",
        "s",
        "sertft",
        "fco",
        "api_limit",
    ]
    assert secrets.values and all(
        secrets.found_in(record.getMessage()) == [] for record in lines.records
    )
    assert all(secrets.found_in(repr(vars(record))) == [] for record in lines.records)
    by_type = {line["type"]: line for line in logged}
    assert by_type["fco"]["description"] == (
        f"Origin {FOREIGN_ORIGIN!r} is not an allowed origin of the client."
    )
    assert by_type["api_limit"]["details"]["error"] == "too_many_requests"
    assert by_type["s"]["user_id"] == by_type["sertft"]["user_id"]
    assert by_type["s"]["user_id"] in {
        line.get("user_id") for line in logged if line["type"] == "ss"
    }


def test_a_line_has_the_fields_of_an_auth0_log(lines: Lines) -> None:
    app = tenant_log_app()
    flow = PasskeyFlow(app.test_client(), client_id="refreshing", host=CUSTOM_DOMAIN)

    flow.sign_up({"email": new_email()})
    *_, signed_up = written(app, lines)

    assert signed_up.keys() == {
        "date",
        "type",
        "description",
        "client_id",
        "client_name",
        "connection",
        "user_id",
        "hostname",
        "ip",
        "user_agent",
        "log_id",
        "details",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", signed_up["date"])
    assert signed_up["type"] == "ss"
    assert signed_up["description"] == "Successful signup"
    assert signed_up["client_id"] == "refreshing"
    assert signed_up["connection"] == "Username-Password-Authentication"
    assert signed_up["hostname"] == CUSTOM_DOMAIN
    assert signed_up["ip"] == "127.0.0.1"
    assert signed_up["user_agent"].startswith("Werkzeug/")  # the test client's
    assert signed_up["details"]["event"] == "signup_succeeded"
    assert signed_up["details"]["grant_type"] == WEBAUTHN_GRANT


def test_lines_name_the_client_and_the_user_agent(lines: Lines) -> None:
    tenant = tenant_data()
    tenant["clients"][0]["name"] = "Acme SPA"
    app = make_app(tenant=tenant, tenant_log=True)

    app.test_client().post(
        "/passkey/challenge",
        json={"client_id": tenant["clients"][0]["client_id"]},
        headers={**HOST, "User-Agent": "Mozilla/5.0 (X11) Firefox/140.0"},
    )

    (line,) = written(app, lines)
    assert line["type"] == "passkey_challenge_started"
    assert line["client_name"] == "Acme SPA"
    assert line["user_agent"] == "Mozilla/5.0 (X11) Firefox/140.0"


def test_each_refusal_has_its_code(lines: Lines) -> None:
    app = tenant_log_app(lockout="1 per hour")
    client = app.test_client()
    webauthn = {"grant_type": WEBAUTHN_GRANT, "auth_session": "x", "authn_response": {}}

    client.post("/passkey/challenge", json={"client_id": "nobody"}, headers=HOST)
    client.post("/passkey/register", json={"client_id": "refreshing"}, headers=HOST)
    client.post(
        "/oauth/token",
        json={"grant_type": "refresh_token", "client_id": "refreshing", "refresh_token": "x"},
        headers=HOST,
    )
    client.post("/oauth/token", json={**webauthn, "client_id": "refreshing"}, headers=HOST)
    client.post("/oauth/revoke", json={"client_id": "nobody", "token": "x"}, headers=HOST)
    client.get("/userinfo", headers=HOST)

    assert [(line["type"], line["details"]["event"]) for line in written(app, lines)] == [
        ("passkey_challenge_failed", "request_rejected"),
        ("fs", "request_rejected"),
        ("fertft", "request_rejected"),
        ("limit_mu", "lockout_started"),
        ("limit_mu", "locked_out"),
        ("flask_passkey_revoke_failed", "request_rejected"),
        ("flask_passkey_userinfo_failed", "request_rejected"),
    ]


def test_the_events_of_one_request_share_its_request_id(lines: Lines) -> None:
    app = tenant_log_app(lockout="1 per hour")
    client = app.test_client()
    refresh = {"grant_type": "refresh_token", "client_id": "refreshing", "refresh_token": "x"}

    client.post("/oauth/token", json=refresh, headers=HOST)
    client.post("/oauth/token", json=refresh, headers=HOST)

    first, started, second = written(app, lines)
    assert (first["type"], started["type"], second["type"]) == ("fertft", "limit_mu", "limit_mu")
    assert first["details"]["request_id"] == started["details"]["request_id"]
    assert first["details"]["request_id"] != second["details"]["request_id"]
    assert len({first["log_id"], started["log_id"], second["log_id"]}) == 3


def test_a_same_origin_request_is_no_refused_origin(lines: Lines) -> None:
    app = tenant_log_app()

    app.test_client().post(
        "/passkey/challenge",
        json={"client_id": "refreshing"},
        headers={**HOST, "Origin": f"https://{CUSTOM_DOMAIN}"},
    )

    assert [line["type"] for line in written(app, lines)] == ["passkey_challenge_started"]


def test_the_tenant_log_is_off_unless_configured(lines: Lines) -> None:
    app = make_app()

    app.test_client().post("/passkey/challenge", json={"client_id": "spa"}, headers=HOST)

    assert written(app, lines) == []


# -- client IPs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "truncated"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:abcd:12:34::1", "2001:db8:abcd::"),
        ("not an address", ""),
    ],
)
def test_a_truncated_ip_keeps_only_its_network(ip: str, truncated: str) -> None:
    assert IpMasker("truncated", b"")(ip) == truncated


def test_a_hashed_ip_is_the_same_for_one_key_and_reveals_nothing() -> None:
    one, other = IpMasker("hashed", b"k" * 32), IpMasker("hashed", b"j" * 32)

    assert one("203.0.113.77") == one("203.0.113.77")
    assert one("203.0.113.77") != one("203.0.113.78")
    assert one("203.0.113.77") != other("203.0.113.77")
    assert "203" not in one("203.0.113.77")
    assert re.fullmatch(r"[0-9a-f]{32}", one("203.0.113.77"))


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, "198.51.100.23"),
        ({"tenant_log_ip": "truncated"}, "198.51.100.0"),
        (
            {"tenant_log_ip": "hashed", "tenant_log_ip_key": "a-key-of-16-chars"},
            IpMasker("hashed", b"a-key-of-16-chars")("198.51.100.23"),
        ),
    ],
)
def test_the_configured_ip_mode_applies_to_lines(
    lines: Lines, config: dict[str, str], expected: str
) -> None:
    app = tenant_log_app(**config)

    app.test_client().post(
        "/passkey/challenge",
        json={"client_id": "spa"},
        headers=HOST,
        environ_base={"REMOTE_ADDR": "198.51.100.23"},
    )

    (line,) = written(app, lines)
    assert line["ip"] == expected


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"tenant_log": "yes"}, "PASSKEY_TENANT_LOG must be True or False."),
        ({"tenant_log_ip": "anonymous"}, "PASSKEY_TENANT_LOG_IP must be one of"),
        ({"tenant_log_ip_key": "short"}, "PASSKEY_TENANT_LOG_IP_KEY must be a string of 16"),
        ({"tenant_log_queue_size": 0}, "PASSKEY_TENANT_LOG_QUEUE_SIZE must be a whole number"),
    ],
)
def test_a_bad_setting_stops_the_app(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        make_app(**config)


# -- never at a request's expense --------------------------------------------------------------


class Raising(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def handle(self, record: logging.LogRecord) -> bool:
        self.calls += 1
        raise OSError("the log collector is gone")


def test_a_handler_that_raises_fails_no_request(
    lines: Lines, caplog: pytest.LogCaptureFixture
) -> None:
    raising = Raising()
    logging.getLogger(LOGGER_NAME).addHandler(raising)
    try:
        app = tenant_log_app()
        flow = PasskeyFlow(app.test_client(), client_id="refreshing", host=CUSTOM_DOMAIN)
        caplog.set_level(logging.ERROR, logger="flask_passkey")

        flow.sign_up({"email": new_email()})  # asserts each step answered 200
        flow.sign_in()
        written(app, lines)
    finally:
        logging.getLogger(LOGGER_NAME).removeHandler(raising)

    assert raising.calls == 4  # the worker carried on after each failure
    assert lines.types() == ["passkey_challenge_started", "ss", "passkey_challenge_started", "s"]
    assert "A handler of the flask_passkey.tenant_log logger raised" in caplog.text


class Blocked(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.handled = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.release.wait(30)
        self.handled += 1


def test_a_blocked_handler_blocks_no_request_and_what_overflows_is_counted(
    lines: Lines, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = Blocked()
    logging.getLogger(LOGGER_NAME).addHandler(blocked)
    try:
        app = tenant_log_app(tenant_log_queue_size=3)
        client = app.test_client()
        caplog.set_level(logging.WARNING, logger="flask_passkey")

        started = time.monotonic()
        statuses = [
            client.post("/passkey/challenge", json={"client_id": "spa"}, headers=HOST).status_code
            for _ in range(20)
        ]
        elapsed = time.monotonic() - started
        blocked.release.set()
        assert plugin(app).flush()
    finally:
        logging.getLogger(LOGGER_NAME).removeHandler(blocked)

    assert statuses == [200] * 20
    assert elapsed < 10  # the handler waits 30 s per line
    dropped = plugin(app).dropped
    assert dropped >= 20 - 4  # at most one line in the handler and three queued
    assert blocked.handled + dropped == 20
    assert f"{dropped} tenant log line(s) dropped: the queue was full" in caplog.text


# -- docs ----------------------------------------------------------------------------------------


def test_configuration_md_documents_the_keys_with_their_defaults() -> None:
    (text,) = (
        body for heading, body in sections(DOCS / "configuration.md").items()
        if heading.endswith("(`tenant_log`)")
    )  # fmt: skip
    declared = TenantLog().passkey_config_defaults()
    assert dict(TABLE_ROW.findall(text)) == {key: formatted(v) for key, v in declared.items()}


def test_logs_md_lists_every_code_the_plugin_writes() -> None:
    from flask_passkey.builtins import tenant_log

    table = (DOCS / "logs.md").read_text()
    codes = {*tenant_log._TYPES.values(), *tenant_log._REJECTED_AT.values()}
    codes |= {"f", "fertft", "flask_passkey_request_rejected"}
    codes |= {"flask_passkey_passkey_renamed"}
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", table, re.MULTILINE))
    assert codes <= documented


def test_a_passkey_signed_for_another_origin_is_a_failed_login(lines: Lines) -> None:
    app = tenant_log_app()
    flow = PasskeyFlow(app.test_client(), client_id="refreshing", host=CUSTOM_DOMAIN)
    started = flow.register({"email": new_email()}).get_json()
    credential = flow.authenticator.create(
        started["authn_params_public_key"], origin=FOREIGN_ORIGIN
    )

    refused = flow.token(started["auth_session"], credential)

    assert refused.status_code == 400
    *_, line = written(app, lines)
    assert (line["type"], line["details"]["error"]) == ("f", "invalid_grant")
    # The caller's short description; what failed is for the operator, in the details.
    assert line["description"] == "The passkey could not be verified."
    assert FOREIGN_ORIGIN in line["details"]["detail"]
