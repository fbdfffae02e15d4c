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
    """

    label: str
    bundle: str
    router_version: str
    note: str
    row: TableRow
    summary: Summary

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
