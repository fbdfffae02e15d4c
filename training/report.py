"""The offline evaluation report: ``metrics.json`` and a self-contained ``report.html``.

The page is one file (inline CSS, the plot as a base64 PNG) so it can be attached to an
MLflow run, mailed or opened from a CI artifact without a server. Every text that comes
from data (model names, segment tags, the title) is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 2rem auto; max-width: 1100px; color: #1f2328; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
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
img.plot { max-width: 100%; border: 1px solid #d0d7de; border-radius: 8px; }
.note { color: #59636e; font-size: .85rem; }
"""


def write_report(
    summary: dict[str, Any],
    out_dir: str | Path,
    title: str = "outcome-router evaluation",
    extra_curves: dict[str, list[dict[str, Any]]] | None = None,
) -> Path:
    """Write ``out_dir/metrics.json`` and ``out_dir/report.html``.

    Parameters
    ----------
    summary : dict
        From :func:`training.evaluation.summarize`.
    out_dir : str or Path
        Created if missing; both files are overwritten.
    title : str, default="outcome-router evaluation"
    extra_curves : dict of str to list of dict, optional
        Other curves to draw for comparison (e.g. a baseline router), each a list of
        ``{cost_usd, quality}`` points like ``summary["router_curve"]``.

    Returns
    -------
    path : Path
        The HTML report.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # allow_nan=False: a NaN would make the file invalid JSON for strict readers.
    (out / "metrics.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    png = _plot_png(summary, extra_curves or {}, title)
    page = _render_html(summary, title, png)
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def _plot_png(
    summary: dict[str, Any], extra_curves: dict[str, list[dict[str, Any]]], title: str
) -> bytes:
    """The cost-quality plot (log-cost x axis) as PNG bytes.

    Uses ``matplotlib.figure.Figure`` with the Agg canvas directly, so no global pyplot
    state or backend switch leaks into the caller's process.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig = Figure(figsize=(9, 5.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)

    curve = [p for p in summary.get("router_curve", []) if p["cost_usd"] > 0]
    if curve:
        pts = sorted(curve, key=lambda p: (p["cost_usd"], p["quality"]))
        costs = [p["cost_usd"] for p in pts]
        quals = [p["quality"] for p in pts]
        envelope = []
        best = -math.inf
        for q in quals:
            best = max(best, q)
            envelope.append(best)
        ax.step(costs, envelope, where="post", color="#0969da", lw=2, label="router (envelope)")
        ax.plot(costs, quals, "o", color="#0969da", ms=4, alpha=0.6, label="router points")

    palette = ["#8250df", "#bf3989", "#1a7f37", "#bc4c00", "#57606a", "#cf222e"]
    for i, (name, pts_) in enumerate(extra_curves.items()):
        pts = sorted(
            (p for p in pts_ if p["cost_usd"] > 0), key=lambda p: (p["cost_usd"], p["quality"])
        )
        if pts:
            ax.plot(
                [p["cost_usd"] for p in pts],
                [p["quality"] for p in pts],
                "-.",
                marker=".",
                color=palette[i % len(palette)],
                label=name,
            )

    for p in summary.get("single_models", []):
        if p["cost_usd"] <= 0:
            continue
        ax.plot(p["cost_usd"], p["quality"], "s", color="#24292f", ms=7)
        ax.annotate(
            p["name"],
            (p["cost_usd"], p["quality"]),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=8,
        )
    ax.plot([], [], "s", color="#24292f", label="single models")
    oracle = summary.get("oracle")
    if oracle and oracle["cost_usd"] > 0:
        ax.plot(
            oracle["cost_usd"],
            oracle["quality"],
            "*",
            color="#d4a72c",
            ms=16,
            markeredgecolor="#24292f",
            label="oracle",
        )

    default = summary.get("default_point")
    if default and default["cost_usd"] > 0:
        ax.plot(
            default["cost_usd"],
            default["quality"],
            "o",
            ms=13,
            mfc="none",
            mew=2,
            color="#cf222e",
            label=f"served (value ${default['value_usd']:.3g})",
        )

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"${x:.3g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.08, y=0.06)
    ax.set_xlabel("mean cost per prompt (USD, log scale)")
    ax.set_ylabel("mean quality per prompt")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


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


def _card(label: str, value: str, note: str = "") -> str:
    return (
        f'<div class="card"><div class="k">{_e(label)}</div><div class="v">{_e(value)}</div>'
        f'<div class="n">{_e(note)}</div></div>'
    )


def _headline(s: dict[str, Any]) -> str:
    best = s["best_single"]
    cards = [
        _card(
            "savings at parity",
            _pct(s.get("savings_at_parity")),
            f"vs {best['name']} at quality {_q(best['quality'])}",
        ),
        _card(
            "savings at 95% quality",
            _pct(s.get("savings_at_95")),
            f"quality >= {_q(0.95 * best['quality'])}",
        ),
        _card(
            "area (router)", _q(s.get("area")), f"single models: {_q(s.get('area_single_models'))}"
        ),
        _card(
            "quality at 1/4 cost",
            _q(s.get("quality_at_quarter_cost")),
            f"{_pct(s.get('quality_at_quarter_cost_fraction'))} of best single",
        ),
        _card("oracle", _q(s["oracle"]["quality"]), f"at {_usd(s['oracle']['cost_usd'])}"),
        _card("prompts", str(s.get("n_prompts")), f"{len(s.get('candidates', []))} candidates"),
    ]
    if "default_point" in s:
        d = s["default_point"]
        cards.append(
            _card(
                f"served at value ${d['value_usd']:.4g}",
                _q(d["quality"]),
                f"at {_usd(d['cost_usd'])}: {_top_shares(d['share'], 2)}",
            )
        )
    return '<div class="headline">' + "".join(cards) + "</div>"


def _single_table(s: dict[str, Any]) -> str:
    best, cheap = s["best_single"]["name"], s["cheapest_single"]["name"]
    rows = []
    for p in sorted(s["single_models"], key=lambda p: p["cost_usd"]):
        tags = [t for t, n in (("best", best), ("cheapest", cheap)) if p["name"] == n]
        cls = ' class="hl"' if p["name"] == best else ""
        rows.append(
            f'<tr{cls}><td class="l">{_e(p["name"])}</td><td class="l">{_e(", ".join(tags))}'
            f"</td><td>{_q(p['quality'])}</td><td>{_usd(p['cost_usd'])}</td></tr>"
        )
    o = s["oracle"]
    rows.append(
        f'<tr><td class="l">{_e(o["name"])}</td><td class="l">per prompt</td>'
        f"<td>{_q(o['quality'])}</td><td>{_usd(o['cost_usd'])}</td></tr>"
    )
    return (
        '<table><tr><th class="l">model</th><th class="l"></th><th>quality</th>'
        "<th>cost / prompt</th></tr>" + "".join(rows) + "</table>"
    )


def _curve_table(s: dict[str, Any]) -> str:
    """Router curve rows; consecutive values giving the same point are merged."""
    groups: list[tuple[float, float, dict[str, Any]]] = []
    for p in s["router_curve"]:
        if groups and _same_point(groups[-1][2], p):
            groups[-1] = (groups[-1][0], p["value_usd"], groups[-1][2])
        else:
            groups.append((p["value_usd"], p["value_usd"], p))
    rows = []
    for lo, hi, p in groups:
        value = f"${lo:.4g}" if lo == hi else f"${lo:.4g} to ${hi:.4g}"
        rows.append(
            f"<tr><td>{_e(value)}</td><td>{_q(p['quality'])}</td><td>{_usd(p['cost_usd'])}</td>"
            f'<td class="l">{_e(_top_shares(p["share"]))}</td></tr>'
        )
    return (
        "<table><tr><th>value_usd</th><th>quality</th><th>cost / prompt</th>"
        '<th class="l">top models (share of prompts)</th></tr>' + "".join(rows) + "</table>"
    )


def _same_point(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (
        a["quality"] == b["quality"] and a["cost_usd"] == b["cost_usd"] and a["share"] == b["share"]
    )


def _segment_tables(s: dict[str, Any]) -> str:
    parts = []
    for key, rows in s.get("segments", {}).items():
        body = []
        for r in rows:
            b, o, ro = r["best_single"], r["oracle"], r.get("router", {})
            body.append(
                f'<tr><td class="l">{_e(r["value"])}</td><td>{_e(r["n"])}</td>'
                f'<td class="l">{_e(b["name"])}</td><td>{_q(b["quality"])}</td>'
                f"<td>{_usd(b['cost_usd'])}</td><td>{_q(ro.get('quality'))}</td>"
                f"<td>{_usd(ro.get('cost_usd'))}</td>"
                f'<td class="l">{_e(_top_shares(ro.get("share", {}), 2))}</td>'
                f"<td>{_q(o['quality'])}</td></tr>"
            )
        parts.append(
            f'<h3>by {_e(key)}</h3><table><tr><th class="l">{_e(key)}</th><th>n</th>'
            '<th class="l">best single</th><th>quality</th><th>cost</th>'
            "<th>router quality</th><th>router cost</th>"
            '<th class="l">router mix</th><th>oracle quality</th></tr>' + "".join(body) + "</table>"
        )
    if not parts:
        return ""
    value = s.get("default_point", {}).get("value_usd")
    note = f" at value_usd = ${value:.4g}" if value is not None else ""
    return f'<h2>Segments</h2><p class="note">Router{_e(note)}.</p>' + "".join(parts)


def _render_html(s: dict[str, Any], title: str, png: bytes) -> str:
    b64 = base64.b64encode(png).decode("ascii")
    low, high = s.get("area_cost_range", [None, None])
    notes = (
        "All figures are means per prompt on the logged truth (every candidate answered "
        "every prompt). Savings = 1 - (router's least cost reaching the target quality) / "
        "(best single model's cost). Area = mean quality of the non-decreasing cost-quality "
        f"curve over log(cost) between {_usd(low)} and {_usd(high)} (cheapest to dearest "
        "single model), counting 0 below the curve's cheapest point; the single-model area "
        "is the same for the best single model one can afford."
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f'<p class="sub">{_e(s.get("n_prompts"))} prompts, candidates: '
        f"{_e(', '.join(s.get('candidates', [])))}</p>" + _headline(s) + "<h2>Cost and quality</h2>"
        f'<img class="plot" alt="cost-quality plot" src="data:image/png;base64,{b64}">'
        f'<p class="note">{_e(notes)}</p>'
        "<h2>Single models</h2>"
        + _single_table(s)
        + "<h2>Router curve</h2>"
        + _curve_table(s)
        + _segment_tables(s)
        + "</body></html>\n"
    )
