"""The metrics and how an event updates them.

Every label takes its values from a closed set, so the number of series stays bounded whatever
clients send: endpoints and outcomes are flask-passkey's own names, error codes its wire codes,
grants the two it serves, and a client id is a label only when the tenant knows the client
(anything else is ``unknown``). Never a client IP, user or credential id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from flask_passkey import REFRESH_TOKEN_GRANT, WEBAUTHN_GRANT, PasskeyEvent
from prometheus_client import CollectorRegistry, Counter, Histogram

#: The label of a client the tenant does not know, and of a request that named none.
UNKNOWN = "unknown"
#: The ``grant`` label by ``grant_type``; ``none`` off the token endpoint or before the grant
#: type is known.
GRANTS = {WEBAUTHN_GRANT: "webauthn", REFRESH_TOKEN_GRANT: "refresh_token"}
NO_GRANT = "none"
#: Request latency buckets (seconds): a challenge takes about a millisecond, a sign-in with
#: PostgreSQL a few, an outage ends at the store's timeout.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: Events that add a line beside the one that ended the request, not a request of their own.
_SIDE_EVENTS = frozenset({"lockout_started"})
#: The 429 events, by the ``reason`` label of ``passkey_too_many_requests_total``.
_TOO_MANY = {"rate_limited": "rate_limit", "locked_out": "lockout"}
_UNAVAILABLE = "temporarily_unavailable"
#: Harden-b's clone-detection event (a verified assertion whose signature counter went back).
POSSIBLE_CLONE = "possible_clone"

#: Maps the client id an event carries to its label.
ClientLabel = Callable[[str | None], str]


Metric = TypeVar("Metric", Counter, Histogram)


class Children(Generic[Metric]):
    """The children of a labelled metric, kept by label values: ``labels()`` checks and locks
    on every call, which the per-request paths skip (the label sets are bounded anyway)."""

    def __init__(self, metric: Metric) -> None:
        self._metric: Metric = metric
        self._children: dict[tuple[str, ...], Metric] = {}

    def __call__(self, *values: str) -> Metric:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class Metrics:
    """The plugin's metrics, in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "passkey_requests",
            "flask-passkey API requests by how they ended: outcome is the event that ended "
            "them (challenge_issued, login_succeeded, request_rejected...), error its wire "
            "error code (empty on success).",
            ["endpoint", "grant", "client", "outcome", "error"],
            registry=registry,
        )
        self.duration = Histogram(
            "passkey_request_duration_seconds",
            "Time to answer a request to a flask-passkey endpoint, from the start of Flask's "
            "dispatch (before the rate limiter) to the response.",
            ["endpoint"],
            buckets=BUCKETS,
            registry=registry,
        )
        self.store_unavailable = Counter(
            "passkey_store_unavailable",
            "Requests answered 503 temporarily_unavailable: a store or the limiter's storage "
            "could not be reached.",
            ["endpoint"],
            registry=registry,
        )
        self.too_many_requests = Counter(
            "passkey_too_many_requests",
            "Requests answered 429: reason rate_limit (the per-IP limit) or lockout (an IP "
            "locked out after failed sign-ins).",
            ["endpoint", "reason"],
            registry=registry,
        )
        self.lockouts = Counter(
            "passkey_lockouts",
            "Lockouts started: an IP reached the failed sign-in threshold.",
            ["endpoint"],
            registry=registry,
        )
        self.refresh_token_reuse = Counter(
            "passkey_refresh_token_reuse",
            "Spent refresh tokens that came back; each revoked its family.",
            ["client"],
            registry=registry,
        )
        self.possible_clones = Counter(
            "passkey_possible_clones",
            "Sign-ins refused because the passkey's signature counter did not grow: a "
            "possible cloned authenticator.",
            ["client"],
            registry=registry,
        )
        self._request = Children(self.requests)
        self._duration = Children(self.duration)

    def time(self, endpoint: str, seconds: float) -> None:
        """Record that a request to ``endpoint`` took ``seconds``."""
        self._duration(endpoint).observe(seconds)

    def observe(self, event: PasskeyEvent, client_label: ClientLabel) -> None:
        """Count ``event``; ``client_label`` turns its client id into a bounded label."""
        endpoint = event.endpoint
        if event.name in _SIDE_EVENTS:
            self.lockouts.labels(endpoint).inc()
            return
        client = client_label(event.client_id)
        grant = GRANTS.get(event.grant_type or "", NO_GRANT)
        self._request(endpoint, grant, client, event.name, event.error or "").inc()
        reason = _TOO_MANY.get(event.name)
        if reason is not None:
            self.too_many_requests.labels(endpoint, reason).inc()
        elif event.error == _UNAVAILABLE:
            self.store_unavailable.labels(endpoint).inc()
        elif event.name == "refresh_token_reused":
            self.refresh_token_reuse.labels(client).inc()
        elif event.name == POSSIBLE_CLONE:
            self.possible_clones.labels(client).inc()
