"""Call logs as a lazy dataset: the partitions a path holds, read one at a time.

A gateway in front of thousands of engineers writes millions of calls a week; no
command should need them all in one frame. The layout a data platform already writes
is a Parquet dataset partitioned by day, hive-style (the layout of
``pyarrow.dataset.write_dataset(partitioning=["day"], partitioning_flavor="hive")``,
Spark's ``partitionBy("day")`` and DuckDB's ``COPY ... (PARTITION_BY (day))``)::

    calls/
      day=2026-03-01/part-0.parquet
      day=2026-03-02/part-0.parquet  part-1.parquet

`open_call_log_dataset` accepts that folder (or an fsspec URL to it, such as
``s3://bucket/calls``, read with the storage's fsspec package installed), a folder
of plain files (each file one partition) or files (each file one partition; a small
JSONL or CSV log is one partition). Each partition is read and checked by
`features.call_log.read_call_log_sources`, the rules of `read_call_logs`, with its
own quarantine: a bad row is never dropped silently, whichever worker reads it.

What is checked per partition only: a ``request_id`` repeated *within* a partition
is quarantined as a duplicate, as `read_call_logs` does; one repeated in two
partitions (two days) is not seen, since that would need every id in one place. A
gateway logs a call once, on the day it was made.

Dask is imported only by `CallLogDataset.to_dask`; the rest needs pandas and, for a
URL, fsspec.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.call_log import (
    COLUMNS,
    TOKEN_COLUMNS,
    CallLogRead,
    LogSource,
    read_call_log_sources,
)
from features.call_log_files import (
    CSV_SUFFIXES,
    FORMAT_DOC,
    JSONL_SUFFIXES,
    SUFFIXES,
    CallLogError,
    jsonl_rows,
    read_log_file,
    write_quarantine,
)
from features.prices import PriceCatalog

if TYPE_CHECKING:  # pragma: no cover
    import dask.dataframe as dd

__all__ = [
    "CallLogDataset",
    "CallLogPartition",
    "collect_quarantine",
    "is_url",
    "open_call_log_dataset",
    "write_partitioned_call_log",
]

#: A hive-style day folder: ``day=YYYY-MM-DD``.
DAY_FOLDER = re.compile(r"^day=(?P<day>\d{4}-\d{2}-\d{2})$")


def is_url(path: str | Path) -> bool:
    """Whether a path is an fsspec URL (``s3://...``, ``gs://...``, ``file://...``)."""
    return "://" in str(path)


@dataclass(frozen=True)
class CallLogPartition:
    """One partition of a call-log dataset: the files of one day, or one file.

    Attributes
    ----------
    name : str
        A stable name, unique in its dataset: ``day=2026-03-01`` for a day folder, the
        file's path otherwise. Per-partition outputs (quarantine files) are named by it.
    files : tuple of str
        The files (paths or URLs) the partition's rows are in, sorted.
    day : str or None
        The ``YYYY-MM-DD`` of a day partition, None for a plain file.
    named : bool
        Whether the file was named on the command line (an empty named file is an
        error, an empty file found in a folder is skipped, as `read_call_logs` does).
    """

    name: str
    files: tuple[str, ...]
    day: str | None = None
    named: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "files": list(self.files), "day": self.day}

    def read(
        self,
        *,
        prices: PriceCatalog | None = None,
        quarantine_path: str | Path | None = None,
        compute_costs: bool = True,
        require_prompt: bool = True,
        storage_options: dict[str, Any] | None = None,
    ) -> CallLogRead:
        """The partition's rows, checked as `read_call_logs` checks them.

        Parameters as `features.call_log.read_call_logs`; ``quarantine_path`` receives
        this partition's rejected rows only (removed when there are none).
        """
        sources: list[LogSource] = [
            (f, self.named, partial(_read_file, f, storage_options)) for f in self.files
        ]
        return read_call_log_sources(
            sources,
            prices=prices,
            quarantine_path=quarantine_path,
            compute_costs=compute_costs,
            require_prompt=require_prompt,
        )


@dataclass(frozen=True)
class CallLogDataset:
    """Call logs as a list of partitions, none read until asked for.

    Build it with `open_call_log_dataset`. Iterate `partitions` and call
    `CallLogPartition.read` (in this process, or in a Dask task: a partition is a small
    picklable value), or get the whole dataset as a lazy Dask DataFrame with `to_dask`.

    Attributes
    ----------
    partitions : tuple of CallLogPartition
        In order: day partitions by day, then plain files by path.
    storage_options : dict
        Passed to fsspec for URLs (credentials, endpoint).
    """

    partitions: tuple[CallLogPartition, ...]
    storage_options: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.partitions)

    @property
    def n_partitions(self) -> int:
        return len(self.partitions)

    @property
    def files(self) -> list[str]:
        return [f for p in self.partitions for f in p.files]

    def read_partitions(
        self, **read_options: Any
    ) -> Iterator[tuple[CallLogPartition, CallLogRead]]:
        """Each partition with its rows, one at a time (only one partition in memory).

        ``read_options`` as `CallLogPartition.read` (``quarantine_path`` excepted: use
        `to_dask`'s ``quarantine_dir`` pattern, or read partitions yourself).
        """
        for partition in self.partitions:
            yield partition, partition.read(storage_options=self.storage_options, **read_options)

    def to_dask(
        self,
        *,
        prices: PriceCatalog | None = None,
        quarantine_dir: str | Path | None = None,
        compute_costs: bool = True,
        require_prompt: bool = True,
        columns: Sequence[str] | None = None,
    ) -> dd.DataFrame:
        """The dataset as a lazy Dask DataFrame, one Dask partition per partition.

        Each Dask task reads and checks its partition where it runs (on a worker, with
        a distributed client active), so the rows never pass through this process.
        Rejected rows go to ``quarantine_dir/<partition>.quarantine.jsonl`` (a folder
        every worker can write: shared filesystem or object store); gather them into
        one file with `collect_quarantine`. Without ``quarantine_dir`` they are counted
        nowhere: give one.

        Parameters
        ----------
        columns : list of str, optional
            Keep only these call-log columns (default: all of `COLUMNS`); ``messages``
            holds Python lists, the rest strings and floats.
        """
        import dask.dataframe as dd

        keep = list(columns) if columns is not None else list(COLUMNS)
        return dd.from_map(
            _partition_frame,
            list(self.partitions),
            prices=prices,
            quarantine_dir=None if quarantine_dir is None else str(quarantine_dir),
            compute_costs=compute_costs,
            require_prompt=require_prompt,
            storage_options=self.storage_options,
            columns=keep,
            meta=_empty_frame(keep),
            enforce_metadata=False,
            label="read-call-log",
        )


def open_call_log_dataset(
    paths: str | Path | Sequence[str | Path],
    *,
    storage_options: dict[str, Any] | None = None,
) -> CallLogDataset:
    """The partitions of call logs named by files, folders or fsspec URLs.

    A folder (or URL) with ``day=YYYY-MM-DD`` sub-folders gives one partition per day
    (every call-log file under the day folder, at any depth); any other call-log file
    under a folder is a partition of its own, as is a file named itself.

    Raises
    ------
    CallLogError
        If a path does not exist or holds no call-log file (the message names it).
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    storage_options = dict(storage_options or {})
    days: dict[str, list[str]] = {}
    plain: list[CallLogPartition] = []
    for path in paths:
        files, named = _list_files(str(path), storage_options)
        for f in files:
            day = _day_of(f)
            if day is None:
                plain.append(CallLogPartition(name=f, files=(f,), named=named))
            else:
                days.setdefault(day, []).append(f)
    by_day = [
        CallLogPartition(name=f"day={day}", files=tuple(sorted(files)), day=day)
        for day, files in sorted(days.items())
    ]
    return CallLogDataset(partitions=(*by_day, *plain), storage_options=storage_options)


def _day_of(path: str) -> str | None:
    """The day of the innermost ``day=YYYY-MM-DD`` folder on a path, None without one."""
    for part in reversed(path.replace("\\", "/").split("/")[:-1]):
        match = DAY_FOLDER.match(part)
        if match:
            return match["day"]
    return None


def _list_files(path: str, storage_options: dict[str, Any]) -> tuple[list[str], bool]:
    """The call-log files a path holds, and whether the path was one file."""
    if not is_url(path):
        p = Path(path)
        if p.is_file():
            if not p.name.endswith(SUFFIXES):
                raise CallLogError(
                    p,
                    "unsupported call-log format",
                    f"Name the file by its content: {', '.join(SUFFIXES)} (format: {FORMAT_DOC}).",
                )
            return [str(p)], True
        if p.is_dir():
            found = sorted(
                str(f) for f in p.rglob("*") if f.is_file() and f.name.endswith(SUFFIXES)
            )
            if not found:
                raise CallLogError(
                    p,
                    f"folder holds no call-log files ({', '.join(SUFFIXES)})",
                    f"Point to the folder or files that hold the logs (format: {FORMAT_DOC}).",
                )
            return found, False
        raise CallLogError(
            p,
            "no such file or folder",
            f"Check the path (a relative path starts from {Path.cwd()}).",
        )
    import fsspec

    fs, root = fsspec.core.url_to_fs(path, **storage_options)
    protocol = fs.protocol[0] if isinstance(fs.protocol, tuple | list) else fs.protocol
    if fs.isfile(root):
        return [path], True
    if not fs.exists(root):
        raise CallLogError(path, "no such file or folder", "Check the URL and its credentials.")
    found = sorted(f for f in fs.find(root) if f.endswith(SUFFIXES))
    if not found:
        raise CallLogError(
            path,
            f"holds no call-log files ({', '.join(SUFFIXES)})",
            f"Point to the folder that holds the logs (format: {FORMAT_DOC}).",
        )
    return [fs.unstrip_protocol(f) if protocol != "file" else f for f in found], False


def _read_file(
    path: str, storage_options: dict[str, Any] | None
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """One file's rows as read: a local file through `read_log_file` (its precise
    errors), a URL through fsspec."""
    if not is_url(path):
        return read_log_file(Path(path))
    import fsspec

    try:
        with fsspec.open(path, "rb", **(storage_options or {})) as fh:
            data = fh.read()
        if path.endswith(".gz"):
            data = gzip.decompress(data)
        if path.endswith(JSONL_SUFFIXES):
            return _jsonl_rows(data.decode("utf-8"))
        if path.endswith(CSV_SUFFIXES):
            frame = pd.read_csv(io.BytesIO(data), dtype="string", keep_default_na=True)
        else:
            frame = pd.read_parquet(io.BytesIO(data))
    except (OSError, EOFError, ValueError, TypeError) as exc:
        raise CallLogError(
            path,
            f"cannot be read ({type(exc).__name__}: {exc})",
            "Check the URL, its credentials and that it is one complete file "
            f"(format: {FORMAT_DOC}).",
        ) from exc
    frame["_line"] = np.arange(1, len(frame) + 1)
    return frame, []


def _jsonl_rows(text: str) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    return jsonl_rows(text.splitlines())


def partition_quarantine_path(quarantine_dir: str | Path, partition: CallLogPartition) -> Path:
    """Where a partition's rejected rows go under a quarantine folder."""
    safe = re.sub(r"[^A-Za-z0-9_.=-]+", "_", partition.name).strip("_")
    return Path(quarantine_dir) / f"{safe}.quarantine.jsonl"


def _partition_frame(
    partition: CallLogPartition,
    *,
    prices: PriceCatalog | None,
    quarantine_dir: str | None,
    compute_costs: bool,
    require_prompt: bool,
    storage_options: dict[str, Any],
    columns: list[str],
) -> pd.DataFrame:
    quarantine = None
    if quarantine_dir is not None:
        quarantine = partition_quarantine_path(quarantine_dir, partition)
        quarantine.parent.mkdir(parents=True, exist_ok=True)
    read = partition.read(
        prices=prices,
        quarantine_path=quarantine,
        compute_costs=compute_costs,
        require_prompt=require_prompt,
        storage_options=storage_options,
    )
    return read.frame[columns].reset_index(drop=True)


def _empty_frame(columns: Sequence[str]) -> pd.DataFrame:
    floats = {*TOKEN_COLUMNS, "cost_usd", "source_cost_usd", "latency_ms", "outcome", "propensity"}
    return pd.DataFrame(
        {c: pd.Series([], dtype="float64" if c in floats else "object") for c in columns}
    )


def collect_quarantine(quarantine_dir: str | Path, out: str | Path) -> int:
    """Gather per-partition quarantine files into one JSONL file; returns the row count.

    The partition files are removed, and the folder with them when nothing else is in
    it; ``out`` is removed too when no row was rejected (as `read_call_logs` removes a
    stale quarantine).
    """
    rows: list[dict[str, Any]] = []
    folder = Path(quarantine_dir)
    for part in sorted(folder.glob("*.quarantine.jsonl")) if folder.is_dir() else []:
        with open(part, encoding="utf-8") as fh:
            rows.extend(json.loads(line) for line in fh if line.strip())
        part.unlink()
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    if rows:
        write_quarantine(rows, out)
    else:
        Path(out).unlink(missing_ok=True)
    return len(rows)


def write_partitioned_call_log(
    frame: pd.DataFrame, root: str | Path, *, rows_per_file: int | None = None
) -> list[Path]:
    """Write call-log rows as a Parquet dataset partitioned by day (``day=YYYY-MM-DD/``),
    by each row's ``timestamp`` (UTC), so `open_call_log_dataset` reads it back by day.

    A row without a timestamp is refused rather than put in a made-up day.

    Parameters
    ----------
    rows_per_file : int, optional
        Split a day into files of at most this many rows (default: one file per day).

    Raises
    ------
    ValueError
        If a row has no ``timestamp``.
    """
    from features.call_log import write_call_log

    stamps = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    if stamps.isna().any():
        raise ValueError(
            f"{int(stamps.isna().sum())} rows have no timestamp; a dataset partitioned by day "
            "needs one on every row"
        )
    days = stamps.dt.strftime("%Y-%m-%d")
    written = []
    for day, rows in frame.groupby(days.to_numpy(), sort=True):
        size = rows_per_file or max(1, len(rows))
        for i, start in enumerate(range(0, len(rows), size)):
            path = Path(root) / f"day={day}" / f"part-{i}.parquet"
            written.append(write_call_log(rows.iloc[start : start + size], path))
    return written
