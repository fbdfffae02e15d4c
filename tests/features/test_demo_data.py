"""Checks of the shipped SWE-bench Verified demo call log (data/swebench_verified)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from features.prices import PriceCatalog

pd = pytest.importorskip("pandas")

CALLS = Path(__file__).resolve().parents[2] / "data" / "swebench_verified" / "calls.parquet"
REQUIRED = {"request_id", "model", "prompt"}
DEMO_MODELS = {
    "openai/gpt-oss-20b",
    "openai/gpt-oss-120b",
    "MiniMaxAI/MiniMax-M2",
    "Qwen/Qwen3-Coder-30B-A3B-Instruct",
    "Qwen/Qwen3-Coder-480B-A35B-Instruct",
}


@pytest.fixture(scope="module")
def calls() -> pd.DataFrame:
    return pd.read_parquet(CALLS)


def test_five_models_over_the_500_issues(calls: pd.DataFrame) -> None:
    assert set(calls["model"]) == DEMO_MODELS
    assert calls["prompt_id"].nunique() == 500
    # A few runs are missing upstream (498/499 per model): never more than that.
    assert calls.groupby("model").size().between(490, 500).all()
    assert calls["request_id"].is_unique
    assert (calls["request_id"] == calls["prompt_id"] + ":" + calls["model"]).all()


def test_call_log_columns_and_no_reference_fix(calls: pd.DataFrame) -> None:
    assert set(calls.columns) >= REQUIRED
    assert "gold_patch" not in calls.columns
    assert not any("patch" in c for c in calls.columns)
    assert (calls["task"] == "swe-bench").all()
    assert calls["prompt"].str.len().min() > 100
    # One issue text per prompt, shared by every model's row.
    assert (calls.groupby("prompt_id")["prompt"].nunique() == 1).all()


def test_outcome_is_resolved_zero_or_one(calls: pd.DataFrame) -> None:
    assert set(calls["outcome"].unique()) <= {0.0, 1.0}
    assert 0.1 < calls["outcome"].mean() < 0.7


def test_cost_is_positive_and_equals_the_catalog_price_of_the_tokens(
    calls: pd.DataFrame,
) -> None:
    assert (calls["cost_usd"] > 0).all()
    assert (calls["input_tokens"] > 0).all() and (calls["output_tokens"] >= 0).all()
    catalog = PriceCatalog.load()
    expected = [
        catalog.cost_usd(m, i, o)
        for m, i, o in zip(
            calls["model"], calls["input_tokens"], calls["output_tokens"], strict=True
        )
    ]
    np.testing.assert_allclose(calls["cost_usd"].to_numpy(), expected, rtol=1e-12)
