"""The spend-and-value page: ``spend.html``, one self-contained file built from ``spend.json``.

Who opens it: whoever pays the AI bill, on Monday. It answers what was spent, what it
bought (good outcomes), what was wasted (failed and retried calls, cold caches, contexts
that keep growing), whether the source's own cost figure can be trusted, and what a
router would have spent instead. It follows the evaluation report's conventions
(:mod:`training.report.page`: inline CSS, headline cards, plots as base64 PNGs, no
network), so it opens offline, from a CI artifact or a mail. Tables sort on a click of
their header with a few lines of inline JavaScript: numbers sort by the raw value kept
in each cell's ``data-v`` (not by the formatted text), missing values last.

Every string from the data (team, user, model, session names, paths, warnings) is
HTML-escaped: user and team names come from request metadata and are untrusted.
The input is ``spend.json`` as written by ``outcome-router report spend``; keys beyond
the contract are shown as extra table columns, missing or null values as "n/a", and
an empty list or a null counterfactual as a "none" note.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.report.page import _CSS, _card, _e, _img
from training.report.spend_plots import (
    cache_by_model_png,
    counterfactual_png,
    spend_by_day_png,
    team_value_png,
)

__all__ = ["render_spend_html", "spend_images", "write_spend_page"]

_SPEND_CSS = """
body { max-width: 1240px; }
.wide { overflow-x: auto; }
table.sortable { font-size: .8rem; }
table.sortable th, table.sortable td { padding: .25rem .45rem; }
table.sortable td.l { white-space: nowrap; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th:hover { background: #eaeef2; }
table.sortable th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: .7em; }
table.sortable th[aria-sort="descending"]::after { content: " \\25BC"; font-size: .7em; }
tfoot td { font-weight: 600; background: #f6f8fa; }
td.na { color: #8c959f; }
details summary { cursor: pointer; color: #0969da; font-size: .9rem; margin: .3rem 0; }
p.summary { font-size: 1rem; max-width: 60rem; }
p.none { color: #59636e; font-style: italic; }
ul.warn li { color: #9a6700; }
dl.defs dt { font-weight: 600; margin-top: .6rem; }
dl.defs dd { margin-left: 1rem; color: #3d444d; font-size: .9rem; }
.sub code, .note code { font-size: .85em; }
"""

#: Sorts every ``table.sortable`` on a click (or Enter) on a header: numbers by the cell's
#: ``data-v``, descending first; text ascending first; a second click reverses.
_SORT_JS = """
(function () {
  function key(row, col) {
    var cell = row.cells[col];
    return cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent;
  }
  function sortBy(table, th, col) {
    var numeric = th.getAttribute("data-type") === "num";
    var was = th.getAttribute("aria-sort");
    var dir = was ? (was === "descending" ? "ascending" : "descending")
                  : (numeric ? "descending" : "ascending");
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", dir);
    var sign = dir === "ascending" ? 1 : -1;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a, col), y = key(b, col);
      if (numeric) {
        var nx = x === "" ? NaN : Number(x), ny = y === "" ? NaN : Number(y);
        if (isNaN(nx) || isNaN(ny)) { return isNaN(nx) - isNaN(ny); }  // missing last
        return sign * (nx - ny);
      }
      return sign * x.localeCompare(y, undefined, {numeric: true, sensitivity: "base"});
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.tabIndex = 0;
      th.addEventListener("click", function () { sortBy(table, th, col); });
      th.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter") { sortBy(table, th, col); }
      });
    });
  });
})();
"""


# ---------------------------------------------------------------- formatting


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _money(x: Any, signed: bool = False) -> str:
    """Dollars for people reading a bill: cents above $1, three figures below."""
    if not _is_num(x):
        return "n/a"
    sign = "-" if x < 0 else ("+" if signed and x > 0 else "")
    a = abs(x)
    if a >= 1000:
        body = f"{a:,.0f}"
    elif a >= 1 or a == 0:
        body = f"{a:,.2f}"
    else:
        body = f"{a:#.3g}"  # keeps trailing zeros: $0.190 beside $0.221
    return f"{sign}${body}"


def _pct(x: Any) -> str:
    return f"{100 * x:.1f}%" if _is_num(x) else "n/a"


def _count(x: Any) -> str:
    if not _is_num(x):
        return "n/a"
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.2f}"


def _tokens(x: Any) -> str:
    """Token counts shortened (6.95M, 139k): exact values stay in ``data-v`` for sorting."""
    if not _is_num(x):
        return "n/a"
    a = abs(x)
    if a >= 1e9:
        return f"{x / 1e9:.3g}B"
    if a >= 1e6:
        return f"{x / 1e6:.3g}M"
    if a >= 1e4:
        return f"{x / 1e3:.3g}k"
    return f"{x:,.0f}"


def _plain(x: Any) -> str:
    if _is_num(x):
        return f"{x:.4g}" if isinstance(x, float) else f"{x:,}"
    return "n/a" if x is None else str(x)


def _signed_money(x: Any) -> str:
    return _money(x, signed=True)


_FORMATS = {
    "usd": _money,
    "usd_signed": _signed_money,
    "pct": _pct,
    "int": _count,
    "tokens": _tokens,
    "num": _plain,
}


@dataclass(frozen=True)
class Column:
    """One table column: the row key, its header, how to show it and what it means."""

    key: str
    header: str
    kind: str = "num"  # usd, usd_signed, pct, int, tokens, num (numbers); text or time
    about: str = ""
    #: Shown only when some row has the key (figures beyond the spend.json contract).
    optional: bool = False

    @property
    def numeric(self) -> bool:
        return self.kind not in ("text", "time")


#: Columns of every grouping (the keys of ``total``), in the order a reader scans them.
METRICS = [
    Column("calls", "calls", "int", "calls in the logs"),
    Column("spend_usd", "spend", "usd", "cost of the calls (recomputed from tokens)"),
    Column("spend_share", "share of spend", "pct", "this row's spend / total spend"),
    Column("good_outcomes", "good outcomes", "int", "graded calls with outcome >= 0.5"),
    Column("graded_calls", "graded", "int", "calls with an outcome"),
    Column(
        "cost_per_good_outcome_usd",
        "cost / good outcome",
        "usd",
        "spend on graded calls / good outcomes",
    ),
    Column("wasted_usd", "wasted", "usd", "spend on failed or retried calls"),
    Column("failed_calls", "failed", "int", "graded calls with outcome < 0.5"),
    Column("retried_calls", "retried", "int", "calls the user sent again (a retry)"),
    Column("cache_hit_rate", "cache hit rate", "pct", "cached input tokens / input tokens"),
    Column("cache_saved_usd", "cache saved", "usd", "full input price - cache-read price"),
    Column("input_tokens", "input tokens", "tokens", "all prompt tokens, cached included"),
    Column("cached_input_tokens", "cached input", "tokens", "prompt tokens read from cache"),
    Column("cache_write_tokens", "cache writes", "tokens", "prompt tokens written to cache"),
    Column("output_tokens", "output tokens", "tokens", "completion tokens, reasoning included"),
    Column("graded_spend_usd", "graded spend", "usd", "spend on graded calls", optional=True),
    Column("unpriced_calls", "unpriced calls", "int", "calls with no cost", optional=True),
]

GROUPINGS = [
    ("team", "team", "Teams"),
    ("user", "user", "Users"),
    ("model", "model", "Models"),
    ("task", "task", "Tasks"),
    ("day", "day", "Days"),
]

SESSION_SPEND = [
    Column("session_id", "session", "text"),
    Column("user", "user", "text"),
    Column("team", "team", "text"),
    Column("calls", "calls", "int"),
    Column("spend_usd", "spend", "usd"),
    Column("good_outcomes", "good outcomes", "int"),
    Column("first", "first call (UTC)", "time"),
    Column("last", "last call (UTC)", "time"),
]

SESSION_GROWTH = [
    Column("session_id", "session", "text"),
    Column("user", "user", "text"),
    Column("team", "team", "text"),
    Column("calls", "calls", "int"),
    Column("spend_usd", "spend", "usd"),
    Column("start_input_tokens", "first context", "tokens", "input tokens of the first call"),
    Column("end_input_tokens", "last context", "tokens", "input tokens of the last call"),
    Column("growth_tokens", "growth", "tokens", "last context - first context"),
    Column(
        "turns_without_fresh_start",
        "turns without a fresh start",
        "int",
        "calls of the longest-growing run without a fresh start",
    ),
    Column("run_spend_usd", "spend in that run", "usd", optional=True),
]

COLD_CACHE = [
    Column("session_id", "session", "text"),
    Column("model", "model", "text"),
    Column("resends", "cold re-sends", "int"),
    Column("extra_usd", "extra spend", "usd", "what the re-sends cost above a warm cache"),
]

SOURCE_BY_MODEL = [
    Column("model", "model", "text"),
    Column("calls", "calls", "int"),
    Column("source_spend_usd", "source says", "usd", "the spend the source system stated"),
    Column("recomputed_spend_usd", "recomputed", "usd", "tokens x catalog prices"),
    Column("difference_usd", "difference", "usd_signed", "source - recomputed"),
]

#: Metric definitions shown at the bottom of the page (and as header tooltips).
DEFINITIONS = [
    (
        "spend",
        "Each call's cost_usd: recomputed by the importers from its token counts and the "
        "price catalog (LiteLLM's format: uncached input at the input price, cache reads at "
        "the cache-read price, cache writes at the 5-minute or 1-hour write premium, "
        "reasoning tokens as output), or by the reader where the log had no cost. A call "
        "the catalog cannot price counts 0 (unpriced calls). The source's own figure is "
        "kept apart (see 'Source cost vs recomputed'): with caching it is often wrong.",
    ),
    ("calls", "Model calls in the logs within the window (one row of the call log each)."),
    (
        "graded calls, good outcomes, failed",
        "A call is graded when an outcome reached it (a merged or reverted PR, a review, CI, "
        "a thumb, a judge score: see 'outcome-router grade'); the others are pending. A "
        "good outcome is a graded call with outcome >= 0.5, a failed call one below 0.5.",
    ),
    (
        "cost per good outcome",
        "Spend on graded calls divided by the good outcomes: what one good outcome cost. "
        "Pending calls are left out, since what they bought is not known yet.",
    ),
    (
        "wasted",
        "Spend on calls that failed or were retried (the user sent the same request "
        "again: a retry event, or a near-identical later prompt of the same session or "
        "user); a call both failed and retried counts once.",
    ),
    (
        "cache hit rate",
        "Cached input tokens / input tokens, where input tokens count every prompt token "
        "(cache reads and writes included, docs/call-log.md).",
    ),
    (
        "cache saved",
        "Cached input tokens times (input price - cache-read price) of the call's model: "
        "what the cache reads saved against paying the full input price.",
    ),
    (
        "cold-cache re-send",
        "A call that re-sent its session's previous context (same model, at least as many "
        "input tokens, within the longest cache TTL of 1 hour) but read less than half of "
        "that previous prompt from the cache, on a model whose cache reads are cheaper. "
        "Extra spend is what reading it from the cache would have saved. Gateways that "
        "drop cache hints, or a prompt prefix that changes every turn (a timestamp in the "
        "system prompt), show up here.",
    ),
    (
        "context growth",
        "A session's calls, in time order, form runs: a run goes on while each call's input "
        "tokens stay at least half of the previous call's; a smaller one is a fresh start "
        "(a new chat, /clear, a compaction). Growth is the session's run that grew most "
        "(last call's input tokens minus the first's) and 'turns without a fresh start' the "
        "calls of that run: every turn of a long run pays again for the whole history.",
    ),
    (
        "model mix",
        "Spend per day and model: a shift towards dearer models shows as a taller band.",
    ),
    (
        "source vs recomputed",
        "Difference = the spend the source stated (LiteLLM's spend column, a trace's cost "
        "attribute) minus the recomputed spend, over the calls where the source stated one. "
        "A positive difference means the source charged more than the tokens imply.",
    ),
    (
        "what a router would have done",
        "The off-policy estimate 'outcome-router evaluate' makes on gateway logs (doubly "
        "robust with logged propensities, self-normalised importance weighting with "
        "estimated ones) of the router bundle's mean quality and cost per call on the "
        "graded calls, with its interval; spends are those means times all the calls of "
        "the window, for the router and the logged side alike. ESS is the effective sample "
        "size of the importance weights: the smaller, the wider and less trustworthy.",
    ),
]


# ---------------------------------------------------------------- tables


def _columns(rows: Sequence[Mapping[str, Any]], known: Sequence[Column]) -> list[Column]:
    """The known columns, then any key the rows carry beyond them (newer spend.json)."""
    present = {key for row in rows for key in row}
    cols = [c for c in known if not c.optional or c.key in present]
    seen = {c.key for c in known}
    for row in rows:
        for key, value in row.items():
            if key in seen:
                continue
            seen.add(key)
            if _is_num(value) or value is None:
                kind = "usd" if key.endswith("_usd") else "num"
                kind = "pct" if key.endswith(("_rate", "_share")) else kind
            else:
                kind = "text"
            cols.append(Column(key, key.replace("_", " "), kind))
    return cols


#: An ISO 8601 time in UTC (``Z``, ``+00:00`` or no offset), as spend.json writes them.
_ISO_UTC = re.compile(r"(?P<day>\d{4}-\d\d-\d\d)[T ](?P<hm>\d\d:\d\d)(:\d\d(\.\d+)?)?(Z|\+00:?00)?")


def _when(value: Any) -> str:
    """An ISO 8601 UTC time shown as ``2026-11-26 10:10`` (it still sorts as text)."""
    if value is None:
        return "n/a"
    text = str(value)
    m = _ISO_UTC.fullmatch(text)
    return f"{m['day']} {m['hm']}" if m else text


def _cell(col: Column, value: Any) -> str:
    if col.kind == "time":
        return f'<td class="l">{_e(_when(value))}</td>'
    if not col.numeric:
        if value is not None and not isinstance(value, str):
            value = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        return f'<td class="l">{_e("" if value is None else value)}</td>'
    if _is_num(value):
        text = _FORMATS.get(col.kind, _plain)(value)
        return f'<td data-v="{_e(repr(float(value)))}">{_e(text)}</td>'
    if value is not None and not _is_num(value):  # a number column with a stray value
        return f'<td data-v="">{_e(value)}</td>'
    return '<td class="na" data-v="">n/a</td>'


def _th(col: Column) -> str:
    cls = "" if col.numeric else ' class="l"'
    about = f' title="{_e(col.about)}"' if col.about else ""
    kind = "num" if col.numeric else "text"
    return f'<th{cls} data-type="{kind}" data-key="{_e(col.key)}"{about}>{_e(col.header)}</th>'


def _table(
    table_id: str,
    rows: Sequence[Mapping[str, Any]],
    known: Sequence[Column],
    *,
    none: str,
    foot: Mapping[str, Any] | None = None,
) -> str:
    """A sortable table, or a "none" note when there are no rows."""
    if not rows:
        return f'<p class="none" id="{_e(table_id)}">none: {_e(none)}</p>'
    cols = _columns(rows, known)
    head = "".join(_th(c) for c in cols)
    body = "".join("<tr>" + "".join(_cell(c, r.get(c.key)) for c in cols) + "</tr>" for r in rows)
    tfoot = ""
    if foot is not None:
        tfoot = "<tfoot><tr>" + "".join(_cell(c, foot.get(c.key)) for c in cols) + "</tr></tfoot>"
    return (
        f'<div class="wide"><table class="sortable" id="{_e(table_id)}"><thead><tr>{head}'
        f"</tr></thead><tbody>{body}</tbody>{tfoot}</table></div>"
    )


def _with_share(rows: Sequence[Mapping[str, Any]], total_spend: Any) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        r = dict(row)
        if "spend_share" not in r:
            spend = r.get("spend_usd")
            ok = _is_num(spend) and _is_num(total_spend) and total_spend > 0
            r["spend_share"] = spend / total_spend if ok else None
        out.append(r)
    return out


def _rows(value: Any) -> list[Mapping[str, Any]]:
    """A list of row dicts from a possibly missing or null value."""
    if not isinstance(value, list):
        return []
    return [r for r in value if isinstance(r, Mapping)]


# ---------------------------------------------------------------- sections


def _headline(spend: Mapping[str, Any]) -> str:
    t = spend.get("total") or {}
    cold = spend.get("cold_cache") or {}
    source = spend.get("source_cost") or {}
    total_spend = t.get("spend_usd")
    wasted = t.get("wasted_usd")
    wasted_share = (
        wasted / total_spend if _is_num(wasted) and _is_num(total_spend) and total_spend else None
    )
    cards = [
        _card("spend", _money(total_spend), f"{_count(t.get('calls'))} calls"),
        _card(
            "cost per good outcome",
            _money(t.get("cost_per_good_outcome_usd")),
            f"{_count(t.get('good_outcomes'))} good of {_count(t.get('graded_calls'))} graded",
        ),
        _card(
            "wasted",
            _money(wasted),
            f"{_pct(wasted_share)} of spend; {_count(t.get('failed_calls'))} failed, "
            f"{_count(t.get('retried_calls'))} retried",
        ),
        _card(
            "cache hit rate",
            _pct(t.get("cache_hit_rate")),
            f"{_tokens(t.get('cached_input_tokens'))} of {_tokens(t.get('input_tokens'))} "
            "input tokens",
        ),
        _card("saved by the cache", _money(t.get("cache_saved_usd")), "vs full input price"),
        _card(
            "cold-cache re-sends",
            _money(cold.get("extra_usd")),
            f"extra, over {_count(cold.get('resends'))} re-sends",
        ),
    ]
    if _is_num(source.get("calls")) and source["calls"] > 0:
        cards.append(
            _card(
                "source vs recomputed",
                _money(source.get("difference_usd"), signed=True),
                f"source {_money(source.get('source_spend_usd'))}, "
                f"recomputed {_money(source.get('recomputed_spend_usd'))}",
            )
        )
    else:
        cards.append(_card("source vs recomputed", "n/a", "the logs state no spend of their own"))
    cf = spend.get("counterfactual")
    if isinstance(cf, Mapping):
        router = cf.get("router") or {}
        est = router.get("spend_usd") or {}
        logged = cf.get("logged") or {}
        cards.append(
            _card(
                "a router would have spent",
                _money(est.get("estimate")),
                f"[{_money(est.get('low'))}, {_money(est.get('high'))}] vs logged "
                f"{_money(logged.get('spend_usd'))}",
            )
        )
    return '<div class="headline">' + "".join(cards) + "</div>"


def _plot(images: Mapping[str, bytes], key: str, alt: str, none: str) -> str:
    if key in images:
        return _img(images[key], alt)
    return f'<p class="none">none: {_e(none)}</p>'


def _mix_section(spend: Mapping[str, Any], images: Mapping[str, bytes]) -> str:
    """Spend per day by model: the plot and the same numbers as a day x model table."""
    mix = _rows(spend.get("model_mix"))
    per_model: dict[str, float] = {}
    per_day: dict[str, dict[str, Any]] = {}
    for r in mix:
        model, day = str(r.get("model")), str(r.get("day"))
        value = r.get("spend_usd")
        per_model[model] = per_model.get(model, 0.0) + (value if _is_num(value) else 0.0)
        row = per_day.setdefault(day, {"day": day, "total": 0.0})  # absent models: $0
        row[f"m:{model}"] = (row.get(f"m:{model}") or 0.0) + (value if _is_num(value) else 0.0)
        row["total"] += value if _is_num(value) else 0.0
    models = sorted(per_model, key=lambda m: -per_model[m])
    cols = [Column("day", "day", "text")]
    cols += [Column(f"m:{m}", m, "usd") for m in models]
    cols.append(Column("total", "total", "usd"))
    rows = [{f"m:{m}": 0.0 for m in models} | per_day[d] for d in sorted(per_day)]
    return (
        '<h2 id="mix">Spend per day by model</h2>'
        + _plot(images, "spend_by_day", "spend per day, stacked by model", "no model mix")
        + '<p class="note">Each bar is one day\'s spend, split by model (the models with '
        "the most spend get their own colour, the rest are summed as other). A band that "
        "grows is traffic moving to that model.</p>"
        + (
            "<details><summary>the same as a table (day by model)</summary>"
            + _table("model-mix", rows, cols, none="no calls in the window")
            + "</details>"
            if rows
            else _table("model-mix", rows, cols, none="no calls in the window")
        )
    )


def _teams_section(spend: Mapping[str, Any], images: Mapping[str, bytes]) -> str:
    t = spend.get("total") or {}
    teams = _with_share(_rows((spend.get("by") or {}).get("team")), t.get("spend_usd"))
    name = Column("team", "team", "text")
    return (
        '<h2 id="teams">Spend and good outcomes by team</h2>'
        + _plot(images, "team_value", "spend and good outcomes per team", "no teams")
        + '<p class="note">Dashed line: the overall cost per good outcome; dotted: half and '
        "twice that. A team above the dashed line gets its good outcomes cheaper than the "
        "organisation does, one below it pays more for each.</p>"
        + _table(
            "by-team", teams, [name, *METRICS], none="no team in the logs", foot=_foot(t, "team")
        )
    )


def _foot(total: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The total row (a ``tfoot``, so sorting leaves it at the bottom)."""
    foot = dict(total)
    foot[key] = "total"
    foot["spend_share"] = 1.0 if _is_num(total.get("spend_usd")) else None
    return foot


def _groupings_section(spend: Mapping[str, Any]) -> str:
    t = spend.get("total") or {}
    by = spend.get("by") or {}
    parts = ['<h2 id="by">Spend by user, model, task and day</h2>']
    parts.append(
        '<p class="note">Click a header to sort (numbers largest first, click again to '
        "reverse); hover a header for its definition. The bold row is the total.</p>"
    )
    for key, header, title in GROUPINGS:
        if key == "team":
            continue
        rows = _with_share(_rows(by.get(key)), t.get("spend_usd"))
        parts.append(f'<h3 id="by-{key}-h">{_e(title)}</h3>')
        parts.append(
            _table(
                f"by-{key}",
                rows,
                [Column(key, header, "text"), *METRICS],
                none=f"no {key} in the logs",
                foot=_foot(t, key),
            )
        )
    extra = [k for k in by if k not in {g[0] for g in GROUPINGS}]
    for key in extra:  # groupings beyond the contract, e.g. a future "project"
        rows = _with_share(_rows(by.get(key)), t.get("spend_usd"))
        parts.append(f'<h3 id="by-{_e(key)}-h">by {_e(key)}</h3>')
        parts.append(
            _table(
                f"by-{key}",
                rows,
                [Column(str(key), str(key), "text"), *METRICS],
                none=f"no {key}",
                foot=_foot(t, str(key)),
            )
        )
    return "".join(parts)


def _cache_section(spend: Mapping[str, Any], images: Mapping[str, bytes]) -> str:
    t = spend.get("total") or {}
    cold = spend.get("cold_cache") or {}
    return (
        '<h2 id="cache">Prompt cache</h2>'
        + _plot(images, "cache_by_model", "cache hit rate per model", "no model with input tokens")
        + f'<p class="note">Overall hit rate {_e(_pct(t.get("cache_hit_rate")))} '
        f"({_e(_tokens(t.get('cached_input_tokens')))} of "
        f"{_e(_tokens(t.get('input_tokens')))} input tokens read from cache, "
        f"{_e(_tokens(t.get('cache_write_tokens')))} written); the cache saved "
        f"{_e(_money(t.get('cache_saved_usd')))}.</p>"
        "<h3>Cold-cache re-sends</h3>"
        f'<p class="note">{_e(_count(cold.get("resends")))} calls re-sent a prefix their '
        f"session had sent before without reading it from cache; they cost "
        f"{_e(_money(cold.get('spend_usd')))}, of which {_e(_money(cold.get('extra_usd')))} "
        "would not have been spent with a warm cache"
        + (
            f", in {_e(_count(cold.get('sessions')))} sessions"
            if _is_num(cold.get("sessions"))
            else ""
        )
        + ". Sessions with the most extra spend:</p>"
        + _table("cold-cache", _rows(cold.get("top")), COLD_CACHE, none="no cold-cache re-send")
    )


def _sessions_section(spend: Mapping[str, Any]) -> str:
    sessions = spend.get("sessions") or {}
    return (
        '<h2 id="sessions">Sessions</h2><h3>Top sessions by spend</h3>'
        + _table(
            "sessions-by-spend",
            _rows(sessions.get("by_spend")),
            SESSION_SPEND,
            none="no session ids in the logs",
        )
        + "<h3>Top sessions by context growth</h3>"
        + '<p class="note">Sessions whose context kept growing without a fresh start: every '
        "turn pays again for all that came before it (at the cache-read price at best).</p>"
        + _table(
            "sessions-by-growth",
            _rows(sessions.get("by_context_growth")),
            SESSION_GROWTH,
            none="no session ids in the logs",
        )
    )


def _source_section(spend: Mapping[str, Any]) -> str:
    source = spend.get("source_cost") or {}
    return (
        '<h2 id="source">Source cost vs recomputed</h2>'
        f'<p class="note">Over {_e(_count(source.get("calls")))} calls whose source stated a '
        f"spend: the source says {_e(_money(source.get('source_spend_usd')))}, the tokens "
        f"at catalog prices come to {_e(_money(source.get('recomputed_spend_usd')))} "
        f"(difference {_e(_money(source.get('difference_usd'), signed=True))}). This page "
        "uses the recomputed figure.</p>"
        + _table(
            "source-by-model",
            _rows(source.get("by_model")),
            SOURCE_BY_MODEL,
            none="no call with a source-stated spend",
        )
    )


def _counterfactual_section(spend: Mapping[str, Any], images: Mapping[str, bytes]) -> str:
    cf = spend.get("counterfactual")
    head = '<h2 id="router">What a router would have done</h2>'
    if not isinstance(cf, Mapping):
        return head + (
            '<p class="none" id="counterfactual">none: run <code>outcome-router report spend '
            "--bundle BUNDLE</code> to estimate what a router would have spent and achieved "
            "on the same traffic.</p>"
        )
    logged = cf.get("logged") or {}
    router = cf.get("router") or {}
    confidence = cf.get("confidence")
    level = f"{100 * confidence:.0f}%" if _is_num(confidence) else "95%"
    rows = []
    for key, label, fmt in (
        ("spend_usd", "spend", _money),
        ("cost_per_call_usd", "cost per call", _money),
        ("quality", "quality (mean outcome)", _plain),
    ):
        est = router.get(key) or {}
        if key not in logged and key not in router:
            continue  # cost_per_call_usd is beyond the contract
        rows.append(
            f'<tr><td class="l">{_e(label)}</td><td>{_e(fmt(logged.get(key)))}</td>'
            f"<td>{_e(fmt(est.get('estimate')))}</td><td>{_e(fmt(est.get('low')))}</td>"
            f"<td>{_e(fmt(est.get('high')))}</td></tr>"
        )
    warnings = [w for w in cf.get("warnings") or () if w]
    warn = (
        '<ul class="warn">' + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul>"
        if warnings
        else ""
    )
    used = f"on {_count(cf.get('calls'))} graded calls"
    if _is_num(cf.get("traffic_calls")):
        used += (
            f" of the {_count(cf['traffic_calls'])} in the window (spends are the per-call "
            "means times all the calls, for both sides)"
        )
    left_out = cf.get("left_out")
    if isinstance(left_out, Mapping) and any(_is_num(v) and v for v in left_out.values()):
        why = ", ".join(f"{k.replace('_', ' ')}: {_count(v)}" for k, v in left_out.items() if v)
        used += f"; left out ({why})"
    propensities = cf.get("propensity_source")
    about = (
        f"Bundle {cf.get('bundle') or 'n/a'} (router version {cf.get('router_version') or 'n/a'}"
        f"), estimator {cf.get('estimator') or 'none'}, {used}; effective sample size "
        f"{_plain(cf.get('ess'))}"
        + (f", {propensities} propensities" if propensities else "")
        + "."
    )
    return (
        head
        + _plot(images, "counterfactual", "router against logged spend and quality", "no estimate")
        + f'<p class="note">{_e(about)}</p>'
        + '<table id="counterfactual"><thead><tr><th class="l"></th><th>logged</th>'
        f"<th>router estimate</th><th>{_e(level)} low</th><th>{_e(level)} high</th></tr>"
        "</thead><tbody>" + "".join(rows) + "</tbody></table>" + warn
    )


def _scalar(value: Any) -> str:
    if isinstance(value, (Mapping, list)):
        return json.dumps(value, default=str)
    return _plain(value)


#: The top-level keys of the spend.json contract; others are listed under "Other figures".
CONTRACT_KEYS = frozenset(
    {
        "generated_at",
        "logs",
        "window",
        "currency",
        "total",
        "by",
        "sessions",
        "cold_cache",
        "model_mix",
        "source_cost",
        "counterfactual",
    }
)


def _definitions(spend: Mapping[str, Any]) -> str:
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in DEFINITIONS)
    extra = []
    for key, value in spend.items():
        if key in CONTRACT_KEYS:
            continue
        if isinstance(value, Mapping):
            text = ", ".join(f"{k}: {_scalar(v)}" for k, v in value.items()) or "none"
        elif value is None:
            text = "none"
        else:
            text = _scalar(value)
        extra.append(f"<dt>{_e(str(key).replace('_', ' '))}</dt><dd>{_e(text)}</dd>")
    others = ""
    if extra:
        others = (
            '<h3 id="other">Other figures and settings</h3><dl class="defs">'
            + "".join(extra)
            + "</dl>"
        )
    return f'<h2 id="definitions">Definitions</h2><dl class="defs">{items}</dl>{others}'


def _subtitle(spend: Mapping[str, Any]) -> str:
    window = spend.get("window") or {}
    logs = [str(p) for p in spend.get("logs") or ()]
    shown = ", ".join(logs[:3]) + (f" and {len(logs) - 3} more" if len(logs) > 3 else "")
    start, end = window.get("start"), window.get("end")
    calls = (spend.get("total") or {}).get("calls")
    if start and end:
        span = f"{_when(start)} to {_when(end)} UTC"
    else:
        span = "no timestamps in the logs" if _is_num(calls) and calls else "no calls"
    return (
        f'<p class="sub">{_e(span)}, currency {_e(spend.get("currency") or "USD")}. '
        f"Logs: {_e(shown or 'n/a')}. Generated {_e(_when(spend.get('generated_at')))}.</p>"
    )


def _summary(spend: Mapping[str, Any]) -> str:
    """One sentence per question the reader came with, biggest first."""
    t = spend.get("total") or {}
    by = spend.get("by") or {}
    total_spend = t.get("spend_usd")
    if not _is_num(t.get("calls")) or not t.get("calls"):
        return '<p class="summary">No calls in the window.</p>'
    parts = [
        f"{_money(total_spend)} over {_count(t.get('calls'))} calls bought "
        f"{_count(t.get('good_outcomes'))} good outcomes "
        f"({_money(t.get('cost_per_good_outcome_usd'))} each); {_money(t.get('wasted_usd'))} "
        "went on failed or retried calls."
    ]
    for key, what in (("team", "team"), ("model", "model"), ("user", "user")):
        rows = [r for r in _rows(by.get(key)) if _is_num(r.get("spend_usd"))]
        if len(rows) > 1 and _is_num(total_spend) and total_spend > 0:  # one row says nothing
            top = max(rows, key=lambda r: r["spend_usd"])
            parts.append(
                f"Most spend by {what}: {top.get(key)} "
                f"({_pct(top['spend_usd'] / total_spend)}, "
                f"{_money(top.get('cost_per_good_outcome_usd'))} per good outcome)."
            )
    return '<p class="summary">' + _e(" ".join(parts)) + "</p>"


# ---------------------------------------------------------------- public


def spend_images(spend: Mapping[str, Any]) -> dict[str, bytes]:
    """The page's PNG plots by name; a plot with nothing to draw is left out."""
    by = spend.get("by") or {}
    drawn = {
        "spend_by_day": spend_by_day_png(_rows(spend.get("model_mix"))),
        "team_value": team_value_png(_rows(by.get("team")), spend.get("total") or {}),
        "cache_by_model": cache_by_model_png(_rows(by.get("model"))),
    }
    if isinstance(spend.get("counterfactual"), Mapping):
        drawn["counterfactual"] = counterfactual_png(spend["counterfactual"])
    return {k: v for k, v in drawn.items() if v is not None}


def render_spend_html(
    spend: Mapping[str, Any],
    images: Mapping[str, bytes],
    title: str = "What the spend bought",
) -> str:
    """The page as a string (see :func:`write_spend_page`)."""
    nav = [
        ("mix", "spend per day"),
        ("teams", "teams"),
        ("router", "router"),
        ("cache", "cache"),
        ("sessions", "sessions"),
        ("by", "users, models, tasks, days"),
        ("source", "source cost"),
        ("definitions", "definitions"),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}{_SPEND_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        + _subtitle(spend)
        + "<nav>"
        + "".join(f'<a href="#{k}">{_e(v)}</a>' for k, v in nav)
        + "</nav>"
        + _headline(spend)
        + _summary(spend)
        + _mix_section(spend, images)
        + _teams_section(spend, images)
        + _counterfactual_section(spend, images)
        + _cache_section(spend, images)
        + _sessions_section(spend)
        + _groupings_section(spend)
        + _source_section(spend)
        + _definitions(spend)
        + f"<script>{_SORT_JS}</script></body></html>\n"
    )


def write_spend_page(spend: dict, out_dir: Path) -> Path:
    """Write ``out_dir/spend.html`` from a ``spend.json`` dict and return its path.

    Parameters
    ----------
    spend : dict
        ``spend.json`` as written by ``outcome-router report spend`` (see the module
        docstring for what may be missing or null).
    out_dir : Path
        Created if missing; ``spend.html`` is overwritten.

    Returns
    -------
    path : Path
        The page: one file, plots inline, no network needed to open it.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "spend.html"
    path.write_text(render_spend_html(spend, spend_images(spend)), encoding="utf-8")
    return path
