"""``grade --cluster``: grading a partitioned call log on Dask workers, with the same
outcomes as `features.grading.grade` on the whole log in one process.

What crosses partition boundaries, and how it is handled
--------------------------------------------------------
A day partition is not a unit of grading: an agent session runs past midnight, its
calls' retries (the same session or user resending a prompt within
``windows.retry``) pair a call of one day with one of the next, and a PR opened by
the session is merged days later. What ties calls together is the *session* (or,
for calls without one, the *user*): retries are only found inside one, and PR events
reach calls only through ``pr_opened`` links to one. So the calls are **repartitioned
by that key** (a stable hash of ``session_id``, else ``user``, else ``request_id``,
into shards; a Dask shuffle, spilled to disk by the workers when it is large): every
session's and user's calls land in one shard, whatever their days, and the
single-process rules run unchanged on each shard. A window (``windows.retry``)
around the day boundary would also do for retries, but not for PR events, whose
window is two weeks.

The outcome events are read once here and broadcast to the workers: they carry no
prompt text (a few short keys per event), while the calls, with their prompts, are
what outgrows a machine. Each shard grades with the events that name its calls
(their ``request_id``, ``decision_id`` or ``session_id``, or a PR linked to one of
its sessions). An event's fate is then decided across shards, as one process would:
used if any shard used it; otherwise quarantined with the reason its shard gave;
events that name no call of any shard are graded against no call (`grade` on an
empty log) for the reason one process gives them.

Counts are sums over shards (each call is in exactly one), so they equal the
single-process ones; ``mean_outcome`` is recomputed from the sums.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.call_log import COLUMNS, TEXT_COLUMNS
from features.call_log_dataset import CallLogDataset, collect_quarantine
from features.grading import GRADED_SUFFIXES, GradingConfig, grade, write_graded

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

__all__ = [
    "ClusterGradeResult",
    "combine_grade_counts",
    "default_shards",
    "event_fates",
    "events_for",
    "grade_on_cluster",
    "in_dataset_order",
    "session_shards",
    "shard_of",
]

#: Counts that are sums over shards.
_SUMMED = ("n_calls", "graded", "pending", "no_event", "expired", "logged", "retries_found_in_logs")


@dataclass(frozen=True)
class ClusterGradeResult:
    """What `grade_on_cluster` returns.

    Attributes
    ----------
    counts : dict
        As `features.grading.GradeResult.counts` (summed over shards), plus ``shards``.
    quarantined : DataFrame
        Events that grade no call, in the events' order, with ``quarantine_reason``.
    graded : DataFrame or None
        Every call in the dataset's order, when the output is one file; None when the
        workers wrote a partitioned output folder.
    calls_quarantined : int
        Call rows rejected by the reader (gathered from every partition).
    """

    counts: dict[str, Any]
    quarantined: pd.DataFrame
    graded: pd.DataFrame | None
    calls_quarantined: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.counts)


def shard_of(calls: pd.DataFrame, n_shards: int) -> np.ndarray:
    """The shard of each call: a stable hash of its session, else user, else request.

    The same key as retry detection's groups (`features.grading.detect_retries`), so
    a retry pair is never split; sessions also carry the PR links. The hash
    (`pandas.util.hash_pandas_object`, SipHash with a fixed key) is the same in every
    process, unlike Python's ``hash`` of a string.
    """
    key = (
        ("session:" + calls["session_id"].astype("string"))
        .fillna("user:" + calls["user"].astype("string"))
        .fillna("request:" + calls["request_id"].astype("string"))
    )
    hashed = pd.util.hash_pandas_object(key, index=False).to_numpy()
    return (hashed % np.uint64(n_shards)).astype("int64")


def _tag(frame: pd.DataFrame, n_shards: int, partition_info: dict | None = None) -> pd.DataFrame:
    """Add the shard and the row's place in the dataset (partition, row)."""
    number = (partition_info or {}).get("number", 0)
    return frame.assign(
        _shard=shard_of(frame, n_shards),
        _part=np.int64(number),
        _row=np.arange(len(frame), dtype="int64"),
    )


def default_shards(dataset: CallLogDataset, n_workers: int) -> int:
    """Shards of the session repartition: two per worker (one working, one arriving),
    more for a long dataset (one per four day partitions) so a shard stays about four
    days of calls. Every shard costs a task per partition in the shuffle, so more is
    slower on a small log."""
    return max(2 * n_workers, -(-dataset.n_partitions // 4))


def session_shards(
    dataset: CallLogDataset, n_shards: int, *, quarantine_dir: str | Path, **read_options: Any
) -> list[Any]:
    """The dataset's calls repartitioned by session key: one Dask delayed frame per shard.

    Each frame has the call-log columns plus ``_shard`` and the row's place in the
    dataset (``_part``, ``_row``: sort by them for the dataset's order). The workers
    read the partitions (rejected rows to ``quarantine_dir``), and exchange rows in a
    task-based shuffle (object columns such as ``messages`` travel as they are).
    ``read_options`` as `features.call_log_dataset.CallLogDataset.to_dask`.
    """
    calls = dataset.to_dask(quarantine_dir=quarantine_dir, **read_options)
    meta = calls._meta.assign(_shard=np.int64(0), _part=np.int64(0), _row=np.int64(0))
    calls = calls.map_partitions(_tag, n_shards, partition_info=True, meta=meta)
    shuffled = calls.shuffle("_shard", npartitions=n_shards, shuffle_method="tasks")
    return list(shuffled.to_delayed())


def in_dataset_order(shard: pd.DataFrame) -> pd.DataFrame:
    """A shard's calls in the dataset's order, without the shuffle's columns.

    Missing values of the text and ``messages`` columns are None again, as the reader
    gives them (a shuffle may turn them into NaN).
    """
    calls = (
        shard.sort_values(["_part", "_row"], kind="stable")
        .drop(columns=["_shard", "_part", "_row"])
        .reset_index(drop=True)
    )
    for name in calls.columns:
        if name == "messages":
            calls[name] = calls[name].map(lambda m: m if isinstance(m, list) else None)
        elif calls[name].dtype == object or name in TEXT_COLUMNS:
            calls[name] = calls[name].astype(object).where(calls[name].notna(), None)
    return calls


def events_for(calls: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """The events that name one of these calls, directly or through a PR link."""
    sessions = set(calls["session_id"].dropna())
    hit = (
        events["request_id"].isin(set(calls["request_id"]))
        | events["decision_id"].isin(set(calls["decision_id"].dropna()))
        | events["session_id"].isin(sessions)
    )
    opened = events["event"].eq("pr_opened") & events["session_id"].isin(sessions)
    prs = set(events.loc[opened, "pr"].dropna())
    hit |= events["pr"].isin(prs)
    return events[hit.to_numpy()]


def _grade_shard(
    shard: pd.DataFrame,
    events: pd.DataFrame,
    config: GradingConfig,
    as_of: pd.Timestamp,
    out_dir: str | None,
    shard_number: int,
) -> dict[str, Any]:
    """Grade one shard (runs on a worker)."""
    order = shard[["_part", "_row"]].reset_index(drop=True)
    calls = in_dataset_order(shard)
    order = order.sort_values(["_part", "_row"], kind="stable").reset_index(drop=True)
    mine = events_for(calls, events)
    result = grade(calls, mine, config, as_of=as_of)
    written = None
    graded = result.graded
    if out_dir is not None and len(graded):
        written = _write_shard(graded, Path(out_dir), shard_number)
        graded = None
    else:
        graded = pd.concat([graded, order], axis=1)
    outcomes = result.graded["outcome"].to_numpy(dtype=float)
    return {
        "counts": result.counts,
        "outcome_sum": float(np.nansum(outcomes)),
        "outcome_n": int(np.sum(~np.isnan(outcomes))),
        "touched": mine["source"].tolist(),
        "quarantined": result.quarantined,
        "graded": graded,
        "written": written,
    }


def _write_shard(graded: pd.DataFrame, out_dir: Path, shard_number: int) -> list[str]:
    """One Parquet file per day the shard's calls fall on: ``day=YYYY-MM-DD/shard-K``."""
    stamps = pd.to_datetime(graded["timestamp"], utc=True, format="ISO8601", errors="coerce")
    days = stamps.dt.strftime("%Y-%m-%d").fillna("none").to_numpy()
    written = []
    for day in sorted(set(days)):
        folder = out_dir / ("no-timestamp" if day == "none" else f"day={day}")
        path = folder / f"shard-{shard_number:05d}.parquet"
        write_graded(graded[days == day], path)
        written.append(str(path))
    return written


def grade_on_cluster(
    client: Client,
    dataset: CallLogDataset,
    events: pd.DataFrame,
    *,
    config: GradingConfig | None = None,
    as_of: Any = None,
    out: str | Path,
    calls_quarantine: str | Path,
    n_shards: int | None = None,
) -> ClusterGradeResult:
    """Grade every call of a partitioned dataset on the client's workers.

    Parameters
    ----------
    client : distributed.Client
    dataset : CallLogDataset
        The calls (`features.call_log_dataset.open_call_log_dataset`), read by the
        workers one partition at a time.
    events : DataFrame
        Valid outcome events (`features.events.read_events`).
    out : path
        A ``.jsonl``/``.csv``/``.parquet`` file (the graded calls are gathered here and
        written in the dataset's order: for logs that fit one machine), or a folder
        (the workers write a Parquet dataset partitioned by day, ``day=YYYY-MM-DD/
        shard-K.parquet``: for logs that do not; `train` and `evaluate` read it).
    calls_quarantine : path
        Rejected call rows of every partition, gathered into this one file.
    n_shards : int, optional
        Shards of the session repartition; default: `default_shards`.
    """
    import dask

    from features.grading import _as_of

    config = config or GradingConfig()
    as_of = _as_of(as_of)
    out = Path(out)
    to_folder = not out.name.endswith(GRADED_SUFFIXES)
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    n_shards = n_shards or default_shards(dataset, n_workers)
    late = events["timestamp"] > as_of
    n_late = int(late.sum())
    events = events[~late.to_numpy()].reset_index(drop=True)

    quarantine_dir = Path(str(calls_quarantine) + ".parts")
    shards = session_shards(dataset, n_shards, quarantine_dir=quarantine_dir, compute_costs=False)
    [events_future] = client.scatter([events], broadcast=True)
    if to_folder:  # replaced, as a file is: a previous run's shards would be read too
        for old in [*out.glob("day=*/shard-*.parquet"), *out.glob("no-timestamp/shard-*.parquet")]:
            old.unlink()
        out.mkdir(parents=True, exist_ok=True)
    tasks = [
        dask.delayed(_grade_shard)(
            part, events_future, config, as_of, str(out) if to_folder else None, k
        )
        for k, part in enumerate(shards)
    ]
    print(
        f"grading {dataset.n_partitions} partitions in {n_shards} session shards on "
        f"{n_workers} workers",
        file=sys.stderr,
    )
    results = dask.compute(*tasks)
    calls_quarantined = collect_quarantine(quarantine_dir, calls_quarantine)

    quarantined = event_fates(events, results, config, as_of)
    counts = {
        "as_of": as_of.isoformat(),
        **combine_grade_counts(results, n_events=len(events) + n_late, n_late=n_late),
    }
    counts["events"]["quarantined"] = len(quarantined)
    counts["events"]["used"] = len(events) - len(quarantined)
    counts["shards"] = n_shards
    graded = None
    if not to_folder:
        parts = [r["graded"] for r in results if r["graded"] is not None and len(r["graded"])]
        graded = (
            pd.concat(parts, ignore_index=True)
            .sort_values(["_part", "_row"], kind="stable")
            .drop(columns=["_part", "_row"])
            .reset_index(drop=True)
            if parts
            else pd.DataFrame(columns=[*COLUMNS, "outcome_source", "outcome_status", "graded_at"])
        )
    return ClusterGradeResult(
        counts=counts, quarantined=quarantined, graded=graded, calls_quarantined=calls_quarantined
    )


def event_fates(
    events: pd.DataFrame, results: tuple[dict[str, Any], ...], config, as_of
) -> pd.DataFrame:
    """Events no shard used, with the reason one process would give (module doc)."""
    reason_of: dict[str, dict[str, Any]] = {}
    # used anywhere = touched by a shard and not quarantined by it
    quarantined_by: dict[str, int] = {}
    touched_by: dict[str, int] = {}
    for r in results:
        for s in r["touched"]:
            touched_by[s] = touched_by.get(s, 0) + 1
        q = r["quarantined"]
        for s, row in zip(q["source"], q.to_dict(orient="records"), strict=True):
            quarantined_by[s] = quarantined_by.get(s, 0) + 1
            reason_of.setdefault(s, row)
    unused = {s for s, n in quarantined_by.items() if n == touched_by.get(s, 0)}
    rest = events[~events["source"].isin(touched_by.keys()).to_numpy()]
    residual = grade(pd.DataFrame({"request_id": pd.Series(dtype=object)}), rest, config, as_of)
    for row in residual.quarantined.to_dict(orient="records"):
        reason_of[row["source"]] = row
        unused.add(row["source"])
    keep = events["source"].isin(unused).to_numpy()
    rows = [reason_of[s] for s in events.loc[keep, "source"]]
    columns = residual.quarantined.columns
    return pd.DataFrame.from_records(rows, columns=columns)


def combine_grade_counts(
    results: tuple[dict[str, Any], ...], *, n_events: int, n_late: int
) -> dict[str, Any]:
    counts: dict[str, Any] = {name: 0 for name in _SUMMED}
    by_source: dict[str, int] = {}
    outcome_sum, outcome_n, seconds = 0.0, 0, 0.0
    for r in results:
        c = r["counts"]
        for name in _SUMMED:
            counts[name] += c[name]
        for k, v in c["by_source"].items():
            by_source[k] = by_source.get(k, 0) + v
        seconds += c["seconds"]
        outcome_sum += r["outcome_sum"]
        outcome_n += r["outcome_n"]
    counts["by_source"] = dict(sorted(by_source.items(), key=lambda kv: (-kv[1], kv[0])))
    counts["mean_outcome"] = round(outcome_sum / outcome_n, 4) if outcome_n else None
    counts["events"] = {"n": n_events, "used": 0, "after_as_of": n_late, "quarantined": 0}
    counts["seconds_on_workers"] = round(seconds, 3)
    return counts
