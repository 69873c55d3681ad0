"""PASSKEY_LOCKOUT: failed token exchanges from one client IP (or IPv6 network) lock it out."""

from __future__ import annotations

import os
import secrets
import time
import uuid
from typing import Any

import pytest
from flask import Flask

import flask_passkey
from flask_passkey import ConfigurationError, PasskeyEvent
from flask_passkey.errors import BackendUnavailable
from flask_passkey.models import WEBAUTHN_GRANT
from flask_passkey.testing import PasskeyFlow, SoftAuthenticator, b64url
from tests import events
from tests.apps import CUSTOM_DOMAIN, ORIGIN, make_app
from tests.databases import REDIS_URL
from tests.support import assert_oauth_error, new_email

EVIL_ORIGIN = "https://evil.example"


class Recorder(events.Recorder):
    """Records events, and counts client authentications (verification work)."""

    def __init__(self) -> None:
        super().__init__()
        self.authentications = 0

    @flask_passkey.hookimpl
    def passkey_authenticate_client(self, context: Any) -> None:
        self.authentications += 1

    def named(self, *names: str) -> list[PasskeyEvent]:
        return [event for event in self.events if event.name in names]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def lockout_app(limit: str | None = "2 per hour", **config: Any) -> Flask:
    config.setdefault("rate_limit", "1000 per hour")
    return make_app(lockout=limit, **config)


def flow_from(app: Flask, ip: str, **kwargs: Any) -> PasskeyFlow:
    """A PasskeyFlow whose requests come from ``ip``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return PasskeyFlow(client, client_id="spa", host=CUSTOM_DOMAIN, **kwargs)


def signed_up(app: Flask, ip: str = "192.0.2.200") -> PasskeyFlow:
    flow = flow_from(app, ip)
    flow.sign_up({"email": new_email()})
    return flow


def failed_sign_in(flow: PasskeyFlow, authenticator: SoftAuthenticator | None = None) -> Any:
    """A sign-in whose assertion comes from the wrong origin: 400 invalid_grant."""
    started = flow.challenge().get_json()
    passkey = authenticator or flow.authenticator
    assertion = passkey.get(started["authn_params_public_key"], origin=EVIL_ORIGIN)
    return flow.token(started["auth_session"], assertion)


def honest_sign_in(flow: PasskeyFlow) -> tuple[str, Any]:
    """An honest sign-in's auth_session and token response."""
    started = flow.challenge().get_json()
    assertion = flow.authenticator.get(started["authn_params_public_key"], origin=ORIGIN)
    return started["auth_session"], flow.token(started["auth_session"], assertion)


def assert_locked_out(response: Any) -> None:
    assert_oauth_error(response, 429, "too_many_attempts")
    assert 0 < int(response.headers["Retry-After"]) <= 3600


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["ten per hour", "10 per fortnight", "10", ";", "-1 per hour"])
def test_invalid_lockout_is_refused_at_init_app(limit: str) -> None:
    with pytest.raises(ConfigurationError, match="PASSKEY_LOCKOUT"):
        lockout_app(limit)


@pytest.mark.parametrize("limit", [None, ""])
def test_no_lockout_when_unset_or_empty(limit: str | None) -> None:
    app = lockout_app(limit)
    flow = signed_up(app)

    statuses = [failed_sign_in(flow).status_code for _ in range(4)]

    assert app.extensions["passkey"].lockout is None
    assert statuses == [400] * 4
    assert honest_sign_in(flow)[1].status_code == 200


def test_lockout_is_off_by_default() -> None:
    assert make_app().config["PASSKEY_LOCKOUT"] is None


# -- per client IP -----------------------------------------------------------------------------


def test_failed_exchanges_from_one_ip_lock_it_out_with_retry_after() -> None:
    app = lockout_app("2 per hour")
    victim = signed_up(app)
    attacker = flow_from(app, "198.51.100.7", authenticator=victim.authenticator)

    first, second, third = (failed_sign_in(attacker) for _ in range(3))

    assert_oauth_error(first, 400, "invalid_grant")
    assert_oauth_error(second, 400, "invalid_grant")
    assert_locked_out(third)


def test_a_locked_out_ip_gets_429_before_any_verification_or_session_use(
    recorder: Recorder,
) -> None:
    app = lockout_app("2 per hour", plugins=[recorder])
    flow = flow_from(app, "198.51.100.8")
    started = flow.register({"email": new_email()}).get_json()
    credential = flow.authenticator.create(started["authn_params_public_key"], origin=ORIGIN)
    for _ in range(2):  # unknown sessions: cheap failures from the same address
        assert_oauth_error(flow.token("no-such-session", credential), 400, "invalid_grant")
    authentications = recorder.authentications

    refused = flow.token(started["auth_session"], credential)

    assert_locked_out(refused)
    assert recorder.authentications == authentications  # the client secret step never ran
    sessions = app.extensions["passkey"].sessions
    assert sessions.take(started["auth_session"], now=time.time()) is not None  # not consumed
    assert app.extensions["passkey"].users.list_users() == []


def guessed_exchange(flow: PasskeyFlow) -> Any:
    """A token exchange for an unknown auth_session: a cheap failure."""
    return flow.token("no-such-session", {"rawId": b64url(os.urandom(32))})


def test_a_lockout_429_says_when_the_lockout_ends() -> None:
    flow = flow_from(lockout_app("1 per minute", rate_limit="100 per hour"), "198.51.100.15")
    assert guessed_exchange(flow).status_code == 400

    locked_out = guessed_exchange(flow)

    assert_oauth_error(locked_out, 429, "too_many_attempts")
    # The rate-limit window (an hour) has requests left: only the lockout's minute counts.
    assert 0 < int(locked_out.headers["Retry-After"]) <= 60
    assert locked_out.headers["X-RateLimit-Remaining"] == "98"


def test_a_lockout_429_with_no_request_left_in_the_window_says_when_the_window_ends() -> None:
    flow = flow_from(lockout_app("1 per minute", rate_limit="3 per hour"), "198.51.100.16")
    failed, locked_out = guessed_exchange(flow), guessed_exchange(flow)

    last = guessed_exchange(flow)

    assert (failed.status_code, locked_out.status_code) == (400, 429)
    assert_oauth_error(last, 429, "too_many_attempts")
    # A retry after the lockout's minute would meet the rate limit: the window's end counts.
    assert last.headers["X-RateLimit-Remaining"] == "0"
    assert 60 < int(last.headers["Retry-After"]) <= 3600


def test_other_ips_are_not_locked_out() -> None:
    app = lockout_app("2 per hour")
    victim = signed_up(app)
    attacker = flow_from(app, "198.51.100.9", authenticator=SoftAuthenticator())
    attacker.sign_up({"email": new_email()})
    for _ in range(3):
        failed_sign_in(attacker)

    assert honest_sign_in(victim)[1].status_code == 200


def test_successful_exchanges_do_not_count() -> None:
    app = lockout_app("2 per hour")
    flow = signed_up(app, ip="198.51.100.10")  # the sign-up was one success already

    for _ in range(4):
        assert honest_sign_in(flow)[1].status_code == 200
    statuses = [failed_sign_in(flow).status_code for _ in range(3)]

    assert statuses == [400, 400, 429]


def test_invalid_client_secret_counts_towards_the_lockout() -> None:
    client = lockout_app("2 per hour").test_client()
    body = {
        "grant_type": "refresh_token",
        "client_id": "basic",
        "refresh_token": "guess",
    }

    statuses = [
        client.post(
            "/oauth/token",
            json=body,
            auth=("basic", f"guess-{i}"),
            headers={"Host": CUSTOM_DOMAIN},
        ).status_code
        for i in range(3)
    ]

    assert statuses == [401, 401, 429]


def test_refresh_token_guesses_count_towards_the_lockout() -> None:
    client = lockout_app("2 per hour").test_client()
    body = {"grant_type": "refresh_token", "client_id": "refreshing"}

    statuses = [
        client.post(
            "/oauth/token",
            json={**body, "refresh_token": secrets.token_urlsafe(32)},
            headers={"Host": CUSTOM_DOMAIN},
        ).status_code
        for _ in range(3)
    ]

    assert statuses == [400, 400, 429]


def test_rate_limited_exchanges_do_not_count() -> None:
    app = lockout_app("2 per hour", rate_limit="1 per hour")
    credential = {"rawId": b64url(os.urandom(32))}
    flow = flow_from(app, "198.51.100.11")

    assert flow.token("no-such-session", credential).status_code == 400
    assert [flow.token("no-such-session", credential).status_code for _ in range(3)] == [429] * 3
    # Had the three 429s counted, the address would be locked out by now.
    app.extensions["passkey"].lockout.check("198.51.100.11")


class DownSessions:
    """A session store whose backend is down."""

    @flask_passkey.hookimpl
    def passkey_session_store(self, app: Flask) -> Any:
        return self

    def put(self, session: Any, *, now: float) -> None:
        raise BackendUnavailable("down")

    def take(self, session_id: str, *, now: float) -> None:
        raise BackendUnavailable("down")

    def put_marker(self, key: str, *, expires_at: float, now: float) -> bool:
        raise BackendUnavailable("down")


def test_unavailable_answers_do_not_count() -> None:
    flow = flow_from(lockout_app("2 per hour", plugins=[DownSessions()]), "198.51.100.14")

    statuses = [flow.token("any-session", {}).status_code for _ in range(4)]

    assert statuses == [503] * 4


def test_lockout_works_with_the_rate_limit_turned_off() -> None:
    app = lockout_app("2 per hour", rate_limit_enabled=False)
    flow = signed_up(app)

    statuses = [failed_sign_in(flow).status_code for _ in range(3)]

    assert statuses == [400, 400, 429]


# -- no lockout without the passkey ------------------------------------------------------------


def test_failures_naming_a_passkey_from_many_ips_do_not_lock_its_owner_out() -> None:
    app = lockout_app("2 per hour")
    victim = signed_up(app, ip="203.0.113.50")
    raw_id = b64url(victim.authenticator.credentials[0].credential_id)
    # A distributed attacker: each attempt from another address, all naming the victim's
    # credential id, with an unknown client_id, an unknown session or a forged assertion.
    for i in range(10):
        attacker = flow_from(app, f"198.18.0.{i}", authenticator=victim.authenticator)
        attacker.client_id = "nobody" if i % 3 == 0 else "spa"
        if i % 3 == 2:
            failed_sign_in(attacker)
        else:
            attacker.token("no-such-session", {"rawId": raw_id})

    _, answer = honest_sign_in(victim)

    assert answer.status_code == 200
    elsewhere = flow_from(app, "192.0.2.99", authenticator=victim.authenticator)
    assert honest_sign_in(elsewhere)[1].status_code == 200


def test_a_failure_another_address_causes_costs_the_owner_nothing() -> None:
    app = lockout_app("1 per hour")
    victim = signed_up(app, ip="203.0.113.60")
    failed_sign_in(flow_from(app, "198.18.1.1", authenticator=victim.authenticator))

    assert honest_sign_in(victim)[1].status_code == 200
    assert honest_sign_in(victim)[1].status_code == 200


def test_addresses_of_one_ipv6_64_share_one_lockout() -> None:
    app = lockout_app("2 per hour")
    credential = {"rawId": b64url(os.urandom(32))}

    statuses = [
        flow_from(app, f"2001:db8:7:8::{i + 1:x}").token("no-such-session", credential).status_code
        for i in range(3)
    ]

    assert statuses == [400, 400, 429]
    assert flow_from(app, "2001:db8:7:9::1").token("no-such-session", credential).status_code == 400


# -- events ------------------------------------------------------------------------------------


def test_every_failure_and_the_lockout_are_reported(recorder: Recorder) -> None:
    app = lockout_app("2 per hour", plugins=[recorder])
    victim = signed_up(app)
    attacker = flow_from(app, "198.51.100.12", authenticator=victim.authenticator)
    recorder.events.clear()

    for _ in range(3):
        failed_sign_in(attacker)

    token_events = [event for event in recorder.events if event.endpoint == "token"]
    assert [event.name for event in token_events] == [
        "request_rejected",
        "request_rejected",
        "lockout_started",
        "locked_out",
    ]
    for event in token_events:
        assert (event.client_ip, event.client_id) == ("198.51.100.12", "spa")
        assert event.description
    assert [event.error for event in token_events] == [
        "invalid_grant",
        "invalid_grant",
        None,
        "too_many_attempts",
    ]
    assert "verified" in (token_events[0].description or "")
    assert "client IP" in (token_events[2].description or "")


# -- across processes (Redis) ------------------------------------------------------------------


@pytest.mark.redis
def test_lockout_holds_across_apps_sharing_redis(redis_client: Any) -> None:
    ip = f"198.18.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
    raw_id = b64url(os.urandom(32))
    one, two = (make_app(lockout="2 per hour", rate_limit_storage_uri=REDIS_URL) for _ in range(2))
    body = {
        "grant_type": WEBAUTHN_GRANT,
        "client_id": "spa",
        "auth_session": uuid.uuid4().hex,
        "authn_response": {"rawId": raw_id},
    }

    def exchange(app: Flask) -> int:
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = ip
        return client.post("/oauth/token", json=body, headers={"Host": CUSTOM_DOMAIN}).status_code

    try:
        assert [exchange(one), exchange(two), exchange(one), exchange(two)] == [400, 400, 429, 429]
    finally:
        for key in redis_client.scan_iter(match=f"LIMITS:*/{ip}/*"):
            redis_client.delete(key)


@pytest.mark.redis
def test_deployments_with_their_own_key_prefix_do_not_share_lockouts(redis_client: Any) -> None:
    ip = f"198.18.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
    one, two = (
        make_app(
            lockout="2 per hour",
            rate_limit_storage_uri=REDIS_URL,
            rate_limit_key_prefix=f"deployment-{name}-{uuid.uuid4().hex}",
        )
        for name in ("one", "two")
    )
    credential = {"rawId": b64url(os.urandom(32))}

    try:
        assert [
            flow_from(one, ip).token("no-such-session", credential).status_code for _ in range(3)
        ] == [400, 400, 429]
        assert flow_from(two, ip).token("no-such-session", credential).status_code == 400
    finally:
        for key in redis_client.scan_iter(match=f"LIMITS:*/{ip}/*"):
            redis_client.delete(key)
