"""The answer of one decision (`serving.decision`), shared by /route and ``route``."""

from __future__ import annotations

import numpy as np
import pytest

from serving.decision import fallback_decision, routing_decisions
from serving.policy import Exploration, PolicyParams, action_distribution

NAMES = ("small", "medium", "large")
P = np.array([[0.50, 0.80, 0.90], [0.10, 0.20, 0.30]])
COST = np.array([[0.01, 0.05, 0.40], [0.01, 0.02, 0.03]])


def test_greedy_answers_the_best_utility_with_every_score():
    params = PolicyParams(value_usd=1.0)
    first, second = routing_decisions(P, COST, NAMES, params)
    assert (first.model, first.reason, first.propensity) == ("medium", "max_utility", 1.0)
    assert [s["model"] for s in first.scores] == list(NAMES)
    assert first.scores[2] == {
        "model": "large",
        "p_success": 0.90,
        "expected_cost_usd": 0.40,
        "utility": pytest.approx(0.50),
    }
    assert second.model == "large"


def test_unmet_constraints_are_the_reason():
    [decided] = routing_decisions(P[:1], COST[:1], NAMES, PolicyParams(1.0, min_success=0.95))
    assert decided.reason == "no_candidate_met_constraints"
    assert decided.model == "large"  # most likely to succeed under a floor


def test_allowed_candidates_are_the_only_ones_scored():
    allowed = np.array([True, False, True])  # "medium" is the best, and not allowed
    [decided] = routing_decisions(P[:1], COST[:1], NAMES, PolicyParams(1.0), allowed=allowed)
    assert decided.model == "large"
    assert [s["model"] for s in decided.scores] == ["small", "large"]


def test_exploration_answers_explore_with_the_exact_propensity():
    params = PolicyParams(value_usd=1.0)
    exploration = Exploration("epsilon", epsilon=0.9)
    rng = np.random.default_rng(0)
    p, cost = np.repeat(P[:1], 200, axis=0), np.repeat(COST[:1], 200, axis=0)
    decisions = routing_decisions(p, cost, NAMES, params, exploration=exploration, rng=rng)
    dist = action_distribution(P[:1], COST[:1], params, exploration)[0]
    reasons = {d.reason for d in decisions}
    assert reasons == {"max_utility", "explore"}
    for d in decisions:
        assert d.propensity == pytest.approx(dist[NAMES.index(d.model)])
        assert (d.reason == "max_utility") == (d.model == "medium")


def test_exploring_without_a_generator_is_refused():
    with pytest.raises(ValueError, match="pass rng="):
        routing_decisions(P, COST, NAMES, PolicyParams(1.0), exploration=Exploration("epsilon"))


def test_fallback_answers_the_model_with_propensity_one_and_no_scores():
    decided = fallback_decision("small")
    assert (decided.model, decided.reason, decided.propensity, decided.scores) == (
        "small",
        "fallback",
        1.0,
        [],
    )
