"""`benchmarks/spend.py` end to end on a tiny size: synthetic calls written to
Parquet, DuckDB and the pandas baseline each in a child process, their totals agreeing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_spend_benchmark_reports_seconds_rss_and_the_ratio(tmp_path: Path) -> None:
    out = tmp_path / "spend.json"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.spend", "--calls", "3000,5000", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(out.read_text())
    engines = [(r["engine"], r["calls"]) for r in report["rows"]]
    assert engines == [("duckdb", 3000), ("duckdb", 5000), ("pandas", 3000)]
    for row in report["rows"]:
        assert row["seconds"] > 0 and row["peak_rss_mb"] > 0
        assert row["total"]["calls"] == row["calls"]
    duck, _, pandas = report["rows"]
    assert duck["total"]["spend_usd"] == pytest.approx(pandas["total"]["spend_usd"])
    assert duck["cold_cache_resends"] == pandas["cold_cache_resends"] > 0
    assert report["pandas_over_duckdb"] == pytest.approx(pandas["seconds"] / duck["seconds"])
    assert "| duckdb | 5,000 |" in run.stdout
    assert "pandas / DuckDB on 3,000 calls" in run.stdout


def test_synthetic_calls_have_the_promised_shape() -> None:
    from benchmarks.spend import MAX_TURNS, N_TEAMS, N_USERS, synthetic_calls

    table = synthetic_calls(20_000, seed=1)
    frame = table.to_pandas()
    assert len(frame) == 20_000 and frame["request_id"].is_unique
    assert frame["user"].nunique() == N_USERS and frame["team"].nunique() == N_TEAMS
    turns = frame.groupby("session_id", observed=True).size()
    assert turns.min() >= 1 and turns.max() <= MAX_TURNS
    assert (
        frame["cached_input_tokens"] + frame["cache_write_tokens"] <= frame["input_tokens"]
    ).all()
    assert 0 < frame["cached_input_tokens"].sum() < frame["input_tokens"].sum()
    graded = frame["outcome"].notna().mean()
    assert np.isclose(graded, 0.6, atol=0.03)
