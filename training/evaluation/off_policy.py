"""The off-policy section of ``evaluate``: the served policy's quality and cost
estimated on a partial-feedback log, where only the chosen model's outcome is known.

One round is one graded call. The evaluated policy is the bundle as served
(:class:`~training.evaluation.served.ServedPolicy`: its scores, its manifest's knobs,
and optionally the serving exploration through
:func:`serving.policy.action_distribution`), so the estimate is of what `/route`
would do on those prompts. The regression that DM and DR need is the bundle's own
prediction: ``p_success`` for the outcome and ``expected_cost_usd`` for the cost.
That is the model being evaluated, so DR's correction term measures exactly how
wrong those predictions are on the logged calls; no second model is fitted.

Bundles given with ``compare`` (the champion) are served on the same logged calls and
each gets a paired difference (:class:`training.off_policy.PairedComparison`): the
evaluated bundle minus the compared one in quality, cost and net value, both estimated
with the headline estimator (each with its own predictions as DR's regression), the
interval from one resample of the calls per replicate.

When the log has no ``propensity`` column (a gateway log written before `/route`),
the logging policy is estimated (:func:`training.propensity.fit_logging_policy`)
and the result says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.context import RequestContext
from features.routing_text import routing_text
from serving.bundle import Bundle
from serving.policy import Exploration, PolicyParams, action_distribution
from training.dataset import request_contexts
from training.evaluation.results import OffPolicyComparison, OffPolicyPoint, OffPolicySection
from training.evaluation.served import ServedPolicy, bundle_label
from training.off_policy import (
    ESTIMATORS,
    BanditFeedback,
    OffPolicyEvaluation,
    PairedComparison,
    make_estimator,
)
from training.propensity import fit_logging_policy

#: A choice is weakly supported when the logging policy gave it less than this.
LOW_PROPENSITY = 0.05
#: A model the policy picks is "rarely tried" with fewer logged calls than this.
MIN_LOGGED_CALLS = 30
#: Warn when this share of the policy's choices is weakly supported.
LOW_SUPPORT_WARN = 0.10
#: The estimator the headline quotes, by propensity source. With logged propensities DR
#: had the lowest RMSE and covered the truth (benchmarks/ope.py, README "Benchmarks").
#: With estimated ones, a near-deterministic logger (e.g. the bundle exploring at 20%)
#: is fitted too flat, IPS and DR weights blow up (quality bias up to +0.97 and -0.23),
#: while SNIPS's self-normalisation cancels the common error and stayed within 0.07.
DEFAULT_ESTIMATOR = {"logged": "dr", "estimated": "snips"}
#: Points of the value_usd sweep (besides 0) and their bootstrap resamples.
CURVE_POINTS = 16
CURVE_BOOTSTRAP = 200


def is_partial_feedback(frame: pd.DataFrame, candidates: Sequence[str]) -> bool:
    """Whether graded calls are one-per-prompt logs rather than a full table.

    True when no prompt has a graded call of every candidate and a typical prompt
    (the median) has graded calls of at most one model: a gateway log. A table that
    merely lacks one candidate stays a full-information log (evaluate then asks for
    ``--candidates``).
    """
    graded = frame[frame["outcome"].notna() & frame["model"].isin(list(candidates))]
    if graded.empty:
        graded = frame[frame["outcome"].notna()]
    if graded.empty:
        return False
    per_prompt = graded.groupby("prompt_id")["model"].nunique()
    complete = (per_prompt >= len(candidates)).any() if len(candidates) > 1 else False
    return bool(not complete and per_prompt.median() <= 1)


def routing_texts(frame: pd.DataFrame, prompt_ids: Sequence[str], source: str) -> list[str]:
    """The routing text of each prompt id (first row of the prompt in ``frame``)."""
    firsts = frame.drop_duplicates("prompt_id").set_index("prompt_id")
    texts = []
    for pid in prompt_ids:
        row = firsts.loc[pid]
        prompt = row.get("prompt")
        prompt = prompt if isinstance(prompt, str) else None
        texts.append(routing_text(prompt, row.get("messages"), source=source))
    return texts


def _request_contexts(frame: pd.DataFrame, prompt_ids: Sequence[str]) -> list[RequestContext]:
    """Each prompt id's request context (task, team, depth), from its first row."""
    return request_contexts(
        frame.drop_duplicates("prompt_id").set_index("prompt_id").loc[prompt_ids]
    )


def value_sweep(cost_usd: np.ndarray, n: int = CURVE_POINTS) -> np.ndarray:
    """``value_usd`` values from "cheapest" to "most likely", from the logged costs.

    As :func:`training.evaluation.curves.value_grid`: 0, then ``n`` geometric steps
    from ``min positive cost * 1e-2`` to ``max cost * 1e4``.
    """
    positive = cost_usd[cost_usd > 0]
    low, high = (
        (float(positive.min()) * 1e-2, float(positive.max()) * 1e4)
        if positive.size
        else (1e-6, 1.0)
    )
    return np.concatenate([[0.0], np.geomspace(low, high, n)])


def off_policy_section(
    served: ServedPolicy,
    frame: pd.DataFrame,
    *,
    exploration: Exploration | None = None,
    n_bootstrap: int = 1000,
    alpha: float = 0.05,
    clip: float | None = None,
    random_state: int = 0,
    curve_points: int = CURVE_POINTS,
    features_cache: dict | None = None,
    compare: Sequence[Bundle] = (),
    value_usd: float | None = None,
) -> tuple[OffPolicySection, int, int]:
    """Estimate the served policy on the graded calls of ``frame``.

    Parameters
    ----------
    served : ServedPolicy
        The bundle as served, over the evaluated candidates.
    frame : pandas.DataFrame
        Call-log rows from :func:`features.call_log.read_call_logs`.
    exploration : Exploration, optional
        Evaluate the exploring policy (``serving.policy.action_distribution``) instead
        of the greedy one.
    n_bootstrap : int, default=1000
        Resamples of the intervals at the default knobs (the curve uses at most
        ``CURVE_BOOTSTRAP``).
    alpha : float, default=0.05
        ``1 - alpha`` intervals.
    clip : float, optional
        Clip importance weights at this value (IPS, SNIPS, DR, ESS).
    random_state : int, default=0
    curve_points : int, default=16
    features_cache : dict, optional
        Feature matrices by :attr:`ServedPolicy.feature_key`, shared with other bundles.
    compare : sequence of Bundle, optional
        Bundles (the champion) to compare with on the same calls: each adds an
        :class:`OffPolicyComparison` (this bundle minus that one), served over its
        candidates the log can evaluate, with the same ``exploration``.
    value_usd : float, optional
        Value of one good outcome for the comparisons' net value. Default: each
        compared bundle's own manifest ``value_usd`` (the champion's view of a call's
        worth).

    Returns
    -------
    section : OffPolicySection
    n_prompts : int
        Distinct prompts of the used calls.
    n_ungraded : int
        Calls left out for lack of an outcome (pending) or a cost.

    Raises
    ------
    ValueError
        If no call has both an outcome and a cost.
    """
    usable = frame["outcome"].notna() & frame["cost_usd"].notna()
    rows = frame[usable].reset_index(drop=True)
    n_ungraded = int((~usable).sum())
    if rows.empty:
        raise ValueError(
            "No logged call has both an outcome and a cost, so no policy value can be "
            "estimated; grade the calls (`outcome-router grade`) or give --prices."
        )
    candidates = list(served.candidates)
    others = sorted(set(rows["model"].astype(str)) - set(candidates))
    actions = (*candidates, *others)
    index = {name: i for i, name in enumerate(actions)}
    action = rows["model"].astype(str).map(index).to_numpy(dtype=np.int64)
    n, k, n_actions = len(rows), len(candidates), len(actions)

    prompt_ids = rows["prompt_id"].astype(str)
    unique_ids = list(dict.fromkeys(prompt_ids))
    texts = routing_texts(rows, unique_ids, served.bundle.feature_spec.text_source)
    key = served.feature_key
    cache = features_cache if features_cache is not None else {}
    if key not in cache:
        cache[key] = served.featurize(texts, _request_contexts(rows, unique_ids))
    position = {pid: i for i, pid in enumerate(unique_ids)}
    features = cache[key][prompt_ids.map(position).to_numpy()]
    p, c = served.score(features)

    warnings: list[str] = []
    pi_b_hat = fit_logging_policy(features, action, n_actions).action_dist
    logged = (
        rows["propensity"] if "propensity" in rows.columns else pd.Series(np.nan, index=rows.index)
    )
    if logged.notna().all():
        pscore = logged.to_numpy(dtype=np.float64)
        source = "logged"
    else:
        pscore = pi_b_hat[np.arange(n), action]
        source = "estimated"
        missing = int(logged.isna().sum())
        warnings.append(
            f"{missing} of {n} calls carry no propensity, so the logging policy was "
            "estimated (multinomial logistic regression of the logged model on the prompt "
            "features, clipped at 0.01): IPS, SNIPS and DR are only as right as that model."
        )

    def extend(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a, np.zeros((n, n_actions - k))], axis=1) if others else a

    feedback = BanditFeedback(
        n_rounds=n,
        n_actions=n_actions,
        action=action,
        reward=rows["outcome"].to_numpy(dtype=np.float64),
        cost_usd=rows["cost_usd"].to_numpy(dtype=np.float64),
        pscore=pscore,
        estimated_reward=extend(p),
        estimated_cost_usd=extend(c),
        action_names=actions,
    )
    lambda_ = np.inf if clip is None else float(clip)
    ope = OffPolicyEvaluation(
        feedback,
        tuple(ESTIMATORS),
        lambda_=lambda_,
        n_bootstrap=n_bootstrap,
        alpha=alpha,
        random_state=random_state,
    )
    params = served.params

    def policy_dist(knobs: PolicyParams) -> np.ndarray:
        return extend(action_distribution(p, c, knobs, exploration))

    dist = policy_dist(params)
    default = ope.estimate(dist)
    curve_ope = OffPolicyEvaluation(
        feedback,
        tuple(ESTIMATORS),
        lambda_=lambda_,
        n_bootstrap=min(n_bootstrap, CURVE_BOOTSTRAP),
        alpha=alpha,
        random_state=random_state,
    )
    curve = []
    for value in value_sweep(feedback.cost_usd, curve_points):
        est = curve_ope.estimate(policy_dist(dataclasses.replace(params, value_usd=float(value))))
        curve.append(OffPolicyPoint(float(value), est.ess, est.estimators))

    counts = np.bincount(action, minlength=n_actions)
    logged_calls = {name: int(counts[i]) for i, name in enumerate(actions)}
    share = dist.mean(axis=0)
    policy_share = {name: float(share[i]) for i, name in enumerate(candidates)}
    for i, name in enumerate(candidates):
        if share[i] >= 0.01 and counts[i] < MIN_LOGGED_CALLS:
            warnings.append(
                f"The bundle sends {share[i]:.0%} of prompts to {name}, which the logs tried "
                f"{counts[i]} times (< {MIN_LOGGED_CALLS}): its estimates there rest on few "
                "calls (IPS/SNIPS) or on the bundle's own predictions (DM)."
            )
    low_support = float((dist * (pi_b_hat < LOW_PROPENSITY)).sum(axis=1).mean())
    if low_support >= LOW_SUPPORT_WARN:
        warnings.append(
            f"{low_support:.0%} of the bundle's choices go to a model the logging policy "
            f"(estimated) gave less than {LOW_PROPENSITY:.0%} on that prompt: importance "
            "weights are large there and IPS/SNIPS/DR intervals are wide; prefer logs with "
            "exploration."
        )
    if default.ess < max(30.0, 0.1 * n):
        warnings.append(
            f"Effective sample size {default.ess:.1f} of {n} calls: the logs rarely made the "
            "bundle's choices, so the importance-weighted estimates rest on few calls."
        )
    if n_ungraded:
        warnings.append(
            f"{n_ungraded} calls without an outcome (pending) or a cost were left out: if "
            "they differ from the graded ones (e.g. slow merges), the estimates lean "
            "toward the graded calls."
        )
    if others:
        warnings.append(
            f"{int(counts[k:].sum())} calls went to models that are not evaluated candidates "
            f"({', '.join(others)}): they count with weight 0 (the policy never picks them)."
        )
    section = OffPolicySection(
        n=n,
        ess=default.ess,
        propensity_source=source,
        estimators=default.estimators,
        curve=tuple(curve),
        warnings=tuple(warnings),
        policy={
            "value_usd": params.value_usd,
            "min_success": params.min_success,
            "max_cost_usd": params.max_cost_usd,
            "exploration": exploration.describe() if exploration is not None else None,
        },
        actions=actions,
        logged_calls=logged_calls,
        policy_share=policy_share,
        low_support_share=low_support,
        low_propensity=LOW_PROPENSITY,
        n_bootstrap=n_bootstrap,
        alpha=alpha,
        clip=clip,
        default_estimator=DEFAULT_ESTIMATOR[source],
        comparisons=tuple(
            _paired_comparison(
                other,
                rows,
                unique_ids,
                prompt_ids,
                cache,
                feedback,
                dist,
                exploration=exploration,
                comparison=PairedComparison(
                    make_estimator(DEFAULT_ESTIMATOR[source], lambda_=lambda_),
                    n_bootstrap=n_bootstrap,
                    alpha=alpha,
                    random_state=random_state,
                ),
                value_usd=value_usd,
            )
            for other in compare
        ),
    )
    return section, len(unique_ids), n_ungraded


def _paired_comparison(
    other: Bundle,
    rows: pd.DataFrame,
    unique_ids: list[str],
    prompt_ids: pd.Series,
    cache: dict,
    feedback: BanditFeedback,
    dist: np.ndarray,
    *,
    exploration: Exploration | None,
    comparison: PairedComparison,
    value_usd: float | None,
) -> OffPolicyComparison:
    """The evaluated policy ``dist`` minus ``other`` served on the same calls.

    ``other`` routes between its candidates that are actions of the log (the evaluated
    candidates and the logged models): a candidate never logged and not evaluated has
    no outcome to weigh, so, as `/route` with ``candidates``, it is left out and the
    note says so. Its own ``p_success`` and ``expected_cost_usd`` are its DR regression.
    """
    actions = feedback.action_names or ()
    index = {name: i for i, name in enumerate(actions)}
    shared = [name for name in other.candidate_names if name in index]
    if not shared:
        raise ValueError(
            f"Compared bundle {other.path} routes between {list(other.candidate_names)}, none "
            f"of which the log can evaluate (its models and candidates: {list(actions)})."
        )
    served = ServedPolicy(other, shared)
    key = served.feature_key
    if key not in cache:
        cache[key] = served.featurize(
            routing_texts(rows, unique_ids, other.feature_spec.text_source),
            _request_contexts(rows, unique_ids),
        )
    position = {pid: i for i, pid in enumerate(unique_ids)}
    p, c = served.score(cache[key][prompt_ids.map(position).to_numpy()])
    cols = [index[name] for name in served.candidates]
    n, n_actions = feedback.n_rounds, feedback.n_actions
    other_dist = np.zeros((n, n_actions))
    other_dist[:, cols] = action_distribution(p, c, served.params, exploration)
    q, cost = np.zeros((n, n_actions)), np.zeros((n, n_actions))
    q[:, cols], cost[:, cols] = p, c
    other_feedback = dataclasses.replace(feedback, estimated_reward=q, estimated_cost_usd=cost)
    value = served.params.value_usd if value_usd is None else float(value_usd)
    difference = comparison.estimate_difference(
        dist, other_dist, feedback, other_feedback, value_usd=value
    )
    left_out = [name for name in other.candidate_names if name not in index]
    note = (
        f"routes between {len(shared)} of its {len(other.candidate_names)} candidates: the "
        f"log never tried {', '.join(left_out)}"
        if left_out
        else ""
    )
    return OffPolicyComparison(
        label=bundle_label(other),
        bundle=str(other.path),
        router_version=other.router_version,
        note=note,
        difference=difference,
    )
