"""Quality benchmark: the whole protocol, on public data, through the command line.

    .venv/bin/python benchmarks/quality.py [--quick] [--datasets swebench,alpacaeval]

For each dataset:

1. build a call log (``build/benchmarks/<dataset>/calls.parquet``);
2. ``outcome-router split`` it into train and test, grouped by ``prompt_id``;
3. ``outcome-router train --learner NAME --no-mlflow`` for every registered learner
   (``training.learners.LEARNERS``, read at run time), and once with no ``--learner``:
   the default selection, "selected";
4. ``outcome-router evaluate`` the selected bundle on the test prompts with
   ``--compare`` every learner's bundle;
5. print one table: every learner, the baselines (random, cheapest, strongest), the
   single models and the oracle, with quality and cost (at the default policy for
   routers), area, savings at parity and at 95%, quality at a quarter of the best single
   model's cost, and APGR for the pair (cheapest, best single).

Tables go to ``build/benchmarks/quality.json`` and ``quality.md`` (``quality-quick.*``
with ``--quick``); every report to ``build/benchmarks/<dataset>[-quick]/eval/report.html``.
Seeds are fixed (split, subsample, training), so a rerun gives the same table.
``--quick`` uses fewer prompts (and, for AlpacaEval, fewer models) and 3
cross-validation folds, to finish in a few minutes.

Datasets: ``benchmarks/datasets.py`` (read from ``../shared/data``, never copied into the
repository).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on sys.path, and a sibling benchmark module
# (benchmarks/features.py) would shadow the project's `features` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from benchmarks.datasets import DATASETS  # noqa: E402

SEED = 0
TRAIN_FRACTION = 0.7

COLUMNS = (
    ("quality", "quality"),
    ("cost_usd", "cost"),
    ("area", "area"),
    ("savings_at_parity", "save@parity"),
    ("savings_at_95", "save@95%"),
    ("quality_at_quarter_cost", "q@25%cost"),
    ("apgr", "APGR"),
)


@dataclass(frozen=True)
class Run:
    """One finished command: its exit code, wall time and the tail of its stderr."""

    code: int
    seconds: float
    stderr_tail: str


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cli(args: Sequence[str], log_path: Path) -> Run:
    """Run ``outcome-router ARGS`` (this venv's), stderr to ``log_path``; stdout kept."""
    exe = Path(sys.executable).with_name("outcome-router")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "training.cli"]
    start = time.perf_counter()
    with open(log_path, "w") as err:
        proc = subprocess.run(
            [*command, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True
        )
    seconds = time.perf_counter() - start
    tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
    log_path.with_suffix(".out").write_text(proc.stdout)
    return Run(proc.returncode, seconds, " | ".join(tail))


def learner_names() -> list[str]:
    """Registered learners, read at run time (helpers keep adding some)."""
    from training.learners import LEARNERS

    return sorted(LEARNERS)


def run_dataset(name: str, out: Path, quick: bool, seed: int) -> dict[str, Any]:
    """Build, split, train every learner and the selection, evaluate; return the result."""
    folder = out / (f"{name}-quick" if quick else name)
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    calls = DATASETS[name](quick, seed)
    calls_path = folder / "calls.parquet"
    calls.to_parquet(calls_path, index=False)
    say(
        f"[{name}] {calls['prompt_id'].nunique()} prompts x {calls['model'].nunique()} "
        f"models, {len(calls)} calls -> {calls_path}"
    )
    split = cli(
        [
            "split",
            "--logs",
            str(calls_path),
            "--out",
            str(folder / "split"),
            "--train-fraction",
            str(TRAIN_FRACTION),
            "--seed",
            str(seed),
        ],
        folder / "logs" / "split.err",
    )
    if split.code != 0:
        raise RuntimeError(f"[{name}] split failed: {split.stderr_tail}")
    train_logs, test_logs = folder / "split" / "train.parquet", folder / "split" / "test.parquet"

    extra = ["--folds", "3"] if quick else []
    runs: dict[str, dict[str, Any]] = {}
    for learner in [None, *learner_names()]:
        label = learner or "selected"
        bundle = folder / "bundles" / label
        args = ["train", "--logs", str(train_logs), "--out", str(bundle), "--no-mlflow"]
        args += ["--seed", str(seed), *extra]
        if learner:
            args += ["--learner", learner]
        say(f"[{name}] train {label} ...")
        run = cli(args, folder / "logs" / f"train-{label}.err")
        runs[label] = {"code": run.code, "seconds": round(run.seconds, 1), "bundle": str(bundle)}
        if run.code != 0:
            runs[label]["error"] = run.stderr_tail
            say(f"[{name}] train {label} failed ({run.seconds:.0f}s): {run.stderr_tail}")
        else:
            say(f"[{name}] train {label} done in {run.seconds:.0f}s")
    if runs["selected"]["code"] != 0:
        raise RuntimeError(f"[{name}] the default training failed: {runs['selected']['error']}")

    compared = [label for label in runs if label != "selected" and runs[label]["code"] == 0]
    args = ["evaluate", "--bundle", runs["selected"]["bundle"], "--logs", str(test_logs)]
    args += ["--out", str(folder / "eval")]
    if compared:
        args += ["--compare", *[runs[label]["bundle"] for label in compared]]
    say(f"[{name}] evaluate selected, comparing {', '.join(compared) or 'nothing'} ...")
    evaluation = cli(args, folder / "logs" / "evaluate.err")
    if evaluation.code != 0:
        raise RuntimeError(f"[{name}] evaluate failed: {evaluation.stderr_tail}")
    summary = json.loads((folder / "eval" / "metrics.json").read_text())
    rows = table_rows(summary, runs)
    return {
        "dataset": name,
        "quick": quick,
        "seed": seed,
        "n_calls": len(calls),
        "n_prompts": int(calls["prompt_id"].nunique()),
        "n_test_prompts": summary["n_prompts"],
        "candidates": summary["candidates"],
        "default_pair": summary.get("default_pair"),
        "best_single": summary["best_single"],
        "rows": rows,
        "train_runs": runs,
        "evaluate_seconds": round(evaluation.seconds, 1),
        "report": str(folder / "eval" / "report.html"),
        "wall_seconds": round(time.perf_counter() - start, 1),
    }


def table_rows(summary: dict[str, Any], runs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Routers (selected first, then each learner), baselines, single models, oracle."""
    by_bundle = {Path(c["bundle"]).name: c for c in summary.get("comparisons", [])}
    main = dict(summary["table"][0], name=summary["label"])
    rows = [main]
    for label, run in runs.items():
        if label == "selected":
            continue
        comp = by_bundle.get(label)
        if comp is None:
            rows.append({"name": label, "kind": "router", "error": run.get("error", "missing")})
        else:
            rows.append(dict(comp["row"], name=comp["label"]))
    rest = summary["table"][1:]
    rows += [r for r in rest if r["kind"] == "baseline"]
    rows += [r for r in rest if r["kind"] == "single"]
    rows += [r for r in rest if r["kind"] == "oracle"]
    return rows


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "n/a"
    if key in ("savings_at_parity", "savings_at_95"):
        return f"{100 * value:.1f}%"
    if key == "cost_usd":
        return f"${value:.4g}"
    return f"{value:.3f}"


def markdown_table(result: dict[str, Any]) -> str:
    """One dataset's table in Markdown (also printed)."""
    best = result["best_single"]
    pair = result.get("default_pair") or ["n/a", "n/a"]
    head = (
        f"### {result['dataset']}{' (quick)' if result['quick'] else ''}\n\n"
        f"{result['n_test_prompts']} test prompts ({result['n_prompts']} in all, "
        f"{TRAIN_FRACTION:.0%} to training), {len(result['candidates'])} candidates; best "
        f"single: {best['name']} (quality {best['quality']:.3f}, ${best['cost_usd']:.4g}); "
        f"APGR pair: {pair[0]} -> {pair[1]}; wall time {result['wall_seconds']:.0f}s.\n\n"
    )
    header = "| name | kind | " + " | ".join(title for _, title in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 2)]
    for row in result["rows"]:
        if "error" in row:
            cells = ["train failed"] + [""] * (len(COLUMNS) - 1)
        else:
            cells = [_fmt(key, row.get(key)) for key, _ in COLUMNS]
        lines.append(f"| {row['name']} | {row.get('kind', '')} | " + " | ".join(cells) + " |")
    failed = [row for row in result["rows"] if "error" in row]
    notes = "".join(f"\n- {row['name']}: {row['error']}" for row in failed)
    return head + "\n".join(lines) + ("\n\nFailed runs:" + notes if notes else "") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer prompts and models")
    parser.add_argument("--datasets", default="swebench,alpacaeval", help="comma-separated")
    parser.add_argument("--out", default=str(ROOT / "build" / "benchmarks"), help="build folder")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = []
    for name in args.datasets.split(","):
        if name not in DATASETS:
            parser.error(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}")
        result = run_dataset(name, out, args.quick, args.seed)
        results.append(result)
        print(markdown_table(result), flush=True)
    wall = time.perf_counter() - start
    suffix = "-quick" if args.quick else ""
    payload = {"wall_seconds": round(wall, 1), "results": results}
    (out / f"quality{suffix}.json").write_text(json.dumps(payload, indent=2) + "\n")
    md = "\n".join(markdown_table(r) for r in results)
    (out / f"quality{suffix}.md").write_text(f"# Quality benchmark\n\n{md}\nTotal {wall:.0f}s.\n")
    print(f"total wall time {wall:.0f}s; tables in {out}/quality{suffix}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
