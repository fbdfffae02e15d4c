"""Off-policy estimators of a policy's value from logged bandit data, in the style of
Open Bandit Pipeline (``obp.ope.estimators``).

OBP 0.5.7 (its latest release) requires Python < 3.11 and this project runs 3.11, so
the four estimators we need are written here with OBP's interface: dataclasses with an
``estimator_name``, ``estimate_policy_value`` and ``estimate_interval`` (bootstrap),
taking ``action_dist``, ``action``, ``reward``, ``pscore`` and
``estimated_rewards_by_reg_model`` as keywords (the fields of
:meth:`BanditFeedback.quality_inputs`).

Notation: round ``i`` has context ``x_i``, logged action ``a_i``, observed reward
``r_i``, logging propensity ``pi_b(a_i|x_i)`` (``pscore``); the evaluated policy gives
``pi_e(a|x_i)`` (``action_dist``); the importance weight is
``w_i = pi_e(a_i|x_i) / pi_b(a_i|x_i)``, optionally clipped at ``lambda_``; ``q(x, a)``
is a regression of the reward.

The "reward" can be any per-call quantity: :mod:`training.evaluation.off_policy` runs
the same estimators on the outcome (quality) and on the cost in USD.

References
----------
Dudík, Langford and Li (2011). Doubly Robust Policy Evaluation and Learning. ICML.
Swaminathan and Joachims (2015). The Self-Normalized Estimator for Counterfactual
Learning. NeurIPS.
Saito et al. (2021). Open Bandit Dataset and Pipeline. NeurIPS Datasets and Benchmarks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.off_policy.feedback import check_ope_inputs

#: Resamples drawn at once by the bootstrap (bounds its memory to 100 x n indices).
_CHUNK = 100


@dataclass(frozen=True)
class PolicyValueInterval:
    """A point estimate with its bootstrap percentile interval.

    Parameters
    ----------
    estimate : float
        The estimator on the whole log.
    low, high : float
        The ``alpha / 2`` and ``1 - alpha / 2`` quantiles of the estimator over
        bootstrap resamples of the rounds.
    alpha : float
        ``0.05`` for a 95% interval.
    """

    estimate: float
    low: float
    high: float
    alpha: float

    def covers(self, value: float) -> bool:
        """Whether ``value`` lies in ``[low, high]``."""
        return bool(self.low <= value <= self.high)


class BaseOffPolicyEstimator(ABC):
    """Base class: an estimate is ``sum_i numerator_i / sum_i denominator_i``.

    Subclasses give the per-round terms (:meth:`_round_terms`); the point estimate and
    the bootstrap interval are computed from them, so a ratio estimator (SNIPS) is
    re-normalised on every resample rather than bootstrapped as a plain mean.
    """

    estimator_name: str

    @abstractmethod
    def _round_terms(
        self,
        action_dist: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        pscore: np.ndarray | None,
        estimated_rewards_by_reg_model: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-round numerator and denominator, each of shape (n_rounds,)."""

    def estimate_policy_value(
        self,
        action_dist: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        pscore: np.ndarray | None = None,
        estimated_rewards_by_reg_model: np.ndarray | None = None,
        **kwargs: Any,
    ) -> float:
        """Estimated value of the evaluation policy ``action_dist``.

        Parameters
        ----------
        action_dist : ndarray of float, shape (n_rounds, n_actions)
            ``pi_e(a | x_i)``; rows sum to 1 (one-hot for a deterministic policy).
        action : ndarray of int, shape (n_rounds,)
        reward : ndarray of float, shape (n_rounds,)
        pscore : ndarray of float, shape (n_rounds,), optional
            Needed by IPS, SNIPS and DR.
        estimated_rewards_by_reg_model : ndarray of float, shape (n_rounds, n_actions), optional
            Needed by DM and DR.
        **kwargs
            Ignored, so one dict of logged data can feed every estimator (as in OBP).

        Returns
        -------
        value : float
            NaN when undefined (SNIPS with every weight 0).
        """
        num, den = self._checked_terms(
            action_dist, action, reward, pscore, estimated_rewards_by_reg_model
        )
        total = den.sum()
        return float(num.sum() / total) if total > 0 else float("nan")

    def estimate_interval(
        self,
        action_dist: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        pscore: np.ndarray | None = None,
        estimated_rewards_by_reg_model: np.ndarray | None = None,
        *,
        n_bootstrap: int = 1000,
        alpha: float = 0.05,
        random_state: int | None = None,
        **kwargs: Any,
    ) -> PolicyValueInterval:
        """Point estimate and nonparametric bootstrap ``1 - alpha`` interval.

        Rounds are resampled with replacement ``n_bootstrap`` times and the estimator is
        recomputed on each resample; the interval is the ``alpha/2`` and ``1 - alpha/2``
        percentiles (resamples where the estimator is undefined are skipped).

        Parameters
        ----------
        action_dist, action, reward, pscore, estimated_rewards_by_reg_model
            As in :meth:`estimate_policy_value`.
        n_bootstrap : int, default=1000
        alpha : float in (0, 1), default=0.05
        random_state : int, optional
            Seed of the resampling, for reproducible intervals.
        """
        if not (isinstance(n_bootstrap, int | np.integer) and n_bootstrap >= 1):
            raise ValueError(f"Expected n_bootstrap an integer >= 1, got {n_bootstrap!r}.")
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"Expected alpha in (0, 1), got {alpha!r}.")
        num, den = self._checked_terms(
            action_dist, action, reward, pscore, estimated_rewards_by_reg_model
        )
        n = num.shape[0]
        rng = np.random.default_rng(random_state)
        values = []
        for start in range(0, n_bootstrap, _CHUNK):
            size = min(_CHUNK, n_bootstrap - start)
            idx = rng.integers(0, n, size=(size, n))
            total = den[idx].sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                values.append(np.where(total > 0, num[idx].sum(axis=1) / total, np.nan))
        boot = np.concatenate(values)
        estimate = float(num.sum() / den.sum()) if den.sum() > 0 else float("nan")
        if np.isnan(boot).all():
            return PolicyValueInterval(estimate, float("nan"), float("nan"), alpha)
        low, high = np.nanpercentile(boot, [100 * alpha / 2, 100 * (1 - alpha / 2)])
        return PolicyValueInterval(estimate, float(low), float(high), alpha)

    def _checked_terms(self, action_dist, action, reward, pscore, q):
        action_dist = np.asarray(action_dist, dtype=np.float64)
        action = np.asarray(action)
        reward = np.asarray(reward, dtype=np.float64)
        if pscore is not None:
            pscore = np.asarray(pscore, dtype=np.float64)
        if q is not None:
            q = np.asarray(q, dtype=np.float64)
        check_ope_inputs(action_dist, action, reward, pscore, q)
        return self._round_terms(action_dist, action, reward, pscore, q)


def _require(value: np.ndarray | None, name: str, estimator: str) -> np.ndarray:
    if value is None:
        raise ValueError(f"`{name}` must be given: {estimator} needs it.")
    return value


@dataclass
class DirectMethod(BaseOffPolicyEstimator):
    """Direct Method: the regression's value of the evaluated policy.

    ``V_DM = 1/n sum_i sum_a pi_e(a|x_i) q(x_i, a)``

    No importance weights, so low variance, but biased wherever ``q`` is wrong, and the
    bootstrap interval only reflects the spread over prompts, not the model's error.

    Parameters
    ----------
    estimator_name : str, default="dm"

    References
    ----------
    Beygelzimer and Langford (2009). The Offset Tree for Learning with Partial Labels.
    KDD.
    """

    estimator_name: str = "dm"

    def _round_terms(self, action_dist, action, reward, pscore, q):
        q = _require(q, "estimated_rewards_by_reg_model", "DM")
        return (action_dist * q).sum(axis=1), np.ones_like(reward)


@dataclass
class InverseProbabilityWeighting(BaseOffPolicyEstimator):
    """Inverse Probability Weighting (IPS).

    ``V_IPS = 1/n sum_i w_i r_i``, ``w_i = min(pi_e(a_i|x_i) / pi_b(a_i|x_i), lambda_)``

    Unbiased when the propensities are right and no weight is clipped; its variance
    grows with the weights (see :func:`~training.off_policy.effective_sample_size`).

    Parameters
    ----------
    lambda_ : float, default=inf
        Clip importance weights at this value (bias for less variance).
    estimator_name : str, default="ips"

    References
    ----------
    Horvitz and Thompson (1952). A Generalization of Sampling Without Replacement from a
    Finite Universe. JASA.
    Strehl, Langford, Li and Kakade (2010). Learning from Logged Implicit Exploration
    Data. NeurIPS.
    """

    lambda_: float = np.inf
    estimator_name: str = "ips"

    def __post_init__(self) -> None:
        if not (isinstance(self.lambda_, int | float) and self.lambda_ > 0):
            raise ValueError(f"Expected lambda_ a number > 0, got {self.lambda_!r}.")

    def weights(self, action_dist: np.ndarray, action: np.ndarray, pscore: np.ndarray):
        """Clipped importance weights ``w_i``, shape (n_rounds,)."""
        rows = np.arange(action.shape[0])
        return np.minimum(action_dist[rows, action] / pscore, self.lambda_)

    def _round_terms(self, action_dist, action, reward, pscore, q):
        w = self.weights(action_dist, action, _require(pscore, "pscore", "IPS"))
        return w * reward, np.ones_like(reward)


@dataclass
class SelfNormalizedInverseProbabilityWeighting(InverseProbabilityWeighting):
    """Self-Normalized IPS (SNIPS).

    ``V_SNIPS = sum_i w_i r_i / sum_i w_i``

    Slightly biased but consistent, bounded by the range of the rewards, and far less
    variable than IPS when weights are large: the estimator we expect to trust when no
    good regression model exists.

    Parameters
    ----------
    lambda_ : float, default=inf
    estimator_name : str, default="snips"

    References
    ----------
    Swaminathan and Joachims (2015). The Self-Normalized Estimator for Counterfactual
    Learning. NeurIPS.
    """

    lambda_: float = np.inf
    estimator_name: str = "snips"

    def _round_terms(self, action_dist, action, reward, pscore, q):
        w = self.weights(action_dist, action, _require(pscore, "pscore", "SNIPS"))
        return w * reward, w


@dataclass
class DoublyRobust(InverseProbabilityWeighting):
    """Doubly Robust (DR): DM plus an importance-weighted correction of its residual.

    ``V_DR = 1/n sum_i [ sum_a pi_e(a|x_i) q(x_i, a) + w_i (r_i - q(x_i, a_i)) ]``

    Unbiased if either the propensities or the regression are right; the correction's
    variance shrinks as ``q`` improves.

    Parameters
    ----------
    lambda_ : float, default=inf
    estimator_name : str, default="dr"

    References
    ----------
    Dudík, Langford and Li (2011). Doubly Robust Policy Evaluation and Learning. ICML.
    """

    lambda_: float = np.inf
    estimator_name: str = "dr"

    def _round_terms(self, action_dist, action, reward, pscore, q):
        q = _require(q, "estimated_rewards_by_reg_model", "DR")
        w = self.weights(action_dist, action, _require(pscore, "pscore", "DR"))
        rows = np.arange(action.shape[0])
        direct = (action_dist * q).sum(axis=1)
        return direct + w * (reward - q[rows, action]), np.ones_like(reward)


#: The estimators ``evaluate`` reports, by name (the keys of ``metrics.json``).
ESTIMATORS: dict[str, type[BaseOffPolicyEstimator]] = {
    "dr": DoublyRobust,
    "snips": SelfNormalizedInverseProbabilityWeighting,
    "ips": InverseProbabilityWeighting,
    "dm": DirectMethod,
}


def make_estimator(name: str, *, lambda_: float = np.inf) -> BaseOffPolicyEstimator:
    """An estimator of :data:`ESTIMATORS` by name; ``lambda_`` clips its weights.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the available ones).
    """
    if name not in ESTIMATORS:
        raise ValueError(f"Unknown estimator {name!r}; available: {list(ESTIMATORS)}.")
    cls = ESTIMATORS[name]
    return cls() if cls is DirectMethod else cls(lambda_=lambda_)
