"""`outcome-router evaluate`: run a bundle through serving's own scoring and decision
code on held-out full-information logs, and write ``metrics.json`` + ``report.html``.

Other bundles given with ``--compare`` (one per learner, last week's champion...) are
scored on the same prompts and drawn as extra curves on the same plot, with their area
and savings in a comparison table. Bundles that share the encoder and feature spec
share one featurization pass.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.call_log import log_files, read_call_logs
from features.prices import PriceCatalog
from features.routing_text import routing_text
from serving.bundle import Bundle, load_bundle
from serving.scoring import BundleScorer
from training.evaluation import (
    SEGMENT_COLUMNS,
    FullInfoLog,
    best_single,
    curve_figures,
    router_curve,
    summarize,
    value_grid,
)
from training.report import write_report

#: Per-prompt tags the call-log reader does not keep, read from the raw files if present.
EXTRA_SEGMENT_COLUMNS = tuple(c for c in SEGMENT_COLUMNS if c not in ("task", "team"))


def evaluate(
    bundle_path: str | Path,
    logs: list[str],
    out_dir: str | Path,
    *,
    prices: str | None = None,
    compare: Sequence[str | Path] = (),
    pairs: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """Evaluate a bundle on full-information logs; write and return the summary.

    Parameters
    ----------
    bundle_path : str or Path
        The bundle to evaluate (its curve is "the router").
    logs : list of str
        Call-log files or folders where every candidate answered every prompt.
    out_dir : str or Path
        Gets ``metrics.json``, ``report.html`` and ``quarantine.jsonl``.
    prices : str, optional
        Price catalog for rows without ``cost_usd``.
    compare : sequence of str or Path, optional
        Other bundles, scored on the same prompts; each adds an entry to
        ``summary["comparisons"]`` and a curve to the plot.
    pairs : sequence of (str, str), optional
        Model pairs for RouteLLM's APGR and CPT besides (cheapest, best single).

    Returns
    -------
    summary : dict
        :func:`training.evaluation.summarize` of the bundle, plus ``router_version``,
        ``bundle``, ``label``, ``n_prompts_dropped``, ``candidates_missing_from_logs``,
        ``prediction_quality`` and ``comparisons`` (list, one per ``compare`` bundle:
        ``{label, bundle, router_version, candidates, note, row, router_curve, pairs,
        default_point, calibration}``).
    """
    bundle = load_bundle(bundle_path)
    out_dir = Path(out_dir)
    read = read_call_logs(
        logs, prices=PriceCatalog.load(prices), quarantine_path=out_dir / "quarantine.jsonl"
    )
    frame = _with_extra_segments(read.frame, logs)
    candidates = [c for c in bundle.candidate_names if c in set(frame["model"])]
    missing = sorted(set(bundle.candidate_names) - set(candidates))
    if len(candidates) < 1:
        raise ValueError(
            f"The logs hold none of the bundle's candidates {list(bundle.candidate_names)}."
        )
    log, n_dropped = FullInfoLog.from_frame(frame, candidates)
    _say(
        f"evaluating {log.n_prompts} prompts x {len(candidates)} candidates "
        f"({n_dropped} prompts lacked some candidate; {read.n_quarantined} rows quarantined)"
    )
    texts = _routing_texts(frame, log, bundle)
    features: dict[tuple[str, ...], np.ndarray] = {}
    p, c = _scores(bundle, log, texts, features)
    values = value_grid(log)
    curve = router_curve(log, p, c, values)
    summary = summarize(
        log,
        curve,
        default_value_usd=bundle.policy["value_usd"],
        p_success=p,
        expected_cost_usd=c,
        pairs=pairs,
    )
    label = bundle_label(bundle)
    summary["table"][0]["name"] = label
    summary["label"] = label
    summary["router_version"] = bundle.router_version
    summary["bundle"] = str(bundle.path)
    summary["n_prompts_dropped"] = n_dropped
    summary["candidates_missing_from_logs"] = missing
    summary["prediction_quality"] = _prediction_quality(log, p, c)
    summary["comparisons"] = []
    used = {label}
    for other in compare:
        entry = _compare(load_bundle(other), log, texts, features, summary)
        if entry["label"] in used:  # e.g. two folders of one name: tell them apart
            entry["label"] = entry["row"]["name"] = f"{entry['label']} [{entry['router_version']}]"
        used.add(entry["label"])
        summary["comparisons"].append(entry)
    write_report(summary, out_dir, title=f"outcome-router evaluation: {label}")
    return summary


def bundle_label(bundle: Bundle) -> str:
    """``folder (chosen learner setting)``, e.g. ``bundle-knn (knn-k20)``."""
    training = bundle.manifest.get("training") or {}
    chosen = (training.get("selection") or {}).get("chosen") or (
        bundle.manifest.get("scorer") or {}
    ).get("learner")
    return f"{bundle.path.name} ({chosen})" if chosen else bundle.path.name


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _with_extra_segments(frame: pd.DataFrame, logs: list[str]) -> pd.DataFrame:
    """Add per-prompt tags (e.g. ``dataset``) that the call-log reader drops.

    They are read from the raw files by ``prompt_id``; files without ``prompt_id`` or
    without the column add nothing.
    """
    tags: dict[str, list[pd.Series]] = {c: [] for c in EXTRA_SEGMENT_COLUMNS}
    for path in log_files(logs):
        name = path.name
        if name.endswith(".parquet"):
            raw = pd.read_parquet(path)
        elif name.endswith((".csv", ".csv.gz")):
            raw = pd.read_csv(path, dtype=str)
        else:
            raw = pd.read_json(path, lines=True, dtype=False)
        if "prompt_id" not in raw.columns:
            continue
        for column in EXTRA_SEGMENT_COLUMNS:
            if column in raw.columns:
                part = raw[["prompt_id", column]].dropna()
                tags[column].append(part.set_index(part["prompt_id"].astype(str))[column])
    out = frame
    for column, parts in tags.items():
        if parts:
            joined = pd.concat(parts)
            joined = joined[~joined.index.duplicated(keep="first")].astype(str)
            out = out.assign(**{column: out["prompt_id"].astype(str).map(joined)})
    return out


def _routing_texts(frame: pd.DataFrame, log: FullInfoLog, bundle: Bundle) -> list[str]:
    firsts = frame.drop_duplicates("prompt_id").set_index("prompt_id")
    source = bundle.feature_spec.text_source
    texts = []
    for pid in log.prompt_ids:
        row = firsts.loc[pid]
        prompt = row["prompt"] if isinstance(row["prompt"], str) else None
        texts.append(routing_text(prompt, row["messages"], source=source))
    return texts


def _feature_key(bundle: Bundle) -> tuple[str, ...]:
    """Bundles with equal keys featurize a text identically (same encoder, same spec)."""
    files = bundle.manifest.get("files", {})
    encoder_files = tuple(f"{k}={v}" for k, v in sorted(files.items()) if "encoder" in k)
    spec = repr(sorted(bundle.manifest["feature_spec"].items()))
    tokenizer = files.get("tokenizer.json", "")
    return (spec, tokenizer, *encoder_files)


def _scores(
    bundle: Bundle,
    log: FullInfoLog,
    texts: list[str],
    features: dict[tuple[str, ...], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """``p_success`` and ``expected_cost_usd`` of the log's candidates, shape (n, k).

    ``features`` caches feature matrices by :func:`_feature_key` across bundles.
    """
    scorer = BundleScorer(bundle, workers=2)
    key = _feature_key(bundle)
    if key not in features:
        features[key] = scorer.featurizer.transform_texts(texts)
    scores = scorer.score_features(features[key])
    columns = [bundle.candidate_names.index(c) for c in log.candidates]
    return scores.p_success[:, columns], scores.expected_cost_usd[:, columns]


def _compare(
    other: Bundle,
    log: FullInfoLog,
    texts: list[str],
    features: dict[tuple[str, ...], np.ndarray],
    main: dict[str, Any],
) -> dict[str, Any]:
    """One compared bundle on the main log's prompts.

    It is scored on the candidates it shares with the log. With fewer candidates than
    the main bundle, its own curve and figures use that subset, but savings and area stay
    measured against the main log's best single model and cost range, so rows compare.
    """
    label = bundle_label(other)
    shared = [name for name in log.candidates if name in set(other.candidate_names)]
    if not shared:
        raise ValueError(
            f"Compared bundle {other.path} shares no candidate with the log {list(log.candidates)}."
        )
    note = ""
    sub = log
    if len(shared) < log.n_candidates:
        cols = [log.candidates.index(name) for name in shared]
        sub = FullInfoLog(
            prompt_ids=log.prompt_ids,
            candidates=tuple(shared),
            outcome=log.outcome[:, cols],
            cost_usd=log.cost_usd[:, cols],
            segments=log.segments,
        )
        note = f"routes between {len(shared)} of the {log.n_candidates} candidates"
    _say(f"comparing {label}")
    p, c = _scores(other, sub, texts, features)
    curve = router_curve(sub, p, c, value_grid(log))
    pairs = [tuple(main["default_pair"])] if main.get("default_pair") else []
    pairs = [pair for pair in pairs if all(name in sub.candidates for name in pair)]
    s = summarize(
        sub,
        curve,
        default_value_usd=other.policy["value_usd"],
        p_success=p,
        expected_cost_usd=c,
        pairs=pairs,
    )
    best = best_single(log)
    costs = [pt["cost_usd"] for pt in s["router_curve"]]
    quals = [pt["quality"] for pt in s["router_curve"]]
    row = {
        "name": label,
        "kind": "router",
        "quality": s["default_point"]["quality"],
        "cost_usd": s["default_point"]["cost_usd"],
        **curve_figures(costs, quals, best, tuple(main["area_cost_range"])),
        "apgr": s.get("apgr"),
    }
    return {
        "label": label,
        "bundle": str(other.path),
        "router_version": other.router_version,
        "candidates": list(sub.candidates),
        "note": note,
        "row": row,
        "router_curve": [
            {"value_usd": pt["value_usd"], "quality": pt["quality"], "cost_usd": pt["cost_usd"]}
            for pt in s["router_curve"]
        ],
        "default_point": s["default_point"],
        "pairs": s.get("pairs", []),
        "calibration": {key: s["calibration"]["pooled"][key] for key in ("ece", "brier", "n")},
    }


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
            "median_abs_log_cost_error": float(np.nanmedian(np.abs(log_ratio[:, k])))
            if positive[:, k].any()
            else None,
        }
        for k, name in enumerate(log.candidates)
    }
