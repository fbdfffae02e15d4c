"""Call-log files on disk: which files a path names, and their rows as read.

A file that cannot be read as a whole (missing, empty, not the format its name says,
a broken gzip or Parquet file, a required column absent from every row) is a
`CallLogError` whose message names the file and what to do, so a command can print
one line and stop instead of a traceback from pandas, pyarrow or gzip. A bad row in a
readable file is not an error: it goes to the quarantine (`features.call_log`).
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

#: The page that documents the call-log format; error messages point to it.
FORMAT_DOC = "docs/call-log.md"
SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".csv", ".csv.gz", ".parquet")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson")
CSV_SUFFIXES = (".csv", ".csv.gz")
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class LogKind:
    """What kind of log a file holds, for the file-level error messages.

    The call log and the outcome events share the file handling (formats, folders,
    gzip, the errors that name the file and the fix); only the noun, the format page
    and the error class differ.
    """

    noun: str = "call-log"
    doc: str = FORMAT_DOC
    error: type[ValueError] | None = None

    def fail(self, path: str | Path, problem: str, fix: str) -> ValueError:
        return (self.error or CallLogError)(path, problem, fix)


#: The call log's kind (the default of every function here).
CALL_LOG = LogKind()

#: What a library may raise on a file that is not what its name says.
_READ_ERRORS = (
    OSError,
    EOFError,
    zlib.error,
    ValueError,
    TypeError,
    NotImplementedError,
    pa.ArrowException,
)


class CallLogError(ValueError):
    """A call-log file or folder that cannot be read as a whole.

    The message names the path, the problem and the fix; commands print it as one
    ``error:`` line and exit with status 2.
    """

    def __init__(self, path: str | Path, problem: str, fix: str) -> None:
        self.path, self.problem, self.fix = str(path), problem, fix
        super().__init__(f"{path}: {problem}. {fix}")

    def __reduce__(self):
        return type(self), (self.path, self.problem, self.fix)


def log_files(paths: str | Path | Sequence[str | Path], kind: LogKind = CALL_LOG) -> list[Path]:
    """Expand files and folders into the sorted list of call-log files they hold."""
    return [path for path, _ in log_sources(paths, kind)]


def log_sources(
    paths: str | Path | Sequence[str | Path], kind: LogKind = CALL_LOG
) -> list[tuple[Path, bool]]:
    """Log files with whether each was named itself (True) or found in a folder."""
    if isinstance(paths, str | Path):
        paths = [paths]
    sources: list[tuple[Path, bool]] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(SUFFIXES))
            if not found:
                raise kind.fail(
                    p,
                    f"folder holds no {kind.noun} files ({', '.join(SUFFIXES)})",
                    f"Point to the folder or files that hold the logs (format: {kind.doc}).",
                )
            sources.extend((f, False) for f in found)
        elif p.is_file():
            if not p.name.endswith(SUFFIXES):
                raise kind.fail(
                    p,
                    f"unsupported {kind.noun} format",
                    f"Name the file by its content: {', '.join(SUFFIXES)} (format: {kind.doc}).",
                )
            sources.append((p, True))
        else:
            raise kind.fail(
                p,
                "no such file or folder",
                f"Check the path (a relative path starts from {Path.cwd()}).",
            )
    return sources


def read_log_file(
    path: Path, kind: LogKind = CALL_LOG
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Rows of one file as read (``_line`` numbers them), and its unparseable lines.

    Raises
    ------
    CallLogError
        If the file cannot be read as its name says (corrupt or mislabelled gzip,
        unreadable Parquet, broken CSV, not UTF-8).
    """
    try:
        if path.name.endswith(JSONL_SUFFIXES):
            return _read_jsonl(path)
        if path.name.endswith(CSV_SUFFIXES):
            try:
                frame = pd.read_csv(path, dtype="string", keep_default_na=True)
            except pd.errors.EmptyDataError:
                frame = pd.DataFrame()
        else:
            frame = pd.read_parquet(path)
    except CallLogError:
        raise
    except _READ_ERRORS as exc:
        raise _unreadable(path, exc, kind) from exc
    frame["_line"] = np.arange(1, len(frame) + 1)
    return frame, []


def _read_jsonl(path: Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return jsonl_rows(fh)


def jsonl_rows(lines: Iterable[str]) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The JSON-object lines of a JSON-lines text as a frame (``_line``: the line
    number), and the lines that are not JSON objects, with the reason, for quarantine.
    Blank lines are skipped."""
    rows, bad = [], []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            reason = f"invalid JSON: {exc}"
            bad.append({"raw": line[:2000], "quarantine_reason": reason, "_line": lineno})
            continue
        if not isinstance(row, dict):
            reason = "line is not a JSON object"
            bad.append({"raw": line[:2000], "quarantine_reason": reason, "_line": lineno})
            continue
        row["_line"] = lineno
        rows.append(row)
    return pd.DataFrame.from_records(rows), bad


def _unreadable(path: Path, exc: BaseException, kind: LogKind = CALL_LOG) -> ValueError:
    error_name = type(exc).__name__
    if error_name == "error":  # zlib.error
        error_name = f"{type(exc).__module__}.error"
    detail = f"{error_name}: {exc}"
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        head = b""
    name = path.name
    if name.endswith(".gz") and not head.startswith(GZIP_MAGIC):
        return kind.fail(
            path,
            f"is named .gz but is not gzip-compressed ({detail})",
            f"If it is plain text, rename it to {name[:-3]}; otherwise compress it with gzip.",
        )
    if name.endswith(".gz"):
        return kind.fail(
            path,
            f"is a corrupt or truncated gzip file ({detail})",
            "Copy or export it again; `gzip -t FILE` checks a file.",
        )
    if head.startswith(GZIP_MAGIC):
        return kind.fail(
            path,
            "is gzip-compressed but not named .gz",
            f"Rename it to {name}.gz.",
        )
    if name.endswith(".parquet"):
        return kind.fail(
            path,
            f"is not a readable Parquet file ({detail})",
            "Write it again (pandas DataFrame.to_parquet or pyarrow), or export the logs "
            f"as .jsonl or .csv (format: {kind.doc}).",
        )
    if isinstance(exc, UnicodeDecodeError):
        return kind.fail(path, f"is not UTF-8 text ({detail})", "Export it as UTF-8.")
    if isinstance(exc, OSError):
        return kind.fail(path, f"cannot be read ({detail})", "Check its permissions.")
    return kind.fail(
        path,
        f"cannot be read as {'CSV' if name.endswith(CSV_SUFFIXES) else 'JSONL'} ({detail})",
        f"Check that it is one complete file in that format (format: {kind.doc}).",
    )


def write_quarantine(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """Write rejected rows, one JSON object per line with its ``quarantine_reason``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, default=str) + "\n")
    return path


def plain_value(value: Any) -> Any:
    """A cell as plain JSON values: lists and dicts in place of the numpy arrays Parquet
    returns for nested columns, Python scalars for numpy ones, None for NaN and NA."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list):
        return [plain_value(v) for v in value]
    if isinstance(value, dict):
        return {k: plain_value(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return None if value is pd.NA or value is pd.NaT else value


def jsonable_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row as read, in values JSON can hold, so a rejected row is quarantined as it was."""
    out = {}
    for key, value in row.items():
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, pd.Timestamp):
            value = value.isoformat()
        elif isinstance(value, np.generic):
            value = value.item()
        elif not isinstance(value, list | dict) and (
            value is None
            or value is pd.NA
            or value is pd.NaT
            or (isinstance(value, float) and math.isnan(value))
        ):
            value = None
        out[key] = value
    return out


def reject_file(
    path: Path,
    mine: list[dict[str, Any]],
    bad: list[dict[str, Any]],
    quarantine_path: str | Path | None,
    kind: LogKind = CALL_LOG,
    unit: str = "rows",
) -> ValueError:
    """The error for a file none of whose rows is valid: the commonest reasons (with the
    column each names) instead of training on nothing; every bad row is quarantined.

    ``mine`` are this file's rejected rows, ``bad`` every rejected row so far.
    """
    reasons = Counter(b["quarantine_reason"].split(", got ")[0] for b in mine)
    summary = "; ".join(f"{reason} ({n} rows)" for reason, n in reasons.most_common(3))
    where = "the reason of every row is in the quarantine"
    if quarantine_path is not None:
        write_quarantine(bad, quarantine_path)
        where = f"every row and its reason is in {quarantine_path}"
    return kind.fail(
        path,
        f"none of its {len(mine)} {unit} is valid: {summary}",
        f"Fix the column named above (format: {kind.doc}); {where}.",
    )
