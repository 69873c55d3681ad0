"""flask-passkey under gunicorn with 4 sync worker processes on PostgreSQL (users) and Redis
(pending ceremonies): a challenge issued by one worker is redeemed by another, an
auth_session redeemed by 50 clients at once is honoured exactly once, and so is a refresh
token (whose replays then revoke its family)."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from flask_passkey.stores.sql import upgrade_database
from flask_passkey.testing import PasskeyFlow, SoftAuthenticator
from tests.apps import CUSTOM_DOMAIN, ORIGIN, generate_rsa_pem, tenant_data
from tests.databases import REDIS_URL, PostgresSchemas, backend_missing, delete_keys
from tests.servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

#: The gunicorn of the interpreter running the tests (the dev extra installs it).
GUNICORN = Path(sys.executable).parent / "gunicorn"
WORKERS = 4
CLIENT_ID = "spa"  # tenant_data()'s public client
#: A public client with refresh tokens, added to tenant_data().
OFFLINE_CLIENT = {
    "client_id": "offline",
    "connections": ["Username-Password-Authentication"],
    "grant_types": ["urn:okta:params:oauth:grant-type:webauthn", "refresh_token"],
}
#: Upper bound for one HTTP request, the server start and the server stop.
TIMEOUT = 20.0
#: The limiter's Redis keys: ``LIMITS:LIMITER/<PASSKEY_RATE_LIMIT_KEY_PREFIX>/<ip>/...``.
LIMITER_KEYS = "LIMITS:LIMITER/"

APP_MODULE = """\
import json
import os

from flask import Flask

from flask_passkey import Passkey

app = Flask(__name__)
app.config.update(json.loads(os.environ["PASSKEY_GUNICORN_TEST_CONFIG"]))
Passkey(app)


@app.after_request
def add_worker_pid(response):
    response.headers["X-Worker-Pid"] = str(os.getpid())
    return response
"""


@dataclass
class Response:
    status_code: int
    headers: http.client.HTTPMessage
    body: bytes

    def get_json(self) -> Any:
        return json.loads(self.body)

    @property
    def pid(self) -> int:
        return int(self.headers["X-Worker-Pid"])


def _headers() -> dict[str, str]:
    return {"Host": CUSTOM_DOMAIN, "Content-Type": "application/json", "Origin": ORIGIN}


class HttpClient:
    """The part of Flask's test client PasskeyFlow uses, over real HTTP (one connection per
    request, so the kernel hands each to whichever worker accepts first)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def post(self, path: str, *, json: Any, headers: dict[str, str] | None = None) -> Response:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            connection.request(
                "POST", path, body=_dumps(json), headers={**_headers(), **(headers or {})}
            )
            response = connection.getresponse()
            return Response(response.status, response.headers, response.read())
        finally:
            connection.close()


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.fixture(scope="module")
def server_port(
    postgres_schemas: PostgresSchemas,
    redis_client: redis.Redis,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[int]:
    """gunicorn with WORKERS sync workers serving the app of APP_MODULE; its port."""
    if not os.access(GUNICORN, os.X_OK):
        backend_missing(f"gunicorn is not installed at {GUNICORN}")
    run = secrets.token_hex(6)
    redis_prefix = f"flask-passkey-gunicorn-test:{run}:"
    limiter_prefix = f"passkey-gunicorn-test-{run}"
    database_url = postgres_schemas.new_url().render_as_string(hide_password=False)
    upgrade_database(database_url)  # once, before the workers (they would queue on a lock)
    files = tmp_path_factory.mktemp("gunicorn")
    (files / "gunicorn_test_app.py").write_text(APP_MODULE)
    tenant = tenant_data()
    tenant["clients"].append(OFFLINE_CLIENT)
    config = {
        "PASSKEY_TENANT": tenant,
        "PASSKEY_DATABASE_URL": database_url,
        "PASSKEY_REDIS_URL": REDIS_URL,
        "PASSKEY_REDIS_KEY_PREFIX": redis_prefix,
        "PASSKEY_RATE_LIMIT": "100000 per minute",
        "PASSKEY_RATE_LIMIT_KEY_PREFIX": limiter_prefix,
        "PASSKEY_SIGNING_KEYS": [generate_rsa_pem()],  # one key for every worker
    }
    env = {
        **os.environ,
        "PASSKEY_GUNICORN_TEST_CONFIG": json.dumps(config),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(files), os.environ.get("PYTHONPATH")])),
    }
    try:
        with run_gunicorn(files, env, workers=WORKERS) as port:
            yield port
    finally:
        delete_keys(redis_client, redis_prefix)
        delete_keys(redis_client, f"{LIMITER_KEYS}{limiter_prefix}/")


@contextmanager
def run_gunicorn(files: Path, env: dict[str, str], *, workers: int) -> Iterator[int]:
    """Serve ``gunicorn_test_app:app`` from ``files`` with ``workers`` workers on a free port;
    yield the port once it answers, stop gunicorn on exit (its output is in gunicorn.log)."""
    port = free_port()
    log_path = files / "gunicorn.log"
    command = [str(GUNICORN), "-w", str(workers), "-b", f"127.0.0.1:{port}"]
    command += ["--chdir", str(files), "--timeout", "30", "--graceful-timeout", "5"]
    command += ["gunicorn_test_app:app"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        _wait_until_serving(process, port, log_path)
        yield port
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(TIMEOUT)


def _wait_until_serving(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({process.returncode}):\n{log.read_text()}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/.well-known/jwks.json", headers={"Host": CUSTOM_DOMAIN})
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        if time.monotonic() > deadline:
            raise TimeoutError(f"gunicorn did not answer within {TIMEOUT} s:\n{log.read_text()}")
        time.sleep(0.1)


def _ok(response: Response) -> dict[str, Any]:
    body: dict[str, Any] = response.get_json()
    assert response.status_code == 200, f"{response.status_code}: {body}"
    return body


def _signed_up(port: int) -> PasskeyFlow:
    """A flow whose authenticator holds the passkey of a user who just signed up."""
    return _sign_up(port)[0]


def _sign_up(
    port: int, client_id: str = CLIENT_ID, **token: Any
) -> tuple[PasskeyFlow, dict[str, Any]]:
    """A new user's sign-up through ``client_id``: the flow, and its token response."""
    flow = PasskeyFlow(
        HttpClient(port),
        client_id=client_id,
        host=CUSTOM_DOMAIN,
        origin=ORIGIN,
        authenticator=SoftAuthenticator(),
    )
    email = f"user-{secrets.token_hex(6)}@example.com"
    started = _ok(flow.register({"email": email}))
    credential = flow.authenticator.create(started["authn_params_public_key"], origin=ORIGIN)
    tokens = _ok(flow.token(started["auth_session"], credential, **token))
    assert tokens["access_token"] and tokens["id_token"]
    return flow, tokens


def _race(port: int, path: str, body: bytes, attempts: int) -> list[Response]:
    """POST ``body`` to ``path`` on ``attempts`` connections at once (all connected first);
    the responses, each from whichever worker accepted its connection."""
    barrier = threading.Barrier(attempts, timeout=TIMEOUT)
    results: list[Response | BaseException] = []
    lock = threading.Lock()

    def post() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        try:
            connection.connect()
            barrier.wait()
            connection.request("POST", path, body=body, headers=_headers())
            response = connection.getresponse()
            result: Response | BaseException = Response(
                response.status, response.headers, response.read()
            )
        except BaseException as error:  # reported below, not lost in the thread
            result = error
        finally:
            connection.close()
        with lock:
            results.append(result)

    threads = [threading.Thread(target=post, daemon=True) for _ in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(2 * TIMEOUT)

    assert not any(thread.is_alive() for thread in threads), "a request hung"
    errors = [result for result in results if isinstance(result, BaseException)]
    assert not errors, errors
    responses = [result for result in results if isinstance(result, Response)]
    assert len(responses) == attempts
    return responses


def test_challenges_are_redeemed_by_other_workers(server_port: int) -> None:
    flow = _signed_up(server_port)
    pairs: list[tuple[int, int]] = []
    # 30 rounds make a cross-worker pair near-certain with 4 workers; more before giving up.
    for rounds in (30, 30, 60):
        for _ in range(rounds):
            challenge = flow.challenge()
            started = _ok(challenge)
            assertion = flow.authenticator.get(started["authn_params_public_key"], origin=ORIGIN)
            token = flow.token(started["auth_session"], assertion)
            assert _ok(token)["id_token"]
            pairs.append((challenge.pid, token.pid))
        if any(issuer != redeemer for issuer, redeemer in pairs):
            break

    assert any(issuer != redeemer for issuer, redeemer in pairs), (
        f"every one of {len(pairs)} challenges was redeemed by the worker that issued it: "
        f"{sorted({pid for pair in pairs for pid in pair})}"
    )


def test_one_auth_session_redeemed_concurrently_succeeds_once(server_port: int) -> None:
    flow = _signed_up(server_port)
    started = _ok(flow.challenge())
    assertion = flow.authenticator.get(started["authn_params_public_key"], origin=ORIGIN)
    body = _dumps(
        {
            "client_id": CLIENT_ID,
            "grant_type": "urn:okta:params:oauth:grant-type:webauthn",
            "auth_session": started["auth_session"],
            "authn_response": assertion,
        }
    )
    attempts = 50
    responses = _race(server_port, "/oauth/token", body, attempts)

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [400] * (attempts - 1), statuses
    winner = next(response for response in responses if response.status_code == 200)
    assert winner.get_json()["id_token"]
    refused = [response.get_json() for response in responses if response.status_code == 400]
    assert {body["error"] for body in refused} == {"invalid_grant"}, refused
    # The race really was across processes.
    assert len({response.pid for response in responses}) > 1


def _refresh(flow: PasskeyFlow, token: str) -> Response:
    response: Response = flow.client.post(
        "/oauth/token",
        json={"grant_type": "refresh_token", "client_id": "offline", "refresh_token": token},
    )
    return response


def test_one_refresh_token_redeemed_concurrently_succeeds_once(server_port: int) -> None:
    flow, tokens = _sign_up(server_port, "offline", scope="openid offline_access")
    token = tokens["refresh_token"]
    body = _dumps({"client_id": "offline", "grant_type": "refresh_token", "refresh_token": token})
    attempts = 30

    responses = _race(server_port, "/oauth/token", body, attempts)

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [400] * (attempts - 1), statuses
    refused = [response.get_json() for response in responses if response.status_code == 400]
    assert {(b["error"], b["error_description"]) for b in refused} == {
        ("invalid_grant", "Unknown or invalid refresh token.")
    }, refused
    assert len({response.pid for response in responses}) > 1
    # The losers were replays of a spent token: its family, the winner's new token included,
    # is revoked.
    winner = next(response for response in responses if response.status_code == 200)
    assert _refresh(flow, winner.get_json()["refresh_token"]).status_code == 400


def test_a_replay_on_any_worker_revokes_the_family(server_port: int) -> None:
    flow, signed_up = _sign_up(server_port, "offline", scope="openid offline_access")
    tokens = [signed_up["refresh_token"]]
    pids: set[int] = set()
    # Rotate until the family has been served by two workers (the kernel picks who accepts a
    # connection, so a quiet server may hand several in a row to the same one).
    while len(tokens) < 9 or (len(pids) < 2 and len(tokens) < 60):
        response = _refresh(flow, tokens[-1])
        tokens.append(_ok(response)["refresh_token"])
        pids.add(response.pid)
    assert len(pids) > 1, "every refresh was served by one worker"

    replay = _refresh(flow, tokens[0])

    assert replay.status_code == 400
    for token in tokens[1:]:
        assert _refresh(flow, token).get_json()["error"] == "invalid_grant"
