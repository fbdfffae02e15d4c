"""The chunked, sufficient-statistics cost model equals `LogLinearCostModel`'s fit."""

import numpy as np
import pandas as pd
import pytest

from training.cost_model import CostComponent, LogLinearCostModel
from training.cost_model_stats import fit_cost_model_by_chunks

ROOT_CALLS = "data/swebench_verified/calls.parquet"


@pytest.fixture(scope="module")
def rows():
    """Real logged units with made-up but reproducible prompt features.

    The features are a fixed random projection of each prompt's length and a
    per-prompt draw: what matters here is the algebra, not the encoder.
    """
    frame = pd.read_parquet(ROOT_CALLS)
    prompt_ids, prompt = np.unique(frame["prompt_id"].to_numpy(), return_inverse=True)
    rng = np.random.default_rng(0)
    length = frame.groupby("prompt_id")["prompt"].first().str.len().to_numpy()
    features = np.column_stack(
        [np.log1p(length), rng.normal(size=(len(prompt_ids), 11)), np.ones(len(prompt_ids))]
    ).astype(np.float32)
    models = sorted(frame["model"].unique())
    candidate = frame["model"].map({m: k for k, m in enumerate(models)}).to_numpy()
    units = {
        "input_tokens": frame["input_tokens"].to_numpy(np.float64),
        "output_tokens": frame["output_tokens"].to_numpy(np.float64),
        "cost_usd": frame["cost_usd"].to_numpy(np.float64, copy=True),
    }
    units["cost_usd"][::7] = np.nan  # some rows without a logged cost
    components = [
        CostComponent(0, "input_tokens", 1e-6, 1.0),
        CostComponent(0, "output_tokens", 2e-6, 1.0),
        *(CostComponent(k, "cost_usd", 1.0, 1e-4) for k in range(1, len(models))),
    ]
    return features, prompt, units, components, candidate, len(models)


@pytest.mark.parametrize("chunk_rows", [100, 100_000])
def test_chunked_fit_equals_the_in_memory_fit(rows, chunk_rows):
    features, prompt, units, components, candidate, k = rows
    expected = LogLinearCostModel().fit(
        features[prompt], units, components=components, candidate=candidate
    )
    got = fit_cost_model_by_chunks(
        features, prompt, units, components=components, candidate=candidate, chunk_rows=chunk_rows
    )
    np.testing.assert_allclose(got.coef_, expected.coef_, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(got.intercept_, expected.intercept_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(got.smearing_, expected.smearing_, rtol=1e-6)
    np.testing.assert_allclose(
        got.predict_cost(features, k), expected.predict_cost(features, k), rtol=1e-5
    )


def test_a_component_with_few_rows_is_its_mean(rows):
    features, prompt, units, components, candidate, _ = rows
    few = {**units, "cost_usd": np.where(np.arange(len(prompt)) < 40, units["cost_usd"], np.nan)}
    expected = LogLinearCostModel().fit(
        features[prompt], few, components=components, candidate=candidate
    )
    got = fit_cost_model_by_chunks(
        features, prompt, few, components=components, candidate=candidate
    )
    np.testing.assert_allclose(got.intercept_, expected.intercept_, rtol=1e-6)
    assert (got.coef_[2:] == 0).all()
