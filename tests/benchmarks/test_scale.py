"""`benchmarks/scale.py` on a tiny size: the logs it builds, and one command that
trains in one process and on a 2-worker LocalCluster and prints the table.

Times and memory are printed, never asserted beyond being positive: the tests share
a busy machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from features.call_log_dataset import open_call_log_dataset

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "scale.py"
sys.path.insert(0, str(ROOT / "benchmarks"))

from scale import MIN_DAYS, build_calls, peak_rss_mib, table  # noqa: E402

pytest.importorskip("distributed")


def test_built_calls_are_distinct_prompts_partitioned_by_day(tmp_path):
    root = build_calls(500, tmp_path / "calls")
    dataset = open_call_log_dataset(root)
    assert dataset.n_partitions == MIN_DAYS
    assert all(p.day is not None for p in dataset.partitions)
    frame = pd.read_parquet(root)
    assert len(frame) == 500
    assert frame["prompt_id"].nunique() == 500 and frame["request_id"].nunique() == 500
    assert frame["propensity"].between(0, 1, inclusive="right").all()
    assert frame["outcome"].notna().all()
    # Built again: kept, not rewritten.
    marker = root.with_name("calls.done")
    stamp = marker.stat().st_mtime_ns
    build_calls(500, root)
    assert marker.stat().st_mtime_ns == stamp


def test_peak_memory_is_read_from_the_kernel():
    assert peak_rss_mib() > 10


def test_table_gives_cluster_ratios_against_the_single_run():
    runs = [
        {
            "mode": "single",
            "n_calls": 1000,
            "seconds": 10.0,
            "driver_peak_mib": 400.0,
            "worker_peak_mib": [],
            "chosen": "x",
        },
        {
            "mode": "cluster",
            "n_calls": 1000,
            "seconds": 15.0,
            "driver_peak_mib": 200.0,
            "worker_peak_mib": [300.0, 100.0],
            "chosen": "x",
        },
    ]
    lines = table(runs).splitlines()
    assert lines[1].split()[:3] == ["1000", "single", "10.0"]
    assert lines[2].split()[-3:] == ["1.50", "0.75", "x"]


def test_one_command_trains_both_ways_and_prints_the_table(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--sizes",
            "300",
            "--learners",
            "logistic-C0.003",
            "--workdir",
            str(tmp_path),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    results = json.loads(lines[-1])
    assert [r["mode"] for r in results] == ["single", "cluster"]
    single, cluster = results
    assert single["n_calls"] == cluster["n_calls"] == 300
    assert single["chosen"] == cluster["chosen"] == "logistic-C0.003"
    assert single["cv_log_loss"] == pytest.approx(cluster["cv_log_loss"], abs=1e-9)
    assert len(cluster["worker_peak_mib"]) == 2 and min(cluster["worker_peak_mib"]) > 0
    assert single["seconds"] > 0 and single["worker_peak_mib"] == []
    assert lines[0].split()[:3] == ["calls", "mode", "seconds"]
