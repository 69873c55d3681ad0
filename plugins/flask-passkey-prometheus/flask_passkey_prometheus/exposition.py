"""Serving the metrics: ``/metrics`` on the app, behind an IP allow-list and optional HTTP Basic
credentials, or on a port of its own from gunicorn's master."""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from threading import Thread
from wsgiref.simple_server import WSGIServer

from flask import Response, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    generate_latest,
    multiprocess,
    start_http_server,
)

#: Set (to an empty directory, before the workers start) for prometheus_client's
#: multiprocess mode: each worker writes its values there and a scrape adds them up.
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def scrape_registry(own: CollectorRegistry) -> CollectorRegistry:
    """What a scrape reads: every process's values in multiprocess mode, else ``own``."""
    if not os.environ.get(MULTIPROC_DIR):
        return own
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
    return merged


def start_metrics_server(port: int, addr: str = "127.0.0.1") -> tuple[WSGIServer, Thread]:
    """Serve every worker's metrics on ``addr:port`` from a thread of the calling process: call
    it in gunicorn's ``when_ready`` hook (the master), with ``PROMETHEUS_MULTIPROC_DIR`` set.
    That port has no guard of its own: bind it to an address only the scraper reaches.
    Returns the server (``shutdown()`` stops it) and its thread."""
    return start_http_server(port, addr=addr, registry=scrape_registry(CollectorRegistry()))


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """The allow-list as networks (``10.0.0.0/8``, ``::1``); ValueError names a bad entry."""
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


@dataclass(frozen=True)
class Guard:
    """Who may read the metrics: an address in ``networks`` (the client address flask-passkey
    sees, so ``PASSKEY_TRUSTED_PROXIES`` applies) and, when ``username`` is set, those HTTP
    Basic credentials."""

    networks: tuple[Network, ...]
    username: str | None
    password: str | None

    def refusal(self, client_ip: str) -> tuple[Response, int, dict[str, str]] | None:
        """The JSON error for this request, or None when it may read the metrics."""
        try:
            address = ipaddress.ip_address(client_ip)
        except ValueError:
            address = None
        if address is None or not any(address in network for network in self.networks):
            return _error("access_denied", "Metrics are not served to this address.", 403)
        if self.username is not None and not self._authenticated():
            return _error(
                "invalid_client",
                "Metrics need HTTP Basic credentials.",
                401,
                {"WWW-Authenticate": 'Basic realm="metrics"'},
            )
        return None

    def _authenticated(self) -> bool:
        auth = request.authorization
        if auth is None or auth.type != "basic":
            return False
        # Both compared, always, in constant time.
        user_ok = hmac.compare_digest(
            (auth.username or "").encode(), (self.username or "").encode()
        )
        password_ok = hmac.compare_digest(
            (auth.password or "").encode(), (self.password or "").encode()
        )
        return user_ok and password_ok


def _error(
    error: str, description: str, status: int, headers: dict[str, str] | None = None
) -> tuple[Response, int, dict[str, str]]:
    body = jsonify(error=error, error_description=description)
    return body, status, {"Cache-Control": "no-store", **(headers or {})}


def metrics_view(
    guard: Guard, registry: CollectorRegistry, client_address: Callable[[], str]
) -> Callable[[], Response | tuple[Response, int, dict[str, str]]]:
    """The view of the metrics path."""

    def metrics() -> Response | tuple[Response, int, dict[str, str]]:
        refused = guard.refusal(client_address())
        if refused is not None:
            return refused
        body = generate_latest(scrape_registry(registry))
        return Response(
            body, content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"}
        )

    return metrics
