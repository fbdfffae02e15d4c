"""Do the off-policy estimates of ``evaluate`` find the truth?

    .venv/bin/python benchmarks/ope.py [--datasets routeprofile,swebench,alpacaeval]
        [--seeds 30] [--n-bootstrap 500] [--quick] [--estimated-propensity]

For each full-information benchmark (every model answered every prompt):

1. split the prompts in half (hashed ``prompt_id``, `training.split.in_train_split`),
   train a bundle on one half (``outcome-router train``'s own function, no MLflow)
   and keep the other half as the evaluation prompts;
2. the truth: the bundle's served policy at its default knobs, scored on the full
   table (`training.evaluation.curves.router_point`);
3. for each logging policy and seed: draw one model per prompt from the logging
   policy's distribution, keep only that call (outcome, cost, propensity) and run DM,
   IPS, SNIPS and DR (`training.off_policy.OffPolicyEvaluation`, as ``evaluate``
   does, with the bundle's own predictions as the regression) with bootstrap 95%
   intervals;
4. per dataset x logging policy x estimator, for quality and for cost: bias, RMSE,
   the share of seeds whose interval covers the truth, the mean interval width, and
   the mean effective sample size.

Logging policies (``LOGGING_POLICIES``), all `training.simulation` policies:
``uniform`` (`UniformPolicy`); ``cheap-softmax`` (`CheapFirstPolicy`, T = 1.5: models
drawn with probability proportional to ``mean cost^(-1/T)``, cheap models mostly);
``long-to-strongest`` (`BiasedHumanPolicy` without team habits: prompts longer than
the median go to the best single model with probability 0.7, the rest uniformly);
and ``epsilon-bundle`` (the bundle itself exploring with epsilon = 0.2, as `/route`
logs with ``OUTCOME_ROUTER_EXPLORE=epsilon``; its distribution is computed once and
replayed with `PrecomputedPolicy`). Each seed's log is drawn by
`training.simulation.simulate` from the held-out half's full-information table, the
same sampler ``outcome-router simulate`` uses.

With ``--estimated-propensity`` the logged propensities are dropped and the logging
policy is estimated as ``evaluate`` does on logs without them.

Results go to ``build/benchmarks/ope.json`` and a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on sys.path, and a sibling benchmark module
# (benchmarks/features.py) would shadow the project's `features` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from benchmarks.datasets import DATASETS, ROUTEPROFILE, sample_prompts  # noqa: E402
from features.call_log import read_call_logs  # noqa: E402
from serving.policy import Exploration, action_distribution  # noqa: E402
from training.evaluation import FullInfoLog  # noqa: E402
from training.evaluation.off_policy import routing_texts  # noqa: E402
from training.evaluation.served import ServedPolicy  # noqa: E402
from training.off_policy import ESTIMATORS, BanditFeedback, OffPolicyEvaluation  # noqa: E402
from training.propensity import fit_logging_policy  # noqa: E402
from training.simulation import (  # noqa: E402
    BiasedHumanPolicy,
    CheapFirstPolicy,
    LoggingPolicy,
    PrecomputedPolicy,
    UniformPolicy,
    read_full_information,
    simulate,
)

LOGGING_POLICIES = ("uniform", "cheap-softmax", "long-to-strongest", "epsilon-bundle")
QUICK_PROMPTS = 200
OUT = ROOT / "build" / "benchmarks" / "ope.json"


def routeprofile_calls(quick: bool, seed: int) -> pd.DataFrame:
    """RouteProfile (shipped in data/routeprofile): already a call log, cost_usd included."""
    frame = read_call_logs([ROUTEPROFILE / "calls.jsonl.gz"]).frame
    return sample_prompts(frame, QUICK_PROMPTS if quick else None, seed)


LOADERS = {"routeprofile": routeprofile_calls, **DATASETS}


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _train_bundle(frame: pd.DataFrame, folder: Path, seed: int, quick: bool):
    """A bundle trained on the training half; returns it with the evaluation half."""
    from training.split import in_train_split
    from training.train import TrainConfig, train

    ids = frame["prompt_id"].astype(str)
    train_mask = ids.map(lambda pid: in_train_split(pid, 0.5, seed)).to_numpy(dtype=bool)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train.parquet"
    frame[train_mask].to_parquet(path, index=False)
    config = TrainConfig(
        logs=[str(path)], out=str(folder / "bundle"), track=False, seed=seed, n_folds=3
    )
    if quick:  # one learner, no selection: the point is the estimators, not the router
        config.learners = [("knn", "knn", {})]
    result = train(config)
    return result.bundle, frame[~train_mask]


def _logging_policies(target_explore: np.ndarray) -> dict[str, LoggingPolicy]:
    """Each logging policy of `LOGGING_POLICIES` (see the module docstring)."""
    return {
        "uniform": UniformPolicy(),
        "cheap-softmax": CheapFirstPolicy(temperature=1.5),
        "long-to-strongest": BiasedHumanPolicy(long_share=0.7, habit_share=0.0, large="strongest"),
        "epsilon-bundle": PrecomputedPolicy(
            dist=target_explore, description={"name": "epsilon-bundle", "epsilon": 0.2}
        ),
    }


def run_dataset(
    name: str,
    *,
    seeds: int,
    n_bootstrap: int,
    quick: bool,
    estimated_propensity: bool,
    workdir: Path,
) -> dict[str, Any]:
    """Every logging policy x seed on one dataset; the summary rows."""
    frame = LOADERS[name](quick, 0)
    _say(f"[{name}] training a bundle on half of {frame['prompt_id'].nunique()} prompts")
    bundle, held_out = _train_bundle(frame, workdir / name, seed=0, quick=quick)
    served = ServedPolicy(bundle)
    log, _ = FullInfoLog.from_frame(held_out, served.candidates)
    texts = routing_texts(held_out, list(log.prompt_ids), bundle.feature_spec.text_source)
    _say(f"[{name}] featurizing {log.n_prompts} evaluation prompts")
    features = served.featurize(texts)
    p, c = served.score(features)
    target = action_distribution(p, c, served.params)
    rows = np.arange(log.n_prompts)
    chosen = target.argmax(axis=1)
    truth = {
        "quality": float(log.outcome[rows, chosen].mean()),
        "cost_usd": float(log.cost_usd[rows, chosen].mean()),
    }
    explore = action_distribution(p, c, served.params, Exploration("epsilon", epsilon=0.2))
    table, _ = read_full_information(held_out, candidates=list(served.candidates))
    if tuple(table.prompt_ids) != tuple(log.prompt_ids):
        raise RuntimeError("The simulator's table and the evaluation log order prompts apart.")
    results = []
    for policy, logger in _logging_policies(explore).items():
        t0 = time.time()
        found: dict[tuple[str, str], list[tuple[float, bool, float]]] = {}
        ess = []
        for seed in range(seeds):
            sim = simulate(table, logger, seed=seed)
            action, pscore = sim.action, sim.pscore
            if estimated_propensity:
                pscore = fit_logging_policy(features, action, log.n_candidates).propensity
            fb = BanditFeedback(
                n_rounds=log.n_prompts,
                n_actions=log.n_candidates,
                action=action,
                reward=log.outcome[rows, action],
                cost_usd=log.cost_usd[rows, action],
                pscore=pscore,
                estimated_reward=p,
                estimated_cost_usd=c,
            )
            est = OffPolicyEvaluation(fb, n_bootstrap=n_bootstrap, random_state=seed).estimate(
                target
            )
            ess.append(est.ess)
            for estimator, result in est.estimators.items():
                for quantity in ("quality", "cost_usd"):
                    iv = getattr(result, quantity)
                    found.setdefault((estimator, quantity), []).append(
                        (iv.estimate, iv.covers(truth[quantity]), iv.high - iv.low)
                    )
        for (estimator, quantity), values in found.items():
            estimates = np.array([v[0] for v in values])
            error = estimates - truth[quantity]
            results.append(
                {
                    "dataset": name,
                    "logging": policy,
                    "estimator": estimator,
                    "quantity": quantity,
                    "truth": truth[quantity],
                    "bias": float(np.nanmean(error)),
                    "rmse": float(np.sqrt(np.nanmean(error**2))),
                    "coverage": float(np.mean([v[1] for v in values])),
                    "mean_width": float(np.nanmean([v[2] for v in values])),
                    "mean_ess": float(np.mean(ess)),
                    "seeds": seeds,
                }
            )
        _say(f"[{name}] {policy}: {seeds} seeds in {time.time() - t0:.1f}s")
    return {
        "dataset": name,
        "n_prompts": log.n_prompts,
        "candidates": list(log.candidates),
        "policy": {"value_usd": served.params.value_usd},
        "truth": truth,
        "rows": results,
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    """One line per dataset x logging policy x estimator, quality then cost."""
    lines = [
        "| dataset | logging | ESS | estimator | quality bias | RMSE | coverage | "
        "cost bias | RMSE | coverage |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    keyed = {(r["dataset"], r["logging"], r["estimator"], r["quantity"]): r for r in rows}
    for ds, lp, est, q in keyed:
        if q != "quality":
            continue
        a, b = keyed[ds, lp, est, "quality"], keyed[ds, lp, est, "cost_usd"]
        lines.append(
            f"| {ds} | {lp} | {a['mean_ess']:.0f} | {est} | {a['bias']:+.4f} | {a['rmse']:.4f} "
            f"| {a['coverage']:.0%} | {b['bias']:+.2e} | {b['rmse']:.2e} | {b['coverage']:.0%} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Bias, RMSE and interval coverage of evaluate's off-policy estimators "
        "against the full-information truth."
    )
    parser.add_argument(
        "--datasets",
        default="routeprofile,swebench,alpacaeval",
        help=f"comma-separated, among {sorted(LOADERS)} (default: "
        "routeprofile,swebench,alpacaeval)",
    )
    parser.add_argument("--seeds", type=int, default=30, help="seeds per policy (default: 30)")
    parser.add_argument(
        "--n-bootstrap", type=int, default=500, help="bootstrap resamples (default: 500)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_PROMPTS} prompts per dataset and one learner (default: off)",
    )
    parser.add_argument(
        "--estimated-propensity",
        action="store_true",
        help="drop the logged propensities and estimate the logging policy (default: off)",
    )
    parser.add_argument("--out", default=str(OUT), help=f"results JSON (default: {OUT})")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in LOADERS]
    if unknown:
        parser.error(f"unknown datasets {unknown}; available: {sorted(LOADERS)}")
    report: dict[str, Any] = {
        "seeds": args.seeds,
        "n_bootstrap": args.n_bootstrap,
        "quick": args.quick,
        "estimated_propensity": args.estimated_propensity,
        "estimators": list(ESTIMATORS),
        "logging_policies": list(LOGGING_POLICIES),
        "datasets": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            report["datasets"].append(
                run_dataset(
                    name,
                    seeds=args.seeds,
                    n_bootstrap=args.n_bootstrap,
                    quick=args.quick,
                    estimated_propensity=args.estimated_propensity,
                    workdir=Path(tmp),
                )
            )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown([row for ds in report["datasets"] for row in ds["rows"]]))
    print(f"\nwritten {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
