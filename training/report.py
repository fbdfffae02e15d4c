"""The offline evaluation report: ``metrics.json`` and a self-contained ``report.html``.

The page is one file (inline CSS, the plots as base64 PNGs) so it can be attached to an
MLflow run, mailed or opened from a CI artifact without a server. Every text that comes
from data (model names, segment tags, the title) is HTML-escaped.

Sections: headline figures; the cost-quality plot (the router, compared routers, the
oracle curve, the single models and the baselines random / cheapest / strongest); a
table of every router and baseline; RouteLLM's two-model view (APGR, CPT); the model
share at the default policy; calibration (reliability plot and table); single models;
the router curve; per-segment tables.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from training.evaluation.curves import CurvePoint
from training.evaluation.pairs import PairPoint
from training.evaluation.reliability import CalibrationReport
from training.evaluation.results import Comparison, Evaluation
from training.evaluation.summary import Summary

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 2rem auto; max-width: 1100px; color: #1f2328; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 1rem; margin-top: 1.2rem; }
.sub { color: #59636e; margin-top: 0; }
.headline { display: flex; flex-wrap: wrap; gap: .8rem; margin: 1rem 0; }
.card { border: 1px solid #d0d7de; border-radius: 8px; padding: .7rem 1rem;
        min-width: 170px; background: #f6f8fa; }
.card .v { font-size: 1.5rem; font-weight: 600; }
.card .k { color: #59636e; font-size: .85rem; }
.card .n { color: #59636e; font-size: .8rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; text-align: right; }
th { background: #f6f8fa; }
td.l, th.l { text-align: left; }
tr.hl td { background: #fff8c5; }
tr.me td { background: #ddf4ff; }
img.plot { max-width: 100%; border: 1px solid #d0d7de; border-radius: 8px; }
.note { color: #59636e; font-size: .85rem; }
nav a { margin-right: .8rem; font-size: .9rem; }
"""


class CostQuality(Protocol):
    """Anything with a mean cost and quality per prompt (a point of any curve)."""

    @property
    def cost_usd(self) -> float: ...

    @property
    def quality(self) -> float: ...


#: Named curves to draw, e.g. compared routers: name -> points.
Curves = Mapping[str, Sequence[CostQuality]]

_PALETTE = ["#8250df", "#bf3989", "#1a7f37", "#bc4c00", "#57606a", "#cf222e", "#0550ae"]
#: Above this many candidates, only the notable single models are labelled on the plot.
_MAX_LABELLED = 12


def write_report(
    result: Evaluation | Summary,
    out_dir: str | Path,
    title: str = "outcome-router evaluation",
    extra_curves: Curves | None = None,
) -> Path:
    """Write ``out_dir/metrics.json`` (``result.to_dict()``) and ``out_dir/report.html``.

    Parameters
    ----------
    result : Evaluation or Summary
        From :func:`training.evaluation.run.evaluate` (a bundle, with its label and
        compared bundles) or :func:`training.evaluation.summarize` (any predictions).
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
    view = _View.of(result)
    curves: dict[str, Sequence[CostQuality]] = dict(extra_curves or {})
    for comp in view.comparisons:
        curves.setdefault(comp.label, comp.summary.router_curve)
    images = {"cost_quality": _png(cost_quality_figure(view.summary, curves, title, view.label))}
    if view.summary.pairs:
        images["pair"] = _pair_png(view)
    if view.summary.calibration:
        images["calibration"] = _calibration_png(view.summary.calibration)
    page = _render_html(view, title, images, curves)
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


class _View:
    """What the page shows: the router's summary, its label, version and comparisons."""

    def __init__(
        self,
        summary: Summary,
        label: str = "router",
        router_version: str | None = None,
        comparisons: Sequence[Comparison] = (),
    ) -> None:
        self.summary = summary
        self.label = label
        self.router_version = router_version
        self.comparisons = tuple(comparisons)

    @classmethod
    def of(cls, result: Evaluation | Summary) -> _View:
        if isinstance(result, Evaluation):
            return cls(result.summary, result.label, result.router_version, result.comparisons)
        return cls(result)


# --- plots ------------------------------------------------------------------------------


def _figure(width: float = 9, height: float = 5.5):
    """A Figure on the Agg canvas: no global pyplot state leaks into the caller."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
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
                color=_PALETTE[i % len(_PALETTE)],
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


def _pair_png(view: _View) -> bytes:
    """RouteLLM's view of the first pair: quality against the share of strong calls."""
    pair = view.summary.pairs[0]
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

    draw(pair.curve, f"{view.label} (APGR {_q(pair.apgr)})", "#0969da", 2.0)
    for i, comp in enumerate(view.comparisons):
        same = [
            p for p in comp.summary.pairs or () if (p.weak, p.strong) == (pair.weak, pair.strong)
        ]
        if same:
            draw(
                same[0].curve,
                f"{comp.label} (APGR {_q(same[0].apgr)})",
                _PALETTE[i % len(_PALETTE)],
                1.2,
            )
    ax.set_xlabel("calls to the strong model (%)")
    ax.set_ylabel("mean quality per prompt")
    ax.set_title("two-model routing (RouteLLM's view)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=7, framealpha=0.9)
    return _png(fig)


def _calibration_png(cal: CalibrationReport) -> bytes:
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
            color=_PALETTE[i % len(_PALETTE)],
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
    return _png(fig)


# --- HTML -------------------------------------------------------------------------------


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _q(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _usd(x: float | None) -> str:
    return "n/a" if x is None else f"${x:.4g}"


def _top_shares(share: dict[str, float], k: int = 3) -> str:
    top = sorted(share.items(), key=lambda kv: -kv[1])[:k]
    return ", ".join(f"{name} {100 * s:.0f}%" for name, s in top if s > 0)


def _img(png: bytes, alt: str) -> str:
    b64 = base64.b64encode(png).decode("ascii")
    return f'<img class="plot" alt="{_e(alt)}" src="data:image/png;base64,{b64}">'


def _card(label: str, value: str, note: str = "") -> str:
    return (
        f'<div class="card"><div class="k">{_e(label)}</div><div class="v">{_e(value)}</div>'
        f'<div class="n">{_e(note)}</div></div>'
    )


def _headline(view: _View) -> str:
    s = view.summary
    best = s.best_single
    cards = [
        _card(
            "savings at parity",
            _pct(s.savings_at_parity),
            f"vs {best.name} at quality {_q(best.quality)}",
        ),
        _card(
            "savings at 95% quality",
            _pct(s.savings_at_95),
            f"quality >= {_q(0.95 * best.quality)}",
        ),
        _card("area (router)", _q(s.area), f"single models: {_q(s.area_single_models)}"),
        _card(
            "quality at 1/4 cost",
            _q(s.quality_at_quarter_cost),
            f"{_pct(s.quality_at_quarter_cost_fraction)} of best single",
        ),
        _card("oracle", _q(s.oracle.quality), f"at {_usd(s.oracle.cost_usd)}"),
        _card("prompts", str(s.n_prompts), f"{len(s.candidates)} candidates"),
    ]
    if s.default_pair:
        cards.append(
            _card(
                "APGR (cheapest, best)",
                _q(s.apgr),
                f"CPT(50%) {_pct(s.cpt_50)}, CPT(80%) {_pct(s.cpt_80)}",
            )
        )
    if s.calibration:
        pooled = s.calibration.pooled
        cards.append(_card("calibration ECE", _q(pooled.ece), f"Brier {_q(pooled.brier)}"))
    if s.default_point:
        d = s.default_point
        cards.append(
            _card(
                f"served at value ${d.value_usd:.4g}",
                _q(d.quality),
                f"at {_usd(d.cost_usd)}: {_top_shares(d.share, 2)}",
            )
        )
    return '<div class="headline">' + "".join(cards) + "</div>"


_KIND_ORDER = {"router": 0, "baseline": 1, "oracle": 2, "single": 3}


def _routers_table(view: _View) -> str:
    """Every router (this one and compared ones), baseline, single model and the oracle."""
    rows = list(view.summary.table)
    me = rows[0].name if rows and rows[0].kind == "router" else None
    rows = rows[:1] + [c.row for c in view.comparisons] + rows[1:]
    rows.sort(key=lambda r: _KIND_ORDER.get(r.kind, 9))
    body = []
    for r in rows:
        f = r.figures
        cls = ' class="me"' if r.name == me and r.kind == "router" else ""
        what = r.model if r.kind == "baseline" and r.model != r.name else ""
        body.append(
            f'<tr{cls}><td class="l">{_e(r.name)}</td><td class="l">{_e(r.kind)}'
            f"{' (' + _e(what) + ')' if what else ''}</td>"
            f"<td>{_q(r.quality)}</td><td>{_usd(r.cost_usd)}</td>"
            f"<td>{_q(f.area)}</td><td>{_pct(f.savings_at_parity)}</td>"
            f"<td>{_pct(f.savings_at_95)}</td><td>{_q(f.quality_at_quarter_cost)}</td>"
            f"<td>{_q(r.apgr)}</td></tr>"
        )
    return (
        '<table><tr><th class="l">name</th><th class="l">kind</th><th>quality</th>'
        "<th>cost / prompt</th><th>area</th><th>savings at parity</th><th>savings at 95%</th>"
        "<th>quality at 1/4 cost</th><th>APGR</th></tr>" + "".join(body) + "</table>"
        '<p class="note">Routers: quality and cost at their default policy; area, savings '
        "and quality at 1/4 cost over their whole value_usd sweep. Baselines and single "
        "models: one point each. Random = a candidate drawn uniformly per prompt (expected "
        "quality and cost). The oracle row is the perfect predictor's curve. APGR is for "
        "the pair (cheapest, best single).</p>"
    )


def _pairs_section(view: _View, images: dict[str, bytes]) -> str:
    s = view.summary
    pairs = s.pairs or ()
    if not pairs:
        return ""
    oracle = {(p.weak, p.strong): p for p in s.oracle_pairs or ()}
    body = []
    for p in pairs:
        o = oracle.get((p.weak, p.strong))
        body.append(
            f'<tr><td class="l">{_e(p.weak)}</td><td>{_q(p.weak_quality)}</td>'
            f"<td>{_usd(p.weak_cost_usd)}</td>"
            f'<td class="l">{_e(p.strong)}</td><td>{_q(p.strong_quality)}</td>'
            f"<td>{_usd(p.strong_cost_usd)}</td>"
            f"<td>{_q(p.apgr)}</td><td>{_pct(p.cpt_50)}</td><td>{_pct(p.cpt_80)}</td>"
            f"<td>{_q(o.apgr if o else None)}</td></tr>"
        )
    for comp in view.comparisons:
        for p in comp.summary.pairs or ():
            body.append(
                f'<tr><td class="l" colspan="6">{_e(comp.label)}: {_e(p.weak)} / '
                f"{_e(p.strong)}</td><td>{_q(p.apgr)}</td><td>{_pct(p.cpt_50)}</td>"
                f"<td>{_pct(p.cpt_80)}</td><td></td></tr>"
            )
    plot = _img(images["pair"], "two-model routing plot") if "pair" in images else ""
    return (
        '<h2 id="pairs">Two-model routing (RouteLLM)</h2>'
        '<table><tr><th class="l">weak</th><th>quality</th><th>cost</th>'
        '<th class="l">strong</th><th>quality</th><th>cost</th><th>APGR</th>'
        "<th>CPT(50%)</th><th>CPT(80%)</th><th>oracle APGR</th></tr>"
        + "".join(body)
        + "</table>"
        + plot
        + '<p class="note">The router routes between the two models only (the policy\'s '
        "allowed mask) with its own scores, over a sweep of value_usd. x = share of calls "
        "to the strong model, q(x) its quality, interpolated linearly and closed by "
        "(0, weak) and (100%, strong). APGR = mean over x in [0, 1] of (q(x) - q_weak) / "
        "(q_strong - q_weak); a random mix scores 0.5. CPT(t) = least share of strong "
        "calls reaching q_weak + t (q_strong - q_weak); a random mix needs t.</p>"
    )


def _share_table(s: Summary) -> str:
    if not s.model_share or s.default_point is None:
        return ""
    body = []
    for r in sorted(s.model_share, key=lambda r: -r.share):
        body.append(
            f'<tr><td class="l">{_e(r.model)}</td><td>{_pct(r.share)}</td>'
            f"<td>{_e(r.n)}</td><td>{_q(r.quality)}</td><td>{_usd(r.cost_usd)}</td>"
            f"<td>{_q(r.single_quality)}</td><td>{_usd(r.single_cost_usd)}</td></tr>"
        )
    note = f" (value_usd = ${s.default_point.value_usd:.4g})"
    return (
        f'<h2 id="share">Model share at the default policy{_e(note)}</h2>'
        '<table><tr><th class="l">model</th><th>share</th><th>prompts</th>'
        "<th>quality on its prompts</th><th>cost on its prompts</th>"
        "<th>quality on all prompts</th><th>cost on all prompts</th></tr>"
        + "".join(body)
        + "</table>"
    )


def _calibration_section(s: Summary, images: dict[str, bytes]) -> str:
    cal = s.calibration
    if not cal:
        return ""
    per = []
    for name, t in [("pooled", cal.pooled), *cal.candidates.items()]:
        per.append(
            f'<tr><td class="l">{_e(name)}</td><td>{_e(t.n)}</td>'
            f"<td>{_q(t.mean_p_success)}</td><td>{_q(t.mean_outcome)}</td>"
            f"<td>{_q(t.ece)}</td><td>{_q(t.brier)}</td></tr>"
        )
    bins = []
    for b in cal.pooled.bins:
        bins.append(
            f"<tr><td>{b.lower:.1f} to {b.upper:.1f}</td><td>{_e(b.n)}</td>"
            f"<td>{_q(b.mean_p_success)}</td><td>{_q(b.mean_outcome)}</td>"
            f"<td>{_q(b.mean_outcome - b.mean_p_success)}</td></tr>"
        )
    plot = _img(images["calibration"], "reliability plot") if "calibration" in images else ""
    return (
        '<h2 id="calibration">Calibration</h2>'
        + plot
        + '<table><tr><th class="l">candidate</th><th>n</th><th>mean p_success</th>'
        "<th>mean outcome</th><th>ECE</th><th>Brier</th></tr>" + "".join(per) + "</table>"
        "<h3>Reliability bins (pooled)</h3>"
        "<table><tr><th>p_success bin</th><th>n</th><th>mean p_success</th>"
        "<th>mean outcome</th><th>outcome - p</th></tr>" + "".join(bins) + "</table>"
        '<p class="note">ECE = sum over bins of (n_bin / n) |mean p_success - mean outcome|, '
        f"{_e(cal.n_bins)} equal-width bins; Brier = mean (p_success - outcome)^2.</p>"
    )


def _single_table(s: Summary) -> str:
    best, cheap = s.best_single.name, s.cheapest_single.name
    rows = []
    for p in sorted(s.single_models, key=lambda p: p.cost_usd):
        tags = [t for t, n in (("best", best), ("cheapest", cheap)) if p.name == n]
        cls = ' class="hl"' if p.name == best else ""
        rows.append(
            f'<tr{cls}><td class="l">{_e(p.name)}</td><td class="l">{_e(", ".join(tags))}'
            f"</td><td>{_q(p.quality)}</td><td>{_usd(p.cost_usd)}</td></tr>"
        )
    o = s.oracle
    rows.append(
        f'<tr><td class="l">{_e(o.name)}</td><td class="l">per prompt</td>'
        f"<td>{_q(o.quality)}</td><td>{_usd(o.cost_usd)}</td></tr>"
    )
    return (
        '<table><tr><th class="l">model</th><th class="l"></th><th>quality</th>'
        "<th>cost / prompt</th></tr>" + "".join(rows) + "</table>"
    )


def _curve_table(s: Summary) -> str:
    """Router curve rows; consecutive values giving the same point are merged."""
    groups: list[tuple[float, float, CurvePoint]] = []
    for p in s.router_curve:
        if groups and _same_point(groups[-1][2], p):
            groups[-1] = (groups[-1][0], p.value_usd, groups[-1][2])
        else:
            groups.append((p.value_usd, p.value_usd, p))
    rows = []
    for lo, hi, p in groups:
        value = f"${lo:.4g}" if lo == hi else f"${lo:.4g} to ${hi:.4g}"
        rows.append(
            f"<tr><td>{_e(value)}</td><td>{_q(p.quality)}</td><td>{_usd(p.cost_usd)}</td>"
            f'<td class="l">{_e(_top_shares(p.share))}</td></tr>'
        )
    return (
        "<table><tr><th>value_usd</th><th>quality</th><th>cost / prompt</th>"
        '<th class="l">top models (share of prompts)</th></tr>' + "".join(rows) + "</table>"
    )


def _same_point(a: CurvePoint, b: CurvePoint) -> bool:
    return a.quality == b.quality and a.cost_usd == b.cost_usd and a.share == b.share


def _segment_tables(s: Summary) -> str:
    parts = []
    for key, rows in (s.segments or {}).items():
        body = []
        for r in rows:
            b, o, ro = r.best_single, r.oracle, r.router
            saving = 1 - ro.cost_usd / b.cost_usd if b.cost_usd > 0 else None
            body.append(
                f'<tr><td class="l">{_e(r.value)}</td><td>{_e(r.n)}</td>'
                f'<td class="l">{_e(b.name)}</td><td>{_q(b.quality)}</td>'
                f"<td>{_usd(b.cost_usd)}</td><td>{_q(ro.quality)}</td>"
                f"<td>{_usd(ro.cost_usd)}</td><td>{_pct(saving)}</td>"
                f'<td class="l">{_e(_top_shares(ro.share, 2))}</td>'
                f"<td>{_q(o.quality)}</td></tr>"
            )
        parts.append(
            f'<h3>by {_e(key)}</h3><table><tr><th class="l">{_e(key)}</th><th>n</th>'
            '<th class="l">best single</th><th>quality</th><th>cost</th>'
            "<th>router quality</th><th>router cost</th><th>cost vs best single</th>"
            '<th class="l">router mix</th><th>oracle quality</th></tr>' + "".join(body) + "</table>"
        )
    if not parts:
        return ""
    note = f" at value_usd = ${s.default_point.value_usd:.4g}" if s.default_point else ""
    return (
        f'<h2 id="segments">Segments</h2><p class="note">Router{_e(note)}; "cost vs best '
        "single\" = 1 - router cost / the segment's best single model's cost.</p>" + "".join(parts)
    )


def _render_html(
    view: _View,
    title: str,
    images: dict[str, bytes],
    curves: Curves,
) -> str:
    s = view.summary
    low, high = s.area_cost_range
    notes = (
        "All figures are means per prompt on the logged truth (every candidate answered "
        "every prompt). Savings = 1 - (router's least cost reaching the target quality) / "
        "(best single model's cost). Area = mean quality of the non-decreasing cost-quality "
        f"curve over log(cost) between {_usd(low)} and {_usd(high)} (cheapest to dearest "
        "single model), counting 0 below the curve's cheapest point; the single-model area "
        "is the same for the best single model one can afford. The oracle curve is the "
        "policy fed the logged outcomes: no router can be above it."
    )
    nav = [("routers", "routers and baselines")]
    if s.pairs:
        nav.append(("pairs", "two-model routing"))
    if s.model_share:
        nav.append(("share", "model share"))
    if s.calibration:
        nav.append(("calibration", "calibration"))
    nav += [("singles", "single models"), ("curve", "router curve")]
    if s.segments:
        nav.append(("segments", "segments"))
    compared = ""
    if curves:
        compared = f" Compared: {_e(', '.join(curves))}."
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f'<p class="sub">{_e(s.n_prompts)} prompts, candidates: '
        f"{_e(', '.join(s.candidates))}.{compared}"
        + (f" Router version {_e(view.router_version)}." if view.router_version else "")
        + "</p>"
        "<nav>"
        + "".join(f'<a href="#{k}">{_e(v)}</a>' for k, v in nav)
        + "</nav>"
        + _headline(view)
        + "<h2>Cost and quality</h2>"
        + _img(images["cost_quality"], "cost-quality plot")
        + f'<p class="note">{_e(notes)}</p>'
        + '<h2 id="routers">Routers and baselines</h2>'
        + _routers_table(view)
        + _pairs_section(view, images)
        + _share_table(s)
        + _calibration_section(s, images)
        + '<h2 id="singles">Single models</h2>'
        + _single_table(s)
        + '<h2 id="curve">Router curve</h2>'
        + _curve_table(s)
        + _segment_tables(s)
        + "</body></html>\n"
    )
