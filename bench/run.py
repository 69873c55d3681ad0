"""The load benchmark: ``python -m bench.run`` (``make bench``).

Serves the floor (bare Flask), flask-passkey on each backend and hand-written reference
endpoints with gunicorn (2 sync workers) on loopback, loads them with wrk (2 threads, 32
connections) in interleaved rounds (every target once per round, in a rotating order) and
reports per target the median req/s, p50 and p99 latency, each also as the median of its
per-round ratios to the floor. ``bench.check`` reads the targets' ratios to their reference
endpoints (bench.common.REFERENCES) off the same rounds.

Targets: ``POST /passkey/challenge`` on the memory, SQLite, PostgreSQL and Redis session
stores, and ``POST /oauth/token`` logins (sessions issued ahead, real ES256 assertions, each
body redeemed once) on the memory store, SQLite, PostgreSQL and Redis+PostgreSQL;
``POST /oauth/token`` refreshes (refresh tokens minted ahead, each redeemed once: a reuse would
revoke and answer 400) and ``GET /userinfo`` (one access token) on the memory store and on
Redis+PostgreSQL, also put beside the token login on Redis+PostgreSQL (per-round ratios). The
per-IP limit is on everywhere (limits' in-process storage; Redis with the Redis plugin) and
never reached. Two diagnostic targets split a challenge's cost: the floor behind flask-limiter
alone, and the memory-store challenge with the limiter off. ``challenge/memory+metrics`` is the
memory-store challenge with the Prometheus plugin counting and timing it (multiprocess mode),
beside ``challenge/memory`` without it. The reference endpoints (``ref/*``, bench.apps): a
naive py_webauthn challenge with and without Redis and flask-limiter, and a naive token
endpoint fed the same kind of login bodies as the token targets.

Other jobs on the machine are waited out before each load, and a load during which they took
more than FOREIGN_LIMIT of the CPUs (or that saw errors) is made again, at most twice.

``--baseline REV`` also serves flask-passkey as of git revision REV (``before:`` targets), for
before/after comparisons in one run. ``--credentials`` runs the 1,000 vs 1,000,000 stored
credentials benchmark instead (:mod:`bench.credentials`).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import redis
import sqlalchemy as sa

from .apps import METRICS_APP, NAIVE_TOKEN_APP, POOL_APP
from .common import (
    BASELINE_DATABASE,
    BENCH_DATABASE,
    CHALLENGE_BODY,
    POSTGRES_URL,
    REDIS_URL,
    REFERENCES,
    RESULTS_DIR,
    ROOT,
    WORK_DIR,
    postgres_url,
    sqlite_url,
)
from .fixtures import (
    LoginFixture,
    PoolFixture,
    TokenSupply,
    create_database,
    login_fixture,
    naive_token_fixture,
    refresh_bodies,
    token_bodies,
    unsent,
    write_lines,
)
from .loadgen import Measurement, load_seconds, run_wrk, wrk_path
from .quiet import CpuAccount, wait_until_quiet
from .report import machine, summarise, table, to_json
from .server import Server, descendants, servers

#: Largest share of the CPU capacity other jobs may take during a kept measurement.
FOREIGN_LIMIT = 0.05
#: Rounds made whatever the time budget (--budget) says.
MIN_ROUNDS = 4
CHALLENGE = "/passkey/challenge"
TOKEN = "/oauth/token"
USERINFO = "/userinfo"
#: The token login the refresh and userinfo targets are also put beside (same stores).
LOGIN_REFERENCE = "token/redis+postgres"
#: An upper bound of logins or refreshes a second on two CPUs (each signs two RS256 tokens, on
#: top of what a floor request costs): the bodies made ahead for a fixed pool (the memory
#: store's, which cannot grow once the workers have forked, and the reference token
#: endpoint's) are made for that rate.
POOL_RATE = 2500
#: The metrics server's prometheus_client multiprocess files, emptied before the servers start.
METRICS_DIR = WORK_DIR / "prometheus-multiproc"
#: Where the memory store's server writes the login bodies, refresh tokens and access token it
#: made.
POOL_FILE = WORK_DIR / "pool-memory.json"
#: The sessions and credentials the reference token endpoint reads at startup.
NAIVE_TOKEN_FILE = WORK_DIR / "naive-token.json"

#: What a target's load sends, when it is not the challenge body: ``login``, a session and its
#: signed assertion per body; ``refresh``, a refresh token per body; ``userinfo``, GETs with
#: one access token (Bearer).
Feed = Literal["login", "refresh", "userinfo"]


@dataclass(frozen=True)
class Target:
    name: str
    #: The app gunicorn serves (BENCH_APP, see bench.apps).
    app: str
    path: str
    #: The backend whose fixture makes the load's bodies or access token (see ``feed``); the
    #: ``memory`` fixture is what the POOL_APP server made for itself, the ``naive-token`` one
    #: what the NAIVE_TOKEN_APP server was started with.
    fixture: str | None = None
    feed: Feed = "login"
    #: Served from the baseline revision (--baseline).
    baseline: bool = False
    #: The PostgreSQL database of the app, when not the benchmark's default one.
    database: str | None = None

    @property
    def server(self) -> str:
        name = f"before:{self.app}" if self.baseline else self.app
        return f"{name}@{self.database}" if self.database else name

    def env(self, baseline: Path | None = None) -> dict[str, str]:
        """The environment of the target's gunicorn."""
        env = {"BENCH_APP": self.app}
        if self.app == METRICS_APP:
            env["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)
        if self.database:
            env["BENCH_DATABASE"] = self.database
        if self.baseline and baseline is not None:
            # The baseline's packages first, then the checkout (for bench.apps); gunicorn runs
            # in the baseline tree, since `python -m` puts the working directory first.
            plugin = baseline / "plugins" / "flask-passkey-redis"
            env["PYTHONPATH"] = f"{baseline}:{plugin}:{ROOT.parent}"
            env["BENCH_CWD"] = str(baseline)
            # Databases of its own, at its own migration.
            env["BENCH_DATABASE"] = BASELINE_DATABASE
            env["BENCH_SQLITE_FILE"] = str(WORK_DIR / "passkey-bench-baseline.sqlite3")
        return env


TARGETS = (
    Target("floor", "floor", CHALLENGE),
    Target("diag/floor+flask-limiter", "floor+limiter", CHALLENGE),
    Target("challenge/memory", "memory", CHALLENGE),
    Target("challenge/memory+metrics", METRICS_APP, CHALLENGE),
    Target("diag/challenge/memory without limiter", "memory-nolimit", CHALLENGE),
    Target("challenge/sqlite", "sqlite", CHALLENGE),
    Target("challenge/postgres", "postgres", CHALLENGE),
    Target("challenge/redis", "redis", CHALLENGE),
    Target("token/memory", POOL_APP, TOKEN, fixture="memory"),
    Target("token/sqlite", "sqlite", TOKEN, fixture="sqlite"),
    Target("token/postgres", "postgres", TOKEN, fixture="postgres"),
    Target("token/redis+postgres", "redis", TOKEN, fixture="redis"),
    Target("token/refresh/memory", POOL_APP, TOKEN, fixture="memory", feed="refresh"),
    Target("token/refresh/redis+postgres", "redis", TOKEN, fixture="redis", feed="refresh"),
    Target("userinfo/memory", POOL_APP, USERINFO, fixture="memory", feed="userinfo"),
    Target("userinfo/redis+postgres", "redis", USERINFO, fixture="redis", feed="userinfo"),
    # The hand-written reference endpoints (bench.apps.naive_app, naive_token_app).
    Target("ref/naive", "naive", CHALLENGE),
    Target("ref/naive+flask-limiter", "naive+limiter", CHALLENGE),
    Target("ref/naive+redis", "naive+redis", CHALLENGE),
    Target("ref/naive+redis+flask-limiter", "naive+redis+limiter", CHALLENGE),
    Target("ref/naive-token", NAIVE_TOKEN_APP, TOKEN, fixture=NAIVE_TOKEN_APP),
)


def reset_stores() -> None:
    """Start from empty session tables, limiter counters and metrics (users and keys are
    kept)."""
    WORK_DIR.mkdir(exist_ok=True)
    shutil.rmtree(METRICS_DIR, ignore_errors=True)
    METRICS_DIR.mkdir()
    sqlite_file = sqlite_url().removeprefix("sqlite:///")
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(sqlite_file + suffix)
    create_database(BENCH_DATABASE)
    engine = sa.create_engine(postgres_url(BENCH_DATABASE), poolclass=sa.NullPool)
    try:
        with engine.begin() as connection:
            tables = set(sa.inspect(connection).get_table_names())
            for name in ("auth_sessions", "refresh_tokens", "refresh_token_revocations"):
                if name in tables:
                    connection.exec_driver_sql(f"DELETE FROM {name}")
    finally:
        engine.dispose()
    for made_ahead in (POOL_FILE, NAIVE_TOKEN_FILE):
        with contextlib.suppress(FileNotFoundError):
            made_ahead.unlink()
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
            # The server's own database: on a fresh machine the benchmark's is not made yet.
            engine = sa.create_engine(POSTGRES_URL, poolclass=sa.NullPool)
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
            engine.dispose()
            return
        except (redis.RedisError, sa.exc.OperationalError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def baseline_tree(revision: str) -> Path:
    """flask_passkey and the Redis plugin as of ``revision``, extracted under bench/.work."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", revision],
        cwd=ROOT.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    tree = WORK_DIR / f"baseline-{commit}"
    if not tree.exists():
        tree.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", commit, "flask_passkey", "plugins/flask-passkey-redis"],
            cwd=ROOT.parent,
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree


class Runner:
    """Measures targets on running servers; token bodies are made just before each load."""

    def __init__(
        self,
        running: dict[str, Server],
        fixtures: Mapping[str, LoginFixture | PoolFixture],
        seconds: float,
        *,
        deadline: float = float("inf"),
    ) -> None:
        self.running = running
        self.fixtures = fixtures
        self.seconds = seconds
        #: time.monotonic() after which loads are neither waited for nor repeated.
        self.deadline = deadline
        #: Token requests per second seen so far, to size the next load's bodies.
        self.rates: dict[str, float] = {}
        self._loads = 0
        self._pids = [os.getpid()]
        for server in running.values():
            self._pids += descendants(server.process.pid)

    def measure(self, target: Target, seconds: float | None = None) -> Measurement:
        """One load, after waiting for an idle machine; made again (at most twice) when other
        jobs took over FOREIGN_LIMIT of the CPUs during it or it saw errors (a backend
        restarted by another job, bodies that ran out). The cleanest attempt is kept."""
        seconds = seconds or self.seconds
        attempts: list[Measurement] = []
        for _ in range(3 if time.monotonic() < self.deadline else 1):
            backends_up()
            busy = wait_until_quiet(patience=30.0 if time.monotonic() < self.deadline else 0.0)
            account = CpuAccount(tuple(self._pids))
            account.start()
            measured = self._load(target, seconds)
            measured = replace(measured, busy_before=busy, foreign=account.foreign_share())
            attempts.append(measured)
            problems = measured.errors + measured.bad_status + measured.exhausted
            if problems <= measured.requests * 0.001 and measured.foreign <= FOREIGN_LIMIT:
                break
            print(
                f"  {target.name}: {problems} failed requests, other jobs took "
                f"{measured.foreign:.0%} of the CPUs; measuring again",
                flush=True,
            )
        return min(attempts, key=lambda m: (m.errors + m.bad_status + m.exhausted, m.foreign))

    def _load(self, target: Target, seconds: float) -> Measurement:
        server = self.running[target.server]
        if target.fixture is None:
            return run_wrk(server.port, target.path, seconds=seconds, body=CHALLENGE_BODY)
        fixture = self.fixtures[target.fixture]
        if target.feed == "userinfo":
            bearer = f"Bearer {fixture.access_token}"
            return run_wrk(server.port, target.path, seconds=seconds, authorization=bearer)
        rate = self.rates.get(target.name, 1000.0)
        count = math.ceil(rate * load_seconds(seconds) * 2.0) + 500
        self._loads += 1
        prefix = WORK_DIR / f"bodies-{target.fixture}-{self._loads}"
        # Logins on a store within reach are made for each load; the rest come from a supply.
        supply: TokenSupply | None = None
        items: list[str] = []
        if target.feed == "login" and isinstance(fixture, LoginFixture):
            token_bodies(fixture, count, prefix)
        elif target.feed == "login":
            supply = fixture.logins
            items = supply.take(count)
            write_lines(items, prefix)
        else:
            supply = fixture.refresh
            items = supply.take(count)
            refresh_bodies(items, prefix)
        try:
            measured = run_wrk(server.port, target.path, seconds=seconds, body_files=prefix)
        finally:
            for thread_file in WORK_DIR.glob(f"{prefix.name}-*.jsonl"):
                thread_file.unlink()
        # Bodies the load did not send are as good as new: the next load sends them first.
        if supply is not None:
            supply.give_back(unsent(items, measured.sent))
        if not measured.exhausted:
            self.rates[target.name] = max(measured.rps, 100.0)
        return measured


def interleave(
    runner: Runner, targets: Sequence[Target], args: argparse.Namespace
) -> dict[str, list[Measurement]]:
    """A warm-up load per target, then ``args.rounds`` rounds of one load per target, in an
    order rotated every round."""
    for target in targets:
        warm = runner.measure(target, args.warmup)
        print(f"warm-up {target.name}: {warm.rps:,.0f} req/s", flush=True)
    runs: dict[str, list[Measurement]] = {t.name: [] for t in targets}
    for round_ in range(args.rounds):
        if round_ >= MIN_ROUNDS and time.monotonic() > runner.deadline:
            print(f"time budget spent: stopping after {round_} rounds", flush=True)
            break
        shift = round_ % len(targets)
        for target in [*targets[shift:], *targets[:shift]]:
            measured = runner.measure(target)
            runs[target.name].append(measured)
            print(
                f"round {round_ + 1}/{args.rounds} {target.name}: {measured.rps:,.0f} req/s "
                f"p50 {measured.p50_ms:.2f} ms p99 {measured.p99_ms:.2f} ms "
                f"(other jobs {measured.foreign:.0%})"
                + (
                    f" errors {measured.errors} non-2xx {measured.bad_status}"
                    f" exhausted {measured.exhausted}"
                    if measured.errors or measured.bad_status or measured.exhausted
                    else ""
                ),
                flush=True,
            )
    return runs


def write_results(
    output: str,
    info: dict[str, object],
    settings: dict[str, object],
    runs: dict[str, list[Measurement]],
    *,
    floor: str = "floor",
) -> str:
    """Print the table and write results/<output>.json and .md; returns the table. The
    refresh and userinfo targets get a second table, beside the token login (LOGIN_REFERENCE),
    when it was measured in the run."""
    summaries = summarise(runs, floor=floor)
    settings = {**settings, "floor": floor}
    text = table(summaries)
    beside = {
        name: measured
        for name, measured in runs.items()
        if name == LOGIN_REFERENCE or name.startswith(("token/refresh/", "userinfo/"))
    }
    relative = (
        summarise(beside, floor=LOGIN_REFERENCE)
        if LOGIN_REFERENCE in beside and len(beside) > 1
        else []
    )
    if relative:
        text += (
            f"\n\nBeside the token login ({LOGIN_REFERENCE}; medians of per-round ratios):\n\n"
            + table(relative).replace("x floor", "x login")
        )
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{output}.json").write_text(
        to_json(info, settings, runs, summaries, beside_login=relative)
    )
    (RESULTS_DIR / f"{output}.md").write_text(
        f"{info['date']}, {info['nproc']} x {info['cpu']}, {info['memory']}; "
        f"{settings['rounds']} rounds x {settings['seconds']} s per target\n\n{text}\n"
    )
    print()
    print(text)
    print(f"\n{settings['elapsed_seconds']} s; results in {RESULTS_DIR}/{output}.json")
    return text


def pool_size(args: argparse.Namespace) -> int:
    """Bodies of a fixed pool for one target: POOL_RATE a second through its warm-up and its
    rounds, with half as much again for loads made again (the unsent bodies of a load go to the
    next, see Runner)."""
    seconds = load_seconds(args.warmup) + 1.5 * args.rounds * load_seconds(args.seconds)
    return math.ceil(POOL_RATE * seconds) + 500


def pool_env(args: argparse.Namespace, targets: Sequence[Target]) -> dict[str, str]:
    """The POOL_APP server's environment: a pool of login bodies and one of refresh tokens,
    each only when a target of the run sends them."""
    feeds = {target.feed for target in targets if target.app == POOL_APP}
    return {
        "BENCH_PRELOAD": "1",
        "BENCH_POOL_FILE": str(POOL_FILE),
        "BENCH_POOL_LOGINS": str(pool_size(args) if "login" in feeds else 0),
        "BENCH_POOL_REFRESH": str(pool_size(args) if "refresh" in feeds else 0),
    }


def select_targets(names: str, baseline: bool) -> list[Target]:
    """The targets named in ``names`` (all when empty), with the floor and the reference
    endpoint of each that has one (bench.common.REFERENCES)."""
    wanted = {name.strip() for name in names.split(",") if name.strip()}
    wanted |= {REFERENCES[name] for name in wanted if name in REFERENCES}
    targets = [t for t in TARGETS if not wanted or t.name in wanted or t.name == "floor"]
    if baseline:
        # The challenge endpoint only: the token endpoint's fixtures are made in this process,
        # by this checkout's code (bench.ab compares the token endpoint before/after).
        targets += [
            replace(t, name=f"before: {t.name}", baseline=True)
            for t in targets
            if t.path == CHALLENGE and not t.name.startswith(("floor", "diag/", "ref/"))
        ]
    return targets


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8, help="interleaved rounds (default 8)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per load (default 2)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per target")
    parser.add_argument(
        "--targets",
        default="",
        help="comma-separated target names (default: all; the floor and the targets' reference "
        "endpoints are kept)",
    )
    parser.add_argument(
        "--baseline", metavar="REV", help="also serve flask-passkey as of git revision REV"
    )
    parser.add_argument(
        "--credentials", action="store_true", help="run the 1k vs 1M credentials benchmark"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=480.0,
        help="seconds after which loads are no longer waited for or repeated, and no round "
        f"is begun past the {MIN_ROUNDS}th (default 480: the run ends within ~10 minutes)",
    )
    parser.add_argument("--output", default="latest", help="results/<name>.json and .md")
    args = parser.parse_args(argv)
    if args.credentials:
        from .credentials import main as credentials_main

        return credentials_main([f"--rounds={args.rounds}", f"--seconds={args.seconds}"])

    wrk_path()
    targets = select_targets(args.targets, baseline=args.baseline is not None)
    started = time.monotonic()
    info = machine()
    backends_up()
    reset_stores()
    fixtures: dict[str, LoginFixture | PoolFixture] = {}
    for target in targets:
        backend = target.fixture
        if backend in fixtures or backend in (None, "memory"):
            continue
        if backend == NAIVE_TOKEN_APP:
            fixtures[backend] = naive_token_fixture(NAIVE_TOKEN_FILE, pool_size(args))
        else:
            fixtures[backend] = login_fixture(backend)
    print(f"fixtures ready in {time.monotonic() - started:.0f} s", flush=True)

    tree = baseline_tree(args.baseline) if args.baseline else None
    if tree is not None:
        create_database(BASELINE_DATABASE)
    specs = {target.server: target.env(tree) for target in targets}
    if POOL_APP in specs:
        specs[POOL_APP] |= pool_env(args, targets)
    if NAIVE_TOKEN_APP in specs:
        specs[NAIVE_TOKEN_APP]["BENCH_NAIVE_TOKEN_FILE"] = str(NAIVE_TOKEN_FILE)
    with servers(specs) as running:
        print(f"servers up in {time.monotonic() - started:.0f} s", flush=True)
        if POOL_APP in specs:
            fixtures["memory"] = PoolFixture.read(POOL_FILE)
        runner = Runner(running, fixtures, args.seconds, deadline=started + args.budget)
        runs = interleave(runner, targets, args)
    settings = {
        "rounds": args.rounds,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "baseline": args.baseline,
        "elapsed_seconds": round(time.monotonic() - started),
    }
    write_results(args.output, info, settings, runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
