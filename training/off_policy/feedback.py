"""Logged bandit data: what a partial-feedback log holds, typed and checked once.

Open Bandit Pipeline passes logged data around as an untyped ``dict``
(``obp.types.BanditFeedback``); here it is a frozen dataclass whose arrays keep OBP's
names (``action``, ``reward``, ``pscore``) so an estimator's keyword arguments are the
feedback's fields. One round is one logged call: the logging policy chose ``action``,
only that candidate's outcome (``reward``) and cost (``cost_usd``) were observed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Rows of an action distribution must sum to 1 within this tolerance.
SUM_TOL = 1e-6


@dataclass(frozen=True)
class BanditFeedback:
    """One partial-feedback log: per round, the logged action, its outcome, cost and
    propensity, and optionally every action's predicted outcome and cost.

    Parameters
    ----------
    n_rounds : int
        Number of logged calls ``n``.
    n_actions : int
        Number of actions (candidate models) ``K``.
    action : ndarray of int, shape (n_rounds,)
        Index in ``[0, n_actions)`` of the action the logging policy chose.
    reward : ndarray of float, shape (n_rounds,)
        Observed outcome of the chosen action, in [0, 1].
    cost_usd : ndarray of float, shape (n_rounds,)
        Observed cost in USD (>= 0) of the chosen action.
    pscore : ndarray of float, shape (n_rounds,)
        Probability the logging policy gave the chosen action, ``pi_b(a_i | x_i)``, in
        (0, 1]: logged by `/route` or estimated (:func:`training.propensity.fit_logging_policy`).
    estimated_reward : ndarray of float, shape (n_rounds, n_actions), optional
        A regression model of the outcome, ``q(x_i, a)``; needed by DM and DR.
    estimated_cost_usd : ndarray of float, shape (n_rounds, n_actions), optional
        A regression model of the cost, ``c(x_i, a)``; needed by DM and DR for cost.
    action_names : tuple of str, optional
        Names of the actions, length ``n_actions``.

    Examples
    --------
    >>> fb = BanditFeedback(n_rounds=2, n_actions=2, action=np.array([0, 1]),
    ...                     reward=np.array([1.0, 0.0]), cost_usd=np.array([0.1, 0.2]),
    ...                     pscore=np.array([0.5, 0.5]))
    >>> fb.quality_inputs()["reward"]
    array([1., 0.])
    """

    n_rounds: int
    n_actions: int
    action: np.ndarray
    reward: np.ndarray
    cost_usd: np.ndarray
    pscore: np.ndarray
    estimated_reward: np.ndarray | None = None
    estimated_cost_usd: np.ndarray | None = None
    action_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        n, k = int(self.n_rounds), int(self.n_actions)
        if n < 1 or k < 1:
            raise ValueError(f"Expected n_rounds >= 1 and n_actions >= 1, got {n} and {k}.")
        action = np.asarray(self.action)
        if action.shape != (n,) or not np.issubdtype(action.dtype, np.integer):
            raise ValueError(
                f"Expected `action` of integers with shape (n_rounds,) = ({n},), got "
                f"{action.dtype} {action.shape}."
            )
        if action.min() < 0 or action.max() >= k:
            raise ValueError(
                f"Expected `action` in [0, n_actions) = [0, {k}), got values in "
                f"[{action.min()}, {action.max()}]."
            )
        arrays = {}
        for name in ("reward", "cost_usd", "pscore"):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.shape != (n,):
                raise ValueError(
                    f"Expected `{name}` of shape (n_rounds,) = ({n},), got {arr.shape}."
                )
            if not np.isfinite(arr).all():
                raise ValueError(f"Expected finite `{name}`, got NaN or inf values.")
            arrays[name] = arr
        check_reward(arrays["reward"])
        if arrays["cost_usd"].min() < 0:
            raise ValueError(
                f"Expected `cost_usd` >= 0, got a minimum of {arrays['cost_usd'].min()}."
            )
        check_pscore(arrays["pscore"])
        for name in ("estimated_reward", "estimated_cost_usd"):
            value = getattr(self, name)
            if value is None:
                continue
            arr = np.asarray(value, dtype=np.float64)
            if arr.shape != (n, k):
                raise ValueError(
                    f"Expected `{name}` of shape (n_rounds, n_actions) = ({n}, {k}), got "
                    f"{arr.shape}."
                )
            if not np.isfinite(arr).all():
                raise ValueError(f"Expected finite `{name}`, got NaN or inf values.")
            object.__setattr__(self, name, arr)
        if self.action_names is not None and len(self.action_names) != k:
            raise ValueError(
                f"Expected {k} action_names (one per action), got {len(self.action_names)}."
            )
        object.__setattr__(self, "n_rounds", n)
        object.__setattr__(self, "n_actions", k)
        object.__setattr__(self, "action", action.astype(np.int64))
        for name, arr in arrays.items():
            object.__setattr__(self, name, arr)

    def take(self, rounds: np.ndarray) -> BanditFeedback:
        """The log restricted to ``rounds`` (indices or a boolean mask), e.g. one half
        of it to choose a policy on while the other half estimates it."""
        optional = {
            name: None if getattr(self, name) is None else getattr(self, name)[rounds]
            for name in ("estimated_reward", "estimated_cost_usd")
        }
        action = self.action[rounds]
        return BanditFeedback(
            n_rounds=len(action),
            n_actions=self.n_actions,
            action=action,
            reward=self.reward[rounds],
            cost_usd=self.cost_usd[rounds],
            pscore=self.pscore[rounds],
            action_names=self.action_names,
            **optional,
        )

    def quality_inputs(self) -> dict[str, Any]:
        """Keyword arguments of an estimator for the outcome (the policy's quality)."""
        return {
            "action": self.action,
            "reward": self.reward,
            "pscore": self.pscore,
            "estimated_rewards_by_reg_model": self.estimated_reward,
        }

    def cost_inputs(self) -> dict[str, Any]:
        """Keyword arguments of an estimator for the cost: the same estimators, with the
        observed cost as the "reward" and the cost model as its regression."""
        return {
            "action": self.action,
            "reward": self.cost_usd,
            "pscore": self.pscore,
            "estimated_rewards_by_reg_model": self.estimated_cost_usd,
        }


def check_reward(reward: np.ndarray) -> None:
    """Outcomes are graded in [0, 1] (docs/call-log.md)."""
    if reward.min() < 0.0 or reward.max() > 1.0:
        raise ValueError(
            f"Expected `reward` (outcome) in [0, 1], got values in [{reward.min()}, "
            f"{reward.max()}]."
        )


def check_pscore(pscore: np.ndarray) -> None:
    """A logged propensity is the probability of something that happened: in (0, 1]."""
    if pscore.min() <= 0.0 or pscore.max() > 1.0:
        raise ValueError(
            f"Expected `pscore` in (0, 1], got values in [{pscore.min()}, {pscore.max()}]; "
            "a call the logging policy could not choose cannot have been logged."
        )


def check_ope_inputs(
    action_dist: np.ndarray,
    action: np.ndarray,
    reward: np.ndarray,
    pscore: np.ndarray | None = None,
    estimated_rewards_by_reg_model: np.ndarray | None = None,
) -> None:
    """Check an estimator's inputs as ``obp.utils.check_ope_inputs`` does.

    Parameters
    ----------
    action_dist : ndarray of float, shape (n_rounds, n_actions)
        The evaluation policy's distribution over actions, ``pi_e(a | x_i)``.
    action : ndarray of int, shape (n_rounds,)
    reward : ndarray of float, shape (n_rounds,)
    pscore : ndarray of float, shape (n_rounds,), optional
    estimated_rewards_by_reg_model : ndarray of float, shape (n_rounds, n_actions), optional

    Raises
    ------
    ValueError
        On mismatched shapes, rows of ``action_dist`` that do not sum to 1, actions out
        of range, non-finite values or ``pscore`` outside (0, 1].
    """
    if not isinstance(action_dist, np.ndarray) or action_dist.ndim != 2:
        raise ValueError(
            "Expected `action_dist` as an ndarray of shape (n_rounds, n_actions), got "
            f"{getattr(action_dist, 'shape', type(action_dist).__name__)}."
        )
    n, k = action_dist.shape
    if not np.isfinite(action_dist).all() or action_dist.min() < 0:
        raise ValueError("Expected `action_dist` of finite probabilities >= 0.")
    sums = action_dist.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=SUM_TOL):
        bad = int((~np.isclose(sums, 1.0, atol=SUM_TOL)).sum())
        raise ValueError(
            f"Expected every row of `action_dist` to sum to 1, got {bad} rows that do not "
            f"(e.g. {float(sums[~np.isclose(sums, 1.0, atol=SUM_TOL)][0])})."
        )
    for name, arr in (("action", action), ("reward", reward), ("pscore", pscore)):
        if arr is None:
            continue
        if np.shape(arr) != (n,):
            raise ValueError(
                f"Expected `{name}.shape[0] == action_dist.shape[0]` = {n} (one per round), "
                f"got shape {np.shape(arr)}."
            )
        if not np.isfinite(np.asarray(arr, dtype=np.float64)).all():
            raise ValueError(f"Expected finite `{name}`, got NaN or inf values.")
    if not np.issubdtype(np.asarray(action).dtype, np.integer):
        raise ValueError(f"Expected integer `action`, got {np.asarray(action).dtype}.")
    if action.min() < 0 or action.max() >= k:
        raise ValueError(
            f"Expected `action` in [0, n_actions) = [0, {k}), got values in "
            f"[{action.min()}, {action.max()}]."
        )
    if pscore is not None:
        check_pscore(np.asarray(pscore, dtype=np.float64))
    if estimated_rewards_by_reg_model is not None:
        q = estimated_rewards_by_reg_model
        if np.shape(q) != (n, k):
            raise ValueError(
                f"Expected `estimated_rewards_by_reg_model.shape == action_dist.shape` = "
                f"{(n, k)}, got {np.shape(q)}."
            )
        if not np.isfinite(q).all():
            raise ValueError("Expected finite `estimated_rewards_by_reg_model`.")


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size of importance weights, ``(sum w)^2 / sum w^2``.

    ``n`` when every weight is equal; close to 1 when one round carries the estimate.
    0 when every weight is 0 (the evaluated policy never agrees with the logs).

    Examples
    --------
    >>> effective_sample_size(np.array([1.0, 1.0, 2.0, 0.0]))
    2.6666666666666665
    """
    w = np.asarray(weights, dtype=np.float64)
    squares = float((w**2).sum())
    return float(w.sum() ** 2 / squares) if squares > 0 else 0.0
