"""`benchmarks/quality_splits.py` end to end on a tiny cut of the shipped RouteProfile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quality_splits_reports_paired_areas_and_interval_coverage(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "quality_splits.py"),
            *("--datasets", "routeprofile", "--splits", "2", "--quick", "--out", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads((tmp_path / "quality_splits-quick.json").read_text())["routeprofile"]
    assert result["n_splits"] == 2
    assert [s["split"] for s in result["splits"]] == [0, 1]
    for split in result["splits"]:
        selected, logistic = split["routers"]["selected"], split["routers"]["logistic"]
        assert logistic["label"].startswith("logistic")
        assert 0 < selected["area"] <= 1 and 0 < logistic["area"] <= 1
        for target in (selected["target"], selected["target_plain"]):
            low, high = target["ci95_quality"]
            assert low <= high
            assert target["covers_quality"] == (low <= target["test_quality"] <= high)
        assert selected["target_plain"]["reference_margin"] == 0.0
        assert set(split["cost_errors"]) == set(result["cost_errors"])
    wins = result["wins_vs_logistic"] + result["ties_vs_logistic"]
    assert 0 <= wins <= 2
    assert "| value_usd, 1 halving (before) |" in run.stdout and "| default |" in run.stdout
    assert (tmp_path / "quality_splits-quick.md").read_text().startswith("### routeprofile")
