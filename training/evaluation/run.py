"""`outcome-router evaluate`: run a bundle as it is served on held-out full-information
logs, and write ``metrics.json`` + ``report.html``. On partial-feedback logs (a
gateway's one call per prompt) the served policy is estimated off-policy instead
(:mod:`training.evaluation.off_policy`).

Logs are read once, through the validated reader :func:`features.call_log.read_call_logs`
(the one ``train`` uses): rows it rejects go to ``quarantine.jsonl`` beside the report
instead of stopping the command. The bundle decides through :class:`ServedPolicy`, i.e.
serving's own scoring and policy code with the manifest's policy defaults.

Other bundles given with ``compare`` (one per learner, last week's champion...) are
scored on the same prompts and drawn as extra curves on the same plot, with their area
and savings in a comparison table. Bundles that share the encoder and feature spec
share one featurization pass.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from features.call_log import read_call_logs
from features.context import RequestContext
from features.prices import PriceCatalog
from features.routing_text import routing_text
from serving.bundle import Bundle, load_bundle
from serving.policy import Exploration
from training.dataset import request_contexts
from training.evaluation.curves import (
    best_single,
    curve_figures,
    router_choice,
    router_curve,
    value_grid,
)
from training.evaluation.log import FullInfoLog
from training.evaluation.off_policy import is_partial_feedback, off_policy_section
from training.evaluation.results import (
    BanditEvaluation,
    Comparison,
    Evaluation,
    prediction_quality,
)
from training.evaluation.served import ServedPolicy, bundle_label
from training.evaluation.summary import Summary, TableRow, summarize
from training.off_policy import PolicyDifference, PolicyValueInterval
from training.report import write_report

#: Rejected rows of the logs, written beside the report.
QUARANTINE_FILE = "quarantine.jsonl"


def evaluate(
    bundle_path: str | Path,
    logs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    prices: str | None = None,
    compare: Sequence[str | Path] = (),
    pairs: Sequence[tuple[str, str]] = (),
    candidates: Sequence[str] | None = None,
    exploration: Exploration | None = None,
    n_bootstrap: int = 1000,
    clip: float | None = None,
    seed: int = 0,
    value_usd: float | None = None,
    cluster: str | None = None,
) -> Evaluation | BanditEvaluation:
    """Evaluate a bundle on logs; write the report and return it.

    On full-information logs (every candidate answered every prompt) every figure is
    exact. On partial-feedback logs (one logged call per prompt, as a gateway writes)
    the served policy's quality and cost are estimated off-policy with DM, IPS, SNIPS
    and DR (:mod:`training.evaluation.off_policy`) and a :class:`BanditEvaluation` is
    returned.

    Parameters
    ----------
    bundle_path : str or Path
        The bundle to evaluate (its curve is "the router").
    logs : sequence of str or Path
        Call-log files or folders where every candidate answered every prompt.
    out_dir : str or Path
        Gets ``metrics.json`` (:meth:`Evaluation.to_dict`), ``report.html`` and, when
        the reader rejected rows, ``quarantine.jsonl``.
    prices : str, optional
        Price catalog for rows without ``cost_usd``; default: the shipped one.
    compare : sequence of str or Path, optional
        Other bundles, scored on the same prompts. On full-information logs each adds
        a :class:`Comparison` and a curve to the plot; on partial-feedback logs each
        adds an ``off_policy.comparisons`` entry: this bundle minus that one in
        quality, cost and net value, with paired bootstrap intervals.
    pairs : sequence of (str, str), optional
        Model pairs for RouteLLM's APGR and CPT besides (cheapest, best single).
    candidates : sequence of str, optional
        Evaluate the bundle restricted to these of its candidates, exactly as `/route`
        answers a request with ``candidates``. Default: all of them, which the logs
        must then all hold.
    exploration : Exploration, optional
        Partial-feedback logs only: evaluate the exploring policy `/route` serves with
        these settings (its ``action_distribution``) instead of the greedy one.
    n_bootstrap : int, default=1000
        Bootstrap resamples of the 95% intervals (off-policy estimates, and paired
        differences with ``compare``).
    clip : float, optional
        Partial-feedback logs only: clip importance weights at this value.
    seed : int, default=0
        Seed of the bootstrap.
    value_usd : float, optional
        With ``compare``: value in USD of one good outcome for the net value
        ``value_usd * quality - cost`` of the paired difference. Default: each
        compared bundle's manifest ``value_usd`` (the champion's).
    cluster : str, optional
        ``local[:N]`` or ``tcp://HOST:PORT``: read, featurize and score the logs per
        partition on Dask workers (`training.evaluation.cluster_scoring`). Default: in
        this process.

    Returns
    -------
    evaluation : Evaluation or BanditEvaluation

    Raises
    ------
    ValueError
        If ``candidates`` names a model the bundle lacks, or the logs hold no graded
        call of an evaluated candidate (the message says which and how to restrict).
    """
    bundle = load_bundle(bundle_path)
    out_dir = Path(out_dir)
    quarantine = out_dir / QUARANTINE_FILE
    if cluster is None:
        served = ServedPolicy(bundle, candidates)
        read = read_call_logs(logs, prices=PriceCatalog.load(prices), quarantine_path=quarantine)
        frame, n_quarantined = read.frame, read.n_quarantined
    else:
        frame, n_quarantined, served = _score_on_cluster(
            cluster, bundle, candidates, logs, prices, quarantine, compare
        )
    if n_quarantined:
        _say(f"{n_quarantined} rows quarantined (bad rows of the logs) -> {quarantine}")
    if is_partial_feedback(frame, served.candidates):
        if pairs:
            _say(
                "warning: --pair needs full-information logs; on these partial-feedback "
                "logs it is not applied"
            )
        return _evaluate_partial_feedback(
            served,
            frame,
            out_dir,
            n_quarantined=n_quarantined,
            exploration=exploration,
            n_bootstrap=n_bootstrap,
            clip=clip,
            seed=seed,
            compare=[load_bundle(other) for other in compare],
            value_usd=value_usd,
        )
    graded = set(frame.loc[frame["outcome"].notna(), "model"])
    absent = [c for c in served.candidates if c not in graded]
    if absent:
        present = [c for c in served.candidates if c in graded]
        hint = (
            f" To evaluate the router restricted to the others, as /route would with "
            f"`candidates`, pass --candidates {','.join(present)}."
            if present
            else ""
        )
        raise ValueError(
            f"The logs {[str(p) for p in logs]} hold no graded call of the bundle's "
            f"candidates {absent}, so its decisions cannot be scored.{hint}"
        )
    log, n_dropped = FullInfoLog.from_frame(frame, served.candidates)
    _say(
        f"evaluating {log.n_prompts} prompts x {log.n_candidates} candidates "
        f"({n_dropped} prompts lacked some candidate)"
    )
    texts = _routing_texts(frame, log, bundle)
    contexts = _request_contexts(frame, log)
    features: dict[tuple[str, ...], np.ndarray] = {}
    p, c = _scores(served, texts, features, contexts)
    label = bundle_label(bundle)
    summary = summarize(
        log,
        router_curve(
            log,
            p,
            c,
            value_grid(log),
            min_success=served.params.min_success,
            max_cost_usd=served.params.max_cost_usd,
            reference=served.params.reference,
            reference_margin=served.params.reference_margin,
        ),
        policy=served.params,
        p_success=p,
        expected_cost_usd=c,
        pairs=pairs,
        name=label,
    )
    comparisons: list[Comparison] = []
    used = {label}
    action = router_choice(
        log,
        p,
        c,
        served.params.value_usd,
        min_success=served.params.min_success,
        max_cost_usd=served.params.max_cost_usd,
        reference=served.params.reference,
        reference_margin=served.params.reference_margin,
    )
    for other in compare:
        entry = _compare(
            load_bundle(other),
            log,
            texts,
            features,
            summary,
            contexts=contexts,
            action=action,
            value_usd=value_usd,
            n_bootstrap=n_bootstrap,
            seed=seed,
        )
        if entry.label in used:  # e.g. two folders of one name: tell them apart
            new = f"{entry.label} [{entry.router_version}]"
            entry = dataclasses.replace(
                entry, label=new, row=dataclasses.replace(entry.row, name=new)
            )
        used.add(entry.label)
        comparisons.append(entry)
    evaluation = Evaluation(
        summary=summary,
        label=label,
        router_version=bundle.router_version,
        bundle=str(bundle.path),
        bundle_candidates=bundle.candidate_names,
        n_prompts_dropped=n_dropped,
        n_quarantined=n_quarantined,
        prediction_quality=prediction_quality(log, p, c),
        comparisons=tuple(comparisons),
    )
    write_report(evaluation, out_dir, title=f"outcome-router evaluation: {label}")
    return evaluation


def _evaluate_partial_feedback(
    served: ServedPolicy,
    frame: pd.DataFrame,
    out_dir: Path,
    *,
    n_quarantined: int,
    exploration: Exploration | None,
    n_bootstrap: int,
    clip: float | None,
    seed: int,
    compare: Sequence[Bundle] = (),
    value_usd: float | None = None,
) -> BanditEvaluation:
    """The off-policy evaluation of a one-call-per-prompt log (see :func:`evaluate`)."""
    bundle = served.bundle
    _say(f"partial-feedback log ({len(frame)} calls): estimating the policy off-policy")
    section, n_prompts, n_ungraded = off_policy_section(
        served,
        frame,
        exploration=exploration,
        n_bootstrap=n_bootstrap,
        clip=clip,
        random_state=seed,
        compare=compare,
        value_usd=value_usd,
    )
    used = {bundle_label(bundle)}
    entries = []
    for entry in section.comparisons:  # e.g. a bundle against itself: tell them apart
        if entry.label in used:
            entry = dataclasses.replace(entry, label=f"{entry.label} [{entry.router_version}]")
        used.add(entry.label)
        entries.append(entry)
        d = entry.difference
        _say(
            f"vs {entry.label}: net value {d.net_value.estimate:+.4g} USD per call, "
            f"{100 * (1 - d.net_value.alpha):.0f}% [{d.net_value.low:+.4g}, "
            f"{d.net_value.high:+.4g}] ({d.estimator_name}, value_usd {d.value_usd:.4g})"
        )
    section = dataclasses.replace(section, comparisons=tuple(entries))
    for warning in section.warnings:
        _say(f"warning: {warning}")
    label = bundle_label(bundle)
    evaluation = BanditEvaluation(
        label=label,
        router_version=bundle.router_version,
        bundle=str(bundle.path),
        bundle_candidates=bundle.candidate_names,
        candidates=served.candidates,
        n_prompts=n_prompts,
        n_quarantined=n_quarantined,
        n_ungraded=n_ungraded,
        off_policy=section,
    )
    write_report(evaluation, out_dir, title=f"outcome-router off-policy evaluation: {label}")
    return evaluation


def _score_on_cluster(cluster, bundle, candidates, logs, prices, quarantine, compare):
    """``evaluate --cluster``: the workers read, featurize and score the logs."""
    from training.cluster import connect
    from training.evaluation.cluster_scoring import score_on_cluster

    if compare:
        raise ValueError(
            "--compare with --cluster is not supported yet: compared bundles are scored in "
            "this process on the prompts, which stay on the workers. Evaluate each bundle "
            "with --cluster, or compare without --cluster."
        )
    quarantine.parent.mkdir(parents=True, exist_ok=True)
    with connect(cluster) as client:
        return score_on_cluster(
            client,
            bundle,
            candidates,
            logs,
            prices=PriceCatalog.load(prices),
            quarantine=quarantine,
        )


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _routing_texts(frame: pd.DataFrame, log: FullInfoLog, bundle: Bundle) -> list[str]:
    firsts = frame.drop_duplicates("prompt_id").set_index("prompt_id")
    source = bundle.feature_spec.text_source
    texts = []
    for pid in log.prompt_ids:
        row = firsts.loc[pid]
        prompt = row["prompt"] if isinstance(row["prompt"], str) else None
        texts.append(routing_text(prompt, row["messages"], source=source))
    return texts


def _request_contexts(frame: pd.DataFrame, log: FullInfoLog) -> list[RequestContext]:
    """Each prompt's request context (task, team, depth), in ``log.prompt_ids`` order."""
    firsts = frame.drop_duplicates("prompt_id").set_index("prompt_id")
    return request_contexts(firsts.loc[list(log.prompt_ids)])


def _scores(
    served: ServedPolicy,
    texts: list[str],
    features: dict[tuple[str, ...], np.ndarray],
    contexts: list[RequestContext] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``p_success`` and ``expected_cost_usd`` of ``served.candidates``, shape (n, k).

    ``features`` caches feature matrices by :attr:`ServedPolicy.feature_key` across
    bundles.
    """
    key = served.feature_key
    if key not in features:
        features[key] = served.featurize(texts, contexts)
    return served.score(features[key])


def _compare(
    other: Bundle,
    log: FullInfoLog,
    texts: list[str],
    features: dict[tuple[str, ...], np.ndarray],
    main: Summary,
    *,
    action: np.ndarray,
    value_usd: float | None,
    n_bootstrap: int,
    seed: int,
    contexts: list[RequestContext] | None = None,
) -> Comparison:
    """One compared bundle on the main log's prompts.

    It is served restricted to the candidates it shares with the log. With fewer
    candidates than the main bundle, its own curve and figures use that subset, but
    savings and area stay measured against the main log's best single model and cost
    range, so rows compare. ``action`` is the evaluated bundle's default decision on
    every prompt: the paired difference (`table_difference`) is read against it.
    """
    label = bundle_label(other)
    shared = [name for name in other.candidate_names if name in set(log.candidates)]
    if not shared:
        raise ValueError(
            f"Compared bundle {other.path} shares no candidate with the log {list(log.candidates)}."
        )
    served = ServedPolicy(other, shared)
    cols = [log.candidates.index(name) for name in served.candidates]
    sub = FullInfoLog(
        prompt_ids=log.prompt_ids,
        candidates=served.candidates,
        outcome=log.outcome[:, cols],
        cost_usd=log.cost_usd[:, cols],
        segments=log.segments,
    )
    note = ""
    if len(shared) < log.n_candidates:
        note = f"routes between {len(shared)} of the {log.n_candidates} candidates"
    _say(f"comparing {label}")
    p, c = _scores(served, texts, features, contexts)
    curve = router_curve(
        sub,
        p,
        c,
        value_grid(log),
        min_success=served.params.min_success,
        max_cost_usd=served.params.max_cost_usd,
        reference=served.params.reference,
        reference_margin=served.params.reference_margin,
    )
    pairs = [main.default_pair] if main.default_pair else []
    pairs = [pair for pair in pairs if all(name in sub.candidates for name in pair)]
    s = summarize(
        sub, curve, policy=served.params, p_success=p, expected_cost_usd=c, pairs=pairs, name=label
    )
    figures = curve_figures(
        [pt.cost_usd for pt in s.router_curve],
        [pt.quality for pt in s.router_curve],
        best_single(log),
        main.area_cost_range,
    )
    row = TableRow(
        name=label,
        kind="router",
        quality=s.default_point.quality if s.default_point else None,
        cost_usd=s.default_point.cost_usd if s.default_point else None,
        figures=figures,
        apgr=s.apgr,
    )
    other_action = np.asarray(cols)[
        router_choice(
            sub,
            p,
            c,
            served.params.value_usd,
            min_success=served.params.min_success,
            max_cost_usd=served.params.max_cost_usd,
            reference=served.params.reference,
            reference_margin=served.params.reference_margin,
        )
    ]
    rows = np.arange(log.n_prompts)
    difference = table_difference(
        (log.outcome[rows, action], log.cost_usd[rows, action]),
        (log.outcome[rows, other_action], log.cost_usd[rows, other_action]),
        value_usd=served.params.value_usd if value_usd is None else float(value_usd),
        n_bootstrap=n_bootstrap,
        seed=seed,
    )
    return Comparison(
        label=label,
        bundle=str(other.path),
        router_version=other.router_version,
        note=note,
        row=row,
        summary=s,
        difference=difference,
    )


#: The name a difference read off a full-information table goes by, where an
#: off-policy one names its estimator.
TABLE_ESTIMATOR = "full_information"


def table_difference(
    policy: tuple[np.ndarray, np.ndarray],
    baseline: tuple[np.ndarray, np.ndarray],
    *,
    value_usd: float,
    n_bootstrap: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> PolicyDifference:
    """``policy - baseline`` on the same prompts of a full-information table, with
    paired bootstrap intervals.

    Each is ``(outcome, cost_usd)`` per prompt of its decision. Both decisions are
    known on every prompt, so the difference is exact on these prompts; the interval
    says how much it would move on other prompts like them. Resampling the prompts
    once for both keeps the pairing (the interval of a difference of two independent
    means would be far wider). The result has the shape `evaluate --compare` writes
    on gateway logs, so `promote --evaluation` reads either.
    """
    q = np.asarray(policy[0], dtype=np.float64) - np.asarray(baseline[0], dtype=np.float64)
    c = np.asarray(policy[1], dtype=np.float64) - np.asarray(baseline[1], dtype=np.float64)
    net = value_usd * q - c
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(q), size=(n_bootstrap, len(q)))
    bounds = [100 * alpha / 2, 100 * (1 - alpha / 2)]

    def interval(values: np.ndarray) -> PolicyValueInterval:
        low, high = np.percentile(values[idx].mean(axis=1), bounds)
        return PolicyValueInterval(float(values.mean()), float(low), float(high), alpha)

    return PolicyDifference(
        quality=interval(q),
        cost_usd=interval(c),
        net_value=interval(net),
        value_usd=float(value_usd),
        estimator_name=TABLE_ESTIMATOR,
        n_bootstrap=n_bootstrap,
    )
