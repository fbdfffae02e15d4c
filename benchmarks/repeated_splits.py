"""Training variants compared on repeated grouped splits of the shipped logs.

    .venv/bin/python benchmarks/repeated_splits.py [--datasets routeprofile,swebench]
        [--seeds 0,1,2] [--variant NAME='train args' ...]

For every dataset and seed: ``outcome-router split`` 70/30 grouped by ``prompt_id``
(the seed draws the split and seeds training), then for every variant ``train
--no-mlflow --seed S ARGS`` on the train part and ``evaluate`` on the held-out
prompts. Printed per variant: test area (log cost), savings at the best single
model's quality, quality at a quarter of its cost and APGR, mean and per seed, and
each variant's area paired against the first variant (wins out of seeds). Everything
goes through the command line, so what is measured is what ``make demo`` runs.

Default variants: the two encoder tiers (``--encoder minilm`` and ``--encoder
static``). Datasets are the shipped logs only (``data/routeprofile`` with its
``prices.json``, ``data/swebench_verified``), so this runs on a fresh clone.
Results: ``build/benchmarks/repeated_splits.json``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: name -> (call log, price file or None for the default catalog)
DATASETS = {
    "routeprofile": ("data/routeprofile/calls.jsonl.gz", "data/routeprofile/prices.json"),
    "swebench": ("data/swebench_verified/calls.parquet", None),
}
DEFAULT_VARIANTS = ("minilm=--encoder minilm", "static=--encoder static")
METRICS = ("area", "savings_at_parity", "quality_at_quarter_cost", "apgr")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cli(args: list[str], log: Path) -> float:
    """Run ``outcome-router ARGS`` (this venv's); stderr and stdout to ``log``; seconds."""
    exe = Path(sys.executable).with_name("outcome-router")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "training.cli"]
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.run([*command, *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
        raise RuntimeError(f"outcome-router {args[0]} failed: {tail}")
    return time.perf_counter() - start


def run(
    dataset: str, seed: int, variants: dict[str, list[str]], out: Path
) -> dict[str, dict[str, Any]]:
    logs, prices = DATASETS[dataset]
    price_args = ["--prices", prices] if prices else []
    folder = out / dataset / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    split = ["split", "--logs", logs, "--out", str(folder / "split"), "--train-fraction", "0.7"]
    cli([*split, "--seed", str(seed)], folder / "split.log")
    rows = {}
    for name, extra in variants.items():
        bundle, report = folder / f"bundle-{name}", folder / f"eval-{name}"
        train = ["train", "--logs", str(folder / "split" / "train.parquet"), "--out", str(bundle)]
        train_s = cli(
            [*train, "--no-mlflow", "--seed", str(seed), *price_args, *extra],
            folder / f"train-{name}.log",
        )
        evaluate = ["evaluate", "--bundle", str(bundle), "--out", str(report), *price_args]
        cli(
            [*evaluate, "--logs", str(folder / "split" / "test.parquet")],
            folder / f"evaluate-{name}.log",
        )
        summary = json.loads((report / "metrics.json").read_text())
        row = {key: summary["table"][0].get(key) for key in METRICS}
        row["learner"] = json.loads((bundle / "manifest.json").read_text()).get("learner")
        row["train_seconds"] = round(train_s, 1)
        rows[name] = row
        say(f"[{dataset} seed {seed}] {name}: area {row['area']:.4f} ({train_s:.0f}s train)")
    return rows


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def table(dataset: str, by_seed: dict[int, dict[str, dict[str, Any]]]) -> str:
    """Mean per metric, per-seed area and paired wins against the first variant."""
    seeds = sorted(by_seed)
    names = list(by_seed[seeds[0]])
    head = f"### {dataset} ({len(seeds)} grouped 70/30 splits, seeds {seeds})\n\n"
    lines = [
        "| variant | area (per seed) | mean area | save@parity | q@25%cost | APGR | "
        f"area vs {names[0]} (wins) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        per = [by_seed[s][name] for s in seeds]

        def mean(key: str, per=per) -> float | None:
            values = [r[key] for r in per if r[key] is not None]
            return statistics.fmean(values) if values else None

        diffs = [by_seed[s][name]["area"] - by_seed[s][names[0]]["area"] for s in seeds]
        wins = sum(d > 0 for d in diffs)
        lines.append(
            f"| {name} | {', '.join(_fmt(r['area']) for r in per)} | {_fmt(mean('area'))} | "
            f"{_fmt(mean('savings_at_parity'))} | {_fmt(mean('quality_at_quarter_cost'))} | "
            f"{_fmt(mean('apgr'))} | {statistics.fmean(diffs):+.4f} ({wins}/{len(seeds)}) |"
        )
    return head + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--datasets", default="routeprofile,swebench", help="comma-separated")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated split/training seeds")
    parser.add_argument(
        "--variant",
        action="append",
        help=f"NAME='extra train arguments' (repeatable; default: {list(DEFAULT_VARIANTS)})",
    )
    parser.add_argument("--out", default=str(ROOT / "build" / "benchmarks" / "repeated_splits"))
    args = parser.parse_args(argv)
    variants = {}
    for item in args.variant or DEFAULT_VARIANTS:
        name, _, extra = item.partition("=")
        variants[name] = shlex.split(extra)
    out = Path(args.out)
    results: dict[str, Any] = {}
    for dataset in args.datasets.split(","):
        if dataset not in DATASETS:
            parser.error(f"unknown dataset {dataset!r}; choose from {sorted(DATASETS)}")
        by_seed = {int(s): run(dataset, int(s), variants, out) for s in args.seeds.split(",")}
        results[dataset] = by_seed
        print(table(dataset, by_seed), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
