"""Paired comparison of two policies on one log (training.off_policy.comparison), checked
against the ground truth of gateway logs simulated from the shipped SWE-bench table:
the session bundle as served (the champion) against the same bundle at value_usd 0,
which always takes the model it expects to be cheapest (a clearly worse challenger)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from features.routing_text import routing_text
from serving.bundle import load_bundle
from serving.policy import action_distribution
from training.evaluation.served import ServedPolicy
from training.off_policy import (
    BanditFeedback,
    PairedComparison,
    PolicyDifference,
    make_estimator,
)
from training.simulation import UniformPolicy, read_full_information, simulate

SHIPPED_CALLS = Path(__file__).resolve().parents[2] / "data" / "swebench_verified" / "calls.parquet"

SEEDS = range(5)


@pytest.fixture(scope="module")
def scored(bundle_dir):
    """The shipped table (500 prompts x 5 models), the bundle's scores on it in the
    table's column order, and both policies' distributions."""
    table, _ = read_full_information(SHIPPED_CALLS)
    served = ServedPolicy(load_bundle(bundle_dir))
    source = served.bundle.feature_spec.text_source
    texts = [
        routing_text(
            p if isinstance(p, str) else None, m if isinstance(m, list) else None, source=source
        )
        for p, m in zip(table.prompts["prompt"], table.prompts["messages"], strict=True)
    ]
    p, c = served.score(served.featurize(texts))
    order = [served.candidates.index(name) for name in table.candidates]
    p, c = p[:, order], c[:, order]
    champion = action_distribution(p, c, served.params)
    cheapest = action_distribution(p, c, dataclasses.replace(served.params, value_usd=0.0))
    return {
        "table": table,
        "p": p,
        "c": c,
        "champion": champion,
        "cheapest": cheapest,
        "value_usd": served.params.value_usd,
    }


def _feedback(scored: dict, seed: int) -> tuple[BanditFeedback, object]:
    sim = simulate(scored["table"], UniformPolicy(), seed=seed)
    fb = BanditFeedback(
        n_rounds=len(sim.action),
        n_actions=len(sim.candidates),
        action=sim.action,
        reward=sim.reward,
        cost_usd=sim.cost_usd,
        pscore=sim.pscore,
        estimated_reward=scored["p"],
        estimated_cost_usd=scored["c"],
        action_names=sim.candidates,
    )
    return fb, sim


@pytest.mark.parametrize("estimator", ["dr", "snips", "ips", "dm"])
def test_a_policy_against_itself_differs_by_exactly_zero(scored, estimator):
    fb, _ = _feedback(scored, seed=0)
    diff = PairedComparison(make_estimator(estimator), n_bootstrap=200).estimate_difference(
        scored["champion"], scored["champion"].copy(), fb, value_usd=scored["value_usd"]
    )
    for interval in (diff.quality, diff.cost_usd, diff.net_value):
        assert (interval.estimate, interval.low, interval.high) == (0.0, 0.0, 0.0)
    assert not diff.worse


@pytest.mark.parametrize("estimator", ["dr", "snips"])
def test_a_clearly_worse_policy_is_found_worse_and_the_truth_is_covered(scored, estimator):
    """Over 5 simulated logs (uniform logging, 500 calls), the cheapest-model policy's
    net value is below the champion's with an interval excluding 0 on every seed, and
    the interval covers the true difference on most seeds, for all three figures."""
    value = scored["value_usd"]
    covered = {"quality": 0, "cost_usd": 0, "net_value": 0}
    for seed in SEEDS:
        fb, sim = _feedback(scored, seed)
        diff = PairedComparison(
            make_estimator(estimator), n_bootstrap=500, random_state=seed
        ).estimate_difference(scored["cheapest"], scored["champion"], fb, value_usd=value)
        bad, good = sim.policy_value(scored["cheapest"]), sim.policy_value(scored["champion"])
        truth = {
            "quality": bad["quality"] - good["quality"],
            "cost_usd": bad["cost_usd"] - good["cost_usd"],
            "net_value": (value * bad["quality"] - bad["cost_usd"])
            - (value * good["quality"] - good["cost_usd"]),
        }
        assert truth["net_value"] < 0  # the premise: the challenger is worse
        assert diff.net_value.high < 0, (seed, diff.net_value)
        assert diff.worse
        for key in covered:
            covered[key] += getattr(diff, key).covers(truth[key])
    assert all(n >= len(SEEDS) - 1 for n in covered.values()), covered


def test_the_paired_interval_is_narrower_than_the_unpaired_one(scored):
    """Why pairing: the two estimates share their noise, so the difference's interval
    is narrower than one combining the two separate intervals."""
    fb, _ = _feedback(scored, seed=1)
    est = make_estimator("dr")
    diff = PairedComparison(est, n_bootstrap=500).estimate_difference(
        scored["cheapest"], scored["champion"], fb, value_usd=1.0
    )
    a = est.estimate_interval(scored["cheapest"], **fb.quality_inputs(), random_state=0)
    b = est.estimate_interval(scored["champion"], **fb.quality_inputs(), random_state=0)
    assert diff.quality.estimate == pytest.approx(a.estimate - b.estimate)
    unpaired = np.hypot(a.high - a.low, b.high - b.low)
    assert diff.quality.high - diff.quality.low < unpaired


def test_each_policy_may_bring_its_own_regression(scored):
    """DR with the baseline's own predictions: the difference is DR(policy) with the
    policy's model minus DR(baseline) with the baseline's model."""
    fb, _ = _feedback(scored, seed=2)
    flat = dataclasses.replace(
        fb,
        estimated_reward=np.full_like(scored["p"], 0.5),
        estimated_cost_usd=np.full_like(scored["c"], 0.1),
    )
    est = make_estimator("dr")
    diff = PairedComparison(est, n_bootstrap=50).estimate_difference(
        scored["cheapest"], scored["champion"], fb, flat, value_usd=2.0
    )
    q = est.estimate_policy_value(scored["cheapest"], **fb.quality_inputs())
    q -= est.estimate_policy_value(scored["champion"], **flat.quality_inputs())
    c = est.estimate_policy_value(scored["cheapest"], **fb.cost_inputs())
    c -= est.estimate_policy_value(scored["champion"], **flat.cost_inputs())
    assert diff.quality.estimate == pytest.approx(q)
    assert diff.cost_usd.estimate == pytest.approx(c)
    assert diff.net_value.estimate == pytest.approx(2.0 * q - c)
    d = diff.to_dict()
    assert set(d) == {
        "quality_diff",
        "quality_diff_ci",
        "cost_usd_diff",
        "cost_usd_diff_ci",
        "net_value_diff",
        "net_value_diff_ci",
        "value_usd",
        "estimator",
        "n_bootstrap",
        "alpha",
    }
    assert d["estimator"] == "dr" and d["value_usd"] == 2.0
    assert isinstance(diff, PolicyDifference)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"n_bootstrap": 0}, ValueError, r"n_bootstrap an integer >= 1"),
        ({"alpha": 1.5}, ValueError, r"alpha in \(0, 1\)"),
        ({"estimator": "dr"}, TypeError, r"Expected an off-policy estimator"),
    ],
)
def test_bad_settings_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        PairedComparison(**{"estimator": make_estimator("dr"), **kwargs})


def test_feedbacks_of_different_rounds_or_a_bad_value_are_refused(scored):
    fb, _ = _feedback(scored, seed=0)
    other, _ = _feedback(scored, seed=1)
    cmp = PairedComparison(make_estimator("snips"), n_bootstrap=10)
    dist = scored["champion"]
    with pytest.raises(ValueError, match=r"same logged rounds, but \['action'"):
        cmp.estimate_difference(dist, dist, fb, other, value_usd=1.0)
    with pytest.raises(ValueError, match=r"value_usd a finite number >= 0, got -1"):
        cmp.estimate_difference(dist, dist, fb, value_usd=-1.0)
