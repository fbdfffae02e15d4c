"""What evaluating a bundle returns: its :class:`Summary` plus what only a bundle has
(label, router version, the quality of its raw scores, compared bundles).

Kept apart from :mod:`~training.evaluation.run` so the report can read these types
without importing the command.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from training.evaluation.log import FullInfoLog
from training.evaluation.summary import Summary, TableRow
from training.off_policy import EstimatorResult, PolicyDifference


@dataclass(frozen=True)
class PredictionQuality:
    """How good one candidate's scores are before any decision.

    Parameters
    ----------
    brier : float
        ``mean (p_success - outcome)^2``.
    mean_p_success, mean_outcome : float
    mean_expected_cost_usd, mean_cost_usd : float
    median_abs_log_cost_error : float or None
        Median of ``|log(expected_cost / logged cost)|`` over calls with both > 0.
    """

    brier: float
    mean_p_success: float
    mean_outcome: float
    mean_expected_cost_usd: float
    mean_cost_usd: float
    median_abs_log_cost_error: float | None


def prediction_quality(
    log: FullInfoLog, p_success: np.ndarray, expected_cost_usd: np.ndarray
) -> dict[str, PredictionQuality]:
    """Brier score and cost error per candidate of ``log``.

    Parameters
    ----------
    log : FullInfoLog
    p_success, expected_cost_usd : ndarray of float, shape (n_prompts, n_candidates)
    """
    p, c = p_success, expected_cost_usd
    brier = ((p - log.outcome) ** 2).mean(axis=0)
    positive = (log.cost_usd > 0) & (c > 0)
    log_ratio = np.where(
        positive, np.log(np.where(positive, c, 1) / np.where(positive, log.cost_usd, 1)), np.nan
    )
    return {
        name: PredictionQuality(
            brier=float(brier[k]),
            mean_p_success=float(p[:, k].mean()),
            mean_outcome=float(log.outcome[:, k].mean()),
            mean_expected_cost_usd=float(c[:, k].mean()),
            mean_cost_usd=float(log.cost_usd[:, k].mean()),
            median_abs_log_cost_error=float(np.nanmedian(np.abs(log_ratio[:, k])))
            if positive[:, k].any()
            else None,
        )
        for k, name in enumerate(log.candidates)
    }


@dataclass(frozen=True)
class Comparison:
    """Another bundle scored on the same prompts as the evaluated one.

    Parameters
    ----------
    label, bundle, router_version : str
    note : str
        Why its figures may differ in scope (e.g. fewer candidates), or "".
    row : TableRow
        Its row of the routers table: quality and cost at its default policy, figures
        against the main log's best single model and cost range, so rows compare.
    summary : Summary
        Its own summary on the candidates it shares with the log.
    difference : PolicyDifference, optional
        The evaluated bundle's default decisions minus this one's, prompt by prompt,
        with paired intervals (`training.evaluation.run.table_difference`): the
        evidence ``promote --evaluation`` reads.
    """

    label: str
    bundle: str
    router_version: str
    note: str
    row: TableRow
    summary: Summary
    difference: PolicyDifference | None = None

    def to_dict(self) -> dict[str, Any]:
        """As in ``metrics.json``'s ``comparisons``."""
        s = self.summary
        pooled = s.calibration.pooled if s.calibration else None
        return {
            "label": self.label,
            "bundle": self.bundle,
            "router_version": self.router_version,
            "candidates": list(s.candidates),
            "note": self.note,
            "row": self.row.to_dict(),
            "router_curve": [p.to_dict(share=False) for p in s.router_curve],
            "default_point": s.default_point.to_dict() if s.default_point else None,
            "pairs": [p.to_dict() for p in s.pairs or ()],
            "calibration": {"ece": pooled.ece, "brier": pooled.brier, "n": pooled.n}
            if pooled
            else None,
            **(self.difference.to_dict() if self.difference else {}),
        }


@dataclass(frozen=True)
class Evaluation:
    """A bundle evaluated on held-out full-information logs.

    Parameters
    ----------
    summary : Summary
        The router's figures (its table row is named ``label``).
    label : str
        ``folder (chosen learner setting)``, e.g. ``bundle-knn (knn)``.
    router_version, bundle : str
        The bundle's content hash and path.
    bundle_candidates : tuple of str
        Every candidate of the bundle; ``summary.candidates`` are those evaluated
        (all of them unless restricted with ``candidates``).
    n_prompts_dropped : int
        Prompts of the logs that lacked an outcome or cost of some evaluated candidate.
    n_quarantined : int
        Rows the call-log reader rejected (written to the quarantine file).
    prediction_quality : dict of str to PredictionQuality
    comparisons : tuple of Comparison
    """

    summary: Summary
    label: str
    router_version: str
    bundle: str
    bundle_candidates: tuple[str, ...]
    n_prompts_dropped: int
    n_quarantined: int
    prediction_quality: dict[str, PredictionQuality]
    comparisons: tuple[Comparison, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """``metrics.json``: the summary's keys at the top level, then the bundle's."""
        return {
            **self.summary.to_dict(),
            "label": self.label,
            "router_version": self.router_version,
            "bundle": self.bundle,
            "bundle_candidates": list(self.bundle_candidates),
            "n_prompts_dropped": self.n_prompts_dropped,
            "n_quarantined": self.n_quarantined,
            "prediction_quality": {k: asdict(v) for k, v in self.prediction_quality.items()},
            "comparisons": [c.to_dict() for c in self.comparisons],
        }


@dataclass(frozen=True)
class OffPolicyPoint:
    """The bundle's policy at one ``value_usd``, estimated off-policy.

    Parameters
    ----------
    value_usd : float
    ess : float
        Effective sample size of this policy's importance weights on the log.
    estimators : dict of str to EstimatorResult
        Quality and cost (with intervals) by estimator name.
    """

    value_usd: float
    ess: float
    estimators: dict[str, EstimatorResult]

    def to_dict(self) -> dict[str, Any]:
        """One entry of ``off_policy.curve`` in ``metrics.json``."""
        return {
            "value_usd": self.value_usd,
            "ess": self.ess,
            "estimators": {k: v.to_dict() for k, v in self.estimators.items()},
        }


@dataclass(frozen=True)
class OffPolicyComparison:
    """The evaluated bundle minus another one (the champion), estimated on the same
    logged calls with the same estimator and a paired bootstrap.

    Parameters
    ----------
    label, bundle, router_version : str
        The compared bundle.
    note : str
        Why its policy may differ in scope (candidates it has that the log never
        tried), or "".
    difference : PolicyDifference
        Evaluated bundle minus this one: quality, cost and net value with intervals.
    """

    label: str
    bundle: str
    router_version: str
    note: str
    difference: PolicyDifference

    def to_dict(self) -> dict[str, Any]:
        """One entry of ``off_policy.comparisons`` in ``metrics.json``."""
        return {
            "label": self.label,
            "bundle": self.bundle,
            "router_version": self.router_version,
            "note": self.note,
            **self.difference.to_dict(),
        }


@dataclass(frozen=True)
class OffPolicySection:
    """Off-policy estimates of the bundle's served policy on a partial-feedback log.

    Parameters
    ----------
    n : int
        Logged calls used (graded, with a cost): the rounds of the estimators.
    ess : float
        Effective sample size ``(sum w)^2 / sum w^2`` of the default policy's weights.
    propensity_source : {"logged", "estimated"}
        Whether ``pscore`` is the log's ``propensity`` column or a multinomial logistic
        regression of the logged model on the prompt features.
    estimators : dict of str to EstimatorResult
        The default policy (the manifest's knobs) by estimator: ``dr``, ``snips``,
        ``ips``, ``dm``.
    curve : tuple of OffPolicyPoint
        The policy along a sweep of ``value_usd`` (the cost-quality curve).
    warnings : tuple of str
        Where the estimates are weak: models the logs rarely tried, low support,
        small ESS, estimated propensities.
    policy : dict
        The evaluated knobs: ``value_usd``, ``min_success``, ``max_cost_usd`` and the
        exploration (None: greedy, a one-hot ``action_dist``).
    actions : tuple of str
        Action names: the evaluated candidates, then logged models that are not
        candidates (the policy gives them probability 0).
    logged_calls : dict of str to int
        Calls per action in the log.
    policy_share : dict of str to float
        Mean probability the default policy gives each candidate on the logged prompts.
    low_support_share : float
        Share of the default policy's choices going to a model the logging policy gave
        less than ``low_propensity`` on that prompt (estimated logging policy).
    low_propensity : float
    n_bootstrap, alpha, clip : as passed to the estimators (clip None: no clipping).
    default_estimator : str
        The estimator the headline quotes: ``dr`` with logged propensities, ``snips``
        with estimated ones (:data:`training.evaluation.off_policy.DEFAULT_ESTIMATOR`).
    comparisons : tuple of OffPolicyComparison
        The bundle against each ``--compare`` bundle (paired differences).
    """

    n: int
    ess: float
    propensity_source: str
    estimators: dict[str, EstimatorResult]
    curve: tuple[OffPolicyPoint, ...]
    warnings: tuple[str, ...]
    policy: dict[str, Any]
    actions: tuple[str, ...]
    logged_calls: dict[str, int]
    policy_share: dict[str, float]
    low_support_share: float
    low_propensity: float
    n_bootstrap: int
    alpha: float
    clip: float | None
    default_estimator: str = "dr"
    comparisons: tuple[OffPolicyComparison, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """``metrics.json``'s ``off_policy``."""
        return {
            "n": self.n,
            "ess": self.ess,
            "propensity_source": self.propensity_source,
            "default_estimator": self.default_estimator,
            "estimators": {k: v.to_dict() for k, v in self.estimators.items()},
            "curve": [p.to_dict() for p in self.curve],
            "warnings": list(self.warnings),
            "policy": dict(self.policy),
            "actions": list(self.actions),
            "logged_calls": dict(self.logged_calls),
            "policy_share": dict(self.policy_share),
            "low_support_share": self.low_support_share,
            "low_propensity": self.low_propensity,
            "n_bootstrap": self.n_bootstrap,
            "alpha": self.alpha,
            "clip": self.clip,
            "comparisons": [c.to_dict() for c in self.comparisons],
        }


@dataclass(frozen=True)
class BanditEvaluation:
    """A bundle evaluated on a partial-feedback log (one logged call per prompt).

    No exact figure exists on such a log, so only the off-policy section is reported.

    Parameters
    ----------
    label, router_version, bundle : str
    bundle_candidates, candidates : tuple of str
        Every candidate of the bundle; those evaluated.
    n_prompts : int
        Distinct prompts of the used calls.
    n_quarantined : int
    n_ungraded : int
        Calls left out: no outcome yet (pending) or no cost.
    off_policy : OffPolicySection
    """

    label: str
    router_version: str
    bundle: str
    bundle_candidates: tuple[str, ...]
    candidates: tuple[str, ...]
    n_prompts: int
    n_quarantined: int
    n_ungraded: int
    off_policy: OffPolicySection

    def to_dict(self) -> dict[str, Any]:
        """``metrics.json`` of a partial-feedback evaluation."""
        return {
            "log_kind": "partial_feedback",
            "label": self.label,
            "router_version": self.router_version,
            "bundle": self.bundle,
            "bundle_candidates": list(self.bundle_candidates),
            "candidates": list(self.candidates),
            "n_prompts": self.n_prompts,
            "n_quarantined": self.n_quarantined,
            "n_ungraded": self.n_ungraded,
            "off_policy": self.off_policy.to_dict(),
        }
