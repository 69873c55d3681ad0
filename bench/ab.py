"""What each optimisation is worth: ``python -m bench.ab`` (``make bench-ab``).

In one process, with no server and no load generator in the way (the machine's other jobs and
the loopback's noise swamp differences of a few percent in the load benchmark), each scenario
(the challenge endpoint on each store, a token-endpoint login on each store) is timed through
the WSGI app with every optimisation ("after"), with none of them ("before": the code as it
was, restored by patches), and with each one alone undone. Timings are CPU time per request of
this process, the minimum over interleaved repeats. Writes results/ab.json and results/ab.md.
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
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import Flask
from joserfc import jwt

from flask_passkey.core.tokens import ALGORITHM, CompactSigner
from flask_passkey.extension import get_state

from .apps import passkey_app
from .common import REDIS_URL, RESULTS_DIR, WORK_DIR
from .fixtures import create_database, sign_up_users, token_bodies
from .profile_challenge import call
from .run import backends_up, reset_stores

Patch = Callable[[], contextlib.AbstractContextManager[None]]


@dataclass(frozen=True)
class Optimisation:
    name: str
    #: The backends it applies to.
    backends: frozenset[str]
    #: Applied while the app is built / while it serves, to undo the optimisation.
    build: Patch | None = None
    serve: Patch | None = None
    #: Configuration that undoes it.
    config: dict[str, Any] = field(default_factory=dict)
    #: Changes to the built app that undo it.
    after_build: Callable[[Flask], None] | None = None
    #: The endpoints it applies to.
    endpoints: frozenset[str] = frozenset({"challenge", "token"})


@contextlib.contextmanager
def _patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    saved = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, saved)


def _joserfc_signing() -> contextlib.AbstractContextManager[None]:
    def encode(self: CompactSigner, typ: str, claims: Any) -> str:
        header = {"alg": ALGORITHM, "kid": self.kid, "typ": typ}
        return jwt.encode(header, dict(claims), self.key, [ALGORITHM])

    return _patched(CompactSigner, "encode", encode)


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


def _client_commands() -> contextlib.AbstractContextManager[None]:
    import flask_passkey_redis.limiter_storage as limiter_storage
    import flask_passkey_redis.store as store

    def through_client(client: Any, *args: Any) -> Any:
        return client.execute_command(*args)

    stack = contextlib.ExitStack()
    stack.enter_context(_patched(store, "command", through_client))
    stack.enter_context(_patched(limiter_storage, "command", through_client))
    return stack


def _two_reads(app: Flask) -> None:
    get_state(app).ceremonies._joined = None


def _python_parser(app: Flask) -> None:
    from redis._parsers import _RESP2Parser

    state = get_state(app)
    clients = [state.sessions.client()]  # type: ignore[attr-defined]
    if state.limiter is not None:
        clients.append(state.limiter.storage.storage)  # type: ignore[attr-defined]
    for client in clients:
        client.connection_pool.connection_kwargs["parser_class"] = _RESP2Parser
        client.connection_pool.disconnect()


ALL = frozenset({"memory", "sqlite", "postgres", "redis"})
SQL = frozenset({"sqlite", "postgres", "redis"})
OPTIMISATIONS = [
    Optimisation(
        "limiter: passkey+memory:// (no expiry thread)",
        frozenset({"memory", "sqlite", "postgres"}),
        config={"PASSKEY_RATE_LIMIT_STORAGE_URI": "memory://"},
    ),
    Optimisation(
        "limiter: window stats from the hit (Redis: 1 round trip, not 3)",
        frozenset({"redis"}),
        config={"PASSKEY_RATE_LIMIT_STORAGE_URI": REDIS_URL},
    ),
    Optimisation(
        "Redis: commands without redis-py's client layers",
        frozenset({"redis"}),
        serve=_client_commands,
    ),
    Optimisation("hiredis reply parser", frozenset({"redis"}), after_build=_python_parser),
    Optimisation("SQL: no pre-ping round trip", SQL, build=_pre_ping),
    Optimisation("SQL: engine logger not at INFO", SQL, serve=_engine_log_at_info),
    Optimisation(
        "SQL: credential and owner in one read",
        SQL,
        after_build=_two_reads,
        endpoints=frozenset({"token"}),
    ),
    Optimisation(
        "tokens: CompactSigner",
        ALL,
        serve=_joserfc_signing,
        endpoints=frozenset({"token"}),
    ),
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
        config: dict[str, Any] = {}
        for optimisation in undone:
            config.update(optimisation.config)
        app = passkey_app(backend, config=config)
    for optimisation in undone:
        if optimisation.after_build is not None:
            optimisation.after_build(app)
    return app


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
    applicable = [o for o in OPTIMISATIONS if backend in o.backends and endpoint in o.endpoints]
    plans: list[tuple[str, tuple[Optimisation, ...]]] = [
        ("after", ()),
        ("before", tuple(applicable)),
        *((f"without: {o.name}", (o,)) for o in applicable),
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
    for endpoint, backend in itertools.chain(
        (("challenge", b) for b in ("memory", "sqlite", "postgres", "redis")),
        (("token", b) for b in ("sqlite", "postgres", "redis")),
    ):
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
