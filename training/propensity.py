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
on that row, its strength chosen by held-out log-loss (the logged frequencies when
no strength beats them), floored at `PROPENSITY_FLOOR` (`fit_logging_policy`). The
manifest says which it was and how well the estimate calibrates
(`LoggingPolicyEstimate.to_dict`).

This is the one estimate of the logging policy: `train` weights rows with it
(`estimate_logging_policy` on a `TrainingSet`) and `evaluate`'s off-policy section
(`training.evaluation.off_policy`) takes its ``action_dist`` as ``pi_b``
(`fit_logging_policy` on per-call arrays). Measured against the true probabilities
of logs sampled with known ones (SWE-bench, 495 prompts x 5 models, long prompts to
the dearest model 70%, four logs): mean absolute error 0.087-0.092 (0.112 for
the frequencies alone), the same as the former 32-component PCA + ``LogisticRegressionCV`` of
off-policy evaluation (0.087); on 5,000 synthetic calls whose logger looks at 3 of
264 features, 0.067 against the PCA's 0.104 (the reduction discards the directions
the logger uses).

Weights are clipped at `DEFAULT_MAX_WEIGHT` and then normalised to mean 1 per
candidate (self-normalised): a handful of rows the logger almost never produces
cannot dominate a candidate's fit, and every candidate keeps the total weight of
its row count, so learners' regularisation means what it meant unweighted.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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
#: Rounds the logging-policy regression is fitted on at most (a random subset of larger
#: logs; every round is predicted): measured 58 s for 20000 rounds x 264 features on
#: two cores, and the estimate gains little from more.
DEFAULT_MAX_FIT_ROUNDS = 20_000
#: Bins of the expected calibration error.
_ECE_BINS = 10


@dataclass(frozen=True)
class LoggingPolicyEstimate:
    """The logging policy's probabilities, as logged or as estimated.

    Attributes
    ----------
    source : {"logged", "estimated"}
    propensity : ndarray of float, shape (n_rows,)
        Probability of each row's model for its prompt, at least `PROPENSITY_FLOOR`
        (NaN for logged rows without one).
    action_dist : ndarray of float, shape (n_prompts, n_actions) or None
        The estimated (cross-fitted) probability of every action per prompt, raised
        to at least the floor and renormalised (rows sum to 1): usable as ``pi_b``
        by off-policy estimators. None when logged.
    calibration : dict
        For an estimate: the model kept, the held-out log-loss of every strength
        tried, the held-out log-loss against that of the logged frequencies alone (a
        useful policy model beats it), the expected calibration error of the
        one-vs-rest probabilities, and, where the log also has propensities, their
        mean absolute error. Empty when logged.
    n_clipped : int
        Rows whose propensity was raised to the floor.
    """

    source: str
    propensity: np.ndarray
    action_dist: np.ndarray | None = None
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
    data: TrainingSet, *, seed: int = 0, **kwargs: Any
) -> LoggingPolicyEstimate:
    """`fit_logging_policy` on a `TrainingSet`'s graded rows, folds by prompt.

    ``propensity`` then has one entry per row of ``data`` (ungraded rows too) and
    ``action_dist`` one row per prompt. ``kwargs`` go to `fit_logging_policy`.
    """
    rows = np.flatnonzero(data.labelled)
    estimate = fit_logging_policy(
        data.features,
        data.candidate[rows],
        len(data.candidates),
        prompt=data.prompt[rows],
        logged=data.propensity[rows] if data.propensity is not None else None,
        random_state=seed,
        **kwargs,
    )
    return replace(estimate, propensity=estimate.action_dist[data.prompt, data.candidate])


def fit_logging_policy(
    features: np.ndarray,
    action: np.ndarray,
    n_actions: int,
    *,
    prompt: np.ndarray | None = None,
    logged: np.ndarray | None = None,
    min_propensity: float = PROPENSITY_FLOOR,
    Cs: tuple[float, ...] = DEFAULT_POLICY_CS,
    n_folds: int = DEFAULT_POLICY_FOLDS,
    max_fit_rounds: int = DEFAULT_MAX_FIT_ROUNDS,
    random_state: int = 0,
) -> LoggingPolicyEstimate:
    """Estimate which action the logger chose for each prompt, cross-fitted.

    A multinomial logistic regression of each round's action on its prompt's
    standardised features. The prompts are cut into ``n_folds`` folds and each
    fold's probabilities come from a regression fit on the others, so a round's
    propensity never comes from a model that saw it (an in-sample fit is too sure
    of the choices it memorised: propensities near 1, weights near 1, no
    correction). The strength is the one of ``Cs`` with the lowest held-out
    log-loss; if none beats the logged frequencies alone, those are the estimate
    (the prompts do not tell the logger's choices apart). Logs of more than
    ``max_fit_rounds`` rounds are cross-fitted on a random subset of that many, and
    the prompts outside it predicted by a model fit on the whole subset at the
    chosen strength: a month of gateway traffic costs a minute, not an hour.

    Parameters
    ----------
    features : ndarray of float, shape (n_prompts, n_features)
        One row per prompt (with ``prompt``) or per round (without).
    action : ndarray of int, shape (n_rounds,)
        Logged actions in ``[0, n_actions)``.
    n_actions : int
    prompt : ndarray of int, shape (n_rounds,), optional
        Each round's row of ``features``; folds group rounds by prompt. Default:
        round ``i`` is row ``i``.
    logged : ndarray of float, shape (n_rounds,), optional
        Logged propensities, if any, to report the estimate's error against them.
    min_propensity : float in (0, 1 / n_actions], default=`PROPENSITY_FLOOR`
        Floor of every probability (rows renormalised): one tiny estimated
        propensity would otherwise carry a whole IPS estimate, and an action never
        logged needs a non-zero probability.
    Cs : tuple of float, default=`DEFAULT_POLICY_CS`
    n_folds : int, default=`DEFAULT_POLICY_FOLDS`
    max_fit_rounds : int, default=`DEFAULT_MAX_FIT_ROUNDS`
    random_state : int, default=0
        Seed of the folds and of the subset.

    Returns
    -------
    LoggingPolicyEstimate
        ``source="estimated"``, ``propensity`` of shape (n_rounds,) and
        ``action_dist`` of shape (n_prompts, n_actions).
    """
    from sklearn.linear_model import LogisticRegression

    action = np.asarray(action, dtype=np.int64)
    n_rounds = len(action)
    prompt = np.arange(n_rounds) if prompt is None else np.asarray(prompt, dtype=np.int64)
    n_prompts = len(features)
    k = int(n_actions)
    if not 0.0 < min_propensity <= 1.0 / k:
        raise ValueError(
            f"Expected min_propensity in (0, 1/n_actions] = (0, {1.0 / k:.4g}], got "
            f"{min_propensity!r}."
        )
    if n_rounds == 0:
        raise ValueError("No logged round to estimate the logging policy from.")
    rng = np.random.default_rng(random_state)
    fit_rounds = np.arange(n_rounds)
    if n_rounds > max_fit_rounds:
        fit_rounds = np.sort(rng.choice(n_rounds, max_fit_rounds, replace=False))
    X = np.asarray(features, dtype=np.float64)
    mean, scale = X[prompt[fit_rounds]].mean(axis=0), X[prompt[fit_rounds]].std(axis=0)
    scale[scale < 1e-6] = 1.0
    Z = (X - mean) / scale
    n_folds = max(2, min(n_folds, n_prompts))
    folds = np.empty(n_prompts, dtype=np.int64)
    folds[rng.permutation(n_prompts)] = np.arange(n_prompts) % n_folds
    in_subset = np.zeros(n_prompts, dtype=bool)
    in_subset[prompt[fit_rounds]] = True

    def frequencies(rounds: np.ndarray, at: np.ndarray) -> np.ndarray:
        freq = np.bincount(action[rounds], minlength=k) / max(len(rounds), 1)
        return np.tile(freq, (int(at.sum()), 1))

    def fits(rounds: np.ndarray, at: np.ndarray, strengths) -> dict:
        """Probabilities at the prompts ``at`` of a regression fit on ``rounds`` at each
        strength, strongest penalty first, each fit starting from the last (warm
        start: a third of the time of cold fits)."""
        out = {C: frequencies(rounds, at) for C in strengths}
        if len(np.unique(action[rounds])) < 2:
            return out
        model = LogisticRegression(max_iter=2000, warm_start=True)
        for C in sorted(strengths):
            model.set_params(C=C).fit(Z[prompt[rounds]], action[rounds])
            out[C] = np.zeros((int(at.sum()), k))
            out[C][:, model.classes_] = model.predict_proba(Z[at])
        return out

    held_prompt, held_action = prompt[fit_rounds], action[fit_rounds]
    cross = {C: np.full((n_prompts, k), np.nan) for C in (None, *Cs)}
    for f in range(n_folds):
        held = in_subset & (folds == f)
        train = fit_rounds[folds[prompt[fit_rounds]] != f]
        cross[None][held] = frequencies(train, held)
        for C, probs in fits(train, held, Cs).items():
            cross[C][held] = probs
    tried = {
        ("frequencies" if C is None else str(C)): policy_calibration(d, held_prompt, held_action)[
            "log_loss"
        ]
        for C, d in cross.items()
    }
    best = min(cross, key=lambda C: tried["frequencies" if C is None else str(C)])
    dist = cross[best]
    calibration = policy_calibration(dist, held_prompt, held_action)
    rest = ~in_subset
    if rest.any():
        whole = fits(fit_rounds, rest, () if best is None else (best,))
        dist[rest] = frequencies(fit_rounds, rest) if best is None else whole[best]
    raw = dist[prompt, action]
    dist = _floor_rows(dist, min_propensity)
    if logged is not None and len(logged) and not np.isnan(logged).any():
        calibration["mean_abs_error_vs_logged"] = float(
            np.abs(dist[prompt, action] - logged).mean()
        )
    return LoggingPolicyEstimate(
        source="estimated",
        propensity=dist[prompt, action],
        action_dist=dist,
        calibration={
            "model": "frequencies" if best is None else f"logistic C={best}",
            "n_folds": n_folds,
            "n_fit_rounds": len(fit_rounds),
            "log_loss_by_C": {key: round(v, 4) for key, v in tried.items()},
            **calibration,
        },
        n_clipped=int((raw < min_propensity).sum()),
    )


def _floor_rows(dist: np.ndarray, floor: float) -> np.ndarray:
    """Each row raised to at least ``floor`` and rescaled to sum to 1, the entries above
    the floor sharing what is left in proportion (no entry ends below the floor)."""
    raw = dist / dist.sum(axis=1, keepdims=True)
    fixed = np.zeros(raw.shape, dtype=bool)
    out = raw
    for _ in range(raw.shape[1]):
        fixed |= out < floor
        free = np.where(fixed, 0.0, raw)
        left = 1.0 - floor * fixed.sum(axis=1, keepdims=True)
        out = np.where(
            fixed, floor, free * left / np.maximum(free.sum(axis=1, keepdims=True), 1e-300)
        )
        if not (out < floor - 1e-12).any():
            break
    return out


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
