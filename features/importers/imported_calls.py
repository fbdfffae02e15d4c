"""What the call-log importers (otel, claude-code) share: the result they return, the
cost they recompute, the file they write, and the summary they print.

An importer turns another system's records into call-log rows (docs/call-log.md) plus
the optional columns of issue 11: ``cache_write_1h_tokens``, ``reasoning_tokens``,
``source_cost_usd`` (what the source itself said the call cost) and ``source`` (the
importer's name), and whatever columns of its own it documents (kept by the writer,
ignored by the reader). ``cost_usd`` is always recomputed from the price catalog: the
source's own figure is often wrong with caching, so reports use ours and the summary
shows both.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from features.call_log import COLUMNS
from features.prices import PriceCatalog

__all__ = [
    "CALL_SUFFIXES",
    "IMPORTED_COLUMNS",
    "CallsImport",
    "check_calls_path",
    "price_call",
    "price_key",
    "quarantine_summary",
    "spend_summary",
    "write_calls",
]

#: Call-log columns, then the optional columns every call importer may fill.
IMPORTED_COLUMNS = tuple(
    dict.fromkeys(
        (*COLUMNS, "cache_write_1h_tokens", "reasoning_tokens", "source_cost_usd", "source")
    )
)
CALL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".csv", ".csv.gz", ".parquet")
_TOKEN_COLUMNS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
)
_NUMBER_COLUMNS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_usd",
    "source_cost_usd",
    "latency_ms",
    "outcome",
    "propensity",
)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _json_value(name: str, value: Any) -> Any:
    """Token counts as integers, numpy scalars as Python values."""
    if hasattr(value, "item") and not isinstance(value, list | dict):
        value = value.item()
    if name in _TOKEN_COLUMNS and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: A snapshot date ending a model id: Anthropic ``-20250929``, OpenAI ``-2024-08-06``,
#: Vertex AI ``@20250929``.
SNAPSHOT_SUFFIX = re.compile(r"[-@](\d{8}|\d{4}-\d{2}-\d{2})$")


def price_key(prices: PriceCatalog, model: Any) -> str | None:
    """The catalog key that prices ``model``: `PriceCatalog.resolve`, else the model
    without its snapshot date.

    Agents log the dated snapshot that answered (Claude Code writes
    ``claude-sonnet-4-5-20250929``); a small catalog lists the undated alias. LiteLLM's
    full catalog lists the dated ids too, and an exact key always wins. A snapshot priced
    under its alias is shown in the summary (``models_priced_as``): older OpenAI
    snapshots were priced differently from today's alias.
    """
    if not isinstance(model, str) or not model:
        return None
    key = prices.resolve(model)
    if key is None and SNAPSHOT_SUFFIX.search(model):
        key = prices.resolve(SNAPSHOT_SUFFIX.sub("", model))
    return key


def price_call(prices: PriceCatalog, row: dict[str, Any]) -> None:
    """Set the row's ``cost_usd`` from the catalog (None when its model is not priced or
    it has no token counts) and ``priced_as``, the catalog key used."""
    key = price_key(prices, row.get("model"))
    row["priced_as"] = key
    row["cost_usd"] = None
    if key is None or _missing(row.get("input_tokens")):
        return

    def count(name: str) -> float:
        value = row.get(name)
        return 0 if _missing(value) else value

    row["cost_usd"] = prices.get(key).cost_usd(
        count("input_tokens"),
        count("output_tokens"),
        count("cached_input_tokens"),
        count("cache_write_tokens"),
        cache_write_1h_tokens=count("cache_write_1h_tokens"),
        reasoning_tokens=count("reasoning_tokens"),
    )


def calls_frame(rows: Sequence[dict[str, Any]], extra_columns: Sequence[str] = ()) -> pd.DataFrame:
    """Rows as a frame with every imported column, numbers as float (NaN when absent)."""
    columns = [*IMPORTED_COLUMNS, "priced_as"]
    columns += [c for c in extra_columns if c not in columns]
    frame = pd.DataFrame.from_records(list(rows), columns=columns)
    for name in _NUMBER_COLUMNS:
        frame[name] = frame[name].astype("float64")
    return frame


def check_calls_path(path: str | Path) -> Path:
    """The output path, checked before any reading: its extension says its format.

    Raises
    ------
    ValueError
        If the extension is not one the call-log reader reads.
    """
    path = Path(path)
    if not path.name.endswith(CALL_SUFFIXES):
        raise ValueError(
            f"--out {path}: name the call log by its format, one of {', '.join(CALL_SUFFIXES)} "
            "(docs/call-log.md)."
        )
    return path


def write_calls(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write imported calls by the file's extension (`CALL_SUFFIXES`).

    JSONL leaves absent values out of each line; CSV and Parquet hold ``messages`` as
    JSON text (the call-log reader parses it back). Every column is written: the
    reader keeps the call-log columns and ignores the rest.

    Raises
    ------
    ValueError
        If the extension is not one the call-log reader reads.
    """
    path = check_calls_path(path)
    name = path.name
    path.parent.mkdir(parents=True, exist_ok=True)
    if name.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "wt", encoding="utf-8") as fh:
            for row in frame.to_dict(orient="records"):
                kept = {k: _json_value(k, v) for k, v in row.items() if not _missing(v)}
                fh.write(json.dumps(kept, ensure_ascii=False, default=str) + "\n")
        return path
    out = frame.copy()
    for column in out.columns:
        if out[column].map(lambda v: isinstance(v, list | dict)).any():
            out[column] = out[column].map(
                lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, list | dict) else v
            )
    if name.endswith(".parquet"):
        out.to_parquet(path, index=False)
    else:
        out.to_csv(path, index=False)
    return path


def _reason_kind(reason: str) -> str:
    """A reason without the value it quotes, so that like reasons count together."""
    if reason.startswith("invalid JSON"):
        return "invalid JSON"
    return reason.split(", got ")[0]


def quarantine_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How many records were quarantined, by reason (the reason up to its ``, got``)."""
    reasons = Counter(_reason_kind(str(r["quarantine_reason"])) for r in rows)
    return {"n": len(rows), "by_reason": dict(reasons.most_common())}


def spend_summary(frame: pd.DataFrame) -> dict[str, Any]:
    """Recomputed spend beside the source's own, on the calls where both are known.

    ``difference_usd`` is source minus recomputed on those calls: positive when the
    source charged more than the catalog prices say.
    """
    cost = frame["cost_usd"]
    stated = frame["source_cost_usd"]
    both = cost.notna() & stated.notna()
    unpriced = frame.loc[cost.isna(), "model"].value_counts()
    renamed = frame.loc[frame["priced_as"].notna() & (frame["priced_as"] != frame["model"])]
    return {
        "recomputed_usd": round(float(cost.sum()), 6),
        "source_usd": round(float(stated.sum()), 6) if stated.notna().any() else None,
        "calls_with_source_cost": int(stated.notna().sum()),
        "source_usd_on_those_calls": round(float(stated[both].sum()), 6),
        "recomputed_usd_on_those_calls": round(float(cost[both].sum()), 6),
        "difference_usd": round(float(stated[both].sum() - cost[both].sum()), 6),
        "unpriced_calls": int(cost.isna().sum()),
        "unpriced_models": {str(k): int(v) for k, v in unpriced.items()},
        "models_priced_as": dict(zip(renamed["model"], renamed["priced_as"], strict=True)),
    }


@dataclass(frozen=True)
class CallsImport:
    """Calls read from another system's records.

    Attributes
    ----------
    frame : DataFrame, shape (n_calls, n_columns)
        One row per call: `IMPORTED_COLUMNS` and the importer's own columns.
    quarantined : list of dict
        Records not imported, each with ``quarantine_reason`` and ``source``
        (``FILE:LINE`` or ``FILE#spanN``).
    counts : dict
        What was read (files, lines or spans, duplicates collapsed, skipped kinds),
        specific to the importer.
    events : DataFrame or None
        Outcome events found beside the calls (`features.events.EventsRead.frame`
        columns), for importers whose source carries them.
    """

    frame: pd.DataFrame
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)
    events: pd.DataFrame | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {**self.counts, "calls_written": len(self.frame)}
        if self.events is not None:
            out["events_found"] = len(self.events)
        out["quarantined"] = quarantine_summary(self.quarantined)
        out["spend"] = spend_summary(self.frame)
        return out
