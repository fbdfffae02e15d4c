"""Does correcting for the logging policy help training on bandit logs?

    .venv/bin/python benchmarks/bandit.py [--datasets swebench,routeprofile] [--seeds 3]

A gateway log has one call per prompt, and the model was chosen by a biased
logging policy. This benchmark makes such a log from a full-information table,
where the truth is known, and compares training variants on it:

1. split the prompts 70/30 by hashed ``prompt_id`` (`training.split.in_train_split`,
   seed = repeat number); the test side keeps every candidate's outcome;
2. on the training side keep one call per prompt, drawn by `biased_choice`: prompts
   above the median go to the dearest candidate with probability `TO_DEAREST` (the
   rest spread uniformly), the others uniformly; "above the median" is by the
   routing text's length (``--policy long``, the issue's setting) or by difficulty
   (``--policy hard``: the share of candidates that fail the prompt, what a person
   who knows the hard tasks would do); the exact propensity of each call is logged;
3. fit each learner on that bandit log ``naive`` (no weights), ``ips-logged``
   (weights from the logged propensities), ``ips-estimated`` (propensities
   estimated from the prompts, `training.propensity.estimate_logging_policy`),
   ``dr-logged`` (doubly robust targets, `doubly_robust_rows`: every prompt x
   candidate gets ``q + 1[logged] min(1/propensity, 20) (y - q)``, clipped to [0, 1],
   with ``q`` the learner's own cross-fitted naive prediction) and ``full`` (every
   candidate's row of the same training prompts: the ceiling);
4. on the test prompts: each candidate's mean predicted success against its true
   rate (``error``: mean absolute difference over candidates, per seed; ``bias``: the
   same of the difference averaged over the seeds first, the systematic part that
   the correction targets), and the area under the cost-quality curve of the router
   (`training.selection.route_summary`), with the cost model fit on the same
   training rows.

Uncalibrated predictions, no selection: it measures the correction, not the
bundle. Results go to ``build/benchmarks/bandit.json``.

The biasing here is deliberately minimal; the full simulator (``training.simulation``,
``outcome-router simulate``: users, sessions, delayed events, several policies)
replaces `biased_choice` once merged.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on sys.path, and a sibling benchmark module
# (benchmarks/features.py) would shadow the project's `features` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from benchmarks.datasets import SHARED, swebench_calls  # noqa: E402
from features.call_log import read_call_logs  # noqa: E402
from features.encoder_export import ensure_encoder  # noqa: E402
from features.featurizer import Featurizer  # noqa: E402
from features.prices import PriceCatalog  # noqa: E402
from features.spec import FeatureSpec  # noqa: E402
from training.cost_model import LogLinearCostModel  # noqa: E402
from training.dataset import TrainingSet, build_training_set  # noqa: E402
from training.evaluation import FullInfoLog  # noqa: E402
from training.learners import CandidateInfo, make_learner  # noqa: E402
from training.propensity import estimate_logging_policy, importance_weights  # noqa: E402
from training.selection import route_summary, units  # noqa: E402
from training.split import in_train_split  # noqa: E402
from training.train import cost_components, learners_for_spec, model_family  # noqa: E402

TRAIN_FRACTION = 0.7
#: Probability that a long (or hard) prompt goes to the dearest candidate (the
#: issue's setting).
TO_DEAREST = 0.7
#: What sends a prompt to the dearest candidate (see the module docstring).
POLICIES = ("long", "hard")
#: Learner settings compared (a subset of `training.train.DEFAULT_LEARNERS`).
LEARNERS = [
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
    ("shared", "shared", {}),
]
VARIANTS = ("naive", "ips-logged", "ips-estimated", "dr-logged", "full")
#: Folds of the cross-fitted outcome model of the doubly robust targets.
DR_FOLDS = 5


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def routeprofile_calls(quick: bool, seed: int):
    """RouteProfile (../shared/data/routeprofile), already a call log."""
    import pandas as pd

    return pd.read_json(SHARED / "routeprofile" / "calls.jsonl.gz", lines=True)


DATASETS = {"swebench": swebench_calls, "routeprofile": routeprofile_calls}


def load(name: str, encoder: str) -> tuple[TrainingSet, PriceCatalog, FeatureSpec]:
    """The dataset as a featurized full-information `TrainingSet`."""
    prices = SHARED / "routeprofile" / "prices.json" if name == "routeprofile" else None
    catalog = PriceCatalog.load(prices)
    frame = DATASETS[name](False, 0)
    folder = ROOT / "build" / "benchmarks" / "bandit"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    read = read_call_logs([str(path)], prices=catalog, quarantine_path=path.with_suffix(".q.jsonl"))
    spec = FeatureSpec.for_encoder(encoder)
    data = build_training_set(read.frame, Featurizer(spec, ensure_encoder(kind=encoder)))
    return data.subset(data.full_information()), catalog, spec


def keep_rows(data: TrainingSet, rows: np.ndarray, propensity: np.ndarray | None) -> TrainingSet:
    """``data`` with only the logged calls ``rows`` (bool or index), prompts unchanged."""
    return replace(
        data,
        prompt=data.prompt[rows],
        candidate=data.candidate[rows],
        outcome=data.outcome[rows],
        cost_usd=data.cost_usd[rows],
        input_tokens=data.input_tokens[rows],
        output_tokens=data.output_tokens[rows],
        propensity=propensity,
    )


def logging_probabilities(
    data: TrainingSet, policy: str = "long", to_dearest: float = TO_DEAREST
) -> np.ndarray:
    """The biased logging policy on a full-information set, ``(n_prompts, n_candidates)``.

    Prompts above the median (routing-text length for ``long``, share of candidates
    failing it for ``hard``) go to the candidate with the highest mean cost with
    probability ``to_dearest``, the rest shared uniformly; the others are uniform.
    """
    k = len(data.candidates)
    dearest = int(np.nanargmax(np.nanmean(data.matrix(data.cost_usd), axis=0)))
    if policy == "long":
        score = np.array([len(t) for t in data.texts], dtype=float)
    elif policy == "hard":
        score = 1.0 - np.nanmean(data.matrix(data.outcome), axis=1)
    else:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}.")
    above = score > np.median(score)
    probs = np.full((data.n_prompts, k), 1.0 / k)
    probs[above] = (1.0 - to_dearest) / k
    probs[above, dearest] += to_dearest
    return probs


def biased_choice(
    data: TrainingSet, seed: int, policy: str = "long", to_dearest: float = TO_DEAREST
) -> tuple[TrainingSet, np.ndarray]:
    """One call per prompt drawn by `logging_probabilities`, with exact propensities.

    Returns the bandit `TrainingSet` and the logging probabilities.
    """
    probs = logging_probabilities(data, policy, to_dearest)
    rng = np.random.default_rng(seed)
    chosen = np.array([rng.choice(len(p), p=p) for p in probs])
    index = {(p, c): i for i, (p, c) in enumerate(zip(data.prompt, data.candidate, strict=True))}
    rows = np.array([index[(i, c)] for i, c in enumerate(chosen)])
    return keep_rows(data, rows, probs[np.arange(data.n_prompts), chosen]), probs


def doubly_robust_rows(
    bandit: TrainingSet, make, fit_kwargs: dict[str, Any], seed: int, max_weight: float = 20.0
) -> TrainingSet:
    """A full-information-shaped `TrainingSet` of doubly robust targets.

    ``q`` is predicted for each prompt by ``make()`` fit naively on the other
    folds' rows; a candidate's target on a prompt is ``q`` plus, where it was the
    logged one, the residual ``y - q`` times the clipped inverse propensity; soft
    labels must lie in [0, 1], so the target is clipped there (a bias of its own).
    """
    k = len(bandit.candidates)
    folds = np.random.default_rng(seed).permutation(bandit.n_prompts) % DR_FOLDS
    q = np.zeros((bandit.n_prompts, k))
    rows = bandit.labelled
    for f in range(DR_FOLDS):
        fit = rows & (folds[bandit.prompt] != f)
        learner = make().fit(
            bandit.features[bandit.prompt[fit]],
            bandit.outcome[fit],
            candidate=bandit.candidate[fit],
            n_candidates=k,
            usage={unit: values[fit] for unit, values in units(bandit).items()},
            **fit_kwargs,
        )
        q[folds == f] = learner.predict_proba(bandit.features[folds == f])
    target = q.copy()
    i, c = bandit.prompt[rows], bandit.candidate[rows]
    w = np.minimum(1.0 / bandit.propensity[rows], max_weight)
    target[i, c] += w * (bandit.outcome[rows] - q[i, c])
    target = np.clip(target, 0.0, 1.0)
    n = bandit.n_prompts
    nan = np.full(n * k, np.nan)
    return replace(
        bandit,
        prompt=np.repeat(np.arange(n), k),
        candidate=np.tile(np.arange(k), n),
        outcome=target.reshape(-1),
        cost_usd=nan,
        input_tokens=nan,
        output_tokens=nan,
        propensity=nan,
    )


def run_split(
    data: TrainingSet, catalog: PriceCatalog, spec: FeatureSpec, seed: int, policy: str
) -> dict[str, Any]:
    """Every learner x variant's bias and test area on one split."""
    in_train = np.array([in_train_split(p, TRAIN_FRACTION, seed) for p in data.prompt_ids])
    full, test = data.subset(in_train), data.subset(~in_train)
    bandit, _ = biased_choice(full, seed, policy)
    k = len(data.candidates)
    prices = {c: catalog.get(c) for c in data.candidates}
    families = {c: model_family(c) for c in data.candidates}
    fit_params = {"candidate_info": CandidateInfo.from_prices(data.candidates, families, prices)}
    log = FullInfoLog(
        prompt_ids=test.prompt_ids,
        candidates=test.candidates,
        outcome=test.matrix(test.outcome),
        cost_usd=test.matrix(test.cost_usd),
    )
    truth = np.nanmean(log.outcome, axis=0)
    estimate = estimate_logging_policy(bandit, seed=seed)
    weights = {
        "naive": None,
        "ips-logged": importance_weights(bandit, bandit.propensity).weights,
        "ips-estimated": importance_weights(bandit, estimate.propensity).weights,
        "full": None,
    }
    costs = {}
    for source in ("bandit", "full"):
        train = bandit if source == "bandit" else full
        components = cost_components(train, prices)
        costs[source] = (
            LogLinearCostModel()
            .fit(
                train.features[train.prompt],
                units(train),
                components=components,
                candidate=train.candidate,
            )
            .predict_cost(test.features, k)
        )
    results: dict[str, Any] = {}
    for label, name, params in learners_for_spec(LEARNERS, spec):
        results[label] = {}
        for variant in VARIANTS:
            train = full if variant == "full" else bandit
            if variant == "dr-logged":
                train = doubly_robust_rows(
                    bandit, lambda n=name, p=params: make_learner(n, **p), fit_params, seed
                )
            rows = train.labelled
            w = weights.get(variant)
            learner = make_learner(name, **params).fit(
                train.features[train.prompt[rows]],
                train.outcome[rows],
                candidate=train.candidate[rows],
                n_candidates=k,
                usage={unit: values[rows] for unit, values in units(train).items()},
                sample_weight=None if w is None else w[rows],
                **fit_params,
            )
            p = learner.predict_proba(test.features)
            cost = costs["full" if variant == "full" else "bandit"]
            summary = route_summary(log, p, cost)
            results[label][variant] = {
                "signed_error": (p.mean(axis=0) - truth).tolist(),
                "error": float(np.abs(p.mean(axis=0) - truth).mean()),
                "area": summary.area,
            }
    return {
        "seed": seed,
        "n_train_prompts": full.n_prompts,
        "n_test_prompts": test.n_prompts,
        "propensity_calibration": estimate.calibration,
        "propensity_mae": float(
            np.abs(estimate.propensity - np.clip(bandit.propensity, 0.01, 1)).mean()
        ),
        "area_single_models": route_summary(log, log.outcome, log.cost_usd).area_single_models,
        "learners": results,
    }


def summarize(splits: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard error over the splits of each learner x variant figure."""
    out: dict[str, Any] = {}
    for label, _, _ in LEARNERS:
        out[label] = {}
        for variant in VARIANTS:
            entry = {}
            for key in ("error", "area"):
                values = np.array([s["learners"][label][variant][key] for s in splits])
                se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
                entry[key] = [float(values.mean()), float(se)]
            signed = np.array([s["learners"][label][variant]["signed_error"] for s in splits])
            entry["bias"] = float(np.abs(signed.mean(axis=0)).mean())
            out[label][variant] = entry
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datasets",
        default="swebench,routeprofile",
        help="comma-separated datasets among swebench, routeprofile (default: both)",
    )
    parser.add_argument(
        "--seeds", type=int, default=3, help="repeats (split and logging draw), default 3"
    )
    parser.add_argument(
        "--policy",
        choices=POLICIES,
        default="long",
        help="what sends a prompt to the dearest candidate 70%% of the time: long "
        "(longer than the median, default) or hard (failed by more candidates than "
        "the median prompt)",
    )
    parser.add_argument(
        "--encoder",
        default="static",
        help="encoder of the features: static (fast, default) or minilm",
    )
    parser.add_argument(
        "--out",
        default=str(ROOT / "build" / "benchmarks" / "bandit.json"),
        help="where the JSON results go (default: build/benchmarks/bandit.json)",
    )
    args = parser.parse_args(argv)
    results = {}
    for name in args.datasets.split(","):
        start = time.time()
        data, catalog, spec = load(name, args.encoder)
        say(f"{name}: {data.n_prompts} prompts x {len(data.candidates)} candidates")
        splits = []
        for seed in range(args.seeds):
            splits.append(run_split(data, catalog, spec, seed, args.policy))
            say(f"  seed {seed} done ({time.time() - start:.0f}s)")
        results[name] = {"splits": splits, "summary": summarize(splits)}
        print(
            f"\n{name}, policy {args.policy}, {args.seeds} seeds: error = mean |predicted - "
            "true| success rate per seed, bias = the same of the seeds' mean difference, "
            "test area (mean +- s.e.)"
        )
        print(f"{'learner':16s}" + "".join(f"{v:>34s}" for v in VARIANTS))
        for label, row in results[name]["summary"].items():
            cells = "".join(
                f"  {row[v]['error'][0]:.3f} {row[v]['bias']:.3f} "
                f"{row[v]['area'][0]:.3f}+-{row[v]['area'][1]:.3f}"
                for v in VARIANTS
            )
            print(f"{label:16s}{cells}")
        cal = [s["propensity_calibration"] for s in splits]
        print(
            "estimated propensities: log-loss "
            f"{np.mean([c['log_loss'] for c in cal]):.3f} vs marginal "
            f"{np.mean([c['log_loss_marginal'] for c in cal]):.3f}, ECE "
            f"{np.mean([c['ece'] for c in cal]):.3f}, MAE vs true "
            f"{np.mean([s['propensity_mae'] for s in splits]):.3f}"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
