"""Set the bundle's default policy from cross-validated predictions.

`train --target` says what the default decision should achieve; this module finds
the ``value_usd`` that achieves it on out-of-fold predictions of the full-information
prompts and attaches a bootstrap confidence interval, so the people who switch the
router on know what to expect and how sure that is. Per-request knobs
(``value_usd``, ``min_success``, ``max_cost_usd``) still override the default.

Targets:

- ``parity``: the least mean cost whose quality reaches the best single model's;
- ``budget:USD``: the highest quality whose mean cost per request is at most USD;
- ``floor:Q``: the least mean cost whose quality is at least Q.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from training.evaluation import (
    QUALITY_TOL,
    FullInfoLog,
    best_single,
    router_choice,
    router_curve,
    value_grid,
)

KINDS = ("parity", "budget", "floor")


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


def fit_policy_target(
    target: PolicyTarget,
    log: FullInfoLog,
    p_success: np.ndarray,
    expected_cost_usd: np.ndarray,
    *,
    n_bootstrap: int = 500,
    seed: int = 0,
) -> dict[str, Any]:
    """Find the default ``value_usd`` for ``target`` and its bootstrap interval.

    Parameters
    ----------
    target : PolicyTarget
    log : FullInfoLog
        Logged truth of the prompts the predictions are for.
    p_success, expected_cost_usd : ndarray of shape (n_prompts, n_candidates)
        Out-of-fold predictions.
    n_bootstrap : int
        Prompt resamples for the 95% intervals.

    Returns
    -------
    dict
        ``value_usd``, ``met`` (whether the target was reached), the point's
        ``quality`` and ``cost_usd``, the best single model, and ``ci95`` of quality,
        cost, savings against the best single model's cost and the quality gap to it.
        The interval holds ``value_usd`` fixed (it is what will be served) and
        resamples prompts; it does not include the optimism of choosing the value on
        these same prompts.
    """
    values = value_grid(log)
    curve = router_curve(log, p_success, expected_cost_usd, values)
    best = best_single(log)
    quality = np.array([pt.quality for pt in curve])
    cost = np.array([pt.cost_usd for pt in curve])
    if target.kind == "budget":
        feasible = cost <= target.amount * (1 + 1e-12)
        pick = _best(feasible, key=(-quality, cost)) if feasible.any() else int(np.argmin(cost))
    else:
        floor = best.quality if target.kind == "parity" else target.amount
        feasible = quality >= floor - QUALITY_TOL
        pick = _best(feasible, key=(cost, -quality)) if feasible.any() else int(np.argmax(quality))
    value = float(values[pick])
    action = router_choice(log, p_success, expected_cost_usd, value)
    rows = np.arange(log.n_prompts)
    chosen_outcome = log.outcome[rows, action]
    chosen_cost = log.cost_usd[rows, action]
    best_k = log.candidates.index(best.name)
    rng = np.random.default_rng(seed)
    draws = {"quality": [], "cost_usd": [], "savings_vs_best_single": [], "quality_gap": []}
    for _ in range(n_bootstrap):
        idx = rng.integers(0, log.n_prompts, size=log.n_prompts)
        q, c = chosen_outcome[idx].mean(), chosen_cost[idx].mean()
        bq, bc = log.outcome[idx, best_k].mean(), log.cost_usd[idx, best_k].mean()
        draws["quality"].append(q)
        draws["cost_usd"].append(c)
        draws["savings_vs_best_single"].append(1 - c / bc if bc > 0 else 0.0)
        draws["quality_gap"].append(q - bq)
    return {
        "target": str(target),
        "value_usd": value,
        "met": bool(feasible.any()),
        "quality": float(quality[pick]),
        "cost_usd": float(cost[pick]),
        "savings_vs_best_single": float(1 - cost[pick] / best.cost_usd) if best.cost_usd else 0.0,
        "best_single": {"name": best.name, "quality": best.quality, "cost_usd": best.cost_usd},
        "share": curve[pick].share,
        "n_prompts": log.n_prompts,
        "ci95": {
            name: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]
            for name, v in draws.items()
        },
    }


def _best(feasible: np.ndarray, key: tuple[np.ndarray, np.ndarray]) -> int:
    """Index of the feasible point with the smallest ``key`` (lexicographic)."""
    index = np.flatnonzero(feasible)
    order = np.lexsort((key[1][index], key[0][index]))
    return int(index[order[0]])
