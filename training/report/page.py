"""The report's HTML page: one self-contained file (inline CSS, plots as base64 PNGs).

Every text that comes from data (model names, segment tags, the title) is HTML-escaped.
Sections: headline figures; the cost-quality plot; a table of every router and
baseline; RouteLLM's two-model view (APGR, CPT); the model share at the default policy;
calibration (reliability plot and table); single models; the router curve;
per-segment tables.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from training.evaluation.curves import CurvePoint
from training.evaluation.results import Comparison
from training.evaluation.summary import Summary
from training.report.plots import Curves

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


@dataclass(frozen=True)
class ReportView:
    """What the page shows: the router's summary, its label, version and comparisons."""

    summary: Summary
    label: str = "router"
    router_version: str | None = None
    comparisons: Sequence[Comparison] = ()


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


def _headline(view: ReportView) -> str:
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


def _routers_table(view: ReportView) -> str:
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


def _pairs_section(view: ReportView, images: dict[str, bytes]) -> str:
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


def render_html(
    view: ReportView,
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
