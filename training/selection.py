"""Learner selection by cross-validation grouped by ``prompt_id``.

Every configured learner is fit on k-1 folds of prompts and predicts the held-out
fold, so every prompt gets an out-of-fold (OOF) ``p_success`` from a model that
never saw it. On prompts where every candidate's outcome is logged, the OOF
predictions are routed through the served policy over a sweep of ``value_usd``,
and the learner with the largest area under the cost-quality curve wins: the
metric the router exists for, not log-loss alone (a learner can be well calibrated
and still rank candidates badly). Without enough full-information prompts the
row log-loss decides.

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
from training.evaluation import FullInfoLog, router_curve, summarize, value_grid
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


def row_log_loss(p: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy of soft labels ``y`` under ``p``, both shape ``(n_rows,)``."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def route_summary(log: FullInfoLog, p: np.ndarray, cost: np.ndarray) -> dict[str, Any]:
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
    seed: int = 0,
    fit_params: dict[str, Any] | None = None,
) -> CrossValidation:
    """Score every learner configuration by grouped k-fold cross-validation.

    Parameters
    ----------
    data : TrainingSet
    configs : list of (label, learner name, params)
    components : list of CostComponent
        Cost units, as the bundle will predict them.
    n_folds : int
    seed : int
    fit_params : dict, optional
        Extra keyword arguments for every learner's ``fit`` (e.g. ``candidate_info``).
    """
    fit_params = fit_params or {}
    k = len(data.candidates)
    folds = prompt_folds(data.n_prompts, n_folds, seed)
    row_fold = folds[data.prompt]
    labelled = data.labelled
    full_info = data.full_information()
    use_area = full_info.sum() >= MIN_FULL_INFO_PROMPTS
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
                **fit_params,
            )
            p_oof[label][held] = learner.predict_proba(data.features[held])

    for label, members in derived.items():
        p_oof[label] = np.mean([p_oof[m] for m in members], axis=0)

    log = None
    if use_area:
        log = FullInfoLog(
            prompt_ids=data.prompt_ids[full_info],
            candidates=data.candidates,
            outcome=data.matrix(data.outcome)[full_info],
            cost_usd=data.matrix(data.cost_usd)[full_info],
        )
    scores: dict[str, dict[str, Any]] = {}
    rows = np.flatnonzero(labelled)
    for label, name, params in configs:
        p = p_oof[label]
        entry: dict[str, Any] = {
            "learner": name,
            "params": params,
            "log_loss": row_log_loss(
                p[data.prompt[rows], data.candidate[rows]], data.outcome[rows]
            ),
        }
        if log is not None:
            summary = route_summary(log, p[full_info], cost_oof[full_info])
            entry.update(
                {key: summary[key] for key in ("area", "savings_at_parity", "savings_at_95")}
            )
            entry["area_single_models"] = summary["area_single_models"]
        scores[label] = entry
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
