"""The test servers: PostgreSQL of PASSKEY_TEST_POSTGRES_URL and Redis of PASSKEY_TEST_REDIS_URL.

Without a server a test that needs it skips, saying why; under ``CI=true`` it fails instead.
"""

from __future__ import annotations

import os
import secrets
from typing import Any, NoReturn

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

POSTGRES_URL = (
    os.environ.get("PASSKEY_TEST_POSTGRES_URL")
    or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("PASSKEY_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"


def backend_missing(reason: str) -> NoReturn:
    """Skip a test whose server or tool is not there; fail it instead when CI is set."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI is set, so backend tests must run)", pytrace=False)
    pytest.skip(reason)


def require_redis() -> str:
    """REDIS_URL, once the server answers PING (``backend_missing`` if it does not)."""
    import redis  # the redis extra: only the tests that need the server need the client

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        backend_missing(f"Redis at {REDIS_URL} (PASSKEY_TEST_REDIS_URL) is unreachable: {error}")
    finally:
        client.close()
    return REDIS_URL


def delete_keys(client: Any, prefix: str) -> int:
    """Delete every key of the Redis ``client`` that starts with ``prefix``; how many there were."""
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    return len(keys)


class PostgresSchemas:
    """Throwaway schemas on the test server; each URL of :meth:`new_url` is an empty database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.names: list[str] = []

    def new_url(self, **query: str) -> URL:
        """The server URL with ``search_path`` set to a new schema (and ``query`` added)."""
        name = f"passkey_test_{secrets.token_hex(6)}"
        with self.engine.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        self.names.append(name)
        return self.engine.url.update_query_dict({"options": f"-csearch_path={name}", **query})

    def drop_all(self) -> None:
        with self.engine.begin() as connection:
            for name in self.names:
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def url_text(url: URL) -> str:
    """``url`` as PASSKEY_DATABASE_URL takes it (``str(url)`` masks a password)."""
    return url.render_as_string(hide_password=False)
