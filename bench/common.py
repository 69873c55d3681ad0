"""What every part of the benchmark shares: the tenant, the client, the backends' URLs."""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from flask_passkey.models import REFRESH_TOKEN_GRANT, WEBAUTHN_GRANT

ROOT = Path(__file__).resolve().parent
#: Scratch files (SQLite database, request bodies, logs); ignored by git.
WORK_DIR = ROOT / ".work"
RESULTS_DIR = ROOT / "results"

HOST = "login.bench.test"
ORIGIN = f"https://{HOST}"
CLIENT_ID = "bench-spa"
CONNECTION = "Username-Password-Authentication"
#: Never reached: the benchmark measures the cost of the limiter, not its refusals.
RATE_LIMIT = "100000000 per minute"
CHALLENGE_BODY = '{"client_id": "bench-spa"}'
#: The targets and the hand-written reference endpoint (bench.apps) each is measured against,
#: in the same run.
REFERENCES = {
    "challenge/memory": "ref/naive+flask-limiter",
    "challenge/redis": "ref/naive+redis+flask-limiter",
    "token/memory": "ref/naive-token",
    "token/redis+postgres": "ref/naive-token",
}
#: The scopes of a login: an access token and an ID token, two RS256 signatures.
LOGIN_SCOPE = "openid profile email"
#: The scopes of the sign-ups whose refresh tokens the refresh targets redeem: a refresh
#: signs the same two tokens as a login, and rotates the refresh token.
REFRESH_SCOPE = f"{LOGIN_SCOPE} offline_access"

POSTGRES_URL = os.environ.get(
    "PASSKEY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
#: The benchmark's own Redis database, away from the tests' database 0.
REDIS_URL = os.environ.get("PASSKEY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
#: Databases (created on the server of POSTGRES_URL) the benchmark owns.
BENCH_DATABASE = "passkey_bench"
#: The baseline revision's (--baseline): its migrations may be older than this checkout's.
BASELINE_DATABASE = "passkey_bench_baseline"


def tenant() -> dict[str, Any]:
    return {
        "default_domain": "bench.auth0.test",
        "custom_domains": [HOST],
        "rp_name": "Bench",
        "default_connection": CONNECTION,
        "connections": [{"name": CONNECTION, "required_identifiers": ["email"]}],
        "clients": [
            {
                "client_id": CLIENT_ID,
                "connections": [CONNECTION],
                "grant_types": [WEBAUTHN_GRANT, REFRESH_TOKEN_GRANT],
                "web_origins": ["https://app.bench.test"],
            }
        ],
    }


def postgres_url(database: str) -> str:
    """POSTGRES_URL with another database name."""
    base, _, _ = POSTGRES_URL.rpartition("/")
    return f"{base}/{database}"


def sqlite_url() -> str:
    """The SQLite database (BENCH_SQLITE_FILE: another file, for the baseline's servers)."""
    return f"sqlite:///{os.environ.get('BENCH_SQLITE_FILE') or WORK_DIR / 'passkey-bench.sqlite3'}"


#: Store backends: (PASSKEY_DATABASE_URL, PASSKEY_REDIS_URL). ``redis`` keeps sessions and
#: limiter counters in Redis and users in PostgreSQL.
def backend_urls(backend: str, *, database: str = BENCH_DATABASE) -> tuple[str, str | None]:
    if backend == "memory":
        return "memory://", None
    if backend == "sqlite":
        return sqlite_url(), None
    if backend == "postgres":
        return postgres_url(database), None
    if backend == "redis":
        return postgres_url(database), REDIS_URL
    raise ValueError(f"unknown backend {backend!r}")


def passkey_config(backend: str, *, database: str = BENCH_DATABASE) -> dict[str, Any]:
    """The app configuration of one backend (limiter on, never limiting)."""
    database_url, redis_url = backend_urls(backend, database=database)
    config: dict[str, Any] = {
        "PASSKEY_TENANT": tenant(),
        "PASSKEY_DATABASE_URL": database_url,
        "PASSKEY_RATE_LIMIT": RATE_LIMIT,
        # The limiter's storage: memory, except the Redis plugin's shared one (set by the
        # plugin when PASSKEY_REDIS_URL is set).
        "PASSKEY_REDIS_URL": redis_url,
        "PASSKEY_REDIS_KEY_PREFIX": "passkey-bench:",
        # The default, said here because the refresh targets rely on it: a refresh token sent
        # twice revokes its family and answers 400, which the load counts as an error.
        "PASSKEY_REFRESH_TOKEN_REUSE_INTERVAL": 0,
        # The example plugin (an audit log and a sign-up blocklist) is a demo, not a
        # deployment's, and the metrics plugin is measured by a target of its own: leave them
        # out where they are installed.
        "PASSKEY_DISABLED_PLUGINS": [
            name for name in _installed_plugins() if name in EXAMPLE_PLUGINS
        ],
    }
    return config


EXAMPLE_PLUGINS = frozenset({"flask_passkey_example", "flask_passkey_prometheus"})


def _installed_plugins() -> list[str]:
    return [entry.name for entry in entry_points(group="flask_passkey")]
