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

Datasets (read from ``../shared/data``, never copied into the repository):

- ``swebench``: ``data/swebench_verified/calls.parquet``, already a call log
  (outcome = resolved, cost from tokens at Bedrock prices; see its README).
- ``alpacaeval``: converted at run time into the build folder (its licence, CC BY-NC
  4.0, is non-commercial). prompt = the instruction; model = the system; outcome = the
  AlpacaEval 2.0 judge's (GPT-4 Turbo) preference against ``gpt4_1106_preview``,
  stored as ``preference`` in [1, 2] and mapped to ``preference - 1`` in [0, 1] (the
  judge's probability that the system's answer wins); cost = output length in
  characters / 4 (as tokens) x the model's output price (:data:`ALPACA_OUTPUT_PRICES`).
  Input tokens are not counted: the instruction is the same for every model. ``dataset``
  (the instruction's source subset) is kept for the per-segment tables.
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

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on sys.path, and a sibling benchmark module
# (benchmarks/features.py) would shadow the project's `features` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
SEED = 0
TRAIN_FRACTION = 0.7

#: Output prices in USD per million tokens of the AlpacaEval systems benchmarked, and
#: where each comes from. Open-weight models are priced at Together AI's serverless
#: size tiers, which LiteLLM's catalog carries as ``together-ai-up-to-4b`` (0.10),
#: ``together-ai-4.1b-8b`` (0.20), ``together-ai-8.1b-21b`` (0.30),
#: ``together-ai-41.1b-80b`` (0.90) and, for Mixtral 8x7B, Together's MoE tier up to
#: 56B (0.60, LiteLLM ``together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1``). API models
#: are at their providers' list output prices as carried by LiteLLM (``gpt-4-0613``,
#: ``gpt-3.5-turbo-1106``, ``gpt-3.5-turbo-0301``, ``claude-2``, ``claude-2.1``,
#: ``claude-instant-1.2``). ``*_concise`` runs are the same model prompted to be brief:
#: same price, shorter answers. Models the shipped catalog (``features.prices``) knows
#: take its price instead.
ALPACA_OUTPUT_PRICES: dict[str, tuple[float, str]] = {
    "FuseChat-Gemma-2-9B-Instruct": (0.30, "together-ai-8.1b-21b"),
    "FuseChat-Qwen-2.5-7B-Instruct": (0.20, "together-ai-4.1b-8b"),
    "FuseChat-Llama-3.1-8B-Instruct": (0.20, "together-ai-4.1b-8b"),
    "FuseChat-Llama-3.2-3B-Instruct": (0.10, "together-ai-up-to-4b"),
    "FuseChat-Llama-3.2-1B-Instruct": (0.10, "together-ai-up-to-4b"),
    "OpenHermes-2.5-Mistral-7B": (0.20, "together-ai-4.1b-8b"),
    "gemma-7b-it": (0.20, "together-ai-4.1b-8b"),
    "gemma-2b-it": (0.10, "together-ai-up-to-4b"),
    "Qwen-14B-Chat": (0.30, "together-ai-8.1b-21b"),
    "vicuna-13b-v1.5": (0.30, "together-ai-8.1b-21b"),
    "humpback-llama2-70b": (0.90, "together-ai-41.1b-80b"),
    "Mixtral-8x7B-Instruct-v0.1_concise": (0.60, "together_ai Mixtral-8x7B-Instruct-v0.1"),
    "gpt4_0613_concise": (60.0, "gpt-4-0613"),
    "gpt-3.5-turbo-1106": (2.0, "gpt-3.5-turbo-1106"),
    "gpt-3.5-turbo-0301": (2.0, "gpt-3.5-turbo-0301"),
    "claude-2": (24.0, "claude-2"),
    "claude-2.1": (24.0, "claude-2.1"),
    "claude-instant-1.2": (2.40, "claude-instant-1.2"),
}
#: The --quick subset: the best model, three cheaper ones of its family, the cheapest
#: and a dear API model.
ALPACA_QUICK_MODELS = (
    "FuseChat-Gemma-2-9B-Instruct",
    "FuseChat-Llama-3.1-8B-Instruct",
    "FuseChat-Llama-3.2-3B-Instruct",
    "FuseChat-Llama-3.2-1B-Instruct",
    "gemma-2b-it",
    "claude-2",
)
#: Characters per token for turning answer length into output tokens.
CHARS_PER_TOKEN = 4.0
#: Prompts used by --quick (the full runs use every prompt).
QUICK_PROMPTS = {"swebench": 200, "alpacaeval": 200}
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


def sample_prompts(frame: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    """Rows of ``n`` prompts drawn at random with ``seed`` (all rows if ``n`` is None)."""
    ids = np.sort(frame["prompt_id"].astype(str).unique())
    if n is None or n >= len(ids):
        return frame
    keep = set(np.random.default_rng(seed).choice(ids, size=n, replace=False).tolist())
    return frame[frame["prompt_id"].astype(str).isin(keep)]


def swebench_calls(quick: bool, seed: int) -> pd.DataFrame:
    """The shipped SWE-bench Verified call log (already in the call-log format)."""
    frame = pd.read_parquet(ROOT / "data" / "swebench_verified" / "calls.parquet")
    return sample_prompts(frame, QUICK_PROMPTS["swebench"] if quick else None, seed)


def alpaca_prices(models: Sequence[str]) -> dict[str, float]:
    """Output price in USD per token: the shipped catalog where it knows the model."""
    from features.prices import PriceCatalog

    catalog = PriceCatalog.load()
    prices = {}
    for model in models:
        known = catalog.get(model)
        if known is not None:
            prices[model] = known.output_cost_per_token
        else:
            prices[model] = ALPACA_OUTPUT_PRICES[model][0] / 1e6
    return prices


def alpacaeval_calls(quick: bool, seed: int) -> pd.DataFrame:
    """AlpacaEval 2.0 as a call log: one row per (instruction, system) with a judgment.

    Only systems with an output length (hence a cost) and a price are kept; rows
    without a judgment or a length are dropped.
    """
    folder = SHARED / "alpacaeval"
    instructions = pd.read_csv(folder / "instructions.csv")
    judgments = pd.read_csv(folder / "judgments_alpacaeval2_gpt4turbo.csv.gz")
    chars = pd.read_csv(folder / "output_chars.csv.gz")
    models = list(ALPACA_QUICK_MODELS if quick else ALPACA_OUTPUT_PRICES)
    models = [m for m in models if m in chars.columns]
    prices = alpaca_prices(models)
    lengths = chars.melt(
        id_vars="instruction_id", value_vars=models, var_name="model", value_name="chars"
    )
    rows = judgments[judgments["model"].isin(models)].merge(
        lengths, on=["instruction_id", "model"], how="inner"
    )
    rows = rows.merge(instructions, on="instruction_id", how="inner")
    rows = rows.dropna(subset=["preference", "chars"])
    preference = rows["preference"].astype(float)
    if preference.min() < 1.0 or preference.max() > 2.0:
        raise ValueError(
            f"Expected AlpacaEval 2.0 preferences in [1, 2], got [{preference.min()}, "
            f"{preference.max()}]: check the judgments file."
        )
    tokens = (rows["chars"].astype(float) / CHARS_PER_TOKEN).round()
    frame = pd.DataFrame(
        {
            "request_id": rows["instruction_id"].astype(str) + ":" + rows["model"],
            "prompt_id": "alpaca-" + rows["instruction_id"].astype(str),
            "prompt": rows["instruction"].astype(str),
            "model": rows["model"],
            "output_tokens": tokens.astype(np.int64),
            "cost_usd": tokens * rows["model"].map(prices),
            "outcome": (preference - 1.0).clip(0.0, 1.0),
            "dataset": rows["dataset"].astype(str),
        }
    )
    return sample_prompts(frame, QUICK_PROMPTS["alpacaeval"] if quick else None, seed)


DATASETS = {"swebench": swebench_calls, "alpacaeval": alpacaeval_calls}


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
