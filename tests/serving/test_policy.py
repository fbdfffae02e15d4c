"""The decision policy on hand-made score tables: every knob and every fallback, and
exploration whose logged propensities match the observed choice frequencies."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chisquare

from serving.policy import (
    Exploration,
    PolicyParams,
    action_distribution,
    choose,
    decide,
    near_best,
    sample_actions,
    utility,
)

# Three candidates: cheap and weak, middle, strong and expensive.
P3 = [[0.50, 0.80, 0.95]]
C3 = [[0.001, 0.01, 0.50]]

CASES = [
    # id, p, cost, params, allowed, expected action, expected feasible
    ("high value buys the strong model", P3, C3, PolicyParams(10.0), None, [2], [True]),
    ("mid value buys the middle", P3, C3, PolicyParams(1.0), None, [1], [True]),
    ("low value buys the cheap model", P3, C3, PolicyParams(0.02), None, [0], [True]),
    ("zero value buys the cheapest", P3, C3, PolicyParams(0.0), None, [0], [True]),
    (
        "floor excludes the cheap model",
        P3,
        C3,
        PolicyParams(0.02, min_success=0.7),
        None,
        [1],
        [True],
    ),
    (
        "floor met only by the strong",
        P3,
        C3,
        PolicyParams(0.02, min_success=0.9),
        None,
        [2],
        [True],
    ),
    ("budget excludes the strong", P3, C3, PolicyParams(10.0, max_cost_usd=0.1), None, [1], [True]),
    ("budget is inclusive", P3, C3, PolicyParams(10.0, max_cost_usd=0.5), None, [2], [True]),
    (
        "allowed subset",
        P3,
        C3,
        PolicyParams(10.0),
        np.array([True, True, False]),
        [1],
        [True],
    ),
    (
        "floor infeasible -> most likely allowed",
        P3,
        C3,
        PolicyParams(1.0, min_success=0.99),
        np.array([True, True, False]),
        [1],
        [False],
    ),
    (
        "budget infeasible -> cheapest allowed",
        P3,
        C3,
        PolicyParams(10.0, max_cost_usd=0.0001),
        np.array([False, True, True]),
        [1],
        [False],
    ),
    (
        "floor and budget infeasible -> most likely",
        P3,
        C3,
        PolicyParams(1.0, min_success=0.9, max_cost_usd=0.1),
        None,
        [2],
        [False],
    ),
    # Exactly equal utilities (0.25 each, exact in binary): the cheaper one wins.
    ("tie -> cheaper", [[0.75, 0.5]], [[0.5, 0.25]], PolicyParams(1.0), None, [1], [True]),
    (
        "tie -> cheaper, reversed",
        [[0.5, 0.75]],
        [[0.25, 0.5]],
        PolicyParams(1.0),
        None,
        [0],
        [True],
    ),
    (
        "rows decide independently",
        [[0.5, 0.9], [0.5, 0.52]],
        [[0.0, 0.1], [0.0, 0.1]],
        PolicyParams(1.0),
        None,
        [1, 0],
        [True, True],
    ),
    (
        "per-row allowed mask",
        [[0.5, 0.9], [0.5, 0.9]],
        [[0.0, 0.1], [0.0, 0.1]],
        PolicyParams(1.0),
        np.array([[True, True], [True, False]]),
        [1, 0],
        [True, True],
    ),
]


@pytest.mark.parametrize(
    ("p", "cost", "params", "allowed", "action", "feasible"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_choose(p, cost, params, allowed, action, feasible):
    got_action, got_feasible = choose(np.array(p), np.array(cost), params, allowed=allowed)
    assert got_action.tolist() == action
    assert got_feasible.tolist() == feasible


def test_choose_picks_argmax_utility_on_random_tables():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=(200, 5))
    cost = rng.uniform(0, 0.05, size=(200, 5))
    action, feasible = choose(p, cost, PolicyParams(0.3))
    assert feasible.all()
    np.testing.assert_array_equal(action, np.argmax(utility(p, cost, 0.3), axis=1))


SAME_SHAPE = r"Expected p_success and expected_cost_usd of one shape"
NONE_ALLOWED = "Every round needs at least one allowed candidate"
BAD_SHAPES = [
    ("1-d arrays", np.array([0.5, 0.6]), np.array([0.1, 0.2]), None, SAME_SHAPE),
    ("mismatched shapes", np.ones((2, 3)), np.ones((2, 2)), None, SAME_SHAPE),
    ("3-d arrays", np.ones((1, 2, 3)), np.ones((1, 2, 3)), None, SAME_SHAPE),
    ("nothing allowed", np.ones((1, 3)), np.ones((1, 3)), np.zeros(3, dtype=bool), NONE_ALLOWED),
    (
        "a row with nothing allowed",
        np.ones((2, 2)),
        np.ones((2, 2)),
        np.array([[1, 1], [0, 0]]),
        NONE_ALLOWED,
    ),
    (
        "allowed of the wrong width",
        np.ones((1, 3)),
        np.ones((1, 3)),
        np.ones(2, dtype=bool),
        r"`allowed` has shape \(2,\); expected \(3,\) or \(1, 3\)",
    ),
]


@pytest.mark.parametrize(
    ("p", "cost", "allowed", "message"),
    [c[1:] for c in BAD_SHAPES],
    ids=[c[0] for c in BAD_SHAPES],
)
def test_choose_refuses_bad_shapes(p, cost, allowed, message):
    with pytest.raises(ValueError, match=message):
        choose(p, cost, PolicyParams(1.0), allowed=allowed)


# ------------------------------------------------------------------- exploration

EXPLORATIONS = [
    Exploration("epsilon", epsilon=0.2),
    Exploration("epsilon", epsilon=1.0, top_k=2),
    Exploration("epsilon", epsilon=0.3, margin_usd=0.05),
    Exploration("softmax", temperature=0.02),
    Exploration("softmax", temperature=0.5, top_k=3),
    Exploration("softmax", temperature=0.1, margin_usd=0.02),
]
PARAMS = [PolicyParams(0.3), PolicyParams(0.3, min_success=0.4, max_cost_usd=0.04)]


def random_tables(n_rounds: int = 300, n_candidates: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(n_rounds, n_candidates)), rng.uniform(0, 0.05, (n_rounds, 5))


@pytest.mark.parametrize("params", PARAMS, ids=["plain", "floor+budget"])
@pytest.mark.parametrize("exploration", EXPLORATIONS, ids=repr)
def test_action_distribution_rows_sum_to_one_over_near_best(exploration, params):
    p, cost = random_tables()
    allowed = np.array([True, True, False, True, True])
    dist = action_distribution(p, cost, params, exploration, allowed=allowed)
    near, greedy, feasible = near_best(p, cost, params, exploration, allowed=allowed)
    np.testing.assert_allclose(dist.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert (dist >= 0).all()
    assert (dist[:, 2] == 0).all(), "a candidate the caller excluded was given probability"
    assert ((dist > 0) <= near).all(), "probability outside the near-best set"
    rows = np.arange(len(p))
    assert (dist[rows, greedy] > 0).all()
    # Rounds with no feasible candidate are not explored.
    assert (dist[~feasible][np.arange((~feasible).sum()), greedy[~feasible]] == 1.0).all()
    assert (near.sum(axis=1) <= (exploration.top_k or p.shape[1])).all()


def test_epsilon_probabilities_are_exact():
    p, cost = np.array([[0.5, 0.8, 0.95, 0.1]]), np.array([[0.001, 0.01, 0.5, 0.0]])
    # value 1: utilities 0.499, 0.79, 0.45, 0.1 -> greedy is 1.
    dist = action_distribution(p, cost, PolicyParams(1.0), Exploration("epsilon", epsilon=0.2))
    np.testing.assert_allclose(dist, [[0.05, 0.85, 0.05, 0.05]], rtol=0, atol=1e-15)
    near = Exploration("epsilon", epsilon=0.2, margin_usd=0.3)  # 0.499 and 0.79 only
    dist = action_distribution(p, cost, PolicyParams(1.0), near)
    np.testing.assert_allclose(dist, [[0.1, 0.9, 0.0, 0.0]], rtol=0, atol=1e-15)
    alone = Exploration("epsilon", epsilon=0.2, margin_usd=0.01)
    assert action_distribution(p, cost, PolicyParams(1.0), alone).tolist() == [[0, 1, 0, 0]]


def test_softmax_weights_follow_utility():
    p, cost = np.array([[0.5, 0.6, 0.7]]), np.zeros((1, 3))
    dist = action_distribution(p, cost, PolicyParams(1.0), Exploration("softmax", temperature=0.1))
    # Each candidate 0.1 USD better is e times likelier.
    np.testing.assert_allclose(dist[0, 1] / dist[0, 0], np.e)
    np.testing.assert_allclose(dist[0, 2] / dist[0, 1], np.e)


def test_without_exploration_the_policy_is_greedy_with_propensity_one():
    p, cost = random_tables()
    for exploration in (None, Exploration()):
        decisions = decide(p, cost, PolicyParams(0.3), exploration)
        greedy, feasible = choose(p, cost, PolicyParams(0.3))
        np.testing.assert_array_equal(decisions.action, greedy)
        np.testing.assert_array_equal(decisions.feasible, feasible)
        assert (decisions.propensity == 1.0).all()
        dist = action_distribution(p, cost, PolicyParams(0.3), exploration)
        assert (dist[np.arange(len(p)), greedy] == 1.0).all() and (dist.sum(axis=1) == 1).all()


def test_exploration_needs_an_rng():
    p, cost = random_tables(3)
    with pytest.raises(ValueError, match="default_rng"):
        decide(p, cost, PolicyParams(0.3), Exploration("epsilon"))


@pytest.mark.parametrize("exploration", EXPLORATIONS, ids=repr)
def test_draws_match_the_logged_propensities(exploration):
    """Over many draws (fixed seed), each candidate is chosen as often as its
    propensity says, and the propensity logged with a draw is its probability."""
    # Utilities at value 0.3: 0.140, 0.144, 0.145, 0.090, 0.144: near-best is several
    # candidates under every exploration setting, the margins included.
    p = np.array([[0.50, 0.52, 0.55, 0.30, 0.53]])
    cost = np.array([[0.010, 0.012, 0.020, 0.0, 0.015]])
    n_draws = 20_000
    p_rep, c_rep = np.repeat(p, n_draws, axis=0), np.repeat(cost, n_draws, axis=0)
    decisions = decide(p_rep, c_rep, PolicyParams(0.3), exploration, np.random.default_rng(7))
    dist = action_distribution(p, cost, PolicyParams(0.3), exploration)[0]
    np.testing.assert_array_equal(decisions.propensity, dist[decisions.action])
    counts = np.bincount(decisions.action, minlength=len(dist))
    support = dist > 0
    assert (counts[~support] == 0).all()
    assert support.sum() > 1, "the test round explores nothing"
    assert chisquare(counts[support], dist[support] * n_draws).pvalue > 1e-3
    # The check has power: the same draws do not fit a different distribution (half
    # the mass moved to the least likely candidate).
    other = dist[support] / 2
    other[np.argmin(other)] += 0.5
    assert chisquare(counts[support], other * n_draws).pvalue < 1e-6


def test_inverse_propensity_weighting_recovers_the_greedy_value():
    """What the propensities are for: rewards logged under exploration, weighted by
    1/propensity, estimate the value of another policy (here the greedy one)."""
    rng = np.random.default_rng(11)
    p, cost = random_tables(4000, seed=5)
    exploration = Exploration("epsilon", epsilon=0.5)
    logged = decide(p, cost, PolicyParams(0.3), exploration, rng)
    rows = np.arange(len(p))
    reward = rng.uniform(size=len(p)) < p[rows, logged.action]
    match = logged.action == logged.greedy
    ipw = np.mean(match * reward / logged.propensity)
    truth = p[rows, logged.greedy].mean()
    assert abs(ipw - truth) < 0.03


def test_sample_actions_never_draws_a_zero_probability_candidate():
    dist = np.array([[0.5, 0.0, 0.5, 0.0], [0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    action, propensity = sample_actions(np.repeat(dist, 2000, axis=0), np.random.default_rng(0))
    assert (propensity > 0).all()
    assert set(action[:2000]) == {0, 2}
    assert set(action[2000:4000]) == {3} and set(action[4000:]) == {0}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "greedy"}, "Unknown exploration method"),
        ({"method": "epsilon", "epsilon": 0.0}, "epsilon must be in"),
        ({"method": "epsilon", "epsilon": 1.5}, "epsilon must be in"),
        ({"method": "softmax", "temperature": 0.0}, "temperature"),
        ({"method": "softmax", "temperature": float("inf")}, "temperature"),
        ({"method": "epsilon", "margin_usd": -0.1}, "margin_usd"),
        ({"method": "epsilon", "top_k": 0}, "top_k"),
    ],
)
def test_exploration_refuses_bad_knobs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Exploration(**kwargs)


# Reference anchoring: two candidates of equal cost, the second predicted a bit better.
P_REF = np.array([[0.80, 0.85], [0.80, 0.95]])
C_REF = np.array([[0.01, 0.01], [0.01, 0.01]])


@pytest.mark.parametrize(
    ("margin", "expected"),
    [
        (0.0, [1, 1]),  # plain argmax: the better-looking candidate
        (0.1, [0, 1]),  # 0.05 better is not evidence enough, 0.15 is
        (1.0, [0, 0]),  # the reference unless another is cheaper
    ],
)
def test_reference_margin_leaves_the_reference_only_on_clear_evidence(margin, expected):
    params = PolicyParams(1.0, reference=0, reference_margin=margin)
    action, _ = choose(P_REF, C_REF, params)
    assert action.tolist() == expected
    # The same decision as the plain policy on the reference's p raised by the margin
    # (how training simulates it: `training.policy_target`).
    shifted = P_REF.copy()
    shifted[:, 0] += margin
    assert choose(shifted, C_REF, PolicyParams(1.0))[0].tolist() == expected
    assert action_distribution(P_REF, C_REF, params).argmax(axis=1).tolist() == expected


def test_reference_margin_is_ignored_when_the_reference_is_not_allowed():
    params = PolicyParams(1.0, reference=0, reference_margin=1.0)
    action, _ = choose(P_REF, C_REF, params, allowed=np.array([False, True]))
    assert action.tolist() == [1, 1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reference_margin": -0.1}, "reference_margin must be a finite number >= 0"),
        ({"reference_margin": float("inf")}, "reference_margin must be a finite number >= 0"),
        ({"reference": -1}, "candidate index >= 0"),
    ],
)
def test_reference_knobs_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PolicyParams(1.0, **kwargs)


def test_reference_outside_the_candidates_is_refused():
    params = PolicyParams(1.0, reference=5, reference_margin=0.1)
    with pytest.raises(ValueError, match="not a column of the 2 candidates"):
        choose(P_REF, C_REF, params)
