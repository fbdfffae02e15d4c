"""Should the cost model be weighted by inverse propensities on bandit logs?

    .venv/bin/python benchmarks/bandit_cost.py [--datasets swebench,routeprofile] [--seeds 3]

A biased logger sends long (or hard) prompts to the dearest model, so each model's
cost is fit on a different kind of prompt from the ones the router will send it. This
benchmark simulates such logs as `benchmarks/bandit.py` does (70/30 split by hashed
``prompt_id``; on the training side one call per prompt from the ``long`` and ``hard``
loggers), fits `training.cost_model.LogLinearCostModel` unweighted and with `train`'s
clipped inverse-propensity weights (`training.train.bandit_correction`), and scores
both on the test prompts' full table:

- |relative bias| of each candidate's mean predicted cost against its mean true cost,
  averaged over candidates (what the default policy's cost estimates rest on);
- mean |log error| per prompt and candidate (what each decision rests on).

Both weightings are fit in the same process on the same features (static encoder).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from benchmarks.bandit import (  # noqa: E402
    POLICIES,
    TRAIN_FRACTION,
    bandit_log,
    load,
    logging_policy,
    subset,
)
from features.encoder_export import ensure_encoder  # noqa: E402
from features.featurizer import Featurizer  # noqa: E402
from features.prices import PriceCatalog  # noqa: E402
from features.spec import FeatureSpec  # noqa: E402
from training.cost_model import LogLinearCostModel  # noqa: E402
from training.dataset import build_training_set  # noqa: E402
from training.selection import units  # noqa: E402
from training.simulation import simulate  # noqa: E402
from training.split import in_train_split  # noqa: E402
from training.train import bandit_correction, cost_components  # noqa: E402


def cost_errors(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(mean over candidates of |relative bias of the mean cost|, mean |log error|)."""
    ok = np.isfinite(truth) & (truth > 0) & (pred > 0)
    bias = [
        abs(pred[ok[:, j], j].mean() / truth[ok[:, j], j].mean() - 1)
        for j in range(truth.shape[1])
        if ok[:, j].any()
    ]
    return float(np.mean(bias)), float(np.abs(np.log(pred[ok]) - np.log(truth[ok])).mean())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datasets", default="swebench,routeprofile", help="comma-separated (default: both)"
    )
    parser.add_argument("--seeds", type=int, default=3, help="repeats (default 3)")
    args = parser.parse_args(argv)
    featurizer = Featurizer(FeatureSpec.for_encoder("static"), ensure_encoder(kind="static"))
    print("| data | logger | cost model | mean-cost |relative bias| | per-prompt |log error| |")
    print("|---|---|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            frame, table, prices = load(name, Path(tmp))
            catalog = PriceCatalog.load(prices)
            candidates = list(table.candidates)
            for policy in POLICIES:
                errors: dict[str, list[tuple[float, float]]] = {"unweighted": [], "ips": []}
                for seed in range(args.seeds):
                    in_train = np.array(
                        [in_train_split(p, TRAIN_FRACTION, seed) for p in table.prompt_ids]
                    )
                    train_table = subset(table, in_train)
                    sim = simulate(train_table, logging_policy(policy, train_table), seed=seed)
                    ids = set(train_table.prompt_ids)
                    logged = bandit_log(frame[frame["prompt_id"].isin(ids)], sim)
                    data = build_training_set(logged, featurizer, candidates)
                    test = build_training_set(
                        frame[~frame["prompt_id"].isin(ids)], featurizer, candidates
                    )
                    truth = np.full((test.n_prompts, len(candidates)), np.nan)
                    truth[test.prompt, test.candidate] = test.cost_usd
                    weights, _ = bandit_correction(data, "ips", 20.0, seed)
                    components = cost_components(data, {c: catalog.get(c) for c in candidates})
                    for label, w in (("unweighted", None), ("ips", weights)):
                        model = LogLinearCostModel().fit(
                            data.features[data.prompt],
                            units(data),
                            components=components,
                            candidate=data.candidate,
                            sample_weight=w,
                        )
                        pred = model.predict_cost(test.features, len(candidates))
                        errors[label].append(cost_errors(pred, truth))
                for label, values in errors.items():
                    v = np.array(values)
                    print(
                        f"| {name} | {policy} | {label} | {v[:, 0].mean():.3f} | "
                        f"{v[:, 1].mean():.3f} |",
                        flush=True,
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
