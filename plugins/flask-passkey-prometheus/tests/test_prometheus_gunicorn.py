"""The metrics under gunicorn with 2 sync workers in prometheus_client's multiprocess mode.

gunicorn starts with ``PROMETHEUS_MULTIPROC_DIR`` set to an empty directory, so each worker
writes its counts to files of its own there, and whichever worker answers a scrape adds up
every worker's files. Real sign-ups, sign-ins and refusals go to both workers (one connection
per request, the kernel picks the worker); every scrape, from either worker, must count them
all. The server is started the way tests/test_gunicorn_workers.py starts it, with its app
module and helpers; the users live in a SQLite file both workers share.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask_passkey.stores.sql import upgrade_database
from flask_passkey.testing import PasskeyFlow, SoftAuthenticator
from prometheus_support import Scrape
from tests.apps import CUSTOM_DOMAIN, generate_rsa_pem, tenant_data
from tests.databases import backend_missing
from tests.support import new_email
from tests.test_gunicorn_workers import (
    APP_MODULE,
    GUNICORN,
    ORIGIN,
    TIMEOUT,
    HttpClient,
    Response,
    run_gunicorn,
)

pytestmark = pytest.mark.slow

WORKERS = 2
SIGN_UPS = 6
SIGN_INS_EACH = 2
STRANGERS = 3


class PidRecordingClient(HttpClient):
    """HttpClient, noting which worker answered each request."""

    def __init__(self, port: int, pids: set[int]) -> None:
        super().__init__(port)
        self.pids = pids

    def post(self, path: str, *, json: Any, headers: dict[str, str] | None = None) -> Response:
        response = super().post(path, json=json, headers=headers)
        self.pids.add(response.pid)
        return response


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """gunicorn with 2 workers and the metrics plugin: its port and the multiprocess dir."""
    if not os.access(GUNICORN, os.X_OK):
        backend_missing(f"gunicorn is not installed at {GUNICORN}")
    files = tmp_path_factory.mktemp("gunicorn-metrics")
    multiproc_dir = files / "prometheus"
    multiproc_dir.mkdir()
    database_url = f"sqlite:///{files / 'passkey.sqlite3'}"
    upgrade_database(database_url)
    (files / "gunicorn_test_app.py").write_text(APP_MODULE)
    config = {
        "PASSKEY_TENANT": tenant_data(),
        "PASSKEY_DATABASE_URL": database_url,
        "PASSKEY_RATE_LIMIT": "100000 per minute",
        "PASSKEY_SIGNING_KEYS": [generate_rsa_pem()],
        # Registered by name, the way an installed copy's entry point would be (and only once).
        "PASSKEY_PLUGINS": ["flask_passkey_prometheus:plugin"],
        "PASSKEY_LOAD_ENTRY_POINTS": False,
    }
    plugin_root = Path(__file__).resolve().parents[1]
    path = [str(files), str(plugin_root), os.environ.get("PYTHONPATH", "")]
    env = {
        **os.environ,
        "PASSKEY_GUNICORN_TEST_CONFIG": json.dumps(config),
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
        "PYTHONPATH": os.pathsep.join(filter(None, path)),
    }
    with run_gunicorn(files, env, workers=WORKERS) as port:
        yield port, multiproc_dir


def count(metrics: Scrape, **labels: str) -> float:
    return metrics.value("passkey_requests_total", **labels)


def scrape(port: int) -> tuple[int, Scrape]:
    """GET /metrics: the worker that answered, and what it said."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request("GET", "/metrics", headers={"Host": CUSTOM_DOMAIN})
        response = connection.getresponse()
        text = response.read().decode()
        assert response.status == 200, text
        return int(response.headers["X-Worker-Pid"]), Scrape(text)
    finally:
        connection.close()


def test_a_scrape_from_either_worker_adds_up_both_workers_counts(
    server: tuple[int, Path],
) -> None:
    port, multiproc_dir = server
    pids: set[int] = set()
    flows = []
    for _ in range(SIGN_UPS):
        flow = PasskeyFlow(
            PidRecordingClient(port, pids),
            client_id="spa",
            host=CUSTOM_DOMAIN,
            origin=ORIGIN,
            authenticator=SoftAuthenticator(),
        )
        flow.sign_up({"email": new_email()})
        flows.append(flow)
    for flow in flows:
        for _ in range(SIGN_INS_EACH):
            flow.sign_in()
    # At least STRANGERS requests from unknown clients, and more until both workers have served
    # some: the kernel decides which worker accepts a connection, and may pick one many times.
    strangers = 0
    while strangers < STRANGERS or (len(pids) < WORKERS and strangers < 200):
        stranger = PasskeyFlow(
            PidRecordingClient(port, pids), client_id=f"stranger-{strangers}", host=CUSTOM_DOMAIN
        )
        assert stranger.challenge().status_code == 401
        strangers += 1
    assert len(pids) == WORKERS, "every request was served by one worker"
    # Each worker wrote its own files (prometheus_client names them by pid).
    assert {int(path.stem.rpartition("_")[2]) for path in multiproc_dir.glob("*.db")} >= pids

    sign_ins = SIGN_UPS * SIGN_INS_EACH
    webauthn = {"grant": "webauthn", "client": "spa"}
    duration = "passkey_request_duration_seconds_count"

    def adds_up(metrics: Scrape) -> None:
        assert count(metrics, endpoint="register", outcome="challenge_issued") == SIGN_UPS
        assert count(metrics, endpoint="challenge", outcome="challenge_issued") == sign_ins
        assert count(metrics, **webauthn, outcome="signup_succeeded") == SIGN_UPS
        assert count(metrics, **webauthn, outcome="login_succeeded") == sign_ins
        assert count(metrics, error="invalid_client", client="unknown") == strangers
        assert count(metrics) == 2 * SIGN_UPS + 2 * sign_ins + strangers
        assert metrics.value(duration, endpoint="token") == SIGN_UPS + sign_ins
        assert metrics.value(duration, endpoint="challenge") == sign_ins + strangers

    scraped_by: set[int] = set()
    # Scrapes four at a time: while one sync worker is busy answering, the other accepts.
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(30):
            for pid, metrics in pool.map(lambda _: scrape(port), range(4)):
                scraped_by.add(pid)
                adds_up(metrics)
            if scraped_by == pids:
                break
    assert scraped_by == pids, "every scrape was answered by one worker"
