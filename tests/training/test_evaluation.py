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
    Point,
    baseline_points,
    best_single,
    calibration_report,
    cheapest_single,
    curve_figures,
    default_pair,
    envelope_area,
    oracle_curve,
    oracle_point,
    order_pair,
    pair_curve,
    pair_metrics,
    pair_values,
    random_point,
    reliability,
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
    assert s.savings_at_parity is not None and s.savings_at_parity > 0
    assert s.savings_at_95 >= s.savings_at_parity
    assert s.area > s.area_single_models
    oracle = oracle_point(log)
    assert curve[-1].quality == pytest.approx(oracle.quality)
    assert curve[-1].cost_usd == pytest.approx(oracle.cost_usd)
    assert s.quality_at_quarter_cost is not None
    assert s.quality_at_quarter_cost_fraction == pytest.approx(
        s.quality_at_quarter_cost / s.best_single.quality
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
    assert s.savings_at_parity == pytest.approx(0.0, abs=1e-12)
    # A linear utility only visits single models on the upper convex hull of (cost,
    # quality), so a router that knows nothing per prompt cannot beat "no router".
    assert s.area <= s.area_single_models + 1e-12


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
    s = summarize(log, curve, policy=PolicyParams(value_usd=1.0), p_success=p, expected_cost_usd=c)
    assert json.loads(json.dumps(s.to_dict(), allow_nan=False)) == s.to_dict()
    assert s.n_prompts == log.n_prompts
    assert s.candidates == log.candidates
    assert len(s.router_curve) == 9
    assert set(s.to_dict()["default_point"]) == {"value_usd", "quality", "cost_usd", "share"}
    rows = s.segments["task"]
    assert sum(r.n for r in rows) == log.n_prompts
    weighted = sum(r.n * r.router.quality for r in rows) / log.n_prompts
    assert weighted == pytest.approx(s.default_point.quality)
    for r in rows:
        assert r.oracle.quality >= r.best_single.quality - 1e-12


def test_default_value_needs_predictions(log: FullInfoLog) -> None:
    curve = router_curve(log, *perfect(log), [1.0])
    with pytest.raises(ValueError, match="pass p_success and expected_cost_usd"):
        summarize(log, curve, policy=PolicyParams(value_usd=1.0))


# --- baselines, oracle curve and the comparison table ----------------------------------


def test_baselines_random_cheapest_strongest(log: FullInfoLog) -> None:
    base = baseline_points(log)
    singles = single_model_points(log)
    assert base["random"].quality == pytest.approx(np.mean([p.quality for p in singles]))
    assert base["random"].cost_usd == pytest.approx(np.mean([p.cost_usd for p in singles]))
    assert random_point(log) == base["random"]
    assert base["cheapest"] == cheapest_single(log)
    assert base["strongest"] == best_single(log)


def test_oracle_curve_dominates_every_router(log: FullInfoLog) -> None:
    oracle = oracle_curve(log)
    assert oracle[-1].quality == pytest.approx(oracle_point(log).quality)
    assert oracle[-1].cost_usd == pytest.approx(oracle_point(log).cost_usd)
    s = summarize(log, router_curve(log, *constant(log), value_grid(log)))
    assert s.area_oracle >= s.area - 1e-12
    assert s.area_oracle >= s.area_single_models - 1e-12
    assert len(s.oracle_curve) == len(value_grid(log))


def test_curve_figures_of_one_point_by_hand() -> None:
    best = Point("B", quality=0.6, cost_usd=1.0)
    # A point at half the cost with the same quality saves 50% at parity and at 95%.
    f = curve_figures([0.5], [0.6], best, (0.1, 1.0))
    assert f.savings_at_parity == pytest.approx(0.5)
    assert f.savings_at_95 == pytest.approx(0.5)
    assert f.quality_at_quarter_cost is None
    # Quality 0.6 from cost 0.5 to 1.0 on a log axis from 0.1: 0.6 * log(2) / log(10).
    assert f.area == pytest.approx(0.6 * np.log(2) / np.log(10))
    # 0.58 >= 0.95 * 0.6 but < 0.6: savings at 95% only.
    g = curve_figures([0.2], [0.58], best, (0.1, 1.0))
    assert g.savings_at_parity is None and g.savings_at_95 == pytest.approx(0.8)
    assert g.quality_at_quarter_cost == pytest.approx(0.58)
    assert g.quality_at_quarter_cost_fraction == pytest.approx(0.58 / 0.6)


def test_summary_table_has_router_baselines_singles_oracle(log: FullInfoLog) -> None:
    p, c = perfect(log)
    s = summarize(
        log,
        router_curve(log, p, c, value_grid(log)),
        policy=PolicyParams(value_usd=1.0),
        p_success=p,
        expected_cost_usd=c,
    )
    kinds = [r.kind for r in s.table]
    assert kinds[0] == "router" and kinds[-1] == "oracle"
    assert [r.name for r in s.table if r.kind == "baseline"] == [
        "random",
        "cheapest",
        "strongest",
    ]
    assert {r.name for r in s.table if r.kind == "single"} == set(log.candidates)
    router = s.table[0]
    assert router.figures.area == s.area and router.apgr == s.apgr
    assert router.quality == s.default_point.quality
    strongest = s.baselines["strongest"]
    assert strongest.model == s.best_single.name
    assert strongest.figures.savings_at_parity == pytest.approx(0.0)
    for row in s.table:
        assert set(row.to_dict()) >= {
            "name",
            "kind",
            "quality",
            "cost_usd",
            "area",
            "savings_at_parity",
            "savings_at_95",
            "quality_at_quarter_cost",
            "apgr",
        }
    assert json.loads(json.dumps(s.to_dict(), allow_nan=False)) == s.to_dict()


def test_model_share_at_default_policy(log: FullInfoLog) -> None:
    p, c = perfect(log)
    s = summarize(
        log,
        router_curve(log, p, c, [1.0]),
        policy=PolicyParams(value_usd=1.0),
        p_success=p,
        expected_cost_usd=c,
    )
    rows = s.model_share
    assert [r.model for r in rows] == list(log.candidates)
    assert sum(r.share for r in rows) == pytest.approx(1.0)
    assert sum(r.n for r in rows) == log.n_prompts
    weighted = sum(r.share * r.quality for r in rows if r.n)
    assert weighted == pytest.approx(s.default_point.quality)
    for r in rows:
        assert r.share == pytest.approx(s.default_point.share[r.model])


def test_team_column_is_a_segment(frame: pd.DataFrame) -> None:
    tagged = frame.assign(team=np.where(frame["task"] == "django", "web", "other"))
    log, _ = FullInfoLog.from_frame(tagged)
    assert set(log.segments) == {"task", "team"}
    p, c = perfect(log)
    s = summarize(
        log,
        router_curve(log, p, c, [1.0]),
        policy=PolicyParams(value_usd=1.0),
        p_success=p,
        expected_cost_usd=c,
    )
    assert [r.value for r in s.segments["team"]] == ["other", "web"]
    assert [r["n"] for r in s.to_dict()["segments"]["team"]] == [r.n for r in s.segments["team"]]


# --- two-model routing: RouteLLM's APGR and CPT ----------------------------------------


def test_apgr_and_cpt_by_hand() -> None:
    # weak (cost 1) solves prompt a only; strong (cost 10) solves a, b, c; nobody solves d.
    log = FullInfoLog(
        prompt_ids=np.array(["a", "b", "c", "d"]),
        candidates=("weak", "strong"),
        outcome=np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 0.0]]),
        cost_usd=np.array([[1.0, 10.0]] * 4),
    )
    m = pair_metrics(log, log.outcome, log.cost_usd, "weak", "strong")
    # A perfect router sends b and c to strong: (x, q) = (0, .25), (.5, .75), then (1, .75).
    # Area = .5 * (.25 + .75) / 2 + .5 * .75 = .625; APGR = (.625 - .25) / (.75 - .25).
    assert m.apgr == pytest.approx(0.75)
    assert m.cpt_50 == pytest.approx(0.25)  # q = .5 halfway up the first segment
    assert m.cpt_80 == pytest.approx(0.4)  # q = .65
    assert (m.weak_quality, m.strong_quality) == (0.25, 0.75)
    assert max(pt.strong_share for pt in m.curve) == pytest.approx(0.5)


def test_constant_predictor_apgr_is_one_half(log: FullInfoLog) -> None:
    # Scores equal on every prompt switch all prompts at once: the curve is the straight
    # line from (0, q_w) to (1, q_s), exactly a random mix, so APGR = 1/2, CPT(t) = t.
    p, c = constant(log)
    s = summarize(
        log,
        router_curve(log, p, c, value_grid(log)),
        policy=PolicyParams(value_usd=1.0),
        p_success=p,
        expected_cost_usd=c,
    )
    assert s.default_pair == (cheapest_single(log).name, best_single(log).name)
    assert s.apgr == pytest.approx(0.5)
    assert s.cpt_50 == pytest.approx(0.5)
    assert s.cpt_80 == pytest.approx(0.8)
    shares = {pt.strong_share for pt in s.pairs[0].curve}
    assert shares <= {0.0, 1.0}


def test_perfect_predictor_apgr_matches_oracle_and_beats_random(log: FullInfoLog) -> None:
    p, c = perfect(log)
    weak, strong = default_pair(log)
    m = pair_metrics(log, p, c, weak, strong)
    assert 0.5 < m.apgr <= 1.5
    assert m.cpt_50 < 0.5 and m.cpt_80 < 0.8
    w, s_ = log.candidates.index(weak), log.candidates.index(strong)
    pair_oracle = log.outcome[:, [w, s_]].max(axis=1).mean()
    assert max(pt.quality for pt in m.curve) == pytest.approx(pair_oracle)
    summary = summarize(
        log,
        router_curve(log, p, c, value_grid(log)),
        policy=PolicyParams(value_usd=1.0),
        p_success=p,
        expected_cost_usd=c,
    )
    assert summary.apgr == pytest.approx(m.apgr)
    assert summary.oracle_pairs[0].apgr == pytest.approx(m.apgr)
    assert summary.table[-1].apgr == pytest.approx(m.apgr)


def test_pair_curve_routes_through_the_allowed_mask(log: FullInfoLog) -> None:
    p, c = perfect(log)
    weak, strong = "openai/gpt-oss-20b", "MiniMaxAI/MiniMax-M2"
    w, s_ = log.candidates.index(weak), log.candidates.index(strong)
    values = pair_values(p[:, [w, s_]], c[:, [w, s_]])
    assert values[0] == 0.0 and np.all(np.diff(values) > 0)
    rows = np.arange(log.n_prompts)
    for pt in pair_curve(log, p, c, weak, strong, values[::7]):
        allowed = np.zeros(log.n_candidates, dtype=bool)
        allowed[[w, s_]] = True
        action, _ = choose(p, c, PolicyParams(value_usd=pt.value_usd), allowed=allowed)
        assert set(np.unique(action)) <= {w, s_}
        assert pt.quality == pytest.approx(log.outcome[rows, action].mean())
        assert pt.strong_share == pytest.approx((action == s_).mean())


def test_extra_pairs_are_ordered_and_validated(log: FullInfoLog) -> None:
    strong, weak = "MiniMaxAI/MiniMax-M2", "openai/gpt-oss-20b"
    assert order_pair(log, strong, weak) == (weak, strong)
    p, c = perfect(log)
    s = summarize(
        log,
        router_curve(log, p, c, [1.0]),
        p_success=p,
        expected_cost_usd=c,
        pairs=[(strong, weak), (cheapest_single(log).name, best_single(log).name)],
    )
    assert [(m.weak, m.strong) for m in s.pairs] == [default_pair(log), (weak, strong)]
    with pytest.raises(ValueError, match="not a candidate"):
        order_pair(log, "nope", weak)
    with pytest.raises(ValueError, match="two different models"):
        order_pair(log, weak, weak)


def test_pair_without_a_gap_has_no_apgr() -> None:
    log = FullInfoLog(
        prompt_ids=np.array(["a", "b"]),
        candidates=("x", "y"),
        outcome=np.array([[1.0, 0.0], [0.0, 1.0]]),
        cost_usd=np.array([[1.0, 2.0], [1.0, 2.0]]),
    )
    m = pair_metrics(log, log.outcome, log.cost_usd, "x", "y")
    assert m.apgr is None and m.cpt_50 is None and m.cpt_80 is None
    assert default_pair(log) is None  # x is both the cheapest and (tied, cheaper) the best


# --- calibration ------------------------------------------------------------------------


def test_per_model_mean_is_perfectly_calibrated_on_real_data(log: FullInfoLog) -> None:
    # Predicting each model's own mean outcome is calibrated in-sample by construction:
    # each candidate's predictions share one bin whose mean outcome is that mean.
    p, _ = constant(log)
    cal = calibration_report(log, p)
    assert cal.pooled.ece == pytest.approx(0.0, abs=1e-12)
    for k, name in enumerate(log.candidates):
        table = cal.candidates[name]
        q = log.outcome[:, k].mean()
        assert table.ece == pytest.approx(0.0, abs=1e-12)
        assert table.brier == pytest.approx(q * (1 - q))  # Bernoulli variance
        assert [b.n for b in table.bins] == [log.n_prompts]
    assert sum(b.n for b in cal.pooled.bins) == log.outcome.size


def test_reliability_of_a_calibrated_and_a_miscalibrated_predictor() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=20_000)
    y = (rng.uniform(size=p.size) < p).astype(float)
    good = reliability(y, p)
    assert good.ece < 0.02
    for b in good.bins:
        assert b.mean_outcome == pytest.approx(b.mean_p_success, abs=0.03)
    assert good.brier == pytest.approx(1 / 6, abs=0.01)  # E[p(1-p)] for p ~ U(0, 1)
    bad = reliability(y, p**3)
    assert bad.ece > 0.15 and bad.brier > good.brier
    with pytest.raises(ValueError, match="one non-empty shape"):
        reliability(y[:3], p[:2])


def test_summary_calibration_matches_reliability(log: FullInfoLog) -> None:
    p, c = perfect(log)
    s = summarize(log, router_curve(log, p, c, [1.0]), p_success=p, expected_cost_usd=c)
    assert s.calibration.pooled == reliability(log.outcome, p)
    assert s.calibration.pooled.brier == 0.0
    assert summarize(log, router_curve(log, p, c, [1.0])).calibration is None
    assert "calibration" not in summarize(log, router_curve(log, p, c, [1.0])).to_dict()


# --- pinned figures on a log small enough to compute by hand ---------------------------


def test_summary_figures_by_hand() -> None:
    # small (cost 1) solves a only; large (cost 4) solves a and b. A perfect predictor at
    # value_usd 10 sends a to small (10 - 1 > 10 - 4) and b to large (-1 < 10 - 4).
    log = FullInfoLog(
        prompt_ids=np.array(["a", "b"]),
        candidates=("small", "large"),
        outcome=np.array([[1.0, 1.0], [0.0, 1.0]]),
        cost_usd=np.array([[1.0, 4.0], [1.0, 4.0]]),
    )
    p, c = log.outcome, log.cost_usd
    s = summarize(
        log,
        router_curve(log, p, c, [0.0, 10.0]),
        policy=PolicyParams(value_usd=10.0),
        p_success=p,
        expected_cost_usd=c,
    )
    assert (s.best_single, s.cheapest_single) == (
        Point("large", 1.0, 4.0),
        Point("small", 0.5, 1.0),
    )
    assert s.oracle == Point("oracle", 1.0, 2.5)
    assert [(pt.quality, pt.cost_usd) for pt in s.router_curve] == [(0.5, 1.0), (1.0, 2.5)]
    assert s.default_point.share == {"small": 0.5, "large": 0.5}
    assert s.savings_at_parity == pytest.approx(1 - 2.5 / 4)
    assert s.savings_at_95 == pytest.approx(1 - 2.5 / 4)
    assert s.quality_at_quarter_cost == 0.5 and s.quality_at_quarter_cost_fraction == 0.5
    # Envelope 0.5 on [1, 2.5) and 1 on [2.5, 4], over log cost.
    assert s.area == pytest.approx((0.5 * np.log(2.5) + np.log(4 / 2.5)) / np.log(4))
    assert s.area_single_models == pytest.approx(0.5)
    assert s.area_cost_range == (1.0, 4.0)
    # Pair (small, large): (x, q) = (0, .5), (.5, 1), (1, 1): area .875, APGR .75.
    assert s.default_pair == ("small", "large")
    assert (s.apgr, s.cpt_50, s.cpt_80) == pytest.approx((0.75, 0.25, 0.4))
    assert s.calibration.pooled.ece == 0.0 and s.calibration.pooled.brier == 0.0
    metrics = s.to_dict()
    assert metrics["savings_at_parity"] == pytest.approx(0.375)
    assert metrics["table"][0] == {
        "name": "router",
        "kind": "router",
        "quality": 1.0,
        "cost_usd": 2.5,
        **s.figures.to_dict(),
        "apgr": pytest.approx(0.75),
    }
    assert metrics["baselines"]["strongest"]["model"] == "large"


def test_summary_applies_the_policy_constraints() -> None:
    # With a floor of 0.9 only large qualifies on every prompt: the served point is large's.
    log = FullInfoLog(
        prompt_ids=np.array(["a", "b"]),
        candidates=("small", "large"),
        outcome=np.array([[1.0, 1.0], [0.0, 1.0]]),
        cost_usd=np.array([[1.0, 4.0], [1.0, 4.0]]),
    )
    p = np.array([[0.8, 0.95], [0.1, 0.95]])
    floor = PolicyParams(value_usd=10.0, min_success=0.9)
    s = summarize(
        log,
        router_curve(log, p, log.cost_usd, [10.0]),
        policy=floor,
        p_success=p,
        expected_cost_usd=log.cost_usd,
    )
    assert s.default_point.share == {"small": 0.0, "large": 1.0}
    free = summarize(
        log,
        router_curve(log, p, log.cost_usd, [10.0]),
        policy=PolicyParams(value_usd=10.0),
        p_success=p,
        expected_cost_usd=log.cost_usd,
    )
    assert free.default_point.share == {"small": 0.5, "large": 0.5}
