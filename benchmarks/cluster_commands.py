"""``grade``, ``report spend`` and ``evaluate`` with and without ``--cluster``: seconds
and peak memory of the command's own process on a gateway log of N calls.

The log: the shipped SWE-bench Verified calls (real prompts) through ``simulate``
(uniform logging policy, test and retry events, sessions of several calls), repeated
with fresh request, session and PR ids and shifted days until it holds ``--calls``
calls. It is written twice: as one JSONL file (what one process reads today) and as a
Parquet dataset partitioned by day (what ``--cluster`` reads). Each command runs as a
subprocess (``/usr/bin/time``-style peak RSS from ``resource``; the workers' memory is
theirs, not counted here).

    python benchmarks/cluster_commands.py --calls 100000 --workers 2 [--bundle B]

Prints a Markdown table and writes ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project's features/, not benchmarks/features.py
SWEBENCH = ROOT / "data" / "swebench_verified" / "calls.parquet"


def build_log(n_calls: int, out: Path, seed: int = 0) -> dict[str, Path]:
    """The flat JSONL log, its day-partitioned Parquet copy, and the events file."""
    from features.call_log import write_call_log
    from features.call_log_dataset import write_partitioned_call_log
    from features.events import write_events
    from training.simulation.logs import TrafficConfig
    from training.simulation.run import simulate

    result = simulate(
        str(SWEBENCH),
        "uniform",
        seed=seed,
        event_style="tests",
        retry_share=0.3,
        traffic=TrafficConfig(days=7, mean_session_calls=3.0),
    )
    calls, events = result.calls, result.events
    reps = int(np.ceil(n_calls / len(calls)))
    all_calls, all_events = [], []
    for r in range(reps):
        shift = pd.Timedelta(days=7 * (r % 4))
        tag = f"-r{r}"
        c = calls.copy()
        for name in ("request_id", "session_id", "decision_id"):
            if name in c:
                c[name] = c[name].astype("string") + tag
        c["timestamp"] = (pd.to_datetime(c["timestamp"], utc=True, format="ISO8601") + shift).map(
            lambda t: t.isoformat()
        )
        e = events.copy()
        for name in ("request_id", "session_id", "pr", "event_id", "decision_id"):
            if name in e:
                e[name] = e[name].astype("string") + tag
        e["timestamp"] = pd.to_datetime(e["timestamp"], utc=True, format="ISO8601") + shift
        all_calls.append(c)
        all_events.append(e)
    calls = pd.concat(all_calls, ignore_index=True).head(n_calls)
    events = pd.concat(all_events, ignore_index=True)
    events = events[
        events["request_id"].isin(set(calls["request_id"]))
        | events["session_id"].isin(set(calls["session_id"].dropna()))
        | events["request_id"].isna()
    ]
    calls = calls.sort_values("timestamp", kind="stable", ignore_index=True)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "flat": write_call_log(calls, out / "calls.jsonl"),
        "days": out / "calls",
        "events": out / "events.jsonl",
    }
    write_partitioned_call_log(calls, paths["days"])
    write_events(events, paths["events"])
    return paths


#: Runs the command line in a child and prints its own peak RSS when it exits.
_LAUNCHER = (
    "import atexit, resource, sys\n"
    "atexit.register(lambda: print('PEAK_RSS_KIB', "
    "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))\n"
    "from training.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def run(args: list[str]) -> dict[str, float]:
    """Seconds and peak RSS (MiB) of the command's own process (not its workers)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {done.stderr[-2000:]}")
    peak = [line for line in done.stderr.splitlines() if line.startswith("PEAK_RSS_KIB")]
    kib = int(peak[-1].split()[1]) if peak else 0
    return {"seconds": round(seconds, 1), "peak_mib": round(kib / 1024)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100_000, help="calls in the log")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster workers")
    parser.add_argument("--bundle", help="also time `evaluate` with this bundle")
    parser.add_argument("--out", default="benchmarks/results/cluster", help="work folder")
    parser.add_argument("--as-of", default="2026-03-31T00:00:00Z", help="grading time")
    args = parser.parse_args(argv)
    out = Path(args.out)
    print(f"building a log of {args.calls} calls in {out}", file=sys.stderr)
    paths = build_log(args.calls, out)
    cluster = f"local:{args.workers}"
    events = ["--events", str(paths["events"]), "--as-of", args.as_of]
    jobs = {
        "grade": (
            ["grade", "--logs", str(paths["flat"]), *events, "--out", str(out / "g1.parquet")],
            ["grade", "--cluster", cluster, "--logs", str(paths["days"]), *events,
             "--out", str(out / "g2")],
        ),
        "report spend": (
            ["report", "spend", "--logs", str(paths["flat"]), *events, "--out", str(out / "s1")],
            ["report", "spend", "--cluster", cluster, "--logs", str(paths["days"]), *events,
             "--out", str(out / "s2")],
        ),
    }  # fmt: skip
    if args.bundle:
        jobs["evaluate"] = (
            ["evaluate", "--bundle", args.bundle, "--logs", str(out / "g1.parquet"),
             "--out", str(out / "e1"), "--n-bootstrap", "200"],
            ["evaluate", "--cluster", cluster, "--bundle", args.bundle, "--logs",
             str(out / "g2"), "--out", str(out / "e2"), "--n-bootstrap", "200"],
        )  # fmt: skip
    results = {"calls": args.calls, "workers": args.workers, "cpu_count": os.cpu_count()}
    for name, (one, many) in jobs.items():
        print(f"{name}: one process", file=sys.stderr)
        single = run(one)
        print(f"{name}: --cluster {cluster}", file=sys.stderr)
        distributed = run(many)
        results[name] = {"one_process": single, "cluster": distributed}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"| command | calls | one process: s | peak MiB | --cluster {cluster}: s "
        "| client peak MiB |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name in jobs:
        one, many = results[name]["one_process"], results[name]["cluster"]
        print(
            f"| {name} | {args.calls:,} | {one['seconds']} | {one['peak_mib']} "
            f"| {many['seconds']} | {many['peak_mib']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
