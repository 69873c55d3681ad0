"""bench.check: the verdicts ``make bench`` ends with (no load is run here; runs are made up)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import check


def summary(target: str, ratio: float, *, errors: int = 0, p99_ms: float = 10.0) -> dict[str, Any]:
    return {
        "target": target,
        "rps_ratio": ratio,
        "p50_ratio": 1.0,
        "p99_ratio": 1.0,
        "p99_ms": p99_ms,
        "errors": errors,
        "bad_status": 0,
        "exhausted": 0,
    }


def write_run(path: Path, *summaries: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"summary": [summary("floor", 1.0), *summaries]}))
    return path


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


def test_missed_issue_targets_fail_only_when_strict(tmp_path: Path, baseline: Path) -> None:
    run = write_run(
        tmp_path / "run.json",
        summary("challenge/memory", 0.5),
        summary("challenge/redis", 0.61, p99_ms=16.0),
    )

    verdicts = {v.name: v for v in check.issue_targets(check.load_summaries(run))}
    assert not verdicts["challenge, memory store"].ok
    assert verdicts["challenge, Redis store + limiter"].ok
    assert verdicts["challenge p99, every store"].value == "worst challenge/redis 16.0 ms"
    assert not verdicts["challenge p99, every store"].ok
    assert check.main([str(run)]) == 0
    assert check.main([str(run), "--strict"]) == 1


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
    assert "1k vs 1M credentials" in out
