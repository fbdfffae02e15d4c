"""Default-policy targets on the shipped SWE-bench outcomes."""

import numpy as np
import pytest

from training.evaluation import FullInfoLog, best_single
from training.policy_target import PolicyTarget, fit_policy_target


@pytest.fixture(scope="module")
def log(shipped_calls):
    full, _ = FullInfoLog.from_frame(shipped_calls)
    return full


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("parity", PolicyTarget("parity")),
        ("budget:0.1", PolicyTarget("budget", 0.1)),
        ("floor:0.6", PolicyTarget("floor", 0.6)),
    ],
)
def test_parse(text, expected):
    assert PolicyTarget.parse(text) == expected
    assert str(PolicyTarget.parse(text)) == text


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("cheapest", "Unknown target"),
        ("parity:1", "no number"),
        ("budget:x", "needs a number"),
        ("budget:-1", "positive USD"),
        ("floor:1.5", r"\(0, 1\]"),
    ],
)
def test_parse_rejects(text, match):
    with pytest.raises(ValueError, match=match):
        PolicyTarget.parse(text)


def test_perfect_predictions_reach_parity_cheaper(log):
    fit = fit_policy_target(PolicyTarget("parity"), log, log.outcome, log.cost_usd)
    best = best_single(log)
    assert fit["met"] and fit["quality"] >= best.quality - 1e-9
    assert fit["cost_usd"] < best.cost_usd and fit["savings_vs_best_single"] > 0.3
    low, high = fit["ci95"]["savings_vs_best_single"]
    assert low < fit["savings_vs_best_single"] < high


def test_budget_and_floor(log):
    p = np.tile(log.outcome.mean(axis=0), (log.n_prompts, 1))
    cheap = log.cost_usd.mean(axis=0).min()
    budget = fit_policy_target(PolicyTarget("budget", cheap * 1.5), log, p, log.cost_usd)
    assert budget["met"] and budget["cost_usd"] <= cheap * 1.5
    floor = fit_policy_target(PolicyTarget("floor", 0.5), log, p, log.cost_usd)
    assert floor["met"] and floor["quality"] >= 0.5
    impossible = fit_policy_target(PolicyTarget("floor", 0.99), log, p, log.cost_usd)
    assert not impossible["met"]
    # Unreachable: the most accurate point on the curve is served instead (the
    # cross-fitted figure averages halvings whose best model may differ).
    assert impossible["in_sample"]["quality"] >= log.outcome.mean(axis=0).max() - 1e-9
