"""Time and peak memory of `train` against the number of calls, in one process and
on a 2-worker Dask LocalCluster (issue 13, "Beyond one machine").

The call logs are built from real prompts: every row of the shipped RouteProfile
and SWE-bench logs (prompt, model, graded outcome, tokens, cost) is a template, and
call ``i`` copies a template drawn at random, with its prompt given a distinct
suffix (a ticket number and a user), so every call is a distinct ``prompt_id``:
the gateway log of the issue, one call per prompt, each logged with the
propensity of a uniform logger over the models that answered that prompt. Calls
spread over days and are written as a day-partitioned Parquet dataset
(`features.call_log_dataset.write_partitioned_call_log`), about
`CALLS_PER_DAY` calls a day (at least `MIN_DAYS` days).

Each (size, mode) runs `training.train.train` in a fresh child process, so peaks do
not carry over: ``single`` is plain `train` (everything in the child), ``cluster``
starts a ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`` in the
child and trains with ``--cluster`` pointed at it. Peak memory is the kernel's
high-water mark of resident memory (``VmHWM`` in ``/proc/<pid>/status``) of the
child and, on a cluster, of each worker process, read at the end of the run. Time
is the wall time of `train` (cluster start-up excluded, printed apart).

Prints one table, with each cluster run's time and peak memory as a ratio of the
single-process run of the same size, and the time per call so that growth faster
than linear shows. Reproduce::

    .venv/bin/python benchmarks/scale.py --sizes 10000,100000,1000000 --learners lightgbm-small

The default learner is ``lightgbm-small``: the setting `train --cluster` fits with
``lightgbm.dask``; selection runs on a sample of ``--cv-max-prompts`` prompts
either way.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SOURCES = (
    ROOT / "data" / "routeprofile" / "calls.jsonl.gz",
    ROOT / "data" / "swebench_verified" / "calls.parquet",
)
#: Calls written per day partition (before the minimum number of days).
CALLS_PER_DAY = 50_000
#: Fewest day partitions, so both workers of the cluster have work.
MIN_DAYS = 4
MODES = ("single", "cluster")
COLUMNS = (
    "request_id",
    "prompt_id",
    "prompt",
    "model",
    "user",
    "task",
    "timestamp",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "outcome",
    "propensity",
)


def templates() -> pd.DataFrame:
    """Every shipped call, with the logging propensity of a uniform choice among the
    models that answered its prompt."""
    frames = []
    for path in SOURCES:
        frame = pd.read_json(path, lines=True) if path.suffix == ".gz" else pd.read_parquet(path)
        n_models = frame.groupby("prompt_id")["model"].transform("nunique")
        frame = frame.assign(propensity=1.0 / n_models)
        frames.append(frame[[c for c in COLUMNS if c in frame]])
    return pd.concat(frames, ignore_index=True)


def build_calls(n_calls: int, root: Path, seed: int = 0) -> Path:
    """Write ``n_calls`` distinct-prompt calls as a day-partitioned dataset under ``root``.

    Kept when ``root`` already holds a finished dataset of that size (marked by a
    ``<root>.done`` file next to it, so the folder holds Parquet files only).
    """
    from features.call_log_dataset import write_partitioned_call_log

    done = root.with_name(root.name + ".done")
    if done.exists() and done.read_text().strip() == str(n_calls):
        return root
    base = templates()
    rng = np.random.default_rng(seed)
    n_days = max(MIN_DAYS, -(-n_calls // CALLS_PER_DAY))
    for day in range(n_days):
        index = np.arange(day, n_calls, n_days)  # call i falls on day i % n_days
        rows = base.iloc[rng.integers(0, len(base), len(index))].reset_index(drop=True)
        users = [f"user-{i % 997:03d}" for i in index]
        rows["prompt"] = [
            f"{p}\n\n(ticket {i:07d}, {u})"
            for p, i, u in zip(rows["prompt"], index, users, strict=True)
        ]
        rows["prompt_id"] = [f"{p}~{i}" for p, i in zip(rows["prompt_id"], index, strict=True)]
        rows["request_id"] = [f"scale-{i}" for i in index]
        rows["user"] = users
        stamp = pd.Timestamp("2026-03-01", tz="UTC") + pd.Timedelta(days=day)
        rows["timestamp"] = (stamp + pd.Timedelta(hours=12)).isoformat()
        write_partitioned_call_log(rows, root)
    done.write_text(str(n_calls))
    return root


def peak_rss_mib(pid: int | str = "self") -> float:
    """High-water mark of resident memory of a process, MiB (Linux ``VmHWM``)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc: peak memory needs Linux")


def _worker_peak() -> float:
    return peak_rss_mib()


def run_one(logs: str, out: str, learners: list[str], mode: str, cv_max_prompts: int) -> dict:
    """Train once in this process; time and peak memory (the child side)."""
    from features.spec import FeatureSpec
    from training.cli import learner_configs
    from training.train import TrainConfig, train

    config = TrainConfig(
        logs=[logs],
        out=out,
        learners=learner_configs(learners),
        spec=FeatureSpec.for_encoder("static"),
        cv_max_prompts=cv_max_prompts,
        track=False,
    )
    result: dict = {"mode": mode}
    if mode == "single":
        start = time.perf_counter()
        trained = train(config)
        result["seconds"] = time.perf_counter() - start
        result["worker_peak_mib"] = []
    else:
        from distributed import Client, LocalCluster

        start = time.perf_counter()
        with LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            result["startup_seconds"] = time.perf_counter() - start
            config.cluster = cluster.scheduler_address
            start = time.perf_counter()
            trained = train(config)
            result["seconds"] = time.perf_counter() - start
            with Client(cluster) as client:
                result["worker_peak_mib"] = sorted(client.run(_worker_peak).values())
    result["driver_peak_mib"] = peak_rss_mib()
    training = trained.bundle.manifest["training"]
    result.update(
        n_calls=training["n_calls"],
        n_prompts=training["n_prompts"],
        chosen=training["selection"]["chosen"],
        cv_log_loss=trained.metrics.get("cv_log_loss"),
    )
    return result


def measure(size: int, mode: str, args: argparse.Namespace, work: Path) -> dict:
    """`run_one` in a fresh child process."""
    logs = build_calls(size, work / f"calls-{size}")
    out = work / f"bundle-{size}-{mode}"
    command = [
        sys.executable,
        __file__,
        "--run-one",
        json.dumps(
            {
                "logs": str(logs),
                "out": str(out),
                "learners": args.learners.split(","),
                "mode": mode,
                "cv_max_prompts": args.cv_max_prompts,
            }
        ),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=args.timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} run of {size} calls failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: list[dict]) -> str:
    """The scale table: one line per run, cluster runs as ratios of single ones."""
    single = {r["n_calls"]: r for r in results if r["mode"] == "single"}
    lines = [
        f"{'calls':>9} {'mode':>8} {'seconds':>9} {'us/call':>8} {'driver MiB':>11} "
        f"{'worker MiB (each)':>18} {'max MiB':>8} {'x time':>7} {'x max mem':>9} chosen",
    ]
    for r in sorted(results, key=lambda r: (r["n_calls"], MODES.index(r["mode"]))):
        peak = max([r["driver_peak_mib"], *r["worker_peak_mib"]])
        base = single.get(r["n_calls"])
        ratio_t = ratio_m = ""
        if base is not None and r["mode"] == "cluster":
            ratio_t = f"{r['seconds'] / base['seconds']:.2f}"
            ratio_m = f"{peak / base['driver_peak_mib']:.2f}"
        workers = "/".join(f"{w:.0f}" for w in r["worker_peak_mib"]) or "-"
        lines.append(
            f"{r['n_calls']:>9} {r['mode']:>8} {r['seconds']:>9.1f} "
            f"{1e6 * r['seconds'] / r['n_calls']:>8.0f} {r['driver_peak_mib']:>11.0f} "
            f"{workers:>18} {peak:>8.0f} {ratio_t:>7} {ratio_m:>9} {r['chosen']}"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Time and peak memory of `train` against the number of calls, in one "
        "process and on a 2-worker Dask LocalCluster.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated numbers of calls")
    parser.add_argument(
        "--learners",
        default="lightgbm-small",
        help="learner settings to select among (train --learner syntax)",
    )
    parser.add_argument(
        "--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}"
    )
    parser.add_argument(
        "--cv-max-prompts", type=int, default=4000, help="as train --cv-max-prompts"
    )
    parser.add_argument(
        "--workdir",
        default=None,
        help="where the datasets and bundles go (kept between runs); default: a temp folder",
    )
    parser.add_argument(
        "--timeout", type=float, default=7200.0, help="seconds allowed per training run"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument("--run-one", default=None, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.run_one:
        print(json.dumps(run_one(**json.loads(args.run_one))))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    modes = args.modes.split(",")
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise SystemExit(f"--modes: unknown {unknown}; known: {list(MODES)}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        results = []
        for size in sizes:
            for mode in modes:
                print(f"training on {size} calls, {mode} ...", file=sys.stderr, flush=True)
                results.append(measure(size, mode, args, work))
                r = results[-1]
                print(
                    f"  {r['seconds']:.1f} s, driver peak {r['driver_peak_mib']:.0f} MiB, "
                    f"workers {r['worker_peak_mib']}",
                    file=sys.stderr,
                    flush=True,
                )
    print(table(results))
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
