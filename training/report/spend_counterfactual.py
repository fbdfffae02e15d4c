"""``report spend --bundle``: what that router would have spent and achieved on the
same traffic, estimated off-policy.

It is the estimate `outcome-router evaluate` makes on gateway logs
(:func:`training.evaluation.off_policy.off_policy_section`: the bundle as served by
:class:`~training.evaluation.served.ServedPolicy`, DM/IPS/SNIPS/DR with bootstrap
intervals, logged propensities or the logging policy fitted by
:func:`training.propensity.fit_logging_policy`), quoted with the estimator
`evaluate`'s headline quotes (DR with logged propensities, SNIPS with estimated ones).
Its per-call means are then scaled to the traffic: the router's spend is the
estimated mean cost per call times the calls of the report, and the logged side is
scaled the same way (the logged mean cost of the calls used times the calls), so the
two spends compare like with like.

Only calls with a prompt (the router reads it), an outcome and a cost can be used;
the others are left out and counted. When the logs cannot support an estimate (no
graded call, a single model tried), the result carries a warning and null estimates
instead of failing the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serving.bundle import Bundle, load_bundle
from training.evaluation.off_policy import is_partial_feedback, off_policy_section
from training.evaluation.served import ServedPolicy


@dataclass(frozen=True)
class SpendCounterfactual:
    """The router's spend and quality on the report's traffic, with intervals.

    Attributes
    ----------
    bundle, router_version : str
    estimator : str or None
        The off-policy estimator quoted (``dr`` or ``snips``); None without estimate.
    calls : int
        Calls the estimate used (prompt, outcome and cost known).
    traffic_calls : int
        Calls of the report; the per-call means are scaled to these.
    left_out : dict of str to int
        Calls left out, by reason (``no_prompt``, ``no_outcome``, ``no_cost``; a call
        missing several counts under the first).
    logged_quality, logged_cost_per_call_usd : float or None
        Mean outcome and cost of the calls used.
    quality, cost_per_call_usd : dict or None
        ``{"estimate", "low", "high"}`` of the router, per call.
    ess : float or None
        Effective sample size of the importance weights.
    propensity_source : str or None
        ``logged`` or ``estimated``.
    alpha : float
        The intervals are ``1 - alpha``.
    warnings : list of str
    """

    bundle: str
    router_version: str
    estimator: str | None
    calls: int
    traffic_calls: int
    left_out: dict[str, int]
    logged_quality: float | None
    logged_cost_per_call_usd: float | None
    quality: dict[str, float | None] | None = None
    cost_per_call_usd: dict[str, float | None] | None = None
    ess: float | None = None
    propensity_source: str | None = None
    alpha: float = 0.05
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """``spend.json``'s ``counterfactual``."""
        scale = self.traffic_calls

        def scaled(interval: dict[str, float | None] | None) -> dict[str, float | None] | None:
            if interval is None:
                return None
            return {k: None if v is None else v * scale for k, v in interval.items()}

        logged_cost = self.logged_cost_per_call_usd
        return {
            "bundle": self.bundle,
            "router_version": self.router_version,
            "estimator": self.estimator,
            "calls": self.calls,
            "traffic_calls": self.traffic_calls,
            "left_out": dict(self.left_out),
            "logged": {
                "quality": self.logged_quality,
                "spend_usd": None if logged_cost is None else logged_cost * scale,
                "cost_per_call_usd": logged_cost,
            },
            "router": {
                "quality": self.quality,
                "spend_usd": scaled(self.cost_per_call_usd),
                "cost_per_call_usd": self.cost_per_call_usd,
            },
            "ess": self.ess,
            "propensity_source": self.propensity_source,
            "confidence": 1 - self.alpha,
            "warnings": list(self.warnings),
        }


def _has_prompt(frame: pd.DataFrame) -> pd.Series:
    prompt = frame["prompt"] if "prompt" in frame else pd.Series(None, index=frame.index)
    messages = frame["messages"] if "messages" in frame else pd.Series(None, index=frame.index)
    text = prompt.map(lambda p: isinstance(p, str) and p != "")
    chat = messages.map(lambda m: isinstance(m, list | np.ndarray) and len(m) > 0)
    return text | chat


def _interval(value, bounds: tuple[float, float] = (-np.inf, np.inf)) -> dict[str, float | None]:
    """An estimate and its interval for spend.json, clipped to ``bounds``: DR and IPS
    can step outside the range of what they estimate (a quality of 1.07) when the
    weights are large, and a bill-payer should read the range the number lives in."""

    def number(x: float) -> float | None:
        return float(np.clip(x, *bounds)) if x is not None and np.isfinite(x) else None

    return {
        "estimate": number(value.estimate),
        "low": number(value.low),
        "high": number(value.high),
    }


def estimate_counterfactual(
    bundle: Bundle | str | Path,
    frame: pd.DataFrame,
    *,
    n_bootstrap: int = 1000,
    alpha: float = 0.05,
    random_state: int = 0,
) -> SpendCounterfactual:
    """Estimate the bundle's quality and spend on the traffic of ``frame``.

    Parameters
    ----------
    bundle : Bundle, str or Path
        A loaded bundle, or its folder (verified by :func:`serving.bundle.load_bundle`).
    frame : DataFrame, shape (n_calls, n_columns)
        The report's calls (`features.call_log.read_call_logs`, graded or not).
    n_bootstrap : int, default=1000
        Bootstrap resamples of the intervals.
    alpha : float, default=0.05
    random_state : int, default=0

    Returns
    -------
    SpendCounterfactual
        With null estimates and a warning where the logs cannot support one.
    """
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    served = ServedPolicy(bundle)
    prompt = _has_prompt(frame)
    graded = frame["outcome"].notna()
    priced = frame["cost_usd"].notna()
    left_out = {
        "no_prompt": int((~prompt).sum()),
        "no_outcome": int((prompt & ~graded).sum()),
        "no_cost": int((prompt & graded & ~priced).sum()),
    }
    rows = frame[prompt & graded & priced].reset_index(drop=True)
    base = {
        "bundle": str(bundle.path),
        "router_version": bundle.router_version,
        "traffic_calls": len(frame),
        "left_out": left_out,
        "calls": len(rows),
        "logged_quality": float(rows["outcome"].mean()) if len(rows) else None,
        "logged_cost_per_call_usd": float(rows["cost_usd"].mean()) if len(rows) else None,
        "alpha": alpha,
    }
    warnings = []
    if left_out["no_prompt"]:
        warnings.append(
            f"{left_out['no_prompt']} calls carry no prompt (the router reads it to decide), "
            "so they are left out of the estimate."
        )
    if left_out["no_outcome"]:
        warnings.append(
            f"{left_out['no_outcome']} calls have no outcome yet (pending or not graded: "
            "give --events) and are left out; if they differ from the graded ones, the "
            "estimate leans toward the graded calls."
        )
    if left_out["no_cost"]:
        warnings.append(
            f"{left_out['no_cost']} graded calls have no cost (no tokens, or a model the "
            "price catalog lacks: give --prices) and are left out."
        )
    if rows.empty:
        warnings.append(
            "No call has a prompt, an outcome and a cost, so what the router would have "
            "spent and achieved cannot be estimated: grade the calls (--events) first."
        )
        return SpendCounterfactual(estimator=None, warnings=warnings, **base)
    models = sorted(set(rows["model"].astype(str)))
    if len(models) < 2:
        warnings.append(
            f"Every usable call went to one model ({models[0]}): the logs say nothing about "
            "how the router's other choices would have done, so no estimate is given. "
            "Logs with several models (exploration) are needed."
        )
        return SpendCounterfactual(estimator=None, warnings=warnings, **base)
    if not is_partial_feedback(rows, served.candidates):
        warnings.append(
            "Several models answered the same prompts (a full-information table rather "
            "than traffic): the estimate treats each call as traffic; `outcome-router "
            "evaluate` scores such a table exactly."
        )
    try:
        section, _, _ = off_policy_section(
            served,
            rows,
            n_bootstrap=n_bootstrap,
            alpha=alpha,
            random_state=random_state,
            curve_points=0,
        )
    except ValueError as exc:  # the logs cannot support it: say so, keep the report
        warnings.append(f"The off-policy estimate failed on these calls: {exc}")
        return SpendCounterfactual(estimator=None, warnings=warnings, **base)
    estimate = section.estimators[section.default_estimator]
    return SpendCounterfactual(
        estimator=section.default_estimator,
        quality=_interval(estimate.quality, (0.0, 1.0)),
        cost_per_call_usd=_interval(estimate.cost_usd, (0.0, np.inf)),
        ess=float(section.ess),
        propensity_source=section.propensity_source,
        warnings=[*warnings, *section.warnings],
        **base,
    )
