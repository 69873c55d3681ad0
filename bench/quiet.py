"""Other jobs share this machine's cores: wait for them to be idle, and measure how much CPU
they took during a load, so a disturbed measurement can be made again."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterable
from dataclasses import dataclass

#: Processes of ours besides our children (which are counted by pid): the servers we load.
OWN_COMMANDS = frozenset({"postgres", "redis-server"})
_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_times() -> tuple[float, float]:
    """(all CPU seconds, idle CPU seconds) since boot, over every CPU."""
    with open("/proc/stat") as stat:
        values = [float(v) for v in stat.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)  # idle + iowait
    return sum(values) / _TICKS, idle / _TICKS


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


def wait_until_quiet(threshold: float = 0.15, patience: float = 30.0) -> float:
    """Wait (at most ``patience`` seconds) until under ``threshold`` of the CPUs are busy while
    the benchmark itself is idle; returns the last busy share seen."""
    deadline = time.monotonic() + patience
    busy = busy_fraction(0.2)
    while busy > threshold and time.monotonic() < deadline:
        busy = busy_fraction(1.0)
    return busy


def _process_cpu(pid: int) -> tuple[str, float] | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return name, (float(fields[11]) + float(fields[12])) / _TICKS  # utime + stime


def _ours(pids: Iterable[int]) -> float:
    """CPU seconds of the given processes and of every postgres / redis-server process."""
    wanted = set(pids)
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        found = _process_cpu(int(entry))
        if found is not None and (int(entry) in wanted or found[0] in OWN_COMMANDS):
            total += found[1]
    return total


@dataclass
class CpuAccount:
    """CPU used during a load by processes that are not part of the benchmark."""

    pids: tuple[int, ...]
    _total: float = 0.0
    _idle: float = 0.0
    _ours: float = 0.0
    _children: float = 0.0
    _started: float = 0.0

    def start(self) -> None:
        self._total, self._idle = _cpu_times()
        self._ours = _ours(self.pids)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, once it has exited
        self._children = usage.ru_utime + usage.ru_stime
        self._started = time.monotonic()

    def foreign_share(self) -> float:
        """Share of the machine's CPU capacity used by other jobs since :meth:`start`."""
        total, idle = _cpu_times()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        children = usage.ru_utime + usage.ru_stime - self._children
        own = _ours(self.pids) - self._ours + children
        busy = (total - self._total) - (idle - self._idle)
        capacity = total - self._total
        return 0.0 if capacity <= 0 else max(0.0, busy - own) / capacity
