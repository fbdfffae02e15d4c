"""`benchmarks/bandit_cost.py` end to end on one SWE-bench seed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bandit_cost_benchmark_prints_both_weightings_per_logger() -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bandit_cost.py"),
            *("--datasets", "swebench", "--seeds", "1"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [line for line in run.stdout.splitlines() if line.startswith("| swebench")]
    assert [r.split("|")[2:4] for r in rows] == [
        [" long ", " unweighted "],
        [" long ", " ips "],
        [" hard ", " unweighted "],
        [" hard ", " ips "],
    ]
    for row in rows:
        bias, log_error = (float(cell) for cell in row.split("|")[4:6])
        assert 0 <= bias < 1 and 0 < log_error < 3
