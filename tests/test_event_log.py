"""The built-in event log, what rejection events carry, and that no secret reaches any log.

The last test runs whole ceremonies (sign-up, sign-in, refresh and a dozen failures) through a
real HTTP server with every logger at DEBUG (werkzeug's request lines, SQLAlchemy's statements
and rows, flask-limiter, the driver...) and looks for every secret the ceremonies produced in
everything that was logged.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import URL
from webauthn.helpers import base64url_to_bytes, encode_cbor
from werkzeug.serving import make_server

import flask_passkey
from flask_passkey.models import WEBAUTHN_GRANT
from flask_passkey.testing import PasskeyFlow, SoftAuthenticator, b64url
from tests.apps import (
    BASIC_SECRET,
    CONFIDENTIAL_SECRET,
    CUSTOM_DOMAIN,
    ORIGIN,
    make_app,
)
from tests.databases import url_text
from tests.events import Recorder
from tests.support import new_email, post_challenge, stable_error

LOGGER = "flask_passkey"


def event_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and hasattr(r, "passkey_event")]


# -- the event_log plugin ----------------------------------------------------------------------


def test_successes_are_logged_at_info_and_failures_at_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = make_app(lockout="1 per hour").test_client()
    caplog.set_level(logging.INFO, logger=LOGGER)

    post_challenge(client)
    post_challenge(client, {"client_id": "nobody"})

    records = event_records(caplog)
    assert [(r.levelname, r.passkey_event.name) for r in records] == [
        ("INFO", "challenge_issued"),
        ("WARNING", "request_rejected"),
    ]
    assert records[0].getMessage().startswith("passkey challenge_issued endpoint='challenge' ")
    assert "error='invalid_client'" in records[1].getMessage()
    assert "client_id='nobody'" in records[1].getMessage()


def test_event_log_can_be_disabled_by_name(caplog: pytest.LogCaptureFixture) -> None:
    client = make_app(disabled_plugins=["event_log"]).test_client()
    caplog.set_level(logging.DEBUG)

    post_challenge(client)
    post_challenge(client, {"client_id": "nobody"})

    assert event_records(caplog) == []


def test_a_client_supplied_value_cannot_forge_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    client = make_app().test_client()
    caplog.set_level(logging.INFO, logger=LOGGER)
    forged = "x\nWARNING:flask_passkey:passkey login_succeeded user_id='admin'"

    post_challenge(client, {"client_id": forged})

    (record,) = event_records(caplog)
    assert "\n" not in record.getMessage()
    assert record.passkey_event.client_id == forged


# -- rejection events carry the client_id ------------------------------------------------------


def test_rejections_carry_the_client_id_the_request_names() -> None:
    recorder = Recorder()
    client = make_app(plugins=[recorder]).test_client()
    host = {"Host": CUSTOM_DOMAIN}
    token_body = {"grant_type": WEBAUTHN_GRANT, "auth_session": "x", "authn_response": {}}

    post_challenge(client, {"client_id": "third-party"})
    client.post("/passkey/register", json={"client_id": "spa"}, headers=host)
    client.post("/oauth/token", json={**token_body, "client_id": "spa"}, headers=host)
    client.post("/oauth/token", json=token_body, auth=("basic", "wrong"), headers=host)
    client.post("/oauth/token", json={**token_body, "client_id": "nobody"}, headers=host)
    client.post("/oauth/token", json={"grant_type": "password"}, headers=host)

    assert [(e.name, e.endpoint, e.client_id, e.error) for e in recorder.events] == [
        ("request_rejected", "challenge", "third-party", "unauthorized_client"),
        ("request_rejected", "register", None, "invalid_request"),  # a body that is not one
        ("request_rejected", "token", "spa", "invalid_grant"),
        ("request_rejected", "token", "basic", "invalid_client"),
        ("request_rejected", "token", "nobody", "invalid_client"),
        ("request_rejected", "token", None, "unsupported_grant_type"),
    ]
    assert all(event.description for event in recorder.events)


class Broken:
    @flask_passkey.hookimpl
    def passkey_check_first_party(self, context: Any) -> None:
        raise RuntimeError("a bug in a plugin")


def test_a_server_error_is_reported_too() -> None:
    recorder = Recorder()
    app = make_app(plugins=[Broken(), recorder])
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production

    response = post_challenge(app.test_client())

    assert response.status_code == 500
    assert stable_error(response) == {
        "error": "server_error",
        "error_description": "Internal server error.",
    }
    assert [(e.name, e.endpoint, e.client_id, e.error) for e in recorder.events] == [
        ("request_rejected", "challenge", "spa", "server_error")
    ]


# -- no secret in any log ----------------------------------------------------------------------


class HttpResponse:
    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status_code = status
        self.headers = headers
        self.body = body

    def get_json(self) -> Any:
        return json.loads(self.body)


class HttpClient:
    """Just enough of Flask's test client, over real HTTP, for PasskeyFlow and these tests."""

    def __init__(self, port: int) -> None:
        self.port = port

    def post(
        self,
        path: str,
        *,
        json: Any = None,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> HttpResponse:
        all_headers = {"Host": CUSTOM_DOMAIN, **(headers or {})}
        if auth is not None:
            credentials = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            all_headers["Authorization"] = f"Basic {credentials}"
        if data is not None:
            from urllib.parse import urlencode

            body = urlencode(data).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            body = _dumps(json)
            all_headers["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            connection.request("POST", path, body=body, headers=all_headers)
            response = connection.getresponse()
            return HttpResponse(response.status, response.headers, response.read())
        finally:
            connection.close()


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


class Secrets:
    """Every secret value the ceremonies produced, in each spelling a log could show."""

    FIELDS = frozenset(
        {
            "auth_session",
            "challenge",
            "access_token",
            "id_token",
            "refresh_token",
            "client_secret",
            "clientDataJSON",
            "attestationObject",
            "authenticatorData",
            "signature",
            "userHandle",
            "publicKey",
        }
    )

    def __init__(self) -> None:
        self.values: set[str] = set()

    def add(self, value: str | bytes) -> None:
        if isinstance(value, bytes):
            self.values.update({b64url(value), value.hex(), repr(value)[2:-1]})
            return
        self.values.add(value)
        if value.count(".") == 2:  # a JWT: its claims and its signature on their own too
            self.values.update(value.split(".")[1:])
        else:
            with contextlib.suppress(ValueError):  # not base64url: only the text itself
                self.add(base64url_to_bytes(value))

    def harvest(self, data: Any) -> Any:
        """Collect the secret fields of a request or response body; return ``data``."""
        if isinstance(data, dict):
            for key, value in data.items():
                if key in self.FIELDS and isinstance(value, str) and value:
                    self.add(value)
                elif key == "user" and isinstance(value, dict):  # creation options
                    self.add(value["id"])
                else:
                    self.harvest(value)
        elif isinstance(data, list):
            for value in data:
                self.harvest(value)
        return data

    def authenticator(self, passkey: SoftAuthenticator) -> None:
        for credential in passkey.credentials:
            self.add(credential.cose_public_key)
            self.add(credential.user_handle)

    def found_in(self, text: str) -> list[str]:
        return sorted(value for value in self.values if len(value) >= 12 and value in text)


class HarvestingClient(HttpClient):
    """An HttpClient that collects the secrets of everything it sends and receives."""

    def __init__(self, port: int, secrets: Secrets) -> None:
        super().__init__(port)
        self.secrets = secrets

    def post(self, path: str, **kwargs: Any) -> HttpResponse:
        self.secrets.harvest(kwargs.get("json"))
        self.secrets.harvest(kwargs.get("data"))
        if kwargs.get("auth"):
            self.secrets.add(kwargs["auth"][1])
        response = super().post(path, **kwargs)
        if response.headers.get("Content-Type", "").startswith("application/json"):
            self.secrets.harvest(response.get_json())
        return response


class CaptureAll(logging.Handler):
    """Every record of every logger, formatted with its traceback, and its raw attributes."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record) + " " + repr(vars(record)))


LOUD_LOGGERS = (
    "",
    "flask_passkey",
    "flask_passkey_redis",
    "conftest",
    "flask.app",
    "werkzeug",
    "sqlalchemy",
    "sqlalchemy.engine",
    "sqlalchemy.pool",
    "alembic",
    "flask_limiter",
    "limits",
    "psycopg",
    "redis",
    "webauthn",
)


@pytest.fixture
def everything_logged() -> Iterator[CaptureAll]:
    """The root logger and every library logger at DEBUG, into one handler."""
    handler = CaptureAll()
    saved = {name: logging.getLogger(name).level for name in LOUD_LOGGERS}
    for name in LOUD_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture
def served(everything_logged: CaptureAll, database_url: URL) -> Iterator[int]:
    """The port of an app on the SQL store behind a real (werkzeug) HTTP server, built while
    everything is logged."""
    app = make_app(database_url=url_text(database_url), lockout="12 per hour")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.port
    finally:
        server.shutdown()
        thread.join(10)
        app.extensions["passkey"].users.close()


def unusable_key_attestation(options: dict[str, Any]) -> dict[str, Any]:
    """A "none" attestation of an EC2 key whose point is not on P-256."""
    credential_id = os.urandom(32)
    cose_key = encode_cbor({1: 2, 3: -7, -1: 1, -2: os.urandom(32), -3: os.urandom(32)})
    auth_data = (
        hashlib.sha256(options["rp"]["id"].encode()).digest()
        + bytes([0x45])  # UP, UV, AT
        + bytes(4)
        + bytes(16)
        + len(credential_id).to_bytes(2, "big")
        + credential_id
        + cose_key
    )
    client_data = json.dumps(
        {"type": "webauthn.create", "challenge": options["challenge"], "origin": ORIGIN}
    ).encode()
    return {
        "id": b64url(credential_id),
        "rawId": b64url(credential_id),
        "type": "public-key",
        "clientExtensionResults": {},
        "response": {
            "clientDataJSON": b64url(client_data),
            "attestationObject": b64url(
                encode_cbor({"fmt": "none", "attStmt": {}, "authData": auth_data})
            ),
        },
    }


def test_no_secret_reaches_any_log(served: int, everything_logged: CaptureAll) -> None:
    port = served
    secrets = Secrets()
    secrets.add(CONFIDENTIAL_SECRET)
    secrets.add(BASIC_SECRET)
    http = HarvestingClient(port, secrets)
    statuses: list[int] = []

    def expect(status: int, response: HttpResponse) -> Any:
        statuses.append(response.status_code)
        assert response.status_code == status, response.body
        return response.get_json()

    # Sign-up, sign-in and refresh, with a public client...
    ann = PasskeyFlow(http, client_id="refreshing", host=CUSTOM_DOMAIN)
    ann.sign_up({"email": new_email()}, scope="openid email offline_access")
    signed_in = ann.sign_in(scope="openid offline_access")
    refresh = {"grant_type": "refresh_token", "client_id": "refreshing"}
    expect(200, http.post("/oauth/token", json={**refresh, **_pick(signed_in, "refresh_token")}))
    # ... and with confidential clients (secret in the body, in HTTP Basic, in a form).
    bob = PasskeyFlow(
        http, client_id="confidential", client_secret=CONFIDENTIAL_SECRET, host=CUSTOM_DOMAIN
    )
    bob.sign_up({"email": new_email()})
    started = expect(
        200,
        http.post(
            "/passkey/register",
            json={"client_id": "basic", "user_profile": {"email": new_email()}},
            auth=("basic", BASIC_SECRET),
        ),
    )
    carol = SoftAuthenticator()
    credential = carol.create(started["authn_params_public_key"], origin=ORIGIN)
    tokens = expect(
        200,
        http.post(
            "/oauth/token",
            data={
                "grant_type": WEBAUTHN_GRANT,
                "auth_session": started["auth_session"],
                "authn_response": json.dumps(credential),
                "scope": "openid offline_access",
            },
            auth=("basic", BASIC_SECRET),
        ),
    )

    # Failures, each with a secret in play.
    wrong_secret = {"client_id": "confidential", "client_secret": "wrong-but-secret-1"}
    expect(401, http.post("/passkey/challenge", json=wrong_secret))
    basic_refresh = {**refresh, "client_id": "basic", **_pick(tokens, "refresh_token")}
    guess = ("basic", "wrong-but-secret-2")
    expect(401, http.post("/oauth/token", json=basic_refresh, auth=guess))
    reused = {**refresh, **_pick(signed_in, "refresh_token")}
    expect(400, http.post("/oauth/token", json=reused))
    session, options = _started(ann.challenge())
    expect(400, ann.token(session, ann.authenticator.get(options, origin="https://evil.example")))
    expect(400, ann.token(session, ann.authenticator.get(options, origin=ORIGIN)))  # replayed
    session, options = _started(ann.challenge())
    assertion = ann.authenticator.get(options, origin=ORIGIN)
    expect(400, ann.token(session, _with(assertion, signature=_reversed)))
    session, options = _started(ann.challenge())
    handle = carol.credentials[0].user_handle  # another user's
    assertion = ann.authenticator.get(options, origin=ORIGIN, user_handle=handle)
    expect(400, ann.token(session, assertion))
    session, options = _started(ann.challenge())
    assertion = ann.authenticator.get(options, origin=ORIGIN)
    expect(400, ann.token(session, _with(assertion, clientDataJSON=lambda value: value[5:])))
    session, options = _started(ann.register({"email": new_email()}))
    expect(400, ann.token(session, unusable_key_attestation(options)))
    session, options = _started(ann.register({"email": new_email()}))
    lying = SoftAuthenticator().create(options, origin=ORIGIN, rp_id="acme.test")
    expect(400, ann.token(session, lying))
    # ...until the lockout starts and refuses the next one.
    for _ in range(10):
        guessed = {**refresh, "refresh_token": os.urandom(16).hex()}
        if http.post("/oauth/token", json=guessed).status_code == 429:
            break
    else:
        pytest.fail("the lockout never started")

    for passkey in (ann.authenticator, bob.authenticator, carol):
        secrets.authenticator(passkey)
    logged = "\n".join(everything_logged.lines)
    names = {record.name for record in everything_logged.records}
    # The capture saw the loggers in question...
    assert {"werkzeug", "flask_passkey"} <= names
    assert any(name.startswith("sqlalchemy.engine") for name in names)
    assert "lockout_started" in logged and "locked_out" in logged
    # ... and none of the secrets, nor any error of ours.
    assert len(secrets.values) > 100
    assert secrets.found_in(logged) == []
    assert not [r for r in everything_logged.records if r.levelno >= logging.ERROR]
    assert 500 not in statuses


def _pick(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {key: body[key]}


def _started(response: HttpResponse) -> tuple[str, dict[str, Any]]:
    body = response.get_json()
    assert response.status_code == 200, body
    return body["auth_session"], body["authn_params_public_key"]


def _with(credential: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``credential`` with ``response`` members passed through the given functions."""
    response = dict(credential["response"])
    for name, change in changes.items():
        response[name] = change(response[name])
    return {**credential, "response": response}


def _reversed(value: str) -> str:
    return value[::-1]
