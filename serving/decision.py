"""The answer to a routing request: the chosen model, why, its propensity and the scores.

One definition for ``POST /route`` and ``outcome-router route``, so an offline run
answers exactly what the service would: same policy (`serving.policy.decide`),
same reasons (exploration included), same score rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from serving.policy import (
    REASON_EXPLORE,
    REASON_FALLBACK,
    REASON_NO_FEASIBLE,
    REASON_UTILITY,
    Exploration,
    PolicyParams,
    decide,
    utility,
)

#: Propensity of a fallback answer: the fallback model is not drawn.
FALLBACK_PROPENSITY = 1.0


@dataclass(frozen=True)
class RoutingDecision:
    """One answered decision.

    Attributes
    ----------
    model : str
        The candidate to call.
    reason : str
        ``"max_utility"``, ``"explore"`` (exploration drew another than the best
        candidate), ``"no_candidate_met_constraints"`` or ``"fallback"``.
    propensity : float
        Probability the policy gave ``model`` (1.0 when greedy and for fallbacks).
    scores : list of dict
        One ``{model, p_success, expected_cost_usd, utility}`` per allowed
        candidate, in bundle order; empty for a fallback. Plain dicts: the response
        validates them and the decision log writes them as they are.
    """

    model: str
    reason: str
    propensity: float
    scores: list[dict[str, Any]]


def routing_decisions(
    p_success: np.ndarray,
    expected_cost_usd: np.ndarray,
    candidates: Sequence[str],
    params: PolicyParams,
    *,
    exploration: Exploration | None = None,
    rng: np.random.Generator | None = None,
    allowed: np.ndarray | None = None,
) -> list[RoutingDecision]:
    """Decide every round and describe each decision.

    Parameters
    ----------
    p_success, expected_cost_usd : ndarray of shape (n_rounds, n_candidates)
    candidates : sequence of str
        Names of the columns, length ``n_candidates``.
    params : PolicyParams
    exploration : Exploration, optional
        None or method ``"none"``: the greedy policy, propensity 1.
    rng : numpy.random.Generator, optional
        Required when exploring.
    allowed : ndarray of bool, shape (n_candidates,), optional
        The candidates the caller permits; only they are scored in the answer.

    Returns
    -------
    list of RoutingDecision
        One per round.

    Examples
    --------
    >>> [d] = routing_decisions(np.array([[0.5, 0.9]]), np.array([[0.01, 0.2]]),
    ...                         ["small", "large"], PolicyParams(value_usd=1.0))
    >>> d.model, d.reason, d.propensity, [s["model"] for s in d.scores]
    ('large', 'max_utility', 1.0, ['small', 'large'])
    """
    p = np.asarray(p_success, dtype=np.float64)
    cost = np.asarray(expected_cost_usd, dtype=np.float64)
    decision = decide(p, cost, params, exploration, rng, allowed=allowed)
    u = utility(p, cost, params.value_usd)
    shown = [k for k in range(len(candidates)) if allowed is None or allowed[k]]
    answers = []
    for i in range(p.shape[0]):
        action = int(decision.action[i])
        if not bool(decision.feasible[i]):
            reason = REASON_NO_FEASIBLE
        elif action != int(decision.greedy[i]):
            reason = REASON_EXPLORE
        else:
            reason = REASON_UTILITY
        scores = [
            {
                "model": candidates[k],
                "p_success": float(p[i, k]),
                "expected_cost_usd": float(cost[i, k]),
                "utility": float(u[i, k]),
            }
            for k in shown
        ]
        answers.append(
            RoutingDecision(candidates[action], reason, float(decision.propensity[i]), scores)
        )
    return answers


def fallback_decision(model: str) -> RoutingDecision:
    """The answer when no decision could be made in time or without error."""
    return RoutingDecision(model, REASON_FALLBACK, FALLBACK_PROPENSITY, [])
