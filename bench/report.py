"""Medians over interleaved rounds, ratios to the floor, the machine, and the tables."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

from .loadgen import CONNECTIONS, THREADS, Measurement

PACKAGES = (
    "flask",
    "werkzeug",
    "flask-limiter",
    "limits",
    "webauthn",
    "joserfc",
    "cryptography",
    "sqlalchemy",
    "psycopg",
    "redis",
    "hiredis",
    "gunicorn",
    "marshmallow",
    "pluggy",
)


@dataclass(frozen=True)
class Summary:
    """One target over every round: medians of the rounds, and of its per-round ratios to the
    floor measured in the same round."""

    target: str
    rounds: int
    rps: float
    p50_ms: float
    p99_ms: float
    rps_ratio: float
    p50_ratio: float
    p99_ratio: float
    requests: int
    errors: int
    bad_status: int
    exhausted: int
    #: Largest share of the CPUs other jobs on the machine took during one of the loads.
    foreign: float


def summarise(runs: Mapping[str, Sequence[Measurement]], *, floor: str = "floor") -> list[Summary]:
    floor_runs = runs[floor]
    summaries = []
    for target, measured in runs.items():
        pairs = list(zip(measured, floor_runs, strict=True))
        summaries.append(
            Summary(
                target=target,
                rounds=len(measured),
                rps=statistics.median(m.rps for m in measured),
                p50_ms=statistics.median(m.p50_ms for m in measured),
                p99_ms=statistics.median(m.p99_ms for m in measured),
                rps_ratio=statistics.median(m.rps / f.rps for m, f in pairs),
                p50_ratio=statistics.median(m.p50_ms / f.p50_ms for m, f in pairs),
                p99_ratio=statistics.median(m.p99_ms / f.p99_ms for m, f in pairs),
                requests=sum(m.requests for m in measured),
                errors=sum(m.errors for m in measured),
                bad_status=sum(m.bad_status for m in measured),
                exhausted=sum(m.exhausted for m in measured),
                foreign=max(m.foreign for m in measured),
            )
        )
    return summaries


def table(summaries: Sequence[Summary]) -> str:
    lines = [
        "| target | req/s | x floor | p50 ms | x floor | p99 ms | x floor | requests | errors "
        "| other jobs (max) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in summaries:
        problems = s.errors + s.bad_status + s.exhausted
        lines.append(
            f"| {s.target} | {s.rps:,.0f} | {s.rps_ratio:.2f} | {s.p50_ms:.2f} | "
            f"{s.p50_ratio:.2f} | {s.p99_ms:.2f} | {s.p99_ratio:.2f} | {s.requests:,} | "
            f"{problems} | {s.foreign:.0%} |"
        )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            names = (line.split(":", 1)[1] for line in cpuinfo if line.startswith("model name"))
            model = next(names, model).strip()
    except OSError:
        pass
    memory = "unknown"
    try:
        with open("/proc/meminfo") as meminfo:
            kib = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
            memory = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except Exception:  # not installed
            versions[name] = "-"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory": memory,
        "loadavg_before": os.getloadavg(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "wrk": _wrk_version(),
        "redis_server": _command_output(["redis-server", "--version"]),
        "load": f"wrk {THREADS} threads / {CONNECTIONS} connections",
        "packages": versions,
    }


def _wrk_version() -> str:
    output = _command_output(["wrk", "--version"])
    return output.splitlines()[0] if output else "-"


def _command_output(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return ""
    return (done.stdout or done.stderr).strip()


def to_json(
    info: Mapping[str, Any],
    settings: Mapping[str, Any],
    runs: Mapping[str, Sequence[Measurement]],
    summaries: Sequence[Summary],
    *,
    beside_login: Sequence[Summary] = (),
) -> str:
    """The run as JSON; ``beside_login``: summaries whose ratios are to a token login rather
    than to the floor (the refresh and userinfo targets)."""
    return json.dumps(
        {
            "machine": info,
            "settings": settings,
            "summary": [asdict(s) for s in summaries],
            **({"beside_login": [asdict(s) for s in beside_login]} if beside_login else {}),
            "rounds": {name: [asdict(m) for m in measured] for name, measured in runs.items()},
        },
        indent=2,
    )
