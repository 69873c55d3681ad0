"""gunicorn (2 sync workers) on loopback, one server per target, stopped when the run ends."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from .common import CHALLENGE_BODY, HOST, ROOT, WORK_DIR

WORKERS = 2


@dataclass(frozen=True)
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (gunicorn's master and workers)."""
    found = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            for child in children.read().split():
                found += descendants(int(child))
    except OSError:
        pass
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    """Whether the app on ``port`` is up: it answers a challenge request, with anything but a
    server error (an app without that endpoint answers 404)."""
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request(
            "POST",
            "/passkey/challenge",
            body=CHALLENGE_BODY,
            headers={"Host": HOST, "Content-Type": "application/json"},
        )
        status = connection.getresponse().status
        connection.close()
    except OSError:
        return False
    return status < 500


@contextmanager
def gunicorn(name: str, env: Mapping[str, str], *, timeout: float = 180) -> Iterator[Server]:
    """Serve ``bench.apps:app_from_env()`` with ``env`` on a free loopback port until exit;
    ``BENCH_PRELOAD`` in ``env``: the app is built once, before the workers fork (``timeout``
    leaves time for the bodies a preloaded app makes ahead)."""
    port = free_port()
    WORK_DIR.mkdir(exist_ok=True)
    env = dict(env)
    cwd = env.pop("BENCH_CWD", str(ROOT.parent))
    preload = ["--preload"] if env.pop("BENCH_PRELOAD", None) else []
    log = open(WORK_DIR / f"gunicorn-{name}.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(WORKERS),
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            *preload,
            "bench.apps:app_from_env()",
        ],
        cwd=cwd,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + timeout
        # Both workers must be up: ask a few times (each worker answers some).
        answered = 0
        while answered < 4:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn for {name} exited; see {log.name}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn for {name} did not answer; see {log.name}")
            if _answers(port):
                answered += 1
            else:
                time.sleep(0.1)
        yield Server(name, port, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextmanager
def servers(specs: Mapping[str, Mapping[str, str]]) -> Iterator[dict[str, Server]]:
    """One gunicorn per name, all running until exit."""
    with ExitStack() as stack:
        yield {name: stack.enter_context(gunicorn(name, env)) for name, env in specs.items()}
