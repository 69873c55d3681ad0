"""The SQL store: pending ceremonies and everything durable in one database, on SQLAlchemy Core.

The embedded default is a SQLite file in the app's instance folder (WAL journal and a busy
timeout, so several worker processes can share it); PostgreSQL is chosen by URL
(``postgresql+psycopg://...``) and runs the same statements. The schema is created or upgraded
by the Alembic migrations shipped in ``flask_passkey/stores/migrations`` (:func:`upgrade_database`),
when the store starts (``PASSKEY_AUTO_MIGRATE``, on by default) or by ``flask passkey db upgrade``.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import select
import sqlite3
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, Row

from flask_passkey.core.clients import ClientCache, ClientTaken
from flask_passkey.errors import BackendUnavailable, ConfigurationError
from flask_passkey.hookspecs import hookimpl
from flask_passkey.models import (
    IDENTIFIERS,
    AndroidApp,
    Client,
    Credential,
    Identifier,
    IosApp,
    RefreshTokenPolicy,
    User,
)
from flask_passkey.stores.migrations import HEAD, pending_migrations
from flask_passkey.stores.sessions import AuthSession, SessionStore
from flask_passkey.stores.sql_schema import (
    auth_sessions,
    clients,
    credentials,
    markers,
    organization_members,
    refresh_token_revocations,
    refresh_tokens,
    signing_keys,
    users,
)
from flask_passkey.stores.users import (
    CredentialTaken,
    IdentifierTaken,
    RefreshGrant,
    SigningKey,
    UserStore,
)

if TYPE_CHECKING:
    from flask import Flask

logger = logging.getLogger(__name__)

#: The engines' ``logging_name``: they log as ``sqlalchemy.engine.Engine.flask_passkey``.
ENGINE_LOGGING_NAME = "flask_passkey"
# SQLAlchemy logs every result row at DEBUG (sessions with their challenge, public keys, user
# handles): our engines' logger drops DEBUG records, so it stops at INFO (statements, with
# parameters hidden) however verbose "sqlalchemy" is made. Its level is left alone: by default
# it inherits SQLAlchemy's WARN, and an engine that may log INFO formats a record for every
# statement (about 15 per token request), whether any handler prints it or not.
_engine_logger = logging.getLogger(f"sqlalchemy.engine.Engine.{ENGINE_LOGGING_NAME}")


def _not_debug(record: logging.LogRecord) -> bool:
    return record.levelno > logging.DEBUG


_engine_logger.addFilter(_not_debug)

#: Whether the store migrates by itself (a key :class:`SqlStorePlugin` declares).
AUTO_MIGRATE = "PASSKEY_AUTO_MIGRATE"
#: ``PASSKEY_DATABASE_URL`` value that selects the in-memory stores instead of this one.
MEMORY_URL = "memory://"
#: File name of the embedded default database, in ``app.instance_path``.
DEFAULT_SQLITE_FILE = "passkey.sqlite3"
#: Seconds a SQLite writer waits for another connection's write lock before giving up.
SQLITE_BUSY_TIMEOUT = 10.0
#: Seconds to wait for a new PostgreSQL connection (unless the URL sets ``connect_timeout``).
POSTGRES_CONNECT_TIMEOUT = 5
#: Expired sessions and refresh tokens are deleted once every this many session puts.
PURGE_EVERY = 100

_MIGRATIONS = "flask_passkey.stores:migrations"
#: Alembic's version table (its default name), read here without importing Alembic: see
#: :mod:`flask_passkey.stores.migrations`.
_ALEMBIC_VERSION = sa.table("alembic_version", sa.column("version_num", sa.String))
# PostgreSQL advisory lock held while migrating, so concurrent upgraders queue up.
_MIGRATION_LOCK = 0x666C61736B5F706B
# PostgreSQL advisory lock held while adding the first signing key, so workers queue up.
_FIRST_KEY_LOCK = 0x666C61736B5F6B31
# Connection-level failures: the database is down, unreachable, locked or out of connections.
_UNAVAILABLE = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.DisconnectionError,
    exc.TimeoutError,
)
# The dialects this store runs on (both have DELETE ... RETURNING and ON CONFLICT DO NOTHING),
# with their INSERT construct and the isolation level of a multi-statement transaction.
_DIALECTS: dict[str, tuple[Callable[[sa.Table], sqlite.Insert | postgresql.Insert], str]] = {
    "sqlite": (sqlite.insert, "SERIALIZABLE"),
    "postgresql": (postgresql.insert, "READ COMMITTED"),
}

# Statements are built once; SQLAlchemy then reuses their compiled form on every call.
_USER_COLUMNS = [users.c[f.name] for f in fields(User)]
_CREDENTIAL_COLUMNS = [credentials.c[f.name] for f in fields(Credential)]
_GRANT_COLUMNS = [refresh_tokens.c[f.name] for f in fields(RefreshGrant)]

_PUT_SESSION = auth_sessions.insert()
_TAKE_SESSION = (
    auth_sessions.delete()
    .where(auth_sessions.c.id == sa.bindparam("session_id"))
    .returning(auth_sessions.c.data)
)
_PURGE_SESSIONS = auth_sessions.delete().where(auth_sessions.c.expires_at <= sa.bindparam("now"))
_PURGE_MARKERS = markers.delete().where(markers.c.expires_at <= sa.bindparam("now"))
_PURGE_REFRESH_TOKENS = refresh_tokens.delete().where(
    refresh_tokens.c.expires_at <= sa.bindparam("now")
)
_PURGE_REVOCATIONS = refresh_token_revocations.delete().where(
    refresh_token_revocations.c.expires_at <= sa.bindparam("now")
)

_INSERT_USER = users.insert()
_GET_USER = sa.select(*_USER_COLUMNS).where(users.c.id == sa.bindparam("user_id"))
_FIND_USER = {
    kind: sa.select(*_USER_COLUMNS).where(
        users.c.connection == sa.bindparam("connection"),
        users.c[kind] == sa.bindparam("value"),
    )
    for kind in IDENTIFIERS
}
_LIST_USERS = sa.select(*_USER_COLUMNS).order_by(users.c.created_at, users.c.id)

_INSERT_CREDENTIAL = credentials.insert()
_GET_CREDENTIAL = sa.select(*_CREDENTIAL_COLUMNS).where(
    credentials.c.id == sa.bindparam("credential_id")
)
# The owner's columns labelled "owner_<name>": both tables have id and created_at.
_OWNER_COLUMNS = [users.c[f.name].label(f"owner_{f.name}") for f in fields(User)]
_GET_CREDENTIAL_WITH_USER = (
    sa.select(*_CREDENTIAL_COLUMNS, *_OWNER_COLUMNS)
    .join(users, users.c.id == credentials.c.user_id)
    .where(credentials.c.id == sa.bindparam("credential_id"))
)
_LIST_CREDENTIALS = (
    sa.select(*_CREDENTIAL_COLUMNS)
    .where(credentials.c.user_id == sa.bindparam("owner"))
    .order_by(credentials.c.created_at, credentials.c.id)
)
_RECORD_LOGIN = (
    credentials.update()
    .where(
        credentials.c.id == sa.bindparam("credential_id"),
        credentials.c.sign_count == sa.bindparam("expected_sign_count"),
    )
    .values(
        sign_count=sa.bindparam("new_sign_count"),
        backed_up=sa.bindparam("new_backed_up"),
        last_used_at=sa.bindparam("used_at"),
    )
)
_RENAME_CREDENTIAL = (
    credentials.update()
    .where(
        credentials.c.id == sa.bindparam("credential_id"),
        credentials.c.user_id == sa.bindparam("owner"),
    )
    .values(name=sa.bindparam("new_name"))
)
_DELETE_CREDENTIAL = credentials.delete().where(
    credentials.c.id == sa.bindparam("credential_id"),
    credentials.c.user_id == sa.bindparam("owner"),
)

_IS_MEMBER = sa.select(organization_members.c.user_id).where(
    organization_members.c.organization_id == sa.bindparam("organization_id"),
    organization_members.c.user_id == sa.bindparam("user_id"),
)

_PUT_REFRESH_TOKEN = refresh_tokens.insert()
# A token of a revoked family is unknown, even one inserted after the revocation.
_NOT_REVOKED = ~sa.exists().where(
    refresh_token_revocations.c.family_id == refresh_tokens.c.family_id
)
_GET_REFRESH_TOKEN = sa.select(*_GRANT_COLUMNS).where(
    refresh_tokens.c.token_hash == sa.bindparam("hash"), _NOT_REVOKED
)
_USE_REFRESH_TOKEN = (
    refresh_tokens.update()
    .where(
        refresh_tokens.c.token_hash == sa.bindparam("hash"),
        refresh_tokens.c.used_at.is_(None),
        _NOT_REVOKED,
    )
    .values(used_at=sa.bindparam("now"))
)
_DELETE_FAMILY = refresh_tokens.delete().where(refresh_tokens.c.family_id == sa.bindparam("family"))

_ADD_SIGNING_KEY = signing_keys.insert()
_ANY_SIGNING_KEY = sa.select(signing_keys.c.kid).limit(1)
_SIGNING_KEYS = sa.select(*(signing_keys.c[f.name] for f in fields(SigningKey))).order_by(
    signing_keys.c.created_at, signing_keys.c.kid
)

# Every field of a Client but the plain secret, which is never stored.
#: Client fields without a column: the plain secret (only its hash is stored) and the
#: attestation override, which only the tenant data sets (stored clients use their connection's).
_UNSTORED_CLIENT_FIELDS = ("client_secret", "attestation")
_CLIENT_COLUMNS = [
    clients.c[f.name] for f in fields(Client) if f.name not in _UNSTORED_CLIENT_FIELDS
]
_LIST_CLIENTS = sa.select(*_CLIENT_COLUMNS).order_by(clients.c.client_id)
_ADD_CLIENT = clients.insert()
_CLIENT_EXISTS = sa.select(clients.c.client_id).where(clients.c.client_id == sa.bindparam("wanted"))
_SET_CLIENT_SECRET_HASH = (
    clients.update()
    .where(clients.c.client_id == sa.bindparam("wanted"))
    .values(client_secret_hash=sa.bindparam("new_hash"))
)
_DELETE_CLIENT = clients.delete().where(clients.c.client_id == sa.bindparam("wanted"))


#: When a store brings the schema up to date: as it is constructed (or, the database being
#: unreachable then, on first use), on its first use, or never (it only checks the revision).
MigrateWhen = Literal["start", "first_use", "never"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _read(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """A read runs once more, on a new connection, when its pooled connection turned out to
    be closed by the server (which the checkout check, see :func:`_check_out`, can miss in the
    instant after it happens). Writes are not repeated: they answer BackendUnavailable."""

    @functools.wraps(method)
    def read(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except BackendUnavailable as error:
            dropped = error.__cause__
            if not (isinstance(dropped, exc.DBAPIError) and dropped.connection_invalidated):
                raise
        return method(*args, **kwargs)

    return read


class SqlStore:
    """:class:`~flask_passkey.stores.sessions.SessionStore`,
    :class:`~flask_passkey.stores.users.UserStore` and
    :class:`~flask_passkey.core.clients.ClientStore` on one SQLAlchemy engine: a SQLite file or a
    PostgreSQL database.

    ``migrate="start"`` (the default) creates or upgrades the schema when constructed, or,
    when the database cannot be reached then (a warning is logged), on first use;
    ``"first_use"`` waits for the first use. With ``"never"`` the store never changes the
    schema: its first use checks that the database is at
    :data:`~flask_passkey.stores.migrations.HEAD` and raises BackendUnavailable, naming
    ``flask passkey db upgrade``, until it is.
    Every method raises BackendUnavailable while the database cannot be reached and works
    again once it can (pooled connections are checked before each use, without a round trip:
    see :func:`_check_out`). Raises ConfigurationError for a URL it cannot serve.
    """

    def __init__(self, url: str | URL, *, migrate: MigrateWhen = "start") -> None:
        #: The database URL (its ``repr`` hides the password).
        self.url = _parse_url(url)
        # Nearly every method is one statement: autocommit spares it a BEGIN and a COMMIT.
        #: The engine, for operators (e.g. ``store.engine.dispose()`` in a forked worker).
        self.engine = _create_engine(self.url, isolation_level="AUTOCOMMIT")
        insert, isolation_level = _DIALECTS[self.engine.dialect.name]
        self._transactional = self.engine.execution_options(isolation_level=isolation_level)
        self._add_member = insert(organization_members).on_conflict_do_nothing()
        self._revoke_family = insert(refresh_token_revocations).on_conflict_do_nothing()
        # A marker is added, or replaces an expired one; a live one is left alone (no row).
        added = insert(markers)
        self._put_marker = added.on_conflict_do_update(
            index_elements=[markers.c.key],
            set_={"expires_at": added.excluded.expires_at},
            where=markers.c.expires_at <= sa.bindparam("now"),
        ).returning(markers.c.key)
        self._puts = itertools.count()
        self._migrate = migrate != "never"
        self._schema_lock = threading.Lock()
        self._schema_ready = False
        self._behind_logged = False
        self._client_cache = ClientCache(self.list_clients)
        if migrate == "start":
            try:
                self._ensure_schema()
            except BackendUnavailable as error:
                logger.warning("%s; the schema will be brought up to date on first use.", error)

    def close(self) -> None:
        """Close the pooled connections (the store reconnects if used again)."""
        self.engine.dispose()

    def database_files(self) -> list[str]:
        """The SQLite database file and its WAL and shared-memory files, those that exist;
        none for PostgreSQL."""
        database = self.url.database
        if self.url.get_backend_name() != "sqlite" or not database:
            return []
        paths = [database + suffix for suffix in ("", "-wal", "-shm")]
        return [path for path in paths if os.path.exists(path)]

    # -- SessionStore ---------------------------------------------------------------------

    def put(self, session: AuthSession, *, now: float) -> None:
        """Insert the session; every PURGE_EVERY puts, also delete what has expired at ``now``."""
        values = {"id": session.id, "data": session.to_json(), "expires_at": session.expires_at}
        with self._connect() as connection:
            connection.execute(_PUT_SESSION, values)
            if next(self._puts) % PURGE_EVERY == 0:
                connection.execute(_PURGE_SESSIONS, {"now": now})
                connection.execute(_PURGE_MARKERS, {"now": now})
                # Nothing else removes a refresh token that is never redeemed.
                connection.execute(_PURGE_REFRESH_TOKENS, {"now": now})
                connection.execute(_PURGE_REVOCATIONS, {"now": now})

    def take(self, session_id: str, *, now: float) -> AuthSession | None:
        """``DELETE ... RETURNING``: one statement, so one winner among concurrent takes."""
        with self._connect() as connection:
            data = connection.execute(_TAKE_SESSION, {"session_id": session_id}).scalar()
        if data is None:
            return None
        session = AuthSession.from_json(data)
        return None if session.is_expired(now) else session

    def put_marker(self, key: str, *, expires_at: float, now: float) -> bool:
        """One upsert: it returns a row only when the key is new or its marker expired."""
        with self._connect() as connection:
            row = connection.execute(
                self._put_marker, {"key": key, "expires_at": expires_at, "now": now}
            ).first()
        return row is not None

    # -- UserStore ------------------------------------------------------------------------

    def create_user(
        self, user: User, credential: Credential, *, organization_id: str | None
    ) -> None:
        """One transaction; on a unique violation, reads which identifier (or the credential)
        is taken, so no dialect's error text needs parsing."""
        try:
            with self._connect(transaction=True) as connection:
                connection.execute(_INSERT_USER, asdict(user))
                connection.execute(_INSERT_CREDENTIAL, asdict(credential))
                if organization_id is not None:
                    connection.execute(
                        self._add_member,
                        {"organization_id": organization_id, "user_id": user.id},
                    )
        except exc.IntegrityError as error:
            conflict = self._conflict(user, credential)
            if conflict is None:  # not a registered identifier or credential: a real bug
                raise
            raise conflict from error

    @_read
    def find_user(self, *, connection: str, kind: Identifier, value: str) -> User | None:
        with self._connect() as db:
            row = db.execute(_FIND_USER[kind], {"connection": connection, "value": value}).first()
        return _user(row) if row is not None else None

    @_read
    def get_user(self, user_id: str) -> User | None:
        with self._connect() as connection:
            row = connection.execute(_GET_USER, {"user_id": user_id}).first()
        return _user(row) if row is not None else None

    @_read
    def get_credential(self, credential_id: bytes) -> Credential | None:
        with self._connect() as connection:
            row = connection.execute(_GET_CREDENTIAL, {"credential_id": credential_id}).first()
        return _credential(row) if row is not None else None

    def record_login(
        self,
        credential_id: bytes,
        *,
        expected_sign_count: int,
        sign_count: int,
        backed_up: bool,
        used_at: float,
    ) -> bool:
        """``UPDATE ... WHERE id = ? AND sign_count = ?``: the row count tells who won."""
        with self._connect() as connection:
            result = connection.execute(
                _RECORD_LOGIN,
                {
                    "credential_id": credential_id,
                    "expected_sign_count": expected_sign_count,
                    "new_sign_count": sign_count,
                    "new_backed_up": backed_up,
                    "used_at": used_at,
                },
            )
        return result.rowcount == 1

    @_read
    def get_credential_with_user(self, credential_id: bytes) -> tuple[Credential, User] | None:
        """The credential and its owner in one statement (a login's two reads, one round
        trip); None when there is no such credential."""
        with self._connect() as connection:
            row = connection.execute(
                _GET_CREDENTIAL_WITH_USER, {"credential_id": credential_id}
            ).first()
        if row is None:
            return None
        values = row._mapping
        credential = {f.name: values[f.name] for f in fields(Credential)}
        credential["transports"] = tuple(credential["transports"])
        owner = {f.name: values[f"owner_{f.name}"] for f in fields(User)}
        return Credential(**credential), User(**owner)

    @_read
    def list_credentials(self, user_id: str) -> list[Credential]:
        with self._connect() as connection:
            rows = connection.execute(_LIST_CREDENTIALS, {"owner": user_id}).all()
        return [_credential(row) for row in rows]

    def add_credential(self, credential: Credential) -> None:
        try:
            with self._connect() as connection:
                connection.execute(_INSERT_CREDENTIAL, asdict(credential))
        except exc.IntegrityError as error:
            if self.get_credential(credential.id) is None:  # e.g. no such user
                raise
            raise CredentialTaken() from error

    def rename_credential(self, *, user_id: str, credential_id: bytes, name: str) -> bool:
        with self._connect() as connection:
            result = connection.execute(
                _RENAME_CREDENTIAL,
                {"credential_id": credential_id, "owner": user_id, "new_name": name},
            )
        return result.rowcount == 1

    def delete_credential(self, *, user_id: str, credential_id: bytes) -> bool:
        with self._connect() as connection:
            result = connection.execute(
                _DELETE_CREDENTIAL, {"credential_id": credential_id, "owner": user_id}
            )
        return result.rowcount == 1

    @_read
    def list_users(self, *, limit: int = 100, offset: int = 0) -> list[User]:
        with self._connect() as connection:
            rows = connection.execute(_LIST_USERS.limit(limit).offset(offset)).all()
        return [_user(row) for row in rows]

    def add_member(self, *, organization_id: str, user_id: str) -> None:
        with self._connect() as connection:
            connection.execute(
                self._add_member, {"organization_id": organization_id, "user_id": user_id}
            )

    @_read
    def is_member(self, *, organization_id: str, user_id: str) -> bool:
        with self._connect() as connection:
            row = connection.execute(
                _IS_MEMBER, {"organization_id": organization_id, "user_id": user_id}
            ).first()
        return row is not None

    def put_refresh_token(self, token_hash: str, grant: RefreshGrant) -> None:
        with self._connect() as connection:
            connection.execute(_PUT_REFRESH_TOKEN, {"token_hash": token_hash, **asdict(grant)})

    @_read
    def get_refresh_token(self, token_hash: str) -> RefreshGrant | None:
        with self._connect() as connection:
            row = connection.execute(_GET_REFRESH_TOKEN, {"hash": token_hash}).first()
        return RefreshGrant(**{**row._mapping, "scope": tuple(row.scope)}) if row else None

    def use_refresh_token(self, token_hash: str, *, now: float) -> bool:
        """``UPDATE ... WHERE used_at IS NULL``: the row count tells who won."""
        with self._connect() as connection:
            result = connection.execute(_USE_REFRESH_TOKEN, {"hash": token_hash, "now": now})
        return result.rowcount == 1

    def revoke_refresh_token_family(self, family_id: str, *, expires_at: float) -> None:
        """The revocation row first, then the tokens, in one transaction."""
        with self._connect(transaction=True) as connection:
            connection.execute(
                self._revoke_family, {"family_id": family_id, "expires_at": expires_at}
            )
            connection.execute(_DELETE_FAMILY, {"family": family_id})

    @_read
    def signing_keys(self) -> list[SigningKey]:
        with self._connect() as connection:
            rows = connection.execute(_SIGNING_KEYS).all()
        return [SigningKey(**row._mapping) for row in rows]

    def add_signing_key(self, key: SigningKey) -> None:
        with self._connect() as connection:
            connection.execute(_ADD_SIGNING_KEY, asdict(key))

    def add_first_signing_key(self, key: SigningKey) -> bool:
        with self._connect() as connection, _write_locked(connection, _FIRST_KEY_LOCK):
            if connection.execute(_ANY_SIGNING_KEY).first() is not None:
                return False
            connection.execute(_ADD_SIGNING_KEY, asdict(key))
            return True

    # -- ClientStore ----------------------------------------------------------------------

    @_read
    def list_clients(self) -> list[Client]:
        with self._connect() as connection:
            rows = connection.execute(_LIST_CLIENTS).all()
        return [_client(row) for row in rows]

    def add_client(self, client: Client) -> None:
        if client.client_secret is not None:
            raise ValueError("Store the client secret's hash (client_secret_hash), not the secret.")
        if client.attestation is not None:
            raise ValueError("A stored client has no attestation policy: set it on the connection.")
        values = {
            key: value
            for key, value in asdict(client).items()
            if key not in _UNSTORED_CLIENT_FIELDS
        }
        try:
            with self._connect() as connection:
                connection.execute(_ADD_CLIENT, values)
        except exc.IntegrityError as error:
            with self._connect() as connection:
                taken = connection.execute(_CLIENT_EXISTS, {"wanted": client.client_id}).first()
            if taken is None:
                raise
            raise ClientTaken(client.client_id) from error
        self._client_cache.invalidate()

    def set_client_secret_hash(self, client_id: str, secret_hash: str) -> bool:
        with self._connect() as connection:
            result = connection.execute(
                _SET_CLIENT_SECRET_HASH, {"wanted": client_id, "new_hash": secret_hash}
            )
        self._client_cache.invalidate()
        return result.rowcount == 1

    def delete_client(self, client_id: str) -> bool:
        with self._connect() as connection:
            result = connection.execute(_DELETE_CLIENT, {"wanted": client_id})
        self._client_cache.invalidate()
        return result.rowcount == 1

    def cached_clients(self) -> ClientCache:
        return self._client_cache

    # -- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _connect(self, *, transaction: bool = False) -> Iterator[Connection]:
        """A pooled connection in autocommit mode, or inside one transaction committed on exit
        (rolled back on an exception); connection failures become BackendUnavailable."""
        if not self._schema_ready:
            self._ensure_schema()
        if transaction:
            with _reachable(), self._transactional.begin() as connection:
                yield connection
        else:
            # Autocommit: each statement commits by itself, so no Transaction to begin and
            # commit around it (SQLAlchemy's emits nothing, but is still work on every call).
            with _reachable(), self.engine.connect() as connection:
                yield connection

    def _ensure_schema(self) -> None:
        with self._schema_lock:
            if self._schema_ready:
                return
            if self._migrate:
                upgrade_database(self.url)
            else:
                revision = database_revision(self.url)
                if pending_migrations(revision):
                    behind = BackendUnavailable(
                        f"The database schema is at revision {revision or 'none'}; this "
                        f"version of flask-passkey needs {HEAD}: run `flask passkey db upgrade`."
                    )
                    if not self._behind_logged:  # once, not on every request until then
                        logger.warning("%s", behind)
                        self._behind_logged = True
                    raise behind
            self._schema_ready = True

    def _conflict(
        self, user: User, credential: Credential
    ) -> IdentifierTaken | CredentialTaken | None:
        """What a failed ``create_user`` collided with (the conflicting rows are committed)."""
        for kind in IDENTIFIERS:
            value = user.identifier(kind)
            if value is not None and self.find_user(
                connection=user.connection, kind=kind, value=value
            ):
                return IdentifierTaken(kind)
        if self.get_credential(credential.id) is not None:
            return CredentialTaken()
        return None


def _user(row: Row[Any]) -> User:
    return User(**row._mapping)


def _credential(row: Row[Any]) -> Credential:
    return Credential(**{**row._mapping, "transports": tuple(row.transports)})


def _client(row: Row[Any]) -> Client:
    return Client(
        **{
            **row._mapping,
            "grant_types": tuple(row.grant_types),
            "connections": tuple(row.connections),
            "web_origins": tuple(row.web_origins),
            "allowed_top_origins": tuple(row.allowed_top_origins),
            "allowed_origins": (
                tuple(row.allowed_origins) if row.allowed_origins is not None else None
            ),
            "android_apps": tuple(
                AndroidApp(app["package_name"], tuple(app["sha256_cert_fingerprints"]))
                for app in row.android_apps
            ),
            "ios_apps": tuple(IosApp(app["team_id"], app["bundle_id"]) for app in row.ios_apps),
            "refresh_token_policies": tuple(
                RefreshTokenPolicy(policy["audience"], tuple(policy["scope"]))
                for policy in row.refresh_token_policies
            ),
        }
    )


def upgrade_database(url: str | URL, *, revision: str = HEAD) -> bool:
    """Create or upgrade the schema of the database at ``url`` to the newest migration (or to
    ``revision``, which tests use to build an older database). True when it ran migrations,
    False when there was nothing to do.

    A database at the revision already (or at one a newer version of flask-passkey made) is
    only read: one query, nothing logged. Otherwise the whole upgrade is one transaction
    (SQLite and PostgreSQL both have transactional DDL) under a lock (PostgreSQL: an advisory
    lock; SQLite: its write lock, taken by ``BEGIN IMMEDIATE``), so processes that start
    together queue up and the later ones find nothing to do; the one that migrates logs one
    INFO line (Alembic's own lines too, if its loggers print INFO). Migrations only add to the
    schema; existing rows are kept. A SQLite file is also switched to WAL. Raises
    BackendUnavailable when the database cannot be reached, ConfigurationError for a URL this
    store cannot serve.
    """
    target = _parse_url(url)
    # Autocommit, and the transaction begun by hand: pysqlite would run DDL outside any
    # transaction, and SQLite needs BEGIN IMMEDIATE to take the write lock up front.
    engine = _create_engine(target, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with _reachable(), engine.connect() as connection:
            if not pending_migrations(_stored_revision(connection), revision):
                return False
            if engine.dialect.name == "sqlite":
                _use_wal(connection)
            with _write_locked(connection, _MIGRATION_LOCK):
                before = _stored_revision(connection)  # another process may have upgraded
                migrating = bool(pending_migrations(before, revision))
                if migrating:
                    _run_migrations(connection, revision)
    finally:
        engine.dispose()
    if migrating:
        logger.info(
            "Upgraded the database schema of %s from revision %s to %s.",
            target.render_as_string(hide_password=True),
            before or "none",
            revision,
        )
    return migrating


@contextmanager
def _write_locked(connection: Connection, lock: int) -> Iterator[None]:
    """One transaction on the autocommit ``connection``, committed on exit (rolled back on an
    exception), holding a lock that concurrent holders of ``lock`` queue up for, in this and
    other processes: PostgreSQL's advisory lock ``lock``; SQLite's write lock, taken up front by
    ``BEGIN IMMEDIATE`` (the busy timeout is how long a writer queues)."""
    sqlite = connection.dialect.name == "sqlite"
    connection.exec_driver_sql("BEGIN IMMEDIATE" if sqlite else "BEGIN")
    try:
        if not sqlite:
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(lock)))
        yield
    except BaseException:
        with contextlib.suppress(exc.DBAPIError):  # the original error says more
            connection.exec_driver_sql("ROLLBACK")
        raise
    connection.exec_driver_sql("COMMIT")


def _run_migrations(connection: Connection, revision: str) -> None:
    """Alembic's upgrade to ``revision``, on ``connection`` (in its transaction, holding the
    lock): ``flask_passkey/stores/migrations/env.py`` runs on it."""
    # Imported only here: importing Alembic logs a line per plugin it sets up.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", _MIGRATIONS)
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def database_revision(url: str | URL) -> str | None:
    """The migration the database at ``url`` is at; None when it has no schema yet.

    Raises BackendUnavailable when the database cannot be reached.
    """
    engine = _create_engine(_parse_url(url), poolclass=sa.NullPool)
    try:
        with _reachable(), engine.connect() as connection:
            return _stored_revision(connection)
    finally:
        engine.dispose()


def _stored_revision(connection: Connection) -> str | None:
    if not sa.inspect(connection).has_table(_ALEMBIC_VERSION.name):
        return None
    revision: str | None = connection.execute(sa.select(_ALEMBIC_VERSION.c.version_num)).scalar()
    return revision


def head_revision() -> str:
    """The newest migration shipped with this version of flask-passkey."""
    return HEAD


def _use_wal(connection: Connection) -> None:
    """Put the SQLite file in WAL mode (it stays so): readers then run beside the one writer."""
    # Switching needs an exclusive lock, and SQLite's busy handler does not wait for it while
    # another connection is reading: retry while workers starting together hold the file.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT
    while True:
        try:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
            return
        except exc.OperationalError as error:
            busy = getattr(error.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextmanager
def _reachable() -> Iterator[None]:
    """Turn the driver's connection-level failures into BackendUnavailable."""
    try:
        yield
    except _UNAVAILABLE as error:
        # One line: drivers spread theirs over several ("... failed\n\tIs the server running").
        reason = " ".join(str(getattr(error, "orig", None) or error).split())
        raise BackendUnavailable(f"The database cannot be reached: {reason}") from error


def _parse_url(url: str | URL) -> URL:
    try:
        return sa.make_url(url)
    except exc.ArgumentError as error:
        raise ConfigurationError(f"PASSKEY_DATABASE_URL is not a database URL: {error}") from error


def _create_engine(url: URL, **options: Any) -> Engine:
    backend = url.get_backend_name()
    if backend not in _DIALECTS:
        raise ConfigurationError(
            f"PASSKEY_DATABASE_URL: the SQL store runs on {' or '.join(_DIALECTS)}, not {backend}."
        )
    connect_args: dict[str, Any] = {}
    if backend == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise ConfigurationError(
                "PASSKEY_DATABASE_URL: an in-memory SQLite database is private to one "
                f"connection; use {MEMORY_URL!r} for in-process stores."
            )
        connect_args["timeout"] = SQLITE_BUSY_TIMEOUT
    elif "connect_timeout" not in url.query:
        # Without it, an unreachable host blocks a worker for minutes instead of failing fast.
        connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT
    try:
        engine = sa.create_engine(
            url,
            # Not pool_pre_ping, which costs a round trip per statement: see _check_out.
            pool_pre_ping=False,
            # Parameters are emails, keys and token hashes: keep them out of errors and logs.
            hide_parameters=True,
            logging_name=ENGINE_LOGGING_NAME,
            connect_args=connect_args,
            **options,
        )
    except (ImportError, exc.ArgumentError) as error:
        raise ConfigurationError(f"PASSKEY_DATABASE_URL: {error}") from error
    if backend == "sqlite":
        sa.event.listen(engine, "do_connect", _owner_only_file)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    else:  # a file needs no liveness check; a server connection does
        sa.event.listen(engine, "checkout", _check_out)
        sa.event.listen(engine, "checkin", _check_in)
    return engine


def _owner_only_file(_dialect: Any, _record: Any, args: Any, params: Any) -> None:
    """Before SQLite opens its file, create it if missing, empty and readable by its owner
    only (0600 whatever the umask): it holds the private signing keys, and SQLite gives the
    WAL and shared-memory files it creates beside it the database file's permissions. A folder
    that is not there (yet), or any other failure, is left for SQLite to report."""
    database = params.get("database", args[0] if args else None)
    if not isinstance(database, str) or database.startswith("file:"):
        return
    with contextlib.suppress(OSError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


#: A pooled PostgreSQL connection idle for longer than this is pinged before it is reused
#: (catches one a firewall or load balancer dropped silently); a busy one never is.
PING_IDLE_SECONDS = 30.0
_IDLE_SINCE = "flask_passkey_idle_since"


def _check_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Refuse a pooled connection that cannot serve (SQLAlchemy then replaces it).

    Instead of ``pool_pre_ping``'s round trip before every statement: a connection the server
    closed or terminated (a restart, ``pg_terminate_backend``, a proxy gone) has its socket
    readable while idle (the server's last message, or end of file), which a zero-timeout
    poll sees; only one idle for over PING_IDLE_SECONDS is pinged.
    """
    idle_since = record.info.get(_IDLE_SINCE)
    if (
        getattr(dbapi_connection, "closed", False)
        or getattr(dbapi_connection, "broken", False)
        or _readable(dbapi_connection.fileno())
        or (
            idle_since is not None
            and time.monotonic() - idle_since > PING_IDLE_SECONDS
            and not _pings(dbapi_connection)
        )
    ):
        raise exc.DisconnectionError("The pooled database connection was closed.")


def _check_in(dbapi_connection: Any, record: Any) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _readable(fd: int) -> bool:
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])  # pragma: no cover (Windows)


def _pings(dbapi_connection: Any) -> bool:
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
    except Exception:  # any failure means the connection is unusable
        return False
    return True


def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # In WAL mode, NORMAL syncs at checkpoints instead of every commit (milliseconds per write
    # on a real disk): a crash of the app loses nothing, a power cut at most the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_migrate_when: ContextVar[MigrateWhen] = ContextVar("flask_passkey_migrate_when", default="start")


@contextmanager
def store_migrations(when: MigrateWhen) -> Iterator[None]:
    """Within it, the SQL stores an app builds migrate ``when`` (if ``PASSKEY_AUTO_MIGRATE``
    lets them at all) instead of as the app starts. ``flask passkey`` loads the app so: its
    ``db`` commands with ``"never"``, to see the schema as it is and migrate it themselves; the
    others with ``"first_use"``, so an unreachable database is their one error line."""
    token = _migrate_when.set(when)
    try:
        yield
    finally:
        _migrate_when.reset(token)


def instance_database_url(app: Flask) -> URL:
    """The embedded default database: ``passkey.sqlite3`` in the app's instance folder, which
    is created if missing."""
    os.makedirs(app.instance_path, mode=0o700, exist_ok=True)  # owner-only, if we create it
    return URL.create("sqlite", database=os.path.join(app.instance_path, DEFAULT_SQLITE_FILE))


class SqlStorePlugin:
    """Answers both storage hooks with one :class:`SqlStore` per app, for
    ``PASSKEY_DATABASE_URL`` (unset: :func:`instance_database_url`); defers to the next
    implementation when it is ``memory://``. The store migrates as the app starts if
    ``PASSKEY_AUTO_MIGRATE``, the key this plugin declares, is on (or as
    :func:`store_migrations` says), else never.

    When its store is the app's user store, it also serves the clients stored there (``flask
    passkey clients add``), after every other source: :func:`~flask_passkey.plugins.
    default_plugins` builds one instance per plugin manager, so per app.
    """

    def __init__(self) -> None:
        self._stores: WeakKeyDictionary[Flask, SqlStore] = WeakKeyDictionary()
        self._client_store: SqlStore | None = None

    @hookimpl
    def passkey_config_defaults(self) -> dict[str, Any]:
        return {AUTO_MIGRATE: True}

    @hookimpl
    def passkey_check_config(self, config: Mapping[str, Any]) -> None:
        if not isinstance(config[AUTO_MIGRATE], bool):
            raise ConfigurationError(
                f"{AUTO_MIGRATE} must be True or False, not {config[AUTO_MIGRATE]!r}."
            )

    @hookimpl(trylast=True)
    def passkey_session_store(self, app: Flask) -> SessionStore | None:
        return self._store(app)

    @hookimpl(trylast=True)
    def passkey_user_store(self, app: Flask) -> UserStore | None:
        store = self._store(app)
        self._client_store = store
        return store

    @hookimpl(trylast=True)
    def passkey_get_client(self, client_id: str) -> Client | None:
        """A stored client, from this process's cache (re-read every CLIENT_CACHE_SECONDS).

        trylast, and registered after the tenant-configuration plugin: a client defined in
        the configuration or by an operator's plugin wins over a stored one with its id.
        """
        store = self._client_store
        return store.cached_clients().get(client_id) if store is not None else None

    @hookimpl(wrapper=True)
    def passkey_get_clients(self) -> Generator[None, list[Client] | None, list[Client] | None]:
        """The clients of the first source that answers, plus the stored ones it does not
        shadow (a first-result hook would otherwise hide them behind the configuration's)."""
        found = yield
        stored = self._client_store.cached_clients().all() if self._client_store else []
        if not stored:
            return found
        listed = list(found or [])
        known = {client.client_id for client in listed}
        return listed + [client for client in stored if client.client_id not in known]

    def _store(self, app: Flask) -> SqlStore | None:
        url: str | None = app.config.get("PASSKEY_DATABASE_URL")
        if url == MEMORY_URL:
            return None
        store = self._stores.get(app)
        if store is None:
            when = _migrate_when.get() if app.config[AUTO_MIGRATE] else "never"
            store = self._stores[app] = SqlStore(url or instance_database_url(app), migrate=when)
        return store
