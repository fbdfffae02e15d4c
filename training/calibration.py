"""Fit probability calibration on out-of-fold predictions.

``value_usd * p_success - cost`` only trades quality against money correctly if
``p_success`` is a probability, and tree ensembles, kNN and heavily regularised
linear models all distort it. Per candidate we fit Platt scaling (a logistic
regression on the logit) and isotonic regression on the cross-validated
predictions, and keep the method (or none) with the lowest cross-fitted log-loss:
each fold's rows are calibrated by a map fit on the other folds, so the choice is
not flattered by calibrating on the very rows it is scored on.

References
----------
Platt, J. (1999). Probabilistic outputs for support vector machines.
Zadrozny, B., Elkan, C. (2002). Transforming classifier scores into accurate
multiclass probability estimates. KDD.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from serving.calibration import calibrate_column
from training.dataset import TrainingSet
from training.selection import row_log_loss

#: A candidate needs this many graded rows before it gets its own map.
MIN_ROWS_PER_CANDIDATE = 60
_EPS = 1e-6


def fit_platt(p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Platt map ``sigmoid(a * logit(p) + b)`` fit on soft labels ``y``."""
    from sklearn.linear_model import LogisticRegression

    from training.learners import soft_label_rows

    q = np.clip(p, _EPS, 1 - _EPS)
    z = np.log(q / (1 - q)).reshape(-1, 1)
    Z, labels, weights = soft_label_rows(z, y)
    if len(np.unique(labels)) < 2:
        return {"method": "none"}
    model = LogisticRegression(C=1e4).fit(Z, labels, sample_weight=weights)
    return {"method": "platt", "a": float(model.coef_[0, 0]), "b": float(model.intercept_[0])}


def fit_isotonic(p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Isotonic map stored as its thresholds, kept away from exact 0 and 1."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.01, y_max=0.99, out_of_bounds="clip").fit(p, y)
    return {
        "method": "isotonic",
        "x": [float(v) for v in iso.X_thresholds_],
        "y": [float(v) for v in iso.y_thresholds_],
    }


FITTERS = {"none": lambda p, y: {"method": "none"}, "platt": fit_platt, "isotonic": fit_isotonic}


def fit_calibration(
    data: TrainingSet, p_oof: np.ndarray, folds: np.ndarray, methods=("none", "platt", "isotonic")
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Choose and fit the calibration of out-of-fold predictions.

    Parameters
    ----------
    data : TrainingSet
    p_oof : ndarray of shape (n_prompts, n_candidates)
        Out-of-fold ``p_success`` (`training.selection.CrossValidation.p_oof`).
    folds : ndarray of int, shape (n_prompts,)

    Returns
    -------
    calibration : dict or None
        The manifest's ``scorer.calibration`` (None when no method beats none).
    report : dict
        Cross-fitted log-loss of every method, the chosen one.
    """
    rows = np.flatnonzero(data.labelled)
    p = p_oof[data.prompt[rows], data.candidate[rows]]
    y = data.outcome[rows]
    cand = data.candidate[rows]
    row_fold = folds[data.prompt[rows]]
    losses = {}
    for method in methods:
        calibrated = np.empty_like(p)
        for f in np.unique(row_fold):
            held = row_fold == f
            for k in range(len(data.candidates)):
                fit_rows = ~held & (cand == k)
                target = held & (cand == k)
                if not target.any():
                    continue
                spec = _fit_or_none(method, p[fit_rows], y[fit_rows])
                calibrated[target] = calibrate_column(p[target], spec)
        losses[method] = row_log_loss(calibrated, y)
    chosen = min(losses, key=losses.get)
    report = {"cross_fitted_log_loss": losses, "chosen": chosen}
    if chosen == "none":
        return None, report
    per_candidate = [
        _fit_or_none(chosen, p[cand == k], y[cand == k]) for k in range(len(data.candidates))
    ]
    return {"method": chosen, "per_candidate": per_candidate}, report


def _fit_or_none(method: str, p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    if len(y) < MIN_ROWS_PER_CANDIDATE:
        return {"method": "none"}
    return FITTERS[method](p, y)
