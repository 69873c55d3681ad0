"""The metrics plugin in one process: what real ceremonies and refusals count, that labels stay
bounded, and who may read ``/metrics``.

Each app gets a plugin of its own, with its own registry, through PASSKEY_PLUGINS (entry points
are not loaded, so an installed copy of the plugin does not count the same requests twice).
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import tomllib
import urllib.request
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_passkey import PasskeyEvent, hookimpl
from flask_passkey.errors import BackendUnavailable, ConfigurationError
from flask_passkey.stores.sessions import AuthSession
from flask_passkey.testing import PasskeyFlow
from prometheus_client import CollectorRegistry
from prometheus_support import Scrape
from tests.apps import CUSTOM_DOMAIN, ORIGIN, make_app
from tests.examples import load_demo
from tests.support import new_email

from flask_passkey_prometheus import PrometheusPlugin, start_metrics_server
from flask_passkey_prometheus.clients import KnownClients

WEBAUTHN = "urn:okta:params:oauth:grant-type:webauthn"
PLUGIN_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """These apps count in their own process; the gunicorn test covers multiprocess mode."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


def metrics_app(*plugins: Any, **config: Any) -> Flask:
    """An app over tenant_data() with a fresh PrometheusPlugin (and ``plugins``)."""
    config.setdefault("rate_limit", "1000 per hour")
    return make_app(
        plugins=[PrometheusPlugin(CollectorRegistry()), *plugins],
        load_entry_points=False,
        **config,
    )


def scrape(app: Flask, **kwargs: Any) -> Scrape:
    response = app.test_client().get("/metrics", **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain; version=")
    return Scrape(response.get_data(as_text=True))


def flow(app: Flask, client_id: str = "refreshing", ip: str = "192.0.2.7") -> PasskeyFlow:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return PasskeyFlow(client, client_id=client_id, host=CUSTOM_DOMAIN, origin=ORIGIN)


def refresh(client: FlaskClient, token: str) -> Any:
    body = {"grant_type": "refresh_token", "client_id": "refreshing", "refresh_token": token}
    return client.post("/oauth/token", json=body, headers={"Host": CUSTOM_DOMAIN})


# -- packaging -----------------------------------------------------------------------------------


def test_the_distribution_declares_the_plugin_in_the_flask_passkey_group() -> None:
    project = tomllib.loads((PLUGIN_ROOT / "pyproject.toml").read_text())["project"]
    target = project["entry-points"]["flask_passkey"]["flask_passkey_prometheus"]
    module, _, attribute = target.partition(":")
    assert isinstance(getattr(import_module(module), attribute), PrometheusPlugin)
    assert any(dependency.startswith("prometheus_client") for dependency in project["dependencies"])


# -- what is counted -----------------------------------------------------------------------------


def test_sign_ups_sign_ins_and_refreshes_are_counted_by_endpoint_grant_client_and_outcome() -> None:
    app = metrics_app()
    user = flow(app)
    tokens = user.sign_up({"email": new_email()}, scope="openid offline_access")
    user.sign_in()
    user.sign_in()
    assert refresh(user.client, tokens["refresh_token"]).status_code == 200

    metrics = scrape(app)

    def requests(**labels: str) -> float:
        return metrics.value("passkey_requests_total", client="refreshing", error="", **labels)

    assert requests(endpoint="register", grant="none", outcome="challenge_issued") == 1
    assert requests(endpoint="challenge", grant="none", outcome="challenge_issued") == 2
    assert requests(endpoint="token", grant="webauthn", outcome="signup_succeeded") == 1
    assert requests(endpoint="token", grant="webauthn", outcome="login_succeeded") == 2
    assert requests(endpoint="token", grant="refresh_token", outcome="refresh_succeeded") == 1
    assert metrics.value("passkey_requests_total") == 7
    # Every request was timed, under its endpoint.
    assert metrics.value("passkey_request_duration_seconds_count", endpoint="challenge") == 2
    assert metrics.value("passkey_request_duration_seconds_count", endpoint="token") == 4
    assert metrics.value("passkey_request_duration_seconds_sum", endpoint="token") > 0


def test_refusals_are_counted_by_error_code_and_unknown_clients_share_one_label() -> None:
    app = metrics_app()
    user = flow(app, client_id="spa")
    user.sign_up({"email": new_email()})
    started = user.challenge().get_json()
    forged = user.authenticator.get(started["authn_params_public_key"], origin="https://evil.test")
    assert user.token(started["auth_session"], forged).status_code == 400
    for number in range(3):
        strangers = flow(app, client_id=f"made-up-{number}")
        assert strangers.challenge().status_code == 401
    app.test_client().post("/passkey/challenge", data="not json", headers={"Host": CUSTOM_DOMAIN})

    metrics = scrape(app)

    rejected = {"outcome": "request_rejected"}
    assert metrics.value("passkey_requests_total", **rejected, error="invalid_grant") == 1
    assert (
        metrics.value(
            "passkey_requests_total", **rejected, error="invalid_client", client="unknown"
        )
        == 3
    )
    assert metrics.value("passkey_requests_total", **rejected, error="invalid_request") == 1
    assert metrics.label_values("client") <= {"spa", "unknown"}
    assert "made-up" not in metrics.text and "192.0.2.7" not in metrics.text


def test_429s_and_lockouts_are_counted() -> None:
    app = metrics_app(lockout="2 per hour")
    user = flow(app, client_id="spa")
    user.sign_up({"email": new_email()})
    for _ in range(3):
        started = user.challenge().get_json()
        forged = user.authenticator.get(started["authn_params_public_key"], origin="https://x.test")
        user.token(started["auth_session"], forged)
    limited = metrics_app(rate_limit="2 per hour")
    statuses = [flow(limited, "spa").challenge().status_code for _ in range(3)]
    assert statuses == [200, 200, 429]

    metrics, limited_metrics = scrape(app), scrape(limited)

    assert metrics.value("passkey_lockouts_total", endpoint="token") == 1
    assert metrics.value("passkey_too_many_requests_total", reason="lockout", endpoint="token") == 1
    assert limited_metrics.value("passkey_too_many_requests_total", reason="rate_limit") == 1
    assert limited_metrics.value("passkey_requests_total", outcome="rate_limited") == 1
    # The limiter refuses before flask-passkey's view runs; the request is timed all the same.
    assert limited_metrics.value("passkey_request_duration_seconds_count") == 3


class DownSessionStore:
    """A session store whose backend cannot be reached."""

    def put(self, session: AuthSession, *, now: float) -> None:
        raise BackendUnavailable("connection refused")

    def take(self, session_id: str, *, now: float) -> AuthSession | None:
        raise BackendUnavailable("connection refused")

    def put_marker(self, key: str, *, expires_at: float, now: float) -> bool:
        raise BackendUnavailable("connection refused")


class Outage:
    @hookimpl
    def passkey_session_store(self) -> DownSessionStore:
        return DownSessionStore()


def test_store_outages_are_counted() -> None:
    app = metrics_app(Outage())
    assert flow(app, "spa").challenge().status_code == 503

    metrics = scrape(app)

    assert metrics.value("passkey_store_unavailable_total", endpoint="challenge") == 1
    assert metrics.value("passkey_requests_total", error="temporarily_unavailable") == 1


def test_a_replayed_refresh_token_is_counted_as_reuse() -> None:
    app = metrics_app()
    user = flow(app)
    first = user.sign_up({"email": new_email()}, scope="openid offline_access")["refresh_token"]
    assert refresh(user.client, first).status_code == 200
    assert refresh(user.client, first).status_code == 400  # replayed: the family is revoked

    metrics = scrape(app)

    assert metrics.value("passkey_refresh_token_reuse_total", client="refreshing") == 1
    assert metrics.value("passkey_requests_total", outcome="refresh_token_reused") == 1


def test_possible_clone_events_are_counted_by_client() -> None:
    # The event comes from clone detection (a signature counter that went back); fed here as
    # the core reports it, since this test is about the counting.
    plugin = PrometheusPlugin(CollectorRegistry())
    app = make_app(plugins=[plugin], load_entry_points=False)
    clone: Any = "possible_clone"
    with app.test_request_context():
        for client_id in ("spa", "not-a-client"):
            event = PasskeyEvent(
                name=clone, endpoint="token", client_ip="192.0.2.1", client_id=client_id
            )
            plugin.passkey_event(event=event)

    metrics = scrape(app)

    assert metrics.value("passkey_possible_clones_total", client="spa") == 1
    assert metrics.value("passkey_possible_clones_total", client="unknown") == 1


def test_known_clients_are_reloaded_after_the_refresh_interval() -> None:
    now = [0.0]
    clients = ["spa"]
    known = KnownClients(lambda: list(clients), refresh_seconds=60, clock=lambda: now[0])
    assert known.label("spa") == "spa"
    clients.append("added-later")
    assert known.label("added-later") == "unknown"
    now[0] = 61.0
    assert known.label("added-later") == "added-later"
    assert known.label(None) == "unknown"


# -- who may read /metrics -----------------------------------------------------------------------


def test_by_default_only_loopback_reads_the_metrics() -> None:
    app = metrics_app()
    refused = app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert refused.status_code == 403
    assert refused.get_json()["error"] == "access_denied"
    assert (
        "# TYPE passkey_requests_total counter"
        in scrape(app, environ_base={"REMOTE_ADDR": "::1"}).text
    )


def test_an_allow_list_and_basic_credentials_guard_the_operator_s_path() -> None:
    app = metrics_app(
        metrics_path="/internal/passkey-metrics",
        metrics_allowed_ips=["10.0.0.0/8"],
        metrics_username="prometheus",
        metrics_password="s3cret-scrape",
    )
    client = app.test_client()
    inside = {"REMOTE_ADDR": "10.1.2.3"}

    def basic(password: str) -> dict[str, str]:
        token = base64.b64encode(f"prometheus:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    assert client.get("/metrics", environ_base=inside).status_code == 404
    assert client.get("/internal/passkey-metrics").status_code == 403  # 127.0.0.1: not listed
    missing = client.get("/internal/passkey-metrics", environ_base=inside)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Basic realm="metrics"'
    assert missing.get_json()["error"] == "invalid_client"
    wrong = client.get("/internal/passkey-metrics", environ_base=inside, headers=basic("guess"))
    assert wrong.status_code == 401
    assert "s3cret" not in wrong.get_data(as_text=True)
    right = client.get(
        "/internal/passkey-metrics", environ_base=inside, headers=basic("s3cret-scrape")
    )
    assert right.status_code == 200
    assert b"passkey_requests_total" in right.data


def test_no_path_serves_no_metrics_route() -> None:
    app = metrics_app(metrics_path=None)
    assert app.test_client().get("/metrics").status_code == 404


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"metrics_path": "metrics"}, "PASSKEY_METRICS_PATH"),
        ({"metrics_allowed_ips": "127.0.0.1"}, "PASSKEY_METRICS_ALLOWED_IPS"),
        ({"metrics_allowed_ips": ["10.0.0.300"]}, "PASSKEY_METRICS_ALLOWED_IPS"),
        ({"metrics_username": "prometheus"}, "PASSKEY_METRICS_PASSWORD"),
        ({"metrics_username": "", "metrics_password": ""}, "non-empty"),
    ],
)
def test_bad_settings_stop_the_app_at_start_up(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        metrics_app(**config)


# -- the Grafana dashboard -----------------------------------------------------------------------


def test_the_dashboard_queries_only_metrics_the_plugin_exports() -> None:
    dashboard = json.loads((PLUGIN_ROOT / "grafana-dashboard.json").read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bpasskey_[a-z_]+", target["expr"])
    }
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    exported = {
        family.name + suffix
        for family in PrometheusPlugin(CollectorRegistry()).registry.collect()
        for suffix in suffixes[family.type]
    }
    assert queried <= exported, queried - exported
    # Every metric has a panel.
    assert {name.removesuffix("_total") for name in queried} >= {
        family.name
        for family in PrometheusPlugin(CollectorRegistry()).registry.collect()
        if family.type == "counter"
    }


def test_a_port_of_its_own_serves_every_process_s_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for count in (2, 3):  # two "workers", each counting into its own file
        subprocess.run([sys.executable, "-c", WORKER.format(count=count)], check=True, timeout=30)
    server, _ = start_metrics_server(0)
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            metrics = Scrape(response.read().decode())
    finally:
        server.shutdown()
        server.server_close()

    assert metrics.value("passkey_requests_total", outcome="login_succeeded") == 5


#: A worker process: counts ``count`` sign-ins into PROMETHEUS_MULTIPROC_DIR.
WORKER = """
from prometheus_client import CollectorRegistry
from flask_passkey_prometheus.metrics import Metrics
requests = Metrics(CollectorRegistry()).requests
requests.labels("token", "webauthn", "spa", "login_succeeded", "").inc({count})
"""


# -- the demo ------------------------------------------------------------------------------------


def test_the_demo_serves_the_metrics_of_its_sign_ups(tmp_path: Path) -> None:
    # make demo loads the plugin through its entry point; here it is registered explicitly.
    app = load_demo().create_app(
        {
            "PASSKEY_DATABASE_URL": f"sqlite:///{tmp_path / 'passkey.sqlite3'}",
            "PASSKEY_PLUGINS": [PrometheusPlugin(CollectorRegistry())],
            "PASSKEY_LOAD_ENTRY_POINTS": False,
        },
        instance_path=tmp_path,
    )
    demo = PasskeyFlow(
        app.test_client(), client_id="demo-spa", host="localhost", origin="http://localhost:5000"
    )
    demo.sign_up({"email": new_email(), "name": "Ann"})

    metrics = scrape(app)

    signed_up = {"outcome": "signup_succeeded", "client": "demo-spa"}
    assert metrics.value("passkey_requests_total", **signed_up) == 1
