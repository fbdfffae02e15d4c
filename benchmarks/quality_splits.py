"""Router quality out of sample, on repeated grouped splits (issue 12).

    .venv/bin/python benchmarks/quality_splits.py [--datasets routeprofile,alpacaeval,swebench]
        [--splits 5] [--encoder static] [--quick]

One 70/30 split of a few hundred prompts cannot tell a router from logistic
regression, nor say whether the ``--target parity`` interval is honest: the
split-to-split spread is as large as the differences. This benchmark runs the steps
of ``outcome-router train`` (`training.train`: the same functions, in the same order)
on several seeded splits, in process, on one featurization per dataset:

1. split the prompts 70/30 by hashed ``prompt_id`` (`training.split.in_train_split`,
   seed = split number: what ``outcome-router split --seed N`` writes);
2. cross-validate the default learner grid on the training side, grouped by prompt
   (`training.selection.cross_validate`), calibrate the chosen setting on its
   out-of-fold predictions, fit the default policy for ``--target parity``
   (`training.train.default_policy`: the manifest's ``policy.target_fit``), refit on
   the whole training side, fit the cost model;
3. do the same for logistic regression alone (``train --learner logistic``: its two
   grid settings, the better by cross-validated area);
4. score the test prompts through the served policy (`serving.policy.choose`):
   area, savings at parity, quality at a quarter of the best single model's cost,
   for both routers (paired difference of areas per split); the quality and cost of
   the bundle's default decision (``value_usd`` of the target fit), its gap to the
   single model the target named best, and whether the target fit's 95% intervals
   (``ci95.quality`` and ``ci95.quality_gap``) contain them;
5. the cost model's error per candidate on the test prompts (median and mean
   absolute log ratio of predicted to logged cost) and what a perfect cost
   prediction would change: the area with the logged per-prompt cost in the
   decision instead of the predicted one (same ``p_success``).

Prints mean ± standard error tables per dataset and writes
``build/benchmarks/quality_splits.json``. AlpacaEval is read from ``../shared/data``
and skipped when it is absent. ``--quick`` (the smoke test's size) takes 120 prompts
per dataset and 3 folds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on sys.path, and a sibling benchmark module
# (benchmarks/features.py) would shadow the project's `features` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from benchmarks.datasets import DATASETS, ROUTEPROFILE, SHARED, sample_prompts  # noqa: E402
from features.call_log import read_call_logs  # noqa: E402
from features.encoder_export import ensure_encoder  # noqa: E402
from features.featurizer import Featurizer  # noqa: E402
from features.prices import PriceCatalog  # noqa: E402
from features.spec import FeatureSpec  # noqa: E402
from serving.calibration import apply_calibration  # noqa: E402
from training.calibration import fit_calibration  # noqa: E402
from training.cost_model import LogLinearCostModel  # noqa: E402
from training.dataset import TrainingSet, build_training_set, with_request_context  # noqa: E402
from training.evaluation import FullInfoLog, router_choice  # noqa: E402
from training.learners import CandidateInfo, make_learner  # noqa: E402
from training.policy_target import PolicyTarget, fit_policy_target  # noqa: E402
from training.selection import (  # noqa: E402
    CrossValidation,
    LearnerConfig,
    cross_validate,
    route_summary,
    units,
)
from training.split import in_train_split  # noqa: E402
from training.train import (  # noqa: E402
    DEFAULT_LEARNERS,
    cost_components,
    default_policy,
    learners_for_spec,
    model_family,
)

TRAIN_FRACTION = 0.7
METRICS = ("area", "savings_at_parity", "quality_at_quarter_cost")
#: Prompts per dataset with --quick.
QUICK_PROMPTS = 120


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def routeprofile_calls(quick: bool, seed: int) -> pd.DataFrame:
    """RouteProfile (shipped in data/routeprofile, MIT): already a call log."""
    frame = pd.read_json(ROUTEPROFILE / "calls.jsonl.gz", lines=True)
    return sample_prompts(frame, QUICK_PROMPTS if quick else None, seed)


def alpacaeval_calls(quick: bool, seed: int) -> pd.DataFrame:
    frame = DATASETS["alpacaeval"](quick, seed)
    return sample_prompts(frame, QUICK_PROMPTS if quick else None, seed)


def swebench_calls(quick: bool, seed: int) -> pd.DataFrame:
    frame = DATASETS["swebench"](False, seed)
    return sample_prompts(frame, QUICK_PROMPTS if quick else None, seed)


LOADERS: dict[str, Callable[[bool, int], pd.DataFrame]] = {
    "routeprofile": routeprofile_calls,
    "alpacaeval": alpacaeval_calls,
    "swebench": swebench_calls,
}
#: Price catalogs of datasets whose models the shipped catalog does not know.
PRICES = {"routeprofile": ROUTEPROFILE / "prices.json"}


def available(name: str) -> bool:
    """AlpacaEval lives in ../shared only (CC BY-NC: never shipped)."""
    return name != "alpacaeval" or (SHARED / "alpacaeval").is_dir()


def training_set(
    name: str, quick: bool, encoder: str, out: Path, context: Sequence[str] = ()
) -> tuple[TrainingSet, Any]:
    """The dataset's call log read as ``train`` reads it, featurized once, with the
    request-context columns ``context`` (``train --context``).

    The frequent task and team values are counted on the whole log, not per split:
    every task of these datasets appears on both sides, so only the names leak.
    """
    prices = PRICES.get(name)
    catalog = PriceCatalog.load(str(prices) if prices else None)
    path = out / f"{name}{'-quick' if quick else ''}.parquet"
    LOADERS[name](quick, 0).to_parquet(path, index=False)
    read = read_call_logs([str(path)], prices=catalog, quarantine_path=path.with_suffix(".q.jsonl"))
    spec = with_request_context(FeatureSpec.for_encoder(encoder), read.frame, context)
    featurizer = Featurizer(spec, ensure_encoder(kind=encoder), workers=2)
    return build_training_set(read.frame, featurizer), catalog


def full_info_log(data: TrainingSet) -> FullInfoLog:
    return FullInfoLog(
        prompt_ids=data.prompt_ids,
        candidates=data.candidates,
        outcome=data.matrix(data.outcome),
        cost_usd=data.matrix(data.cost_usd),
    )


def refit(train: TrainingSet, config: LearnerConfig, fit_params: dict[str, Any]):
    """The chosen setting refit on every training row, as `train` does."""
    _, name, params = config
    rows = train.labelled
    return make_learner(name, **params).fit(
        train.features[train.prompt[rows]],
        train.outcome[rows],
        candidate=train.candidate[rows],
        n_candidates=len(train.candidates),
        usage={unit: values[rows] for unit, values in units(train).items()},
        **fit_params,
    )


def cost_errors(log: FullInfoLog, predicted: np.ndarray) -> dict[str, dict[str, float]]:
    """Per candidate: median and mean ``|log(predicted / logged)|`` and the ratio of
    mean predicted to mean logged cost, on the test prompts."""
    out = {}
    for k, name in enumerate(log.candidates):
        logged, pred = log.cost_usd[:, k], predicted[:, k]
        ok = (logged > 0) & (pred > 0)
        err = np.abs(np.log(pred[ok] / logged[ok]))
        out[name] = {
            "median_abs_log_error": float(np.median(err)) if ok.any() else float("nan"),
            "mean_abs_log_error": float(np.mean(err)) if ok.any() else float("nan"),
            "mean_ratio": float(pred.mean() / logged.mean()) if logged.mean() > 0 else float("nan"),
        }
    return out


def target_check(
    policy: dict[str, Any], log: FullInfoLog, p: np.ndarray, cost: np.ndarray
) -> dict[str, Any]:
    """The bundle's default decision (``policy``: the manifest's, with its reference
    anchor if any) on the test prompts, against its target fit."""
    fit = policy["target_fit"]
    rows = np.arange(log.n_prompts)
    reference = policy.get("reference_model")
    action = router_choice(
        log,
        p,
        cost,
        policy["value_usd"],
        reference=None if reference is None else log.candidates.index(reference),
        reference_margin=policy.get("reference_margin", 0.0),
    )
    quality = float(log.outcome[rows, action].mean())
    test_cost = float(log.cost_usd[rows, action].mean())
    ref = log.candidates.index(fit["best_single"]["name"])
    ref_quality = float(log.outcome[:, ref].mean())
    ref_cost = float(log.cost_usd[:, ref].mean())
    gap = quality - ref_quality
    ci = fit["ci95"]
    return {
        "estimate_quality": fit["quality"],
        "estimate_quality_gap": fit["quality"] - fit["best_single"]["quality"],
        "estimate_savings": fit["savings_vs_best_single"],
        "ci95_quality": ci["quality"],
        "ci95_quality_gap": ci["quality_gap"],
        "test_quality": quality,
        "test_cost_usd": test_cost,
        "test_quality_gap": gap,
        "test_savings": 1 - test_cost / ref_cost if ref_cost > 0 else 0.0,
        "covers_quality": bool(ci["quality"][0] <= quality <= ci["quality"][1]),
        "covers_gap": bool(ci["quality_gap"][0] <= gap <= ci["quality_gap"][1]),
        "reference": fit["best_single"]["name"],
        "reference_margin": policy.get("reference_margin", 0.0),
        "covers_savings": bool(
            ci["savings_vs_best_single"][0]
            <= (1 - test_cost / ref_cost if ref_cost > 0 else 0.0)
            <= ci["savings_vs_best_single"][1]
        ),
    }


def pick_among(cv: CrossValidation, labels: list[str]) -> str:
    """The setting among ``labels`` with the best cross-validated area (as selection)."""
    return max(labels, key=lambda lb: (round(cv.scores[lb]["area"], 6), -cv.scores[lb]["log_loss"]))


def run_split(
    data: TrainingSet,
    catalog: Any,
    configs: list[LearnerConfig],
    split: int,
    n_folds: int,
    arrays: Path | None = None,
) -> dict[str, Any]:
    """The selected router and logistic regression trained on one split, tested.

    With ``arrays``, the predictions and logged truth of both sides are saved there
    (``.npz``) so decision rules can be compared offline without refitting.
    """
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
    log = full_info_log(test)
    cost_model = LogLinearCostModel().fit(
        train.features[train.prompt], units(train), components=components, candidate=train.candidate
    )
    cost = cost_model.predict_cost(test.features, len(data.candidates))
    logistic = pick_among(cv, [c[0] for c in configs if c[1] == "logistic"])
    routers: dict[str, dict[str, Any]] = {}
    saved: dict[str, np.ndarray] = {}
    for role, label in (("selected", cv.chosen), ("logistic", logistic)):
        config = next(c for c in configs if c[0] == label)
        calibration, _ = fit_calibration(train, cv.p_oof[label], cv.folds)
        learner = refit(train, config, fit_params)
        p = apply_calibration(learner.predict_proba(test.features), calibration)
        summary = route_summary(log, p, cost).to_dict()
        entry = {"label": label, **{m: summary[m] for m in METRICS}}
        # What a perfect cost prediction would change, with the same p_success.
        entry["area_logged_cost"] = route_summary(log, p, log.cost_usd).area
        saved[f"p_{role}"] = p
        saved[f"p_oof_{role}"] = apply_calibration(cv.p_oof[label], calibration)
        if role == "selected":
            policy = default_policy(train, cv, calibration, PolicyTarget("parity"), split)
            entry["target"] = target_check(policy, log, p, cost)
            # The target as it was before issue 12: value_usd alone, one halving.
            plain = fit_policy_target(
                PolicyTarget("parity"),
                cv.full_info_log(train),
                apply_calibration(cv.p_oof[label][cv.full_info], calibration),
                cv.cost_oof[cv.full_info],
                seed=split,
                n_halvings=1,
                margins=(0.0,),
            )
            plain_policy = {"value_usd": plain["value_usd"], "target_fit": plain}
            entry["target_plain"] = target_check(plain_policy, log, p, cost)
        routers[role] = entry
    truth = route_summary(log, log.outcome, log.cost_usd).to_dict()
    if arrays is not None:
        train_log = cv.full_info_log(train)
        np.savez(
            arrays,
            cost=cost,
            outcome=log.outcome,
            cost_usd=log.cost_usd,
            cost_oof=cv.cost_oof[cv.full_info],
            outcome_train=train_log.outcome,
            cost_usd_train=train_log.cost_usd,
            full_info_train=cv.full_info,
            **saved,
        )
    return {
        "split": split,
        "n_train_prompts": train.n_prompts,
        "n_test_prompts": test.n_prompts,
        "routers": routers,
        "best_single": truth["best_single"],
        "area_single_models": truth["area_single_models"],
        "cost_errors": cost_errors(log, cost),
    }


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error (0 for a single value)."""
    values = np.asarray(values, dtype=float)
    se = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
    return float(values.mean()), se


def summarize(splits: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over splits, paired wins, interval coverage, cost errors."""
    n = len(splits)

    def metric(role: str, key: str) -> dict[str, Any]:
        values = [s["routers"][role][key] for s in splits]
        return {
            "mean_se": mean_se([0.0 if v is None else v for v in values]),
            "reached": sum(v is not None for v in values),
        }

    table = {
        role: {key: metric(role, key) for key in (*METRICS, "area_logged_cost")}
        for role in ("selected", "logistic")
    }
    diffs = [s["routers"]["selected"]["area"] - s["routers"]["logistic"]["area"] for s in splits]
    return {
        "n_splits": n,
        "table": table,
        "chosen": [s["routers"]["selected"]["label"] for s in splits],
        "area_diff_vs_logistic": mean_se(diffs),
        "wins_vs_logistic": int(sum(d > 0 for d in diffs)),
        "ties_vs_logistic": int(sum(d == 0 for d in diffs)),
        "target": target_summary([s["routers"]["selected"]["target"] for s in splits]),
        "target_plain": target_summary([s["routers"]["selected"]["target_plain"] for s in splits]),
        "best_single_quality": mean_se([s["best_single"]["quality"] for s in splits]),
        "area_single_models": mean_se([s["area_single_models"] for s in splits]),
        "cost_errors": cost_summary(splits),
    }


def target_summary(targets: list[dict[str, Any]]) -> dict[str, Any]:
    """Estimate against test, and interval coverage, over splits."""
    target = {
        key: mean_se([t[key] for t in targets])
        for key in (
            "estimate_quality",
            "test_quality",
            "estimate_quality_gap",
            "test_quality_gap",
            "estimate_savings",
            "test_savings",
        )
    }
    target["covers_quality"] = sum(t["covers_quality"] for t in targets)
    target["covers_gap"] = sum(t["covers_gap"] for t in targets)
    target["covers_savings"] = sum(t.get("covers_savings", False) for t in targets)
    target["margins"] = [t.get("reference_margin", 0.0) for t in targets]
    target["at_or_above_reference"] = sum(t["test_quality_gap"] >= -1e-9 for t in targets)
    return target


def cost_summary(splits: list[dict[str, Any]]) -> dict[str, Any]:
    """The cost model's error per candidate over splits."""
    candidates = list(splits[0]["cost_errors"])
    return {
        c: {
            key: mean_se([s["cost_errors"][c][key] for s in splits])
            for key in ("median_abs_log_error", "mean_ratio")
        }
        for c in candidates
    }


def _ms(pair: Sequence[float], spec: str = ".4f") -> str:
    return f"{format(pair[0], spec)} ± {format(pair[1], spec)}"


def markdown(name: str, result: dict[str, Any]) -> str:
    """One dataset's tables in Markdown."""
    n = result["n_splits"]
    lines = [
        f"### {name}: {n} grouped 70/30 splits (mean ± s.e.)",
        "",
        "| router | area | savings at parity (splits reached) | quality at 25% cost "
        "| area with logged cost |",
        "|---|---|---|---|---|",
    ]
    for role, row in result["table"].items():
        save = row["savings_at_parity"]
        q25 = row["quality_at_quarter_cost"]
        lines.append(
            f"| {role} | {_ms(row['area']['mean_se'])} | {_ms(save['mean_se'], '.3f')} "
            f"({save['reached']}/{n}) | {_ms(q25['mean_se'], '.3f')} ({q25['reached']}/{n}) "
            f"| {_ms(row['area_logged_cost']['mean_se'])} |"
        )
    single = result["area_single_models"]
    lines.append(f"| single models | {_ms(single)} | | | |")
    diff = result["area_diff_vs_logistic"]
    lines += [
        "",
        f"Selected: {', '.join(result['chosen'])}. Selected - logistic (area, paired): "
        f"{_ms(diff)}; won {result['wins_vs_logistic']}/{n} "
        f"(tied {result['ties_vs_logistic']}).",
        "",
        "| `--target parity` | quality est. / test | gap to reference est. / test "
        "| savings est. / test | 95% CI covers quality, gap, savings | test >= reference |",
        "|---|---|---|---|---|---|",
    ]
    for label, key in (("value_usd, 1 halving (before)", "target_plain"), ("default", "target")):
        t = result[key]
        lines.append(
            f"| {label} | {_ms(t['estimate_quality'], '.3f')} / {_ms(t['test_quality'], '.3f')} "
            f"| {_ms(t['estimate_quality_gap'], '+.3f')} / {_ms(t['test_quality_gap'], '+.3f')} "
            f"| {_ms(t['estimate_savings'], '+.3f')} / {_ms(t['test_savings'], '+.3f')} "
            f"| {t['covers_quality']}, {t['covers_gap']}, {t['covers_savings']} of {n} "
            f"| {t['at_or_above_reference']}/{n} |"
        )
    margins = ", ".join(f"{m:g}" for m in result["target"]["margins"])
    lines += [
        "",
        f"Reference margins the default chose: {margins}.",
        "",
        "| candidate | cost: median abs log error | mean predicted / mean logged |",
        "|---|---|---|",
    ]
    for c, row in result["cost_errors"].items():
        lines.append(
            f"| {c} | {_ms(row['median_abs_log_error'], '.3f')} | {_ms(row['mean_ratio'], '.3f')} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--datasets", default="routeprofile,alpacaeval,swebench", help="comma-separated"
    )
    parser.add_argument("--splits", type=int, default=5, help="seeded grouped splits")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_PROMPTS} prompts per dataset, 3 folds"
    )
    parser.add_argument("--encoder", default="static", choices=("minilm", "static"))
    parser.add_argument(
        "--context",
        default="task,team,depth",
        help="request context in the features, as train --context ('' for none)",
    )
    parser.add_argument("--out", default=str(ROOT / "build" / "benchmarks"), help="build folder")
    args = parser.parse_args(argv)
    context = tuple(k for k in args.context.split(",") if k)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    folds = 3 if args.quick else args.folds
    spec = FeatureSpec.for_encoder(args.encoder)
    configs = learners_for_spec(DEFAULT_LEARNERS, spec)
    results: dict[str, Any] = {}
    docs = []
    suffix = "-quick" if args.quick else ""
    for name in args.datasets.split(","):
        if name not in LOADERS:
            parser.error(f"unknown dataset {name!r}; choose from {sorted(LOADERS)}")
        if not available(name):
            say(f"[{name}] skipped: {SHARED / 'alpacaeval'} is absent")
            continue
        start = time.perf_counter()
        data, catalog = training_set(name, args.quick, args.encoder, out, context)
        splits = []
        for split in range(args.splits):
            say(f"[{name}] split {split + 1}/{args.splits}")
            arrays = out / "arrays" / f"{name}{suffix}-{split}.npz"
            arrays.parent.mkdir(exist_ok=True)
            splits.append(run_split(data, catalog, configs, split, folds, arrays))
        results[name] = {
            **summarize(splits),
            "splits": splits,
            "seconds": round(time.perf_counter() - start, 1),
        }
        doc = markdown(f"{name} ({args.encoder} encoder)", results[name])
        docs.append(doc)
        print(doc, flush=True)
    (out / f"quality_splits{suffix}.json").write_text(json.dumps(results, indent=2, default=float))
    (out / f"quality_splits{suffix}.md").write_text("\n".join(docs))
    print(f"results: {out}/quality_splits{suffix}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
