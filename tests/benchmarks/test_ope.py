"""`benchmarks/ope.py` end to end on a small SWE-bench run: a bundle trained on half
the prompts, every logging policy, two seeds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "ope.py"


def test_ope_benchmark_reports_bias_rmse_and_coverage(tmp_path: Path) -> None:
    out = tmp_path / "ope.json"
    run = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--datasets",
            "swebench",
            "--quick",
            "--seeds",
            "2",
            "--n-bootstrap",
            "50",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(out.read_text())
    (dataset,) = report["datasets"]
    assert dataset["dataset"] == "swebench"
    rows = dataset["rows"]
    # 4 logging policies x 4 estimators x (quality, cost)
    assert len(rows) == 32
    assert {r["logging"] for r in rows} == set(report["logging_policies"])
    assert {r["estimator"] for r in rows} == {"dr", "snips", "ips", "dm"}
    for row in rows:
        assert 0.0 <= row["coverage"] <= 1.0
        assert row["rmse"] >= abs(row["bias"]) - 1e-12
    # DM does not move with the logging policy: its bias is the same for all of them
    dm = {r["bias"] for r in rows if r["estimator"] == "dm" and r["quantity"] == "quality"}
    assert len(dm) == 1
    assert "| swebench | uniform |" in run.stdout
