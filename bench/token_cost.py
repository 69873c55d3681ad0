"""What one token-endpoint or userinfo request costs, in process: ``python -m bench.token_cost``.

The load benchmark's token targets (login, refresh, userinfo) under load move with whatever else
the machine runs; here each request goes through the WSGI app in this process, one at a time,
with no server or load generator, so its wall time is its CPU plus its waits on the store (the
round trips), and the minimum over interleaved repeats is steady even on a busy machine. Per
scenario: wall and CPU µs per request, and how a refresh and a userinfo request compare with a
login on the same store. Writes results/<output>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence

from .ab import token_calls
from .apps import passkey_app
from .common import CLIENT_ID, RESULTS_DIR
from .fixtures import create_database, sign_up_users
from .profile_challenge import call
from .run import TOKEN, USERINFO, backends_up, reset_stores

#: Store backends (``redis``: sessions and limiter in Redis, users and tokens in PostgreSQL).
BACKENDS = ("memory", "postgres", "redis")
KINDS = ("login", "refresh", "userinfo")


def refresh_calls(app_backend: str, count: int) -> Callable[[], int]:
    """A function that redeems the next of ``count`` refresh tokens minted ahead."""
    app = passkey_app(app_backend)
    fixture = sign_up_users(app, app_backend, users=8)
    calls = iter(
        [
            call(
                app,
                TOKEN,
                json.dumps(
                    {"grant_type": "refresh_token", "client_id": CLIENT_ID, "refresh_token": token}
                ),
            )
            for token in fixture.refresh.take(count)
        ]
    )
    return lambda: next(calls)()


def userinfo_call(app_backend: str) -> Callable[[], int]:
    app = passkey_app(app_backend)
    fixture = sign_up_users(app, app_backend, users=1)
    return call(app, USERINFO, "", method="GET", authorization=f"Bearer {fixture.access_token}")


def measure(one: Callable[[], int], requests: int) -> tuple[float, float]:
    """Wall and CPU µs per request over ``requests`` requests, each answered 200."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(requests):
        status = one()
        assert status == 200, status
    return (
        (time.perf_counter() - wall) / requests * 1e6,
        (time.process_time() - cpu) / requests * 1e6,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.token_cost", description=__doc__)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--requests", type=int, default=100, help="per repeat")
    parser.add_argument("--output", default="token-cost")
    args = parser.parse_args(argv)
    backends_up()
    reset_stores()
    create_database("passkey_bench")
    count = (args.repeats + 1) * args.requests + 20
    scenarios: dict[str, Callable[[], int]] = {}
    for backend in BACKENDS:
        # Logins on the memory store: sessions are put in the app's own store (in process).
        scenarios[f"login/{backend}"] = token_calls(passkey_app(backend), backend, count)
        scenarios[f"refresh/{backend}"] = refresh_calls(backend, count)
        scenarios[f"userinfo/{backend}"] = userinfo_call(backend)
    for one in scenarios.values():
        for _ in range(20):  # warm-up: keys read, connections opened
            assert one() == 200
    best = {name: (float("inf"), float("inf")) for name in scenarios}
    for _ in range(args.repeats):
        for name, one in scenarios.items():
            wall, cpu = measure(one, args.requests)
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    lines = [
        "| request | store | wall µs | CPU µs | wall - CPU µs | wall x login |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, (wall, cpu) in best.items():
        kind, backend = name.split("/")
        login = best[f"login/{backend}"][0]
        lines.append(
            f"| {kind} | {backend} | {wall:.0f} | {cpu:.0f} | {wall - cpu:.0f} | "
            f"{wall / login:.2f} |"
        )
    text = "\n".join(lines)
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{args.output}.json").write_text(
        json.dumps(
            {
                "repeats": args.repeats,
                "requests": args.requests,
                "minimum_us": {n: {"wall": w, "cpu": c} for n, (w, c) in best.items()},
            },
            indent=2,
        )
    )
    (RESULTS_DIR / f"{args.output}.md").write_text(
        f"{args.repeats} interleaved repeats x {args.requests} requests, minimum per request\n\n"
        f"{text}\n"
    )
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
