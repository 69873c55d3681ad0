"""Waiting for the machine to be idle before a measurement (other jobs share its cores)."""

from __future__ import annotations

import time


def _cpu_times() -> tuple[float, float]:
    with open("/proc/stat") as stat:
        values = [float(v) for v in stat.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)  # idle + iowait
    return sum(values), idle


def busy_fraction(seconds: float = 0.5) -> float:
    """Share of all CPUs busy over ``seconds`` (0 when /proc/stat is unreadable)."""
    try:
        total_before, idle_before = _cpu_times()
        time.sleep(seconds)
        total_after, idle_after = _cpu_times()
    except OSError:
        return 0.0
    total = total_after - total_before
    return 0.0 if total <= 0 else 1.0 - (idle_after - idle_before) / total


def wait_until_quiet(threshold: float = 0.15, patience: float = 60.0) -> float:
    """Wait (at most ``patience`` seconds) until under ``threshold`` of the CPUs are busy while
    the benchmark itself is idle; returns the last busy share seen."""
    deadline = time.monotonic() + patience
    busy = busy_fraction()
    while busy > threshold and time.monotonic() < deadline:
        busy = busy_fraction(1.0)
    return busy
