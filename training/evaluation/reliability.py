"""Calibration of the predicted ``p_success``: reliability bins, ECE and Brier score.

The policy trades ``value_usd * p_success`` against cost, so a miscalibrated
``p_success`` moves every decision; these tables show by how much it is off.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from training.evaluation.log import FullInfoLog


@dataclass(frozen=True)
class ReliabilityBin:
    """One non-empty bin ``[lower, upper)`` of predictions and what happened in it."""

    lower: float
    upper: float
    n: int
    mean_p_success: float
    mean_outcome: float


@dataclass(frozen=True)
class Reliability:
    """Reliability table of one set of predictions; see :func:`reliability`."""

    n: int
    ece: float
    brier: float
    mean_p_success: float
    mean_outcome: float
    bins: tuple[ReliabilityBin, ...]

    def to_dict(self) -> dict[str, Any]:
        """As in ``metrics.json``: the figures and ``bins`` as a list of dicts."""
        return {**asdict(self), "bins": [asdict(b) for b in self.bins]}


@dataclass(frozen=True)
class CalibrationReport:
    """:func:`reliability` pooled over every (prompt, candidate) and per candidate."""

    n_bins: int
    pooled: Reliability
    candidates: dict[str, Reliability]

    def to_dict(self) -> dict[str, Any]:
        """``{n_bins, pooled, candidates: {name: table}}``, as in ``metrics.json``."""
        return {
            "n_bins": self.n_bins,
            "pooled": self.pooled.to_dict(),
            "candidates": {name: t.to_dict() for name, t in self.candidates.items()},
        }


def reliability(outcome: np.ndarray, p_success: np.ndarray, n_bins: int = 10) -> Reliability:
    """Reliability table of predicted ``p_success`` against observed outcomes.

    Predictions fall in ``n_bins`` equal-width bins of [0, 1] (the last one closed).
    For bin ``b`` with ``n_b`` predictions, ``p_b`` is their mean prediction and ``y_b``
    the mean observed outcome; over ``N`` predictions:

    - expected calibration error ``ECE = sum_b (n_b / N) |p_b - y_b|``;
    - Brier score ``mean (p - y)^2`` (for fractional outcomes, the soft-label version).

    A calibrated predictor has ``p_b = y_b`` in every bin: ECE 0.

    Parameters
    ----------
    outcome, p_success : ndarray of float, same shape
        Observed outcomes in [0, 1] and predictions in [0, 1].
    n_bins : int, default=10

    Returns
    -------
    table : Reliability
        Only non-empty bins are listed.
    """
    y = np.asarray(outcome, dtype=np.float64).ravel()
    p = np.asarray(p_success, dtype=np.float64).ravel()
    if y.shape != p.shape or y.size == 0:
        raise ValueError(
            f"Expected outcome and p_success of one non-empty shape, got {y.shape} and {p.shape}."
        )
    if n_bins < 1:
        raise ValueError(f"Expected n_bins >= 1, got {n_bins}.")
    idx = np.clip(np.floor(p * n_bins).astype(np.int64), 0, n_bins - 1)
    bins = []
    ece = 0.0
    for b in range(n_bins):
        mask = idx == b
        n_b = int(mask.sum())
        if n_b == 0:
            continue
        p_b, y_b = float(p[mask].mean()), float(y[mask].mean())
        ece += n_b / y.size * abs(p_b - y_b)
        bins.append(
            ReliabilityBin(
                lower=b / n_bins,
                upper=(b + 1) / n_bins,
                n=n_b,
                mean_p_success=p_b,
                mean_outcome=y_b,
            )
        )
    return Reliability(
        n=int(y.size),
        ece=float(ece),
        brier=float(np.mean((p - y) ** 2)),
        mean_p_success=float(p.mean()),
        mean_outcome=float(y.mean()),
        bins=tuple(bins),
    )


def calibration_report(
    log: FullInfoLog, p_success: np.ndarray, n_bins: int = 10
) -> CalibrationReport:
    """:func:`reliability` pooled over every (prompt, candidate) and per candidate.

    Parameters
    ----------
    log : FullInfoLog
    p_success : ndarray of float, shape (n_prompts, n_candidates)
    n_bins : int, default=10
    """
    p = np.asarray(p_success, dtype=np.float64)
    if p.shape != log.outcome.shape:
        raise ValueError(
            f"Expected p_success of shape (n_prompts, n_candidates) = {log.outcome.shape}, "
            f"got {p.shape}."
        )
    return CalibrationReport(
        n_bins=int(n_bins),
        pooled=reliability(log.outcome, p, n_bins),
        candidates={
            name: reliability(log.outcome[:, k], p[:, k], n_bins)
            for k, name in enumerate(log.candidates)
        },
    )
