"""``report spend --cluster``: the spend figures of a partitioned call log, aggregated
per shard on Dask workers and combined exactly.

The calls are repartitioned by session key (`training.grade_cluster.session_shards`,
whose docstring says why: retries and PR links never cross a session or user, and
neither do the session figures: runs of a growing context, cold-cache re-sends).
Each worker grades its shard when events are given (the rules of ``grade``), flags
retries, and aggregates it with `training.report.spend.spend_parts`: cells of sums and
counts, and its sessions' top lists. The client adds them up
(`training.report.spend.combine_spend_parts`): sums, never means, so the totals are
the one-process totals. Only the small cells and top lists travel to the client;
prompts never leave the workers.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.call_log_dataset import CallLogDataset, collect_quarantine
from features.grading import GradingConfig, grade
from features.prices import PriceCatalog
from training.grade_cluster import (
    combine_grade_counts,
    default_shards,
    event_fates,
    events_for,
    in_dataset_order,
    session_shards,
)
from training.report.spend import SpendSettings, combine_spend_parts, spend_parts

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

__all__ = ["ClusterSpend", "spend_on_cluster"]


@dataclass(frozen=True)
class ClusterSpend:
    """What `spend_on_cluster` returns.

    Attributes
    ----------
    figures : dict
        As `training.report.spend.aggregate_spend` returns.
    grading : dict or None
        The grading counts (summed over shards) when events were given.
    events_quarantined : DataFrame or None
        Events that grade no call, with ``quarantine_reason``.
    calls_quarantined : int
        Call rows rejected by the reader, gathered from every partition.
    """

    figures: dict[str, Any]
    grading: dict[str, Any] | None
    events_quarantined: pd.DataFrame | None
    calls_quarantined: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "figures": self.figures,
            "grading": self.grading,
            "calls_quarantined": self.calls_quarantined,
        }


def _spend_shard(
    shard: pd.DataFrame,
    events: pd.DataFrame | None,
    config: GradingConfig,
    as_of: pd.Timestamp | None,
    prices: PriceCatalog,
    settings: SpendSettings,
    table_of: Callable[[pd.DataFrame, np.ndarray], Any],
    retried_of: Callable[[pd.DataFrame, GradingConfig, bool], np.ndarray],
) -> dict[str, Any]:
    """Grade (with events) and aggregate one shard (runs on a worker)."""
    frame = in_dataset_order(shard)
    out: dict[str, Any] = {"parts": None}
    if events is not None:
        mine = events_for(frame, events)
        result = grade(frame, mine, config, as_of=as_of)
        frame = result.graded
        outcomes = frame["outcome"].to_numpy(dtype=float)
        out.update(
            counts=result.counts,
            touched=mine["source"].tolist(),
            quarantined=result.quarantined,
            outcome_sum=float(np.nansum(outcomes)),
            outcome_n=int(np.sum(~np.isnan(outcomes))),
        )
    if len(frame):
        retried = retried_of(frame, config, events is not None)
        out["parts"] = spend_parts(table_of(frame, retried), prices, settings)
    return out


def spend_on_cluster(
    client: Client,
    dataset: CallLogDataset,
    *,
    prices: PriceCatalog,
    settings: SpendSettings,
    config: GradingConfig,
    events: pd.DataFrame | None,
    as_of: Any,
    calls_quarantine: str | Path,
    table_of: Callable[[pd.DataFrame, np.ndarray], Any],
    retried_of: Callable[[pd.DataFrame, GradingConfig, bool], np.ndarray],
    n_shards: int | None = None,
) -> ClusterSpend:
    """Aggregate the spend of a partitioned call log on the client's workers.

    Parameters as ``report spend``'s; ``events`` (valid outcome events) grades the
    calls first, as `features.grading.grade` does; ``calls_quarantine`` receives the
    rejected call rows of every partition. ``table_of`` (frame, retried flags -> the
    Arrow table `spend_parts` reads) and ``retried_of`` (frame, config, graded -> retried
    flags) are the command's own, so a shard is prepared exactly as one process does.
    """
    import dask

    from features.grading import _as_of

    as_of = _as_of(as_of) if events is not None else None
    n_late = 0
    if events is not None:
        late = events["timestamp"] > as_of
        n_late = int(late.sum())
        events = events[~late.to_numpy()].reset_index(drop=True)
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    n_shards = n_shards or default_shards(dataset, n_workers)
    quarantine_dir = Path(str(calls_quarantine) + ".parts")
    shards = session_shards(
        dataset, n_shards, quarantine_dir=quarantine_dir, prices=prices, require_prompt=False
    )
    events_arg = None
    if events is not None:
        [events_arg] = client.scatter([events], broadcast=True)
    tasks = [
        dask.delayed(_spend_shard)(
            part, events_arg, config, as_of, prices, settings, table_of, retried_of
        )
        for part in shards
    ]
    print(
        f"aggregating {dataset.n_partitions} partitions in {n_shards} session shards on "
        f"{n_workers} workers",
        file=sys.stderr,
    )
    results = dask.compute(*tasks)
    calls_quarantined = collect_quarantine(quarantine_dir, calls_quarantine)
    parts = [r["parts"] for r in results if r["parts"] is not None]
    if not parts:
        raise ValueError("no calls to report on.")
    figures = combine_spend_parts(parts, settings)
    grading = quarantined = None
    if events is not None:
        quarantined = event_fates(events, results, config, as_of)
        grading = {
            "as_of": as_of.isoformat(),
            **combine_grade_counts(results, n_events=len(events) + n_late, n_late=n_late),
        }
        grading["events"]["quarantined"] = len(quarantined)
        grading["events"]["used"] = len(events) - len(quarantined)
    return ClusterSpend(
        figures=figures,
        grading=grading,
        events_quarantined=quarantined,
        calls_quarantined=calls_quarantined,
    )
