"""Does correcting for the logging policy help `train` on bandit logs?

    .venv/bin/python benchmarks/bandit.py [--datasets swebench,routeprofile] [--seeds 3]
        [--policies long,hard] [--variants naive,corrected,estimated,full]
        [--learners fast|all]

A gateway log has one call per prompt, and the model was chosen by a biased logging
policy. This benchmark simulates such logs from full-information tables, where the
truth is known, and trains whole bundles on them, exactly as ``outcome-router
train`` builds them (learner selection by cross-validated area, calibration, the
default policy at ``--target parity``):

1. split the prompts 70/30 by hashed ``prompt_id`` (`training.split.in_train_split`,
   seed = repeat number); the test side keeps every candidate's outcome;
2. on the training side simulate a gateway log with `training.simulation.simulate`:
   one call per prompt, its exact propensity, drawn by a logging policy that sends
   prompts above the median to the dearest model 70% of the time, the rest
   uniformly: ``long`` (by length: `BiasedHumanPolicy` without team habits, the
   issue's setting) or ``hard`` (by the share of models failing the prompt:
   `HardPromptPolicy`, people who know the hard tasks; it reads the truth);
3. train a bundle (`training.train.train`, no MLflow) per variant: ``naive``
   (``--correction none``), ``corrected`` (importance weights from the logged
   propensities, `train`'s default), ``estimated`` (the propensities dropped, so
   `train` estimates the logging policy, `training.propensity`) and ``full``
   (every candidate's call on the same training prompts: the ceiling);
4. on the test prompts, against the full table: the bundle's area under the
   cost-quality curve, its savings against the best single model at parity and at
   95% of its quality (`training.selection.route_summary`), and the default
   decision's quality and cost (the bundle's served policy at its manifest's knobs,
   `training.evaluation.served.ServedPolicy`).

``--learners fast`` (default) selects among logistic regression at two strengths and
kNN with 3 folds, so the command finishes in minutes on two cores; ``all`` uses
`training.train.DEFAULT_LEARNERS` with 5 folds, as `train` does by default (about 1
minute per bundle there). Results go to ``build/benchmarks/bandit.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on sys.path, and a sibling benchmark module
# (benchmarks/features.py) would shadow the project's `features` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from benchmarks.datasets import ROUTEPROFILE, swebench_calls  # noqa: E402
from features.call_log import read_call_logs  # noqa: E402
from features.spec import FeatureSpec  # noqa: E402
from serving.bundle import load_bundle  # noqa: E402
from serving.policy import action_distribution  # noqa: E402
from training.evaluation import FullInfoLog  # noqa: E402
from training.evaluation.off_policy import routing_texts  # noqa: E402
from training.evaluation.served import ServedPolicy  # noqa: E402
from training.selection import route_summary  # noqa: E402
from training.simulation import (  # noqa: E402
    BiasedHumanPolicy,
    FullInformationTable,
    HardPromptPolicy,
    LoggingPolicy,
    simulate,
)
from training.split import in_train_split  # noqa: E402
from training.train import DEFAULT_LEARNERS, TrainConfig, train  # noqa: E402

TRAIN_FRACTION = 0.7
#: Probability that a long (or hard) prompt goes to the dearest candidate (the
#: issue's setting).
TO_DEAREST = 0.7
POLICIES = ("long", "hard")
VARIANTS = ("naive", "corrected", "estimated", "full")
#: Learner grids (`--learners`) and their cross-validation folds.
LEARNER_SETS = {
    "fast": (
        [
            ("logistic-C0.0003", "logistic", {"C": 0.0003}),
            ("logistic-C0.003", "logistic", {"C": 0.003}),
            ("knn", "knn", {}),
        ],
        3,
    ),
    "all": (list(DEFAULT_LEARNERS), 5),
}
#: Figures per variant: area, savings, and the default decision on the truth.
FIGURES = (
    "area",
    "savings_at_parity",
    "savings_at_95",
    "default_quality",
    "default_cost_usd",
    "default_quality_gap",
    "default_cost_share",
    "target_quality",
    "target_quality_in_sample",
    "target_error",
    "target_error_in_sample",
    "target_covered",
)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def routeprofile_calls(quick: bool, seed: int) -> pd.DataFrame:
    """RouteProfile (shipped in data/routeprofile, MIT), already a call log."""
    return pd.read_json(ROUTEPROFILE / "calls.jsonl.gz", lines=True)


DATASETS = {"swebench": swebench_calls, "routeprofile": routeprofile_calls}


def load(name: str, folder: Path) -> tuple[pd.DataFrame, FullInformationTable, Path | None]:
    """The dataset's validated calls (complete prompts only) and its truth table."""
    prices = ROUTEPROFILE / "prices.json" if name == "routeprofile" else None
    path = folder / f"{name}.parquet"
    DATASETS[name](False, 0).to_parquet(path, index=False)
    from features.prices import PriceCatalog

    catalog = PriceCatalog.load(prices)
    read = read_call_logs([str(path)], prices=catalog, quarantine_path=folder / f"{name}.q.jsonl")
    table = FullInformationTable.from_frame(read.frame)
    frame = read.frame.assign(prompt_id=read.frame["prompt_id"].astype(str))
    frame = frame[frame["prompt_id"].isin(set(table.prompt_ids))]
    frame = frame[frame["model"].isin(table.candidates) & frame["outcome"].notna()]
    return frame.drop_duplicates(["prompt_id", "model"]), table, prices


def subset(table: FullInformationTable, keep: np.ndarray) -> FullInformationTable:
    """The table's prompts ``keep`` (bool, prompt order)."""
    return FullInformationTable(
        prompt_ids=table.prompt_ids[keep],
        candidates=table.candidates,
        outcome=table.outcome[keep],
        cost_usd=table.cost_usd[keep],
        usage={k: v[keep] for k, v in table.usage.items()},
        prompts=table.prompts[keep].reset_index(drop=True),
    )


def logging_policy(name: str, table: FullInformationTable) -> LoggingPolicy:
    """The simulator's policy behind ``--policies`` (see the module docstring)."""
    if name == "long":
        return BiasedHumanPolicy(long_share=TO_DEAREST, habit_share=0.0, large="expensive")
    if name == "hard":
        return HardPromptPolicy(table.outcome, to_large=TO_DEAREST, large="expensive")
    raise ValueError(f"policy must be one of {POLICIES}, got {name!r}.")


def bandit_log(frame: pd.DataFrame, sim) -> pd.DataFrame:
    """The calls of ``frame`` the simulation chose, one per prompt, with propensity."""
    chosen = pd.DataFrame(
        {
            "prompt_id": sim.prompt_ids,
            "model": np.asarray(sim.candidates)[sim.action],
            "propensity": sim.pscore,
        }
    )
    base = frame.drop(columns=["propensity"], errors="ignore")
    return base.merge(chosen, on=["prompt_id", "model"], how="inner")


def score_bundle(bundle_dir: Path, test: pd.DataFrame) -> dict[str, float | None]:
    """The bundle's curve figures and default decision on the test prompts' truth."""
    served = ServedPolicy(load_bundle(bundle_dir))
    log, _ = FullInfoLog.from_frame(test, served.candidates)
    texts = routing_texts(test, list(log.prompt_ids), served.bundle.feature_spec.text_source)
    p, c = served.score(served.featurize(texts))
    summary = route_summary(log, p, c)
    chosen = action_distribution(p, c, served.params).argmax(axis=1)
    rows = np.arange(log.n_prompts)
    quality = float(log.outcome[rows, chosen].mean())
    cost = float(log.cost_usd[rows, chosen].mean())
    best = summary.best_single
    fit = served.bundle.manifest["policy"].get("target_fit") or {}
    low, high = (fit.get("ci95") or {}).get("quality", [None, None])
    estimate = fit.get("quality")
    in_sample = (fit.get("in_sample") or {}).get("quality")
    return {
        # What --target promised (cross-fitted, and read on the curve of all training
        # calls), against what the default decision then gave on the test prompts.
        "target_quality": estimate,
        "target_quality_in_sample": in_sample,
        "target_error": None if estimate is None else estimate - quality,
        "target_error_in_sample": None if in_sample is None else in_sample - quality,
        "target_covered": None if low is None or high is None else float(low <= quality <= high),
        "area": summary.area,
        "savings_at_parity": summary.savings_at_parity,
        "savings_at_95": summary.savings_at_95,
        "default_quality": quality,
        "default_cost_usd": cost,
        "default_quality_gap": quality - best.quality,
        "default_cost_share": cost / best.cost_usd if best.cost_usd > 0 else None,
        "best_single": best.name,
        "value_usd": served.params.value_usd,
        "default_share_best_single": float(
            np.mean(np.asarray(served.candidates)[chosen] == best.name)
        ),
        "n_candidates_served": len(served.candidates),
    }


def run_split(
    frame: pd.DataFrame,
    table: FullInformationTable,
    prices: Path | None,
    *,
    seed: int,
    policy: str,
    variants: Sequence[str],
    learners: str,
    folder: Path,
) -> dict[str, Any]:
    """Every variant's figures on one split and one simulated log."""
    in_train = np.array([in_train_split(p, TRAIN_FRACTION, seed) for p in table.prompt_ids])
    train_table = subset(table, in_train)
    sim = simulate(train_table, logging_policy(policy, train_table), seed=seed)
    train_ids = set(train_table.prompt_ids)
    full = frame[frame["prompt_id"].isin(train_ids)]
    test = frame[~frame["prompt_id"].isin(train_ids)]
    logged = bandit_log(full, sim)
    logs = {
        "naive": (logged, "none"),
        "corrected": (logged, "ips"),
        "estimated": (logged.drop(columns="propensity"), "ips"),
        "full": (full, "ips"),
    }
    grid, n_folds = LEARNER_SETS[learners]
    out: dict[str, Any] = {"seed": seed, "n_train_prompts": len(train_ids), "variants": {}}
    for variant in variants:
        rows, correction = logs[variant]
        path = folder / f"{policy}-{seed}-{variant}.parquet"
        rows.to_parquet(path, index=False)
        result = train(
            TrainConfig(
                logs=[str(path)],
                out=str(folder / f"bundle-{policy}-{seed}-{variant}"),
                prices=str(prices) if prices else None,
                learners=list(grid),
                n_folds=n_folds,
                seed=seed,
                correction=correction,
                spec=FeatureSpec.for_encoder("static"),
                track=False,
            )
        )
        log_summary = result.bundle.contents.training.log
        figures = score_bundle(Path(result.bundle.path), test)
        figures["log_kind"] = log_summary.get("kind")
        figures["propensity_source"] = log_summary.get("propensity_source")
        figures["chosen_learner"] = result.bundle.contents.training.selection.get("chosen")
        out["variants"][variant] = figures
    return out


def summarize(splits: list[dict[str, Any]], variants: Sequence[str]) -> dict[str, Any]:
    """Mean and standard error over the splits of each figure; None-valued savings (the
    target not reached) are counted, not averaged."""
    out: dict[str, Any] = {}
    for variant in variants:
        entry: dict[str, Any] = {}
        for key in FIGURES:
            values = [s["variants"][variant][key] for s in splits]
            known = np.array([v for v in values if v is not None], dtype=np.float64)
            se = known.std(ddof=1) / np.sqrt(len(known)) if len(known) > 1 else 0.0
            entry[key] = {
                "mean": float(known.mean()) if len(known) else None,
                "se": float(se),
                "n_unreached": len(values) - len(known),
            }
        out[variant] = entry
    return out


def _cell(entry: dict[str, Any], fmt: str) -> str:
    if entry["mean"] is None:
        return "unreached"
    text = format(entry["mean"], fmt) + " +- " + format(entry["se"], fmt.lstrip("+"))
    return text + (f" ({entry['n_unreached']} unreached)" if entry["n_unreached"] else "")


def markdown(results: dict[str, Any]) -> str:
    """One line per dataset x policy x variant."""
    lines = [
        "| data | policy | variant | test area | savings at parity | savings at 95% | "
        "default quality - best model's | default cost / best model's |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for (name, policy), block in results.items():
        for variant, row in block["summary"].items():
            lines.append(
                f"| {name} | {policy} | {variant} | {_cell(row['area'], '.3f')} | "
                f"{_cell(row['savings_at_parity'], '.1%')} | {_cell(row['savings_at_95'], '.1%')} "
                f"| {_cell(row['default_quality_gap'], '+.3f')} | "
                f"{_cell(row['default_cost_share'], '.2f')} |"
            )
    lines += [
        "",
        "Does the --target estimate hold on the test prompts? (estimate - test quality of the "
        "default decision; covered: share of seeds whose 95% interval holds the test quality)",
        "",
        "| data | policy | variant | test quality | estimate (cross-fitted) | error | "
        "in-sample error | covered |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for (name, policy), block in results.items():
        for variant, row in block["summary"].items():
            lines.append(
                f"| {name} | {policy} | {variant} | {_cell(row['default_quality'], '.3f')} | "
                f"{_cell(row['target_quality'], '.3f')} | {_cell(row['target_error'], '+.3f')} | "
                f"{_cell(row['target_error_in_sample'], '+.3f')} | "
                f"{_cell(row['target_covered'], '.2f')} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datasets",
        default="swebench,routeprofile",
        help="comma-separated datasets among swebench, routeprofile (default: both)",
    )
    parser.add_argument(
        "--seeds", type=int, default=3, help="repeats (split and simulated log), default 3"
    )
    parser.add_argument(
        "--policies",
        default="long,hard",
        help="comma-separated logging policies among long, hard (default: both; see the "
        "module docstring)",
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated training variants among {', '.join(VARIANTS)} (default: all)",
    )
    parser.add_argument(
        "--learners",
        choices=sorted(LEARNER_SETS),
        default="fast",
        help="learner grid: fast (logistic x2 + kNN, 3 folds; default) or all "
        "(train's default grid, 5 folds)",
    )
    parser.add_argument(
        "--out",
        default=str(ROOT / "build" / "benchmarks" / "bandit.json"),
        help="where the JSON results go (default: build/benchmarks/bandit.json)",
    )
    args = parser.parse_args(argv)
    policies = [p for p in args.policies.split(",") if p]
    variants = [v for v in args.variants.split(",") if v]
    bad = [p for p in policies if p not in POLICIES] + [v for v in variants if v not in VARIANTS]
    if bad:
        parser.error(f"unknown policies or variants {bad}")
    results: dict[tuple[str, str], Any] = {}
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in args.datasets.split(","):
            frame, table, prices = load(name, folder)
            say(f"{name}: {table.n_prompts} prompts x {table.n_candidates} candidates")
            for policy in policies:
                splits = []
                for seed in range(args.seeds):
                    splits.append(
                        run_split(
                            frame,
                            table,
                            prices,
                            seed=seed,
                            policy=policy,
                            variants=variants,
                            learners=args.learners,
                            folder=folder,
                        )
                    )
                    say(f"  {name} {policy} seed {seed} done ({time.time() - start:.0f}s)")
                results[name, policy] = {
                    "splits": splits,
                    "summary": summarize(splits, variants),
                }
    print(
        f"\n{args.seeds} seeds, learners {args.learners}; mean +- s.e. over seeds, on the test "
        "prompts' full table; savings against the best single model (unreached: the "
        "router's curve never reaches that quality)"
    )
    print(markdown(results))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "seeds": args.seeds,
        "learners": args.learners,
        "results": {f"{n}/{p}": block for (n, p), block in results.items()},
    }
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    say(f"written {out} in {time.time() - start:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
