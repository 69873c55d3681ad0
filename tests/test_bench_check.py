"""bench.check: the verdicts ``make bench`` ends with (no load is run here; runs are made up)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bench import check


def summary(
    target: str, ratio: float, *, errors: int = 0, rps: float = 1000.0, p99_ms: float = 10.0
) -> dict[str, Any]:
    return {
        "target": target,
        "rps": rps,
        "rps_ratio": ratio,
        "p50_ratio": 1.0,
        "p99_ratio": 1.0,
        "p99_ms": p99_ms,
        "errors": errors,
        "bad_status": 0,
        "exhausted": 0,
    }


def write_run(
    path: Path,
    *summaries: dict[str, Any],
    rounds: dict[str, list[tuple[float, float]]] | None = None,
) -> Path:
    """A results file; ``rounds``: per target, (req/s, p99 ms) of each round's 2-second load."""
    loads = {
        name: [{"requests": rps * 2, "seconds": 2.0, "p99_ms": p99} for rps, p99 in measured]
        for name, measured in (rounds or {}).items()
    }
    path.write_text(json.dumps({"summary": [summary("floor", 1.0), *summaries], "rounds": loads}))
    return path


def verdicts(*paths: Path) -> dict[str, check.Verdict]:
    return {v.name: v for v in check.targets(check.load_run(paths))}


@pytest.fixture
def baseline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    recorded = tmp_path / "baseline.json"
    recorded.write_text(
        json.dumps({"rps_ratio": {"challenge/memory": 0.5, "ref/naive": 0.98, "floor": 1.0}})
    )
    monkeypatch.setattr(check, "BASELINE", recorded)
    return recorded


def test_a_ratio_within_the_tolerance_of_the_baseline_passes(
    tmp_path: Path, baseline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = write_run(tmp_path / "run.json", summary("challenge/memory", 0.5 * (1 - check.TOLERANCE)))

    assert check.main([str(run)]) == 0
    assert "no regression" in capsys.readouterr().out


def test_a_ratio_below_the_tolerance_is_a_regression(
    tmp_path: Path, baseline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = write_run(tmp_path / "run.json", summary("challenge/memory", 0.42))

    assert check.main([str(run)]) == 1
    assert "challenge/memory  0.42x" in capsys.readouterr().out


def test_failed_requests_fail_the_check_whatever_the_ratio(tmp_path: Path, baseline: Path) -> None:
    run = write_run(tmp_path / "run.json", summary("challenge/memory", 0.6, errors=3))

    assert check.main([str(run)]) == 1


def test_on_another_machine_regressions_are_only_reported(
    tmp_path: Path, baseline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A reference endpoint far from its recorded ratio: not the baseline's machine."""
    run = write_run(
        tmp_path / "run.json", summary("ref/naive", 0.8), summary("challenge/memory", 0.4)
    )

    assert check.main([str(run)]) == 0
    out = capsys.readouterr().out
    assert "ref/naive  0.80x  recorded 0.98x  ANOTHER MACHINE" in out
    assert "only reported: not the baseline's machine" in out
    assert "challenge/memory  0.40x" in out


def test_failed_requests_of_the_floor_fail_the_check_on_any_machine(
    tmp_path: Path, baseline: Path
) -> None:
    broken_floor = summary("floor", 1.0, errors=12)
    run = tmp_path / "run.json"
    run.write_text(
        json.dumps({"summary": [broken_floor, summary("ref/naive", 0.5), summary("x", 0.5)]})
    )

    assert check.main([str(run)]) == 1


def test_a_target_without_a_baseline_is_reported_as_new_and_fails_only_on_failed_requests(
    tmp_path: Path, baseline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = write_run(tmp_path / "run.json", summary("token/refresh/memory", 0.2))

    assert check.main([str(run)]) == 0
    assert "token/refresh/memory  0.20x  new, no baseline  ok" in capsys.readouterr().out

    broken = write_run(tmp_path / "broken.json", summary("token/refresh/memory", 0.2, errors=5))
    assert check.main([str(broken)]) == 1


def test_a_run_names_its_floor(tmp_path: Path, baseline: Path) -> None:
    """The credentials benchmark's floor is the 1,000-credential login, not a regression."""
    run = tmp_path / "credentials.json"
    run.write_text(
        json.dumps(
            {
                "settings": {"floor": "token, 1,000 credentials"},
                "summary": [
                    summary("token, 1,000 credentials", 1.0),
                    summary("token, 1,000,000 credentials", 0.95),
                ],
            }
        )
    )

    verdicts = check.regressions(check.load_run([run]), {})
    assert [v.name for v in verdicts] == ["token, 1,000,000 credentials"]


MEMORY_RPS = "challenge/memory req/s vs ref/naive+flask-limiter"
MEMORY_P99 = "challenge/memory p99 vs ref/naive+flask-limiter"
LOGIN_RPS = "token/redis+postgres req/s vs ref/naive-token"
LOGIN_P99 = "token/redis+postgres p99 vs ref/naive-token"


def test_targets_are_medians_of_per_round_ratios_to_their_reference(tmp_path: Path) -> None:
    """Round by round the challenge makes 0.95, 0.80 and 0.92 of its reference's req/s: the
    median, 0.92, meets 0.90 (the ratio of the medians, 1,900 / 2,000, would say 0.95)."""
    run = write_run(
        tmp_path / "run.json",
        summary("challenge/memory", 0.5),
        summary("ref/naive+flask-limiter", 0.6),
        rounds={
            "challenge/memory": [(1900.0, 11.0), (1600.0, 13.0), (2300.0, 10.0)],
            "ref/naive+flask-limiter": [(2000.0, 10.0), (2000.0, 10.0), (2500.0, 10.0)],
        },
    )

    found = verdicts(run)
    assert found[MEMORY_RPS] == check.Verdict(
        MEMORY_RPS, "0.92x (per-round median of 3)", ">= 0.90x", True
    )
    assert found[MEMORY_P99] == check.Verdict(
        MEMORY_P99, "1.10x (per-round median of 3)", "<= 1.20x", True
    )


def test_a_target_below_its_share_of_the_reference_or_above_its_p99_is_missed(
    tmp_path: Path,
) -> None:
    run = write_run(
        tmp_path / "run.json",
        summary("token/redis+postgres", 0.1),
        summary("ref/naive-token", 0.2),
        rounds={
            "token/redis+postgres": [(590.0, 130.0), (580.0, 125.0)],
            "ref/naive-token": [(1000.0, 100.0), (1000.0, 100.0)],
        },
    )

    found = verdicts(run)
    assert found[LOGIN_RPS].value == "0.58x (per-round median of 2)"
    assert found[LOGIN_RPS].ok is False
    assert found[LOGIN_P99].value == "1.27x (per-round median of 2)"
    assert found[LOGIN_P99].ok is False


def test_a_reference_from_another_run_is_compared_by_its_medians(tmp_path: Path) -> None:
    """Rounds of two runs do not pair up: the ratio is of the summaries' medians."""
    ours = write_run(
        tmp_path / "ours.json",
        summary("token/redis+postgres", 0.1, rps=650.0, p99_ms=110.0),
        rounds={"token/redis+postgres": [(650.0, 110.0)]},
    )
    theirs = write_run(
        tmp_path / "theirs.json",
        summary("ref/naive-token", 0.2, rps=1000.0, p99_ms=100.0),
        rounds={"ref/naive-token": [(1000.0, 100.0)]},
    )

    found = verdicts(ours, theirs)
    assert found[LOGIN_RPS] == check.Verdict(
        LOGIN_RPS, "0.65x (ratio of medians)", ">= 0.60x", True
    )
    assert found[LOGIN_P99].value == "1.10x (ratio of medians)"
    assert found[LOGIN_P99].ok


def test_a_target_without_its_reference_in_the_run_is_not_measured(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run.json", summary("token/memory", 0.2))

    found = verdicts(run)
    assert found["token/memory req/s vs ref/naive-token"].value == "not measured"
    assert found["token/memory req/s vs ref/naive-token"].ok is None


def test_missed_targets_fail_only_when_strict(tmp_path: Path, baseline: Path) -> None:
    """A run of one missed target: the unmeasured ones fail nothing, even with --strict."""
    run = write_run(
        tmp_path / "run.json",
        summary("challenge/memory", 0.5),
        summary("ref/naive+flask-limiter", 0.6),
        rounds={
            "challenge/memory": [(1500.0, 10.0)],
            "ref/naive+flask-limiter": [(2000.0, 10.0)],
        },
    )

    assert check.main([str(run)]) == 0
    assert check.main([str(run), "--strict"]) == 1


def test_the_targets_table_is_written_between_its_markers(tmp_path: Path, baseline: Path) -> None:
    run = write_run(
        tmp_path / "final.json",
        summary("challenge/memory", 0.5),
        summary("ref/naive+flask-limiter", 0.6),
        rounds={
            "challenge/memory": [(1900.0, 13.0)],
            "ref/naive+flask-limiter": [(2000.0, 10.0)],
        },
    )
    results = tmp_path / "RESULTS.md"
    results.write_text(
        f"# Results\n\n{check.TABLE_BEGIN}\nplaceholder\n{check.TABLE_END}\n\nThe rest.\n"
    )

    assert check.main([str(run), "--write-targets", str(results)]) == 0

    text = results.read_text()
    assert "placeholder" not in text
    assert text.startswith(f"# Results\n\n{check.TABLE_BEGIN}\n")
    assert text.endswith(f"{check.TABLE_END}\n\nThe rest.\n")
    assert f"| {MEMORY_RPS} | >= 0.90x | 0.95x (per-round median of 1) | yes |" in text
    assert f"| {MEMORY_P99} | <= 1.20x | 1.30x (per-round median of 1) | **no** |" in text
    assert "| token/memory req/s vs ref/naive-token | >= 0.80x | not measured | - |" in text

    results.write_text("no markers\n")
    with pytest.raises(SystemExit, match=re.escape(f"no {check.TABLE_BEGIN}")):
        check.main([str(run), "--write-targets", str(results)])


def test_record_keeps_other_targets_and_takes_the_runs_ratios(
    tmp_path: Path, baseline: Path
) -> None:
    run = write_run(
        tmp_path / "run.json",
        summary("challenge/memory", 0.61),
        summary("before: challenge/memory", 0.5),
    )

    assert check.main([str(run), "--record"]) == 0

    recorded = json.loads(baseline.read_text())
    assert recorded["rps_ratio"]["challenge/memory"] == 0.61
    assert recorded["rps_ratio"]["ref/naive"] == 0.98
    assert "before: challenge/memory" not in recorded["rps_ratio"]
    assert recorded["recorded_from"] == "run.json"


def test_record_refuses_a_run_with_failed_requests(tmp_path: Path, baseline: Path) -> None:
    before = baseline.read_text()
    run = write_run(tmp_path / "run.json", summary("challenge/memory", 0.61, errors=1))

    assert check.main([str(run), "--record"]) == 1
    assert baseline.read_text() == before


def test_a_missing_results_file_is_a_usage_error_not_a_traceback(
    tmp_path: Path, baseline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        check.main([str(tmp_path / "latest.json")])

    assert exited.value.code == 2
    assert "run `make bench` first" in capsys.readouterr().err


def test_the_committed_results_pass_against_the_committed_baseline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """bench/RESULTS.md quotes results/final.json and results/credentials.json; the baseline
    was recorded from them and must stay consistent with them."""
    results = check.RESULTS_DIR

    assert check.main([str(results / "final.json"), str(results / "credentials.json")]) == 0
    out = capsys.readouterr().out
    assert "no baseline" not in out
    assert "login, 1,000 vs 1,000,000 credentials" in out


def test_every_target_and_its_reference_are_loaded_by_the_benchmark() -> None:
    """The names bench.check looks for are targets of bench.run, and a target named on the
    command line brings its reference endpoint (and the floor) into the run."""
    from bench import run

    names = {target.name for target in run.TARGETS}
    assert set(check.THROUGHPUT) <= set(run.REFERENCES)
    assert set(run.REFERENCES) | set(run.REFERENCES.values()) <= names
    selected = run.select_targets("token/memory,challenge/redis", baseline=False)
    assert [target.name for target in selected] == [
        "floor",
        "challenge/redis",
        "token/memory",
        "ref/naive+redis+flask-limiter",
        "ref/naive-token",
    ]
