"""What the trace importers (otel, claude-code) add to the shared call import
(`features.importers.call_import`): columns of their own, snapshot-date pricing, a
writer that keeps those columns, and nested counts in the summary.

An importer turns another system's records into call-log rows (docs/call-log.md),
checked with `features.call_log.validate_call_row` (prompt-less rows allowed: spans
rarely capture content), plus columns of its own that the reader ignores and the
writer keeps: a Claude Code call's ``is_sidechain``, a span's ``trace_id``. ``cost_usd``
is recomputed from the price catalog, as ``litellm-spend`` does it: the source's own
figure is often wrong with caching, so reports use ours, and a model the catalog
cannot price keeps the source's figure (or none). The printed summary is
`CallImport.to_dict` (the same keys for every call importer) plus the importer's
counts.
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

from features.call_log import COLUMNS, TOKEN_COLUMNS, validate_call_row
from features.call_log_files import jsonable_row
from features.importers.call_import import CallImport
from features.prices import PriceCatalog

__all__ = [
    "CALL_SUFFIXES",
    "CallsImport",
    "check_calls_path",
    "checked_calls",
    "price_call",
    "price_key",
    "write_calls",
]

CALL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".csv", ".csv.gz", ".parquet")
#: The catalog key that priced a call: every trace importer writes it.
PRICED_AS = "priced_as"
#: A snapshot date ending a model id: Anthropic ``-20250929``, OpenAI ``-2024-08-06``,
#: Vertex AI ``@20250929``.
SNAPSHOT_SUFFIX = re.compile(r"[-@](\d{8}|\d{4}-\d{2}-\d{2})$")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


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
    """Set the row's ``cost_usd`` from the catalog and ``priced_as``, the catalog key
    used. A model the catalog cannot price keeps the source's own figure
    (``source_cost_usd``, or None), as `features.importers.litellm_spend` does."""
    key = price_key(prices, row.get("model"))
    row[PRICED_AS] = key
    row["cost_usd"] = row.get("source_cost_usd")
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


def checked_calls(
    rows: Sequence[dict[str, Any]],
    own_columns: Sequence[str],
    quarantined: list[dict[str, Any]],
    where: Sequence[str],
) -> pd.DataFrame:
    """The rows checked as the call-log reader checks them (``require_prompt=False``),
    as a frame of the call-log columns, ``priced_as`` and ``own_columns``; a rejected
    row is appended to ``quarantined`` with its reason and ``where`` it was read."""
    good = []
    for row, source in zip(rows, where, strict=True):
        try:
            clean = validate_call_row(row, require_prompt=False)
        except (ValueError, TypeError) as exc:
            quarantined.append(
                {**jsonable_row(row), "quarantine_reason": str(exc), "source": source}
            )
            continue
        good.append({**clean, **{c: row.get(c) for c in (PRICED_AS, *own_columns)}})
    columns = list(dict.fromkeys((*COLUMNS, PRICED_AS, *own_columns)))
    return pd.DataFrame.from_records(good, columns=columns)


def _json_value(name: str, value: Any) -> Any:
    """Token counts as integers, numpy scalars as Python values."""
    if hasattr(value, "item") and not isinstance(value, list | dict):
        value = value.item()
    if name in TOKEN_COLUMNS and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


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
    """Write imported calls by the file's extension (`CALL_SUFFIXES`), every column.

    `features.call_log.write_call_log` writes the call-log columns only; the trace
    importers' own columns (``is_sidechain``, ``trace_id``...) are kept here, and the
    reader ignores them. JSONL leaves absent values out of each line; CSV and Parquet
    hold ``messages`` as JSON text (the call-log reader parses it back).

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


@dataclass(frozen=True)
class CallsImport:
    """Calls read from traces or transcripts.

    Attributes
    ----------
    source : str
        The importer's name (the ``source`` column of every row).
    frame : DataFrame, shape (n_calls, n_columns)
        One row per call: `features.call_log.COLUMNS`, ``priced_as`` and the
        importer's own columns.
    n_rows : int
        Records read (spans, transcript lines).
    quarantined : list of dict
        Records not imported, each with ``quarantine_reason`` and ``source``
        (``FILE:LINE`` or ``FILE#spanN``).
    counts : dict
        What the importer reports besides (files, duplicates collapsed, skipped kinds),
        values numbers or dicts of them.
    events : DataFrame or None
        Outcome events found beside the calls (`features.events.EventsRead.frame`
        columns), for importers whose source carries them.
    """

    source: str
    frame: pd.DataFrame
    n_rows: int
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)
    events: pd.DataFrame | None = None

    def to_dict(self) -> dict[str, Any]:
        """The printed summary: `CallImport.to_dict` (what every call importer prints)
        with the snapshots priced under an alias, the source's spend against ours on
        the calls that state it, and the importer's counts."""
        priced = self.frame[PRICED_AS].notna()
        unpriced = Counter(self.frame.loc[~priced, "model"])
        shared = CallImport(
            source=self.source,
            frame=self.frame,
            quarantined=self.quarantined,
            n_rows=self.n_rows,
            unpriced=dict(unpriced),
        ).to_dict()
        renamed = self.frame.loc[priced & (self.frame[PRICED_AS] != self.frame["model"])]
        stated = self.frame["source_cost_usd"].notna() & priced
        out = {
            **shared,
            "models_priced_as": dict(zip(renamed["model"], renamed[PRICED_AS], strict=True)),
            "calls_stating_spend": {
                "calls": int(stated.sum()),
                "source_spend_usd": round(
                    float(self.frame.loc[stated, "source_cost_usd"].sum()), 6
                ),
                "recomputed_spend_usd": round(float(self.frame.loc[stated, "cost_usd"].sum()), 6),
            },
            **self.counts,
        }
        if self.events is not None:
            out["judge_score_events"] = len(self.events)
        return out
