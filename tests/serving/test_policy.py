"""The decision policy on hand-made score tables: every knob and every fallback."""

from __future__ import annotations

import numpy as np
import pytest

from serving.policy import PolicyParams, choose, utility

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


BAD_SHAPES = [
    ("1-d arrays", np.array([0.5, 0.6]), np.array([0.1, 0.2]), None),
    ("mismatched shapes", np.ones((2, 3)), np.ones((2, 2)), None),
    ("3-d arrays", np.ones((1, 2, 3)), np.ones((1, 2, 3)), None),
    ("nothing allowed", np.ones((1, 3)), np.ones((1, 3)), np.zeros(3, dtype=bool)),
    ("a row with nothing allowed", np.ones((2, 2)), np.ones((2, 2)), np.array([[1, 1], [0, 0]])),
    ("allowed of the wrong width", np.ones((1, 3)), np.ones((1, 3)), np.ones(2, dtype=bool)),
]


@pytest.mark.parametrize(
    ("p", "cost", "allowed"), [c[1:] for c in BAD_SHAPES], ids=[c[0] for c in BAD_SHAPES]
)
def test_choose_refuses_bad_shapes(p, cost, allowed):
    with pytest.raises(ValueError):
        choose(p, cost, PolicyParams(1.0), allowed=allowed)
