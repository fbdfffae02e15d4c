"""Set the bundle's default policy from cross-validated predictions.

`train --target` says what the default decision should achieve; this module finds
the ``value_usd`` that achieves it on out-of-fold predictions and attaches a
bootstrap confidence interval, so the people who switch the router on know what to
expect and how sure that is. Per-request knobs (``value_usd``, ``min_success``,
``max_cost_usd``) still override the default.

Two kinds of logs, two ways to measure a policy:

- full information (every candidate answered every prompt): the policy's quality and
  cost are read off the table (:func:`fit_policy_target`);
- bandit logs (one call per prompt, chosen by a logging policy): only the chosen
  model's outcome is known, so the policy's quality and cost, and every single
  model's, are off-policy estimates with the estimator ``evaluate`` quotes
  (:data:`training.evaluation.off_policy.DEFAULT_ESTIMATOR`: DR with logged
  propensities, SNIPS with estimated ones) (:func:`fit_policy_target_off_policy`).

Targets:

- ``parity``: the least mean cost whose quality reaches the best single model's;
- ``budget:USD``: the highest quality whose mean cost per request is at most USD;
- ``floor:Q``: the least mean cost whose quality is at least Q.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from serving.policy import PolicyParams, action_distribution
from training.evaluation import (
    QUALITY_TOL,
    FullInfoLog,
    best_single,
    router_choice,
    router_curve,
    value_grid,
)
from training.evaluation.off_policy import DEFAULT_ESTIMATOR, value_sweep
from training.off_policy import BanditFeedback, OffPolicyEvaluation, make_estimator

KINDS = ("parity", "budget", "floor")
#: Geometric steps of the ``value_usd`` grid searched on bandit logs (besides 0).
OFF_POLICY_GRID_POINTS = 64
#: Below this effective sample size (and 10% of the rounds) the estimate rests on too
#: few calls to say whether the target is met (the threshold ``evaluate`` warns at).
MIN_ESS = 30.0
#: A quality interval wider than this (95%, in outcome units) cannot tell a policy at
#: the target from one 5 points off it either way: the fit is flagged inconclusive.
MAX_QUALITY_CI_WIDTH = 0.10


@dataclass(frozen=True)
class PolicyTarget:
    """A parsed ``--target``: kind and, for budget and floor, its number."""

    kind: str
    amount: float | None = None

    @classmethod
    def parse(cls, text: str) -> PolicyTarget:
        """Parse ``parity``, ``budget:0.05`` or ``floor:0.6``."""
        kind, _, amount = text.partition(":")
        if kind not in KINDS:
            raise ValueError(
                f"Unknown target {text!r}; expected parity, budget:USD or floor:QUALITY."
            )
        if kind == "parity":
            if amount:
                raise ValueError(f"The parity target takes no number, got {text!r}.")
            return cls(kind)
        try:
            number = float(amount)
        except ValueError:
            raise ValueError(f"Target {text!r} needs a number after the colon.") from None
        if kind == "budget" and not number > 0:
            raise ValueError(f"A budget must be a positive USD amount, got {number}.")
        if kind == "floor" and not 0 < number <= 1:
            raise ValueError(f"A quality floor must be in (0, 1], got {number}.")
        return cls(kind, number)

    def __str__(self) -> str:
        return self.kind if self.amount is None else f"{self.kind}:{self.amount:g}"


#: Below this many prompts (or calls) per half, the target is chosen and estimated on
#: the same rows: a half this small cannot choose a ``value_usd`` worth estimating.
MIN_HALF = 20


def selection_halves(n: int, seed: int) -> np.ndarray | None:
    """A random half/half split of ``n`` rows (fold 0 or 1 per row), or None if a half
    would have fewer than `MIN_HALF` rows.

    The target chooses ``value_usd`` as the best point of a noisy curve, so the curve's
    value at that point is biased upwards (the winner's curse). Choosing on one half
    and estimating on the other, both ways round, estimates what the choice will give
    on prompts it has not seen: the honest figure quoted beside the served value.
    """
    if n < 2 * MIN_HALF:
        return None
    fold = np.zeros(n, dtype=np.int64)
    fold[np.random.default_rng(seed).permutation(n)[: n // 2]] = 1
    return fold


#: Random halvings of the prompts the full-information estimate averages over
#: (`fit_policy_target`): one halving's choice of ``value_usd`` and of the best single
#: model is one draw of a noisy selection, and an interval that keeps it fixed misses
#: that noise (benchmarks/quality_splits.py measured the coverage).
N_HALVINGS = 20
#: Reference margins (`serving.policy.PolicyParams.reference_margin`) searched with
#: ``value_usd`` on full-information logs: 0 is the plain argmax; 1 keeps the
#: reference unless another candidate is also cheaper and not predicted worse,
#: i.e. "call the best single model" when no cheaper route reaches the target.
REFERENCE_MARGINS = (0.0, 0.02, 0.05, 0.1, 0.2, 1.0)


def fit_policy_target(
    target: PolicyTarget,
    log: FullInfoLog,
    p_success: np.ndarray,
    expected_cost_usd: np.ndarray,
    *,
    n_bootstrap: int = 500,
    n_halvings: int = N_HALVINGS,
    margins: tuple[float, ...] = REFERENCE_MARGINS,
    seed: int = 0,
) -> dict[str, Any]:
    """Find the default ``value_usd`` (and reference margin) for ``target`` and an
    honest estimate of it.

    The served ``value_usd`` is chosen on all prompts. The quoted quality, cost and
    savings are cross-fitted (`selection_halves`): the value chosen on one half is
    applied to the other half, against the single model that the first half calls
    best, both ways round. That is what the choice will give on unseen prompts (if
    anything, a little less than the value chosen on all prompts will), where the
    in-sample figures, kept under ``in_sample``, are optimistic.

    Which ``value_usd`` and which best single model a half chooses is itself noisy
    (several models of near-equal quality, a flat curve), and a test split sees one
    draw of that noise. So the cross-fitting is repeated on ``n_halvings`` random
    halvings: the figures are their means, and every bootstrap draw takes one
    halving at random and resamples the prompts, so the intervals carry the noise of
    the choice as well as that of the prompts.

    The search is over ``value_usd`` and the reference margin together
    (`serving.policy.PolicyParams.reference_margin`, the reference being the best
    single model): with margin 0 the policy takes the argmax over noisy estimates,
    which on unseen prompts favours whichever candidate looks lucky; a margin leaves
    the reference only on clearer evidence, and margin 1 amounts to calling the
    reference unless a cheaper route reaches the target.

    Parameters
    ----------
    target : PolicyTarget
    log : FullInfoLog
        Logged truth of the prompts the predictions are for.
    p_success, expected_cost_usd : ndarray of shape (n_prompts, n_candidates)
        Out-of-fold predictions.
    n_bootstrap : int
        Prompt resamples for the 95% intervals.
    n_halvings : int, default=20
        Random halvings cross-fitted (1: a single halving, seeded by ``seed``).
    margins : tuple of float, default=REFERENCE_MARGINS
        Reference margins searched; ``(0.0,)`` searches ``value_usd`` alone.
    seed : int, default=0
        Seeds the halves and the bootstrap.

    Returns
    -------
    dict
        ``value_usd``, ``met`` (whether the target was reached on all prompts), the
        cross-fitted ``quality``, ``cost_usd`` and ``savings_vs_best_single``, the best
        single model, ``ci95`` of quality, cost, savings against the best single
        model's cost and the quality gap to it (paired prompt resamples of the
        cross-fitted choices, over the halvings), ``selection`` ("cross_fitted", or
        "in_sample" when the log is too small to halve), ``n_halvings`` and
        ``in_sample`` (the same figures read at the chosen point of the curve of all
        prompts).
    """
    if n_halvings < 1:
        raise ValueError(f"n_halvings must be >= 1, got {n_halvings}.")
    values = value_grid(log)
    chosen = _choose_on_table(target, log, p_success, expected_cost_usd, values, margins)
    rows = np.arange(log.n_prompts)
    crossed = []  # (action, best_action) per halving
    for h in range(n_halvings):
        fold = selection_halves(log.n_prompts, seed + h)
        if fold is None:
            break
        action = np.empty(log.n_prompts, dtype=np.int64)
        best_action = np.empty(log.n_prompts, dtype=np.int64)
        for held_out in (0, 1):
            held, rest = fold == held_out, fold != held_out
            other = _choose_on_table(
                target, log.subset(rest), p_success[rest], expected_cost_usd[rest], values, margins
            )
            action[held] = router_choice(
                log.subset(held),
                p_success[held],
                expected_cost_usd[held],
                other["value_usd"],
                reference=log.candidates.index(other["best"].name),
                reference_margin=other["reference_margin"],
            )
            best_action[held] = log.candidates.index(other["best"].name)
        crossed.append((action, best_action))
    if not crossed:
        action = router_choice(
            log,
            p_success,
            expected_cost_usd,
            chosen["value_usd"],
            reference=log.candidates.index(chosen["best"].name),
            reference_margin=chosen["reference_margin"],
        )
        best_action = np.full(log.n_prompts, log.candidates.index(chosen["best"].name))
        crossed.append((action, best_action))
    per_halving = [
        (
            log.outcome[rows, action],
            log.cost_usd[rows, action],
            log.outcome[rows, best_action],
            log.cost_usd[rows, best_action],
        )
        for action, best_action in crossed
    ]
    rng = np.random.default_rng(seed)
    draws = {"quality": [], "cost_usd": [], "savings_vs_best_single": [], "quality_gap": []}
    for _ in range(n_bootstrap):
        outcome, cost, best_outcome, best_cost = per_halving[rng.integers(len(per_halving))]
        idx = rng.integers(0, log.n_prompts, size=log.n_prompts)
        q, c = outcome[idx].mean(), cost[idx].mean()
        bq, bc = best_outcome[idx].mean(), best_cost[idx].mean()
        draws["quality"].append(q)
        draws["cost_usd"].append(c)
        draws["savings_vs_best_single"].append(1 - c / bc if bc > 0 else 0.0)
        draws["quality_gap"].append(q - bq)
    quality = float(np.mean([h[0].mean() for h in per_halving]))
    cost_usd = float(np.mean([h[1].mean() for h in per_halving]))
    savings = float(np.mean([_savings(h[1].mean(), h[3].mean()) for h in per_halving]))
    best = chosen["best"]
    ci95 = {
        name: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]
        for name, v in draws.items()
    }
    in_sample = len(crossed) == 1 and selection_halves(log.n_prompts, seed) is None
    warnings = [_IN_SAMPLE_WARNING] if in_sample else []
    warnings += _held_out_shortfall(target, chosen["met"], ci95)
    return {
        "target": str(target),
        "value_usd": chosen["value_usd"],
        "reference_margin": chosen["reference_margin"],
        "met": chosen["met"],
        "selection": "in_sample" if in_sample else "cross_fitted",
        "n_halvings": 0 if in_sample else len(crossed),
        "quality": quality,
        "cost_usd": cost_usd,
        "savings_vs_best_single": savings,
        "best_single": {"name": best.name, "quality": best.quality, "cost_usd": best.cost_usd},
        "share": chosen["share"],
        "n_prompts": log.n_prompts,
        "ci95": ci95,
        "in_sample": {
            "quality": chosen["quality"],
            "cost_usd": chosen["cost_usd"],
            "savings_vs_best_single": _savings(chosen["cost_usd"], best.cost_usd),
        },
        "warnings": warnings,
    }


_IN_SAMPLE_WARNING = (
    "the target's value_usd is chosen and estimated on the same prompts (too few to halve, "
    "or a half of them cannot estimate every candidate): the estimate leans high."
)


def _held_out_shortfall(
    target: PolicyTarget, met: bool, ci95: dict[str, list[float | None]]
) -> list[str]:
    """A warning when the target is met on all prompts but the held-out interval says
    the choice misses it on prompts it was not chosen on (the winner's curse)."""
    if not met:
        return []
    if target.kind == "budget":
        low = ci95["cost_usd"][0]
        missed = low is not None and low > target.amount
        what = f"its cost interval starts at ${low:.4g}, above the budget" if missed else ""
    elif target.kind == "floor":
        high = ci95["quality"][1]
        missed = high is not None and high < target.amount
        what = f"its quality interval ends at {high:.3f}, below the floor" if missed else ""
    else:
        high = ci95["quality_gap"][1]
        missed = high is not None and high < 0
        what = (
            f"its quality gap to the best single model is below 0 (interval ends at {high:.3f})"
            if missed
            else ""
        )
    if not missed:
        return []
    return [
        f"target {target} is met on all prompts, but not on held-out halves: {what}. "
        "Expect less than the target on new traffic; set a stricter target or log more."
    ]


def _choose_on_table(
    target: PolicyTarget,
    log: FullInfoLog,
    p_success: np.ndarray,
    expected_cost_usd: np.ndarray,
    values: np.ndarray,
    margins: tuple[float, ...] = (0.0,),
) -> dict[str, Any]:
    """The point of the ``values`` x ``margins`` grid that meets ``target`` on
    ``log``'s prompts (the reference is ``log``'s best single model)."""
    best = best_single(log)
    reference = log.candidates.index(best.name)
    curve, margin_of = [], []
    for margin in margins:
        points = router_curve(
            log,
            p_success,
            expected_cost_usd,
            values,
            reference=reference,
            reference_margin=margin,
        )
        curve += points
        margin_of += [margin] * len(points)
    quality = np.array([pt.quality for pt in curve])
    cost = np.array([pt.cost_usd for pt in curve])
    pick, met = _pick(target, quality, cost, best.quality)
    return {
        "value_usd": float(curve[pick].value_usd),
        "reference_margin": float(margin_of[pick]),
        "met": met,
        "quality": float(quality[pick]),
        "cost_usd": float(cost[pick]),
        "share": curve[pick].share,
        "best": best,
    }


def _savings(cost: float, best_cost: float) -> float:
    return float(1 - cost / best_cost) if best_cost > 0 else 0.0


def fit_policy_target_off_policy(
    target: PolicyTarget,
    feedback: BanditFeedback,
    *,
    propensity_source: str,
    n_bootstrap: int = 500,
    alpha: float = 0.05,
    seed: int = 0,
    grid_points: int = OFF_POLICY_GRID_POINTS,
) -> dict[str, Any]:
    """Find the default ``value_usd`` for ``target`` on a bandit log, off-policy.

    For every ``value_usd`` of a grid the policy's decisions on the logged prompts
    (from the out-of-fold predictions in ``feedback.estimated_reward`` and
    ``feedback.estimated_cost_usd``) are estimated for quality and cost with the
    estimator ``evaluate`` quotes for this propensity source; each single model is
    estimated the same way as a constant policy, and the best of them (highest
    estimated quality, ties to the cheaper) is the parity level and the savings
    baseline. The target picks ``value_usd`` on the point estimates as
    :func:`fit_policy_target` does on the table, on all calls: that is the served
    value. The quoted estimates are cross-fitted as there (`selection_halves`): each
    half of the calls estimates the policy, and the best single model, that the other
    half chose, because estimates read at the point chosen on the same calls lean high.

    Parameters
    ----------
    target : PolicyTarget
    feedback : BanditFeedback
        One round per graded, costed call; ``estimated_reward`` and
        ``estimated_cost_usd`` are the out-of-fold predictions (calibrated) of the
        round's prompt. They are both what the policy decides on and DR's regression,
        as in ``evaluate``.
    propensity_source : {"logged", "estimated"}
        Where ``feedback.pscore`` came from; chooses the estimator.
    n_bootstrap : int, default=500
        Resamples of the rounds for the intervals.
    alpha : float, default=0.05
    seed : int, default=0
        Seeds the halves and the bootstrap.
    grid_points : int, default=64
        Geometric steps of the ``value_usd`` grid (`value_sweep`).

    Returns
    -------
    dict
        As :func:`fit_policy_target` (``value_usd``, ``met``, ``selection``,
        ``quality``, ``cost_usd``, ``savings_vs_best_single``, ``best_single``,
        ``share``, ``ci95``, ``in_sample``), plus ``method`` ("off_policy"),
        ``estimator``, ``propensity_source``, ``n_rounds``, ``ess``, ``conclusive`` and
        ``warnings`` (target not met; interval too wide or ESS too small to say).
        ``best_single`` (chosen on all calls) carries its own ``quality_ci`` and
        ``cost_usd_ci``. The savings and quality-gap intervals resample the same rounds
        for the policy and the best single model (paired).
    """
    if feedback.estimated_reward is None or feedback.estimated_cost_usd is None:
        raise ValueError("feedback needs the predictions: estimated_reward and estimated_cost_usd.")
    if propensity_source not in DEFAULT_ESTIMATOR:
        raise ValueError(
            f"propensity_source must be one of {sorted(DEFAULT_ESTIMATOR)}, "
            f"got {propensity_source!r}."
        )
    name = DEFAULT_ESTIMATOR[propensity_source]
    estimator = make_estimator(name)
    p, c = feedback.estimated_reward, feedback.estimated_cost_usd
    n, k = feedback.n_rounds, feedback.n_actions
    values = value_sweep(feedback.cost_usd, grid_points)
    chosen = _choose_off_policy(target, feedback, estimator, values)
    if chosen is None:
        raise ValueError("No candidate was logged often enough to estimate it as a single model.")

    warnings = []
    dist, best_dist = _crossed_policies(target, feedback, estimator, values, seed)
    selection = "cross_fitted"
    if dist is None:
        selection = "in_sample"
        dist = action_distribution(p, c, PolicyParams(chosen["value_usd"]))
        best_dist = _constant_policy(n, k, chosen["best_action"])
        warnings.append(_IN_SAMPLE_WARNING)
    ope = OffPolicyEvaluation(
        feedback, (name,), n_bootstrap=n_bootstrap, alpha=alpha, random_state=seed
    )
    crossed = ope.estimate(dist)
    result = crossed.estimators[name]
    crossed_best = ope.estimate(best_dist).estimators[name]
    single = ope.estimate(_constant_policy(n, k, chosen["best_action"])).estimators[name]
    savings, gap = _paired_intervals(
        estimator, feedback, dist, best_dist, n_bootstrap=n_bootstrap, alpha=alpha, seed=seed
    )
    q_ci = [result.quality.low, result.quality.high]
    if not chosen["met"]:
        warnings.append(
            f"target {target} cannot be met on the off-policy estimates: the closest "
            "point is used ("
            + ("the cheapest" if target.kind == "budget" else "the best")
            + " estimated policy)."
        )
    min_ess = max(MIN_ESS, 0.1 * n)
    few_calls = crossed.ess < min_ess
    too_wide = not np.all(np.isfinite(q_ci)) or q_ci[1] - q_ci[0] > MAX_QUALITY_CI_WIDTH
    if few_calls:
        warnings.append(
            f"effective sample size {crossed.ess:.1f} of {n} logged calls (< {min_ess:.0f}): "
            "the logs rarely made this policy's choices, so the estimate rests on few calls."
        )
    if too_wide:
        warnings.append(
            f"the 95% interval of the quality, {q_ci[0]:.3f} to {q_ci[1]:.3f}, is wider than "
            f"{MAX_QUALITY_CI_WIDTH:g}: too wide to say whether the target is met; log more "
            "calls (or more exploration)."
        )
    ci95 = {
        "quality": _interval(*q_ci),
        "cost_usd": _interval(result.cost_usd.low, result.cost_usd.high),
        "savings_vs_best_single": _interval(*savings),
        "quality_gap": _interval(*gap),
    }
    warnings += _held_out_shortfall(target, chosen["met"], ci95)
    share = chosen["dist"].mean(axis=0)
    return {
        "target": str(target),
        "method": "off_policy",
        "estimator": name,
        "propensity_source": propensity_source,
        "value_usd": chosen["value_usd"],
        "met": chosen["met"],
        "selection": selection,
        "conclusive": not (few_calls or too_wide),
        "quality": float(result.quality.estimate),
        "cost_usd": float(result.cost_usd.estimate),
        "savings_vs_best_single": _savings(
            result.cost_usd.estimate, crossed_best.cost_usd.estimate
        ),
        "best_single": {
            "name": _action_name(feedback, chosen["best_action"]),
            "quality": chosen["best_quality"],
            "cost_usd": chosen["best_cost_usd"],
            "quality_ci": _interval(single.quality.low, single.quality.high),
            "cost_usd_ci": _interval(single.cost_usd.low, single.cost_usd.high),
        },
        "share": {_action_name(feedback, a): float(share[a]) for a in range(k)},
        "n_rounds": n,
        "ess": float(crossed.ess),
        "ci95": ci95,
        "in_sample": {
            "quality": chosen["quality"],
            "cost_usd": chosen["cost_usd"],
            "savings_vs_best_single": _savings(chosen["cost_usd"], chosen["best_cost_usd"]),
        },
        "warnings": warnings,
    }


def _constant_policy(n: int, k: int, action: int) -> np.ndarray:
    dist = np.zeros((n, k))
    dist[:, action] = 1.0
    return dist


def _choose_off_policy(
    target: PolicyTarget, feedback: BanditFeedback, estimator, values: np.ndarray
) -> dict[str, Any] | None:
    """The grid point of ``values`` that meets ``target`` on ``feedback``'s estimates,
    and the best single model there; None if no single model can be estimated."""
    n, k = feedback.n_rounds, feedback.n_actions
    p, c = feedback.estimated_reward, feedback.estimated_cost_usd

    def point(dist: np.ndarray) -> tuple[float, float]:
        return (
            estimator.estimate_policy_value(dist, **feedback.quality_inputs()),
            estimator.estimate_policy_value(dist, **feedback.cost_inputs()),
        )

    singles = [(a, *point(_constant_policy(n, k, a))) for a in range(k)]
    finite = [s for s in singles if np.isfinite(s[1]) and np.isfinite(s[2])]
    if not finite:
        return None
    top = max(s[1] for s in finite)
    best_a, best_q, best_c = min(
        (s for s in finite if s[1] >= top - QUALITY_TOL), key=lambda s: s[2]
    )
    dists = [action_distribution(p, c, PolicyParams(float(v))) for v in values]
    estimates = np.array([point(d) for d in dists])
    quality = np.where(np.isfinite(estimates[:, 0]), estimates[:, 0], -np.inf)
    cost = np.where(np.isfinite(estimates[:, 1]), estimates[:, 1], np.inf)
    pick, met = _pick(target, quality, cost, best_q)
    return {
        "value_usd": float(values[pick]),
        "met": met,
        "quality": float(quality[pick]),
        "cost_usd": float(cost[pick]),
        "dist": dists[pick],
        "best_action": int(best_a),
        "best_quality": float(best_q),
        "best_cost_usd": float(best_c),
    }


def _crossed_policies(
    target: PolicyTarget, feedback: BanditFeedback, estimator, values: np.ndarray, seed: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per round, the policy and the best single model chosen on the other half of the
    calls (`selection_halves`); (None, None) if the log cannot be halved."""
    n, k = feedback.n_rounds, feedback.n_actions
    fold = selection_halves(n, seed)
    if fold is None:
        return None, None
    p, c = feedback.estimated_reward, feedback.estimated_cost_usd
    dist, best_dist = np.zeros((n, k)), np.zeros((n, k))
    for held_out in (0, 1):
        held = fold == held_out
        other = _choose_off_policy(target, feedback.take(fold != held_out), estimator, values)
        if other is None:
            return None, None
        dist[held] = action_distribution(p[held], c[held], PolicyParams(other["value_usd"]))
        best_dist[held, other["best_action"]] = 1.0
    return dist, best_dist


def _interval(low: float, high: float) -> list[float | None]:
    """An interval for the manifest's JSON: an undefined bound (e.g. SNIPS when no
    logged call agrees with the policy) is null, not NaN."""
    return [float(v) if np.isfinite(v) else None for v in (low, high)]


def _action_name(feedback: BanditFeedback, a: int) -> str:
    return feedback.action_names[a] if feedback.action_names is not None else str(a)


def _paired_intervals(
    estimator,
    feedback: BanditFeedback,
    dist: np.ndarray,
    baseline: np.ndarray,
    *,
    n_bootstrap: int,
    alpha: float,
    seed: int,
) -> tuple[list[float], list[float]]:
    """Bootstrap intervals of the savings (``1 - cost / baseline cost``) and the quality
    gap (``quality - baseline quality``), resampling the same rounds for both policies.

    Resampling the two policies separately would treat them as independent, while
    on one log they share every round: the paired interval is the narrower, right one.
    The per-round terms are the estimator's own (`BaseOffPolicyEstimator`), so the
    estimator is the one quoted for quality and cost.
    """
    terms = {
        (which, what): estimator._checked_terms(
            d,
            inputs["action"],
            inputs["reward"],
            inputs["pscore"],
            inputs["estimated_rewards_by_reg_model"],
        )
        for which, d in (("policy", dist), ("baseline", baseline))
        for what, inputs in (
            ("quality", feedback.quality_inputs()),
            ("cost", feedback.cost_inputs()),
        )
    }
    rng = np.random.default_rng(seed)
    n = feedback.n_rounds
    savings, gaps = [], []
    for _ in range(n_bootstrap):
        idx = rng.integers(0, n, size=n)
        value = {}
        for key, (num, den) in terms.items():
            total = den[idx].sum()
            value[key] = num[idx].sum() / total if total > 0 else np.nan
        base_cost = value[("baseline", "cost")]
        savings.append(1 - value[("policy", "cost")] / base_cost if base_cost > 0 else np.nan)
        gaps.append(value[("policy", "quality")] - value[("baseline", "quality")])
    bounds = [100 * alpha / 2, 100 * (1 - alpha / 2)]

    def interval(draws: list[float]) -> list[float]:
        draws = np.asarray(draws, dtype=np.float64)
        if np.isnan(draws).all():
            return [float("nan"), float("nan")]
        return [float(v) for v in np.nanpercentile(draws, bounds)]

    return interval(savings), interval(gaps)


def _pick(
    target: PolicyTarget, quality: np.ndarray, cost: np.ndarray, best_quality: float
) -> tuple[int, bool]:
    """The grid point meeting ``target`` and whether any did.

    Budget: the best quality at mean cost within the budget (else the cheapest
    point); parity and floor: the least cost at quality reaching the best single
    model's or the floor (else the most accurate point).
    """
    if target.kind == "budget":
        feasible = cost <= target.amount * (1 + 1e-12)
        pick = _best(feasible, key=(-quality, cost)) if feasible.any() else int(np.argmin(cost))
    else:
        floor = best_quality if target.kind == "parity" else target.amount
        feasible = quality >= floor - QUALITY_TOL
        pick = _best(feasible, key=(cost, -quality)) if feasible.any() else int(np.argmax(quality))
    return pick, bool(feasible.any())


def _best(feasible: np.ndarray, key: tuple[np.ndarray, np.ndarray]) -> int:
    """Index of the feasible point with the smallest ``key`` (lexicographic)."""
    index = np.flatnonzero(feasible)
    order = np.lexsort((key[1][index], key[0][index]))
    return int(index[order[0]])
