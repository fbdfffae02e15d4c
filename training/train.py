"""`outcome-router train`: call logs in, verified ONNX bundle out.

Steps: read and validate logs -> keep the models with enough graded calls and a
known cost as candidates -> featurize each prompt once through the exported
encoder -> cross-validate every learner configuration grouped by ``prompt_id`` and
pick the one with the largest area under the cost-quality curve (on a bandit log,
one call per prompt: every fit weighted by the inverse propensity of the logging
policy, logged or estimated, `training.propensity`) -> calibrate its
probabilities on the out-of-fold predictions -> set the default policy for the
``--target`` on the same predictions -> refit on everything -> export, check ONNX
against native predictions -> log to MLflow.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from features.call_log import read_call_logs
from features.encoder_export import ensure_encoder
from features.featurizer import Featurizer
from features.prices import ModelPrice, PriceCatalog
from features.spec import FeatureSpec
from serving.bundle import Bundle
from serving.calibration import apply_calibration
from serving.manifest import ExcludedCandidate, PolicyDefaults, TrainingSummary
from serving.scoring import BundleScorer
from training.calibration import fit_calibration
from training.cost_model import CostComponent, LogLinearCostModel, cost_offset
from training.dataset import (
    DEFAULT_MIN_CALLS,
    TrainingSet,
    build_training_set,
    log_kind,
    screen_candidates,
    success_lower_bound,
    with_request_context,
)
from training.export import write_bundle
from training.learners import CandidateInfo, make_learner
from training.learners.ensemble import DEFAULT_MEMBERS
from training.off_policy import BanditFeedback
from training.policy_target import (
    PolicyTarget,
    fit_policy_target,
    fit_policy_target_off_policy,
)
from training.propensity import (
    DEFAULT_MAX_WEIGHT,
    LoggingPolicyEstimate,
    estimate_logging_policy,
    importance_weights,
    logged_policy,
    weighted_mean_outcome,
)
from training.selection import CrossValidation, LearnerConfig, cross_validate, units

#: Learner settings compared by cross-validation, as (label, registered name, params).
#: The grids span small logs (strong regularisation wins on a few hundred prompts)
#: to large ones, so selection rather than a fixed setting adapts to the data.
DEFAULT_LEARNERS: list[LearnerConfig] = [
    ("logistic-C0.0003", "logistic", {"C": 0.0003}),
    ("logistic-C0.003", "logistic", {"C": 0.003}),
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
    ("knn", "knn", {}),
    ("mlp", "mlp", {}),
    ("mf", "mf", {}),
    ("shared", "shared", {}),
    # The usage learner alone is left out: it reads no neighbourhood, and on repeated
    # splits it was never the best setting, while picking it by chance (winner's
    # curse) cost the selection area on both shipped datasets (README "Benchmarks").
    ("usage+knn", "ensemble", {"members": (("usage", {"C": 0.01}), ("knn", {}))}),
]
#: How a bandit log is corrected for its logging policy (`TrainConfig.correction`):
#: ``ips`` weights every row by its clipped, normalised inverse propensity;
#: ``none`` fits on the rows as logged (the naive fit, for comparison).
CORRECTIONS = ("ips", "none")
#: Largest allowed gap between ONNX and native predictions.
PARITY_TOLERANCE = 1e-4


@dataclass
class TrainConfig:
    """What `train` needs; every field maps to a command-line option."""

    logs: list[str]
    out: str
    prices: str | None = None
    candidates: list[str] | None = None
    min_calls: int = DEFAULT_MIN_CALLS
    learners: list[LearnerConfig] = field(default_factory=lambda: list(DEFAULT_LEARNERS))
    target: str = "parity"
    n_folds: int = 5
    cv_repeats: int = 1
    cv_max_prompts: int = 4000
    seed: int = 0
    correction: str = "ips"
    max_weight: float = DEFAULT_MAX_WEIGHT
    calibrate: bool = True
    spec: FeatureSpec = field(default_factory=FeatureSpec)
    context: tuple[str, ...] = ()
    track: bool = True
    register_as: str | None = "outcome-router"
    tracking_uri: str | None = None
    mlruns: str = "mlruns"
    #: ``--cluster``: None trains in this process; ``local[:N]`` or ``tcp://HOST:PORT``
    #: featurizes and fits on Dask workers (`training.cluster_training`).
    cluster: str | None = None


@dataclass(frozen=True)
class TrainResult:
    bundle: Bundle
    metrics: dict[str, float]
    validation: dict[str, Any]
    run_id: str | None
    model_version: str | None = None
    excluded_candidates: tuple[ExcludedCandidate, ...] = ()


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def model_family(name: str) -> str:
    """A model's family: its organisation prefix, or its name up to the size tag."""
    if "/" in name:
        return name.rsplit("/", 2)[-2].lower()
    return re.split(r"-(?=\d|latest|mini|nano|preview)", name.lower())[0]


def learners_for_spec(learners: list[LearnerConfig], spec: FeatureSpec) -> list[LearnerConfig]:
    """The learner settings with the spec's embedding width where a learner reads it.

    kNN's cosine runs on the embedding columns only, and their number depends on the
    encoder (384 for MiniLM, 256 for the static tier); a width given explicitly is
    kept.
    """

    def adapt(name: str, params: dict[str, Any]) -> dict[str, Any]:
        if name == "ensemble":
            given = params.get("members", DEFAULT_MEMBERS)
            return {**params, "members": tuple((m, adapt(m, p)) for m, p in given)}
        if "embedding_dim" in make_learner(name).get_params() and "embedding_dim" not in params:
            return {**params, "embedding_dim": spec.embedding_dim}
        return params

    return [(label, name, adapt(name, params)) for label, name, params in learners]


def cost_components(data: TrainingSet, prices: dict[str, ModelPrice | None]) -> list[CostComponent]:
    """Priced units of each candidate's cost (see `training.cost_model`).

    Tokens where the catalog prices the candidate and most of its rows log tokens;
    else ``cost_usd`` where logged; else a zero-cost component, with a warning.
    """
    components = []
    offset = cost_offset(data.cost_usd)
    for k, name in enumerate(data.candidates):
        rows = data.candidate == k
        price = prices.get(name)
        with_tokens = np.isfinite(data.input_tokens[rows]) & np.isfinite(data.output_tokens[rows])
        if price is not None and rows.any() and with_tokens.mean() >= 0.8:
            components.append(CostComponent(k, "input_tokens", price.input_cost_per_token, 1.0))
            components.append(CostComponent(k, "output_tokens", price.output_cost_per_token, 1.0))
        elif np.isfinite(data.cost_usd[rows]).any():
            components.append(CostComponent(k, "cost_usd", 1.0, offset))
        else:
            _say(f"warning: {name} has neither cost_usd nor priced tokens; its cost is taken as 0")
            components.append(CostComponent(k, "cost_usd", 0.0, 1.0))
    return components


def fallback_model(data: TrainingSet, sample_weight: np.ndarray | None = None) -> str:
    """The candidate most surely good: highest 95% lower bound of its success rate.

    The fallback answers when routing fails, so it must be a model known to do
    well, not one that looks best by chance: the mean outcome would crown a model
    that succeeded on 1 call of 1, while the Wilson lower bound of 1 of 1 is 0.21,
    below any model that succeeds on most of a few dozen calls
    (`training.dataset.success_lower_bound`). With importance weights (a bandit
    log) the rate is the weighted mean and the count its effective number of rows,
    so the model that was sent the hard prompts is not marked down for them.
    """
    bounds = []
    for k in range(len(data.candidates)):
        rows = (data.candidate == k) & data.labelled
        y = data.outcome[rows]
        if sample_weight is None or not rows.any():
            bounds.append(success_lower_bound(y))
            continue
        w = sample_weight[rows]
        n_eff = max(1, round(float(w.sum() ** 2 / np.square(w).sum())))
        p = float((w * y).sum() / w.sum())
        bounds.append(success_lower_bound(np.full(n_eff, p)))
    return data.candidates[int(np.argmax(bounds))]


def logging_policy(data: TrainingSet, seed: int) -> LoggingPolicyEstimate:
    """The logged propensities when every graded row has one, else the estimated
    logging policy (said on stderr). Fit once per `train`: the weights and the
    off-policy target both read it, and the estimate is many cross-fitted fits."""
    estimate = logged_policy(data)
    if estimate is not None:
        return estimate
    estimate = estimate_logging_policy(data, seed=seed)
    cal = estimate.calibration
    _say(
        f"{log_kind(data)} log without propensities: logging policy estimated (cross-fitted "
        f"log-loss {cal['log_loss']:.3f} vs {cal['log_loss_marginal']:.3f} for the logged "
        f"frequencies alone, calibration error {cal['ece']:.3f})"
    )
    return estimate


def bandit_correction(
    data: TrainingSet,
    correction: str,
    max_weight: float,
    seed: int,
    *,
    estimate: LoggingPolicyEstimate | None = None,
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Row importance weights for ``data`` (None on a full-information log) and the
    manifest's account of them (`serving.manifest.TrainingSummary.log`).

    A full-information log needs none: every candidate answered every prompt, so no
    policy chose the rows, and training stays exactly as it was. Otherwise the
    logged propensities are used when every graded row has one, else the logging
    policy is estimated (`training.propensity.estimate_logging_policy`).
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}.")
    kind = log_kind(data)
    summary: dict[str, Any] = {"kind": kind}
    if kind == "full_information":
        summary["correction"] = "none (full information: no logging policy chose the rows)"
        return None, summary
    naive = weighted_mean_outcome(data, None)
    if correction == "none":
        summary["correction"] = "none (asked for)"
        summary["mean_outcome_per_candidate"] = {"naive": naive}
        _say(f"{kind} log: fitting the rows as logged (no correction asked for)")
        return None, summary
    estimate = estimate or logging_policy(data, seed)
    if estimate.source == "logged":
        _say(f"{kind} log: weighting rows by their logged propensities")
    weights = importance_weights(data, estimate.propensity, max_weight=max_weight)
    summary.update(
        correction="ips",
        **estimate.to_dict(),
        weights=weights.to_dict(),
        mean_outcome_per_candidate={
            "naive": naive,
            "weighted": weighted_mean_outcome(data, weights.weights),
        },
    )
    return weights.weights, summary


def default_policy(
    data: TrainingSet,
    cv: CrossValidation | None,
    calibration: dict[str, Any] | None,
    target: PolicyTarget,
    seed: int,
    *,
    estimate: LoggingPolicyEstimate | None = None,
) -> dict[str, Any]:
    """The bundle's default policy for ``target``, fit on out-of-fold predictions.

    On full-information prompts the target is measured on the table. On a bandit
    (or partial) log it is measured off-policy on the logged calls
    (`training.policy_target.fit_policy_target_off_policy`), with the logged
    propensities or, without them, the estimated logging policy. Without
    out-of-fold predictions (no cross-validation) nothing can measure it;
    ``value_usd`` is then 100 times the mean logged cost (a good outcome is worth a
    hundred average calls) and the policy says so in ``target_fit``.
    """
    policy: dict[str, Any] = {
        "min_success": None,
        "max_cost_usd": None,
        "target": str(target),
    }
    if cv is not None and cv.criterion == "area":
        log = cv.full_info_log(data)
        p = apply_calibration(cv.p_oof[cv.chosen][cv.full_info], calibration)
        fit = fit_policy_target(target, log, p, cv.cost_oof[cv.full_info], seed=seed)
        policy["value_usd"] = fit["value_usd"]
        policy["target_fit"] = fit
        if fit["reference_margin"] > 0:
            policy["reference_model"] = fit["best_single"]["name"]
            policy["reference_margin"] = fit["reference_margin"]
        met = "met" if fit["met"] else "NOT met (closest point used)"
        lo, hi = fit["ci95"]["savings_vs_best_single"]
        _say(
            f"default policy for {target}: value_usd {fit['value_usd']:.4g}, "
            f"reference margin {fit['reference_margin']:g} over {fit['best_single']['name']}, "
            f"{met}; "
            f"cross-validated quality on held-out halves {fit['quality']:.3f} "
            f"at ${fit['cost_usd']:.4g}/request, "
            f"savings vs {fit['best_single']['name']} {fit['savings_vs_best_single']:.1%} "
            f"(95% CI {lo:.1%} to {hi:.1%})"
        )
        for warning in fit["warnings"]:
            _say(f"warning: {warning}")
        return policy
    if cv is not None and log_kind(data) != "full_information":
        fit = off_policy_target(data, cv, calibration, target, seed, estimate=estimate)
        if fit is not None:
            policy["value_usd"] = fit["value_usd"]
            policy["target_fit"] = fit
            return policy
    costs = data.cost_usd[np.isfinite(data.cost_usd)]
    policy["value_usd"] = float(100 * costs.mean()) if len(costs) else 1.0
    policy["target_fit"] = {
        "target": str(target),
        "met": None,
        "note": "no out-of-fold predictions to measure the target on: "
        "value_usd = 100 x mean logged cost",
    }
    _say(f"warning: {policy['target_fit']['note']}")
    return policy


def off_policy_target(
    data: TrainingSet,
    cv: CrossValidation,
    calibration: dict[str, Any] | None,
    target: PolicyTarget,
    seed: int,
    *,
    estimate: LoggingPolicyEstimate | None = None,
) -> dict[str, Any] | None:
    """``target`` fit off-policy on the graded, costed calls of a bandit log, printed.

    Each call is one round; the policy decides on its prompt's out-of-fold
    predictions. None when no call has both an outcome and a cost. ``estimate`` is
    the logging policy `train` already fit for ``data`` (fit here when None).
    """
    rows = np.flatnonzero(data.labelled & np.isfinite(data.cost_usd))
    if not len(rows):
        return None
    estimate = estimate or logging_policy(data, seed)
    p = apply_calibration(cv.p_oof[cv.chosen], calibration)
    prompt = data.prompt[rows]
    feedback = BanditFeedback(
        n_rounds=len(rows),
        n_actions=len(data.candidates),
        action=data.candidate[rows],
        reward=data.outcome[rows],
        cost_usd=data.cost_usd[rows],
        pscore=estimate.propensity[rows],
        estimated_reward=p[prompt],
        estimated_cost_usd=cv.cost_oof[prompt],
        action_names=tuple(data.candidates),
    )
    fit = fit_policy_target_off_policy(
        target, feedback, propensity_source=estimate.source, seed=seed
    )
    met = "met" if fit["met"] else "NOT met (closest point used)"
    ci = fit["ci95"]
    best = fit["best_single"]
    _say(
        f"default policy for {target}: value_usd {fit['value_usd']:.4g}, {met}; "
        f"off-policy {fit['estimator'].upper()} estimate on {fit['n_rounds']} logged calls "
        f"({estimate.source} propensities, ESS {fit['ess']:.0f}): quality {fit['quality']:.3f} "
        f"(95% CI {_span(ci['quality'], '.3f')}) at ${fit['cost_usd']:.4g}/request "
        f"(95% CI {_span(ci['cost_usd'], '.4g')}), savings vs {best['name']} (estimated "
        f"quality {best['quality']:.3f}) {fit['savings_vs_best_single']:.1%} "
        f"(95% CI {_span(ci['savings_vs_best_single'], '.1%')})"
    )
    for warning in fit["warnings"]:
        _say(f"warning: {warning}")
    return fit


def _span(interval: list[float | None], spec: str) -> str:
    """``low to high`` for printing; an undefined bound prints as ``?``."""
    return " to ".join("?" if v is None else format(v, spec) for v in interval)


def train(config: TrainConfig) -> TrainResult:
    """Run the whole training command; see the module docstring.

    With ``config.cluster`` the logs are read, featurized and the final LightGBM
    and cost model fit on Dask workers (`training.cluster_training`); the rest is
    the same code on the gathered features.
    """
    from training.cluster import connect

    with connect(config.cluster) as client:
        return _train(config, client)


def _train(config: TrainConfig, client) -> TrainResult:
    target = PolicyTarget.parse(config.target)
    catalog = PriceCatalog.load(config.prices)
    out = Path(config.out)
    quarantine = out.with_name(out.name + ".quarantine.jsonl")
    scale: dict[str, Any] | None = None
    if client is None:
        read = read_call_logs(config.logs, prices=catalog, quarantine_path=quarantine)
        n_calls, n_quarantined = len(read.frame), read.n_quarantined
        _say(
            f"read {n_calls} calls; quarantined {n_quarantined}"
            + (f" -> {quarantine}" if n_quarantined else "")
        )
        spec = with_request_context(config.spec, read.frame, config.context)
        if spec.context_names:
            _say(
                f"request context: {len(spec.context_names)} columns ({', '.join(config.context)})"
            )
        encoder_dir = ensure_encoder(kind=spec.encoder)
        featurizer = Featurizer(spec, encoder_dir, workers=2)
        candidates, excluded = screen_candidates(
            read.frame, catalog, min_calls=config.min_calls, requested=config.candidates
        )
        for entry in excluded:
            _say(f"excluded candidate {entry.model}: {entry.reason}")
        data = build_training_set(read.frame, featurizer, candidates)
        del read
    else:
        from features.call_log_dataset import open_call_log_dataset
        from training.cluster_training import read_training_set

        encoder_dir = ensure_encoder(kind=config.spec.encoder)
        cluster_read = read_training_set(
            client,
            open_call_log_dataset(config.logs),
            catalog=catalog,
            spec=config.spec,
            context=config.context,
            encoder_dir=encoder_dir,
            min_calls=config.min_calls,
            requested=config.candidates,
            quarantine=quarantine,
        )
        data, excluded, spec = cluster_read.data, cluster_read.excluded, cluster_read.spec
        n_calls, n_quarantined = cluster_read.n_calls, cluster_read.n_quarantined
        for entry in excluded:
            _say(f"excluded candidate {entry.model}: {entry.reason}")
        scale = {
            "cluster": config.cluster,
            "n_workers": cluster_read.n_workers,
            "n_partitions": cluster_read.n_partitions,
            "featurized": "per partition on the workers",
        }
    n_labelled = int(data.labelled.sum())
    if n_labelled == 0:
        raise ValueError("No call has an outcome: nothing to learn from.")
    _say(
        f"{data.n_prompts} prompts, {n_labelled} graded calls, candidates: "
        + ", ".join(data.candidates)
    )
    estimate = None if log_kind(data) == "full_information" else logging_policy(data, config.seed)
    weights, log_summary = bandit_correction(
        data, config.correction, config.max_weight, config.seed, estimate=estimate
    )
    prices = {name: catalog.get(name) for name in data.candidates}
    components = cost_components(data, prices)
    families = {c: model_family(c) for c in data.candidates}
    fit_params = {"candidate_info": CandidateInfo.from_prices(data.candidates, families, prices)}

    cv, cv_data, cv_weights = None, data, weights
    if data.n_prompts > config.cv_max_prompts:
        # Selection on a seeded sample keeps large logs affordable; the chosen
        # learner is still refit on every prompt.
        keep = np.zeros(data.n_prompts, dtype=bool)
        rng = np.random.default_rng(config.seed)
        keep[rng.choice(data.n_prompts, config.cv_max_prompts, replace=False)] = True
        cv_data = data.subset(keep)
        cv_weights = None if weights is None else weights[keep[data.prompt]]
        if estimate is not None:  # the same rows and prompts as cv_data
            estimate = replace(
                estimate,
                propensity=estimate.propensity[keep[data.prompt]],
                action_dist=None if estimate.action_dist is None else estimate.action_dist[keep],
            )
        _say(f"cross-validating on a sample of {config.cv_max_prompts} of {data.n_prompts} prompts")
    n_folds = min(config.n_folds, cv_data.n_prompts)
    learners = learners_for_spec(config.learners, spec)
    if (len(learners) > 1 or config.calibrate) and n_folds >= 2:
        cv = cross_validate(
            cv_data,
            learners,
            components,
            n_folds=n_folds,
            n_repeats=config.cv_repeats,
            seed=config.seed,
            fit_params=fit_params,
            sample_weight=cv_weights,
        )
    label, name, params = next(
        (c for c in learners if cv is not None and c[0] == cv.chosen), learners[0]
    )
    _say(f"chosen learner: {label}" + (f" (by cross-validated {cv.criterion})" if cv else ""))
    calibration, calibration_report = None, {"chosen": "none", "reason": "not cross-validated"}
    if cv is not None and config.calibrate:
        calibration, calibration_report = fit_calibration(cv_data, cv.p_oof[label], cv.folds)
        _say(f"calibration: {calibration_report['chosen']}")

    labelled = data.labelled
    if client is not None and name == "lightgbm":
        from training.cluster_training import fit_lightgbm_on_cluster

        learner = fit_lightgbm_on_cluster(client, params, data, weights)
    else:
        learner = make_learner(name, **params).fit(
            data.features[data.prompt[labelled]],
            data.outcome[labelled],
            candidate=data.candidate[labelled],
            n_candidates=len(data.candidates),
            usage={unit: values[labelled] for unit, values in units(data).items()},
            sample_weight=None if weights is None else weights[labelled],
            **fit_params,
        )
    # Unweighted even on bandit logs: inverse-propensity weights did not make the cost
    # model better on test prompts under biased logging (benchmarks/bandit_cost.py:
    # SWE-bench and RouteProfile, 'long' and 'hard' loggers, 3 seeds: |relative bias| of
    # each candidate's mean cost 0.13-0.23 either way, per-prompt |log error| 0.01 worse
    # weighted). Cost follows prompt length, which the features see, so the shift in
    # which prompts a model answered is covariate shift the regression already handles.
    if client is None:
        cost_model = LogLinearCostModel().fit(
            data.features[data.prompt],
            units(data),
            components=components,
            candidate=data.candidate,
        )
    else:
        from training.cost_model_stats import fit_cost_model_by_chunks

        cost_model = fit_cost_model_by_chunks(
            data.features, data.prompt, units(data), components=components, candidate=data.candidate
        )
        scale.update(
            selection=f"cross-validated on {cv_data.n_prompts} of {data.n_prompts} prompts "
            "in this process",
            final_learner="lightgbm.dask on the workers"
            if name == "lightgbm"
            else "refit in this process on the gathered features",
            cost_model="ridge from chunked sufficient statistics (exact)",
        )
    policy = {
        **default_policy(cv_data, cv, calibration, target, config.seed, estimate=estimate),
        "fallback_model": fallback_model(data, weights),
    }
    metrics = _metrics(cv, label, policy)
    training_summary = {
        "n_calls": n_calls,
        "n_quarantined": n_quarantined,
        "n_prompts": data.n_prompts,
        "n_graded_calls": n_labelled,
        "min_calls": config.min_calls,
        "rows_per_candidate": {
            c: int((data.candidate == k).sum()) for k, c in enumerate(data.candidates)
        },
        "mean_outcome_per_candidate": {
            c: _nanmean(data.outcome[data.candidate == k]) for k, c in enumerate(data.candidates)
        },
        "selection": {
            "chosen": label,
            "criterion": cv.criterion if cv else "single configuration",
            "n_folds": n_folds if cv else 0,
            "n_repeats": config.cv_repeats if cv else 0,
            "n_full_information_prompts": int(cv.full_info.sum()) if cv else 0,
            "learners": cv.scores if cv else {},
            **({"scale": scale} if scale else {}),
        },
        "calibration": calibration_report,
        "metrics": metrics,
        "log": log_summary,
    }
    bundle = write_bundle(
        out,
        encoder_dir=encoder_dir,
        spec=spec,
        candidates=list(data.candidates),
        families=families,
        prices=prices,
        learner=learner,
        learner_name=name,
        cost_model=cost_model,
        policy=PolicyDefaults(**policy),
        training=TrainingSummary(**training_summary),
        calibration=calibration,
        excluded_candidates=excluded,
    )
    check_parity(bundle, data, learner, cost_model)
    _say(f"bundle {bundle.router_version} written to {out}")
    run_id = model_version = None
    if config.track:
        run_id = _track(bundle, config, label, metrics, policy)
        if config.register_as:
            from training.registry import register_bundle

            model_version = register_bundle(
                run_id,
                name=config.register_as,
                tracking_uri=config.tracking_uri,
                root=config.mlruns,
            )
            _say(
                f"registered {config.register_as} version {model_version}; "
                f"promote it with `outcome-router promote {model_version}`"
            )
    return TrainResult(
        bundle=bundle,
        metrics=metrics,
        validation=training_summary["selection"],
        run_id=run_id,
        model_version=model_version,
        excluded_candidates=tuple(excluded),
    )


def check_parity(
    bundle: Bundle,
    data: TrainingSet,
    learner,
    cost_model: LogLinearCostModel,
    n: int = 64,
) -> float:
    """Largest gap between the bundle's predictions and the native ones.

    Raises
    ------
    AssertionError
        If probabilities differ by more than `PARITY_TOLERANCE` or costs by more
        than 0.1%.
    """
    scorer = BundleScorer(bundle)
    X = data.features[:n]
    onnx_scores = scorer.score_features(X)
    native_p = apply_calibration(learner.predict_proba(X), bundle.contents.scorer.calibration)
    gap = float(np.abs(onnx_scores.p_success - native_p).max(initial=0.0))
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


def _metrics(cv: CrossValidation | None, chosen: str, policy: dict[str, Any]) -> dict[str, float]:
    """Flat numeric metrics for MLflow, named by setting label (`training.tracking`
    replaces what MLflow refuses in a name, such as the ``+`` of ``usage+knn``)."""
    metrics: dict[str, float] = {}
    if cv is not None:
        for label, entry in cv.scores.items():
            for key in ("log_loss", "area", "savings_at_parity", "savings_at_95"):
                if entry.get(key) is not None:
                    metrics[f"cv_{key}_{label}"] = float(entry[key])
        for key in ("log_loss", "area", "savings_at_parity", "savings_at_95"):
            if cv.scores[chosen].get(key) is not None:
                metrics[f"cv_{key}"] = float(cv.scores[chosen][key])
    fit = policy.get("target_fit", {})
    for key in ("quality", "cost_usd", "savings_vs_best_single"):
        if isinstance(fit.get(key), float):
            metrics[f"policy_{key}"] = fit[key]
    return metrics


def _track(bundle: Bundle, config: TrainConfig, chosen: str, metrics, policy) -> str:
    from training.tracking import log_training_run

    params = {
        "logs": ",".join(map(str, config.logs)),
        "learner": chosen,
        "candidates": ",".join(bundle.candidate_names),
        "feature_spec": bundle.feature_spec.to_dict(),
        "n_folds": config.n_folds,
        "cv_repeats": config.cv_repeats,
        "seed": config.seed,
        "target": config.target,
        "router_version": bundle.router_version,
        "policy_value_usd": policy["value_usd"],
        "calibration": (bundle.contents.scorer.calibration or {}).get("method", "none"),
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
