"""The load generator: Debian's ``wrk`` (2 threads, 32 connections) driven by bench/load.lua."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .common import HOST, ROOT, WORK_DIR

SCRIPT = ROOT / "load.lua"
THREADS = 2
CONNECTIONS = 32


@dataclass(frozen=True)
class Measurement:
    """One wrk run against one target."""

    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    #: Socket errors and timeouts, non-2xx/3xx answers, bodies that ran out.
    errors: int
    bad_status: int
    exhausted: int
    #: Share of the CPUs busy just before the load, and share of the CPU capacity other jobs
    #: on the machine used during it.
    busy_before: float = 0.0
    foreign: float = 0.0
    #: Per wrk thread, how many lines of its body file it sent (the rest are unused).
    sent: tuple[int, ...] = ()

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def load_seconds(seconds: float) -> int:
    """How long a load asked to last ``seconds`` lasts: wrk takes whole seconds, at least one."""
    return max(1, round(seconds))


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (Debian).")
    return path


def run_wrk(
    port: int,
    path: str,
    *,
    seconds: float,
    body: str | None = None,
    body_files: Path | None = None,
    authorization: str | None = None,
) -> Measurement:
    """Load ``path`` on the loopback ``port`` for ``seconds``: POST one body for every request,
    or the per-thread files ``<body_files>-<thread>.jsonl``, each line sent once; with neither,
    GET. ``authorization``: the Authorization header of every request (handed to wrk in a
    file of WORK_DIR readable by this user alone, never on its command line)."""
    source = f"@{body_files}" if body_files is not None else body or "-"
    header = None
    if authorization is not None:
        WORK_DIR.mkdir(exist_ok=True)
        header = WORK_DIR / f"authorization-{os.getpid()}.txt"
        header.touch(mode=0o600)
        header.write_text(authorization + "\n")
    command = [
        wrk_path(),
        f"-t{THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{load_seconds(seconds)}s",
        "--timeout",
        "5s",
        "-s",
        str(SCRIPT),
        f"http://127.0.0.1:{port}{path}",
        "--",
        HOST,
        source,
        *([f"@{header}"] if header is not None else []),
    ]
    try:
        # wrk stops by itself after -d; the timeout is a guard against a hung server.
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 30, check=True
        )
    finally:
        if header is not None:
            header.unlink()
    line = next(
        (line for line in done.stdout.splitlines() if line.startswith("BENCH_RESULT ")), None
    )
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix("BENCH_RESULT "))
    return Measurement(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        errors=data["connect_errors"]
        + data["read_errors"]
        + data["write_errors"]
        + data["timeouts"],
        bad_status=data["status_errors"],
        exhausted=data["exhausted"],
        sent=tuple(data["sent"]),
    )
