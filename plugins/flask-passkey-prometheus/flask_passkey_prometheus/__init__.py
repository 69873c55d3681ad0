"""Prometheus metrics for flask-passkey, as a plugin loaded through its entry point.

* ``passkey_event`` counts each request by endpoint, grant, client, outcome and error code, and
  the store outages (503), 429s, lockouts, refresh-token reuse and possible clones.
* ``passkey_init_app`` times every request to a flask-passkey endpoint (Flask's
  ``request_started``/``request_finished`` signals, so 429s from the rate limiter count too) and
  serves the metrics at ``PASSKEY_METRICS_PATH``, to the addresses of
  ``PASSKEY_METRICS_ALLOWED_IPS`` (loopback by default) and, when ``PASSKEY_METRICS_USERNAME``
  is set, with those HTTP Basic credentials.

Under gunicorn, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before it starts: every
worker writes its values there and any worker's scrape adds them all up.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, current_app, g, has_app_context, request
from flask.signals import request_finished, request_started
from flask_passkey import (
    ConfigurationError,
    PasskeyEvent,
    client_ip,
    event_endpoint,
    hookimpl,
    known_clients,
)
from prometheus_client import REGISTRY, CollectorRegistry

from .clients import KnownClients
from .exposition import Guard, metrics_view, parse_networks, scrape_registry, start_metrics_server
from .metrics import UNKNOWN, Metrics

__all__ = [
    "ALLOWED_IPS",
    "PASSWORD",
    "PATH",
    "USERNAME",
    "PrometheusPlugin",
    "plugin",
    "scrape_registry",
    "start_metrics_server",
]

PATH = "PASSKEY_METRICS_PATH"
ALLOWED_IPS = "PASSKEY_METRICS_ALLOWED_IPS"
USERNAME = "PASSKEY_METRICS_USERNAME"
PASSWORD = "PASSKEY_METRICS_PASSWORD"
#: ``app.extensions`` key: the app's KnownClients.
EXTENSION_KEY = "passkey_prometheus"
#: flask.g attribute: when Flask began dispatching the request.
_STARTED = "passkey_metrics_started"


class PrometheusPlugin:
    """Counts into ``registry`` (prometheus_client's default one unless given), for every app
    it is registered in."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = REGISTRY if registry is None else registry
        self.metrics = Metrics(self.registry)

    @hookimpl
    def passkey_config_defaults(self) -> dict[str, Any]:
        return {
            PATH: "/metrics",
            ALLOWED_IPS: ["127.0.0.1", "::1"],
            USERNAME: None,
            PASSWORD: None,
        }

    @hookimpl
    def passkey_check_config(self, config: Mapping[str, Any]) -> None:
        path = config[PATH]
        if path is not None and not (isinstance(path, str) and path.startswith("/")):
            raise ConfigurationError(f"{PATH} must be a path starting with / (or None).")
        allowed = config[ALLOWED_IPS]
        if isinstance(allowed, str) or not all(isinstance(item, str) for item in allowed):
            raise ConfigurationError(f"{ALLOWED_IPS} must be a list of addresses or networks.")
        try:
            parse_networks(allowed)
        except ValueError as error:
            raise ConfigurationError(f"{ALLOWED_IPS}: {error}.") from None
        username, password = config[USERNAME], config[PASSWORD]
        if (username is None) != (password is None):
            raise ConfigurationError(f"Set both {USERNAME} and {PASSWORD}, or neither.")
        if username is not None and not (
            isinstance(username, str) and isinstance(password, str) and username and password
        ):
            raise ConfigurationError(f"{USERNAME} and {PASSWORD} must be non-empty strings.")

    @hookimpl
    def passkey_init_app(self, app: Flask, blueprints: tuple[str, ...]) -> None:
        app.extensions[EXTENSION_KEY] = KnownClients(
            lambda: [client.client_id for client in known_clients(app)]
        )
        names = frozenset(blueprints)
        metrics = self.metrics

        def started(sender: Flask, **extra: Any) -> None:
            setattr(g, _STARTED, time.perf_counter())

        def finished(sender: Flask, response: Response, **extra: Any) -> None:
            began = g.get(_STARTED)
            if began is not None and request.blueprint in names:
                metrics.time(event_endpoint(), time.perf_counter() - began)

        request_started.connect(started, app, weak=False)
        request_finished.connect(finished, app, weak=False)
        path = app.config[PATH]
        if path is not None:
            guard = Guard(
                networks=parse_networks(app.config[ALLOWED_IPS]),
                username=app.config[USERNAME],
                password=app.config[PASSWORD],
            )
            view = metrics_view(guard, self.registry, client_ip)
            app.add_url_rule(path, "passkey_metrics", view, methods=["GET"])

    @hookimpl
    def passkey_event(self, event: PasskeyEvent) -> None:
        known: KnownClients | None = (
            current_app.extensions.get(EXTENSION_KEY) if has_app_context() else None
        )
        self.metrics.observe(event, known.label if known is not None else _unknown)


def _unknown(client_id: str | None) -> str:
    return UNKNOWN


#: The instance the entry point registers.
plugin = PrometheusPlugin()
