"""The spend page's plots: matplotlib Agg figures returned as PNG bytes.

They share the evaluation report's canvas, palette and PNG writer
(:mod:`training.report.plots`), so both pages look alike and neither touches pyplot
state. Each function takes a part of ``spend.json`` (plain dicts) and returns ``None``
when there is nothing to draw, so the page can say "none" instead of showing an empty
frame. Names come from logs (teams, users, models) and are untrusted: :func:`_label`
escapes matplotlib's mathtext ``$`` and shortens them before they reach a figure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from training.report.plots import PALETTE, _figure, png

#: Models drawn apart on the spend-per-day plot; the rest are summed as "other".
MAX_MODELS = 8
#: Teams named on the team plot (by spend); more are drawn unnamed.
MAX_LABELLED_TEAMS = 12
#: Spends spanning more than this factor put the team plot on log axes.
WIDE_RANGE = 20
#: More colours than the evaluation palette (stacked bars need one per model).
COLOURS = [*PALETTE, "#0969da", "#d4a72c", "#6e7781"]
OTHER_COLOUR = "#afb8c1"

Row = Mapping[str, Any]


def _label(name: Any, width: int = 28) -> str:
    """A log-supplied name made safe for a matplotlib text: ``$`` would start mathtext."""
    text = str(name)
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.replace("\\", "\\\\").replace("$", r"\$")


def _num(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else 0.0


def _usd_tick(x: float, _pos: Any = None) -> str:
    return f"${x:,.0f}" if abs(x) >= 10 else f"${x:.3g}"


def spend_by_day_png(model_mix: Sequence[Row]) -> bytes | None:
    """Spend per day stacked by model: the model mix over time.

    The ``MAX_MODELS`` models with the most spend keep their own colour (same order in
    every bar, largest at the bottom); the others are summed into "other".
    """
    spend: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    per_model: dict[str, float] = defaultdict(float)
    for row in model_mix:
        day, model = str(row.get("day")), str(row.get("model"))
        spend[day][model] += _num(row.get("spend_usd"))
        per_model[model] += _num(row.get("spend_usd"))
    if not spend:
        return None
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ranked = sorted(per_model, key=lambda m: -per_model[m])
    kept, rest = ranked[:MAX_MODELS], set(ranked[MAX_MODELS:])
    days = sorted(spend)
    fig = _figure(11, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    x = list(range(len(days)))
    bottom = [0.0] * len(days)
    series = [
        (m, COLOURS[i % len(COLOURS)], [spend[d].get(m, 0.0) for d in days])
        for i, m in enumerate(kept)
    ]
    if rest:
        other = [sum(v for m, v in spend[d].items() if m in rest) for d in days]
        series.append((f"other ({len(rest)} models)", OTHER_COLOUR, other))
    for name, colour, heights in series:
        ax.bar(x, heights, bottom=bottom, color=colour, width=0.75, label=_label(name, 40))
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    step = max(1, len(days) // 14)  # at most ~14 day labels, whatever the window
    ax.set_xticks(x[::step])
    ax.set_xticklabels([_label(d, 12) for d in days[::step]], rotation=30, ha="right", fontsize=8)
    ax.yaxis.set_major_formatter(FuncFormatter(_usd_tick))
    ax.yaxis.set_major_locator(MaxNLocator(6))
    ax.set_ylabel("spend (USD)")
    ax.set_title("spend per day, stacked by model", fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, framealpha=0.9)
    return png(fig)


def team_value_png(teams: Sequence[Row], total: Row) -> bytes | None:
    """Spend against good outcomes per team, with lines of equal cost per good outcome.

    A team above the dashed line of the overall cost per good outcome buys its good
    outcomes cheaper than the organisation does; a team far to the right and low
    spends without much to show for it. Marker area follows the team's calls. When
    spends span more than ``WIDE_RANGE`` times, both axes are logarithmic (good
    outcomes symlog, so a team with none stays on the plot): one big team would
    otherwise squeeze all the others into a corner. Labels that would overlap one
    already drawn (bigger spenders first) are left out.
    """
    rows = [r for r in teams if r.get("spend_usd") is not None]
    if not rows:
        return None
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig = _figure(9, 4.8)
    ax = fig.add_subplot(1, 1, 1)
    xs = [_num(r.get("spend_usd")) for r in rows]
    ys = [_num(r.get("good_outcomes")) for r in rows]
    calls = [_num(r.get("calls")) for r in rows]
    most = max(calls) or 1.0
    positive = [x for x in xs if x > 0]
    wide = bool(positive) and max(positive) / min(positive) > WIDE_RANGE
    if wide:
        x_lo, x_hi = min(positive) / 1.6, max(positive) * 1.6
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=1)
        y_hi = max(ys) * 2 or 1.0
    else:
        x_lo, x_hi = 0.0, max(xs) * 1.15 or 1.0
        y_hi = max(ys) * 1.2 or 1.0
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(0, y_hi)
    ax.scatter(
        [max(x, x_lo) for x in xs],
        ys,
        s=[40 + 360 * c / most for c in calls],
        color="#0969da",
        alpha=0.6,
        edgecolors="#24292f",
        linewidths=0.8,
        zorder=3,
    )
    overall = total.get("cost_per_good_outcome_usd")
    if isinstance(overall, (int, float)) and overall > 0:
        line_x = [x_lo + (x_hi - x_lo) * i / 200 for i in range(201)]
        if wide:
            line_x = [x_lo * (x_hi / x_lo) ** (i / 200) for i in range(201)]
        for factor, style in ((0.5, ":"), (1.0, "--"), (2.0, ":")):
            cost = overall * factor
            ax.plot(
                line_x,
                [x / cost for x in line_x],
                style,
                color="#57606a",
                lw=1,
                label=f"${cost:.3g} per good outcome" + (" (overall)" if factor == 1 else ""),
            )
    # Label boxes in pixels (8 pt text, about 0.6 em a character), biggest spenders first.
    pt = fig.dpi / 72
    placed: list[tuple[float, float, float, float]] = []
    for i in sorted(range(len(rows)), key=lambda i: -xs[i])[:MAX_LABELLED_TEAMS]:
        text = _label(rows[i].get("team", ""))
        px, py = ax.transData.transform((max(xs[i], x_lo), ys[i]))
        box = (px + 8 * pt, px + (8 + 4.8 * len(text)) * pt, py + 5 * pt, py + 15 * pt)
        if any(box[0] < q[1] and q[0] < box[1] and box[2] < q[3] and q[2] < box[3] for q in placed):
            continue
        placed.append(box)
        ax.annotate(
            text,
            (max(xs[i], x_lo), ys[i]),
            textcoords="offset points",
            xytext=(8, 5),
            fontsize=8,
        )
    ax.xaxis.set_major_formatter(FuncFormatter(_usd_tick))
    if wide:
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:,.0f}"))
    ax.set_xlabel("spend (USD" + (", log scale)" if wide else ")"))
    ax.set_ylabel("good outcomes (outcome >= 0.5)")
    ax.set_title("spend and good outcomes per team (marker area = calls)", fontsize=10)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # no reference lines without a good outcome
        ax.legend(loc="upper left", fontsize=7, framealpha=0.9)
    return png(fig)


def cache_by_model_png(models: Sequence[Row]) -> bytes | None:
    """Cache hit rate per model (share of input tokens read from cache), with savings."""
    rows = sorted(
        (r for r in models if r.get("cache_hit_rate") is not None),
        key=lambda r: _num(r.get("spend_usd")),
    )[-20:]
    if not rows:
        return None
    from matplotlib.ticker import PercentFormatter

    fig = _figure(9, 1.2 + 0.42 * len(rows))
    ax = fig.add_subplot(1, 1, 1)
    y = list(range(len(rows)))
    rates = [100 * _num(r.get("cache_hit_rate")) for r in rows]
    ax.barh(y, rates, color="#1a7f37", height=0.6)
    for yi, rate, r in zip(y, rates, rows, strict=True):
        saved = r.get("cache_saved_usd")
        note = f"{rate:.1f}%" + (f", saved ${_num(saved):,.2f}" if saved is not None else "")
        ax.annotate(note, (rate, yi), textcoords="offset points", xytext=(4, -3), fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels([_label(r.get("model", ""), 34) for r in rows], fontsize=8)
    ax.set_xlim(0, 118)
    ax.xaxis.set_major_formatter(PercentFormatter())
    ax.set_xlabel("cache hit rate: cached input tokens / input tokens")
    ax.set_title("prompt-cache hit rate per model (most spend at the top)", fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    return png(fig)


def counterfactual_png(counterfactual: Row) -> bytes | None:
    """The router's estimated spend and quality (95% intervals) beside the logged ones."""
    logged = counterfactual.get("logged") or {}
    router = counterfactual.get("router") or {}
    panels = []
    for key, title in (
        ("spend_usd", "spend on the same traffic (USD)"),
        ("quality", "quality (mean outcome)"),
    ):
        est = router.get(key) or {}
        if est.get("estimate") is None and logged.get(key) is None:
            continue
        panels.append((key, title, logged.get(key), est))
    if not panels:
        return None
    confidence = counterfactual.get("confidence")
    level = f"{100 * confidence:.0f}%" if isinstance(confidence, float) else "95%"
    fig = _figure(10, 2.6)
    for i, (key, title, logged_value, est) in enumerate(panels):
        right = max(_num(logged_value), _num(est.get("estimate")), _num(est.get("high")))
        ax = fig.add_subplot(1, len(panels), i + 1)
        if logged_value is not None:
            ax.barh([1], [_num(logged_value)], color="#57606a", height=0.55)
            ax.annotate(
                _fmt(key, logged_value),
                (_num(logged_value), 1),
                textcoords="offset points",
                xytext=(4, 8),
                fontsize=8,
            )
        if est.get("estimate") is not None:
            value = _num(est["estimate"])
            low, high = est.get("low"), est.get("high")
            xerr = None
            if low is not None and high is not None:
                xerr = [[max(value - _num(low), 0.0)], [max(_num(high) - value, 0.0)]]
            ax.barh(
                [0],
                [value],
                color="#0969da",
                height=0.55,
                xerr=xerr,
                capsize=6,
                error_kw={"ecolor": "#24292f", "lw": 1.4},
            )
            ax.annotate(
                _fmt(key, value), (value, 0), textcoords="offset points", xytext=(4, 8), fontsize=8
            )
        ax.set_yticks([0, 1])
        ax.set_yticklabels([f"router (estimate, {level})", "logged"], fontsize=8)
        ax.set_ylim(-0.6, 1.6)
        ax.set_xlim(0, 1.3 * right or 1.0)
        if key.endswith("usd"):
            from matplotlib.ticker import FuncFormatter

            ax.xaxis.set_major_formatter(FuncFormatter(_usd_tick))
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis="x", alpha=0.3)
    return png(fig)


def _fmt(key: str, value: Any) -> str:
    return f"${_num(value):,.2f}" if key.endswith("usd") else f"{_num(value):.3f}"
