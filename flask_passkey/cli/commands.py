"""``flask passkey ...``: the operator's commands (database, clients, users, signing keys, doctor).

``init_app`` adds the group to ``app.cli``; the ``flask.commands`` entry point adds it to the
``flask`` command too, so ``flask passkey doctor`` can still explain an app that fails to start.
Commands print what they did on stdout; nothing here ever prints a stored secret or hash: a
client secret is shown once, when it is generated. A command that fails prints one ``Error:``
line on stderr and exits with status 1 (2 for a usage error), never a traceback: an unknown
user, client or connection, a database that cannot be reached, an app that does not start.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, get_args

import click
from flask import Flask, current_app, has_app_context
from flask.cli import ScriptInfo
from marshmallow import ValidationError
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from flask_passkey.builtins.tenant_config import load_client, validation_messages
from flask_passkey.cli.doctor import diagnose, explain_startup_error
from flask_passkey.core.attestation import Metadata, compromised, parse_metadata
from flask_passkey.core.client_secrets import generate_secret, hash_secret
from flask_passkey.core.clients import CLIENT_CACHE_SECONDS, ClientStore, ClientTaken
from flask_passkey.core.tokens import (
    KEY_REFRESH_SECONDS,
    configured_signing_keys,
    generate_signing_key,
)
from flask_passkey.errors import BackendUnavailable, ConfigurationError
from flask_passkey.models import (
    WEBAUTHN_GRANT,
    AppType,
    AuthMethod,
    Client,
    Credential,
    OrganizationUsage,
)
from flask_passkey.stores.migrations import HEAD, pending_migrations
from flask_passkey.stores.sql import (
    MigrateWhen,
    SqlStore,
    database_revision,
    store_migrations,
    upgrade_database,
)

if TYPE_CHECKING:
    from flask_passkey.extension import PasskeyState

P = ParamSpec("P")

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
#: Users read per query by ``users list``.
_PAGE = 500
#: App types that run on the user's device and so cannot keep a secret.
_PUBLIC_APP_TYPES = ("spa", "native")


@click.group("passkey")
def passkey_cli() -> None:
    """Operate flask-passkey: database, clients, users, signing keys, FIDO metadata, doctor."""


# -- loading the app -----------------------------------------------------------------------


def _load_app(*, migrate: MigrateWhen = "first_use") -> Flask:
    """The app of the ``flask`` command (``--app``/``FLASK_APP``), with its context pushed.

    Its SQL store migrates ``migrate`` (see :func:`.sql_store.store_migrations`): by default
    on first use, so that loading the app never fails on the database.
    """
    if has_app_context():
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        return app
    context = click.get_current_context()
    with store_migrations(migrate):
        app = context.ensure_object(ScriptInfo).load_app()
    context.with_resource(app.app_context())
    return app


def _state_of(app: Flask) -> PasskeyState:
    from flask_passkey.extension import get_state  # the extension module imports this one

    try:
        return get_state(app)
    except RuntimeError as error:
        raise click.ClickException(
            f"{error} Call Passkey(app) or passkey.init_app(app) in the app factory."
        ) from error


def _one_line(text: str) -> str:
    return " ".join(text.split())


@contextmanager
def _failures_as_errors() -> Iterator[None]:
    """Turn an app that does not start, or a backend that cannot be reached, into one
    ``Error:`` line and exit status 1 (click prints a ClickException so)."""
    try:
        yield
    except ConfigurationError as error:
        raise click.ClickException(
            f"The app does not start: {_one_line(str(error))} (`flask passkey doctor` explains)"
        ) from error
    except BackendUnavailable as error:
        raise click.ClickException(_one_line(str(error))) from error


def pass_state(
    command: Callable[Concatenate[PasskeyState, P], None],
) -> Callable[P, None]:
    """Call ``command`` with the extension state of the loaded app; turn a configuration error
    or an unreachable backend into a one-line error and exit status 1."""
    return _with_state(command, migrate="first_use")


def pass_unmigrated_state(
    command: Callable[Concatenate[PasskeyState, P], None],
) -> Callable[P, None]:
    """:func:`pass_state` for the ``db`` commands: the app is loaded without migrating its
    database, so they see the schema as it is and migrate it themselves."""
    return _with_state(command, migrate="never")


def _with_state(
    command: Callable[Concatenate[PasskeyState, P], None], *, migrate: MigrateWhen
) -> Callable[P, None]:
    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        with _failures_as_errors():
            command(_state_of(_load_app(migrate=migrate)), *args, **kwargs)

    return run


# -- output ----------------------------------------------------------------------------------


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Echo ``rows`` under ``header`` in aligned columns."""
    lines = [list(header), *(list(row) for row in rows)]
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    for line in lines:
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        click.echo("  ".join(cells).rstrip())


def _show_secret(secret: str) -> None:
    click.echo(f"client_secret: {secret}")
    click.echo(
        "Copy the secret now: only its hash is stored, so it cannot be shown again.", err=True
    )


# -- db --------------------------------------------------------------------------------------


@passkey_cli.group("db")
def db_cli() -> None:
    """The database schema (migrations shipped with flask-passkey)."""


def _sql_store(state: PasskeyState) -> SqlStore:
    for store in (state.users, state.sessions):
        if isinstance(store, SqlStore):
            return store
    raise click.ClickException(
        "The app keeps nothing in a SQL database (PASSKEY_DATABASE_URL is memory://, or "
        "plugins provide the stores): there is no schema to manage."
    )


def _url(store: SqlStore) -> str:
    return store.url.render_as_string(hide_password=True)


def _revision_note(revision: str | None) -> str:
    """What ``revision`` means to this version of flask-passkey."""
    if revision is None:
        return "no schema yet: run `flask passkey db upgrade`"
    if pending_migrations(revision):
        return f"the newest is {HEAD}: run `flask passkey db upgrade`"
    if revision == HEAD:
        return "the newest"
    return f"newer than this version of flask-passkey, whose newest is {HEAD}"


@db_cli.command("upgrade")
@pass_unmigrated_state
def db_upgrade(state: PasskeyState) -> None:
    """Create or upgrade the database schema to the newest revision; keeps every row.

    Run it before starting the workers of a new version.
    """
    store = _sql_store(state)
    before = database_revision(store.url)
    migrated = upgrade_database(store.url)
    after = database_revision(store.url)
    if migrated:
        click.echo(
            f"Upgraded {_url(store)} from revision {before or 'none'} to {after} "
            f"({_revision_note(after)})."
        )
    else:
        click.echo(
            f"{_url(store)} is at revision {after} ({_revision_note(after)}): nothing to do."
        )


@db_cli.command("current")
@pass_unmigrated_state
def db_current(state: PasskeyState) -> None:
    """Show the database's schema revision and whether it is the newest."""
    store = _sql_store(state)
    revision = database_revision(store.url)
    click.echo(f"{_url(store)} is at revision {revision or 'none'} ({_revision_note(revision)}).")


# -- clients ---------------------------------------------------------------------------------


@passkey_cli.group("clients")
def clients_cli() -> None:
    """Clients (applications) kept in the database.

    They come after those of the tenant configuration and plugins, which win on the same
    client_id. Changes reach every worker within CLIENT_CACHE_SECONDS (30 s).
    """


def _known_connection(state: PasskeyState, name: str) -> None:
    if state.plugin_manager.hook.passkey_get_connection(name=name) is None:
        raise click.ClickException(f"Unknown connection {name!r}.")


def _client_store(state: PasskeyState) -> ClientStore:
    if not isinstance(state.users, ClientStore):
        raise click.ClickException(
            "The app's user store cannot keep clients (PASSKEY_DATABASE_URL is memory://, or a "
            "plugin provides the store): define clients in the tenant configuration instead."
        )
    return state.users


def _stored_client(state: PasskeyState, store: ClientStore, client_id: str) -> Client:
    for client in store.list_clients():
        if client.client_id == client_id:
            return client
    if state.plugin_manager.hook.passkey_get_client(client_id=client_id) is not None:
        raise click.ClickException(
            f"Client {client_id!r} comes from the tenant configuration or a plugin, not the "
            "database: change it there."
        )
    raise click.ClickException(f"No client {client_id!r}.")


@clients_cli.command("add")
@click.argument("client_id")
@click.option("--name", default="", help="A name for people.")
@click.option(
    "--type",
    "app_type",
    type=click.Choice(get_args(AppType)),
    default="spa",
    show_default=True,
    help="The kind of application.",
)
@click.option(
    "--auth-method",
    type=click.Choice(get_args(AuthMethod)),
    help="How it authenticates at /oauth/token. [default: none for spa and native, "
    "client_secret_post otherwise]",
)
@click.option(
    "--connection",
    "connections",
    multiple=True,
    metavar="NAME",
    help="A connection (realm) it may use; repeat for several. [default: the tenant's "
    "default connection]",
)
@click.option(
    "--web-origin",
    "web_origins",
    multiple=True,
    metavar="URL",
    help="A browser origin (scheme://host[:port]) its passkey ceremonies may come from; repeat "
    "for several.",
)
@click.option(
    "--allowed-origin",
    "allowed_origins",
    multiple=True,
    metavar="URL",
    help="An origin (scheme://host[:port]) whose pages may call the API for it (CORS); repeat "
    "for several. [default: its web origins]",
)
@click.option(
    "--grant",
    "grant_types",
    multiple=True,
    metavar="GRANT",
    help=f"A grant type it may use; repeat for several. [default: {WEBAUTHN_GRANT}]",
)
@click.option(
    "--organization-usage",
    type=click.Choice(get_args(OrganizationUsage)),
    default="deny",
    show_default=True,
    help="Whether its requests must, may or must not name an organization.",
)
@click.option(
    "--refresh-token-policy",
    "policies",
    multiple=True,
    metavar="AUDIENCE=SCOPE,...",
    help="A refresh-token policy (Auth0's MRRT): its refresh tokens may get access tokens for "
    "AUDIENCE with these scopes; repeat for several.",
)
@click.option(
    "--challenge-without-secret",
    is_flag=True,
    help="Let this confidential client start passkey ceremonies (/passkey/register, "
    "/passkey/challenge) without its secret, as @auth0/auth0-auth-js does; the token endpoint "
    "still needs it.",
)
@pass_state
def clients_add(
    state: PasskeyState,
    client_id: str,
    name: str,
    app_type: AppType,
    auth_method: AuthMethod | None,
    connections: tuple[str, ...],
    web_origins: tuple[str, ...],
    allowed_origins: tuple[str, ...],
    grant_types: tuple[str, ...],
    organization_usage: OrganizationUsage,
    policies: tuple[str, ...],
    challenge_without_secret: bool,
) -> None:
    """Add the client CLIENT_ID. A confidential one gets a secret, shown once."""
    store = _client_store(state)
    hook = state.plugin_manager.hook
    if hook.passkey_get_client(client_id=client_id) is not None:
        raise click.ClickException(f"Client {client_id!r} exists already.")
    method = auth_method or ("none" if app_type in _PUBLIC_APP_TYPES else "client_secret_post")
    if not connections:
        default = state.validator.tenant().default_connection
        if default is None:
            raise click.UsageError("The tenant has no default connection: give --connection.")
        connections = (default,)
    for connection in connections:
        _known_connection(state, connection)
    secret = generate_secret() if method != "none" else None
    try:
        client = load_client(
            {
                "client_id": client_id,
                "name": name,
                "app_type": app_type,
                "token_endpoint_auth_method": method,
                "client_secret_hash": hash_secret(secret) if secret is not None else None,
                "grant_types": list(grant_types or [WEBAUTHN_GRANT]),
                "organization_usage": organization_usage,
                "connections": list(connections),
                "web_origins": list(web_origins),
                "allowed_origins": list(allowed_origins) if allowed_origins else None,
                "refresh_token": {"policies": [_policy(text) for text in policies]},
                "challenge_without_secret": challenge_without_secret,
            }
        )
    except ValidationError as error:
        raise click.ClickException(
            "Invalid client: " + "; ".join(validation_messages(error.messages))
        ) from error
    try:
        store.add_client(client)
    except ClientTaken as error:
        raise click.ClickException(f"Client {client_id!r} exists already.") from error
    click.echo(
        f"Added client {client_id!r} ({app_type}, {method}; connections: "
        f"{', '.join(client.connections)})."
    )
    if secret is not None:
        _show_secret(secret)


def _policy(text: str) -> dict[str, Any]:
    """``AUDIENCE=SCOPE,...`` as a tenant file's refresh-token policy."""
    audience, _, scopes = text.rpartition("=") if "=" in text else (text, "", "")
    return {"audience": audience, "scope": [s for s in scopes.split(",") if s]}


@clients_cli.command("list")
@pass_state
def clients_list(state: PasskeyState) -> None:
    """List every client: from the tenant configuration, plugins and the database."""
    stored: dict[str, Client] = {}
    if isinstance(state.users, ClientStore):
        state.users.cached_clients().invalidate()
        stored = {client.client_id: client for client in state.users.list_clients()}
    clients = state.clients()
    if not clients:
        click.echo("No clients.")
        return
    _table(
        ("CLIENT_ID", "NAME", "TYPE", "AUTH_METHOD", "SOURCE", "CONNECTIONS"),
        (
            (
                client.client_id,
                client.name,
                client.app_type,
                client.token_endpoint_auth_method,
                "database" if stored.get(client.client_id) == client else "configuration",
                ",".join(client.connections),
            )
            for client in clients
        ),
    )


@clients_cli.command("rotate-secret")
@click.argument("client_id")
@pass_state
def clients_rotate_secret(state: PasskeyState, client_id: str) -> None:
    """Give the stored client CLIENT_ID a new secret, shown once; the old one stops working."""
    store = _client_store(state)
    client = _stored_client(state, store, client_id)
    if not client.is_confidential:
        raise click.ClickException(
            f"Client {client_id!r} is public (token_endpoint_auth_method none): it has no secret."
        )
    secret = generate_secret()
    store.set_client_secret_hash(client_id, hash_secret(secret))
    click.echo(
        f"Rotated the secret of client {client_id!r}: the old one is refused by every worker "
        f"within {CLIENT_CACHE_SECONDS:g} s."
    )
    _show_secret(secret)


@clients_cli.command("remove")
@click.argument("client_id")
@pass_state
def clients_remove(state: PasskeyState, client_id: str) -> None:
    """Remove the stored client CLIENT_ID."""
    store = _client_store(state)
    _stored_client(state, store, client_id)
    store.delete_client(client_id)
    click.echo(
        f"Removed client {client_id!r}: every worker refuses it within {CLIENT_CACHE_SECONDS:g} s."
    )


# -- users -----------------------------------------------------------------------------------


@passkey_cli.group("users")
def users_cli() -> None:
    """Users and their passkeys."""


@users_cli.command("list")
@click.option("--connection", metavar="NAME", help="Only the users of this connection.")
@pass_state
def users_list(state: PasskeyState, connection: str | None) -> None:
    """List users, oldest first, with their identifiers and number of passkeys."""
    if connection is not None:
        _known_connection(state, connection)
    rows = []
    offset = 0
    while page := state.users.list_users(limit=_PAGE, offset=offset):
        offset += len(page)
        for user in page:
            if connection is not None and user.connection != connection:
                continue
            identifiers = [
                value for value in (user.email, user.phone_number, user.username) if value
            ]
            rows.append(
                (
                    user.id,
                    user.connection,
                    ",".join(identifiers),
                    _when(user.created_at),
                    str(len(state.users.list_credentials(user.id))),
                )
            )
    if not rows:
        click.echo("No users.")
        return
    _table(("USER_ID", "CONNECTION", "IDENTIFIERS", "CREATED", "PASSKEYS"), rows)


def _user_exists(state: PasskeyState, user_id: str) -> None:
    if state.users.get_user(user_id) is None:
        raise click.ClickException(f"No user {user_id!r}.")


@users_cli.command("passkeys")
@click.argument("user_id")
@pass_state
def users_passkeys(state: PasskeyState, user_id: str) -> None:
    """List the passkeys of USER_ID."""
    _user_exists(state, user_id)
    credentials = state.users.list_credentials(user_id)
    if not credentials:
        click.echo(f"User {user_id!r} has no passkey.")
        return
    _table(
        ("CREDENTIAL_ID", "NAME", "CREATED", "LAST_USED", "KIND", "AAGUID"),
        (
            (
                bytes_to_base64url(credential.id),
                _passkey_name(state, credential),
                _when(credential.created_at),
                _when(credential.last_used_at),
                "synced" if credential.device_type == "multi_device" else "device-bound",
                credential.aaguid,
            )
            for credential in credentials
        ),
    )


def _passkey_name(state: PasskeyState, credential: Credential) -> str:
    """The user's name for the passkey, else its provider's (by AAGUID), else "-"."""
    provider = state.authenticators.authenticator_name(credential.aaguid)
    return credential.name or (provider.name if provider is not None else "-")


@users_cli.command("revoke-passkey")
@click.argument("user_id")
@click.argument("credential_id")
@pass_state
def users_revoke_passkey(state: PasskeyState, user_id: str, credential_id: str) -> None:
    """Delete the passkey CREDENTIAL_ID (base64url, as `users passkeys` shows it) of USER_ID.

    The passkey stays on the user's device but signs nobody in any more.
    """
    _user_exists(state, user_id)
    try:
        if not _BASE64URL.fullmatch(credential_id):
            raise ValueError(credential_id)
        raw_id = base64url_to_bytes(credential_id)
    except ValueError as error:  # binascii.Error too
        raise click.BadParameter("not base64url", param_hint="CREDENTIAL_ID") from error
    if not state.users.delete_credential(user_id=user_id, credential_id=raw_id):
        raise click.ClickException(f"User {user_id!r} has no passkey {credential_id!r}.")
    left = len(state.users.list_credentials(user_id))
    click.echo(f"Revoked passkey {credential_id} of user {user_id!r}; {left} left.")
    if left == 0:
        click.echo("The user has no passkey left and cannot sign in.", err=True)


@users_cli.command("add-to-organization")
@click.argument("user_id")
@click.argument("organization_id")
@pass_state
def users_add_to_organization(state: PasskeyState, user_id: str, organization_id: str) -> None:
    """Make USER_ID a member of ORGANIZATION_ID, so it can sign in there.

    Sign-up with an organization enrolls the new user; this is how an existing one joins.
    """
    _user_exists(state, user_id)
    if state.plugin_manager.hook.passkey_get_organization(organization_id=organization_id) is None:
        raise click.BadParameter("no such organization", param_hint="ORGANIZATION_ID")
    state.users.add_member(organization_id=organization_id, user_id=user_id)
    click.echo(f"User {user_id!r} is a member of {organization_id!r}.")


# -- keys ------------------------------------------------------------------------------------


@passkey_cli.group("keys")
def keys_cli() -> None:
    """Token signing keys (published at /.well-known/jwks.json)."""


@keys_cli.command("rotate")
@pass_state
def keys_rotate(state: PasskeyState) -> None:
    """Add a new signing key; it signs on every worker within KEY_REFRESH_SECONDS (60 s).

    Older keys stay published, so tokens they signed still verify until they expire.
    """
    if state.settings.signing_keys:
        raise click.ClickException(
            "Signing keys come from PASSKEY_SIGNING_KEYS: append the new key to that list "
            "(the last one signs) and restart."
        )
    key = generate_signing_key(now=time.time())
    state.users.add_signing_key(key)
    click.echo(
        f"Added signing key {key.kid}: every worker signs with it within "
        f"{KEY_REFRESH_SECONDS:g} s; older keys stay published."
    )


@keys_cli.command("list")
@pass_state
def keys_list(state: PasskeyState) -> None:
    """List the signing keys, oldest first; the newest (active) one signs."""
    if state.settings.signing_keys:
        keys = configured_signing_keys(state.settings.signing_keys)
        created = [f"PASSKEY_SIGNING_KEYS[{index}]" for index in range(len(keys))]
    else:
        keys = sorted(state.users.signing_keys(), key=lambda key: key.created_at)
        created = [_when(key.created_at) for key in keys]
    if not keys:
        click.echo(
            "No signing key yet: the first one is generated when the app first signs a token "
            "or publishes its JWKS (or now: `flask passkey keys rotate`)."
        )
        return
    _table(
        ("KID", "CREATED", "ACTIVE"),
        (
            (key.kid, when, "yes" if index == len(keys) - 1 else "no")
            for index, (key, when) in enumerate(zip(keys, created, strict=True))
        ),
    )


# -- doctor ----------------------------------------------------------------------------------


@passkey_cli.command("doctor")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="How many worker processes serve the app. [default: guessed from WEB_CONCURRENCY, "
    "GUNICORN_CMD_ARGS or SERVER_SOFTWARE]",
)
def doctor(workers: int | None) -> None:
    """Check the deployment and say what to fix, or "ok".

    Exits with status 1 when it finds a problem, including an app that does not start.
    """
    try:
        app = _load_app()
    except click.ClickException:  # no app found: flask's own message says which
        raise
    except Exception as error:  # whatever stops the app from starting is the diagnosis
        problems = explain_startup_error(error)
    else:
        problems = diagnose(_state_of(app), environ=os.environ, workers=workers)
    if not problems:
        click.echo("ok")
        return
    for problem in problems:
        click.echo(f"- {problem}")
    click.echo(f"{len(problems)} problem(s) found.", err=True)
    click.get_current_context().exit(1)


# -- FIDO metadata -----------------------------------------------------------------------------


@passkey_cli.group("mds")
def mds_cli() -> None:
    """The FIDO Metadata Service BLOB that makes attestations trusted."""


def _describe(metadata: Metadata) -> None:
    today = datetime.now(UTC).date()
    compromised_entries = sum(1 for entry in metadata.entries.values() if compromised(entry))
    click.echo(f"BLOB:        {metadata.source}")
    click.echo(f"number:      {metadata.number}")
    expiry = " (expired: download the current BLOB)" if metadata.expired(today) else ""
    click.echo(f"next update: {metadata.next_update.isoformat()}{expiry}")
    click.echo(
        f"authenticators: {len(metadata.entries)} ({compromised_entries} refused as compromised)"
    )


@mds_cli.command("info")
@pass_state
def mds_info(state: PasskeyState) -> None:
    """Show the BLOB the app loaded: its number, when it expires, how many authenticators."""
    gate = state.ceremonies.attestation
    metadata = gate.metadata if gate is not None else None
    if metadata is None:
        click.echo("No BLOB: set PASSKEY_MDS_BLOB and PASSKEY_MDS_ROOT_CERT to trust attestations.")
        return
    _describe(metadata)


@mds_cli.command("load")
@click.argument("blob_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_state
def mds_load(state: PasskeyState, blob_file: Path) -> None:
    """Verify a newly downloaded BLOB against PASSKEY_MDS_ROOT_CERT and put it in place of
    PASSKEY_MDS_BLOB (atomically); the app's workers use it once restarted."""
    settings = state.settings
    gate = state.ceremonies.attestation
    if settings.mds_blob is None or settings.mds_root_cert is None or gate is None:
        raise click.ClickException("Set PASSKEY_MDS_BLOB and PASSKEY_MDS_ROOT_CERT first.")
    app = current_app
    target = Path(app.root_path, settings.mds_blob)
    blob = blob_file.read_bytes()
    try:
        metadata = parse_metadata(
            blob, Path(app.root_path, settings.mds_root_cert).read_bytes(), source=str(target)
        )
    except ValueError as error:
        raise click.ClickException(f"{blob_file}: {error}") from error
    current = gate.metadata
    if current is not None and metadata.number < current.number:
        raise click.ClickException(
            f"{blob_file} is BLOB number {metadata.number}, older than the loaded "
            f"{current.number}: not replacing it."
        )
    staged = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    staged.write_bytes(blob)
    os.replace(staged, target)
    _describe(metadata)
    click.echo("Restart the app's workers to use it.", err=True)
