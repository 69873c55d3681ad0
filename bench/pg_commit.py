"""What a commit's WAL flush costs an INSERT: ``python -m bench.pg_commit``.

One connection in autocommit inserts challenge-sized rows into a logged and an unlogged table
of the benchmark database, interleaved, and reports wall and CPU time per INSERT (median of
the repeats). The difference is what migration 0004 (``auth_sessions`` UNLOGGED) takes off
every challenge on PostgreSQL. Writes results/pg-commit.txt.
"""

from __future__ import annotations

import secrets
import statistics
import time

import sqlalchemy as sa

from .common import BENCH_DATABASE, RESULTS_DIR, postgres_url
from .fixtures import create_database

ROWS = 2000
REPEATS = 5


def per_insert(connection: sa.Connection, table: str) -> tuple[float, float]:
    """Microseconds of wall and CPU time per INSERT into ``table``."""
    data = "x" * 400  # an AuthSession's JSON is about this long
    statement = sa.text(f"INSERT INTO {table} (id, data) VALUES (:id, :data)")
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(ROWS):
        connection.execute(statement, {"id": secrets.token_urlsafe(32), "data": data})
    return (
        (time.perf_counter() - wall) / ROWS * 1e6,
        (time.process_time() - cpu) / ROWS * 1e6,
    )


def main() -> int:
    create_database(BENCH_DATABASE)
    engine = sa.create_engine(postgres_url(BENCH_DATABASE), isolation_level="AUTOCOMMIT")
    tables = {"logged": "bench_commit_logged", "unlogged": "bench_commit_unlogged"}
    results: dict[str, list[tuple[float, float]]] = {kind: [] for kind in tables}
    with engine.connect() as connection:
        for kind, table in tables.items():
            persistence = "UNLOGGED " if kind == "unlogged" else ""
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
            connection.exec_driver_sql(
                f"CREATE {persistence}TABLE {table} (id text PRIMARY KEY, data text NOT NULL)"
            )
        try:
            for _ in range(REPEATS):
                for kind, table in tables.items():
                    results[kind].append(per_insert(connection, table))
        finally:
            for table in tables.values():
                connection.exec_driver_sql(f"DROP TABLE {table}")
    engine.dispose()
    lines = [
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: one INSERT, autocommit, "
        f"median of {REPEATS} x {ROWS} rows",
        *(
            f"{kind:>8}: {statistics.median(w for w, _ in runs):6.1f} µs wall, "
            f"{statistics.median(c for _, c in runs):5.1f} µs CPU of this process"
            for kind, runs in results.items()
        ),
    ]
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "pg-commit.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
