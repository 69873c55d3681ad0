"""``flask passkey doctor``: what is wrong with a deployment, each problem with what to do.

:func:`diagnose` looks at a running extension (its tenant, clients, stores and limiter);
:func:`explain_startup_error` turns the error of an app that does not even start into the same
kind of :class:`Problem`. Both only read: the doctor never changes anything.
"""

from __future__ import annotations

import datetime
import os
import secrets
import shlex
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from limits.storage import MemoryStorage

from flask_passkey.builtins.tenant_config import domain_problems
from flask_passkey.core.clients import ClientStore
from flask_passkey.errors import BackendUnavailable, ConfigurationError, TenantConfigurationError
from flask_passkey.models import WEBAUTHN_GRANT, Client, android_origin
from flask_passkey.stores.limit_counters import MemoryCounters
from flask_passkey.stores.memory import MemorySessionStore, MemoryUserStore
from flask_passkey.stores.sql import SqlStore

if TYPE_CHECKING:
    from flask_passkey.extension import PasskeyState


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the deployment: what it is and what to do about it."""

    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.what} {self.fix}"


_WORKER_OPTIONS = ("-w", "--workers")
_MULTI_PROCESS_SERVERS = ("gunicorn", "uwsgi")


def several_workers(environ: Mapping[str, str], workers: int | None) -> str | None:
    """Why the app likely runs in several processes, or None when it likely runs in one.

    ``workers`` (the doctor's ``--workers``) wins; otherwise gunicorn's ``WEB_CONCURRENCY`` and
    ``GUNICORN_CMD_ARGS``, then a ``SERVER_SOFTWARE`` naming a pre-forking server.
    """
    if workers is not None:
        return f"--workers {workers}" if workers > 1 else None
    concurrency = environ.get("WEB_CONCURRENCY", "").strip()
    if concurrency.isdigit():
        return f"WEB_CONCURRENCY={concurrency}" if int(concurrency) > 1 else None
    arguments = shlex.split(environ.get("GUNICORN_CMD_ARGS", ""))
    for index, argument in enumerate(arguments):
        name, _, value = argument.partition("=")
        if name.startswith("-w") and name[2:].isdigit():  # -w4
            name, value = "-w", name[2:]
        if name in _WORKER_OPTIONS:
            value = value or (arguments[index + 1] if index + 1 < len(arguments) else "")
            if value.isdigit():
                return f"GUNICORN_CMD_ARGS {name} {value}" if int(value) > 1 else None
    server = environ.get("SERVER_SOFTWARE", "").lower()
    if server.startswith(_MULTI_PROCESS_SERVERS):
        return f"SERVER_SOFTWARE={environ['SERVER_SOFTWARE']}"
    return None


def diagnose(
    state: PasskeyState, *, environ: Mapping[str, str], workers: int | None = None
) -> list[Problem]:
    """Every problem the doctor finds in a running extension, most fundamental first."""
    problems = [
        *_backends(state),
        *_tenant(state),
        *_keys_and_limits(state),
        *_processes(state, environ, workers),
        *_metadata(state),
    ]
    try:
        clients = state.clients()
    except BackendUnavailable:  # reported by _backends already
        return problems
    problems += _clients(state, clients)
    return problems


def explain_startup_error(error: BaseException) -> list[Problem]:
    """The problems behind an app that fails to load: one per line of a ConfigurationError,
    worded as the error itself words them."""
    again = ", then run `flask passkey doctor` again."
    if isinstance(error, TenantConfigurationError):
        return [
            Problem(f"The tenant configuration is invalid: {line}", _field_fix(line) + again)
            for line in error.problems
        ]
    if isinstance(error, ConfigurationError):
        return [
            Problem(f"The app refuses to start: {line}", "Fix what it names" + again)
            for line in error.problems
        ]
    return [
        Problem(
            f"The app cannot be loaded: {type(error).__name__}: {error}",
            "Run the app to see the traceback and fix it" + again,
        )
    ]


#: What to do about an invalid field of the tenant configuration, by field name.
_FIELD_FIXES = {
    "custom_domains": "Passkeys are served only on a custom domain: list the host names your "
    'users reach the API on (custom_domains = ["login.example.com"])',
    "sha256_cert_fingerprints": "Copy the app signing certificate's SHA-256 fingerprint as "
    "`keytool -list -v` or the Play Console prints it (32 upper-case hex bytes joined by colons)",
    "rp_id": "Use one of the custom domains, or a parent domain of all of them, as rp_id",
    "web_origins": "Write each origin as scheme://host[:port], without a path",
    "allowed_origins": "Write each origin as scheme://host[:port], without a path",
    "related_origins": "Write each origin as https://host[:port], without a path",
}


def _field_fix(line: str) -> str:
    field = line.partition(":")[0]
    name = field.rsplit(".", 1)[-1].split("[", 1)[0]
    return _FIELD_FIXES.get(name, "Fix this entry of PASSKEY_TENANT or PASSKEY_TENANT_FILE")


# -- checks --------------------------------------------------------------------------------


def _backends(state: PasskeyState) -> Iterator[Problem]:
    fix = "Start it or fix its URL (PASSKEY_DATABASE_URL, or the plugin's setting)."
    try:
        state.users.list_users(limit=1)
    except BackendUnavailable as error:
        yield Problem(f"The user store cannot be reached: {error}", fix)
    try:  # taking a session nobody has is harmless
        state.sessions.take(f"doctor-{secrets.token_urlsafe(16)}", now=time.time())
    except BackendUnavailable as error:
        yield Problem(f"The session store cannot be reached: {error}", fix)


def _tenant(state: PasskeyState) -> Iterator[Problem]:
    tenant = state.validator.tenant()
    if not tenant.passkeys_enabled:
        yield Problem(
            "Passkeys are turned off for the tenant: every passkey endpoint answers 404.",
            "Set passkeys_enabled = true in the tenant configuration.",
        )
    for problem in domain_problems(tenant):
        yield Problem(
            f"The tenant's domains are wrong: {problem}.",
            "Browsers refuse passkeys for such an RP ID: use a custom domain your users "
            "reach, and an rp_id equal to it or a parent domain of every custom domain.",
        )


def _keys_and_limits(state: PasskeyState) -> Iterator[Problem]:
    if not state.settings.signing_keys and isinstance(state.users, MemoryUserStore):
        yield Problem(
            "Tokens are signed with a key generated at start and kept only in memory: each "
            "restart (and each worker) signs with another key, so issued tokens stop verifying.",
            "Set PASSKEY_SIGNING_KEYS, or keep users in a database (PASSKEY_DATABASE_URL).",
        )
    if not state.settings.signing_keys and isinstance(state.users, SqlStore):
        for path in state.users.database_files():
            mode = stat.S_IMODE(os.stat(path).st_mode)
            if mode & (stat.S_IRGRP | stat.S_IROTH):
                yield Problem(
                    f"{path} holds the private signing keys and is readable by other local "
                    f"users (mode {mode:04o}).",
                    f"Make it owner-only: chmod 600 {shlex.quote(path)}",
                )
    if not state.settings.rate_limit_enabled:
        yield Problem(
            "PASSKEY_RATE_LIMIT_ENABLED is False: nothing slows down a client hammering the "
            "passkey endpoints.",
            "Turn it back on (limits are per IP address, set by PASSKEY_RATE_LIMIT).",
        )


def _processes(
    state: PasskeyState, environ: Mapping[str, str], workers: int | None
) -> Iterator[Problem]:
    reason = several_workers(environ, workers)
    if reason is None:
        return
    if isinstance(state.sessions, MemorySessionStore):
        yield Problem(
            f"Several worker processes are likely ({reason}) but pending ceremonies are kept "
            "in each process's memory: a challenge issued by one worker is unknown to the "
            "worker that gets its /oauth/token request.",
            "Use a shared store: a database (PASSKEY_DATABASE_URL) or Redis "
            "(flask-passkey-redis, PASSKEY_REDIS_URL).",
        )
    if isinstance(state.users, MemoryUserStore):
        yield Problem(
            f"Several worker processes are likely ({reason}) but users and passkeys are kept in "
            "each process's memory: a user signed up on one worker is unknown to the others.",
            "Set PASSKEY_DATABASE_URL to a SQLite file or a PostgreSQL database.",
        )
    if state.limiter is not None and isinstance(
        state.limiter.storage, MemoryStorage | MemoryCounters
    ):
        yield Problem(
            f"Several worker processes are likely ({reason}) but rate-limit counters are kept "
            "in each process's memory: every worker grants the full limit.",
            'Share the counters: PASSKEY_RATE_LIMIT_STORAGE_URI = "redis://..." or the Redis '
            "plugin (PASSKEY_REDIS_URL).",
        )


def _clients(state: PasskeyState, clients: list[Client]) -> Iterator[Problem]:
    if not clients:
        yield Problem(
            "The tenant has no client: no application can use passkeys.",
            "Add one to the tenant configuration or with `flask passkey clients add`.",
        )
    hook = state.plugin_manager.hook
    for client in clients:
        name = f"Client {client.client_id!r}"
        if WEBAUTHN_GRANT not in client.grant_types:
            yield Problem(
                f"{name} lacks the grant {WEBAUTHN_GRANT}: its passkey requests get "
                "unauthorized_client.",
                "Add it to the client's grant_types.",
            )
        if not client.is_first_party:
            yield Problem(
                f"{name} is a third-party application: its passkey requests get "
                "unauthorized_client.",
                "Set is_first_party = true if you own the application.",
            )
        if not client.oidc_conformant:
            yield Problem(
                f"{name} is not OIDC conformant: its passkey requests get unauthorized_client.",
                "Set oidc_conformant = true.",
            )
        if client.is_confidential and not (client.client_secret or client.client_secret_hash):
            yield Problem(
                f"{name} authenticates with {client.token_endpoint_auth_method} but has no "
                "secret: every request gets invalid_client.",
                "Give it client_secret_hash (or `flask passkey clients rotate-secret`).",
            )
        for app in client.android_apps:
            for fingerprint in app.sha256_cert_fingerprints:
                try:
                    android_origin(fingerprint)
                except ValueError:
                    yield Problem(
                        f"{name}: Android app {app.package_name} has a malformed signing "
                        f"certificate fingerprint {fingerprint!r}, so its passkeys are refused.",
                        _FIELD_FIXES["sha256_cert_fingerprints"] + ".",
                    )
        yield from _connections(state, client, name)
    if isinstance(state.users, ClientStore):
        for stored in state.users.list_clients():
            if hook.passkey_get_client(client_id=stored.client_id) != stored:
                yield Problem(
                    f"Client {stored.client_id!r} is in the database but the tenant "
                    "configuration or a plugin defines it too, and wins: the stored one is "
                    "never used.",
                    f"Remove one of them (`flask passkey clients remove {stored.client_id}`).",
                )


def _connections(state: PasskeyState, client: Client, name: str) -> Iterator[Problem]:
    hook = state.plugin_manager.hook
    usable = []
    for connection_name in client.connections:
        connection = hook.passkey_get_connection(name=connection_name)
        if connection is None:
            yield Problem(
                f"{name} names the unknown connection {connection_name!r}.",
                "Remove it from the client's connections or define that connection.",
            )
        elif connection.passkeys_enabled:
            usable.append(connection_name)
    if not usable:
        yield Problem(
            f"{name} has no enabled connection with passkeys on: every realm it asks for is "
            "refused (invalid_request).",
            "List a connection with passkeys_enabled in the client's connections.",
        )


def _metadata(state: PasskeyState) -> Iterator[Problem]:
    metadata = state.ceremonies.attestation.metadata
    if metadata is not None and metadata.expired(datetime.date.today()):
        yield Problem(
            f"The FIDO metadata BLOB ({metadata.source}) was due for an update on "
            f"{metadata.next_update.isoformat()}: newly revoked or compromised authenticators "
            "are not in it.",
            "Download the current BLOB and run `flask passkey mds load <file>`, then restart.",
        )
