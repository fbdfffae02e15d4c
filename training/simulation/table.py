"""The full-information table a simulation draws from: every candidate's outcome, cost
and tokens on every prompt.

A benchmark where each model answered each prompt is the ground truth of a simulated
gateway: the logging policy picks one model per prompt, the simulated log shows only
that model's row, and the table keeps what every other model would have done.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.call_log import read_call_logs
from features.prices import PriceCatalog

#: Per (prompt, model) figures kept from the log besides ``outcome`` and ``cost_usd``:
#: the chosen model's usage goes onto its simulated call.
USAGE_COLUMNS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "latency_ms",
)


@dataclass(frozen=True)
class FullInformationTable:
    """Every candidate's logged outcome, cost and usage on every prompt.

    Parameters
    ----------
    prompt_ids : ndarray of str, shape (n_prompts,)
        Sorted, unique.
    candidates : tuple of str, length n_candidates
        Column ``j`` of every matrix is ``candidates[j]``.
    outcome : ndarray of float, shape (n_prompts, n_candidates)
        Graded outcome in [0, 1].
    cost_usd : ndarray of float, shape (n_prompts, n_candidates)
    usage : dict of str to ndarray of float, shape (n_prompts, n_candidates) each
        `USAGE_COLUMNS` (NaN where the log had no value).
    prompts : DataFrame
        One row per prompt, in ``prompt_ids`` order: ``prompt``, ``messages``,
        ``task`` and ``team`` of the prompt's first row.
    n_dropped : int
        Prompts of the log left out because some candidate has no outcome or cost
        for them.
    """

    prompt_ids: np.ndarray
    candidates: tuple[str, ...]
    outcome: np.ndarray
    cost_usd: np.ndarray
    usage: dict[str, np.ndarray]
    prompts: pd.DataFrame
    n_dropped: int = 0

    def __post_init__(self) -> None:
        shape = (len(self.prompt_ids), len(self.candidates))
        for name, values in (("outcome", self.outcome), ("cost_usd", self.cost_usd)):
            if values.shape != shape or not np.isfinite(values).all():
                raise ValueError(
                    f"Expected a finite {name} of shape (n_prompts, n_candidates) = {shape}, "
                    f"got shape {values.shape}."
                )
        if len(self.prompts) != shape[0]:
            raise ValueError(f"Expected {shape[0]} prompt rows, got {len(self.prompts)}.")

    @property
    def n_prompts(self) -> int:
        return int(self.outcome.shape[0])

    @property
    def n_candidates(self) -> int:
        return int(self.outcome.shape[1])

    def to_long_frame(self) -> pd.DataFrame:
        """One row per (prompt, candidate): ``prompt_id``, ``model``, ``outcome``,
        ``cost_usd`` and the usage columns; the hidden truth of a simulation."""
        n, k = self.outcome.shape
        frame = pd.DataFrame(
            {
                "prompt_id": np.repeat(self.prompt_ids, k),
                "model": np.tile(np.asarray(self.candidates, dtype=object), n),
                "outcome": self.outcome.ravel(),
                "cost_usd": self.cost_usd.ravel(),
            }
        )
        for name in USAGE_COLUMNS:
            frame[name] = self.usage[name].ravel()
        return frame

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, candidates: Sequence[str] | None = None
    ) -> FullInformationTable:
        """The table of a validated call-log frame (`features.call_log.CallLogRead.frame`).

        Parameters
        ----------
        frame : DataFrame
            Call-log rows; those without an outcome or a cost are ignored, and of
            several rows of one (prompt, model) the first is kept.
        candidates : sequence of str, optional
            Models to simulate, in this order. Default: every model with an outcome,
            sorted.

        Raises
        ------
        ValueError
            If a named candidate has no graded row, or no prompt has an outcome and a
            cost for every candidate.
        """
        all_prompts = frame["prompt_id"].astype(str).nunique()
        rows = frame[frame["outcome"].notna() & frame["cost_usd"].notna()].copy()
        rows["prompt_id"] = rows["prompt_id"].astype(str)
        known = sorted(rows["model"].astype(str).unique().tolist())
        if candidates is None:
            cands = tuple(known)
        else:
            cands = tuple(str(c) for c in candidates)
            absent = [c for c in cands if c not in known]
            if absent:
                raise ValueError(
                    f"Candidates {absent} have no row with an outcome and a cost; models "
                    f"with both are {known}. Pass --prices for a model without cost_usd."
                )
        rows = rows[rows["model"].isin(cands)].drop_duplicates(["prompt_id", "model"])
        counts = rows.groupby("prompt_id")["model"].nunique()
        kept = np.sort(counts.index[counts.to_numpy() == len(cands)].to_numpy().astype(str))
        if len(kept) == 0 or not cands:
            raise ValueError(
                f"No prompt has an outcome and a cost for every candidate {list(cands)}: a "
                "simulation needs a full-information log (every candidate answered every "
                "prompt). Pass fewer --candidates."
            )
        indexed = rows.set_index(["prompt_id", "model"])
        index = pd.MultiIndex.from_product([kept, list(cands)])

        def matrix(name: str) -> np.ndarray:
            values = indexed[name].reindex(index).to_numpy(dtype=np.float64)
            return values.reshape(len(kept), len(cands))

        firsts = (
            frame.assign(prompt_id=frame["prompt_id"].astype(str))
            .drop_duplicates("prompt_id")
            .set_index("prompt_id")
            .loc[kept, ["prompt", "messages", "task", "team"]]
            .reset_index()
        )
        return cls(
            prompt_ids=kept,
            candidates=cands,
            outcome=matrix("outcome"),
            cost_usd=matrix("cost_usd"),
            usage={name: matrix(name) for name in USAGE_COLUMNS},
            prompts=firsts,
            n_dropped=int(all_prompts - len(kept)),
        )


def read_full_information(
    logs: Any,
    *,
    candidates: Sequence[str] | None = None,
    prices: str | Path | None = None,
) -> tuple[FullInformationTable, int]:
    """Read a full-information call log through the one validated reader.

    Parameters
    ----------
    logs : path, list of paths, or DataFrame
        Call-log files or folders (docs/call-log.md), or call-log rows in a frame
        (e.g. `benchmarks.datasets.alpacaeval_calls`), which are written to a
        temporary Parquet file and read back, so they are validated the same way.
    candidates : sequence of str, optional
        See `FullInformationTable.from_frame`.
    prices : path, optional
        Price catalog for rows without ``cost_usd``; default: the shipped one.

    Returns
    -------
    table : FullInformationTable
    n_quarantined : int
        Rows the reader rejected.
    """
    catalog = PriceCatalog.load(prices) if prices is not None else None
    if isinstance(logs, pd.DataFrame):
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "full_information.parquet"
            _frame_to_parquet(logs, path)
            read = read_call_logs(path, prices=catalog)
    else:
        read = read_call_logs(logs, prices=catalog)
    return FullInformationTable.from_frame(read.frame, candidates), read.n_quarantined


def _frame_to_parquet(frame: pd.DataFrame, path: Path) -> None:
    """A raw call-log frame as Parquet; ``messages`` as JSON text, as `write_call_log`
    stores it (Parquet would force every row's messages into one struct type)."""
    out = frame.copy()
    if "messages" in out.columns:
        out["messages"] = out["messages"].map(
            lambda m: m if m is None or isinstance(m, str) else json.dumps(m, ensure_ascii=False)
        )
    out.to_parquet(path, index=False)
