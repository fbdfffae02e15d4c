"""The report's plots, drawn on matplotlib's Agg canvas and returned as PNG bytes.

No pyplot state is touched, so drawing a report never changes the caller's figures
(a notebook's, for one), and matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Protocol

from training.evaluation.pairs import PairPoint
from training.evaluation.reliability import CalibrationReport
from training.evaluation.results import Comparison
from training.evaluation.summary import Summary


class CostQuality(Protocol):
    """Anything with a mean cost and quality per prompt (a point of any curve)."""

    @property
    def cost_usd(self) -> float: ...

    @property
    def quality(self) -> float: ...


#: Named curves to draw, e.g. compared routers: name -> points.
Curves = Mapping[str, Sequence[CostQuality]]

PALETTE = ["#8250df", "#bf3989", "#1a7f37", "#bc4c00", "#57606a", "#cf222e", "#0550ae"]
#: Above this many candidates, only the notable single models are labelled on the plot.
_MAX_LABELLED = 12


def _q(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _figure(width: float = 9, height: float = 5.5):
    """A Figure on the Agg canvas: no global pyplot state leaks into the caller."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def png(fig) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _envelope(points: Sequence[CostQuality]) -> tuple[list[float], list[float]]:
    """Costs and running-max qualities of the points with cost > 0, sorted by cost."""
    pts = sorted((p for p in points if p.cost_usd > 0), key=lambda p: (p.cost_usd, p.quality))
    costs, env, best = [], [], -math.inf
    for p in pts:
        best = max(best, p.quality)
        costs.append(p.cost_usd)
        env.append(best)
    return costs, env


def cost_quality_figure(
    summary: Summary,
    extra_curves: Curves | None = None,
    title: str = "",
    label: str = "router",
):
    """The cost-quality plot as a ``matplotlib.figure.Figure`` (Agg canvas).

    Draws the router's envelope and points, every curve of ``extra_curves`` (compared
    routers), the oracle curve, the single models, the baselines random / cheapest /
    strongest, the oracle point and the served point; each has a legend entry.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    extra_curves = extra_curves or {}
    fig = _figure(11, 5.8)
    ax = fig.add_subplot(1, 1, 1)

    oracle_costs, oracle_env = _envelope(summary.oracle_curve)
    if oracle_costs:
        ax.step(
            oracle_costs,
            oracle_env,
            where="post",
            color="#d4a72c",
            lw=1.5,
            ls="--",
            label="oracle curve",
        )

    costs, env = _envelope(summary.router_curve)
    if costs:
        ax.step(costs, env, where="post", color="#0969da", lw=2.2, label=f"{label} (envelope)")
        pts = [p for p in summary.router_curve if p.cost_usd > 0]
        ax.plot(
            [p.cost_usd for p in pts],
            [p.quality for p in pts],
            "o",
            color="#0969da",
            ms=3.5,
            alpha=0.5,
        )

    for i, (name, pts_) in enumerate(extra_curves.items()):
        c_, e_ = _envelope(pts_)
        if c_:
            ax.step(
                c_,
                e_,
                where="post",
                color=PALETTE[i % len(PALETTE)],
                lw=1.4,
                ls="-.",
                label=name,
            )

    singles = summary.single_models
    notable = {summary.best_single.name, summary.cheapest_single.name}
    for p in singles:
        if p.cost_usd <= 0:
            continue
        ax.plot(p.cost_usd, p.quality, "s", color="#24292f", ms=6)
        if len(singles) <= _MAX_LABELLED or p.name in notable:
            ax.annotate(
                p.name,
                (p.cost_usd, p.quality),
                textcoords="offset points",
                xytext=(6, 4),
                fontsize=7,
            )
    ax.plot([], [], "s", color="#24292f", label="single models")

    base = summary.baselines
    rnd = base.get("random")
    if rnd and rnd.cost_usd > 0:
        ax.plot(rnd.cost_usd, rnd.quality, "X", color="#cf222e", ms=10, label="random (expected)")
    for key, marker, color in (("cheapest", "v", "#1a7f37"), ("strongest", "^", "#8250df")):
        b = base.get(key)
        if b and b.cost_usd > 0:
            ax.plot(
                b.cost_usd,
                b.quality,
                marker,
                ms=12,
                mfc="none",
                mew=2,
                color=color,
                label=f"{key}: {b.model}",
            )

    oracle = summary.oracle
    if oracle.cost_usd > 0:
        ax.plot(
            oracle.cost_usd,
            oracle.quality,
            "*",
            color="#d4a72c",
            ms=16,
            markeredgecolor="#24292f",
            label="oracle",
        )

    default = summary.default_point
    if default and default.cost_usd > 0:
        ax.plot(
            default.cost_usd,
            default.quality,
            "o",
            ms=13,
            mfc="none",
            mew=2,
            color="#0969da",
            label=f"served (value ${default.value_usd:.3g})",
        )

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"${x:.3g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.08, y=0.06)
    ax.set_xlabel("mean cost per prompt (USD, log scale)")
    ax.set_ylabel("mean quality per prompt")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, framealpha=0.9)
    return fig


def pair_png(summary: Summary, label: str, comparisons: Sequence[Comparison] = ()) -> bytes:
    """RouteLLM's view of the first pair: quality against the share of strong calls."""
    pair = summary.pairs[0]
    fig = _figure(7.5, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    q_w, q_s = pair.weak_quality, pair.strong_quality
    ax.axhline(q_w, color="#57606a", ls=":", lw=1, label=f"weak: {pair.weak}")
    ax.axhline(q_s, color="#cf222e", ls=":", lw=1, label=f"strong: {pair.strong}")
    ax.plot([0, 100], [q_w, q_s], "--", color="#8c959f", lw=1, label="random mix (APGR 0.5)")

    def draw(curve: Sequence[PairPoint], name: str, color: str, lw: float) -> None:
        best: dict[float, float] = {0.0: q_w, 1.0: q_s}
        for p in curve:
            best[p.strong_share] = max(best.get(p.strong_share, -math.inf), p.quality)
        xs = sorted(best)
        ax.plot(
            [100 * x for x in xs],
            [best[x] for x in xs],
            "-o",
            ms=2.5,
            lw=lw,
            color=color,
            label=name,
        )

    draw(pair.curve, f"{label} (APGR {_q(pair.apgr)})", "#0969da", 2.0)
    for i, comp in enumerate(comparisons):
        same = [
            p for p in comp.summary.pairs or () if (p.weak, p.strong) == (pair.weak, pair.strong)
        ]
        if same:
            draw(
                same[0].curve,
                f"{comp.label} (APGR {_q(same[0].apgr)})",
                PALETTE[i % len(PALETTE)],
                1.2,
            )
    ax.set_xlabel("calls to the strong model (%)")
    ax.set_ylabel("mean quality per prompt")
    ax.set_title("two-model routing (RouteLLM's view)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=7, framealpha=0.9)
    return png(fig)


def calibration_png(cal: CalibrationReport) -> bytes:
    """Reliability diagram: mean outcome against mean predicted p_success per bin."""
    fig = _figure(7.5, 5)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], "--", color="#8c959f", lw=1, label="perfectly calibrated")
    per = cal.candidates
    show_legend = len(per) <= 8
    for i, (name, table) in enumerate(per.items()):
        bins = table.bins
        ax.plot(
            [b.mean_p_success for b in bins],
            [b.mean_outcome for b in bins],
            "-",
            marker=".",
            lw=0.9,
            alpha=0.55,
            color=PALETTE[i % len(PALETTE)],
            label=f"{name} (ECE {table.ece:.3f})" if show_legend else None,
        )
    pooled = cal.pooled
    bins = pooled.bins
    n_max = max((b.n for b in bins), default=1)
    ax.plot(
        [b.mean_p_success for b in bins],
        [b.mean_outcome for b in bins],
        "-",
        color="#0969da",
        lw=2.2,
        label=f"pooled (ECE {pooled.ece:.3f})",
    )
    ax.scatter(
        [b.mean_p_success for b in bins],
        [b.mean_outcome for b in bins],
        s=[20 + 180 * b.n / n_max for b in bins],
        color="#0969da",
        zorder=3,
    )
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("predicted p_success (bin mean)")
    ax.set_ylabel("observed outcome (bin mean)")
    ax.set_title("calibration: reliability of p_success", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=7, framealpha=0.9)
    return png(fig)
