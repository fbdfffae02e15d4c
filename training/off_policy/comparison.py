"""Champion against challenger on one log: the difference of two policies' values with
a *paired* bootstrap interval.

Two policies estimated separately each get an interval, but the interval of their
difference is not the difference of the intervals: both estimates are computed on the
same logged rounds, so most of their noise (which prompts happened to be logged, which
model happened to be tried) is shared and cancels in the difference. A paired bootstrap
keeps that: the rounds are resampled once per replicate and both policies are
estimated on that same resample, so the difference is recomputed per replicate and
its percentiles give the interval. A policy compared with itself has a difference of
exactly 0 on every resample, hence the interval ``[0, 0]``.

The difference is reported for quality, cost per call and net value per call,
``value_usd * quality - cost_usd``: what one call is worth to the team at the value it
puts on a good outcome. Every estimator of :mod:`~training.off_policy.estimators` is a
ratio ``sum_i num_i / sum_i den_i`` with one denominator for quality and cost (the
importance weights, or 1), so the three figures come from the same per-round terms.

References
----------
Efron and Tibshirani (1993). An Introduction to the Bootstrap, ch. 16 (paired data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from training.off_policy.estimators import BaseOffPolicyEstimator, PolicyValueInterval
from training.off_policy.feedback import BanditFeedback

#: Resamples drawn at once (bounds memory to ``_CHUNK x n_rounds`` indices).
_CHUNK = 100
#: The logged fields both policies must share to be compared on "the same rounds".
_LOGGED = ("action", "reward", "cost_usd", "pscore")


def _number(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


@dataclass(frozen=True)
class PolicyDifference:
    """``policy - baseline`` for quality, cost and net value, each with its paired
    bootstrap interval.

    Parameters
    ----------
    quality : PolicyValueInterval
        Difference of mean outcomes (positive: the policy succeeds more often).
    cost_usd : PolicyValueInterval
        Difference of mean cost per call in USD (positive: the policy costs more).
    net_value : PolicyValueInterval
        Difference of ``value_usd * quality - cost_usd`` per call, in USD (positive:
        the policy is worth more).
    value_usd : float
        The value of one good outcome used for the net value.
    estimator_name : str
        The estimator both policies were estimated with (``dr``, ``snips``...).
    n_bootstrap : int
        Paired resamples behind the intervals.
    """

    quality: PolicyValueInterval
    cost_usd: PolicyValueInterval
    net_value: PolicyValueInterval
    value_usd: float
    estimator_name: str
    n_bootstrap: int

    @property
    def worse(self) -> bool:
        """Whether the net-value interval lies wholly below 0: the policy is worth
        less than the baseline at this confidence."""
        return bool(np.isfinite(self.net_value.high) and self.net_value.high < 0)

    def to_dict(self) -> dict[str, Any]:
        """``{quality_diff, quality_diff_ci, cost_usd_diff, cost_usd_diff_ci,
        net_value_diff, net_value_diff_ci, value_usd, estimator, n_bootstrap, alpha}``
        (NaN as null)."""
        out: dict[str, Any] = {}
        for key, interval in (
            ("quality", self.quality),
            ("cost_usd", self.cost_usd),
            ("net_value", self.net_value),
        ):
            out[f"{key}_diff"] = _number(interval.estimate)
            out[f"{key}_diff_ci"] = [_number(interval.low), _number(interval.high)]
        out.update(
            value_usd=self.value_usd,
            estimator=self.estimator_name,
            n_bootstrap=self.n_bootstrap,
            alpha=self.net_value.alpha,
        )
        return out


@dataclass(frozen=True)
class PairedComparison:
    """Estimate ``policy - baseline`` on one log with one estimator and a paired
    bootstrap.

    Parameters
    ----------
    estimator : BaseOffPolicyEstimator
        Used for both policies (e.g. ``make_estimator("dr")``).
    n_bootstrap : int, default=1000
        Paired resamples of the rounds.
    alpha : float in (0, 1), default=0.05
        ``1 - alpha`` intervals.
    random_state : int, optional, default=0
        Seed of the resampling.

    Examples
    --------
    >>> from training.off_policy import make_estimator
    >>> fb = BanditFeedback(n_rounds=4, n_actions=2, action=np.array([0, 1, 0, 1]),
    ...                     reward=np.array([1.0, 0.0, 1.0, 1.0]),
    ...                     cost_usd=np.array([0.1, 0.2, 0.1, 0.2]),
    ...                     pscore=np.full(4, 0.5))
    >>> always_0, always_1 = np.tile([1.0, 0.0], (4, 1)), np.tile([0.0, 1.0], (4, 1))
    >>> diff = PairedComparison(make_estimator("snips")).estimate_difference(
    ...     always_0, always_1, fb, value_usd=1.0)
    >>> round(diff.quality.estimate, 3), round(diff.cost_usd.estimate, 3)
    (0.5, -0.1)
    """

    estimator: BaseOffPolicyEstimator
    n_bootstrap: int = 1000
    alpha: float = 0.05
    random_state: int | None = 0

    def __post_init__(self) -> None:
        if not isinstance(self.estimator, BaseOffPolicyEstimator):
            raise TypeError(
                f"Expected an off-policy estimator (training.off_policy.make_estimator), got "
                f"{type(self.estimator).__name__}."
            )
        if not (isinstance(self.n_bootstrap, int | np.integer) and self.n_bootstrap >= 1):
            raise ValueError(f"Expected n_bootstrap an integer >= 1, got {self.n_bootstrap!r}.")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"Expected alpha in (0, 1), got {self.alpha!r}.")

    def estimate_difference(
        self,
        action_dist: np.ndarray,
        baseline_action_dist: np.ndarray,
        feedback: BanditFeedback,
        baseline_feedback: BanditFeedback | None = None,
        *,
        value_usd: float,
    ) -> PolicyDifference:
        """``policy - baseline`` with paired ``1 - alpha`` percentile intervals.

        Parameters
        ----------
        action_dist, baseline_action_dist : ndarray of float, shape (n_rounds, n_actions)
            The two policies' distributions over the same actions on the logged rounds.
        feedback : BanditFeedback
            The log, with the policy's regression model (``estimated_reward`` and
            ``estimated_cost_usd``) when the estimator needs one (DM, DR).
        baseline_feedback : BanditFeedback, optional
            The same log with the baseline's own regression model (each bundle is its
            own DR model). Default: ``feedback``.
        value_usd : float
            Value in USD of one good outcome, for the net value.

        Raises
        ------
        ValueError
            If the two feedbacks are not the same logged rounds, or ``value_usd`` is
            negative or not finite.
        """
        if not (np.isfinite(value_usd) and value_usd >= 0):
            raise ValueError(f"Expected value_usd a finite number >= 0, got {value_usd!r}.")
        baseline_feedback = feedback if baseline_feedback is None else baseline_feedback
        _check_same_rounds(feedback, baseline_feedback)
        # rows: policy's (quality num, cost num, den), then the baseline's
        terms = np.stack(
            [
                *self._terms(action_dist, feedback),
                *self._terms(baseline_action_dist, baseline_feedback),
            ]
        )
        n = feedback.n_rounds
        full = _differences(terms.sum(axis=1)[None, :], value_usd)
        rng = np.random.default_rng(self.random_state)
        boot = []
        for start in range(0, self.n_bootstrap, _CHUNK):
            size = min(_CHUNK, self.n_bootstrap - start)
            idx = rng.integers(0, n, size=(size, n))
            counts = np.stack([np.bincount(row, minlength=n) for row in idx]).astype(np.float64)
            boot.append(_differences(counts @ terms.T, value_usd))
        sample = np.concatenate(boot, axis=0)
        intervals = [self._interval(full[0, j], sample[:, j]) for j in range(3)]
        return PolicyDifference(
            quality=intervals[0],
            cost_usd=intervals[1],
            net_value=intervals[2],
            value_usd=float(value_usd),
            estimator_name=self.estimator.estimator_name,
            n_bootstrap=int(self.n_bootstrap),
        )

    def _terms(self, action_dist: np.ndarray, feedback: BanditFeedback) -> list[np.ndarray]:
        est = self.estimator
        q_num, q_den = est._checked_terms(action_dist, *_estimator_args(feedback.quality_inputs()))
        c_num, c_den = est._checked_terms(action_dist, *_estimator_args(feedback.cost_inputs()))
        if not np.array_equal(q_den, c_den):  # pragma: no cover - true of every estimator
            raise ValueError(f"{est.estimator_name} weighs quality and cost differently.")
        return [q_num, c_num, q_den]

    def _interval(self, estimate: float, sample: np.ndarray) -> PolicyValueInterval:
        if np.isnan(sample).all():
            return PolicyValueInterval(float(estimate), float("nan"), float("nan"), self.alpha)
        low, high = np.nanpercentile(sample, [100 * self.alpha / 2, 100 * (1 - self.alpha / 2)])
        return PolicyValueInterval(float(estimate), float(low), float(high), self.alpha)


def _estimator_args(inputs: dict[str, Any]) -> tuple[Any, ...]:
    """An estimator's inputs in the order of its per-round terms' arguments."""
    keys = ("action", "reward", "pscore", "estimated_rewards_by_reg_model")
    return tuple(inputs.get(k) for k in keys)


def _differences(sums: np.ndarray, value_usd: float) -> np.ndarray:
    """From summed terms (n_resamples, 6) to (quality, cost, net value) differences,
    shape (n_resamples, 3); NaN where a policy's denominator is 0 (SNIPS)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        den_a = np.where(sums[:, 2] > 0, sums[:, 2], np.nan)
        den_b = np.where(sums[:, 5] > 0, sums[:, 5], np.nan)
        quality_a, cost_a = sums[:, 0] / den_a, sums[:, 1] / den_a
        quality_b, cost_b = sums[:, 3] / den_b, sums[:, 4] / den_b
    quality = quality_a - quality_b
    cost = cost_a - cost_b
    net = (value_usd * quality_a - cost_a) - (value_usd * quality_b - cost_b)
    return np.stack([quality, cost, net], axis=1)


def _check_same_rounds(a: BanditFeedback, b: BanditFeedback) -> None:
    if a is b:
        return
    if (a.n_rounds, a.n_actions) != (b.n_rounds, b.n_actions):
        raise ValueError(
            "Expected both policies on the same logged rounds, got (n_rounds, n_actions) "
            f"= ({a.n_rounds}, {a.n_actions}) and ({b.n_rounds}, {b.n_actions}); build both "
            "feedbacks from one log (dataclasses.replace to swap the regression model)."
        )
    differ = [name for name in _LOGGED if not np.array_equal(getattr(a, name), getattr(b, name))]
    if differ:
        raise ValueError(
            f"Expected both policies on the same logged rounds, but {differ} differ; build "
            "both feedbacks from one log (dataclasses.replace to swap the regression model)."
        )
