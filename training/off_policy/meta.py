"""Run every estimator on one policy, for quality and for cost (OBP's
``OffPolicyEvaluation`` for our two per-call quantities)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.off_policy.estimators import (
    ESTIMATORS,
    InverseProbabilityWeighting,
    PolicyValueInterval,
    make_estimator,
)
from training.off_policy.feedback import BanditFeedback, effective_sample_size


def _number(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


@dataclass(frozen=True)
class EstimatorResult:
    """One estimator's quality and cost of one policy, each with its interval."""

    quality: PolicyValueInterval
    cost_usd: PolicyValueInterval

    def to_dict(self) -> dict[str, Any]:
        """``{"quality", "quality_ci", "cost_usd", "cost_usd_ci"}`` (NaN as null)."""
        q, c = self.quality, self.cost_usd
        return {
            "quality": _number(q.estimate),
            "quality_ci": [_number(q.low), _number(q.high)],
            "cost_usd": _number(c.estimate),
            "cost_usd_ci": [_number(c.low), _number(c.high)],
        }


@dataclass(frozen=True)
class PolicyEstimate:
    """Every estimator on one evaluation policy.

    Parameters
    ----------
    estimators : dict of str to EstimatorResult
        Keyed by ``estimator_name`` (``dr``, ``snips``, ``ips``, ``dm``).
    ess : float
        Effective sample size of the (clipped) importance weights.
    n : int
        Rounds of the log.
    """

    estimators: dict[str, EstimatorResult]
    ess: float
    n: int


class OffPolicyEvaluation:
    """Estimate a policy's quality and cost on one log with several estimators.

    Parameters
    ----------
    feedback : BanditFeedback
        Must carry ``estimated_reward`` and ``estimated_cost_usd`` for DM and DR.
    estimators : sequence of str, default=("dr", "snips", "ips", "dm")
    lambda_ : float, default=inf
        Clip of the importance weights of IPS, SNIPS and DR (and of the ESS).
    n_bootstrap : int, default=1000
    alpha : float, default=0.05
    random_state : int, default=0
    """

    def __init__(
        self,
        feedback: BanditFeedback,
        estimators: Sequence[str] = tuple(ESTIMATORS),
        *,
        lambda_: float = np.inf,
        n_bootstrap: int = 1000,
        alpha: float = 0.05,
        random_state: int = 0,
    ) -> None:
        self.feedback = feedback
        self.estimators = {name: make_estimator(name, lambda_=lambda_) for name in estimators}
        self.lambda_ = lambda_
        self.n_bootstrap = n_bootstrap
        self.alpha = alpha
        self.random_state = random_state

    def weights(self, action_dist: np.ndarray) -> np.ndarray:
        """The clipped importance weights of ``action_dist`` on the log, shape (n_rounds,)."""
        fb = self.feedback
        return InverseProbabilityWeighting(lambda_=self.lambda_).weights(
            np.asarray(action_dist, dtype=np.float64), fb.action, fb.pscore
        )

    def estimate(self, action_dist: np.ndarray) -> PolicyEstimate:
        """Every estimator's quality and cost of ``action_dist`` (n_rounds, n_actions)."""
        fb = self.feedback
        results = {}
        for name, est in self.estimators.items():
            kw = {
                "n_bootstrap": self.n_bootstrap,
                "alpha": self.alpha,
                "random_state": self.random_state,
            }
            results[name] = EstimatorResult(
                quality=est.estimate_interval(action_dist, **fb.quality_inputs(), **kw),
                cost_usd=est.estimate_interval(action_dist, **fb.cost_inputs(), **kw),
            )
        return PolicyEstimate(
            results, effective_sample_size(self.weights(action_dist)), fb.n_rounds
        )
