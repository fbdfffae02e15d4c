"""Offline evaluation metrics on a real full-information log (SWE-bench Verified own runs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serving.policy import PolicyParams, choose
from training.evaluation import (
    FullInfoLog,
    best_single,
    cheapest_single,
    envelope_area,
    oracle_point,
    router_curve,
    single_model_points,
    summarize,
    value_grid,
)

OWN_RUNS = Path("/work/shared/data/swebench_verified/own_runs_tokens.csv.gz")

# Illustrative USD prices per million tokens (input, output); fixed so costs are stable.
PRICES = {
    "MiniMaxAI/MiniMax-M2": (0.30, 1.20),
    "Qwen/Qwen2.5-Coder-32B-Instruct": (0.06, 0.15),
    "Qwen/Qwen3-Coder-30B-A3B-Instruct": (0.07, 0.28),
    "Qwen/Qwen3-Coder-480B-A35B-Instruct": (0.40, 1.60),
    "openai/gpt-oss-120b": (0.05, 0.25),
    "openai/gpt-oss-20b": (0.03, 0.15),
}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """Call-log rows: one per (instance, model), outcome = resolved, cost from tokens."""
    raw = pd.read_csv(OWN_RUNS)
    price_in = raw["model"].map(lambda m: PRICES[m][0])
    price_out = raw["model"].map(lambda m: PRICES[m][1])
    return pd.DataFrame(
        {
            "prompt_id": raw["instance_id"],
            "model": raw["model"],
            "outcome": raw["resolved"].astype(float),
            "cost_usd": (raw["input_tokens"] * price_in + raw["output_tokens"] * price_out) / 1e6,
            "task": raw["instance_id"].str.split("__").str[0],
        }
    )


@pytest.fixture(scope="module")
def log(frame: pd.DataFrame) -> FullInfoLog:
    log, _ = FullInfoLog.from_frame(frame)
    return log


def perfect(log: FullInfoLog) -> tuple[np.ndarray, np.ndarray]:
    return log.outcome.copy(), log.cost_usd.copy()


def constant(log: FullInfoLog) -> tuple[np.ndarray, np.ndarray]:
    """Per-model means, the same for every prompt: a router that knows nothing per prompt."""
    shape = log.outcome.shape
    p = np.broadcast_to(log.outcome.mean(axis=0), shape).copy()
    c = np.broadcast_to(log.cost_usd.mean(axis=0), shape).copy()
    return p, c


# --- FullInfoLog ------------------------------------------------------------------------


def test_from_frame_drops_incomplete_prompts(frame: pd.DataFrame) -> None:
    per_prompt = frame.groupby("prompt_id")["model"].nunique()
    n_models = frame["model"].nunique()
    log, dropped = FullInfoLog.from_frame(frame)
    assert dropped == int((per_prompt < n_models).sum()) > 0
    assert log.n_prompts == int((per_prompt == n_models).sum())
    assert log.candidates == tuple(sorted(frame["model"].unique()))
    assert log.outcome.shape == log.cost_usd.shape == (log.n_prompts, n_models)
    assert set(log.segments) == {"task"}
    assert "django" in set(log.segments["task"])


def test_from_frame_ignores_missing_outcome_and_averages_duplicates(frame: pd.DataFrame) -> None:
    first = frame.iloc[0]
    pending = first.to_frame().T.assign(outcome=np.nan)
    dup = first.to_frame().T.assign(outcome=1.0 - first["outcome"], cost_usd=3 * first["cost_usd"])
    base, base_dropped = FullInfoLog.from_frame(frame)
    log, dropped = FullInfoLog.from_frame(pd.concat([frame, pending, dup], ignore_index=True))
    assert (log.n_prompts, dropped) == (base.n_prompts, base_dropped)
    i = list(log.prompt_ids).index(first["prompt_id"])
    j = log.candidates.index(first["model"])
    assert log.outcome[i, j] == pytest.approx(0.5)
    assert log.cost_usd[i, j] == pytest.approx(2 * first["cost_usd"])


def test_from_frame_candidates_subset_and_missing_outcome_drop(frame: pd.DataFrame) -> None:
    cands = ["openai/gpt-oss-20b", "MiniMaxAI/MiniMax-M2"]
    victim = frame["prompt_id"].iloc[0]
    masked = frame.copy()
    masked.loc[(masked["prompt_id"] == victim) & (masked["model"] == cands[1]), "outcome"] = None
    log, dropped = FullInfoLog.from_frame(masked, candidates=cands)
    assert log.candidates == tuple(cands)
    assert victim not in set(log.prompt_ids)
    assert dropped == frame["prompt_id"].nunique() - log.n_prompts


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"outcome": np.zeros((3, 3))}, r"outcome of shape .*\(2, 2\).*got \(3, 3\)"),
        ({"cost_usd": np.zeros(2)}, r"cost_usd of shape .*got \(2,\)"),
        ({"prompt_ids": np.array([["a", "b"]])}, r"prompt_ids of shape \(n_prompts,\)"),
        ({"prompt_ids": np.array(["a", "a"])}, "unique prompt_ids"),
        ({"candidates": ("x", "x")}, "unique candidates"),
        ({"candidates": ()}, "at least one candidate"),
        ({"outcome": np.array([[0.0, 1.5], [0.0, 1.0]])}, r"outcome in \[0, 1\]"),
        ({"outcome": np.array([[0.0, np.nan], [0.0, 1.0]])}, "finite outcome"),
        ({"cost_usd": np.array([[0.1, -0.1], [0.1, 0.1]])}, "cost_usd >= 0"),
        ({"segments": {"task": np.array(["a", "b", "c"])}}, r"segment 'task' of shape"),
    ],
)
def test_bad_log_raises(change: dict, match: str) -> None:
    args = {
        "prompt_ids": np.array(["a", "b"]),
        "candidates": ("x", "y"),
        "outcome": np.array([[0.0, 1.0], [1.0, 1.0]]),
        "cost_usd": np.array([[0.1, 1.0], [0.1, 1.0]]),
    } | change
    with pytest.raises(ValueError, match=match):
        FullInfoLog(**args)


def test_from_frame_bad_input_raises(frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"missing \['cost_usd'\]"):
        FullInfoLog.from_frame(frame.drop(columns="cost_usd"))
    with pytest.raises(ValueError, match="no rows with an outcome"):
        FullInfoLog.from_frame(frame, candidates=["nope"])


def test_predictions_of_wrong_shape_raise(log: FullInfoLog) -> None:
    p, c = perfect(log)
    with pytest.raises(ValueError, match=r"p_success of shape .*got"):
        router_curve(log, p[:, :2], c, [1.0])


# --- points and oracle -----------------------------------------------------------------


def test_single_points_best_and_cheapest(log: FullInfoLog) -> None:
    points = single_model_points(log)
    assert [p.name for p in points] == list(log.candidates)
    best, cheap = best_single(log), cheapest_single(log)
    assert best.quality == max(p.quality for p in points)
    assert cheap.cost_usd == min(p.cost_usd for p in points)
    assert best.name == "MiniMaxAI/MiniMax-M2"


def test_oracle_dominates_and_matches_brute_force(log: FullInfoLog) -> None:
    oracle = oracle_point(log)
    assert oracle.name == "oracle"
    assert oracle.quality >= best_single(log).quality
    assert oracle.quality == pytest.approx(log.outcome.max(axis=1).mean())
    costs = []
    for o, c in zip(log.outcome, log.cost_usd, strict=True):
        at_max = [j for j in range(len(o)) if o[j] == o.max()]
        costs.append(min(c[j] for j in at_max))
    assert oracle.cost_usd == pytest.approx(np.mean(costs))
    # Never dearer than always paying for the dearest winner, nor than the max per prompt.
    assert oracle.cost_usd <= log.cost_usd.max(axis=1).mean()


def test_value_grid_spans_cheapest_to_most_likely(log: FullInfoLog) -> None:
    values = value_grid(log, n=16)
    assert values.shape == (17,)
    assert values[0] == 0.0 and np.all(np.diff(values) > 0)
    curve = router_curve(log, *constant(log), values)
    assert curve[0].cost_usd == pytest.approx(cheapest_single(log).cost_usd)
    assert curve[-1].quality == pytest.approx(best_single(log).quality)


# --- router curve and summary ----------------------------------------------------------


def test_router_curve_calls_the_served_policy(log: FullInfoLog) -> None:
    p, c = perfect(log)
    point = router_curve(log, p, c, [0.5])[0]
    action, _ = choose(p, c, PolicyParams(value_usd=0.5))
    rows = np.arange(log.n_prompts)
    assert point.quality == pytest.approx(log.outcome[rows, action].mean())
    assert point.cost_usd == pytest.approx(log.cost_usd[rows, action].mean())
    assert sum(point.share.values()) == pytest.approx(1.0)


def test_perfect_predictor_saves_at_parity_and_reaches_oracle(log: FullInfoLog) -> None:
    p, c = perfect(log)
    curve = router_curve(log, p, c, value_grid(log))
    s = summarize(log, curve)
    assert s["savings_at_parity"] is not None and s["savings_at_parity"] > 0
    assert s["savings_at_95"] >= s["savings_at_parity"]
    assert s["area"] > s["area_single_models"]
    oracle = oracle_point(log)
    assert curve[-1].quality == pytest.approx(oracle.quality)
    assert curve[-1].cost_usd == pytest.approx(oracle.cost_usd)
    assert s["quality_at_quarter_cost"] is not None
    assert s["quality_at_quarter_cost_fraction"] == pytest.approx(
        s["quality_at_quarter_cost"] / s["best_single"]["quality"]
    )


def test_constant_predictor_is_exactly_the_single_models(log: FullInfoLog) -> None:
    curve = router_curve(log, *constant(log), value_grid(log))
    singles = {(p.quality, p.cost_usd) for p in single_model_points(log)}
    for point in curve:
        assert max(point.share.values()) == 1.0
        assert any(
            point.quality == pytest.approx(q) and point.cost_usd == pytest.approx(c)
            for q, c in singles
        )
    s = summarize(log, curve)
    assert s["savings_at_parity"] == pytest.approx(0.0, abs=1e-12)
    # A linear utility only visits single models on the upper convex hull of (cost,
    # quality), so a router that knows nothing per prompt cannot beat "no router".
    assert s["area"] <= s["area_single_models"] + 1e-12


def test_envelope_area_by_hand() -> None:
    # Points (cost, quality): (1, 0.2), (2, 0.1), (4, 0.6) on [1, 8]; the envelope is
    # 0.2 on [1, 4) and 0.6 on [4, 8]: (0.2 * log 4 + 0.6 * log 2) / log 8 = (0.4 + 0.6) / 3.
    costs, quals = np.array([1.0, 2.0, 4.0]), np.array([0.2, 0.1, 0.6])
    assert envelope_area(costs, quals, 1.0, 8.0) == pytest.approx(1.0 / 3.0)
    # Below the cheapest point the curve counts 0: on [0.5, 1) nothing is reached.
    assert envelope_area(costs, quals, 0.5, 1.0) == pytest.approx(0.0)
    assert envelope_area(costs, quals, 2.0, 2.0) == pytest.approx(0.2)


def test_summary_is_json_with_default_point_and_segments(log: FullInfoLog) -> None:
    p, c = perfect(log)
    curve = router_curve(log, p, c, value_grid(log, n=8))
    s = summarize(log, curve, default_value_usd=1.0, p_success=p, expected_cost_usd=c)
    assert json.loads(json.dumps(s, allow_nan=False)) == s
    assert s["n_prompts"] == log.n_prompts
    assert s["candidates"] == list(log.candidates)
    assert len(s["router_curve"]) == 9
    assert set(s["default_point"]) == {"value_usd", "quality", "cost_usd", "share"}
    rows = s["segments"]["task"]
    assert sum(r["n"] for r in rows) == log.n_prompts
    weighted = sum(r["n"] * r["router"]["quality"] for r in rows) / log.n_prompts
    assert weighted == pytest.approx(s["default_point"]["quality"])
    for r in rows:
        assert r["oracle"]["quality"] >= r["best_single"]["quality"] - 1e-12


def test_default_value_needs_predictions(log: FullInfoLog) -> None:
    curve = router_curve(log, *perfect(log), [1.0])
    with pytest.raises(ValueError, match="pass p_success and expected_cost_usd"):
        summarize(log, curve, default_value_usd=1.0)
