"""The real PostgreSQL and Redis servers stopped and started again under a stream of requests.

A few threads sign up and sign in, over and over, against one app, while the server its data
lives on is stopped (``pg_ctlcluster ... stop``, ``redis-cli shutdown nosave``) and started again
with the machine's own commands. While it is down every answer is 200 or 503
``temporarily_unavailable`` JSON (never a 500); once it is back requests succeed without
restarting the app; and afterwards every sign-up that got 200 is stored with its passkey, and no
email is stored twice.

The servers are those of PASSKEY_TEST_POSTGRES_URL and PASSKEY_TEST_REDIS_URL, shared with other
tests and CI: they are always started again (in a ``finally``) and waited for before a test
returns. Without the server or its control command the tests skip, saying why (under CI=true
they fail).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_passkey.testing import SoftAuthenticator
from tests.apps import CUSTOM_DOMAIN, DB_CONNECTION, ORIGIN, make_app
from tests.databases import POSTGRES_URL, REDIS_URL, PostgresSchemas, backend_missing
from tests.support import new_email

pytestmark = pytest.mark.slow

#: How Redis is started on this machine (and in CI): the exact command, not a variant of it.
REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
]
WORKERS = 4
#: Seconds of traffic before the stop, and with the server down.
BEFORE, DOWN = 1.0, 2.0
#: Upper bound on any wait for a server or for the workers.
PATIENCE = 30.0


# -- the traffic -------------------------------------------------------------------------------


@dataclass
class Outcome:
    kind: str  # "sign-up" or "sign-in"
    statuses: list[int]
    started: float
    email: str | None = None
    credential_id: bytes | None = None

    @property
    def succeeded(self) -> bool:
        return bool(self.statuses) and all(status == 200 for status in self.statuses)


@dataclass
class Traffic:
    """Workers signing up and signing in until told to stop; what each attempt got."""

    app: Flask
    client_ips: list[str]
    outcomes: list[Outcome] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._work, args=(ip,), daemon=True) for ip in self.client_ips
        ]
        for thread in threads:
            thread.start()
        return threads

    def _work(self, client_ip: str) -> None:
        """Sign up a member (until that succeeds), then sign in as the member and sign up a
        newcomer, in turn."""
        client = self.app.test_client()
        client.environ_base["REMOTE_ADDR"] = client_ip
        member: SoftAuthenticator | None = None
        while not self.stop.is_set():
            if member is None:
                candidate = SoftAuthenticator()
                outcomes = [self._attempt(client, "sign-up", candidate)]
                member = candidate if outcomes[0].succeeded else None
            else:
                outcomes = [
                    self._attempt(client, "sign-in", member),
                    self._attempt(client, "sign-up", SoftAuthenticator()),
                ]
            with self.lock:
                self.outcomes.extend(outcomes)
            if not all(outcome.succeeded for outcome in outcomes):
                time.sleep(0.02)  # no need to spin while the server is down

    def _attempt(self, client: Any, kind: str, passkey: SoftAuthenticator) -> Outcome:
        outcome = Outcome(kind, [], time.monotonic())
        headers = {"Host": CUSTOM_DOMAIN}
        if kind == "sign-up":
            outcome.email = new_email()
            path, body = "/passkey/register", {"user_profile": {"email": outcome.email}}
        else:
            path, body = "/passkey/challenge", {}
        started = self._post(client, outcome, path, {"client_id": "spa", **body}, headers)
        if started is None:
            return outcome
        options = started["authn_params_public_key"]
        if kind == "sign-up":
            credential = passkey.create(options, origin=ORIGIN)
            outcome.credential_id = passkey.credentials[-1].credential_id
        else:
            credential = passkey.get(options, origin=ORIGIN)
        token = {
            "grant_type": "urn:okta:params:oauth:grant-type:webauthn",
            "client_id": "spa",
            "auth_session": started["auth_session"],
            "authn_response": credential,
        }
        self._post(client, outcome, "/oauth/token", token, headers)
        return outcome

    def _post(
        self, client: Any, outcome: Outcome, path: str, body: Any, headers: dict[str, str]
    ) -> Any:
        try:
            response = client.post(path, json=body, headers=headers)
        except Exception as error:  # TESTING propagates what would have been a 500
            with self.lock:
                self.unexpected.append(f"{path}: {error!r}")
            outcome.statuses.append(500)
            return None
        outcome.statuses.append(response.status_code)
        data = response.get_json(silent=True)
        if response.status_code == 200:
            return data
        if (
            response.status_code != 503
            or data is None
            or data.get("error") != ("temporarily_unavailable")
        ):
            with self.lock:
                self.unexpected.append(
                    f"{path}: {response.status_code} {response.get_data(as_text=True)[:300]}"
                )
        return None

    def successes_since(self, moment: float) -> int:
        """How many attempts started at ``moment`` or later succeeded."""
        with self.lock:
            return sum(1 for o in self.outcomes if o.started >= moment and o.succeeded)


def run_through_outage(
    traffic: Traffic, *, stop_server: Callable[[], None], start_server: Callable[[], None]
) -> tuple[float, float]:
    """Let the workers run, stop the server, keep them running, start it again, run on until
    requests succeed again. Returns when the server was stopped and when it was back."""
    threads = traffic.run()
    stopped = back = 0.0
    try:
        time.sleep(BEFORE)
        stopped = time.monotonic()
        try:
            stop_server()
            time.sleep(DOWN)
        finally:
            start_server()
        back = time.monotonic()
        deadline = back + PATIENCE
        while traffic.successes_since(back) < 2 * WORKERS and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        traffic.stop.set()
        for thread in threads:
            thread.join(PATIENCE)
    return stopped, back


def check_traffic(traffic: Traffic, stopped: float, back: float) -> list[Outcome]:
    """The assertions both outages share; returns the sign-ups that got 200."""
    assert traffic.unexpected == []
    outcomes = traffic.outcomes
    assert any(o.succeeded for o in outcomes if o.started < stopped), "no success before the stop"
    down = [o for o in outcomes if stopped <= o.started < back - 0.2]
    assert any(503 in o.statuses for o in down), "no 503 while the server was down"
    assert len([o for o in outcomes if o.started >= back and o.succeeded]) >= 2 * WORKERS, (
        "requests did not succeed again after the restart"
    )
    assert {o.kind for o in outcomes if o.started >= back and o.succeeded} == {
        "sign-up",
        "sign-in",
    }
    return [o for o in outcomes if o.kind == "sign-up" and o.succeeded]


def check_users(app: Flask, signed_up: list[Outcome]) -> None:
    """Every sign-up that got 200 is stored with its passkey; no email is stored twice."""
    users = app.extensions["passkey"].users
    stored = users.list_users(limit=100_000)
    emails = [user.email for user in stored]
    assert len(emails) == len(set(emails)), "an email is stored twice"
    for outcome in signed_up:
        user = users.find_user(connection=DB_CONNECTION, kind="email", value=outcome.email)
        assert user is not None, f"lost: {outcome.email}"
        assert outcome.credential_id is not None
        credential = users.get_credential(outcome.credential_id)
        assert credential is not None and credential.user_id == user.id


def client_ips() -> list[str]:
    """Addresses of the benchmarking range, one per worker, unlikely to meet another test's."""
    return [f"198.19.{secrets.randbelow(256)}.{i + 1}" for i in range(WORKERS)]


def wait_until(ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while True:
        try:
            if ready():
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.1)


def run(command: list[str]) -> None:
    subprocess.run(command, check=True, timeout=PATIENCE, capture_output=True)


def require_command(*names: str) -> None:
    for name in names:
        if shutil.which(name) is None:
            backend_missing(f"{name} is not installed: cannot stop and start the server")
    if os.geteuid() != 0:
        backend_missing("stopping and starting the servers needs root")


def require_local(url: str, what: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        backend_missing(f"{what} at {parts.hostname} is not on this machine: cannot stop it")
    return parts.hostname or "127.0.0.1", parts.port or 0


# -- PostgreSQL --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresControl:
    version: str
    cluster: str
    url: str

    def command(self, action: str, *options: str) -> list[str]:
        return [
            "pg_ctlcluster",
            "--skip-systemctl-redirect",
            *options,
            self.version,
            self.cluster,
            action,
        ]

    def accepting(self) -> bool:
        engine = sa.create_engine(self.url, poolclass=sa.NullPool)
        try:
            with engine.connect() as connection:
                return connection.exec_driver_sql("SELECT 1").scalar() == 1
        finally:
            engine.dispose()

    def stop(self) -> None:
        run(self.command("stop", "--mode", "fast"))

    def start(self) -> None:
        """Start the cluster (if it is not running) and wait until it accepts connections."""
        if not self.accepting_quietly():
            subprocess.run(self.command("start"), timeout=PATIENCE, capture_output=True)
        wait_until(self.accepting, "PostgreSQL to accept connections")

    def accepting_quietly(self) -> bool:
        try:
            return self.accepting()
        except sa.exc.OperationalError:
            return False


@pytest.fixture(scope="module")
def postgres_control(postgres_schemas: PostgresSchemas) -> Iterator[PostgresControl]:
    """The local cluster serving PASSKEY_TEST_POSTGRES_URL; running again after the module."""
    require_command("pg_ctlcluster", "pg_lsclusters")
    _, port = require_local(POSTGRES_URL, "PostgreSQL")
    listed = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, timeout=PATIENCE
    ).stdout.split("\n")
    clusters = [line.split() for line in listed if line.strip()]
    matching = [c for c in clusters if c[2] == str(port or 5432) and c[3] == "online"]
    if not matching:
        backend_missing(f"no online local cluster listens on port {port or 5432}")
    version, cluster = matching[0][:2]
    url = postgres_schemas.engine.url.render_as_string(hide_password=False)
    control = PostgresControl(version, cluster, url)
    try:
        yield control
    finally:
        control.start()


@pytest.mark.postgres
def test_postgres_stopped_and_started_under_load(
    postgres_control: PostgresControl, postgres_schemas: PostgresSchemas
) -> None:
    app = make_app(
        database_url=postgres_schemas.new_url(connect_timeout="2").render_as_string(
            hide_password=False
        ),
        rate_limit_enabled=False,
    )
    traffic = Traffic(app, client_ips())
    try:
        stopped, back = run_through_outage(
            traffic, stop_server=postgres_control.stop, start_server=postgres_control.start
        )
        check_users(app, check_traffic(traffic, stopped, back))
    finally:
        app.extensions["passkey"].users.close()


# -- Redis -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedisControl:
    url: str

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)

    def accepting(self) -> bool:
        client = self.client()
        try:
            return bool(client.ping())
        finally:
            client.close()

    def accepting_quietly(self) -> bool:
        try:
            return self.accepting()
        except Exception:
            return False

    def stop(self) -> None:
        # redis-cli may report the connection the server closed: only the result counts.
        subprocess.run(
            ["redis-cli", "-p", "6379", "shutdown", "nosave"], timeout=PATIENCE, capture_output=True
        )
        wait_until(lambda: not self.accepting_quietly(), "Redis to stop")

    def start(self) -> None:
        """Start Redis the way this machine does (if it is not running) and wait for PING."""
        if not self.accepting_quietly():
            subprocess.run(REDIS_START, timeout=PATIENCE, capture_output=True)
        wait_until(self.accepting, "Redis to answer PING")


@pytest.fixture(scope="module")
def redis_control() -> Iterator[RedisControl]:
    """The local Redis of PASSKEY_TEST_REDIS_URL; running again after the module."""
    pytest.importorskip("redis")
    pytest.importorskip("flask_passkey_redis")
    require_command("redis-cli", "redis-server")
    _, port = require_local(REDIS_URL, "Redis")
    if port not in (0, 6379):
        backend_missing(f"Redis on port {port}: this machine's start command serves port 6379")
    for path in ("/var/lib/redis", "/var/log/redis"):
        if not os.access(path, os.W_OK):
            backend_missing(f"{path} is not writable: Redis could not be started again")
    control = RedisControl(REDIS_URL)
    if not control.accepting_quietly():
        backend_missing(f"Redis at {REDIS_URL} is unreachable")
    try:
        yield control
    finally:
        control.start()


@pytest.mark.redis
def test_redis_stopped_and_started_under_load(redis_control: RedisControl) -> None:
    prefix = f"flask-passkey-outage-test:{secrets.token_hex(6)}:"
    ips = client_ips()
    app = make_app(
        redis_url=REDIS_URL,
        redis_key_prefix=prefix,
        redis_socket_timeout=1.0,
        rate_limit="100000 per hour",
    )
    assert app.extensions["passkey"].sessions.__class__.__name__ == "RedisSessionStore"
    traffic = Traffic(app, ips)
    try:
        stopped, back = run_through_outage(
            traffic, stop_server=redis_control.stop, start_server=redis_control.start
        )
        check_users(app, check_traffic(traffic, stopped, back))
    finally:
        client = redis_control.client()
        try:
            for pattern in (f"{prefix}*", *(f"LIMITS:*/{ip}/*" for ip in ips)):
                for key in client.scan_iter(match=pattern):
                    client.delete(key)
        finally:
            client.close()
