"""The decision policy: pure numpy, shared by `/route`, `outcome-router route` and
offline evaluation, so what is evaluated is exactly what is served.

Scoring (what each candidate would achieve and cost) is kept apart from deciding
(which one to call): the same scores answer any `value_usd`, floor or budget.

The greedy policy (`choose`) is deterministic. `action_distribution` adds optional
exploration (epsilon-greedy or softmax among near-best candidates) and gives the
probability of every candidate, so the propensity of what was drawn is exact and
a new policy can later be evaluated off-policy on the logged calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Reasons a decision can carry, in the order the policy falls back through them.
REASON_UTILITY = "max_utility"
REASON_NO_FEASIBLE = "no_candidate_met_constraints"
REASON_FALLBACK = "fallback"
#: The exploring policy drew another candidate than the greedy one.
REASON_EXPLORE = "explore"

#: Exploration methods: ``none`` (greedy, propensity 1), ``epsilon``, ``softmax``.
EXPLORATION_METHODS = ("none", "epsilon", "softmax")


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
    reference : int or None
        Index of the reference model (the best single model the bundle was trained
        to match). None: no reference.
    reference_margin : float >= 0, default=0.0
        Another candidate replaces the reference only if its utility beats the
        reference's by ``value_usd * reference_margin``: the reference is scored as
        if its ``p_success`` were ``reference_margin`` higher. On unseen prompts the
        argmax over many noisy estimates favours whichever candidate looks lucky;
        the margin asks for evidence before leaving the model known to be best
        (`training.policy_target` chooses it with ``value_usd``).
    """

    value_usd: float
    min_success: float | None = None
    max_cost_usd: float | None = None
    reference: int | None = None
    reference_margin: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.reference_margin < np.inf:
            raise ValueError(
                f"reference_margin must be a finite number >= 0, got {self.reference_margin!r}."
            )
        if self.reference is not None and self.reference < 0:
            raise ValueError(f"reference must be a candidate index >= 0, got {self.reference!r}.")


def utility(p_success: np.ndarray, expected_cost_usd: np.ndarray, value_usd: float) -> np.ndarray:
    """Expected net value of calling each candidate, shape ``(n_rounds, n_candidates)``."""
    return value_usd * p_success - expected_cost_usd


def decision_utility(p: np.ndarray, c: np.ndarray, params: PolicyParams) -> np.ndarray:
    """`utility`, with the reference's raised by ``value_usd * reference_margin``: what
    the policy ranks by. The scores a decision reports stay `utility` (what a call is
    expected to be worth); the anchor is a rule of the decision, stated in the
    manifest's ``policy``."""
    u = utility(p, c, params.value_usd)
    if params.reference is not None and params.reference_margin > 0:
        if params.reference >= p.shape[1]:
            raise ValueError(
                f"reference {params.reference} is not a column of the {p.shape[1]} candidates."
            )
        u = u.copy()
        u[:, params.reference] += params.value_usd * params.reference_margin
    return u


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
    base = _allowed_mask(p, allowed)
    mask = _feasible_mask(p, c, params, base)
    feasible = mask.any(axis=1)

    u = np.where(mask, decision_utility(p, c, params), -np.inf)
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


def _allowed_mask(p: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
    base = np.ones_like(p, dtype=bool)
    if allowed is not None:
        allowed = np.asarray(allowed, dtype=bool)
        if allowed.shape not in ((p.shape[1],), p.shape):
            raise ValueError(
                f"`allowed` has shape {allowed.shape}; expected ({p.shape[1]},) or {p.shape}, "
                "one flag per candidate (per round)."
            )
        base &= allowed
    if not base.any(axis=1).all():
        raise ValueError("Every round needs at least one allowed candidate.")
    return base


def _feasible_mask(
    p: np.ndarray, c: np.ndarray, params: PolicyParams, base: np.ndarray
) -> np.ndarray:
    """Allowed candidates (``base``, from `_allowed_mask`) that meet the floor and the
    budget, shape of ``p``."""
    mask = base.copy()
    if params.min_success is not None:
        mask &= p >= params.min_success
    if params.max_cost_usd is not None:
        mask &= c <= params.max_cost_usd
    return mask


@dataclass(frozen=True)
class Exploration:
    """How the served policy explores around the greedy choice.

    Exploration only ever picks among *near-best* candidates: feasible ones (allowed,
    meeting ``min_success`` and ``max_cost_usd``) whose utility is within
    ``margin_usd`` of the best, and among the ``top_k`` by utility; the greedy
    candidate is always one of them. Rounds with no feasible candidate are not
    explored.

    Parameters
    ----------
    method : {"none", "epsilon", "softmax"}, default="none"
        ``epsilon``: the greedy candidate with probability ``1 - epsilon``, else one
        near-best candidate uniformly (the greedy one included).
        ``softmax``: near-best candidates with probability proportional to
        ``exp(utility / temperature)``.
    epsilon : float in (0, 1], default=0.05
    temperature : float > 0, default=0.05
        In USD of utility: a candidate ``temperature`` worse than the best is drawn
        ``e`` times less often.
    margin_usd : float >= 0 or None, default=None
        Near-best: utility at least ``best - margin_usd``. None: no margin.
    top_k : int >= 1 or None, default=None
        Near-best: among the ``top_k`` feasible candidates by utility. None: all.

    Examples
    --------
    >>> Exploration("epsilon", epsilon=0.1, top_k=2).describe()
    {'method': 'epsilon', 'epsilon': 0.1, 'margin_usd': None, 'top_k': 2}
    """

    method: str = "none"
    epsilon: float = 0.05
    temperature: float = 0.05
    margin_usd: float | None = None
    top_k: int | None = None

    def __post_init__(self) -> None:
        if self.method not in EXPLORATION_METHODS:
            raise ValueError(
                f"Unknown exploration method {self.method!r}; expected one of "
                f"{list(EXPLORATION_METHODS)}."
            )
        if not 0.0 < self.epsilon <= 1.0:
            raise ValueError(f"epsilon must be in (0, 1], got {self.epsilon!r}.")
        if not (0.0 < self.temperature < np.inf):
            raise ValueError(f"temperature must be a finite number > 0, got {self.temperature!r}.")
        if self.margin_usd is not None and not (0.0 <= self.margin_usd < np.inf):
            raise ValueError(f"margin_usd must be a finite number >= 0, got {self.margin_usd!r}.")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {self.top_k!r}.")

    @property
    def enabled(self) -> bool:
        """False for the deterministic greedy policy."""
        return self.method != "none"

    def describe(self) -> dict[str, Any] | None:
        """The knobs that shaped a draw, for the decision log (None when greedy)."""
        if not self.enabled:
            return None
        out: dict[str, Any] = {"method": self.method}
        if self.method == "epsilon":
            out["epsilon"] = self.epsilon
        else:
            out["temperature"] = self.temperature
        out["margin_usd"] = self.margin_usd
        out["top_k"] = self.top_k
        return out


@dataclass(frozen=True)
class Decisions:
    """What the policy did, per round.

    Attributes
    ----------
    action : ndarray of int, shape (n_rounds,)
        The chosen candidate (drawn when exploring).
    propensity : ndarray of float, shape (n_rounds,)
        Probability the policy gave ``action``: ``action_dist[i, action[i]]``.
    greedy : ndarray of int, shape (n_rounds,)
        What `choose` picks; equal to ``action`` without exploration.
    feasible : ndarray of bool, shape (n_rounds,)
        See `choose`.
    """

    action: np.ndarray
    propensity: np.ndarray
    greedy: np.ndarray
    feasible: np.ndarray


def near_best(
    p_success: np.ndarray,
    expected_cost_usd: np.ndarray,
    params: PolicyParams,
    exploration: Exploration,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidates exploration may pick from.

    Returns
    -------
    near : ndarray of bool, shape (n_rounds, n_candidates)
        Near-best candidates; exactly the greedy one in rounds with no feasible
        candidate.
    greedy, feasible : ndarray, shape (n_rounds,)
        As returned by `choose`.
    """
    greedy, feasible = choose(p_success, expected_cost_usd, params, allowed=allowed)
    p = np.asarray(p_success, dtype=np.float64)
    c = np.asarray(expected_cost_usd, dtype=np.float64)
    rows = np.arange(p.shape[0])
    mask = _feasible_mask(p, c, params, _allowed_mask(p, allowed))
    key = np.where(mask, decision_utility(p, c, params) - 1e-12 * c, -np.inf)
    near = mask.copy()
    if exploration.margin_usd is not None:
        best = key[rows, greedy]
        near &= key >= (best - exploration.margin_usd)[:, None]
    if exploration.top_k is not None:
        rank = np.argsort(np.argsort(-key, axis=1, kind="stable"), axis=1, kind="stable")
        near &= rank < exploration.top_k
    near[rows, greedy] = True
    near[~feasible] = False
    near[rows[~feasible], greedy[~feasible]] = True
    return near, greedy, feasible


def action_distribution(
    p_success: np.ndarray,
    expected_cost_usd: np.ndarray,
    params: PolicyParams,
    exploration: Exploration | None = None,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """Probability the policy gives every candidate, shape ``(n_rounds, n_candidates)``.

    Rows sum to 1. Without exploration each row is one-hot on `choose`'s pick.
    Offline evaluation uses this to weigh logged calls (``action_dist`` in OBP's
    terms); `/route` draws from it.

    Examples
    --------
    >>> action_distribution(np.array([[0.5, 0.9]]), np.array([[0.0, 0.1]]),
    ...                     PolicyParams(1.0), Exploration("epsilon", epsilon=0.2))
    array([[0.1, 0.9]])
    """
    return _distribution(p_success, expected_cost_usd, params, exploration, allowed)[0]


def _distribution(
    p_success: np.ndarray,
    expected_cost_usd: np.ndarray,
    params: PolicyParams,
    exploration: Exploration | None,
    allowed: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    exploration = exploration or Exploration()
    if not exploration.enabled:
        greedy, feasible = choose(p_success, expected_cost_usd, params, allowed=allowed)
        dist = np.zeros(np.shape(p_success), dtype=np.float64)
        dist[np.arange(dist.shape[0]), greedy] = 1.0
        return dist, greedy, feasible
    near, greedy, feasible = near_best(
        p_success, expected_cost_usd, params, exploration, allowed=allowed
    )
    rows = np.arange(near.shape[0])
    if exploration.method == "epsilon":
        n_near = near.sum(axis=1)
        eps = exploration.epsilon
        dist = np.where(near, eps / n_near[:, None], 0.0)
        # One expression per cell, and exactly 1 where the greedy one is alone.
        dist[rows, greedy] = np.where(n_near == 1, 1.0, 1.0 - eps + eps / n_near)
    else:
        u = decision_utility(
            np.asarray(p_success, dtype=np.float64),
            np.asarray(expected_cost_usd, dtype=np.float64),
            params,
        )
        z = np.where(near, u, -np.inf)
        z = (z - z.max(axis=1, keepdims=True)) / exploration.temperature
        weights = np.exp(z)  # exp(-inf) = 0 outside the near-best set
        dist = weights / weights.sum(axis=1, keepdims=True)
    return dist, greedy, feasible


def sample_actions(
    action_dist: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one candidate per round from ``action_dist``.

    Parameters
    ----------
    action_dist : ndarray of shape (n_rounds, n_candidates)
        Rows of probabilities summing to 1 (`action_distribution`).
    rng : numpy.random.Generator
        Seed it for reproducible draws.

    Returns
    -------
    action : ndarray of int, shape (n_rounds,)
    propensity : ndarray of float, shape (n_rounds,)
        ``action_dist[i, action[i]]``: the exact probability of what was drawn,
        never 0 (a candidate with probability 0 is never drawn).
    """
    dist = np.asarray(action_dist, dtype=np.float64)
    cumulative = np.cumsum(dist, axis=1)
    draw = rng.random(dist.shape[0]) * cumulative[:, -1]
    action = (cumulative <= draw[:, None]).sum(axis=1)
    # Rounding could point past the last candidate with probability > 0.
    last_positive = dist.shape[1] - 1 - np.argmax(dist[:, ::-1] > 0, axis=1)
    action = np.minimum(action, last_positive)
    rows = np.arange(dist.shape[0])
    return action, dist[rows, action]


def decide(
    p_success: np.ndarray,
    expected_cost_usd: np.ndarray,
    params: PolicyParams,
    exploration: Exploration | None = None,
    rng: np.random.Generator | None = None,
    allowed: np.ndarray | None = None,
) -> Decisions:
    """Choose one candidate per round, with its propensity: what `/route` runs.

    Without exploration this is `choose` with propensity 1 (no random draw). With
    it, the candidate is drawn from `action_distribution` with ``rng``.

    Raises
    ------
    ValueError
        If exploration is on and no ``rng`` is given, or for bad shapes (`choose`).
    """
    if exploration is None or not exploration.enabled:
        greedy, feasible = choose(p_success, expected_cost_usd, params, allowed=allowed)
        return Decisions(greedy, np.ones(greedy.shape[0]), greedy, feasible)
    if rng is None:
        raise ValueError("Exploration draws at random: pass rng=np.random.default_rng(seed).")
    dist, greedy, feasible = _distribution(
        p_success, expected_cost_usd, params, exploration, allowed
    )
    action, propensity = sample_actions(dist, rng)
    return Decisions(action, propensity, greedy, feasible)
