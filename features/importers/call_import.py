"""What every call-log importer returns, and its printed summary.

An importer that writes a call log (``litellm-spend``; ``otel`` and ``claude-code`` may
share it) builds one call-log row per call, checks each with
`features.call_log.validate_call_row` (spend logs have no prompt, so
``require_prompt=False``), prices it with the catalog and returns a `CallImport`.
``outcome-router import`` (``training/import_calls_command.py``) writes
``CallImport.frame`` with `features.call_log.write_call_log`, the quarantined rows beside
it, and prints `CallImport.to_dict`: rows read, calls written, quarantined, and the
spend the source stated against the spend recomputed from the catalog, in total and by
model, with the models the catalog could not price named.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from features.call_log import COLUMNS

__all__ = ["CallImport", "spend_by_model"]

_SUMMED = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)


def _money(value: float) -> float:
    return round(float(value), 6)


def spend_by_model(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Calls, tokens, the source's spend and the recomputed spend per model, costliest
    first. ``difference_usd`` is stated minus recomputed (positive: the source
    over-stated), as in ``report spend``."""
    if frame.empty:
        return []
    grouped = frame.groupby("model", sort=False)
    rows = []
    for model, part in grouped:
        source = part["source_cost_usd"].astype("float64")
        recomputed = part["cost_usd"].astype("float64")
        row: dict[str, Any] = {"model": str(model), "calls": len(part)}
        row.update({name: int(part[name].fillna(0).sum()) for name in _SUMMED if name in part})
        row["source_spend_usd"] = _money(source.sum())
        row["recomputed_spend_usd"] = _money(recomputed.sum())
        row["difference_usd"] = _money(source.sum() - recomputed.sum())
        rows.append(row)
    return sorted(rows, key=lambda r: -r["recomputed_spend_usd"])


@dataclass(frozen=True)
class CallImport:
    """Calls read from another system's exports.

    Attributes
    ----------
    source : str
        The importer's name (the ``source`` column of every row).
    frame : DataFrame
        One row per call, the call-log columns (`features.call_log.COLUMNS`).
    quarantined : list of dict
        Rejected rows as read, with ``quarantine_reason`` and ``source`` (``FILE:LINE``
        or ``FILE:#N`` for the N-th element of a JSON array).
    n_rows : int
        Rows (records, spans, transcript lines) read.
    unpriced : dict of str to int
        Models the price catalog does not know, with their number of calls: their
        ``cost_usd`` is the source's own figure (or empty when it had none).
    counts : dict of str to int
        Further counts the importer reports (failed calls, gateway cache hits...).
    """

    source: str
    frame: pd.DataFrame
    quarantined: list[dict[str, Any]]
    n_rows: int
    unpriced: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [c for c in COLUMNS if c not in self.frame]
        if missing:
            raise ValueError(f"CallImport.frame lacks call-log columns {missing}.")

    @property
    def n_quarantined(self) -> int:
        return len(self.quarantined)

    def to_dict(self) -> dict[str, Any]:
        """The printed summary (JSON-ready)."""
        source = self.frame["source_cost_usd"].astype("float64")
        recomputed = self.frame["cost_usd"].astype("float64")
        reasons = Counter(r.get("quarantine_reason", "") for r in self.quarantined)
        return {
            "source": self.source,
            "rows_read": self.n_rows,
            "calls_written": len(self.frame),
            "quarantined": self.n_quarantined,
            "quarantine_reasons": dict(reasons.most_common(10)),
            **{k: int(v) for k, v in self.counts.items()},
            "source_spend_usd": _money(source.sum()),
            "recomputed_spend_usd": _money(recomputed.sum()),
            "difference_usd": _money(source.sum() - recomputed.sum()),
            "models_not_in_catalog": dict(sorted(self.unpriced.items())),
            "calls_not_in_catalog": int(sum(self.unpriced.values())),
            "by_model": spend_by_model(self.frame),
        }
