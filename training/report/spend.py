"""What the spend bought: the aggregation behind ``outcome-router report spend``.

One Arrow table of calls (one row per call, the call-log columns plus ``retried``)
goes in; the figures of ``spend.json`` come out. Every figure is one DuckDB query over
that table, never a Python loop over rows, so 10M calls aggregate in seconds
(``benchmarks/spend.py``). Prices are looked up in Python once per distinct model (a
handful) and joined as a small table.

Definitions (README, "What the spend bought")
---------------------------------------------
- **spend**: ``cost_usd`` as logged, or as the reader recomputed it from the price
  catalog where the log had none. A call with no cost at all (a model the catalog does
  not price) counts 0 and is counted in ``unpriced_calls``.
- **cache hit rate**: cached input tokens / input tokens (both summed over calls with
  known input tokens; ``input_tokens`` counts cache reads, docs/call-log.md).
- **cache saved**: ``cached_input_tokens * (input price - cache-read price)`` of the
  call's model: what the cache reads saved against paying the input price.
- **good outcome**: ``outcome >= 0.5``; **failed**: ``outcome < 0.5``; a call with no
  outcome is pending (or ungraded) and is neither.
- **cost per good outcome**: spend on graded calls / good outcomes (null with none):
  pending calls' spend is left out, since what it bought is not known yet.
- **wasted**: spend on calls that failed or were retried. A call is retried when its
  ``outcome_source`` (from `features.grading.grade`) names a ``retry`` event or a
  ``retry_in_logs`` pair, or, without events, when `features.grading.detect_retries`
  pairs it with a near-identical later prompt of the same session or user.
- **context growth**: the calls of a session, in time order, form runs: a run goes on
  while each call's input tokens stay at least ``fresh_start_fraction`` (default 0.5)
  of the previous call's; a call below that is a fresh start (a new chat, /clear, a
  compaction) and opens a new run. A session's context growth is its run with the
  largest growth (last call's input tokens minus the first's), with
  ``turns_without_fresh_start`` the calls of that run. Long runs of a growing context
  re-send, and pay for, the whole history on every turn.
- **cold-cache re-send**: a call of a session that re-sends the previous call's
  context (same model, ``input_tokens >=`` the previous call's, at most
  ``cold_cache_max_gap`` later, default 1 hour: the longest cache TTL providers sell)
  but read less than ``cold_cache_fraction`` (default 0.5) of that previous prompt
  from the cache, although the model has a cache-read price below its input price.
  Its ``extra_usd`` is what reading the previous prompt from the cache would have
  saved: ``(previous input tokens - cached input tokens) * (input price - cache-read
  price)``. Gateways that drop cache hints, or a prompt prefix that changes on every
  turn (a timestamp in the system prompt), show up here.

Calls without a ``session_id``, or without input tokens, take no part in the session
figures; calls without a timestamp sort last in their session, then by request_id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from features.prices import PriceCatalog

__all__ = [
    "GROUPINGS",
    "METRIC_KEYS",
    "SpendSettings",
    "aggregate_spend",
    "combine_spend_parts",
    "price_table",
    "spend_parts",
]

#: Keys of ``total`` and of every ``by`` row, in order (the contract of spend.json).
METRIC_KEYS = (
    "calls",
    "spend_usd",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_hit_rate",
    "cache_saved_usd",
    "graded_calls",
    "good_outcomes",
    "cost_per_good_outcome_usd",
    "wasted_usd",
    "retried_calls",
    "failed_calls",
    "graded_spend_usd",
    "unpriced_calls",
)
#: The ``by`` groupings: name -> SQL expression of the group (missing values "(none)").
GROUPINGS = {
    "team": "team",
    "user": '"user"',
    "model": "model",
    "task": "task",
    "day": "day",
}
#: Shown for a missing user, team, task or day.
NONE = "(none)"
_TOKENS = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens")
#: Columns of the calls table and their Arrow types (missing optional ones are nulls).
CALL_COLUMNS: dict[str, pa.DataType] = {
    "request_id": pa.string(),
    "model": pa.string(),
    "timestamp": pa.timestamp("us"),
    "user": pa.string(),
    "team": pa.string(),
    "task": pa.string(),
    "session_id": pa.string(),
    **{name: pa.float64() for name in _TOKENS},
    "cost_usd": pa.float64(),
    "outcome": pa.float64(),
    "retried": pa.bool_(),
    "source_cost_usd": pa.float64(),
}

#: Additive sums per cell (team, user, model, task, day): the one pass over the calls.
_CELL_SUMS_SQL = """
    count(*) AS calls,
    sum(cost_usd) AS spend,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(cached_input_tokens) FILTER (WHERE input_tokens IS NOT NULL) AS cached_of_known,
    sum(cache_saved_usd) AS cache_saved,
    count(outcome) AS graded,
    count(*) FILTER (WHERE outcome >= 0.5) AS good,
    sum(cost_usd) FILTER (WHERE outcome IS NOT NULL) AS graded_spend,
    sum(cost_usd) FILTER (WHERE outcome < 0.5 OR retried) AS wasted,
    count(*) FILTER (WHERE retried) AS retried,
    count(*) FILTER (WHERE outcome < 0.5) AS failed,
    count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced,
    min(ts) AS first_ts,
    max(ts) AS last_ts
"""
#: The `METRIC_KEYS` from the cells' sums.
_METRICS_SQL = """
    CAST(sum(calls) AS BIGINT) AS calls,
    coalesce(sum(spend), 0) AS spend_usd,
    CAST(coalesce(sum(input_tokens), 0) AS BIGINT) AS input_tokens,
    CAST(coalesce(sum(output_tokens), 0) AS BIGINT) AS output_tokens,
    CAST(coalesce(sum(cached_input_tokens), 0) AS BIGINT) AS cached_input_tokens,
    CAST(coalesce(sum(cache_write_tokens), 0) AS BIGINT) AS cache_write_tokens,
    coalesce(sum(cached_of_known), 0) / nullif(sum(input_tokens), 0) AS cache_hit_rate,
    coalesce(sum(cache_saved), 0) AS cache_saved_usd,
    CAST(sum(graded) AS BIGINT) AS graded_calls,
    CAST(sum(good) AS BIGINT) AS good_outcomes,
    coalesce(sum(graded_spend), 0) / nullif(sum(good), 0) AS cost_per_good_outcome_usd,
    coalesce(sum(wasted), 0) AS wasted_usd,
    CAST(sum(retried) AS BIGINT) AS retried_calls,
    CAST(sum(failed) AS BIGINT) AS failed_calls,
    coalesce(sum(graded_spend), 0) AS graded_spend_usd,
    CAST(sum(unpriced) AS BIGINT) AS unpriced_calls,
    min(first_ts) AS first_ts,
    max(last_ts) AS last_ts
"""


@dataclass(frozen=True)
class SpendSettings:
    """The thresholds of the session figures (module docstring, "Definitions").

    Parameters
    ----------
    top : int, default=20
        Rows of each ``sessions`` list and of ``cold_cache.top``.
    fresh_start_fraction : float in (0, 1], default=0.5
        A call whose input tokens drop below this share of the previous call's starts
        a fresh context.
    cold_cache_fraction : float in (0, 1], default=0.5
        A re-send that reads less than this share of the previous prompt from the
        cache is cold.
    cold_cache_max_gap : str, default="1 hour"
        A re-send later than this after the previous call is not counted (the cache
        had expired anyway); DuckDB interval text.
    """

    top: int = 20
    fresh_start_fraction: float = 0.5
    cold_cache_fraction: float = 0.5
    cold_cache_max_gap: str = "1 hour"

    def __post_init__(self) -> None:
        if int(self.top) < 1:
            raise ValueError(f"top must be at least 1, got {self.top!r}.")
        for name in ("fresh_start_fraction", "cold_cache_fraction"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {value!r}.")


def price_table(models: list[str], prices: PriceCatalog) -> pa.Table:
    """Input and cache-read prices (USD per token) of each model, nulls where unknown.

    A model without a cache-read price gets null: its cached tokens saved nothing
    (the catalog lists no discount) and it never has a cold-cache re-send.
    """
    found = {m: prices.get(m) for m in models}
    return pa.table(
        {
            "model": pa.array(models, pa.string()),
            "input_price": pa.array(
                [p.input_cost_per_token if p else None for p in found.values()], pa.float64()
            ),
            "cache_read_price": pa.array(
                [p.cache_read_input_token_cost if p else None for p in found.values()],
                pa.float64(),
            ),
        }
    )


def _complete(calls: pa.Table) -> pa.Table:
    """``calls`` with every column of `CALL_COLUMNS` (absent optional ones as nulls)."""
    for name in ("request_id", "model"):
        if name not in calls.column_names:
            raise ValueError(f"the calls table needs a {name!r} column (docs/call-log.md).")
    for name, kind in CALL_COLUMNS.items():
        if name not in calls.column_names:
            calls = calls.append_column(name, pa.nulls(calls.num_rows, kind))
    return calls.select(list(CALL_COLUMNS))


def _connect(
    calls: pa.Table,
    prices: PriceCatalog | pa.Table,
    threads: int | None,
    *,
    preserve_order: bool = True,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the ``calls`` view over ``calls`` joined to the prices
    (a catalog is looked up once per distinct model)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if not preserve_order:
        con.execute("SET preserve_insertion_order = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.register("calls_in", _complete(calls))
    if isinstance(prices, PriceCatalog):
        models = [r[0] for r in con.execute("SELECT DISTINCT model FROM calls_in").fetchall()]
        prices = price_table([m for m in models if m is not None], prices)
    con.register("prices", prices)
    con.execute(_CALLS_VIEW)
    return con


def aggregate_spend(
    calls: pa.Table,
    prices: PriceCatalog | pa.Table,
    settings: SpendSettings | None = None,
    *,
    threads: int | None = None,
) -> dict[str, Any]:
    """Every figure of ``spend.json`` but the counterfactual and the file names.

    Parameters
    ----------
    calls : pyarrow.Table, shape (n_calls, n_columns)
        One row per call with the columns of `CALL_COLUMNS` (``request_id`` and
        ``model`` required, the others may be absent): token counts and costs as
        numbers, ``timestamp`` in UTC (naive or with a zone), ``retried`` boolean.
    prices : PriceCatalog or pyarrow.Table
        The catalog (looked up once per distinct model), or a ready `price_table`.
    settings : SpendSettings, optional
    threads : int, optional
        DuckDB threads; default: DuckDB's (one per core).

    Returns
    -------
    dict
        ``window``, ``total``, ``by`` (team, user, model, task, day), ``sessions``
        (``by_spend``, ``by_context_growth``), ``cold_cache``, ``model_mix`` and
        ``source_cost``, as documented in README "What the spend bought".
    """
    settings = settings or SpendSettings()
    con = _connect(calls, prices, threads, preserve_order=False)  # less memory; rows sorted
    try:
        return _Figures(con, settings).collect()
    finally:
        con.close()


_CALLS_VIEW = """
CREATE TEMP VIEW calls AS
SELECT
    c.request_id,
    c.model,
    CAST(c.timestamp AS TIMESTAMP) AS ts,
    CAST(CAST(c.timestamp AS TIMESTAMP) AS DATE) AS day,
    c."user",
    c.team,
    c.task,
    c.session_id,
    CAST(c.input_tokens AS DOUBLE) AS input_tokens,
    CAST(c.cached_input_tokens AS DOUBLE) AS cached_input_tokens,
    CAST(c.cache_write_tokens AS DOUBLE) AS cache_write_tokens,
    CAST(c.output_tokens AS DOUBLE) AS output_tokens,
    CAST(c.cost_usd AS DOUBLE) AS cost_usd,
    CAST(c.outcome AS DOUBLE) AS outcome,
    coalesce(c.retried, false) AS retried,
    CAST(c.source_cost_usd AS DOUBLE) AS source_cost_usd,
    p.input_price,
    p.cache_read_price,
    coalesce(c.cached_input_tokens, 0)
        * greatest(p.input_price - p.cache_read_price, 0) AS cache_saved_usd
FROM calls_in AS c LEFT JOIN prices AS p ON c.model = p.model
"""


def _iso(value: Any) -> str | None:
    """A naive UTC datetime as ISO 8601 with a Z."""
    return None if value is None else value.isoformat(timespec="seconds") + "Z"


class _Figures:
    """The queries, one method per section of spend.json."""

    def __init__(self, con: duckdb.DuckDBPyConnection, settings: SpendSettings) -> None:
        self.con = con
        self.s = settings

    def rows(self, sql: str, params: list | None = None) -> list[dict[str, Any]]:
        cursor = self.con.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def collect(self) -> dict[str, Any]:
        groups = self.groups()
        out = {
            "window": groups.pop("window"),
            "total": groups.pop("total"),
            "by": {name: groups[name] for name in GROUPINGS},
            "sessions": self.sessions(),
            "cold_cache": self.cold_cache(),
            "model_mix": groups["model_mix"],
            "source_cost": self.source_cost(),
        }
        return out

    def groups(self, *, cells_ready: bool = False) -> dict[str, Any]:
        """Total, each grouping and the model mix: one pass over the calls into cells
        (team, user, model, task, day), then GROUPING SETS over the cells.

        ``cells_ready``: the ``cells`` table exists already (combined from the cells of
        several partitions, `combine_spend_parts`)."""
        keys = list(GROUPINGS.values())
        if not cells_ready:
            self.con.execute(
                f"CREATE TEMP TABLE cells AS SELECT {', '.join(keys)}, {_CELL_SUMS_SQL} "
                f"FROM calls GROUP BY {', '.join(keys)}"
            )
        sets = ", ".join(["()", *(f"({k})" for k in keys), "(day, model)"])
        shown = [
            f"coalesce(strftime(day, '%Y-%m-%d'), '{NONE}') AS day"
            if k == "day"
            else f"coalesce({k}, '{NONE}') AS {k}"
            for k in keys
        ]
        sql = f"""
            SELECT {", ".join(shown)}, grouping({", ".join(keys)}) AS g, {_METRICS_SQL}
            FROM cells GROUP BY GROUPING SETS ({sets})
        """
        n = len(keys)
        full = (1 << n) - 1
        bit = {name: 1 << (n - 1 - i) for i, name in enumerate(GROUPINGS)}
        out: dict[str, Any] = {name: [] for name in GROUPINGS}
        out["model_mix"] = []
        for row in self.rows(sql):
            g = row.pop("g")
            first, last = row.pop("first_ts"), row.pop("last_ts")
            metrics = {k: row[k] for k in METRIC_KEYS}
            if g == full:
                out["total"] = metrics
                out["window"] = {"start": _iso(first), "end": _iso(last)}
                continue
            if g == full & ~bit["day"] & ~bit["model"]:
                out["model_mix"].append(
                    {
                        "day": row["day"],
                        "model": row["model"],
                        "calls": row["calls"],
                        "spend_usd": row["spend_usd"],
                    }
                )
                continue
            (name,) = (k for k in GROUPINGS if g == full & ~bit[k])
            out[name].append({name: row[name], **metrics})
        if not out.get("total") or not out["total"]["calls"]:
            raise ValueError("no calls to report on.")
        for name, rows in out.items():
            if name == "day":
                rows.sort(key=lambda r: r["day"])
            elif name == "model_mix":
                rows.sort(key=lambda r: (r["day"], -r["spend_usd"], r["model"]))
            elif name in GROUPINGS:
                rows.sort(key=lambda r, name=name: (-r["spend_usd"], r[name]))
        return out

    def sessions(self) -> dict[str, list[dict[str, Any]]]:
        """Top sessions by spend and by context growth (window functions over turns)."""
        top = int(self.s.top)
        self.con.execute(
            """
            CREATE TEMP TABLE session_totals AS
            SELECT session_id, coalesce(any_value("user"), '(none)') AS "user",
                   coalesce(any_value(team), '(none)') AS team,
                   count(*) AS calls, coalesce(sum(cost_usd), 0) AS spend_usd,
                   count(*) FILTER (WHERE outcome >= 0.5) AS good_outcomes,
                   min(ts) AS first, max(ts) AS last
            FROM calls WHERE session_id IS NOT NULL GROUP BY session_id
            """
        )
        by_spend = self.rows(
            """
            SELECT session_id, "user", team, calls, spend_usd, good_outcomes, first, last
            FROM session_totals ORDER BY spend_usd DESC, session_id LIMIT ?
            """,
            [top],
        )
        for row in by_spend:
            row["first"], row["last"] = _iso(row["first"]), _iso(row["last"])
        # Each call beside the previous and next call of its session: ONE window sort.
        # Only the calls that matter are kept: cold-cache re-sends, and the first and
        # last call of each run (a run ends where the next call is a fresh start), with
        # the session's running cost, so a run's figures come from its two ends.
        fresh = float(self.s.fresh_start_fraction)
        gap = _interval(self.s.cold_cache_max_gap)
        self.con.execute(
            f"""
            CREATE TEMP TABLE turns AS
            SELECT * FROM (
                SELECT session_id, turn, model, input_tokens, cost_usd, running_cost,
                       prev_input IS NULL OR input_tokens < {fresh} * prev_input AS run_start,
                       next_input IS NULL OR next_input < {fresh} * input_tokens AS run_end,
                       coalesce(
                           prev_input > 0
                           AND input_tokens >= prev_input
                           AND model = prev_model
                           AND cached_input_tokens < ? * prev_input
                           AND input_price > cache_read_price
                           AND (ts IS NULL OR prev_ts IS NULL
                                OR ts - prev_ts <= INTERVAL '{gap}'),
                           false) AS cold,
                       greatest(prev_input - cached_input_tokens, 0)
                           * (input_price - cache_read_price) AS extra_usd
                FROM (
                    SELECT session_id, ts, model, input_tokens, cost_usd, input_price,
                           cache_read_price,
                           coalesce(cached_input_tokens, 0) AS cached_input_tokens,
                           row_number() OVER w AS turn,
                           lag(input_tokens) OVER w AS prev_input,
                           lead(input_tokens) OVER w AS next_input,
                           lag(model) OVER w AS prev_model,
                           lag(ts) OVER w AS prev_ts,
                           sum(coalesce(cost_usd, 0)) OVER (
                               w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
                           ) AS running_cost
                    FROM calls
                    WHERE session_id IS NOT NULL AND input_tokens IS NOT NULL
                    WINDOW w AS (PARTITION BY session_id ORDER BY ts NULLS LAST, request_id)
                )
            )
            WHERE cold OR run_start OR run_end
            """,
            [float(self.s.cold_cache_fraction)],
        )
        # A run's start and end are consecutive among the kept run_start/run_end calls.
        growth = self.rows(
            """
            WITH ends AS (
                SELECT session_id, turn, input_tokens, run_start, run_end,
                       running_cost - coalesce(cost_usd, 0) AS cost_before,
                       lead(turn) OVER e AS end_turn,
                       lead(input_tokens) OVER e AS end_input_tokens,
                       lead(running_cost) OVER e AS end_running_cost
                FROM turns WHERE run_start OR run_end
                WINDOW e AS (PARTITION BY session_id ORDER BY turn)
            ), best AS (
                SELECT session_id, turn AS start_turn,
                       input_tokens AS start_input_tokens, end_input_tokens,
                       end_turn - turn + 1 AS turns,
                       end_running_cost - cost_before AS run_spend_usd
                FROM ends
                WHERE run_start AND NOT run_end AND end_input_tokens > input_tokens
                QUALIFY row_number() OVER (
                    PARTITION BY session_id
                    ORDER BY end_input_tokens - input_tokens DESC, turns DESC, start_turn
                ) = 1
            )
            SELECT b.session_id, s."user", s.team, s.calls, s.spend_usd,
                   CAST(b.start_input_tokens AS BIGINT) AS start_input_tokens,
                   CAST(b.end_input_tokens AS BIGINT) AS end_input_tokens,
                   CAST(b.end_input_tokens - b.start_input_tokens AS BIGINT) AS growth_tokens,
                   b.turns AS turns_without_fresh_start,
                   b.run_spend_usd
            FROM best AS b JOIN session_totals AS s USING (session_id)
            ORDER BY growth_tokens DESC, turns_without_fresh_start DESC, b.session_id
            LIMIT ?
            """,
            [top],
        )
        return {"by_spend": by_spend, "by_context_growth": growth}

    def cold_cache(self) -> dict[str, Any]:
        """Cold-cache re-sends: totals, and the sessions (and models) that made most."""
        self.con.execute(
            "CREATE TEMP TABLE cold AS SELECT session_id, model, cost_usd, extra_usd "
            "FROM turns WHERE cold"
        )
        (total,) = self.rows(
            """
            SELECT count(*) AS resends, coalesce(sum(cost_usd), 0) AS spend_usd,
                   coalesce(sum(extra_usd), 0) AS extra_usd,
                   count(DISTINCT session_id) AS sessions
            FROM cold
            """
        )
        total["top"] = self.rows(
            """
            SELECT session_id, model, count(*) AS resends, sum(extra_usd) AS extra_usd
            FROM cold GROUP BY session_id, model
            ORDER BY extra_usd DESC, session_id, model LIMIT ?
            """,
            [int(self.s.top)],
        )
        return total

    def source_cost(self) -> dict[str, Any]:
        """The source's own stated spend (``source_cost_usd``, kept by the importers)
        beside the recomputed one, over the calls that have it. ``difference_usd`` is
        stated minus recomputed: positive when the source charged more than the tokens
        cost (LiteLLM with prompt caching, BerriAI/litellm#9812, #11789)."""
        rows = self.rows(
            """
            SELECT model, grouping(model) AS g, count(*) AS calls,
                   coalesce(sum(source_cost_usd), 0) AS source_spend_usd,
                   coalesce(sum(cost_usd), 0) AS recomputed_spend_usd,
                   coalesce(sum(source_cost_usd), 0) - coalesce(sum(cost_usd), 0)
                       AS difference_usd
            FROM calls WHERE source_cost_usd IS NOT NULL
            GROUP BY GROUPING SETS ((), (model))
            """
        )
        total = next(
            (r for r in rows if r["g"] == 1),
            {
                "calls": 0,
                "source_spend_usd": 0.0,
                "recomputed_spend_usd": 0.0,
                "difference_usd": 0.0,
            },
        )
        by_model = sorted(
            ({k: v for k, v in r.items() if k != "g"} for r in rows if r["g"] == 0),
            key=lambda r: (-abs(r["difference_usd"]), r["model"]),
        )
        return {**{k: v for k, v in total.items() if k not in ("g", "model")}, "by_model": by_model}


# ------------------------------------------------------------------ by partition
#: How each column of the cells combines across partitions (the rest are sums).
_CELL_COMBINE = {"first_ts": "min", "last_ts": "max"}


def spend_parts(
    calls: pa.Table,
    prices: PriceCatalog | pa.Table,
    settings: SpendSettings | None = None,
    *,
    threads: int | None = 1,
) -> dict[str, Any]:
    """The figures of one part of the calls in a form that combines exactly.

    For `report spend --cluster`: each Dask worker aggregates its shard, and
    `combine_spend_parts` adds the shards up. Exactly, when every session's (and
    user's) calls are in one shard (`training.grade_cluster.session_shards`): the
    cells (team, user, model, task, day) hold sums, counts, minima and maxima, never
    means, so summing cells gives the whole log's cells; every session figure is
    whole inside its shard, so the top N of all sessions is among the shards' top N.

    Returns
    -------
    dict
        ``cells`` (Arrow table), ``sessions`` (each shard's top ``by_spend`` and
        ``by_context_growth``), ``cold_cache`` (totals and top), ``source_cost``
        (per-model sums, rows).
    """
    settings = settings or SpendSettings()
    con = _connect(calls, prices, threads)
    try:
        keys = ", ".join(GROUPINGS.values())
        cells = con.sql(
            f"SELECT {keys}, {_CELL_SUMS_SQL} FROM calls GROUP BY {keys}"
        ).to_arrow_table()
        figures = _Figures(con, settings)
        sessions = figures.sessions()
        cold = figures.cold_cache()
        source = figures.rows(
            """
            SELECT model, count(*) AS calls,
                   coalesce(sum(source_cost_usd), 0) AS source_spend_usd,
                   coalesce(sum(cost_usd), 0) AS recomputed_spend_usd
            FROM calls WHERE source_cost_usd IS NOT NULL GROUP BY model
            """
        )
    finally:
        con.close()
    return {"cells": cells, "sessions": sessions, "cold_cache": cold, "source_cost": source}


def combine_spend_parts(
    parts: list[dict[str, Any]], settings: SpendSettings | None = None
) -> dict[str, Any]:
    """`aggregate_spend`'s figures from the `spend_parts` of disjoint session shards.

    Counts are equal to the one-process figures; sums of USD and tokens equal them up
    to the order floating-point additions are made in (relative 1e-12).
    """
    settings = settings or SpendSettings()
    top = int(settings.top)
    cells = pa.concat_tables([p["cells"] for p in parts], promote_options="permissive")
    keys = list(GROUPINGS.values())
    sums = [
        f"{_CELL_COMBINE.get(name, 'sum')}({name}) AS {name}"
        for name in cells.column_names
        if name not in {k.strip('"') for k in keys}
    ]
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("cell_parts", cells)
        con.execute(
            f"CREATE TEMP TABLE cells AS SELECT {', '.join(keys)}, {', '.join(sums)} "
            f"FROM cell_parts GROUP BY {', '.join(keys)}"
        )
        groups = _Figures(con, settings).groups(cells_ready=True)
    finally:
        con.close()
    by_spend = sorted(
        (r for p in parts for r in p["sessions"]["by_spend"]),
        key=lambda r: (-r["spend_usd"], r["session_id"]),
    )[:top]
    growth = sorted(
        (r for p in parts for r in p["sessions"]["by_context_growth"]),
        key=lambda r: (-r["growth_tokens"], -r["turns_without_fresh_start"], r["session_id"]),
    )[:top]
    cold = {
        name: sum(p["cold_cache"][name] for p in parts)
        for name in ("resends", "spend_usd", "extra_usd", "sessions")
    }
    cold["top"] = sorted(
        (r for p in parts for r in p["cold_cache"]["top"]),
        key=lambda r: (-r["extra_usd"], r["session_id"], r["model"]),
    )[:top]
    by_model: dict[str, dict[str, Any]] = {}
    for p in parts:
        for r in p["source_cost"]:
            row = by_model.setdefault(
                r["model"],
                {
                    "model": r["model"],
                    "calls": 0,
                    "source_spend_usd": 0.0,
                    "recomputed_spend_usd": 0.0,
                },
            )
            for name in ("calls", "source_spend_usd", "recomputed_spend_usd"):
                row[name] += r[name]
    for row in by_model.values():
        row["difference_usd"] = row["source_spend_usd"] - row["recomputed_spend_usd"]
    total = {
        name: sum(r[name] for r in by_model.values())
        for name in ("calls", "source_spend_usd", "recomputed_spend_usd")
    }
    total["difference_usd"] = total["source_spend_usd"] - total["recomputed_spend_usd"]
    source_cost = {
        **total,
        "by_model": sorted(
            by_model.values(), key=lambda r: (-abs(r["difference_usd"]), r["model"])
        ),
    }
    return {
        "window": groups.pop("window"),
        "total": groups.pop("total"),
        "by": {name: groups[name] for name in GROUPINGS},
        "sessions": {"by_spend": by_spend, "by_context_growth": growth},
        "cold_cache": cold,
        "model_mix": groups["model_mix"],
        "source_cost": source_cost,
    }


def _interval(text: str) -> str:
    """Interval text safe to inline in SQL (digits, letters, spaces)."""
    if not all(ch.isalnum() or ch in " ." for ch in str(text)):
        raise ValueError(f"cold_cache_max_gap must read like '1 hour', got {text!r}.")
    return str(text)
