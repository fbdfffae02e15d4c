"""The public benchmark datasets as call logs, built at run time from ``../shared/data``.

Shared by ``benchmarks/quality.py`` (the whole protocol through the CLI) and
``benchmarks/learners.py`` (repeated splits in process). Nothing here is copied into
the repository: AlpacaEval's licence (CC BY-NC 4.0) is non-commercial.

- ``swebench``: ``data/swebench_verified/calls.parquet``, already a call log
  (outcome = resolved, cost from tokens at Bedrock prices; see its README).
- ``alpacaeval``: prompt = the instruction; model = the system; outcome = the
  AlpacaEval 2.0 judge's (GPT-4 Turbo) preference against ``gpt4_1106_preview``,
  stored as ``preference`` in [1, 2] and mapped to ``preference - 1`` in [0, 1] (the
  judge's probability that the system's answer wins); cost = output length in
  characters / 4 (as tokens) x the model's output price (`ALPACA_OUTPUT_PRICES`).
  Input tokens are not counted: the instruction is the same for every model. The
  instruction's source subset is the call log's free ``task`` tag, so the validated
  reader keeps it and the report breaks figures down by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
#: RouteProfile (MIT) ships with the project, with its licence notice.
ROUTEPROFILE = ROOT / "data" / "routeprofile"

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
            "task": rows["dataset"].astype(str),
        }
    )
    return sample_prompts(frame, QUICK_PROMPTS["alpacaeval"] if quick else None, seed)


DATASETS = {"swebench": swebench_calls, "alpacaeval": alpacaeval_calls}
