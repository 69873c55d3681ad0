"""Tenant logs: every ``passkey_event`` as one JSON line shaped like an Auth0 tenant log.

Registered as ``tenant_log`` and off unless ``PASSKEY_TENANT_LOG = True``. Each line is an
object with the field names of Auth0's log schemas (``date``, ``type``, ``description``,
``client_id``, ``client_name``, ``connection``, ``user_id``, ``hostname``, ``ip``,
``user_agent``, ``log_id``, ``organization_id``, ``details``) and Auth0's log event type code in
``type`` where one fits (:func:`log_type`; ``docs/logs.md`` has the table), so tooling written
for Auth0's logs reads them. Events carry no secrets, so neither do the lines.

Lines go to the ``flask_passkey.tenant_log`` logger (:data:`LOGGER_NAME`): INFO for what
succeeded, WARNING for what was refused. The operator attaches its handlers. They never run on
the request's thread: a line is queued (bounded, ``PASSKEY_TENANT_LOG_QUEUE_SIZE``) and one
background thread per app hands it to the logger, so a slow handler costs a request nothing
and a full queue drops the line (counted in :attr:`TenantLog.dropped` and reported as a
warning of the ``flask_passkey`` logger once the queue moves again); a handler that raises
fails no request either. The stdlib's ``QueueListener`` is not used because it calls a fixed
list of handlers, while here the operator configures the logger as any other (``dictConfig``).
"""

from __future__ import annotations

import atexit
import hmac
import ipaddress
import json
import logging
import queue
import secrets
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any, Literal

from flask import current_app, has_app_context

from flask_passkey.errors import ConfigurationError
from flask_passkey.events import FAILURE_EVENTS, PasskeyEvent
from flask_passkey.hookspecs import hookimpl
from flask_passkey.models import REFRESH_TOKEN_GRANT

LOGGER_NAME = "flask_passkey.tenant_log"
ENABLED = "PASSKEY_TENANT_LOG"
IP_MODE = "PASSKEY_TENANT_LOG_IP"
IP_KEY = "PASSKEY_TENANT_LOG_IP_KEY"
QUEUE_SIZE = "PASSKEY_TENANT_LOG_QUEUE_SIZE"
IpMode = Literal["full", "truncated", "hashed"]
IP_MODES: tuple[IpMode, ...] = ("full", "truncated", "hashed")
#: Prefix of the codes of events Auth0 publishes no code for.
OWN_PREFIX = "flask_passkey_"

logger = logging.getLogger(LOGGER_NAME)
reporter = logging.getLogger("flask_passkey")

#: Auth0's code (or ours) of each event whose code does not depend on where it happened.
_TYPES: dict[str, str] = {
    "challenge_issued": "passkey_challenge_started",
    "signup_succeeded": "ss",
    "login_succeeded": "s",
    # Auth0 publishes no clone code: a refused login, with the event's own description.
    "possible_clone": "f",
    "refresh_succeeded": "sertft",
    # A spent refresh token came back (its family is revoked): a failed exchange.
    "refresh_token_reused": "fertft",
    "refresh_revoked": "srrt",
    "passkey_enrolled": "gd_enrollment_complete",
    "passkey_deleted": "gd_unenroll",
    "origin_refused": "fco",
    "rate_limited": "api_limit",
    "lockout_started": "limit_mu",
    "locked_out": "limit_mu",
}
#: The code of a refused request, by the endpoint that refused it.
_REJECTED_AT: dict[str, str] = {
    "challenge": "passkey_challenge_failed",
    "register": "fs",
    "enroll": "gd_webauthn_enrollment_failed",
    "verify": "gd_webauthn_enrollment_failed",
    "revoke": OWN_PREFIX + "revoke_failed",
    "userinfo": OWN_PREFIX + "userinfo_failed",
}
#: What a line of a success says when its event has no description.
_DESCRIPTIONS: dict[str, str] = {
    "passkey_challenge_started": "Passkey challenge started",
    "ss": "Successful signup",
    "s": "Successful login",
    "sertft": "Successful exchange of Refresh Token for Access Token",
    "srrt": "Successfully revoked a refresh token",
    "gd_enrollment_complete": "Passkey enrolled",
    "gd_unenroll": "Passkey deleted",
    OWN_PREFIX + "passkey_renamed": "Passkey renamed",
}


def log_type(event: PasskeyEvent) -> str:
    """The ``type`` of ``event``'s line: Auth0's log event type code where one fits, else
    ``flask_passkey_<event name>`` (or ``flask_passkey_<what failed>``)."""
    if event.name in _TYPES:
        return _TYPES[event.name]
    if event.name != "request_rejected":
        return OWN_PREFIX + event.name
    if event.endpoint == "token":
        return "fertft" if event.grant_type == REFRESH_TOKEN_GRANT else "f"
    return _REJECTED_AT.get(event.endpoint, OWN_PREFIX + "request_rejected")


class IpMasker:
    """What a line says of a client IP: the address (``full``), its IPv4 /24 or IPv6 /48
    network address (``truncated``), or a keyed HMAC-SHA256 of it (``hashed``: the same
    address always gives the same value for one key, and no one without the key can tell
    which address it was)."""

    def __init__(self, mode: IpMode, key: bytes) -> None:
        self.mode = mode
        self._key = key

    def __call__(self, ip: str) -> str:
        if self.mode == "full":
            return ip
        if self.mode == "hashed":
            return hmac.new(self._key, ip.encode(), sha256).hexdigest()[:32]
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return ""
        prefix = 24 if address.version == 4 else 48
        return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


class TenantLog:
    """The ``tenant_log`` plugin of one app (see the module docstring)."""

    def __init__(self) -> None:
        self.enabled = False
        self.mask = IpMasker("full", b"")
        #: Lines dropped because the queue was full.
        self.dropped = 0
        self._reported = 0
        self._queue: queue.Queue[logging.LogRecord] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @hookimpl
    def passkey_config_defaults(self) -> dict[str, Any]:
        return {ENABLED: False, IP_MODE: "full", IP_KEY: None, QUEUE_SIZE: 10_000}

    @hookimpl
    def passkey_check_config(self, config: Mapping[str, Any]) -> None:
        enabled, mode, key, size = (config[k] for k in (ENABLED, IP_MODE, IP_KEY, QUEUE_SIZE))
        if not isinstance(enabled, bool):
            raise ConfigurationError(f"{ENABLED} must be True or False.")
        if mode not in IP_MODES:
            raise ConfigurationError(f"{IP_MODE} must be one of {', '.join(IP_MODES)}.")
        if key is not None and not (isinstance(key, str | bytes) and len(key) >= 16):
            raise ConfigurationError(f"{IP_KEY} must be a string of 16 characters or more.")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigurationError(f"{QUEUE_SIZE} must be a whole number, 1 or more.")
        self.enabled = enabled
        raw_key = key.encode() if isinstance(key, str) else key
        self.mask = IpMasker(mode, raw_key or secrets.token_bytes(32))
        self._queue = queue.Queue(maxsize=size)
        if enabled and logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)

    @hookimpl(trylast=True)
    def passkey_event(self, event: PasskeyEvent) -> None:
        level = logging.WARNING if event.name in FAILURE_EVENTS else logging.INFO
        if not self.enabled or not logger.isEnabledFor(level):
            return
        line = self.line(event)
        record = logger.makeRecord(
            LOGGER_NAME, level, __file__, 0, json.dumps(line), (), None,
            extra={"tenant_log": line},
        )  # fmt: skip
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            with self._lock:
                self.dropped += 1
            return
        self._start()

    def line(self, event: PasskeyEvent) -> dict[str, Any]:
        """``event`` as the fields of a tenant log line."""
        code = log_type(event)
        optional = {
            "client_id": event.client_id,
            "connection": event.connection,
            "user_id": event.user_id,
            "user_agent": event.user_agent,
            "organization_id": event.organization_id,
        }
        details = {
            "event": event.name,
            "endpoint": event.endpoint,
            "error": event.error,
            "detail": event.detail,
            "grant_type": event.grant_type,
            "request_id": event.request_id,
        }
        return {
            "date": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "type": code,
            "description": event.description or _DESCRIPTIONS.get(code, event.name),
            "client_name": _client_name(event.client_id),
            "hostname": event.hostname or "",
            "ip": self.mask(event.client_ip),
            "log_id": secrets.token_hex(12),
            **{key: value for key, value in optional.items() if value is not None},
            "details": {key: value for key, value in details.items() if value is not None},
        }

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued line has been handled (or ``timeout`` seconds have passed);
        whether the queue is empty."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def _start(self) -> None:
        # Started on first use, in the process that uses it: a thread of a process that
        # forked (a preloading server's master) does not survive into its workers.
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="flask-passkey-tenant-log", daemon=True
                )
                self._thread.start()
                atexit.register(self.flush, 2.0)

    def _run(self) -> None:
        while True:
            record = self._queue.get()
            try:
                try:
                    logger.handle(record)
                except Exception:
                    reporter.exception("A handler of the %s logger raised", LOGGER_NAME)
                self._report_drops()
            except Exception:  # the reporter's own handlers failed: nothing left to tell
                pass
            finally:
                self._queue.task_done()

    def _report_drops(self) -> None:
        with self._lock:
            newly, self._reported = self.dropped - self._reported, self.dropped
        if newly:
            reporter.warning("%d tenant log line(s) dropped: the queue was full", newly)


def _client_name(client_id: str | None) -> str:
    """The name of the client ``client_id``, or ``""`` (unknown, or no app to ask)."""
    if client_id is None or not has_app_context():
        return ""
    try:
        state = current_app.extensions["passkey"]
        client = state.plugin_manager.hook.passkey_get_client(client_id=client_id)
    except Exception:  # the line matters more than its client's name
        return ""
    name = getattr(client, "name", None)
    return name if isinstance(name, str) else ""
