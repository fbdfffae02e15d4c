"""The decision log: one JSON line per /route decision, durable, rotated, readable.

Each line carries what off-policy evaluation needs later (``decision_id``,
``propensity``, ``router_version``, the allowed candidates and their scores), so
the log joins to the gateway's call log on ``decision_id``
(`training.decision_join.attach_propensities` puts each decision's propensity on
its call row, for off-policy evaluation). The prompt itself is
only written when asked for (prompts hold secrets); its sha256 always is, so
repeated prompts can be grouped without storing them.

Flush policy
------------
- **Process crash (``kill -9``, OOM kill): nothing acknowledged is lost.** Every
  line goes to the kernel with one ``os.write`` on an ``O_APPEND`` descriptor
  before `DecisionLog.write` returns, and ``/route`` writes before it answers. No
  user-space buffer holds a line, so once the caller has its answer the line is in
  the page cache, which survives the death of the process.
- **Machine crash or power loss: at most ``fsync_interval_s`` of decisions.** A
  background thread fsyncs the file every ``fsync_interval_s`` seconds when
  something was written; rotation and `DecisionLog.close` fsync too.
  ``fsync_interval_s=0`` fsyncs every line before `write` returns (durable against
  power loss, at the price of a disk flush per request).
- A line is built whole before it is written and written under a lock with one
  system call, so lines never interleave, even between threads. A process killed
  inside the system call can leave an unterminated last line; it was never
  acknowledged, the reader reports it instead of failing, and the next
  `DecisionLog` opened on the file cuts it off before appending.

Rotation
--------
When a line would take the file past ``max_bytes``, the file is fsynced and
renamed to ``STEM.YYYYmmddTHHMMSS.ffffffZ.SUFFIX`` (UTC; e.g.
``decisions.20261129T043616.123456Z.jsonl``) and a fresh file is started. A
rotated file is never renamed again, so a reader listing the folder cannot see a
file under two names; `decision_log_files` lists them oldest first, then the
live file. Beyond ``backups`` rotated files the oldest are deleted (0 keeps all).
One process writes one log file: replicas and workers each get their own path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_TIMESTAMP_FORMAT = "%Y%m%dT%H%M%S.%fZ"
#: One encoder for every line: ``json.dumps`` with non-default options builds a new
#: encoder per call, a measurable part of a ~20 us write.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)
# O_RDWR, not O_WRONLY: reopening reads the tail to repair a torn last line.
_OPEN_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


def text_sha256(text: str) -> str:
    """Hex sha256 of a routing text (UTF-8).

    Examples
    --------
    >>> text_sha256("hi")[:12]
    '8f434346648f'
    """
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _rotated_pattern(path: Path) -> re.Pattern[str]:
    stem, suffix = _split_name(path)
    return re.compile(
        rf"^{re.escape(stem)}\.(\d{{8}}T\d{{6}}\.\d{{6}}Z)(?:-(\d+))?{re.escape(suffix)}$"
    )


def _split_name(path: Path) -> tuple[str, str]:
    """``decisions.jsonl`` -> (``decisions``, ``.jsonl``); no suffix -> (name, "")."""
    return (path.stem, path.suffix) if path.suffix else (path.name, "")


def decision_log_files(path: str | Path) -> list[Path]:
    """Every file of a decision log, oldest first: rotated files, then the live one.

    Parameters
    ----------
    path : path
        The live file, as configured (``OUTCOME_ROUTER_DECISION_LOG``).

    Returns
    -------
    list of Path
        Rotated files in the order they were written (by the UTC time in their
        names), then ``path`` itself if it exists.
    """
    path = Path(path)
    pattern = _rotated_pattern(path)
    rotated = []
    if path.parent.is_dir():
        for entry in path.parent.iterdir():
            match = pattern.match(entry.name)
            if match and entry.is_file():
                rotated.append(((match.group(1), int(match.group(2) or 0)), entry))
    files = [entry for _, entry in sorted(rotated)]
    if path.is_file():
        files.append(path)
    return files


@dataclass(frozen=True)
class DecisionLogRead:
    """What `read_decision_log` found.

    Attributes
    ----------
    records : list of dict
        Every complete decision, in the order written.
    bad : list of dict
        Lines that are not decisions, each ``{"source": "FILE:LINE", "reason",
        "raw"}``. An unterminated last line (a write cut short by a killed
        process; never acknowledged) has the reason ``"torn last line"``.
    """

    records: list[dict[str, Any]]
    bad: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_torn(self) -> int:
        """Unterminated last lines: writes cut short by a killed process."""
        return sum(b["reason"].startswith("torn last line") for b in self.bad)


def read_decision_log(path: str | Path) -> DecisionLogRead:
    """Read every decision of a log, rotated files included, oldest first.

    Readers may run while the server writes: a line is only read once it ends
    with a newline, unless it is the last one of the file, in which case it is
    reported as torn (it is either being written right now or was cut short by a
    crash) rather than parsed.

    Parameters
    ----------
    path : path
        The live file, as configured.

    Returns
    -------
    DecisionLogRead
        Decisions, and the lines that are not (never dropped silently).

    Raises
    ------
    FileNotFoundError
        If neither the live file nor a rotated one exists.
    """
    files = decision_log_files(path)
    if not files:
        raise FileNotFoundError(
            f"No decision log at {path} (nor rotated files next to it); the server writes "
            "one when OUTCOME_ROUTER_DECISION_LOG is set."
        )
    records: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    for file in files:
        data = file.read_bytes()
        lines = data.split(b"\n")
        # A file ending in "\n" splits into [..., b""]; anything else is unterminated.
        tail = lines.pop()
        for lineno, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            record, reason = _parse_line(raw)
            if record is None:
                bad.append({"source": f"{file}:{lineno}", "reason": reason, "raw": _show(raw)})
            else:
                records.append(record)
        if tail:
            bad.append(
                {
                    "source": f"{file}:{len(lines) + 1}",
                    "reason": "torn last line: an unterminated write, never acknowledged",
                    "raw": _show(tail),
                }
            )
    return DecisionLogRead(records=records, bad=bad)


def _parse_line(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    try:
        record = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"invalid JSON: {exc}"
    if not isinstance(record, dict) or not isinstance(record.get("decision_id"), str):
        return None, "not a decision: a JSON object with a string decision_id was expected"
    return record, ""


def _show(raw: bytes) -> str:
    return raw[:2000].decode("utf-8", "replace")


class DecisionLog:
    """Append decisions to a JSONL file, safely from many request threads.

    See the module docstring for the flush and rotation policy.

    Parameters
    ----------
    path : path
        The live JSONL file; created with its folder if missing, appended to
        otherwise (after cutting off a torn last line left by a crash).
    log_prompts : bool, default=False
        Also write the routing text under ``prompt``.
    max_bytes : int, default=0
        Rotate before a line would take the file past this size; 0 never rotates.
    backups : int, default=0
        Rotated files kept; older ones are deleted. 0 keeps them all.
    fsync_interval_s : float, default=1.0
        Seconds between background fsyncs (the power-loss window); 0 fsyncs every
        line before `write` returns.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with DecisionLog(f"{folder}/decisions.jsonl") as log:
    ...     log.write(decision_id="d1", router_version="v1", candidates=["a", "b"],
    ...               model="a", propensity=1.0, reason="max_utility", scores=[],
    ...               routing_text="hi")
    >>> [r["decision_id"] for r in read_decision_log(f"{folder}/decisions.jsonl").records]
    ['d1']
    """

    def __init__(
        self,
        path: str | Path,
        *,
        log_prompts: bool = False,
        max_bytes: int = 0,
        backups: int = 0,
        fsync_interval_s: float = 1.0,
    ) -> None:
        if max_bytes < 0 or backups < 0 or not fsync_interval_s >= 0:
            raise ValueError(
                f"Expected max_bytes >= 0, backups >= 0 and fsync_interval_s >= 0; got "
                f"{max_bytes}, {backups} and {fsync_interval_s}."
            )
        self.path = Path(path)
        self.log_prompts = log_prompts
        self.max_bytes = max_bytes
        self.backups = backups
        self.fsync_interval_s = fsync_interval_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fd = -1
        self._size = 0
        self._dirty = False
        self._closed = threading.Event()
        self._open()
        self._syncer: threading.Thread | None = None
        if fsync_interval_s > 0:
            self._syncer = threading.Thread(
                target=self._sync_loop, name="decision-log-fsync", daemon=True
            )
            self._syncer.start()

    # ------------------------------------------------------------------ writing

    def write(
        self,
        *,
        decision_id: str,
        router_version: str,
        candidates: Sequence[str],
        model: str,
        propensity: float,
        reason: str,
        scores: Sequence[Mapping[str, Any]],
        routing_text: str | None,
        value_usd: float | None = None,
        min_success: float | None = None,
        max_cost_usd: float | None = None,
        user: str | None = None,
        team: str | None = None,
        task: str | None = None,
        session_id: str | None = None,
        feature_spec_version: int | None = None,
        exploration: Mapping[str, Any] | None = None,
        cache_assumed: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one decision; when this returns, the line is in the kernel.

        ``routing_text`` is None when the request failed before its text was built
        (a fallback decision); ``prompt_sha256`` is then null. ``exploration``
        describes the stochastic policy that drew ``model`` (None: deterministic).
        ``cache_assumed`` is what the costs assumed about prompt caches
        (`serving.scoring.CacheAssumption.to_dict`; None: nothing).

        Raises
        ------
        ValueError
            If the log is closed.
        OSError
            If the system refuses the write (disk full, ...).
        """
        record: dict[str, Any] = {
            "decision_id": decision_id,
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "router_version": router_version,
            "feature_spec_version": feature_spec_version,
            "candidates": list(candidates),
            "model": model,
            "propensity": propensity,
            "reason": reason,
            "scores": list(scores),
            "value_usd": value_usd,
            "min_success": min_success,
            "max_cost_usd": max_cost_usd,
            "user": user,
            "team": team,
            "task": task,
            "session_id": session_id,
            "exploration": dict(exploration) if exploration is not None else None,
            "cache_assumed": dict(cache_assumed) if cache_assumed is not None else None,
            "prompt_sha256": text_sha256(routing_text) if routing_text is not None else None,
        }
        if self.log_prompts:
            record["prompt"] = routing_text
        # "replace": a lone surrogate that slipped past validation must not cost the
        # line (the request is answered either way).
        line = (_ENCODER.encode(record) + "\n").encode("utf-8", "replace")
        with self._lock:
            if self._fd < 0:
                raise ValueError(f"The decision log {self.path} is closed.")
            if self.max_bytes and self._size and self._size + len(line) > self.max_bytes:
                self._rotate()
            try:
                _write_all(self._fd, line)
            except OSError:
                # Disk full mid-line: cut the part written, so the next line does
                # not glue onto it.
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._size)
                raise
            self._size += len(line)
            if self.fsync_interval_s == 0:
                os.fsync(self._fd)
            else:
                self._dirty = True

    def sync(self) -> None:
        """Flush the file to disk now (what the background thread does periodically).

        The descriptor is duplicated under the lock and fsynced outside it, so
        writers are not held up by a slow disk.
        """
        with self._lock:
            if self._fd < 0 or not self._dirty:
                return
            fd = os.dup(self._fd)
            self._dirty = False
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        """Fsync and close the file; later writes raise ``ValueError``."""
        self._closed.set()
        if self._syncer is not None and self._syncer is not threading.current_thread():
            self._syncer.join()
        with self._lock:
            if self._fd < 0:
                return
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- internals

    def _open(self) -> None:
        """Open the live file for appending, cutting off a torn last line."""
        fd = os.open(self.path, _OPEN_FLAGS, 0o644)
        try:
            size = _repair_tail(fd, self.path)
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._size = fd, size

    def _rotate(self) -> None:
        """Rename the live file to its timestamped name and start a new one (lock held)."""
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        stem, suffix = _split_name(self.path)
        stamp = datetime.now(UTC).strftime(_TIMESTAMP_FORMAT)
        target = self.path.with_name(f"{stem}.{stamp}{suffix}")
        n = 0
        while target.exists():
            n += 1
            target = self.path.with_name(f"{stem}.{stamp}-{n}{suffix}")
        try:
            os.replace(self.path, target)
        finally:
            self._open()  # the old file again if the rename failed: keep logging
        _fsync_dir(self.path.parent)
        self._dirty = False
        if self.backups:
            for old in decision_log_files(self.path)[: -self.backups - 1]:
                old.unlink(missing_ok=True)

    def _sync_loop(self) -> None:
        while not self._closed.wait(self.fsync_interval_s):
            try:
                self.sync()
            except OSError:
                logger.exception("Could not fsync the decision log %s.", self.path)


def _write_all(fd: int, data: bytes) -> None:
    """One ``os.write`` in practice; loop in case the kernel takes fewer bytes."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _repair_tail(fd: int, path: Path) -> int:
    """Make the file end at a line boundary; return its size.

    A last line without its newline is a write cut short by a crash (never
    acknowledged): it is cut off, with a warning, so the next line does not glue
    onto it. A complete JSON object that only lacks the newline gets one.
    """
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    start = size
    while start > 0:
        chunk_start = max(0, start - 65536)
        chunk = os.pread(fd, start - chunk_start, chunk_start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            start = chunk_start + newline + 1
            break
        start = chunk_start
    tail = os.pread(fd, size - start, start)
    record, _ = _parse_line(tail)
    if record is not None:
        _write_all(fd, b"\n")
        return size + 1
    logger.warning(
        "The decision log %s ends with %d bytes of an unfinished line (a write cut short "
        "by a crash, never acknowledged); cutting them off: %r",
        path,
        size - start,
        tail[:200],
    )
    os.ftruncate(fd, start)
    return start


def _fsync_dir(folder: Path) -> None:
    """Persist a rename: fsync the folder (not possible on every platform)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
