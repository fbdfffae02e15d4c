"""Estimating the logging policy when the logs carry no ``propensity``.

A gateway log written before `/route` (people choosing models, another router) has no
propensities. Importance weights then need an estimate of ``pi_b(a | x)``: a
multinomial logistic regression of the logged model on the prompt's features, the
standard choice in the off-policy literature (e.g. OBP's ``PropensityScoreEstimator``
with a logistic model). Its probabilities are clipped from below, since one tiny
estimated propensity would otherwise carry an entire IPS estimate.
"""

from __future__ import annotations

import warnings

import numpy as np

#: Default lower clip of estimated propensities.
MIN_PROPENSITY = 0.01


def estimate_logging_policy(
    features: np.ndarray,
    action: np.ndarray,
    n_actions: int,
    *,
    min_propensity: float = MIN_PROPENSITY,
    Cs: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0),
    n_components: int = 32,
    max_fit_rounds: int = 20_000,
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
    Cs : tuple of float, default=(1e-4, 1e-3, 1e-2, 1e-1, 1.0)
        Inverse L2 strengths tried; the one with the best cross-validated log-loss is
        kept (:class:`sklearn.linear_model.LogisticRegressionCV`). Hundreds of
        embedding features overfit a few hundred calls: with a fixed weak penalty a
        uniform logger would look deterministic, and every weight would explode.
    n_components : int, default=32
        The standardised features are first reduced to this many principal
        components: the logging policies we expect (people, routers) depend on a few
        directions of the prompt (length, task), and the fit is 10x faster.
    max_fit_rounds : int, default=20000
        Larger logs are fitted on a random subset of this many rounds (and predicted
        on all), so a month of gateway traffic costs seconds, not minutes.
    random_state : int, default=0

    Returns
    -------
    pi_b : ndarray of float, shape (n_rounds, n_actions)
        Rows sum to 1. Actions never logged get ``min_propensity`` (renormalised):
        the logs say nothing about them, and a zero would make IPS undefined.
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
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
        n_components = min(n_components, x.shape[1], n - 1)
        if n_components < x.shape[1]:
            x = PCA(n_components=n_components, random_state=random_state).fit_transform(x)
        fit = np.arange(n)
        if n > max_fit_rounds:
            fit = np.random.default_rng(random_state).choice(n, max_fit_rounds, replace=False)
        fit_seen = np.unique(action[fit])
        folds = min(5, int(np.bincount(action[fit])[fit_seen].min()))
        if folds >= 2:
            model = LogisticRegressionCV(
                Cs=list(Cs),
                cv=folds,
                scoring="neg_log_loss",
                max_iter=2000,
                random_state=random_state,
            )
        else:  # an action logged once cannot be cross-validated: take the strongest penalty
            model = LogisticRegression(C=min(Cs), max_iter=2000, random_state=random_state)
        with warnings.catch_warnings():
            # sklearn >= 1.9 announces a change of LogisticRegressionCV's attributes,
            # none of which are read here.
            warnings.simplefilter("ignore", FutureWarning)
            model.fit(x[fit], action[fit])
        probs[:, model.classes_] = model.predict_proba(x)
    probs = np.maximum(probs, min_propensity)
    return probs / probs.sum(axis=1, keepdims=True)
