"""Login cost independent of how many credentials are stored: ``python -m bench.credentials``
(``make bench-credentials``).

Two PostgreSQL databases of the benchmark's server, one holding 1,000 credentials and one
1,000,000 (synthetic users, each with one passkey, generated server-side in batches by
``INSERT ... SELECT FROM generate_series``), both with 64 real users signed up through the API.
``POST /oauth/token`` logins of those users are loaded on both, interleaved; the 1M p50, p99
and req/s must stay within 20% of the 1k ones. A database that already holds its credentials
is reused (the 1M fill takes about a minute; the first run creates it).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import sqlalchemy as sa

from flask_passkey.stores.sql import SqlStore

from .common import CONNECTION, postgres_url
from .fixtures import LoginFixture, create_database, login_fixture
from .report import machine, summarise
from .run import TOKEN, Runner, Target, backends_up, interleave, write_results
from .server import servers

SIZES = {"1k": 1_000, "1m": 1_000_000}
BATCH = 100_000
#: Within this much of the 1k database's numbers (the brief's bound).
TOLERANCE = 0.20

# One synthetic user and its credential per n: the user handle and credential id are SHA-256
# of distinct strings (unique, like real 16- and 32-byte random values), the public key a fixed
# COSE P-256 key (never used: nobody signs in as a synthetic user).
_FILL_USERS = sa.text(
    """
    INSERT INTO users (id, connection, user_handle, email, phone_number, username, profile,
                       user_metadata, created_at)
    SELECT 'synthetic|' || n, :connection, sha256(('handle-' || n)::bytea),
           'synthetic-' || n || '@example.com', NULL, NULL, '{}', '{}', 1700000000 + n
    FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n
    """
)
_FILL_CREDENTIALS = sa.text(
    """
    INSERT INTO credentials (id, user_id, public_key, sign_count, backup_eligible, backed_up,
                             transports, aaguid, rp_id, name, created_at, last_used_at,
                             hardware_attested)
    SELECT sha256(('credential-' || n)::bytea), 'synthetic|' || n,
           decode(:public_key, 'hex'), 0, true, true, '["internal", "hybrid"]',
           '00000000-0000-0000-0000-000000000000', 'login.bench.test', '', 1700000000 + n, NULL,
           false
    FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n
    """
)
_SYNTHETIC = sa.text("SELECT count(*) FROM users WHERE id LIKE 'synthetic|%'")
#: A COSE_Key (EC2, P-256, ES256) as the SoftAuthenticator makes them.
_PUBLIC_KEY = "a5010203262001215820" + "11" * 32 + "225820" + "22" * 32


def database_name(size: str) -> str:
    return f"passkey_bench_{size}"


def fill(size: str) -> float:
    """Create and fill the database of ``size`` unless it is filled already; returns the
    seconds spent filling."""
    name, wanted = database_name(size), SIZES[size]
    create_database(name)
    SqlStore(postgres_url(name)).close()  # the schema, by the migrations
    engine = sa.create_engine(postgres_url(name), poolclass=sa.NullPool)
    started = time.monotonic()
    try:
        with engine.connect() as connection:
            have = connection.execute(_SYNTHETIC).scalar_one()
        for first in range(have + 1, wanted + 1, BATCH):
            last = min(first + BATCH - 1, wanted)
            with engine.begin() as connection:
                values = {"first": first, "last": last, "connection": CONNECTION}
                connection.execute(_FILL_USERS, values)
                connection.execute(_FILL_CREDENTIALS, {**values, "public_key": _PUBLIC_KEY})
            print(f"  {name}: {last:,} of {wanted:,} credentials", flush=True)
        if have < wanted:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("VACUUM ANALYZE users")
                connection.exec_driver_sql("VACUUM ANALYZE credentials")
    finally:
        engine.dispose()
    return time.monotonic() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.credentials", description=__doc__)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--output", default="latest-credentials")
    args = parser.parse_args(argv)

    started = time.monotonic()
    info = machine()
    backends_up()
    fill_seconds = {size: round(fill(size)) for size in SIZES}
    print(f"databases filled in {fill_seconds}", flush=True)
    fixtures: dict[str, LoginFixture] = {
        size: login_fixture("postgres", database=database_name(size)) for size in SIZES
    }
    targets = [
        Target(
            f"token/postgres, {SIZES[size]:,} credentials",
            "postgres",
            TOKEN,
            fixture=size,
            database=database_name(size),
        )
        for size in SIZES
    ]
    with servers({t.server: t.env() for t in targets}) as running:
        runs = interleave(Runner(running, fixtures, args.seconds), targets, args)
    settings = {
        "rounds": args.rounds,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "fill_seconds": fill_seconds,
        "elapsed_seconds": round(time.monotonic() - started),
    }
    small, large = (t.name for t in targets)
    write_results(args.output, info, settings, runs, floor=small)
    summary = {s.target: s for s in summarise(runs, floor=small)}[large]
    within = all(
        abs(ratio - 1) <= TOLERANCE
        for ratio in (summary.rps_ratio, summary.p50_ratio, summary.p99_ratio)
    )
    print(
        f"1M vs 1k credentials: req/s x{summary.rps_ratio:.2f}, p50 x{summary.p50_ratio:.2f}, "
        f"p99 x{summary.p99_ratio:.2f}: {'within' if within else 'NOT within'} "
        f"{TOLERANCE:.0%}"
    )
    return 0 if within else 1


if __name__ == "__main__":
    raise SystemExit(main())
