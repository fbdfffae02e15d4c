"""The offline evaluation report: ``metrics.json`` and a self-contained ``report.html``.

The page is one file (inline CSS, the plots as base64 PNGs) so it can be attached to an
MLflow run, mailed or opened from a CI artifact without a server. The plots live in
:mod:`~training.report.plots`, the page in :mod:`~training.report.page`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from training.evaluation.results import BanditEvaluation, Evaluation
from training.evaluation.summary import Summary
from training.report.page import ReportView, render_html
from training.report.plots import (
    CostQuality,
    Curves,
    calibration_png,
    cost_quality_figure,
    pair_png,
    png,
)

__all__ = ["CostQuality", "Curves", "cost_quality_figure", "write_report"]


def write_report(
    result: Evaluation | BanditEvaluation | Summary,
    out_dir: str | Path,
    title: str = "outcome-router evaluation",
    extra_curves: Curves | None = None,
) -> Path:
    """Write ``out_dir/metrics.json`` (``result.to_dict()``) and ``out_dir/report.html``.

    Parameters
    ----------
    result : Evaluation or Summary
        From :func:`training.evaluation.run.evaluate` (a bundle, with its label and
        compared bundles; a :class:`BanditEvaluation` on partial-feedback logs) or
        :func:`training.evaluation.summarize` (any predictions).
    out_dir : str or Path
        Created if missing; both files are overwritten.
    title : str, default="outcome-router evaluation"
    extra_curves : mapping of str to sequence of points, optional
        Other curves to draw for comparison (e.g. a baseline router), each a sequence
        of points with ``cost_usd`` and ``quality`` (e.g. ``Point``, ``CurvePoint``).
        Compared bundles of an ``Evaluation`` are drawn without being passed here.

    Returns
    -------
    path : Path
        The HTML report.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # allow_nan=False: a NaN would make the file invalid JSON for strict readers.
    metrics = json.dumps(result.to_dict(), indent=2, allow_nan=False)
    (out / "metrics.json").write_text(metrics + "\n")
    if isinstance(result, BanditEvaluation):
        from training.report.off_policy import render_bandit_html

        path = out / "report.html"
        path.write_text(render_bandit_html(result, title), encoding="utf-8")
        return path
    if isinstance(result, Evaluation):
        view = ReportView(result.summary, result.label, result.router_version, result.comparisons)
    else:
        view = ReportView(result)
    s = view.summary
    curves: dict[str, Sequence[CostQuality]] = dict(extra_curves or {})
    for comp in view.comparisons:
        curves.setdefault(comp.label, comp.summary.router_curve)
    images = {"cost_quality": png(cost_quality_figure(s, curves, title, view.label))}
    if s.pairs:
        images["pair"] = pair_png(s, view.label, view.comparisons)
    if s.calibration:
        images["calibration"] = calibration_png(s.calibration)
    path = out / "report.html"
    path.write_text(render_html(view, title, images, curves), encoding="utf-8")
    return path
