"""Is a benchmark run as good as the recorded one, and does it meet the targets?
``python -m bench.check [RESULTS ...]``.

``make bench`` runs it on the run just made (``results/latest.json``), ``make bench-credentials``
on ``results/latest-credentials.json``. Three verdicts:

* **Calibration**: the reference endpoints (``ref/*``) of the run against their recorded
  ratios to the floor. Ratios to the floor move across machines much less than req/s do, but
  they do move (see RESULTS.md, *Noise*): when a reference is off by more than
  :data:`TOLERANCE`, the machine is not the baseline's, and the regressions below are only
  reported; record a baseline on that machine to compare on it.
* **Regressions** (exit status 1, on a comparable machine): a flask-passkey target whose req/s
  ratio fell more than :data:`TOLERANCE` below its recorded ratio; and, on any machine, a load
  with failed requests (the floor's and the references' included: they make every ratio). A
  target the baseline does not know yet is reported as new; only failed requests fail it.
  Back-to-back runs on one machine moved the ratios by up to 4 %; the margin is three times that.
* **Targets** (:data:`TARGETS`): each target beside the hand-written reference endpoint
  measured in the same run (bench.common.REFERENCES), req/s and p99, and the login's cost with
  1,000 vs 1,000,000 stored credentials; met or missed, printed; a miss alone does not fail,
  unless ``--strict``. A ratio is the median of the per-round ratios (target and reference
  loaded in the same round) when both come from one results file with the same rounds, else
  the ratio of their medians; the verdict says which.

``--record`` makes the runs the new baseline (after a change that is meant to move the ratios,
with the reason in the commit); it refuses runs with failed requests. ``--write-targets FILE``
puts the targets' table into FILE (bench/RESULTS.md) between :data:`TABLE_BEGIN` and
:data:`TABLE_END`.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import REFERENCES, RESULTS_DIR, ROOT

BASELINE = ROOT / "baseline.json"
#: How far (relative) a req/s ratio may fall below the baseline before it counts as a regression,
#: and how far a reference may move before the machine counts as another one.
TOLERANCE = 0.12
#: The lines between which ``--write-targets`` puts the targets' table.
TABLE_BEGIN = "<!-- bench.check targets: begin -->"
TABLE_END = "<!-- bench.check targets: end -->"


@dataclass(frozen=True)
class Verdict:
    name: str
    value: str
    wanted: str
    #: None: not measured (the target or what it is compared with is not in the run).
    ok: bool | None


Summaries = dict[str, dict[str, Any]]


@dataclass
class Run:
    """The summaries of one or more result files, which targets were their floors, and the
    rounds of each target with the file they came from."""

    summaries: Summaries
    floors: set[str]
    rounds: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class Measure:
    """What is compared of a target and its reference: req/s (higher is better) or p99."""

    label: str
    #: Its field in a summary (the median of the rounds).
    summary_key: str
    #: Its value in one round's load.
    of_load: Callable[[dict[str, Any]], float]
    higher_is_better: bool


RPS = Measure("req/s", "rps", lambda load: load["requests"] / load["seconds"], True)
P99_LATENCY = Measure("p99", "p99_ms", lambda load: load["p99_ms"], False)


def relative(run: Run, target: str, reference: str, measure: Measure) -> tuple[float, str] | None:
    """``target``'s ``measure`` over ``reference``'s, and how it was taken: the median of the
    per-round ratios when both were loaded in the same rounds of one run, else the ratio of
    their medians; None when either is not in ``run``."""
    if target not in run.summaries or reference not in run.summaries:
        return None
    ours, theirs = run.rounds.get(target, []), run.rounds.get(reference, [])
    if ours and len(ours) == len(theirs) and run.sources[target] == run.sources[reference]:
        ratios = [
            measure.of_load(m) / measure.of_load(r) for m, r in zip(ours, theirs, strict=True)
        ]
        return statistics.median(ratios), f"per-round median of {len(ratios)}"
    key = measure.summary_key
    return run.summaries[target][key] / run.summaries[reference][key], "ratio of medians"


@dataclass(frozen=True)
class Beside:
    """A target's measure as a multiple of its reference endpoint's (bench.common.REFERENCES):
    at least ``bound`` for req/s, at most ``bound`` for latency."""

    target: str
    measure: Measure
    bound: float

    @property
    def name(self) -> str:
        return f"{self.target} {self.measure.label} vs {REFERENCES[self.target]}"

    @property
    def wanted(self) -> str:
        return f"{'>=' if self.measure.higher_is_better else '<='} {self.bound:.2f}x"

    def read(self, run: Run) -> tuple[str, bool] | None:
        found = relative(run, self.target, REFERENCES[self.target], self.measure)
        if found is None:
            return None
        ratio, how = found
        met = ratio >= self.bound if self.measure.higher_is_better else ratio <= self.bound
        return f"{ratio:.2f}x ({how})", met


def _credentials_independent(run: Run) -> tuple[str, bool] | None:
    million = next((s for name, s in run.summaries.items() if "1,000,000" in name), None)
    if million is None:
        return None
    ratios = (million["rps_ratio"], million["p50_ratio"], million["p99_ratio"])
    return (
        "req/s {:.2f}x, p50 {:.2f}x, p99 {:.2f}x".format(*ratios),
        all(0.8 <= ratio <= 1.25 for ratio in ratios),
    )


#: Least req/s of each target, as a share of its reference's.
THROUGHPUT = {
    "challenge/memory": 0.90,
    "challenge/redis": 0.95,
    "token/memory": 0.80,
    "token/redis+postgres": 0.60,
}
#: Most p99 latency of each of those targets, as a multiple of its reference's.
P99 = 1.2

#: The targets: (name, wanted, how to read it off a run: its value and whether it is met).
TARGETS: tuple[tuple[str, str, Callable[[Run], tuple[str, bool] | None]], ...] = (
    *(
        (beside.name, beside.wanted, beside.read)
        for beside in (
            *(Beside(target, RPS, least) for target, least in THROUGHPUT.items()),
            *(Beside(target, P99_LATENCY, P99) for target in THROUGHPUT),
        )
    ),
    ("login, 1,000 vs 1,000,000 credentials", "within 20 %", _credentials_independent),
)


def load_run(paths: Sequence[Path]) -> Run:
    run = Run({}, set())
    for path in paths:
        data = json.loads(path.read_text())
        run.summaries |= {summary["target"]: summary for summary in data["summary"]}
        run.floors.add(data.get("settings", {}).get("floor", "floor"))
        for name in (summary["target"] for summary in data["summary"]):
            run.rounds[name] = data.get("rounds", {}).get(name, [])
            run.sources[name] = path
    return run


def failed_requests(summary: dict[str, Any]) -> int:
    return int(summary["errors"] + summary["bad_status"] + summary["exhausted"])


def is_reference(name: str) -> bool:
    return name.startswith("ref/")


def calibration(run: Run, baseline: dict[str, float]) -> list[Verdict]:
    """The reference endpoints of the run against their recorded ratios."""
    return [
        Verdict(
            name,
            f"{s['rps_ratio']:.2f}x",
            f"recorded {baseline[name]:.2f}x",
            abs(s["rps_ratio"] - baseline[name]) <= TOLERANCE * baseline[name],
        )
        for name, s in run.summaries.items()
        if is_reference(name) and name in baseline
    ]


def regressions(run: Run, baseline: dict[str, float]) -> list[Verdict]:
    """One verdict per target of the run: flask-passkey's against their recorded ratios, and
    every load (floor and references included) without failed requests."""
    verdicts = []
    for name, summary in run.summaries.items():
        problems = failed_requests(summary)
        ratio = summary["rps_ratio"]
        value = f"{ratio:.2f}x" + (f", {problems} failed requests" if problems else "")
        recorded = baseline.get(name)
        if name in run.floors or is_reference(name):
            if problems:
                verdicts.append(Verdict(name, value, "no failed requests", False))
        elif recorded is None:
            # A target added since the baseline was recorded: nothing to compare with, but its
            # loads must still be free of failed requests.
            verdicts.append(Verdict(name, value, "new, no baseline", problems == 0))
        else:
            least = recorded * (1 - TOLERANCE)
            verdicts.append(
                Verdict(
                    name,
                    value,
                    f">= {least:.2f}x (recorded {recorded:.2f}x)",
                    ratio >= least and problems == 0,
                )
            )
    return verdicts


def targets(run: Run) -> list[Verdict]:
    """Every target of :data:`TARGETS`, measured or not."""
    verdicts = []
    for name, wanted, read in TARGETS:
        found = read(run)
        value, ok = found if found is not None else ("not measured", None)
        verdicts.append(Verdict(name, value, wanted, ok))
    return verdicts


def targets_table(verdicts: Sequence[Verdict], sources: Sequence[Path]) -> str:
    """The targets as a markdown table, for RESULTS.md."""
    lines = [
        f"`python -m bench.check {' '.join(path.as_posix() for path in sources)}`:",
        "",
        "| target | wanted | measured | met? |",
        "| --- | --- | --- | --- |",
    ]
    for v in verdicts:
        met = "-" if v.ok is None else "yes" if v.ok else "**no**"
        lines.append(f"| {v.name} | {v.wanted} | {v.value} | {met} |")
    return "\n".join(lines)


def write_targets(path: Path, table: str) -> None:
    """Replace what is between TABLE_BEGIN and TABLE_END in ``path`` with ``table``."""
    text = path.read_text()
    before, begin, rest = text.partition(TABLE_BEGIN + "\n")
    _, end, after = rest.partition(TABLE_END)
    if not begin or not end:
        raise SystemExit(f"{path} has no {TABLE_BEGIN} ... {TABLE_END} block")
    path.write_text(f"{before}{begin}{table}\n{end}{after}")


def record(run: Run, baseline: dict[str, float], sources: str) -> int:
    """Write the run's ratios (not its floors', nor ``before:`` targets') into the baseline."""
    broken = [name for name, s in run.summaries.items() if failed_requests(s)]
    if broken:
        print(f"not recorded: failed requests in {', '.join(broken)}")
        return 1
    baseline |= {
        name: round(s["rps_ratio"], 3)
        for name, s in run.summaries.items()
        if name not in run.floors and not name.startswith("before:")
    }
    BASELINE.write_text(
        json.dumps({"recorded_from": sources, "rps_ratio": baseline}, indent=2) + "\n"
    )
    print(f"baseline recorded in {BASELINE} from {sources}")
    return 0


def _print(title: str, verdicts: Sequence[Verdict], good: str, bad: str) -> None:
    print(f"\n{title}")
    name, value, wanted = (
        max((len(getattr(v, column)) for v in verdicts), default=0)
        for column in ("name", "value", "wanted")
    )
    for v in verdicts:
        state = "not measured" if v.ok is None else good if v.ok else bad
        print(f"  {v.name:<{name}}  {v.value:<{value}}  {v.wanted:<{wanted}}  {state}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.check", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "results",
        nargs="*",
        type=Path,
        default=[RESULTS_DIR / "latest.json"],
        help="results/*.json of bench.run (default: results/latest.json)",
    )
    parser.add_argument("--strict", action="store_true", help="a missed target fails too")
    parser.add_argument(
        "--record", action="store_true", help="write these runs' ratios to bench/baseline.json"
    )
    parser.add_argument(
        "--write-targets",
        type=Path,
        metavar="FILE",
        help=f"put the targets' table into FILE, between {TABLE_BEGIN} and {TABLE_END}",
    )
    args = parser.parse_args(argv)
    missing = [str(path) for path in args.results if not path.exists()]
    if missing:
        parser.error(f"no results at {', '.join(missing)}: run `make bench` first")
    run = load_run(args.results)
    baseline: dict[str, float] = (
        json.loads(BASELINE.read_text())["rps_ratio"] if BASELINE.exists() else {}
    )
    if args.record:
        return record(run, baseline, ", ".join(path.name for path in args.results))

    references = calibration(run, baseline)
    comparable = all(v.ok for v in references)
    if references:
        _print(
            "The reference endpoints (is this the baseline's machine?):",
            references,
            "comparable",
            "ANOTHER MACHINE",
        )
    against = regressions(run, baseline)
    _print(
        "Against the baseline (bench/baseline.json):"
        + ("" if comparable else " only reported: not the baseline's machine"),
        against,
        "ok",
        "REGRESSED",
    )
    not_measured = sorted(
        name
        for name in baseline
        if name not in run.summaries and not is_reference(name) and name not in run.floors
    )
    verdicts = targets(run)
    _print("Targets (beside the reference endpoints of the same run):", verdicts, "met", "missed")
    if args.write_targets is not None:
        write_targets(args.write_targets, targets_table(verdicts, args.results))
        print(f"\ntargets' table written to {args.write_targets}")

    failed = [v for v in against if not v.ok and (comparable or "failed requests" in v.value)]
    if args.strict:
        failed += [v for v in verdicts if v.ok is False]
    if not_measured:
        print(f"\nrecorded but not in this run: {', '.join(not_measured)}")
    print(f"\n{len(failed)} failed" if failed else "\nno regression")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
