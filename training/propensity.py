"""The logging policy of a bandit log, and the importance weights that undo it.

On a gateway log each prompt was answered by the one model a logging policy chose
(people send long, hard prompts to big models; a previous router picks by its own
scores). Fitting each candidate on the rows it happened to answer then learns the
candidate on the prompts it was sent, not on the traffic it would serve: a model
that got the hard prompts looks weak. Weighting every row by ``1 / propensity``
(the probability the logger chose that model for that prompt) makes each
candidate's weighted rows stand for all prompts, as if every candidate had answered
every prompt (inverse propensity weighting; the ``logged data / policy / estimator``
split follows Open Bandit Pipeline).

The propensity is the logged one where the log has the ``propensity`` column
(`/route` writes the exact probability); otherwise it is estimated: a multinomial
logistic regression of the logged model on the prompt's features (embedding and
text statistics), cross-fitted so that no row's propensity comes from a model fit
on that row, clipped to [`PROPENSITY_FLOOR`, 1]. The manifest says which it was and
how well the estimate calibrates (`LoggingPolicyEstimate.to_dict`).

Weights are clipped at `DEFAULT_MAX_WEIGHT` and then normalised to mean 1 per
candidate (self-normalised): a handful of rows the logger almost never produces
cannot dominate a candidate's fit, and every candidate keeps the total weight of
its row count, so learners' regularisation means what it meant unweighted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training.dataset import TrainingSet

#: Smallest propensity used: an estimate can reach 0 for a model the fitted policy
#: thinks was never chosen, and 1/0 is no weight.
PROPENSITY_FLOOR = 0.01
#: Largest importance weight before normalisation (a row counts as at most 20 of
#: its kind). Clipping trades a little bias for much less variance; 20 keeps every
#: row of a policy that gives each model >= 5% (e.g. epsilon 0.25 over 5 models).
DEFAULT_MAX_WEIGHT = 20.0
#: Inverse L2 strengths of the logging-policy regression on standardised features,
#: the one with the lowest cross-fitted log-loss of the logged choices is used. A
#: few hundred prompts over ~400 features overfit the policy at weak penalties, and
#: extreme estimated propensities are what clipping then has to repair; if no
#: strength beats the logged frequencies alone, those are the estimate (the
#: prompts do not tell the logger's choices apart, and weights stay per candidate).
DEFAULT_POLICY_CS = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1)
#: Folds of prompts for cross-fitting the estimated propensities.
DEFAULT_POLICY_FOLDS = 5
#: Bins of the expected calibration error.
_ECE_BINS = 10


@dataclass(frozen=True)
class LoggingPolicyEstimate:
    """The logging policy's probabilities, as logged or as estimated.

    Attributes
    ----------
    source : {"logged", "estimated"}
    propensity : ndarray of float, shape (n_rows,)
        Probability of each row's model for its prompt, clipped to
        [`PROPENSITY_FLOOR`, 1]; NaN for rows of prompts left out.
    policy : ndarray of float, shape (n_prompts, n_candidates) or None
        The estimated (cross-fitted) probability of every candidate per prompt,
        rows summing to 1 before clipping; None when logged.
    calibration : dict
        For an estimate: held-out log-loss against the log-loss of the logged
        frequencies alone (a useful policy model beats it), the expected
        calibration error of the one-vs-rest probabilities, and, where the log
        also has propensities, their mean absolute error. Empty when logged.
    n_clipped : int
        Rows whose propensity was raised to the floor.
    """

    source: str
    propensity: np.ndarray
    policy: np.ndarray | None = None
    calibration: dict[str, Any] = field(default_factory=dict)
    n_clipped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "propensity_source": self.source,
            "propensity_floor": PROPENSITY_FLOOR,
            "n_clipped_to_floor": self.n_clipped,
            "propensity_calibration": dict(self.calibration),
        }


@dataclass(frozen=True)
class ImportanceWeights:
    """Row weights ``1 / propensity`` clipped and normalised to mean 1 per candidate.

    Attributes
    ----------
    weights : ndarray of float, shape (n_rows,)
        NaN for ungraded rows (learners never see them).
    max_weight : float
        The clip applied to ``1 / propensity`` before normalising.
    n_clipped : int
        Graded rows whose weight was clipped.
    effective_rows : dict of str -> float
        Per candidate, Kish's effective sample size ``(sum w)^2 / sum w^2``: how
        many unweighted rows its weighted rows are worth.
    """

    weights: np.ndarray
    max_weight: float
    n_clipped: int
    effective_rows: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_weight": self.max_weight,
            "normalisation": "mean 1 per candidate",
            "n_clipped": self.n_clipped,
            "effective_rows": {k: round(v, 1) for k, v in self.effective_rows.items()},
        }


def logged_policy(data: TrainingSet) -> LoggingPolicyEstimate | None:
    """The logged propensities if every graded row has one, else None."""
    labelled = data.labelled
    p = data.propensity
    if not labelled.any() or np.isnan(p[labelled]).any():
        return None
    clipped = np.clip(p, PROPENSITY_FLOOR, 1.0)
    return LoggingPolicyEstimate(
        source="logged",
        propensity=clipped,
        n_clipped=int((p[labelled] < PROPENSITY_FLOOR).sum()),
    )


def estimate_logging_policy(
    data: TrainingSet,
    *,
    Cs: tuple[float, ...] = DEFAULT_POLICY_CS,
    n_folds: int = DEFAULT_POLICY_FOLDS,
    seed: int = 0,
) -> LoggingPolicyEstimate:
    """Estimate which model the logger chose for each prompt, cross-fitted.

    A multinomial logistic regression of each graded row's model on its prompt's
    standardised features; the prompts are cut into ``n_folds`` folds and each
    fold's probabilities come from a regression fit on the others, so a row's
    propensity never comes from a model that saw it (an in-sample fit would be too
    sure of the choices it memorised, giving propensities near 1 and weights near
    1: no correction).

    Parameters
    ----------
    data : TrainingSet
    Cs : tuple of float
        Inverse L2 strengths tried (see `DEFAULT_POLICY_CS`).
    n_folds : int
    seed : int
        Seed of the folds.

    Returns
    -------
    LoggingPolicyEstimate
        With ``policy`` of shape ``(n_prompts, n_candidates)``.
    """
    from sklearn.linear_model import LogisticRegression

    k = len(data.candidates)
    rows = np.flatnonzero(data.labelled)
    chosen = data.candidate[rows]
    X = data.features.astype(np.float64)
    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale < 1e-6] = 1.0
    Z = (X - mean) / scale
    n_folds = max(2, min(n_folds, data.n_prompts))
    folds = np.empty(data.n_prompts, dtype=np.int64)
    folds[np.random.default_rng(seed).permutation(data.n_prompts)] = (
        np.arange(data.n_prompts) % n_folds
    )

    def cross_fitted(C: float | None) -> np.ndarray:
        """Held-out probabilities; ``C`` None: the training folds' frequencies."""
        policy = np.full((data.n_prompts, k), np.nan)
        for f in range(n_folds):
            held = folds == f
            fit = rows[folds[data.prompt[rows]] != f]
            if C is None or len(np.unique(data.candidate[fit])) < 2:
                policy[held] = np.bincount(data.candidate[fit], minlength=k) / max(len(fit), 1)
                continue
            model = LogisticRegression(C=C, max_iter=2000).fit(
                Z[data.prompt[fit]], data.candidate[fit]
            )
            full = np.zeros((int(held.sum()), k))
            full[:, model.classes_] = model.predict_proba(Z[held])
            policy[held] = full
        return policy

    tried = {}
    best, policy = None, cross_fitted(None)
    best_loss = policy_calibration(policy, data.prompt[rows], chosen)["log_loss"]
    tried["frequencies"] = best_loss
    for C in Cs:
        candidate_policy = cross_fitted(C)
        loss = policy_calibration(candidate_policy, data.prompt[rows], chosen)["log_loss"]
        tried[str(C)] = loss
        if loss < best_loss:
            best, policy, best_loss = C, candidate_policy, loss
    raw = policy[data.prompt, data.candidate]
    propensity = np.clip(raw, PROPENSITY_FLOOR, 1.0)
    labelled = data.labelled
    calibration = policy_calibration(policy, data.prompt[rows], chosen)
    logged = data.propensity[labelled]
    if len(logged) and not np.isnan(logged).any():
        calibration["mean_abs_error_vs_logged"] = float(np.abs(raw[labelled] - logged).mean())
    return LoggingPolicyEstimate(
        source="estimated",
        propensity=propensity,
        policy=policy,
        calibration={
            "model": "frequencies" if best is None else f"logistic C={best}",
            "n_folds": n_folds,
            "log_loss_by_C": {key: round(v, 4) for key, v in tried.items()},
            **calibration,
        },
        n_clipped=int((raw[labelled] < PROPENSITY_FLOOR).sum()),
    )


def policy_calibration(policy: np.ndarray, prompt: np.ndarray, chosen: np.ndarray) -> dict:
    """How well estimated probabilities ``policy`` predict the logged choices.

    Parameters
    ----------
    policy : ndarray of shape (n_prompts, n_candidates)
    prompt, chosen : ndarray of int, shape (n_rows,)
        Prompt and chosen candidate of each graded row.

    Returns
    -------
    dict
        ``log_loss`` of the choices; ``log_loss_marginal``, that of the logged
        frequencies alone (the estimate is informative where it is lower);
        ``ece``, the expected calibration error of the one-vs-rest probabilities in
        `_ECE_BINS` equal-width bins (0: among rows given probability ``q`` a share
        ``q`` chose that model).
    """
    k = policy.shape[1]
    p_chosen = np.clip(policy[prompt, chosen], 1e-12, 1.0)
    freq = np.bincount(chosen, minlength=k) / max(len(chosen), 1)
    onehot = np.zeros((len(chosen), k))
    onehot[np.arange(len(chosen)), chosen] = 1.0
    probs = policy[prompt].reshape(-1)
    hits = onehot.reshape(-1)
    bins = np.minimum((probs * _ECE_BINS).astype(np.int64), _ECE_BINS - 1)
    ece = 0.0
    for b in range(_ECE_BINS):
        in_bin = bins == b
        if in_bin.any():
            ece += in_bin.mean() * abs(probs[in_bin].mean() - hits[in_bin].mean())
    return {
        "log_loss": float(-np.log(p_chosen).mean()),
        "log_loss_marginal": float(-np.log(np.clip(freq[chosen], 1e-12, 1.0)).mean()),
        "ece": float(ece),
    }


def importance_weights(
    data: TrainingSet, propensity: np.ndarray, *, max_weight: float = DEFAULT_MAX_WEIGHT
) -> ImportanceWeights:
    """Weights ``min(1 / propensity, max_weight)``, normalised to mean 1 per candidate.

    Parameters
    ----------
    data : TrainingSet
    propensity : ndarray of shape (n_rows,)
        Clipped propensities (`LoggingPolicyEstimate.propensity`).
    max_weight : float
        Clip of the raw weight, >= 1.

    Raises
    ------
    ValueError
        If ``max_weight`` < 1 or a graded row has no propensity.
    """
    if not max_weight >= 1:
        raise ValueError(f"max_weight must be >= 1, got {max_weight!r}.")
    labelled = data.labelled
    if np.isnan(propensity[labelled]).any():
        raise ValueError("Every graded row needs a propensity to be weighted.")
    raw = np.full(len(propensity), np.nan)
    raw[labelled] = 1.0 / propensity[labelled]
    n_clipped = int((raw[labelled] > max_weight).sum())
    weights = np.minimum(raw, max_weight)
    effective = {}
    for k, name in enumerate(data.candidates):
        rows = labelled & (data.candidate == k)
        if rows.any():
            weights[rows] = weights[rows] / weights[rows].mean()
            w = weights[rows]
            effective[name] = float(w.sum() ** 2 / np.square(w).sum())
    return ImportanceWeights(
        weights=weights, max_weight=float(max_weight), n_clipped=n_clipped, effective_rows=effective
    )


def weighted_mean_outcome(data: TrainingSet, weights: np.ndarray | None) -> dict[str, float | None]:
    """Each candidate's mean graded outcome, weighted (self-normalised IPS) or plain."""
    out: dict[str, float | None] = {}
    for k, name in enumerate(data.candidates):
        rows = data.labelled & (data.candidate == k)
        if not rows.any():
            out[name] = None
            continue
        w = np.ones(int(rows.sum())) if weights is None else weights[rows]
        out[name] = float((w * data.outcome[rows]).sum() / w.sum())
    return out
