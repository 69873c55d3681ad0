"""The load benchmark: ``python -m bench.run`` (``make bench``).

Serves the floor (bare Flask) and flask-passkey on each backend with gunicorn (2 sync workers)
on loopback, loads them with wrk (2 threads, 32 connections) in interleaved rounds (every
target once per round, in a rotating order) and reports per target the median req/s, p50 and
p99 latency, each also as the median of its per-round ratios to the floor.

Targets: ``POST /passkey/challenge`` on the memory, SQLite, PostgreSQL and Redis session
stores, and ``POST /oauth/token`` logins (sessions issued ahead, real ES256 assertions, each
body redeemed once) on SQLite, PostgreSQL and Redis+PostgreSQL. The per-IP limit is on
everywhere (memory storage; the Redis plugin's shared storage with Redis) and never reached.

``--credentials`` runs the 1,000 vs 1,000,000 stored credentials benchmark instead
(:mod:`bench.credentials`).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import redis
import sqlalchemy as sa

from .common import (
    BENCH_DATABASE,
    CHALLENGE_BODY,
    REDIS_URL,
    RESULTS_DIR,
    WORK_DIR,
    postgres_url,
    sqlite_url,
)
from .fixtures import LoginFixture, create_database, login_fixture, token_bodies
from .loadgen import Measurement, run_wrk, wrk_path
from .quiet import wait_until_quiet
from .report import machine, summarise, table, to_json
from .server import Server, servers


@dataclass(frozen=True)
class Target:
    name: str
    server: str
    path: str
    #: For the token endpoint: the backend whose fixture issues sessions and assertions.
    login: str | None = None


TARGETS = (
    Target("floor", "floor", "/passkey/challenge"),
    Target("challenge/memory", "memory", "/passkey/challenge"),
    Target("challenge/sqlite", "sqlite", "/passkey/challenge"),
    Target("challenge/postgres", "postgres", "/passkey/challenge"),
    Target("challenge/redis", "redis", "/passkey/challenge"),
    Target("token/sqlite", "sqlite", "/oauth/token", login="sqlite"),
    Target("token/postgres", "postgres", "/oauth/token", login="postgres"),
    Target("token/redis+postgres", "redis", "/oauth/token", login="redis"),
)


def reset_stores() -> None:
    """Start from empty session tables and limiter counters (users and keys are kept)."""
    WORK_DIR.mkdir(exist_ok=True)
    sqlite_file = sqlite_url().removeprefix("sqlite:///")
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(sqlite_file + suffix)
    create_database(BENCH_DATABASE)
    engine = sa.create_engine(postgres_url(BENCH_DATABASE), poolclass=sa.NullPool)
    try:
        with engine.begin() as connection:
            tables = set(sa.inspect(connection).get_table_names())
            for name in ("auth_sessions", "refresh_tokens"):
                if name in tables:
                    connection.exec_driver_sql(f"DELETE FROM {name}")
    finally:
        engine.dispose()
    client = redis.Redis.from_url(REDIS_URL)
    for pattern in ("passkey-bench:*", "LIMITS:*passkey*"):
        keys = list(client.scan_iter(pattern, count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    client.close()


def backends_up(timeout: float = 60.0) -> None:
    """Wait until Redis and PostgreSQL answer (other jobs on this machine restart them)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client = redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
            client.ping()
            client.close()
            engine = sa.create_engine(postgres_url(BENCH_DATABASE), poolclass=sa.NullPool)
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
            engine.dispose()
            return
        except (redis.RedisError, sa.exc.OperationalError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


class Runner:
    """Measures targets on running servers; token bodies are made just before each load."""

    def __init__(
        self, running: dict[str, Server], fixtures: dict[str, LoginFixture], seconds: float
    ) -> None:
        self.running = running
        self.fixtures = fixtures
        self.seconds = seconds
        #: Token requests per second seen so far, to size the next load's bodies.
        self.rates: dict[str, float] = {}
        self._loads = 0

    def measure(self, target: Target, seconds: float | None = None) -> Measurement:
        """One load, after waiting for an idle machine; once more if it saw errors (a backend
        restarted by another job, bodies that ran out)."""
        seconds = seconds or self.seconds
        for attempt in range(3):
            backends_up()
            busy = wait_until_quiet()
            measured = self._load(target, seconds)
            measured = replace(measured, busy_before=busy)
            problems = measured.errors + measured.bad_status + measured.exhausted
            if problems <= measured.requests * 0.001 or attempt == 2:
                return measured
            print(f"  {target.name}: {problems} failed requests, measuring again", flush=True)
        raise AssertionError("unreachable")

    def _load(self, target: Target, seconds: float) -> Measurement:
        server = self.running[target.server]
        if target.login is None:
            return run_wrk(server.port, target.path, seconds=seconds, body=CHALLENGE_BODY)
        rate = self.rates.get(target.name, 1500.0)
        count = math.ceil(rate * seconds * 2.0) + 500
        self._loads += 1
        prefix = WORK_DIR / f"bodies-{target.login}-{self._loads}"
        token_bodies(self.fixtures[target.login], count, prefix)
        measured = run_wrk(server.port, target.path, seconds=seconds, body_files=prefix)
        for thread_file in WORK_DIR.glob(f"{prefix.name}-*.jsonl"):
            thread_file.unlink()
        if not measured.exhausted:
            self.rates[target.name] = max(measured.rps, 100.0)
        return measured


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds per load (default 4)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per target")
    parser.add_argument(
        "--targets", default="", help="comma-separated target names (default: all; floor is kept)"
    )
    parser.add_argument(
        "--credentials", action="store_true", help="run the 1k vs 1M credentials benchmark"
    )
    parser.add_argument("--output", default="latest", help="results/<name>.json and .md")
    args = parser.parse_args(argv)
    if args.credentials:
        from .credentials import main as credentials_main

        return credentials_main([f"--rounds={args.rounds}", f"--seconds={args.seconds}"])

    wrk_path()
    wanted = {name.strip() for name in args.targets.split(",") if name.strip()}
    targets = [t for t in TARGETS if not wanted or t.name in wanted or t.name == "floor"]
    started = time.monotonic()
    info = machine()
    backends_up()
    reset_stores()
    fixtures: dict[str, LoginFixture] = {}
    for target in targets:
        if target.login is not None and target.login not in fixtures:
            fixtures[target.login] = login_fixture(target.login)
    print(f"fixtures ready in {time.monotonic() - started:.0f} s", flush=True)

    specs = {t.server: {"BENCH_APP": t.server} for t in targets}
    with servers(specs) as running:
        print(f"servers up in {time.monotonic() - started:.0f} s", flush=True)
        runner = Runner(running, fixtures, args.seconds)
        for target in targets:
            warm = runner.measure(target, args.warmup)
            print(f"warm-up {target.name}: {warm.rps:,.0f} req/s", flush=True)

        runs: dict[str, list[Measurement]] = {t.name: [] for t in targets}
        for round_ in range(args.rounds):
            shift = round_ % len(targets)
            for target in targets[shift:] + targets[:shift]:
                measured = runner.measure(target)
                runs[target.name].append(measured)
                print(
                    f"round {round_ + 1}/{args.rounds} {target.name}: {measured.rps:,.0f} req/s "
                    f"p50 {measured.p50_ms:.2f} ms p99 {measured.p99_ms:.2f} ms "
                    f"(machine {measured.busy_before:.0%} busy before)"
                    + (
                        f" errors {measured.errors} non-2xx {measured.bad_status}"
                        f" exhausted {measured.exhausted}"
                        if measured.errors or measured.bad_status or measured.exhausted
                        else ""
                    ),
                    flush=True,
                )

    summaries = summarise(runs)
    text = table(summaries)
    settings = {
        "rounds": args.rounds,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "elapsed_seconds": round(time.monotonic() - started),
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{args.output}.json").write_text(to_json(info, settings, runs, summaries))
    (RESULTS_DIR / f"{args.output}.md").write_text(
        f"{info['date']}, {info['nproc']} x {info['cpu']}, {info['memory']}; "
        f"{args.rounds} rounds x {args.seconds:g} s per target\n\n{text}\n"
    )
    print()
    print(text)
    print(f"\n{settings['elapsed_seconds']} s; results in {RESULTS_DIR}/{args.output}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
