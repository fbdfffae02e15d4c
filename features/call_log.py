"""The call log (format: docs/call-log.md): one row per LLM call, read from JSONL, CSV
or Parquet files or folders, validated once, by every command and notebook.

Bad rows are never dropped silently: each goes to a quarantine file with the reason,
and the reader reports how many. A file that cannot be read as a whole raises a
`CallLogError` that names the file and the fix. Training-side only (pandas); serving
never imports it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.call_log_files import (
    FORMAT_DOC,
    SUFFIXES,
    CallLogError,
    jsonable_row,
    log_files,
    log_sources,
    plain_value,
    read_log_file,
    reject_file,
    write_quarantine,
)
from features.prices import PriceCatalog
from features.routing_text import routing_text

__all__ = [
    "COLUMNS",
    "FORMAT_DOC",
    "SUFFIXES",
    "CallLogError",
    "CallLogRead",
    "LogSource",
    "log_files",
    "prompt_key",
    "read_call_log_sources",
    "read_call_logs",
    "validate_call_row",
    "write_call_log",
    "write_quarantine",
]

#: Columns of the call log, with whether they are required (docs/call-log.md).
COLUMNS: dict[str, bool] = {
    "request_id": True,
    "model": True,
    "prompt": False,
    "messages": False,
    "prompt_id": False,
    "timestamp": False,
    "user": False,
    "team": False,
    "task": False,
    "session_id": False,
    "input_tokens": False,
    "cached_input_tokens": False,
    "cache_write_tokens": False,
    "cache_write_1h_tokens": False,
    "output_tokens": False,
    "reasoning_tokens": False,
    "cost_usd": False,
    "source_cost_usd": False,
    "latency_ms": False,
    "outcome": False,
    "propensity": False,
    "decision_id": False,
    "source": False,
}
TOKEN_COLUMNS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
)
TEXT_COLUMNS = (
    "request_id",
    "model",
    "prompt_id",
    "user",
    "team",
    "task",
    "session_id",
    "decision_id",
    "source",
)


@dataclass(frozen=True)
class CallLogRead:
    """Result of reading call logs.

    Attributes
    ----------
    frame : DataFrame
        Valid rows with every column of `COLUMNS` present (missing values as NaN/None),
        ``prompt_id`` filled (`prompt_key` of the prompt where absent; None on a
        prompt-less row read with ``require_prompt=False``) and ``cost_usd`` computed
        from the price catalog where absent and tokens are known.
    quarantined : DataFrame
        Rejected rows as read, plus ``quarantine_reason`` and ``source``.
    """

    frame: pd.DataFrame
    quarantined: pd.DataFrame

    @property
    def n_quarantined(self) -> int:
        return len(self.quarantined)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return value is pd.NA or value is pd.NaT


def _parse_messages(value: Any) -> list[dict[str, Any]] | None:
    if _is_missing(value):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"messages must be a JSON list of {{role, content}}: {exc}") from None
    value = plain_value(value)
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise ValueError("messages must be a list of {role, content} objects")
    return value


def _check_number(value: Any, name: str, low: float, high: float, low_open: bool = False) -> float:
    if _is_missing(value):
        return math.nan
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if number < low or number > high or (low_open and number == low):
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value!r}")
    return number


def _check_outcome(value: Any) -> float:
    """A graded outcome in [0, 1]; JSON booleans and "true"/"false" read as 1 and 0.

    Other words ("merged", "pass") are refused rather than guessed: what such an
    event is worth is the log owner's call, made before the log is written.
    """
    if isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("true", "false"):
            return float(word == "true")
        try:
            float(word)
        except ValueError:
            raise ValueError(
                f"outcome must be a number in [0, 1] or true/false, got {value!r}"
            ) from None
    return _check_number(value, "outcome", 0, 1)


def prompt_key(prompt: str | None, messages: Sequence[dict[str, Any]] | None) -> str:
    """The default ``prompt_id``: a hash of the whole prompt text.

    Rows without ``prompt_id`` that ask the same thing (the same ``prompt``, or the
    same ``messages``, every turn and role) get the same key, whichever model answered.
    It is the one grouping key of every command: ``split`` keeps a key on one side,
    ``train`` cross-validates and ``evaluate`` compares models per key, so the same
    prompt never lands in both train and test.
    """
    text = routing_text(prompt, messages, "all")
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def validate_call_row(row: dict[str, Any], *, require_prompt: bool = True) -> dict[str, Any]:
    """Check one call-log row as `read_call_logs` does and return it cleaned.

    Importers check the rows they build with it, so what they write is what the reader
    accepts. The result has every column of `COLUMNS` (token counts as floats, NaN when
    absent; ``timestamp`` as ISO 8601; ``prompt_id`` filled from the prompt).

    Raises
    ------
    ValueError
        Saying which column is wrong and why (the quarantine reason).
    """
    return _validate_row(row, require_prompt)


def _or_zero(count: float) -> float:
    """A token count, 0 when absent (NaN); cheaper than numpy on one number."""
    return 0.0 if math.isnan(count) else count


def _validate_row(row: dict[str, Any], require_prompt: bool = True) -> dict[str, Any]:
    """One row, cleaned; raises ValueError saying what is wrong."""
    for name in ("request_id", "model"):
        value = row.get(name)
        if _is_missing(value) or not str(value).strip():
            raise ValueError(f"missing required column {name!r}")
    out: dict[str, Any] = {name: row.get(name) for name in COLUMNS}
    for name in TEXT_COLUMNS:
        value = out[name]
        if isinstance(value, list | dict | np.ndarray | bool | np.bool_):
            raise ValueError(f"{name} must be a string, got {value!r}")
        out[name] = None if _is_missing(value) else str(value)
    out["messages"] = _parse_messages(row.get("messages"))
    prompt = row.get("prompt")
    if isinstance(prompt, list | dict | np.ndarray):
        raise ValueError(
            "prompt must be a string (a chat goes in `messages`), got a list or object"
        )
    out["prompt"] = None if _is_missing(prompt) or str(prompt) == "" else str(prompt)
    has_prompt = bool(out["prompt"] or out["messages"])
    if not has_prompt and require_prompt:
        raise ValueError("a row needs a non-empty `prompt` or `messages`")
    if out["prompt_id"] is None and has_prompt:
        out["prompt_id"] = prompt_key(out["prompt"], out["messages"])
    for name in TOKEN_COLUMNS:
        value = _check_number(row.get(name), name, 0, float("inf"))
        if not math.isnan(value) and value != int(value):
            raise ValueError(f"{name} must be a whole number, got {row.get(name)!r}")
        out[name] = value
    cached = _or_zero(out["cached_input_tokens"]) + _or_zero(out["cache_write_tokens"])
    if not math.isnan(out["input_tokens"]) and cached > out["input_tokens"]:
        raise ValueError(
            "cached_input_tokens + cache_write_tokens exceed input_tokens (input_tokens counts "
            "every prompt token, cached ones included)"
        )
    if out["cache_write_1h_tokens"] > _or_zero(out["cache_write_tokens"]):
        raise ValueError(
            "cache_write_1h_tokens exceed cache_write_tokens (the 1-hour writes are a part of "
            "the cache writes)"
        )
    if out["reasoning_tokens"] > _or_zero(out["output_tokens"]):
        raise ValueError(
            "reasoning_tokens exceed output_tokens (output_tokens counts every completion "
            "token, reasoning included)"
        )
    out["cost_usd"] = _check_number(row.get("cost_usd"), "cost_usd", 0, float("inf"))
    out["source_cost_usd"] = _check_number(
        row.get("source_cost_usd"), "source_cost_usd", 0, float("inf")
    )
    out["latency_ms"] = _check_number(row.get("latency_ms"), "latency_ms", 0, float("inf"))
    out["outcome"] = _check_outcome(row.get("outcome"))
    out["propensity"] = _check_number(row.get("propensity"), "propensity", 0, 1, low_open=True)
    out["timestamp"] = _check_timestamp(row.get("timestamp"))
    return out


def _check_timestamp(value: Any) -> str | None:
    """ISO 8601 text; a bare number is refused (seconds or milliseconds since when?)."""
    if _is_missing(value):
        return None
    problem = f"timestamp must be an ISO 8601 date-time, got {value!r}"
    if not isinstance(value, str | datetime | np.datetime64):
        raise ValueError(problem)
    try:
        parsed = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise ValueError(problem) from None
    if parsed is pd.NaT:
        raise ValueError(problem)
    return parsed.isoformat()


def _fill_costs(frame: pd.DataFrame, prices: PriceCatalog) -> None:
    missing = frame["cost_usd"].isna() & frame["input_tokens"].notna()
    for i in np.flatnonzero(missing.to_numpy()):
        row = frame.iloc[i]
        cost = prices.cost_usd(
            row["model"],
            input_tokens=row["input_tokens"],
            output_tokens=0 if math.isnan(row["output_tokens"]) else row["output_tokens"],
            cached_input_tokens=np.nan_to_num(row["cached_input_tokens"]),
            cache_write_tokens=np.nan_to_num(row["cache_write_tokens"]),
            cache_write_1h_tokens=np.nan_to_num(row["cache_write_1h_tokens"]),
            reasoning_tokens=np.nan_to_num(row["reasoning_tokens"]),
        )
        if cost is not None:
            frame.iat[i, frame.columns.get_loc("cost_usd")] = cost


def read_call_logs(
    paths: str | Path | Sequence[str | Path],
    *,
    prices: PriceCatalog | None = None,
    quarantine_path: str | Path | None = None,
    compute_costs: bool = True,
    require_prompt: bool = True,
) -> CallLogRead:
    """Read, validate and normalise call logs.

    Parameters
    ----------
    paths : path or list of paths
        Files (``.jsonl``, ``.jsonl.gz``, ``.csv``, ``.csv.gz``, ``.parquet``) or folders.
    prices : PriceCatalog, optional
        Catalog used to compute ``cost_usd`` where a row lacks it; the shipped default
        catalog when None.
    quarantine_path : path, optional
        Where rejected rows are written as JSONL with ``quarantine_reason`` and
        ``source`` (``FILE:LINE``); replaced on every read, and removed when every row
        is valid.
    compute_costs : bool, default=True
        Fill a missing ``cost_usd`` from ``prices``. ``split`` turns it off so that the
        rows it writes keep only logged costs, and ``train``/``evaluate`` price the rest
        with their own ``--prices``.
    require_prompt : bool, default=True
        Refuse a row without ``prompt`` or ``messages``, as training and evaluation
        must (they learn from the prompt). False accepts prompt-less rows, for spend
        reporting on a gateway's usage log (LiteLLM's spend logs keep no prompt text
        by default): such a row keeps ``prompt``, ``messages`` and ``prompt_id`` None,
        and a file with no prompt column at all is read too.

    Raises
    ------
    CallLogError
        If a path is missing, a named file is empty or unreadable (corrupt gzip, bad
        Parquet...), a required column is absent from every row of a file, or no row
        of a file is valid. The message names the file and what to do.
    """
    sources = log_sources(paths)
    return read_call_log_sources(
        [(path, named, partial(read_log_file, path)) for path, named in sources],
        prices=prices,
        quarantine_path=quarantine_path,
        compute_costs=compute_costs,
        require_prompt=require_prompt,
    )


#: One file to read: its name (a path or URL, as messages and quarantine sources show
#: it), whether it was named itself (an empty named file is an error, an empty file found
#: in a folder is skipped) and a function returning its rows as read (``_line`` numbers
#: them) with its unparseable lines, as `features.call_log_files.read_log_file` does.
LogSource = tuple["str | Path", bool, Callable[[], tuple[pd.DataFrame, list[dict[str, Any]]]]]


def read_call_log_sources(
    sources: Sequence[LogSource],
    *,
    prices: PriceCatalog | None = None,
    quarantine_path: str | Path | None = None,
    compute_costs: bool = True,
    require_prompt: bool = True,
) -> CallLogRead:
    """`read_call_logs` on files that someone else opens: the rows of one partition of a
    dataset (`features.call_log_dataset`), local or behind an fsspec URL, are checked by
    exactly the same rules. Parameters and errors as `read_call_logs`.
    """
    good: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    seen: set[str] = set()
    for path, named, read in sources:
        frame, unparsed = read()
        if frame.empty and not unparsed:
            if not named:
                continue  # e.g. a rotated log's fresh, empty file
            raise CallLogError(
                path, "is empty: no call-log rows", "Check the path, or leave the file out."
            )
        bad.extend(
            {**{k: v for k, v in b.items() if k != "_line"}, "source": f"{path}:{b['_line']}"}
            for b in unparsed
        )
        if not frame.empty:
            _check_columns(path, frame, require_prompt)
        n_rejected = 0
        for row in frame.to_dict(orient="records"):
            line = row.pop("_line", None)
            try:
                clean = _validate_row(row, require_prompt)
            except (ValueError, TypeError) as exc:
                reason, n_rejected = str(exc), n_rejected + 1
            else:
                if clean["request_id"] not in seen:
                    seen.add(clean["request_id"])
                    good.append(clean)
                    continue
                reason = f"duplicate request_id {clean['request_id']!r}"
            bad.append(
                {**jsonable_row(row), "quarantine_reason": reason, "source": f"{path}:{line}"}
            )
        if n_rejected == len(frame):  # duplicates of other files' rows do not count
            mine = [b for b in bad if b["source"].rsplit(":", 1)[0] == str(path)]
            raise reject_file(path, mine, bad, quarantine_path)
    if not good and not bad:
        raise CallLogError(
            ", ".join(str(p) for p, _, _ in sources),
            "no call-log rows: every file is empty",
            "Check the paths.",
        )
    frame = pd.DataFrame.from_records(good, columns=list(COLUMNS))
    for name in (*TOKEN_COLUMNS, "cost_usd", "latency_ms", "outcome", "propensity"):
        frame[name] = frame[name].astype("float64")
    if compute_costs:
        _fill_costs(frame, prices or PriceCatalog.load())
    quarantined = pd.DataFrame.from_records(bad)
    if bad and quarantine_path is not None:
        write_quarantine(bad, quarantine_path)
    elif quarantine_path is not None:
        Path(quarantine_path).unlink(missing_ok=True)  # a previous run's rejects would mislead
    return CallLogRead(frame=frame, quarantined=quarantined)


def _check_columns(path: Path, frame: pd.DataFrame, require_prompt: bool = True) -> None:
    """A required column absent from every row is the file's problem, not each row's."""

    def present(name: str) -> bool:
        return name in frame and frame[name].map(lambda v: not _is_missing(v)).any()

    found = sorted(str(c) for c in frame.columns if c != "_line")
    shown = ", ".join(found[:20]) + (", ..." if len(found) > 20 else "")
    for name, meaning in (("request_id", "a unique id per call"), ("model", "the answering model")):
        if not present(name):
            raise CallLogError(
                path,
                f"no row has the required column `{name}` ({meaning}); columns found: {shown}",
                f"Add it, or rename the column that holds it to `{name}` (format: {FORMAT_DOC}).",
            )
    if require_prompt and not present("prompt") and not present("messages"):
        raise CallLogError(
            path,
            f"no row has a `prompt` or `messages` column (what was asked); columns found: {shown}",
            f"Add one, or rename the column that holds the prompt (format: {FORMAT_DOC}).",
        )


#: Extensions `write_call_log` writes (each one `read_call_logs` reads back).
WRITE_SUFFIXES = (".jsonl", ".jsonl.gz", ".csv", ".csv.gz", ".parquet")


def write_call_log(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write call-log rows (a `CallLogRead.frame`, or an importer's frame with any
    subset of `COLUMNS`) by the file's extension, so that `read_call_logs` reads them
    back unchanged: ``.parquet``, ``.jsonl[.gz]`` or ``.csv[.gz]``.

    ``messages`` is stored as JSON text in Parquet and CSV: Parquet would force every
    row's messages into one struct type, adding null keys and refusing content that is
    a string in one message and a list of parts in another. JSONL leaves a row's
    missing values out, so an importer's log carries only what its source had.
    Columns outside `COLUMNS` are not written.

    Raises
    ------
    ValueError
        If the extension is none of `WRITE_SUFFIXES`.
    """
    path = Path(path)
    if not path.name.endswith(WRITE_SUFFIXES):
        raise ValueError(
            f"{path}: a call log is written as {', '.join(WRITE_SUFFIXES)}; name the output "
            f"with one of these extensions (format: {FORMAT_DOC})."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    out = frame.reindex(columns=list(COLUMNS)).copy()
    if path.name.endswith((".jsonl", ".jsonl.gz")):
        import gzip

        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "wt", encoding="utf-8") as fh:
            for row in out.to_dict(orient="records"):
                kept = {k: _json_value(k, v) for k, v in row.items() if not _is_missing_cell(v)}
                fh.write(json.dumps(kept, ensure_ascii=False) + "\n")
        return path
    out["messages"] = out["messages"].map(
        lambda m: None if _is_missing_cell(m) else json.dumps(plain_value(m), ensure_ascii=False)
    )
    if path.name.endswith(".parquet"):
        out.to_parquet(path, index=False)
    else:
        out.to_csv(path, index=False)
    return path


def _is_missing_cell(value: Any) -> bool:
    return not isinstance(value, list | dict | np.ndarray) and _is_missing(value)


def _json_value(name: str, value: Any) -> Any:
    """A JSON-ready value: numpy scalars as Python ones, token counts as integers."""
    value = plain_value(value)
    if isinstance(value, np.generic):
        value = value.item()
    if name in TOKEN_COLUMNS and isinstance(value, float) and value.is_integer():
        return int(value)
    return value
