"""Estimating the logging policy when the logs carry no ``propensity``.

A gateway log written before `/route` (people choosing models, another router) has no
propensities. Importance weights then need an estimate of ``pi_b(a | x)``: a
multinomial logistic regression of the logged model on the prompt's features, the
standard choice in the off-policy literature (e.g. OBP's ``PropensityScoreEstimator``
with a logistic model). Its probabilities are clipped from below, since one tiny
estimated propensity would otherwise carry an entire IPS estimate.
"""

from __future__ import annotations

import numpy as np

#: Default lower clip of estimated propensities.
MIN_PROPENSITY = 0.01


def estimate_logging_policy(
    features: np.ndarray,
    action: np.ndarray,
    n_actions: int,
    *,
    min_propensity: float = MIN_PROPENSITY,
    C: float = 1.0,
    random_state: int = 0,
) -> np.ndarray:
    """``pi_b(a | x_i)`` for every round and action, shape (n_rounds, n_actions).

    Parameters
    ----------
    features : ndarray of float, shape (n_rounds, n_features)
        The prompt features (the bundle's featurizer output).
    action : ndarray of int, shape (n_rounds,)
        Logged actions in ``[0, n_actions)``.
    n_actions : int
    min_propensity : float in (0, 1 / n_actions], default=0.01
        Probabilities are clipped to at least this and rows renormalised.
    C : float, default=1.0
        Inverse L2 strength of :class:`sklearn.linear_model.LogisticRegression`.
    random_state : int, default=0

    Returns
    -------
    pi_b : ndarray of float, shape (n_rounds, n_actions)
        Rows sum to 1. Actions never logged get ``min_propensity`` (renormalised):
        the logs say nothing about them, and a zero would make IPS undefined.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    action = np.asarray(action)
    n = action.shape[0]
    if not 0.0 < min_propensity <= 1.0 / n_actions:
        raise ValueError(
            f"Expected min_propensity in (0, 1/n_actions] = (0, {1.0 / n_actions:.4g}], got "
            f"{min_propensity!r}."
        )
    seen = np.unique(action)
    probs = np.zeros((n, n_actions))
    if seen.size == 1:
        probs[:, seen[0]] = 1.0
    else:
        x = StandardScaler().fit_transform(np.asarray(features, dtype=np.float64))
        model = LogisticRegression(C=C, max_iter=2000, random_state=random_state)
        model.fit(x, action)
        probs[:, model.classes_] = model.predict_proba(x)
    probs = np.maximum(probs, min_propensity)
    return probs / probs.sum(axis=1, keepdims=True)
