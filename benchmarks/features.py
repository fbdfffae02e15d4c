"""Which routing features earn their latency?

Compares feature specs (routing-text token cap 64/128/256, head+tail against
head-only truncation, with and without the text statistics, the MiniLM encoder
against its distilled static token vectors) by the metric the
router is selected on, the cross-validated area under the cost-quality curve
(`training.selection`), and by what they cost at request time: the single-thread
encoder time per prompt, p50 and p99, measured in this same run.

Run: ``.venv/bin/python benchmarks/features.py [--logs PATH] [--prompts N]``. The
default data is the shipped SWE-bench demo log. Text source (last user turn against
all turns) is not compared here: both shipped datasets are single-turn prompts, where
the two are identical.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.call_log import read_call_logs  # noqa: E402
from features.encoder_export import ensure_encoder  # noqa: E402
from features.featurizer import Featurizer  # noqa: E402
from features.prices import PriceCatalog  # noqa: E402
from features.spec import FeatureSpec  # noqa: E402
from training.dataset import build_training_set  # noqa: E402
from training.selection import cross_validate  # noqa: E402
from training.train import DEFAULT_LEARNERS, cost_components  # noqa: E402

VARIANTS = {
    "cap256-head64 (default)": FeatureSpec(max_tokens=256, head_tokens=64),
    "cap256-head-only": FeatureSpec(max_tokens=256, head_tokens=254),
    "cap128-head32": FeatureSpec(max_tokens=128, head_tokens=32),
    "cap64-head16": FeatureSpec(max_tokens=64, head_tokens=16),
    "cap256-no-stats": FeatureSpec(max_tokens=256, head_tokens=64, text_stats=()),
    "cap64-no-stats": FeatureSpec(max_tokens=64, head_tokens=16, text_stats=()),
    "static-cap256-head64": FeatureSpec.for_encoder("static", max_tokens=256, head_tokens=64),
    "static-cap512-head128": FeatureSpec.for_encoder("static", max_tokens=512, head_tokens=128),
}
#: A fast, representative part of the default grid: the comparison is between
#: feature sets, so every variant gets the same learners.
LEARNERS = [c for c in DEFAULT_LEARNERS if c[0] in {"logistic-C0.0003", "lightgbm-small", "mf"}]


def encoder_latency_ms(featurizer: Featurizer, texts: list[str]) -> tuple[float, float]:
    """p50 and p99 of one request's text -> feature vector, one thread."""
    times = []
    for text in texts:
        start = time.perf_counter()
        featurizer.transform_texts([text])
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logs", default=str(ROOT / "data/swebench_verified/calls.parquet"))
    parser.add_argument("--prompts", type=int, default=0, help="limit prompts (0: all)")
    parser.add_argument("--out", default=str(ROOT / "build/benchmarks/features.json"))
    parser.add_argument(
        "--variants",
        help=f"comma-separated variant names (default: all): {', '.join(VARIANTS)}",
    )
    args = parser.parse_args()
    variants = VARIANTS
    if args.variants:
        wanted = args.variants.split(",")
        unknown = [v for v in wanted if v not in VARIANTS]
        if unknown:
            parser.error(f"unknown variants {unknown}; known: {list(VARIANTS)}")
        variants = {v: VARIANTS[v] for v in wanted}

    frame = read_call_logs(args.logs, prices=PriceCatalog.load()).frame
    if args.prompts:
        keep = frame["prompt_id"].drop_duplicates().head(args.prompts)
        frame = frame[frame["prompt_id"].isin(keep)]
    rows = []
    for name, spec in variants.items():
        encoder_dir = ensure_encoder(kind=spec.encoder)
        started = time.perf_counter()
        data = build_training_set(frame, Featurizer(spec, encoder_dir, workers=2))
        timing_featurizer = Featurizer(spec, encoder_dir, intra_op_threads=1)
        p50, p99 = encoder_latency_ms(timing_featurizer, data.texts[:100])
        prices = {c: PriceCatalog.load().get(c) for c in data.candidates}
        cv = cross_validate(data, LEARNERS, cost_components(data, prices), n_folds=5, seed=0)
        best = cv.scores[cv.chosen]
        rows.append(
            {
                "variant": name,
                "best_learner": cv.chosen,
                "cv_area": best.get("area"),
                "cv_log_loss": best["log_loss"],
                "cv_savings_at_95": best.get("savings_at_95"),
                "area_single_models": best.get("area_single_models"),
                "encoder_p50_ms": p50,
                "encoder_p99_ms": p99,
                "seconds": time.perf_counter() - started,
            }
        )
    print(f"\n{len(frame['prompt_id'].unique())} prompts from {args.logs}\n")
    header = f"{'variant':26} {'learner':18} {'area':>7} {'logloss':>8} {'sav95':>7} "
    header += f"{'enc p50':>8} {'enc p99':>8}"
    print(header)
    base_p50 = rows[0]["encoder_p50_ms"]
    for r in rows:
        sav = r["cv_savings_at_95"]
        print(
            f"{r['variant']:26} {r['best_learner']:18} {r['cv_area'] or float('nan'):7.4f} "
            f"{r['cv_log_loss']:8.4f} {(sav if sav is not None else float('nan')):7.3f} "
            f"{r['encoder_p50_ms']:7.2f}ms {r['encoder_p99_ms']:7.2f}ms"
            f"  ({r['encoder_p50_ms'] / base_p50:.2f}x default)"
        )
    print(f"single models' area: {rows[0]['area_single_models']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
