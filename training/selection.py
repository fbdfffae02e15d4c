"""Learner selection by cross-validation grouped by ``prompt_id``.

Every configured learner is fit on k-1 folds of prompts and predicts the held-out
fold, so every prompt gets an out-of-fold (OOF) ``p_success`` from a model that
never saw it. On prompts where every candidate's outcome is logged, the OOF
predictions are routed through the served policy over a sweep of ``value_usd``,
and the learner with the largest area under the cost-quality curve wins: the
metric the router exists for, not log-loss alone (a learner can be well calibrated
and still rank candidates badly). Without enough full-information prompts the
row log-loss decides.

On a bandit log (`training.dataset.log_kind`) every fit takes the rows' importance
weights (`training.propensity`) and the log-loss is their weighted mean, an
estimate of the log-loss on all candidates' outcomes rather than on the ones the
logger chose; without weights (full-information logs) nothing changes.

The OOF predictions are reused downstream: calibration (`training.calibration`)
and the default policy (`training.policy_target`) are fit on them, so neither is
tuned on predictions the model made for its own training prompts.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.cost_model import CostComponent, LogLinearCostModel
from training.dataset import TrainingSet
from training.evaluation import FullInfoLog, Summary, router_curve, summarize, value_grid
from training.learners import make_learner

#: Below this many full-information prompts the area is too noisy to select on.
MIN_FULL_INFO_PROMPTS = 30

LearnerConfig = tuple[str, str, dict[str, Any]]


@dataclass(frozen=True)
class CrossValidation:
    """Out-of-fold predictions and scores of every configured learner.

    Attributes
    ----------
    folds : ndarray of int, shape (n_prompts,)
        Fold of each prompt.
    p_oof : dict of label -> ndarray of shape (n_prompts, n_candidates)
    cost_oof : ndarray of shape (n_prompts, n_candidates)
        Out-of-fold expected cost (the cost model is cross-fitted too).
    scores : dict of label -> dict
        ``log_loss`` on logged rows and, with full information, ``area``,
        ``savings_at_parity``, ``savings_at_95``.
    full_info : ndarray of bool, shape (n_prompts,)
        Prompts with every candidate's outcome and cost.
    criterion : {"area", "log_loss"}
    chosen : str
        Label of the selected configuration.
    """

    folds: np.ndarray
    p_oof: dict[str, np.ndarray]
    cost_oof: np.ndarray
    scores: dict[str, dict[str, Any]]
    full_info: np.ndarray
    criterion: str
    chosen: str

    def full_info_log(self, data: TrainingSet) -> FullInfoLog:
        """The logged truth on the full-information prompts."""
        mask = self.full_info
        return FullInfoLog(
            prompt_ids=data.prompt_ids[mask],
            candidates=data.candidates,
            outcome=data.matrix(data.outcome)[mask],
            cost_usd=data.matrix(data.cost_usd)[mask],
            segments={k: v[mask] for k, v in data.segments.items()},
        )


def prompt_folds(n_prompts: int, n_folds: int, seed: int) -> np.ndarray:
    """Fold id of each prompt: a seeded permutation cut into near-equal parts."""
    if n_prompts < n_folds:
        raise ValueError(
            f"Cross-validation needs at least {n_folds} prompts, got {n_prompts}; "
            "lower the number of folds or log more prompts."
        )
    folds = np.empty(n_prompts, dtype=np.int64)
    folds[np.random.default_rng(seed).permutation(n_prompts)] = np.arange(n_prompts) % n_folds
    return folds


def units(data: TrainingSet) -> dict[str, np.ndarray]:
    """Logged cost units by component name (see `training.cost_model`)."""
    return {
        "input_tokens": data.input_tokens,
        "output_tokens": data.output_tokens,
        "cost_usd": data.cost_usd,
    }


def row_log_loss(p: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Mean cross-entropy of soft labels ``y`` under ``p``, both shape ``(n_rows,)``,
    weighted by ``sample_weight`` where given."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    if sample_weight is None:
        return float(np.mean(loss))
    return float(np.sum(sample_weight * loss) / np.sum(sample_weight))


def route_summary(log: FullInfoLog, p: np.ndarray, cost: np.ndarray) -> Summary:
    """Evaluation summary of predictions ``(n_prompts, n_candidates)`` on ``log``."""
    return summarize(log, router_curve(log, p, cost, value_grid(log)))


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensembles_of_configs(configs: list[LearnerConfig]) -> dict[str, list[str]]:
    """Ensemble settings whose members are all settings of ``configs`` too, with the
    labels of those members.

    An averaging ensemble fit on a fold is the mean of its members fit on that fold,
    so its out-of-fold predictions are the mean of theirs: no second fit of each.
    """
    by_setting = {(name, repr(params)): label for label, name, params in configs}
    derived = {}
    for label, name, params in configs:
        if name != "ensemble" or "members" not in params:
            continue
        members = [by_setting.get((m, repr(p))) for m, p in params["members"]]
        if members and all(m is not None for m in members):
            derived[label] = members
    return derived


def cross_validate(
    data: TrainingSet,
    configs: list[LearnerConfig],
    components: list[CostComponent],
    *,
    n_folds: int = 5,
    n_repeats: int = 1,
    seed: int = 0,
    fit_params: dict[str, Any] | None = None,
    sample_weight: np.ndarray | None = None,
) -> CrossValidation:
    """Score every learner configuration by grouped k-fold cross-validation.

    Parameters
    ----------
    data : TrainingSet
    configs : list of (label, learner name, params)
    components : list of CostComponent
        Cost units, as the bundle will predict them.
    n_folds : int
    n_repeats : int, default=1
        Times the cross-validation is run, each on a fresh seeded cut of the prompts
        into folds; a setting's score is its mean over the repeats, which removes
        the part of the noise that comes from how the prompts fall into folds, not
        the noise of the few hundred prompts themselves, which dominates on small
        logs: hence a default of one cut (README "Benchmarks" has the figures). The
        out-of-fold predictions (and ``folds``) are those of the
        first cut, so calibration and the policy target see one model's
        predictions per prompt.
    seed : int
        Seed of the first cut; repeat ``r`` uses ``seed + r``.
    fit_params : dict, optional
        Extra keyword arguments for every learner's ``fit`` (e.g. ``candidate_info``).
    sample_weight : ndarray of shape (n_rows,), optional
        Importance weight of every row of ``data`` (`training.propensity`), passed
        to every fit and weighting the log-loss; None (full-information logs):
        unweighted.
    """
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be >= 1, got {n_repeats}.")
    fit_params = fit_params or {}
    full_info = data.full_information()
    use_area = full_info.sum() >= MIN_FULL_INFO_PROMPTS
    log = None
    if use_area:
        log = FullInfoLog(
            prompt_ids=data.prompt_ids[full_info],
            candidates=data.candidates,
            outcome=data.matrix(data.outcome)[full_info],
            cost_usd=data.matrix(data.cost_usd)[full_info],
        )
    runs = []
    for repeat in range(n_repeats):
        if n_repeats > 1:
            _say(f"cross-validation repeat {repeat + 1}/{n_repeats}")
        folds = prompt_folds(data.n_prompts, n_folds, seed + repeat)
        p_oof, cost_oof = _out_of_fold(data, configs, components, folds, fit_params, sample_weight)
        scores = _scores(data, configs, p_oof, cost_oof, log, sample_weight)
        runs.append((folds, p_oof, cost_oof, scores))
    folds, p_oof, cost_oof, scores = runs[0]
    if n_repeats > 1:
        for label, entry in scores.items():
            for key in ("log_loss", "area", "savings_at_parity", "savings_at_95"):
                if key not in entry:
                    continue
                values = [run[3][label][key] for run in runs]
                entry[f"{key}_repeats"] = values
                known = [v for v in values if v is not None]
                entry[key] = float(np.mean(known)) if known else None
    for label, entry in scores.items():
        _say(
            f"  {label}: log-loss {entry['log_loss']:.4f}"
            + (f", area {entry['area']:.4f}" if "area" in entry else "")
        )
    if use_area:
        chosen = max(scores, key=lambda lb: (round(scores[lb]["area"], 6), -scores[lb]["log_loss"]))
    else:
        chosen = min(scores, key=lambda lb: scores[lb]["log_loss"])
    return CrossValidation(
        folds=folds,
        p_oof=p_oof,
        cost_oof=cost_oof,
        scores=scores,
        full_info=full_info,
        criterion="area" if use_area else "log_loss",
        chosen=chosen,
    )


def _out_of_fold(
    data: TrainingSet,
    configs: list[LearnerConfig],
    components: list[CostComponent],
    folds: np.ndarray,
    fit_params: dict[str, Any],
    sample_weight: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Out-of-fold ``p_success`` of every setting, and expected cost, for one cut."""
    k = len(data.candidates)
    n_folds = int(folds.max()) + 1
    row_fold = folds[data.prompt]
    labelled = data.labelled
    all_units = units(data)
    cost_oof = np.zeros((data.n_prompts, k))
    p_oof = {label: np.zeros((data.n_prompts, k)) for label, _, _ in configs}
    derived = ensembles_of_configs(configs)
    for f in range(n_folds):
        _say(f"cross-validation fold {f + 1}/{n_folds}")
        fit_rows = row_fold != f
        held = folds == f
        cost_model = LogLinearCostModel().fit(
            data.features[data.prompt[fit_rows]],
            {name: values[fit_rows] for name, values in all_units.items()},
            components=components,
            candidate=data.candidate[fit_rows],
        )
        cost_oof[held] = cost_model.predict_cost(data.features[held], k)
        train_rows = fit_rows & labelled
        for label, name, params in configs:
            if label in derived:
                continue
            learner = make_learner(name, **params).fit(
                data.features[data.prompt[train_rows]],
                data.outcome[train_rows],
                candidate=data.candidate[train_rows],
                n_candidates=k,
                usage={unit: values[train_rows] for unit, values in all_units.items()},
                sample_weight=None if sample_weight is None else sample_weight[train_rows],
                **fit_params,
            )
            p_oof[label][held] = learner.predict_proba(data.features[held])
    for label, members in derived.items():
        p_oof[label] = np.mean([p_oof[m] for m in members], axis=0)
    return p_oof, cost_oof


def _scores(
    data: TrainingSet,
    configs: list[LearnerConfig],
    p_oof: dict[str, np.ndarray],
    cost_oof: np.ndarray,
    log: FullInfoLog | None,
    sample_weight: np.ndarray | None = None,
) -> dict[str, dict[str, Any]]:
    """Row log-loss and, with full information, the routing figures of each setting."""
    full_info = data.full_information()
    scores: dict[str, dict[str, Any]] = {}
    rows = np.flatnonzero(data.labelled)
    for label, name, params in configs:
        p = p_oof[label]
        entry: dict[str, Any] = {
            "learner": name,
            "params": params,
            "log_loss": row_log_loss(
                p[data.prompt[rows], data.candidate[rows]],
                data.outcome[rows],
                None if sample_weight is None else sample_weight[rows],
            ),
        }
        if log is not None:
            summary = route_summary(log, p[full_info], cost_oof[full_info])
            entry.update(
                area=summary.area,
                savings_at_parity=summary.savings_at_parity,
                savings_at_95=summary.savings_at_95,
                area_single_models=summary.area_single_models,
            )
        scores[label] = entry
    return scores
