"""`outcome-router evaluate`: run a bundle through serving's own scoring and decision
code on held-out full-information logs, and write ``metrics.json`` + ``report.html``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from features.call_log import read_call_logs
from features.prices import PriceCatalog
from features.routing_text import routing_text
from serving.bundle import load_bundle
from serving.scoring import BundleScorer
from training.evaluation import FullInfoLog, router_curve, summarize, value_grid
from training.report import write_report


def evaluate(
    bundle_path: str | Path,
    logs: list[str],
    out_dir: str | Path,
    *,
    prices: str | None = None,
) -> dict[str, Any]:
    """Evaluate a bundle on full-information logs; return the summary written."""
    bundle = load_bundle(bundle_path)
    out_dir = Path(out_dir)
    read = read_call_logs(
        logs, prices=PriceCatalog.load(prices), quarantine_path=out_dir / "quarantine.jsonl"
    )
    frame = read.frame
    candidates = [c for c in bundle.candidate_names if c in set(frame["model"])]
    missing = sorted(set(bundle.candidate_names) - set(candidates))
    if len(candidates) < 1:
        raise ValueError(
            f"The logs hold none of the bundle's candidates {list(bundle.candidate_names)}."
        )
    log, n_dropped = FullInfoLog.from_frame(frame, candidates)
    print(
        f"evaluating {log.n_prompts} prompts x {len(candidates)} candidates "
        f"({n_dropped} prompts lacked some candidate; {read.n_quarantined} rows quarantined)",
        file=sys.stderr,
    )
    firsts = frame.drop_duplicates("prompt_id").set_index("prompt_id")
    source = bundle.feature_spec.text_source
    texts = []
    for pid in log.prompt_ids:
        row = firsts.loc[pid]
        prompt = row["prompt"] if isinstance(row["prompt"], str) else None
        texts.append(routing_text(prompt, row["messages"], source=source))
    scorer = BundleScorer(bundle, workers=2)
    scores = scorer.score_texts(texts)
    columns = [bundle.candidate_names.index(c) for c in candidates]
    p = scores.p_success[:, columns]
    c = scores.expected_cost_usd[:, columns]
    curve = router_curve(log, p, c, value_grid(log))
    summary = summarize(
        log, curve, default_value_usd=bundle.policy["value_usd"], p_success=p, expected_cost_usd=c
    )
    summary["router_version"] = bundle.router_version
    summary["bundle"] = str(bundle.path)
    summary["n_prompts_dropped"] = n_dropped
    summary["candidates_missing_from_logs"] = missing
    summary["prediction_quality"] = _prediction_quality(log, p, c)
    write_report(summary, out_dir, title=f"outcome-router evaluation: {bundle.router_version}")
    return summary


def _prediction_quality(log: FullInfoLog, p: np.ndarray, c: np.ndarray) -> dict[str, Any]:
    """How good the scores are, before any decision: Brier score and cost error."""
    brier = ((p - log.outcome) ** 2).mean(axis=0)
    positive = (log.cost_usd > 0) & (c > 0)
    log_ratio = np.where(
        positive, np.log(np.where(positive, c, 1) / np.where(positive, log.cost_usd, 1)), np.nan
    )
    return {
        name: {
            "brier": float(brier[k]),
            "mean_p_success": float(p[:, k].mean()),
            "mean_outcome": float(log.outcome[:, k].mean()),
            "mean_expected_cost_usd": float(c[:, k].mean()),
            "mean_cost_usd": float(log.cost_usd[:, k].mean()),
            "median_abs_log_cost_error": float(np.nanmedian(np.abs(log_ratio[:, k]))),
        }
        for k, name in enumerate(log.candidates)
    }
