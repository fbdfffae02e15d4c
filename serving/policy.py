"""The decision policy: pure numpy, shared by `/route`, `outcome-router route` and
offline evaluation, so what is evaluated is exactly what is served.

Scoring (what each candidate would achieve and cost) is kept apart from deciding
(which one to call): the same scores answer any `value_usd`, floor or budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Reasons a decision can carry, in the order the policy falls back through them.
REASON_UTILITY = "max_utility"
REASON_NO_FEASIBLE = "no_candidate_met_constraints"
REASON_FALLBACK = "fallback"


@dataclass(frozen=True)
class PolicyParams:
    """Knobs of one decision; any of them may come from the request or the bundle.

    Parameters
    ----------
    value_usd : float
        What one good outcome is worth in USD. The policy picks
        ``argmax(value_usd * p_success - expected_cost_usd)``.
    min_success : float or None
        Candidates whose ``p_success`` is below this floor are excluded.
    max_cost_usd : float or None
        Candidates whose ``expected_cost_usd`` is above this budget are excluded.
    """

    value_usd: float
    min_success: float | None = None
    max_cost_usd: float | None = None


def utility(p_success: np.ndarray, expected_cost_usd: np.ndarray, value_usd: float) -> np.ndarray:
    """Expected net value of calling each candidate, shape ``(n_rounds, n_candidates)``."""
    return value_usd * p_success - expected_cost_usd


def choose(
    p_success: np.ndarray,
    expected_cost_usd: np.ndarray,
    params: PolicyParams,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pick one candidate per round.

    Parameters
    ----------
    p_success, expected_cost_usd : ndarray of shape (n_rounds, n_candidates)
    params : PolicyParams
    allowed : ndarray of bool, shape (n_candidates,) or (n_rounds, n_candidates), optional
        Candidates the caller permits (the request's ``candidates`` subset).

    Returns
    -------
    action : ndarray of int, shape (n_rounds,)
        Index of the chosen candidate.
    feasible : ndarray of bool, shape (n_rounds,)
        False where no allowed candidate met ``min_success`` and ``max_cost_usd``;
        those rounds fall back to the allowed candidate most likely to succeed
        (with a floor) or the cheapest one (with a budget only), so the caller
        still gets an answer and can report why.
    """
    p = np.asarray(p_success, dtype=np.float64)
    c = np.asarray(expected_cost_usd, dtype=np.float64)
    if p.shape != c.shape or p.ndim != 2:
        raise ValueError(
            f"Expected p_success and expected_cost_usd of one shape (n_rounds, n_candidates), "
            f"got {p.shape} and {c.shape}."
        )
    base = np.ones_like(p, dtype=bool)
    if allowed is not None:
        base &= np.broadcast_to(np.asarray(allowed, dtype=bool), p.shape)
    if not base.any(axis=1).all():
        raise ValueError("Every round needs at least one allowed candidate.")

    mask = base.copy()
    if params.min_success is not None:
        mask &= p >= params.min_success
    if params.max_cost_usd is not None:
        mask &= c <= params.max_cost_usd
    feasible = mask.any(axis=1)

    u = np.where(mask, utility(p, c, params.value_usd), -np.inf)
    # Ties go to the cheaper candidate: sort key (utility desc, cost asc).
    u = np.where(mask, u - 1e-12 * c, -np.inf)
    action = np.argmax(u, axis=1)

    if not feasible.all():
        if params.min_success is not None:
            fallback_key = np.where(base, p, -np.inf)
        else:
            fallback_key = np.where(base, -c, -np.inf)
        action = np.where(feasible, action, np.argmax(fallback_key, axis=1))
    return action, feasible
