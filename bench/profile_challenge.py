"""Profile ``POST /passkey/challenge`` in process with pyinstrument.

``python -m bench.profile_challenge [memory|sqlite|postgres|redis] [--requests N]`` calls the
WSGI app directly (no server, no test client) and writes bench/results/profile-<backend>.txt
and .html.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from flask import Flask

from .apps import floor_app, passkey_app
from .common import CHALLENGE_BODY, HOST, RESULTS_DIR
from .fixtures import create_database
from .run import reset_stores

StartResponse = Callable[..., Any]


def call(
    app: Flask,
    path: str = "/passkey/challenge",
    body: str = CHALLENGE_BODY,
    *,
    method: str = "POST",
    authorization: str | None = None,
) -> Callable[[], int]:
    """A function that makes one request to ``app`` through WSGI and returns the status
    (``authorization``: the Authorization header)."""
    data = body.encode()
    base = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": HOST,
        "SERVER_PORT": "443",
        "HTTP_HOST": HOST,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(data)),
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if authorization is not None:
        base["HTTP_AUTHORIZATION"] = authorization
    status: list[str] = []

    def start_response(value: str, headers: list[Any], exc_info: Any = None) -> None:
        status.append(value)

    def one() -> int:
        status.clear()
        environ = dict(base, **{"wsgi.input": io.BytesIO(data)})
        body: Iterable[bytes] = app.wsgi_app(environ, start_response)
        for _ in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()
        return int(status[0].split()[0])

    return one


def per_second(one: Callable[[], int], seconds: float = 2.0) -> float:
    count = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        assert one() == 200
        count += 1
    return count / elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_challenge")
    parser.add_argument("backend", nargs="?", default="memory")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--no-profile", action="store_true", help="only time it")
    args = parser.parse_args(argv)
    if args.backend in ("postgres", "redis", "sqlite"):
        reset_stores()
        create_database("passkey_bench")
    app = passkey_app(args.backend)
    one = call(app)
    floor_one = call(floor_app())
    for _ in range(200):
        assert one() == 200
    floor_rate, rate = per_second(floor_one), per_second(one)
    print(
        f"in process, one thread: floor {floor_rate:,.0f} req/s ({1e6 / floor_rate:.0f} µs), "
        f"challenge/{args.backend} {rate:,.0f} req/s ({1e6 / rate:.0f} µs), "
        f"ratio {rate / floor_rate:.2f}"
    )
    if args.no_profile:
        return 0
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0001)
    profiler.start()
    for _ in range(args.requests):
        one()
    profiler.stop()
    RESULTS_DIR.mkdir(exist_ok=True)
    text = profiler.output_text(unicode=True, color=False, show_all=False)
    (RESULTS_DIR / f"profile-{args.backend}.txt").write_text(text)
    (RESULTS_DIR / f"profile-{args.backend}.html").write_text(profiler.output_html())
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
