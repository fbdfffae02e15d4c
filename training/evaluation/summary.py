"""The summary of a router on a full-information log: its headline figures, the
baselines that need no learning, RouteLLM's pair figures and calibration, as one typed
:class:`Summary` whose :meth:`Summary.to_dict` is what ``metrics.json`` holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from serving.policy import PolicyParams
from training.evaluation.curves import (
    CurveFigures,
    CurvePoint,
    Point,
    area_bounds,
    baseline_points,
    best_single,
    cheapest_single,
    check_predictions,
    choice_curve_point,
    curve_figures,
    envelope_area,
    oracle_curve,
    oracle_point,
    router_choice,
    single_model_points,
)
from training.evaluation.log import FullInfoLog
from training.evaluation.pairs import PairMetrics, default_pair, order_pair, pair_metrics
from training.evaluation.reliability import CalibrationReport, calibration_report


@dataclass(frozen=True)
class TableRow:
    """One router, baseline, single model or the oracle in the comparison table.

    Parameters
    ----------
    name : str
    kind : {"router", "baseline", "single", "oracle"}
    quality, cost_usd : float or None
        A router's are its default point's (None without one).
    figures : CurveFigures
        Over the row's points (a router's whole curve, one point otherwise).
    apgr : float or None
        On the default pair; the oracle's is the perfect predictor's.
    model : str or None
        The model a baseline calls (``strongest`` is the best single model...).
    """

    name: str
    kind: str
    quality: float | None
    cost_usd: float | None
    figures: CurveFigures
    apgr: float | None = None
    model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Flat, as in ``metrics.json``: ``{name, kind, [model,] quality, cost_usd,
        savings_at_parity, ..., area, apgr}``."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.model is not None:
            out["model"] = self.model
        out.update(quality=self.quality, cost_usd=self.cost_usd, **self.figures.to_dict())
        out["apgr"] = self.apgr
        return out


@dataclass(frozen=True)
class ModelShare:
    """One candidate at the default policy: its share of prompts and how they went.

    ``quality`` and ``cost_usd`` are means over the prompts routed to it (None if none);
    ``single_quality`` and ``single_cost_usd`` its means over every prompt.
    """

    model: str
    share: float
    n: int
    quality: float | None
    cost_usd: float | None
    single_quality: float
    single_cost_usd: float


@dataclass(frozen=True)
class SegmentRow:
    """One value of a segment (e.g. ``task == "django"``): its size, best single model,
    oracle and the router's choice at the default policy."""

    value: str
    n: int
    best_single: Point
    oracle: Point
    router: CurvePoint

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "n": self.n,
            "best_single": self.best_single.to_dict(),
            "oracle": self.oracle.to_dict(),
            "router": self.router.to_dict(),
        }


@dataclass(frozen=True)
class Summary:
    """Headline figures of a router against single models, baselines and the oracle.

    Built by :func:`summarize`, which documents each figure. Sections that need the
    default policy (``default_point``, ``model_share``, ``segments``) or the router's
    predictions (``default_pair``, ``pairs``, ``oracle_pairs``, ``apgr``, ``cpt_50``,
    ``cpt_80``, ``calibration``) are None without them, and left out of
    :meth:`to_dict`.
    """

    n_prompts: int
    candidates: tuple[str, ...]
    single_models: tuple[Point, ...]
    best_single: Point
    cheapest_single: Point
    oracle: Point
    router_curve: tuple[CurvePoint, ...]
    figures: CurveFigures
    area_single_models: float
    area_cost_range: tuple[float, float]
    area_oracle: float
    oracle_curve: tuple[CurvePoint, ...]
    baselines: dict[str, TableRow]
    table: tuple[TableRow, ...]
    default_point: CurvePoint | None = None
    model_share: tuple[ModelShare, ...] | None = None
    segments: dict[str, tuple[SegmentRow, ...]] | None = None
    default_pair: tuple[str, str] | None = None
    pairs: tuple[PairMetrics, ...] | None = None
    oracle_pairs: tuple[PairMetrics, ...] | None = None
    calibration: CalibrationReport | None = None

    # The headline figures, by the names metrics.json and the README use.
    @property
    def savings_at_parity(self) -> float | None:
        return self.figures.savings_at_parity

    @property
    def savings_at_95(self) -> float | None:
        return self.figures.savings_at_95

    @property
    def quality_at_quarter_cost(self) -> float | None:
        return self.figures.quality_at_quarter_cost

    @property
    def quality_at_quarter_cost_fraction(self) -> float | None:
        return self.figures.quality_at_quarter_cost_fraction

    @property
    def area(self) -> float:
        return self.figures.area

    @property
    def router_row(self) -> TableRow:
        """The router's own row of :attr:`table` (its first)."""
        return self.table[0]

    @property
    def apgr(self) -> float | None:
        """APGR of the default pair (None without predictions or a pair)."""
        return self.pairs[0].apgr if self.pairs and self.default_pair else None

    @property
    def cpt_50(self) -> float | None:
        return self.pairs[0].cpt_50 if self.pairs and self.default_pair else None

    @property
    def cpt_80(self) -> float | None:
        return self.pairs[0].cpt_80 if self.pairs and self.default_pair else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable (no NaN; missing figures are None), as in ``metrics.json``."""
        out: dict[str, Any] = {
            "n_prompts": self.n_prompts,
            "candidates": list(self.candidates),
            "single_models": [p.to_dict() for p in self.single_models],
            "best_single": self.best_single.to_dict(),
            "cheapest_single": self.cheapest_single.to_dict(),
            "oracle": self.oracle.to_dict(),
            "router_curve": [p.to_dict() for p in self.router_curve],
            **self.figures.to_dict(),
            "area_single_models": self.area_single_models,
            "area_cost_range": [float(x) for x in self.area_cost_range],
            "area_oracle": self.area_oracle,
            "oracle_curve": [p.to_dict(share=False) for p in self.oracle_curve],
            "baselines": {key: row.to_dict() for key, row in self.baselines.items()},
        }
        if self.default_point is not None:
            out["default_point"] = self.default_point.to_dict()
            out["model_share"] = [asdict(r) for r in self.model_share or ()]
        if self.segments is not None:
            out["segments"] = {
                key: [r.to_dict() for r in rows] for key, rows in self.segments.items()
            }
        if self.pairs is not None:
            out["default_pair"] = list(self.default_pair) if self.default_pair else None
            out["pairs"] = [p.to_dict() for p in self.pairs]
            out["oracle_pairs"] = [p.to_dict(curve=False) for p in self.oracle_pairs or ()]
            out.update(apgr=self.apgr, cpt_50=self.cpt_50, cpt_80=self.cpt_80)
        if self.calibration is not None:
            out["calibration"] = self.calibration.to_dict()
        out["table"] = [row.to_dict() for row in self.table]
        return out


def summarize(
    log: FullInfoLog,
    curve: Sequence[CurvePoint],
    *,
    policy: PolicyParams | None = None,
    p_success: np.ndarray | None = None,
    expected_cost_usd: np.ndarray | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    n_calibration_bins: int = 10,
    name: str = "router",
) -> Summary:
    """Headline figures of a router against single models, baselines and the oracle.

    All figures are per prompt and computed from the logged truth. ``B`` is
    :func:`~training.evaluation.curves.best_single` (quality ``q_B``, cost ``c_B``);
    ``(c_k, q_k)`` are the router's curve points.

    Parameters
    ----------
    log : FullInfoLog
    curve : sequence of CurvePoint
        From :func:`~training.evaluation.curves.router_curve` on the same ``log``.
    policy : PolicyParams, optional
        The policy the router would be served with (the bundle's defaults); its point
        (and, if ``log.segments`` is set, a per-segment breakdown) is reported. Needs
        ``p_success`` and ``expected_cost_usd``.
    p_success, expected_cost_usd : ndarray of float, shape (n_prompts, n_candidates), optional
        The router's predictions. With them the summary also holds the two-model
        figures (``pairs``) and the calibration.
    pairs : sequence of (str, str), optional
        Extra model pairs for :func:`~training.evaluation.pairs.pair_metrics`, each
        ordered by :func:`~training.evaluation.pairs.order_pair`. The pair (cheapest
        single, best single) is always included first.
    n_calibration_bins : int, default=10
    name : str, default="router"
        Name of the router's row in ``table``.

    Returns
    -------
    summary : Summary
        - ``single_models``, ``best_single``, ``cheapest_single``, ``oracle``: points;
        - ``router_curve``: the given curve;
        - ``savings_at_parity = 1 - min{c_k : q_k >= q_B} / c_B`` (None if unreached);
        - ``savings_at_95 = 1 - min{c_k : q_k >= 0.95 q_B} / c_B`` (None if unreached);
        - ``quality_at_quarter_cost = max{q_k : c_k <= 0.25 c_B}`` (None if no such
          point) and ``quality_at_quarter_cost_fraction`` = that ``/ q_B``;
        - ``area``: :func:`~training.evaluation.curves.envelope_area` of the router's
          points between the cheapest and the dearest single model's cost;
          ``area_single_models``: the same for the single-model points (no router: the
          best single model one can afford); ``area_cost_range``: those two costs;
        - ``baselines``: ``{random, cheapest, strongest}`` rows;
        - ``oracle_curve`` (the policy fed the logged truth) and ``area_oracle``;
        - ``table``: one row per router, baseline, single model and the oracle (the
          router's quality and cost are its default point's, if any; the oracle's APGR
          is the perfect predictor's on the default pair);
        - with ``policy``: ``default_point``, ``model_share`` and ``segments``;
        - with predictions: ``default_pair`` (``(weak, strong)`` or None), ``pairs``,
          ``apgr``, ``cpt_50``, ``cpt_80`` (of the default pair, None without one),
          ``oracle_pairs`` (the perfect predictor's) and ``calibration``.
    """
    if not curve:
        raise ValueError("Expected a router curve with at least one point, got none.")
    if policy is not None and (p_success is None or expected_cost_usd is None):
        raise ValueError(
            "A default policy needs the router's predictions: pass p_success and "
            "expected_cost_usd of shape (n_prompts, n_candidates)."
        )
    singles = single_model_points(log)
    best = best_single(log)
    cost_range = area_bounds(singles)
    low, high = cost_range
    figures = curve_figures(
        [p.cost_usd for p in curve], [p.quality for p in curve], best, cost_range
    )
    oracle = oracle_curve(log)
    o_costs = np.array([p.cost_usd for p in oracle])
    o_quals = np.array([p.quality for p in oracle])
    s_costs = np.array([p.cost_usd for p in singles])
    s_quals = np.array([p.quality for p in singles])

    def one_point(point: Point) -> CurveFigures:
        return curve_figures([point.cost_usd], [point.quality], best, cost_range)

    baselines = {
        key: TableRow(
            name=key,
            kind="baseline",
            model=point.name,
            quality=point.quality,
            cost_usd=point.cost_usd,
            figures=one_point(point),
        )
        for key, point in baseline_points(log).items()
    }

    default_point = model_share = segments = None
    if policy is not None:
        action = router_choice(
            log,
            p_success,
            expected_cost_usd,
            policy.value_usd,
            min_success=policy.min_success,
            max_cost_usd=policy.max_cost_usd,
            reference=policy.reference,
            reference_margin=policy.reference_margin,
        )
        default_point = choice_curve_point(log, action, policy.value_usd)
        model_share = _model_share(log, action)
        if log.segments:
            segments = _segment_table(log, action, policy.value_usd)

    chosen = metrics = oracle_metrics = calibration = None
    if p_success is not None and expected_cost_usd is not None:
        p, c = check_predictions(log, p_success, expected_cost_usd)
        chosen = default_pair(log)
        wanted: list[tuple[str, str]] = [chosen] if chosen else []
        for a, b in pairs or ():
            pair = order_pair(log, a, b)
            if pair not in wanted:
                wanted.append(pair)
        metrics = tuple(pair_metrics(log, p, c, w, s) for w, s in wanted)
        oracle_metrics = tuple(
            pair_metrics(log, log.outcome, log.cost_usd, w, s) for w, s in wanted
        )
        calibration = calibration_report(log, p, n_calibration_bins)

    router_row = TableRow(
        name=name,
        kind="router",
        quality=default_point.quality if default_point else None,
        cost_usd=default_point.cost_usd if default_point else None,
        figures=figures,
        apgr=metrics[0].apgr if metrics and chosen else None,
    )
    best_oracle = oracle_point(log)
    oracle_row = TableRow(
        name="oracle",
        kind="oracle",
        quality=best_oracle.quality,
        cost_usd=best_oracle.cost_usd,
        figures=curve_figures(o_costs, o_quals, best, cost_range),
        apgr=oracle_metrics[0].apgr if oracle_metrics and chosen else None,
    )
    single_rows = [
        TableRow(
            name=p.name, kind="single", quality=p.quality, cost_usd=p.cost_usd, figures=one_point(p)
        )
        for p in singles
    ]
    return Summary(
        n_prompts=log.n_prompts,
        candidates=log.candidates,
        single_models=tuple(singles),
        best_single=best,
        cheapest_single=cheapest_single(log),
        oracle=best_oracle,
        router_curve=tuple(curve),
        figures=figures,
        area_single_models=envelope_area(s_costs, s_quals, low, high),
        area_cost_range=(float(low), float(high)),
        area_oracle=envelope_area(o_costs, o_quals, low, high),
        oracle_curve=tuple(oracle),
        baselines=baselines,
        table=(router_row, *baselines.values(), *single_rows, oracle_row),
        default_point=default_point,
        model_share=model_share,
        segments=segments,
        default_pair=chosen,
        pairs=metrics,
        oracle_pairs=oracle_metrics,
        calibration=calibration,
    )


def _model_share(log: FullInfoLog, action: np.ndarray) -> tuple[ModelShare, ...]:
    """Per candidate: share of prompts routed to it and how those calls went."""
    rows = []
    for k, name in enumerate(log.candidates):
        mask = action == k
        n = int(mask.sum())
        rows.append(
            ModelShare(
                model=name,
                share=n / log.n_prompts,
                n=n,
                quality=float(log.outcome[mask, k].mean()) if n else None,
                cost_usd=float(log.cost_usd[mask, k].mean()) if n else None,
                single_quality=float(log.outcome[:, k].mean()),
                single_cost_usd=float(log.cost_usd[:, k].mean()),
            )
        )
    return tuple(rows)


def _segment_table(
    log: FullInfoLog, action: np.ndarray, value_usd: float
) -> dict[str, tuple[SegmentRow, ...]]:
    """Per segment value: size, best single model, oracle and the router's choice."""
    table: dict[str, tuple[SegmentRow, ...]] = {}
    for key, tags in log.segments.items():
        rows = []
        for tag in sorted(np.unique(tags).tolist()):
            mask = tags == tag
            sub = log.subset(mask)
            rows.append(
                SegmentRow(
                    value=tag,
                    n=int(mask.sum()),
                    best_single=best_single(sub),
                    oracle=oracle_point(sub),
                    router=choice_curve_point(sub, action[mask], value_usd),
                )
            )
        table[key] = tuple(rows)
    return table
