"""Does the selected router beat the baselines, beyond split noise?

    .venv/bin/python benchmarks/learners.py [--datasets swebench,alpacaeval] [--splits 5]

One held-out split of a few hundred prompts cannot tell learners apart: on the
shipped data their test areas differ by less than the split-to-split spread. This
benchmark repeats the protocol of ``outcome-router train`` + ``evaluate`` over
several seeded grouped splits, in process and on one featurization per dataset:

1. split the prompts 70/30 by hashed ``prompt_id`` (`training.split.in_train_split`,
   seed = split number);
2. cross-validate every default learner on the training side
   (`training.selection.cross_validate`, the same call ``train`` makes) and note the
   one it selects;
3. for every learner: calibrate on its out-of-fold predictions
   (`training.calibration.fit_calibration`), refit on the whole training side and
   score the test prompts, exactly as a one-learner ``train --learner`` bundle would;
4. route the test prompts through the served policy over the value sweep
   (`training.selection.route_summary`) and record the area, savings at parity and
   at 95%, and the quality at a quarter of the best single model's cost.

It prints, per dataset, every learner's mean and standard error over the splits, the
selected router's, and the paired difference between the selected router and the
best of kNN, MLP and logistic regression on each split (the issue's target), with
how many splits it won. Results go to ``build/benchmarks/learners.json``.

The datasets are those of ``benchmarks/quality.py`` (`benchmarks.datasets`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on sys.path, and a sibling benchmark module
# (benchmarks/features.py) would shadow the project's `features` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from benchmarks.datasets import DATASETS  # noqa: E402
from features.call_log import read_call_logs  # noqa: E402
from features.encoder_export import ensure_encoder  # noqa: E402
from features.featurizer import Featurizer  # noqa: E402
from features.prices import PriceCatalog  # noqa: E402
from features.spec import FeatureSpec  # noqa: E402
from serving.calibration import apply_calibration  # noqa: E402
from training.calibration import fit_calibration  # noqa: E402
from training.cost_model import LogLinearCostModel  # noqa: E402
from training.dataset import TrainingSet, build_training_set  # noqa: E402
from training.evaluation import FullInfoLog  # noqa: E402
from training.learners import CandidateInfo, make_learner  # noqa: E402
from training.learners._base import candidate_means  # noqa: E402
from training.selection import LearnerConfig, cross_validate, route_summary, units  # noqa: E402
from training.split import in_train_split  # noqa: E402
from training.train import (  # noqa: E402
    DEFAULT_LEARNERS,
    cost_components,
    learners_for_spec,
    model_family,
)

TRAIN_FRACTION = 0.7
#: The issue's baselines: RouterBench's kNN and MLP routers and logistic regression.
BASELINES = ("knn", "mlp", "logistic")
METRICS = ("area", "savings_at_parity", "savings_at_95", "quality_at_quarter_cost")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def training_set(name: str, quick: bool, encoder: str) -> tuple[TrainingSet, PriceCatalog]:
    """The dataset's call log, featurized once through the exported ``encoder``."""
    catalog = PriceCatalog.load()
    frame = DATASETS[name](quick, 0)
    folder = ROOT / "build" / "benchmarks" / "learners"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}{'-quick' if quick else ''}.parquet"
    frame.to_parquet(path, index=False)
    read = read_call_logs([str(path)], prices=catalog, quarantine_path=path.with_suffix(".q.jsonl"))
    spec = FeatureSpec.for_encoder(encoder)
    featurizer = Featurizer(spec, ensure_encoder(kind=encoder), workers=2)
    return build_training_set(read.frame, featurizer), catalog


def run_split(
    data: TrainingSet,
    catalog: PriceCatalog,
    configs: list[LearnerConfig],
    split: int,
    n_folds: int,
) -> dict[str, Any]:
    """Every learner's test metrics on one split, and the label selection chose."""
    in_train = np.array([in_train_split(p, TRAIN_FRACTION, split) for p in data.prompt_ids])
    train, test = data.subset(in_train), data.subset(~in_train)
    test = test.subset(test.full_information())
    prices = {c: catalog.get(c) for c in data.candidates}
    components = cost_components(train, prices)
    families = {c: model_family(c) for c in data.candidates}
    fit_params = {"candidate_info": CandidateInfo.from_prices(data.candidates, families, prices)}
    cv = cross_validate(
        train, configs, components, n_folds=n_folds, seed=split, fit_params=fit_params
    )
    k = len(data.candidates)
    cost_model = LogLinearCostModel().fit(
        train.features[train.prompt], units(train), components=components, candidate=train.candidate
    )
    cost = cost_model.predict_cost(test.features, k)
    log = FullInfoLog(
        prompt_ids=test.prompt_ids,
        candidates=test.candidates,
        outcome=test.matrix(test.outcome),
        cost_usd=test.matrix(test.cost_usd),
    )
    rows = train.labelled
    results: dict[str, dict[str, Any]] = {}
    calibrated: dict[str, np.ndarray] = {}
    for label, name, params in configs:
        calibration, _ = fit_calibration(train, cv.p_oof[label], cv.folds)
        learner = make_learner(name, **params).fit(
            train.features[train.prompt[rows]],
            train.outcome[rows],
            candidate=train.candidate[rows],
            n_candidates=k,
            usage={unit: values[rows] for unit, values in units(train).items()},
            **fit_params,
        )
        p = apply_calibration(learner.predict_proba(test.features), calibration)
        calibrated[label] = p
        summary = route_summary(log, p, cost).to_dict()
        results[label] = {key: summary[key] for key in METRICS}
        results[label]["cv_area"] = cv.scores[label].get("area")
        results[label]["cv_log_loss"] = cv.scores[label]["log_loss"]
    for label, members in ensembles(cv).items():
        p = np.mean([calibrated[m] for m in members], axis=0)
        summary = route_summary(log, p, cost).to_dict()
        results[label] = {key: summary[key] for key in METRICS}
        results[label]["members"] = members
    # No prompt signal at all: each candidate's base rate, with the same cost model.
    rates = candidate_means(train.outcome[rows], train.candidate[rows], k)
    summary = route_summary(log, np.tile(rates, (test.n_prompts, 1)), cost).to_dict()
    base_rates = {key: summary[key] for key in METRICS}
    summary = route_summary(log, log.outcome, log.cost_usd).to_dict()
    return {
        "split": split,
        "n_test_prompts": test.n_prompts,
        "chosen": cv.chosen,
        "learners": results,
        "base_rates": base_rates,
        "area_single_models": summary["area_single_models"],
        "best_single": summary["best_single"],
    }


def ensembles(cv) -> dict[str, list[str]]:
    """Averaging candidates: every learner, and the three best by cross-validated area."""
    by_area = sorted(cv.scores, key=lambda lb: -(cv.scores[lb].get("area") or 0.0))
    return {"mean-all": list(cv.scores), "mean-top3": by_area[:3]}


def cv_test_rank_correlation(split: dict[str, Any]) -> float:
    """Spearman correlation, across the grid's settings, of cross-validated and test
    area: how much the selection can know. Near 0, it picks at random."""
    from scipy.stats import spearmanr

    learners = [v for lb, v in split["learners"].items() if "cv_area" in v]
    return float(spearmanr([v["cv_area"] for v in learners], [v["area"] for v in learners])[0])


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error (0 for a single value)."""
    values = np.asarray(values, dtype=float)
    se = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
    return float(values.mean()), se


def summarize_dataset(splits: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-learner means, the selected router's, and its paired gain over the baselines."""
    labels = [lb for lb in splits[0]["learners"] if not lb.startswith("mean-")]
    ensemble_labels = [lb for lb in splits[0]["learners"] if lb.startswith("mean-")]

    def rows_of(pick) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for metric in METRICS:
            values = [pick(s).get(metric) for s in splits]
            reached = [v for v in values if v is not None]
            out[metric] = mean_se([v if v is not None else 0.0 for v in values])
            out[f"{metric}_reached"] = len(reached)
        return out

    table = {
        label: rows_of(lambda s, lb=label: s["learners"][lb]) for label in labels + ensemble_labels
    }
    table["selected"] = rows_of(lambda s: s["learners"][s["chosen"]])
    baseline_labels = [lb for lb in labels if lb.split("-")[0] in BASELINES]
    gains = [
        s["learners"][s["chosen"]]["area"]
        - max(s["learners"][lb]["area"] for lb in baseline_labels)
        for s in splits
    ]
    return {
        "table": table,
        "chosen": [s["chosen"] for s in splits],
        "area_single_models": mean_se([s["area_single_models"] for s in splits]),
        "area_base_rates": mean_se([s["base_rates"]["area"] for s in splits]),
        "cv_test_rank_correlation": mean_se([cv_test_rank_correlation(s) for s in splits]),
        "gain_over_best_baseline": mean_se(gains),
        "wins_over_best_baseline": int(sum(g > 0 for g in gains)),
        "baselines": baseline_labels,
        "n_splits": len(splits),
    }


def print_dataset(name: str, result: dict[str, Any]) -> None:
    n = result["n_splits"]
    print(f"\n## {name}: {n} grouped 70/30 splits (mean ± standard error)\n")
    print(f"{'learner':20} {'area':>15} {'save@parity':>22} {'save@95%':>16} {'q@25%cost':>16}")
    for label, row in result["table"].items():
        cells = [f"{row['area'][0]:.4f} ± {row['area'][1]:.4f}"]
        for metric in METRICS[1:]:
            mean, se = row[metric]
            reached = row[f"{metric}_reached"]
            cells.append(f"{mean:+.3f} ± {se:.3f} ({reached}/{n})")
        print(f"{label:20} {cells[0]:>15} {cells[1]:>22} {cells[2]:>16} {cells[3]:>16}")
    singles, se = result["area_single_models"]
    print(f"{'single models':20} {singles:.4f} ± {se:.4f}")
    rates, se = result["area_base_rates"]
    print(f"{'base rates + cost':20} {rates:.4f} ± {se:.4f}  (no prompt signal in p_success)")
    rho, se = result["cv_test_rank_correlation"]
    print(f"rank correlation of cross-validated and test area over the grid: {rho:+.2f} ± {se:.2f}")
    gain, gse = result["gain_over_best_baseline"]
    print(
        f"\nselected: {', '.join(result['chosen'])}\n"
        f"selected - best of {', '.join(result['baselines'])} (area, paired per split): "
        f"{gain:+.4f} ± {gse:.4f}; won {result['wins_over_best_baseline']}/{n} splits"
    )
    print("(a metric not reached on a split, e.g. parity, counts as 0 in the mean)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="swebench,alpacaeval", help="comma-separated")
    parser.add_argument("--splits", type=int, default=5, help="seeded grouped splits")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    parser.add_argument("--quick", action="store_true", help="the smaller datasets of --quick")
    parser.add_argument(
        "--encoder", default="minilm", choices=("minilm", "static"), help="the encoder tier"
    )
    parser.add_argument("--out", default=str(ROOT / "build" / "benchmarks" / "learners.json"))
    args = parser.parse_args(argv)

    results: dict[str, Any] = {}
    for name in args.datasets.split(","):
        start = time.perf_counter()
        data, catalog = training_set(name, args.quick, args.encoder)
        splits = []
        for split in range(args.splits):
            say(f"[{name}] split {split + 1}/{args.splits}")
            learners = learners_for_spec(DEFAULT_LEARNERS, FeatureSpec.for_encoder(args.encoder))
            splits.append(run_split(data, catalog, learners, split, args.folds))
        results[name] = {
            **summarize_dataset(splits),
            "splits": splits,
            "seconds": round(time.perf_counter() - start, 1),
        }
        print_dataset(f"{name} ({args.encoder} encoder)", results[name])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2, default=float))
    print(f"\nresults: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
