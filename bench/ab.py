"""What each optimisation is worth: ``python -m bench.ab``.

In one process, with no server and no load generator in the way (the machine's other jobs and
the loopback's noise swamp differences of a few percent in the load benchmark), each scenario
(the challenge endpoint and a token-endpoint login on each SQL store) is timed through the WSGI
app with every optimisation ("after"), with none of them ("before": undone through
SQLAlchemy's and logging's public APIs), and with each one alone undone. Timings are CPU time
per request of this process, the minimum over interleaved repeats. Writes results/ab.json and
results/ab.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Flask

from .apps import passkey_app
from .common import RESULTS_DIR, WORK_DIR
from .fixtures import create_database, sign_up_users, token_bodies
from .profile_challenge import call
from .run import backends_up, reset_stores

Patch = Callable[[], contextlib.AbstractContextManager[None]]


@dataclass(frozen=True)
class Optimisation:
    name: str
    #: Applied while the app is built / while it serves, to undo the optimisation.
    build: Patch | None = None
    serve: Patch | None = None


@contextlib.contextmanager
def _patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    saved = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, saved)


def _pre_ping() -> contextlib.AbstractContextManager[None]:
    create_engine = sa.create_engine

    def pinging(*args: Any, **kwargs: Any) -> Any:
        kwargs["pool_pre_ping"] = True
        return create_engine(*args, **kwargs)

    return _patched(sa, "create_engine", pinging)


@contextlib.contextmanager
def _engine_log_at_info() -> Iterator[None]:
    engine_logger = logging.getLogger("sqlalchemy.engine.Engine.flask_passkey")
    saved = engine_logger.level
    engine_logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        engine_logger.setLevel(saved)


#: The stores whose users (and, but for ``redis``, sessions) are in a SQL database: the ones
#: the optimisations apply to.
BACKENDS = ("sqlite", "postgres", "redis")
OPTIMISATIONS = [
    Optimisation("SQL: no pre-ping round trip", build=_pre_ping),
    Optimisation("SQL: engine logger not at INFO", serve=_engine_log_at_info),
]


@dataclass
class Variant:
    label: str
    undone: tuple[Optimisation, ...]
    one: Callable[[], int]

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for optimisation in self.undone:
                if optimisation.serve is not None:
                    stack.enter_context(optimisation.serve())
            yield


def build(backend: str, undone: Sequence[Optimisation]) -> Flask:
    with contextlib.ExitStack() as stack:
        for optimisation in undone:
            if optimisation.build is not None:
                stack.enter_context(optimisation.build())
        return passkey_app(backend)


def token_calls(app: Flask, backend: str, count: int) -> Callable[[], int]:
    """A function that redeems the next of ``count`` sessions issued ahead on ``app``."""
    fixture = sign_up_users(app, backend, users=1)
    prefix = WORK_DIR / f"ab-{backend}-{time.time_ns()}"
    token_bodies(fixture, count, prefix)
    bodies = []
    for path in sorted(WORK_DIR.glob(f"{prefix.name}-*.jsonl")):
        bodies += path.read_text().splitlines()
        path.unlink()
    calls = iter([call(app, "/oauth/token", body) for body in bodies])
    return lambda: next(calls)()


def cpu_per_request(variant: Variant, *, requests: int) -> float:
    gc.collect()
    with variant.serving():
        started = time.process_time()
        for _ in range(requests):
            status = variant.one()
            assert status == 200, (variant.label, status)
        return (time.process_time() - started) / requests * 1e6


def scenario(endpoint: str, backend: str, *, repeats: int, requests: int) -> dict[str, float]:
    plans: list[tuple[str, tuple[Optimisation, ...]]] = [
        ("after", ()),
        ("before", tuple(OPTIMISATIONS)),
        *((f"without: {o.name}", (o,)) for o in OPTIMISATIONS),
    ]
    variants = []
    for label, undone in plans:
        app = build(backend, undone)
        if endpoint == "challenge":
            one = call(app)
        else:
            one = token_calls(app, backend, (repeats + 1) * requests + 20)
        variant = Variant(label, undone, one)
        with variant.serving():
            for _ in range(20):
                assert one() == 200
        variants.append(variant)
    best = {v.label: float("inf") for v in variants}
    for _ in range(repeats):
        for variant in variants:
            best[variant.label] = min(
                best[variant.label], cpu_per_request(variant, requests=requests)
            )
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--requests", type=int, default=400, help="per repeat (challenge)")
    parser.add_argument(
        "--token-requests", type=int, default=150, help="per repeat (token endpoint)"
    )
    parser.add_argument("--scenarios", default="", help="e.g. challenge/memory,token/redis")
    args = parser.parse_args(argv)
    wanted = {name.strip() for name in args.scenarios.split(",") if name.strip()}
    backends_up()
    reset_stores()
    create_database("passkey_bench")
    results: dict[str, dict[str, float]] = {}
    for endpoint, backend in itertools.product(("challenge", "token"), BACKENDS):
        requests = args.requests if endpoint == "challenge" else args.token_requests
        name = f"{endpoint}/{backend}"
        if wanted and name not in wanted:
            continue
        results[name] = scenario(endpoint, backend, repeats=args.repeats, requests=requests)
        after, before = results[name]["after"], results[name]["before"]
        print(f"{name}: {before:.0f} -> {after:.0f} µs CPU per request", flush=True)
    lines = ["| scenario | undone | CPU µs / request | vs after |", "| --- | --- | ---: | ---: |"]
    for name, timings in results.items():
        after = timings["after"]
        for label, value in timings.items():
            lines.append(f"| {name} | {label} | {value:.0f} | {value - after:+.0f} |")
    RESULTS_DIR.mkdir(exist_ok=True)
    output = "ab" if not wanted else "ab-" + "-".join(sorted(wanted)).replace("/", "_")
    (RESULTS_DIR / f"{output}.json").write_text(json.dumps(results, indent=2))
    (RESULTS_DIR / f"{output}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
