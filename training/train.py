"""`outcome-router train`: call logs in, verified ONNX bundle out.

Steps: read and validate logs -> featurize each prompt once through the exported
encoder -> pick a learner on a validation split grouped by ``prompt_id`` -> fit
the cost model -> set the default policy on validation -> refit on everything ->
export, check ONNX against native predictions -> log to MLflow.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from features.call_log import read_call_logs
from features.encoder_export import ensure_encoder
from features.featurizer import Featurizer
from features.prices import ModelPrice, PriceCatalog
from features.spec import FeatureSpec
from serving.bundle import Bundle
from serving.scoring import BundleScorer
from training.cost_model import CostComponent, LogLinearCostModel
from training.dataset import TrainingSet, build_training_set
from training.evaluation import FullInfoLog, router_curve, summarize, value_grid
from training.export import write_bundle
from training.learners import make_learner

#: Learner settings compared on validation, as (label, registered name, params).
#: The grids span small logs (strong regularisation wins on a few hundred prompts)
#: to large ones, so selection rather than a fixed setting adapts to the data.
DEFAULT_LEARNERS: list[tuple[str, str, dict[str, Any]]] = [
    ("logistic-C0.0003", "logistic", {"C": 0.0003}),
    ("logistic-C0.003", "logistic", {"C": 0.003}),
    ("logistic-C0.03", "logistic", {"C": 0.03}),
    (
        "lightgbm-small",
        "lightgbm",
        {
            "n_estimators": 100,
            "learning_rate": 0.03,
            "num_leaves": 4,
            "min_child_samples": 30,
            "colsample_bytree": 0.3,
        },
    ),
    (
        "lightgbm-large",
        "lightgbm",
        {
            "n_estimators": 300,
            "learning_rate": 0.05,
            "num_leaves": 15,
            "min_child_samples": 50,
            "colsample_bytree": 0.3,
        },
    ),
]
#: Largest allowed gap between ONNX and native predictions.
PARITY_TOLERANCE = 1e-4


@dataclass
class TrainConfig:
    """What `train` needs; every field maps to a command-line option."""

    logs: list[str]
    out: str
    prices: str | None = None
    candidates: list[str] | None = None
    learners: list[tuple[str, str, dict[str, Any]]] = field(
        default_factory=lambda: list(DEFAULT_LEARNERS)
    )
    validation_fraction: float = 0.2
    seed: int = 0
    spec: FeatureSpec = field(default_factory=FeatureSpec)
    track: bool = True
    tracking_uri: str | None = None
    mlruns: str = "mlruns"


@dataclass(frozen=True)
class TrainResult:
    bundle: Bundle
    metrics: dict[str, float]
    validation: dict[str, Any]
    run_id: str | None


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def model_family(name: str) -> str:
    """A model's family: its organisation prefix, or its name up to the size tag."""
    if "/" in name:
        return name.rsplit("/", 2)[-2].lower()
    return re.split(r"-(?=\d|latest|mini|nano|preview)", name.lower())[0]


def grouped_split(n_prompts: int, fraction: float, seed: int) -> np.ndarray:
    """Validation mask over prompts: every row of a prompt falls on one side."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(n_prompts, dtype=bool)
    n_val = round(n_prompts * fraction)
    if n_prompts >= 10 and n_val > 0:
        mask[rng.choice(n_prompts, size=n_val, replace=False)] = True
    return mask


def cost_components(data: TrainingSet, prices: dict[str, ModelPrice | None]) -> list[CostComponent]:
    """Priced units of each candidate's cost (see `training.cost_model`).

    Tokens where the catalog prices the candidate and most of its rows log tokens;
    else ``cost_usd`` where logged; else a zero-cost component, with a warning.
    """
    components = []
    positive = data.cost_usd[np.isfinite(data.cost_usd) & (data.cost_usd > 0)]
    cost_offset = float(np.median(positive) * 1e-3) if len(positive) else 1e-9
    for k, name in enumerate(data.candidates):
        rows = data.candidate == k
        price = prices.get(name)
        with_tokens = np.isfinite(data.input_tokens[rows]) & np.isfinite(data.output_tokens[rows])
        if price is not None and rows.any() and with_tokens.mean() >= 0.8:
            components.append(CostComponent(k, "input_tokens", price.input_cost_per_token, 1.0))
            components.append(CostComponent(k, "output_tokens", price.output_cost_per_token, 1.0))
        elif np.isfinite(data.cost_usd[rows]).any():
            components.append(CostComponent(k, "cost_usd", 1.0, cost_offset))
        else:
            _say(f"warning: {name} has neither cost_usd nor priced tokens; its cost is taken as 0")
            components.append(CostComponent(k, "cost_usd", 0.0, 1.0))
    return components


def _units(data: TrainingSet) -> dict[str, np.ndarray]:
    return {
        "input_tokens": data.input_tokens,
        "output_tokens": data.output_tokens,
        "cost_usd": data.cost_usd,
    }


def _row_log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _full_info_log(data: TrainingSet, prompts: np.ndarray) -> FullInfoLog:
    return FullInfoLog(
        prompt_ids=data.prompt_ids[prompts],
        candidates=data.candidates,
        outcome=data.matrix(data.outcome)[prompts],
        cost_usd=data.matrix(data.cost_usd)[prompts],
    )


def _parity_value(summary: dict[str, Any], curve_values: np.ndarray) -> float | None:
    """Least ``value_usd`` whose point reaches the best single model's quality."""
    target = summary["best_single"]["quality"]
    reaching = [
        (p["cost_usd"], p["value_usd"])
        for p in summary["router_curve"]
        if p["quality"] >= target - 1e-12
    ]
    return min(reaching)[1] if reaching else None


def select_learner(
    data: TrainingSet, config: TrainConfig, components: list[CostComponent]
) -> tuple[tuple[str, str, dict[str, Any]], dict[str, Any]]:
    """Fit every configured learner on the training part, score the validation part.

    Returns the chosen (label, name, params) and a validation report: per learner the row log-loss
    (the selection criterion, stable on small data) and, where validation prompts
    have every candidate's outcome, the evaluation summary (area, savings).
    """
    val_prompts = grouped_split(data.n_prompts, config.validation_fraction, config.seed)
    labelled = data.labelled
    train_rows = labelled & ~val_prompts[data.prompt]
    val_rows = labelled & val_prompts[data.prompt]
    report: dict[str, Any] = {"n_validation_prompts": int(val_prompts.sum()), "learners": {}}
    if not val_rows.any() or len(config.learners) == 1:
        report["chosen"] = config.learners[0][0]
        report["reason"] = "only one learner configured" if val_rows.any() else "no validation rows"
        return config.learners[0], report
    X = data.features
    k = len(data.candidates)
    fit_rows = ~val_prompts[data.prompt]
    cost_model = LogLinearCostModel().fit(
        X[data.prompt[fit_rows]],
        {name: values[fit_rows] for name, values in _units(data).items()},
        components=components,
        candidate=data.candidate[fit_rows],
    )
    full = val_prompts & data.full_information()
    full_log = _full_info_log(data, full) if full.sum() >= 10 else None
    for label, name, params in config.learners:
        _say(f"validating {label}")
        learner = make_learner(name, **params).fit(
            X[data.prompt[train_rows]],
            data.outcome[train_rows],
            candidate=data.candidate[train_rows],
            n_candidates=k,
        )
        p_rows = learner.predict_proba(X[data.prompt[val_rows]])
        p_rows = p_rows[np.arange(len(p_rows)), data.candidate[val_rows]]
        entry: dict[str, Any] = {
            "learner": name,
            "params": params,
            "log_loss": _row_log_loss(p_rows, data.outcome[val_rows]),
        }
        if full_log is not None:
            p = learner.predict_proba(X[full])
            c = cost_model.predict_cost(X[full], k)
            values = value_grid(full_log)
            summary = summarize(full_log, router_curve(full_log, p, c, values))
            entry["summary"] = summary
            entry["area"] = summary["area"]
            entry["parity_value_usd"] = _parity_value(summary, values)
        report["learners"][label] = entry
    chosen = min(config.learners, key=lambda c: report["learners"][c[0]]["log_loss"])
    report["chosen"] = chosen[0]
    report["reason"] = "lowest validation log-loss (grouped by prompt_id)"
    return chosen, report


def default_policy(data: TrainingSet, report: dict[str, Any], chosen: str) -> dict[str, Any]:
    """The bundle's default policy: parity on validation where it can be measured.

    ``value_usd`` is the least value whose validation point reaches the best single
    model's quality; without full-information validation data it is 100 times the
    mean logged cost (a good outcome is worth a hundred average calls).
    The fallback model is the candidate with the highest mean outcome.
    """
    mean_outcome = np.array(
        [
            np.nanmean(np.where(data.candidate == k, data.outcome, np.nan))
            if (data.labelled & (data.candidate == k)).any()
            else 0.0
            for k in range(len(data.candidates))
        ]
    )
    fallback = data.candidates[int(np.argmax(mean_outcome))]
    entry = report.get("learners", {}).get(chosen, {})
    value = entry.get("parity_value_usd")
    target = "parity"
    if value is None:
        costs = data.cost_usd[np.isfinite(data.cost_usd)]
        value = float(100 * costs.mean()) if len(costs) else 1.0
        target = "heuristic"
    return {
        "value_usd": float(value),
        "min_success": None,
        "max_cost_usd": None,
        "fallback_model": fallback,
        "target": target,
    }


def train(config: TrainConfig) -> TrainResult:
    """Run the whole training command; see the module docstring."""
    catalog = PriceCatalog.load(config.prices)
    out = Path(config.out)
    quarantine = out.with_name(out.name + ".quarantine.jsonl")
    read = read_call_logs(config.logs, prices=catalog, quarantine_path=quarantine)
    _say(
        f"read {len(read.frame)} calls; quarantined {read.n_quarantined}"
        + (f" -> {quarantine}" if read.n_quarantined else "")
    )
    encoder_dir = ensure_encoder()
    featurizer = Featurizer(config.spec, encoder_dir, workers=2)
    data = build_training_set(read.frame, featurizer, config.candidates)
    n_labelled = int(data.labelled.sum())
    if n_labelled == 0:
        raise ValueError("No call has an outcome: nothing to learn from.")
    _say(
        f"{data.n_prompts} prompts, {n_labelled} graded calls, candidates: "
        + ", ".join(data.candidates)
    )
    prices = {name: catalog.get(name) for name in data.candidates}
    components = cost_components(data, prices)
    (label, name, params), report = select_learner(data, config, components)
    _say(f"chosen learner: {label} ({report['reason']})")

    labelled = data.labelled
    learner = make_learner(name, **params).fit(
        data.features[data.prompt[labelled]],
        data.outcome[labelled],
        candidate=data.candidate[labelled],
        n_candidates=len(data.candidates),
    )
    cost_model = LogLinearCostModel().fit(
        data.features[data.prompt], _units(data), components=components, candidate=data.candidate
    )
    policy = default_policy(data, report, label)
    metrics = _validation_metrics(report, label)
    training_summary = {
        "n_calls": len(read.frame),
        "n_quarantined": read.n_quarantined,
        "n_prompts": data.n_prompts,
        "n_graded_calls": n_labelled,
        "rows_per_candidate": {
            c: int((data.candidate == k).sum()) for k, c in enumerate(data.candidates)
        },
        "mean_outcome_per_candidate": {
            c: _nanmean(data.outcome[data.candidate == k]) for k, c in enumerate(data.candidates)
        },
        "selection": _jsonable_report(report),
        "metrics": metrics,
    }
    bundle = write_bundle(
        out,
        encoder_dir=encoder_dir,
        spec=config.spec,
        candidates=list(data.candidates),
        families={c: model_family(c) for c in data.candidates},
        prices=prices,
        learner=learner,
        learner_name=name,
        cost_model=cost_model,
        policy=policy,
        training=training_summary,
    )
    check_parity(bundle, data, learner, cost_model)
    _say(f"bundle {bundle.router_version} written to {out}")
    run_id = None
    if config.track:
        run_id = _track(bundle, config, label, metrics, policy)
    return TrainResult(bundle=bundle, metrics=metrics, validation=report, run_id=run_id)


def check_parity(
    bundle: Bundle,
    data: TrainingSet,
    learner,
    cost_model: LogLinearCostModel,
    n: int = 64,
) -> float:
    """Largest gap between the bundle's ONNX predictions and the native ones.

    Raises
    ------
    AssertionError
        If probabilities differ by more than `PARITY_TOLERANCE` or costs by more
        than the same relative amount.
    """
    scorer = BundleScorer(bundle)
    X = data.features[:n]
    onnx_scores = scorer.score_features(X)
    gap = float(np.abs(onnx_scores.p_success - learner.predict_proba(X)).max(initial=0.0))
    native_cost = cost_model.predict_cost(X, len(data.candidates))
    rel = np.abs(onnx_scores.expected_cost_usd - native_cost) / np.maximum(native_cost, 1e-12)
    if gap > PARITY_TOLERANCE or rel.max(initial=0.0) > 1e-3:
        raise AssertionError(
            f"ONNX export does not match native predictions: max |dp| = {gap:.2e}, "
            f"max relative cost gap = {rel.max():.2e}."
        )
    return gap


def _nanmean(values: np.ndarray) -> float | None:
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else None


def _validation_metrics(report: dict[str, Any], chosen: str) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for name, entry in report.get("learners", {}).items():
        metrics[f"val_log_loss_{name}"] = entry["log_loss"]
        if "summary" in entry:
            s = entry["summary"]
            metrics[f"val_area_{name}"] = s["area"]
            for key in ("savings_at_parity", "savings_at_95"):
                if s.get(key) is not None:
                    metrics[f"val_{key}_{name}"] = s[key]
    entry = report.get("learners", {}).get(chosen)
    if entry:
        metrics["val_log_loss"] = entry["log_loss"]
        if "area" in entry:
            metrics["val_area"] = entry["area"]
    return metrics


def _jsonable_report(report: dict[str, Any]) -> dict[str, Any]:
    """The selection report without the bulky curves, for the manifest."""
    out = {k: v for k, v in report.items() if k != "learners"}
    out["learners"] = {}
    for name, entry in report.get("learners", {}).items():
        slim = {k: v for k, v in entry.items() if k != "summary"}
        if "summary" in entry:
            s = entry["summary"]
            slim.update({k: s.get(k) for k in ("savings_at_parity", "savings_at_95")})
        out["learners"][name] = slim
    return out


def _track(bundle: Bundle, config: TrainConfig, chosen: str, metrics, policy) -> str:
    from training.tracking import log_training_run

    params = {
        "logs": ",".join(map(str, config.logs)),
        "learner": chosen,
        "candidates": ",".join(bundle.candidate_names),
        "feature_spec": bundle.manifest["feature_spec"],
        "validation_fraction": config.validation_fraction,
        "seed": config.seed,
        "router_version": bundle.router_version,
        "policy_value_usd": policy["value_usd"],
    }
    run_id = log_training_run(
        bundle.path,
        params=params,
        metrics=metrics,
        tracking_uri=config.tracking_uri,
        root=config.mlruns,
    )
    _say(f"MLflow run {run_id}")
    return run_id
