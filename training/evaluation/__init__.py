"""Offline evaluation of a router on full-information logs.

A full-information log knows, for every prompt, the graded outcome and the cost of
*every* candidate, so any routing decision is scored exactly. The package is split by
concern:

- :mod:`~training.evaluation.log`: :class:`FullInfoLog`, the per-prompt truth;
- :mod:`~training.evaluation.curves`: points, the router's curve, envelope area, savings;
- :mod:`~training.evaluation.pairs`: RouteLLM's two-model APGR and CPT;
- :mod:`~training.evaluation.reliability`: calibration of ``p_success``;
- :mod:`~training.evaluation.summary`: :func:`summarize` into a typed :class:`Summary`;
- :mod:`~training.evaluation.served`: :class:`ServedPolicy`, a bundle deciding as
  `/route` does;
- :mod:`~training.evaluation.off_policy`: the served policy estimated off-policy on
  partial-feedback logs (DM, IPS, SNIPS, DR from :mod:`training.off_policy`);
- :mod:`~training.evaluation.run`: the ``evaluate`` command (bundle + logs -> report).

Every decision goes through :func:`serving.policy.choose`, the function `/route` serves,
so what is evaluated is exactly what is served.
"""

from training.evaluation.curves import (
    CurveFigures,
    CurvePoint,
    Point,
    baseline_points,
    best_single,
    cheapest_single,
    curve_figures,
    envelope_area,
    envelope_quality,
    oracle_choice,
    oracle_curve,
    oracle_point,
    random_point,
    router_choice,
    router_curve,
    router_point,
    single_model_points,
    value_grid,
)
from training.evaluation.log import FRAME_COLUMNS, QUALITY_TOL, SEGMENT_COLUMNS, FullInfoLog
from training.evaluation.pairs import (
    PairMetrics,
    PairPoint,
    default_pair,
    order_pair,
    pair_curve,
    pair_metrics,
    pair_values,
)
from training.evaluation.reliability import (
    CalibrationReport,
    Reliability,
    ReliabilityBin,
    calibration_report,
    reliability,
)
from training.evaluation.summary import ModelShare, SegmentRow, Summary, TableRow, summarize

__all__ = [
    "FRAME_COLUMNS",
    "QUALITY_TOL",
    "SEGMENT_COLUMNS",
    "CalibrationReport",
    "CurveFigures",
    "CurvePoint",
    "FullInfoLog",
    "ModelShare",
    "PairMetrics",
    "PairPoint",
    "Point",
    "Reliability",
    "ReliabilityBin",
    "SegmentRow",
    "Summary",
    "TableRow",
    "baseline_points",
    "best_single",
    "calibration_report",
    "cheapest_single",
    "curve_figures",
    "default_pair",
    "envelope_area",
    "envelope_quality",
    "oracle_choice",
    "oracle_curve",
    "oracle_point",
    "order_pair",
    "pair_curve",
    "pair_metrics",
    "pair_values",
    "random_point",
    "reliability",
    "router_choice",
    "router_curve",
    "router_point",
    "single_model_points",
    "summarize",
    "value_grid",
]
