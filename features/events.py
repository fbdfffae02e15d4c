"""Outcome events (DESIGN.md section 3; format: docs/grading.md): what happened after a
call, one row per event, read from JSONL, CSV or Parquet files or folders.

An event says *what* happened (``event``, one of `EVENT_KINDS`), *when*
(``timestamp``) and *to what*: exactly one key among ``request_id``, ``decision_id``,
``session_id`` and ``pr`` (``owner/repo#number``). A ``pr_opened`` event carries both
``session_id`` and ``pr``: it links an agent session to the PR it produced, so later
PR events grade that session's calls. ``judge_score`` carries a ``value`` in [0, 1].

The reader shares the call log's file handling (`features.call_log_files`): a file that
cannot be read as a whole raises an `EventsError` naming the file and the fix; a bad
row goes to the quarantine with its reason. `features.grading` turns events into
outcomes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.call_log_files import (
    CallLogError,
    LogKind,
    jsonable_row,
    log_sources,
    read_log_file,
    reject_file,
    write_quarantine,
)

__all__ = [
    "CALL_KINDS",
    "EVENTS_DOC",
    "EVENT_COLUMNS",
    "EVENT_KINDS",
    "KEYS",
    "PR_KINDS",
    "EventsError",
    "EventsRead",
    "read_events",
    "validate_events",
    "write_events",
]

#: The page that documents events and grading; error messages point to it.
EVENTS_DOC = "docs/grading.md"

#: Kinds that belong to a pull request: keyed by ``pr`` (``pr_opened`` also by session).
PR_KINDS = (
    "pr_opened",
    "pr_merged",
    "pr_closed_unmerged",
    "pr_reverted",
    "review_approved",
    "review_changes_requested",
)
#: Kinds about calls: keyed by any one of `KEYS` (a ``pr`` key reaches the PR's sessions).
CALL_KINDS = (
    "ci_passed",
    "ci_failed",
    "tests_passed",
    "tests_failed",
    "retry",
    "thumbs_up",
    "thumbs_down",
    "judge_score",
)
EVENT_KINDS = PR_KINDS + CALL_KINDS
#: What an event can be about; each event names exactly one (``pr_opened``: two).
KEYS = ("request_id", "decision_id", "session_id", "pr")
EVENT_COLUMNS = ("timestamp", "event", *KEYS, "value", "event_id")

#: ``owner/repo#number``, as GitHub writes a cross-repository reference.
PR_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+#[0-9]+$")


class EventsError(CallLogError):
    """An events file or folder that cannot be read as a whole (the message names the
    path, the problem and the fix). A `CallLogError`, so commands report both alike."""


EVENTS = LogKind(noun="events", doc=EVENTS_DOC, error=EventsError)


@dataclass(frozen=True)
class EventsRead:
    """Result of reading outcome events.

    Attributes
    ----------
    frame : DataFrame, shape (n_events, 9)
        Valid events, columns `EVENT_COLUMNS` plus ``source`` (``FILE:LINE``);
        ``timestamp`` is a UTC ``datetime64``, ``value`` a float (NaN when absent),
        the rest strings or None. Sorted by timestamp; a repeated ``event_id`` kept once.
    quarantined : DataFrame
        Rejected rows as read, plus ``quarantine_reason`` and ``source``.
    """

    frame: pd.DataFrame
    quarantined: pd.DataFrame

    @property
    def n_quarantined(self) -> int:
        return len(self.quarantined)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_events": len(self.frame),
            "n_quarantined": self.n_quarantined,
            "by_kind": {str(k): int(v) for k, v in self.frame["event"].value_counts().items()},
        }


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _text(row: dict[str, Any], name: str) -> str | None:
    value = row.get(name)
    if _missing(value):
        return None
    if isinstance(value, list | dict | np.ndarray | bool | np.bool_):
        raise ValueError(f"{name} must be a string, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a numeric id read back from CSV or Parquet
    text = str(value).strip()
    return text or None


def _timestamp(value: Any) -> pd.Timestamp:
    """ISO 8601 text, read as UTC (a time without an offset is taken as UTC). A bare
    number is refused, as in the call log: seconds or milliseconds since when?"""
    problem = f"timestamp must be an ISO 8601 date-time, got {value!r}"
    if _missing(value):
        raise ValueError("missing required column 'timestamp'")
    if not isinstance(value, str | pd.Timestamp | np.datetime64) and not hasattr(value, "year"):
        raise ValueError(problem)
    try:
        parsed = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise ValueError(problem) from None
    if parsed is pd.NaT:
        raise ValueError(problem)
    return parsed.tz_localize("UTC") if parsed.tzinfo is None else parsed.tz_convert("UTC")


def _value(row: dict[str, Any], kind: str) -> float:
    value = row.get("value")
    if _missing(value):
        if kind == "judge_score":
            raise ValueError("judge_score needs a `value` in [0, 1]")
        return math.nan
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"value must be a number in [0, 1], got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"value must be a number in [0, 1], got {value!r}") from None
    if not 0 <= number <= 1:
        raise ValueError(f"value must be a number in [0, 1], got {value!r}")
    return number


def validate_event(row: dict[str, Any]) -> dict[str, Any]:
    """One event row, cleaned (`EVENT_COLUMNS`); raises ValueError saying what is wrong."""
    kind = _text(row, "event")
    if kind is None:
        raise ValueError("missing required column 'event'")
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event {kind!r}; known events: {', '.join(EVENT_KINDS)}")
    out: dict[str, Any] = {"timestamp": _timestamp(row.get("timestamp")), "event": kind}
    for key in KEYS:
        out[key] = _text(row, key)
    given = [key for key in KEYS if out[key] is not None]
    if out["pr"] is not None and not PR_PATTERN.match(out["pr"]):
        raise ValueError(f"pr must read owner/repo#number (e.g. acme/pay#101), got {out['pr']!r}")
    if kind == "pr_opened":
        if given != ["session_id", "pr"]:
            raise ValueError(
                "pr_opened needs exactly session_id and pr (it links the two), "
                f"got {given or 'none'}"
            )
    elif kind in PR_KINDS:
        if given != ["pr"]:
            raise ValueError(f"{kind} needs exactly one key, pr, got {given or 'none'}")
    elif len(given) != 1:
        raise ValueError(
            f"{kind} needs exactly one key among {', '.join(KEYS)}, got {given or 'none'}"
        )
    out["value"] = _value(row, kind)
    out["event_id"] = _text(row, "event_id")
    return out


def validate_events(
    rows: Sequence[dict[str, Any]], source: str = "<memory>"
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Valid events as a frame (see `EventsRead.frame`) and rejected rows with reasons.

    Parameters
    ----------
    rows : list of dict
        Event rows as read; a ``_line`` key numbers them in ``source`` (default: their
        position, from 1).
    source : str
        Name of where the rows came from, for the quarantine's ``source`` column.
    """
    good, bad = [], []
    seen: set[str] = set()
    for position, row in enumerate(rows, 1):
        row = dict(row)
        line = row.pop("_line", position)
        where = f"{source}:{line}"
        try:
            clean = validate_event(row)
        except (ValueError, TypeError) as exc:
            bad.append({**jsonable_row(row), "quarantine_reason": str(exc), "source": where})
            continue
        if clean["event_id"] is not None:
            if clean["event_id"] in seen:
                reason = f"duplicate event_id {clean['event_id']!r}"
                bad.append({**jsonable_row(row), "quarantine_reason": reason, "source": where})
                continue
            seen.add(clean["event_id"])
        clean["source"] = where
        good.append(clean)
    return _frame(good), bad


def _frame(good: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(good, columns=[*EVENT_COLUMNS, "source"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["value"] = frame["value"].astype("float64")
    for name in ("event", *KEYS, "event_id", "source"):
        frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def read_events(
    paths: str | Path | Sequence[str | Path],
    *,
    quarantine_path: str | Path | None = None,
) -> EventsRead:
    """Read and validate outcome events.

    Parameters
    ----------
    paths : path or list of paths
        Files (``.jsonl``, ``.jsonl.gz``, ``.csv``, ``.csv.gz``, ``.parquet``) or folders.
    quarantine_path : path, optional
        Where rejected rows are written as JSONL with ``quarantine_reason`` and
        ``source``; replaced on every read, removed when every row is valid.

    Raises
    ------
    EventsError
        If a path is missing, a named file is empty or unreadable, the ``event`` or
        ``timestamp`` column is absent from every row of a file, or no row of a file
        is valid. The message names the file and what to do.
    """
    frames, bad = [], []
    sources = log_sources(paths, EVENTS)
    seen_ids: set[str] = set()
    for path, named in sources:
        raw, unparsed = read_log_file(path, EVENTS)
        if raw.empty and not unparsed:
            if not named:
                continue
            raise EventsError(path, "is empty: no events", "Check the path, or leave the file out.")
        bad.extend(
            {**{k: v for k, v in b.items() if k != "_line"}, "source": f"{path}:{b['_line']}"}
            for b in unparsed
        )
        if raw.empty:
            continue
        _check_columns(path, raw)
        frame, rejected = validate_events(raw.to_dict(orient="records"), str(path))
        if frame.empty:  # duplicates of other files' events do not count
            bad.extend(rejected)
            raise reject_file(path, rejected, bad, quarantine_path, EVENTS, unit="events")
        repeated = frame["event_id"].isin(seen_ids) & frame["event_id"].notna()
        for i in np.flatnonzero(repeated.to_numpy()):
            row = frame.iloc[i]
            rejected.append(
                {
                    **jsonable_row(row.drop("source").to_dict()),
                    "quarantine_reason": f"duplicate event_id {row['event_id']!r}",
                    "source": row["source"],
                }
            )
        frame = frame[~repeated]
        seen_ids.update(frame["event_id"].dropna())
        bad.extend(rejected)
        frames.append(frame)
    if not frames and not bad:
        raise EventsError(
            ", ".join(str(p) for p, _ in sources),
            "no events: every file is empty",
            "Check the paths.",
        )
    frame = _frame([]) if not frames else pd.concat(frames, ignore_index=True)
    frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    if bad and quarantine_path is not None:
        write_quarantine(bad, quarantine_path)
    elif quarantine_path is not None:
        Path(quarantine_path).unlink(missing_ok=True)
    return EventsRead(frame=frame, quarantined=pd.DataFrame.from_records(bad))


def _check_columns(path: Path, frame: pd.DataFrame) -> None:
    """A required column absent from every row is the file's problem, not each row's."""
    found = sorted(str(c) for c in frame.columns if c != "_line")
    shown = ", ".join(found[:20]) + (", ..." if len(found) > 20 else "")
    for name, meaning in (("event", "what happened"), ("timestamp", "when, ISO 8601")):
        if name not in frame or frame[name].isna().all():
            raise EventsError(
                path,
                f"no row has the required column `{name}` ({meaning}); columns found: {shown}",
                f"Add it, or rename the column that holds it to `{name}` (format: {EVENTS_DOC}).",
            )
    if not any(key in frame and frame[key].notna().any() for key in KEYS):
        raise EventsError(
            path,
            f"no row names what the event is about ({', '.join(KEYS)}); columns found: {shown}",
            f"Add one of these keys to every row (format: {EVENTS_DOC}).",
        )


def write_events(frame: pd.DataFrame | Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write events (`EventsRead.frame` or rows) by the file's extension: ``.jsonl``,
    ``.csv`` or ``.parquet``, timestamps as ISO 8601 UTC, absent keys left out of JSONL."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(frame).copy()
    for name in EVENT_COLUMNS:
        if name not in frame:
            frame[name] = None
    frame = frame.loc[:, list(EVENT_COLUMNS)]
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).map(
        lambda t: t.isoformat().replace("+00:00", "Z")
    )
    name = path.name
    if name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    elif name.endswith((".csv", ".csv.gz")):
        frame.to_csv(path, index=False)
    elif name.endswith((".jsonl", ".ndjson", ".jsonl.gz")):
        import gzip
        import json

        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "wt", encoding="utf-8") as fh:
            for row in frame.to_dict(orient="records"):
                kept = {k: v for k, v in row.items() if not _missing(v)}
                fh.write(json.dumps(kept, ensure_ascii=False) + "\n")
    else:
        raise EventsError(
            path,
            "unsupported events format",
            "Name the output .jsonl, .csv or .parquet (format: docs/grading.md).",
        )
    return path
