"""Claude Code session transcripts -> call log.

Claude Code writes every session to ``~/.claude/projects/<project>/<session>.jsonl``
(``<project>`` is the working directory with ``/`` replaced by ``-``) and every
subagent (Task tool, ``/btw`` side question) it starts to
``<project>/<session>/subagents/agent-<agentId>.jsonl``, lines marked
``"isSidechain": true`` with an ``agentId``. There is no official schema; the shape
below is the one ccusage parses (ryoppippi/ccusage, ``rust/crates/ccusage/src/types.rs``,
``adapter/claude/mod.rs`` and ``adapter/claude/paths.rs`` at 5816e64) and community
write-ups of real transcripts describe (e.g. 23min/copilot-lens
``docs/research/claude-code-sessions.md``).

One line is one JSON object with ``type`` (``user``, ``assistant``, ``system``,
``summary``, ``file-history-snapshot``, ``progress``...), ``uuid``, ``parentUuid``,
``sessionId``, ``timestamp``, ``cwd``, ``gitBranch``, ``version``, ``isSidechain`` and
``message``. An assistant line's ``message`` is the Anthropic Messages API response:
``id``, ``model``, ``content`` and ``usage`` (``input_tokens``, ``output_tokens``,
``cache_creation_input_tokens``, ``cache_read_input_tokens`` and, on recent versions,
``cache_creation: {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}``); the line
also has ``requestId`` and, on old versions, ``costUSD``.

Rules, as ccusage applies them:

- A streamed response is written as several assistant lines (one per content block)
  that repeat one ``message.id`` and ``requestId``: they are one call, counted once,
  with the line whose usage has the most tokens in total. A sidechain line that
  replays a parent message (same ``message.id``, new ``requestId``) is the parent's
  call, not a new one. Lines without ``message.id`` are not collapsed.
- ``message.model == "<synthetic>"`` lines are written by Claude Code itself (errors,
  interruptions), not by a model: skipped and counted.
- A line whose ``sessionId``, ``requestId``, ``message.id`` or ``message.model`` is an
  empty string is quarantined.
- Cache writes are ``ephemeral_5m + ephemeral_1h`` when the breakdown is there, else
  ``cache_creation_input_tokens``.

Mapping to the call log (Anthropic's ``input_tokens`` excludes cache reads and
writes; ours counts every prompt token, as the OpenTelemetry convention's Anthropic
page also prescribes):

=====================  ======================================================================
call-log column        transcript
=====================  ======================================================================
request_id             ``requestId``, else ``message.id``, else the line's ``uuid``
model                  ``message.model``
prompt                 the text of the last user line before the call in the same file
                       (``message.content`` string or text blocks; tool results,
                       ``isMeta`` and ``isCompactSummary`` lines and Claude Code's own
                       notices, `NOTICE_PREFIXES`, are not prompts): the human's ask of
                       that turn, or for a subagent the task it was given
timestamp              the earliest ``timestamp`` of the call's lines
session_id             ``sessionId`` (a subagent shares its parent's), else from the path
user                   the ``user`` argument, else the home folder's name in ``cwd``
                       (``/home/ana/...``, ``/Users/ana/...``, ``C:\\Users\\ana\\...``:
                       `HOME_IN_CWD`), else empty: a transcript names no person
team                   the ``team`` argument, else empty; task is left empty: no rule
                       in a transcript says what kind of work a call was
input_tokens           ``input_tokens + cache_read_input_tokens + cache writes``
cached_input_tokens    ``cache_read_input_tokens``
cache_write_tokens     cache writes (above)
cache_write_1h_tokens  ``cache_creation.ephemeral_1h_input_tokens``
output_tokens          ``output_tokens`` (thinking included; Anthropic does not report the
                       thinking part, so ``reasoning_tokens`` stays empty)
source_cost_usd        ``costUSD`` where present
cost_usd               recomputed from the price catalog (a model it lacks keeps
                       ``costUSD``, or none)
source                 ``"claude-code"``
is_sidechain           true for subagent calls (``isSidechain``, or a ``subagents/`` file)
agent_id, project      ``agentId``; the ``<project>`` folder name
cwd, git_branch        ``cwd``, ``gitBranch``
speed                  ``usage.speed`` (``"fast"``: fast mode, priced higher than the
                       catalog's rates; counted in the summary)
=====================  ======================================================================

``latency_ms`` is left empty: the lines carry write times, not request times.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from features.importers.imported_calls import CallsImport, checked_calls, price_call
from features.importers.source_files import source_files
from features.prices import PriceCatalog

__all__ = ["SYNTHETIC_MODEL", "claude_code_files", "import_claude_code"]

SYNTHETIC_MODEL = "<synthetic>"
#: The user whose home folder the session ran in (Linux, macOS, Windows).
HOME_IN_CWD = re.compile(r"^(?:/home|/Users|[A-Za-z]:\\Users)[/\\]([^/\\]+)")
#: How Claude Code's own user-role notices start (interruptions, slash-command echoes,
#: reminders, subagent notifications): text in a user line that nobody typed as an ask.
NOTICE_PREFIXES = (
    "[Request interrupted by user",
    "<command-name>",
    "<command-message>",
    "<local-command-stdout>",
    "<local-command-caveat>",
    "<system-reminder>",
    "<task-notification>",
)
CLAUDE_CODE_COLUMNS = (
    "is_sidechain",
    "agent_id",
    "project",
    "cwd",
    "git_branch",
    "message_id",
    "speed",
)


def claude_code_files(paths: Sequence[str | Path]) -> list[Path]:
    """Transcript files: those named, and every ``.jsonl`` under the folders, by path.

    Raises
    ------
    FileNotFoundError
        If a path does not exist or a folder holds no ``.jsonl`` file.
    """
    return source_files(
        paths,
        (".jsonl",),
        ".jsonl transcripts",
        "Point to ~/.claude/projects, a project folder under it, or a copy of them.",
    )


def _path_parts(path: Path) -> tuple[str | None, str, bool]:
    """(project, session id, is a subagent file) from where the file sits
    (ccusage ``extract_project`` / ``extract_session_parts``)."""
    subagent = path.parent.name == "subagents"
    session_dir = path.parent.parent if subagent else None
    session = session_dir.name if session_dir is not None else path.stem
    parts = path.resolve().parts
    if "projects" in parts[:-1]:
        project = parts[parts.index("projects") + 1]
        if project == path.name:
            project = None
    else:
        project = (session_dir.parent if session_dir is not None else path.parent).name or None
    return project, session, subagent


def _text(content: Any) -> str:
    """A user message's own text: the string, or its ``text`` blocks (not tool results)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "\n".join(
        block["text"]
        for block in content
        if isinstance(block, dict)
        and block.get("type") == "text"
        and isinstance(block.get("text"), str)
    )


def _is_notice(line: dict[str, Any], text: str) -> bool:
    """A user line that Claude Code wrote itself, not a person's ask: ``isMeta``
    caveats, the ``isCompactSummary`` of ``/compact``, and `NOTICE_PREFIXES`."""
    return bool(line.get("isMeta") or line.get("isCompactSummary")) or text.startswith(
        NOTICE_PREFIXES
    )


def _count(usage: dict[str, Any], key: str, required: bool = False) -> int:
    value = usage.get(key)
    if value is None and not required:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"message.usage.{key} must be a whole number >= 0, got {value!r}")
    return value


def _timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"timestamp must be an ISO 8601 date-time, got {value!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass
class _Entry:
    """One assistant line that is a candidate call."""

    row: dict[str, Any]
    message_id: str | None
    request_id: str | None
    sidechain: bool
    total: int
    first_seen: datetime | None
    where: str


def _entry(
    line: dict[str, Any], prompt: str | None, place: tuple[str | None, str, bool], where: str
) -> _Entry:
    """The call an assistant line describes; raises ValueError with the reason.
    ``place`` is the file's (project, session id, is a subagent file)."""
    message = line["message"]
    usage = message["usage"]
    for name, value in (
        ("sessionId", line.get("sessionId")),
        ("requestId", line.get("requestId")),
        ("message.id", message.get("id")),
        ("message.model", message.get("model")),
    ):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    model = message.get("model")
    if model is None:
        raise ValueError("assistant line without message.model")
    fresh = _count(usage, "input_tokens", required=True)
    output = _count(usage, "output_tokens", required=True)
    reads = _count(usage, "cache_read_input_tokens")
    breakdown = usage.get("cache_creation")
    if isinstance(breakdown, dict):
        writes_5m = _count(breakdown, "ephemeral_5m_input_tokens")
        writes_1h = _count(breakdown, "ephemeral_1h_input_tokens")
        writes = writes_5m + writes_1h
    else:
        writes, writes_1h = _count(usage, "cache_creation_input_tokens"), 0
    cost = line.get("costUSD")
    if cost is not None and (
        isinstance(cost, bool) or not isinstance(cost, int | float) or cost < 0
    ):
        raise ValueError(f"costUSD must be a number >= 0, got {cost!r}")
    when = _timestamp(line.get("timestamp"))
    project, path_session, subagent_file = place
    sidechain = bool(line.get("isSidechain")) or subagent_file
    request_id = line.get("requestId") or message.get("id") or line.get("uuid") or where
    row = {
        "request_id": request_id,
        "model": model,
        "prompt": prompt,
        "timestamp": None if when is None else line.get("timestamp"),
        "session_id": line.get("sessionId") or path_session,
        "input_tokens": fresh + reads + writes,
        "cached_input_tokens": reads,
        "cache_write_tokens": writes,
        "cache_write_1h_tokens": writes_1h,
        "output_tokens": output,
        "source_cost_usd": None if cost is None else float(cost),
        "source": "claude-code",
        "is_sidechain": sidechain,
        "agent_id": line.get("agentId"),
        "project": project,
        "cwd": line.get("cwd"),
        "git_branch": line.get("gitBranch") or None,
        "message_id": message.get("id"),
        "speed": usage.get("speed"),
    }
    return _Entry(
        row=row,
        message_id=message.get("id"),
        request_id=line.get("requestId"),
        sidechain=sidechain,
        total=fresh + output + reads + writes,
        first_seen=when,
        where=where,
    )


def _replaces(candidate: _Entry, existing: _Entry) -> bool:
    """ccusage ``should_replace_deduped_entry``: the parent's line beats a sidechain
    replay; then the line with more tokens (the last, complete chunk of a stream)."""
    if candidate.sidechain != existing.sidechain:
        return existing.sidechain
    return candidate.total > existing.total


def import_claude_code(
    paths: str | Path | Sequence[str | Path],
    *,
    prices: PriceCatalog | None = None,
    user: str | None = None,
    team: str | None = None,
    progress: Callable[[list[Path]], Iterable[Path]] | None = None,
) -> CallsImport:
    """Read Claude Code transcripts into calls, one per API response.

    Parameters
    ----------
    paths : path or list of paths
        Transcript files, or folders searched recursively for ``*.jsonl`` (e.g.
        ``~/.claude/projects`` or one project folder under it).
    prices : PriceCatalog, optional
        Catalog that prices every call (``cost_usd``); the default catalog when None.
    user : str, optional
        Written on every call; when None, the home folder's name in each line's ``cwd``
        (`HOME_IN_CWD`), else empty. A transcript folder is one person's machine, and
        names neither the person nor their team.
    team : str, optional
        Written on every call.
    progress : callable, optional
        Wraps the list of files as they are read (e.g. ``tqdm``), to show progress.

    Returns
    -------
    CallsImport
        Calls, quarantined lines (with reasons) and counts.

    Raises
    ------
    ValueError
        If a file is not UTF-8 text, or no file holds an assistant line with usage.
    """
    prices = prices or PriceCatalog.load()
    files = claude_code_files([paths] if isinstance(paths, str | Path) else list(paths))
    entries: list[_Entry] = []
    exact: dict[tuple[str, str | None], int] = {}
    by_message: dict[str, list[int]] = {}
    bad: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    for path in progress(files) if progress else files:
        counts["subagent_files" if path.parent.name == "subagents" else "session_files"] += 1
        prompt: str | None = None
        place = _path_parts(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"{path}: cannot be read as UTF-8 text ({type(exc).__name__}: {exc}). "
                "Copy the transcript again."
            ) from None
        for lineno, text in enumerate(lines, 1):
            if not text.strip():
                continue
            where = f"{path}:{lineno}"
            counts["lines_read"] += 1
            try:
                line = json.loads(text)
            except json.JSONDecodeError as exc:
                bad.append(
                    {
                        "raw": text[:2000],
                        "quarantine_reason": f"invalid JSON: {exc}",
                        "source": where,
                    }
                )
                continue
            if not isinstance(line, dict):
                bad.append(
                    {
                        "raw": text[:2000],
                        "quarantine_reason": "line is not a JSON object",
                        "source": where,
                    }
                )
                continue
            by_type[str(line.get("type"))] += 1
            message = line.get("message")
            if line.get("type") == "user" and isinstance(message, dict):
                said = _text(message.get("content")).strip()
                if said and not _is_notice(line, said):
                    prompt = said
                continue
            if not (isinstance(message, dict) and isinstance(message.get("usage"), dict)):
                continue
            counts["usage_lines"] += 1
            if message.get("model") == SYNTHETIC_MODEL:
                counts["synthetic_skipped"] += 1
                continue
            try:
                entry = _entry(line, prompt, place, where)
            except ValueError as exc:
                bad.append({**line, "quarantine_reason": str(exc), "source": where})
                continue
            _collapse(entry, entries, exact, by_message, counts)

    if not entries:
        raise ValueError(
            f"{', '.join(map(str, files))}: no assistant line with message.usage among "
            f"{counts['lines_read']} lines (types: {dict(by_type.most_common(5))}). Point to "
            "Claude Code transcripts (~/.claude/projects/<project>/<session>.jsonl)."
        )
    rows, where = [], []
    seen: set[str] = set()
    for entry in entries:
        row = entry.row
        if entry.first_seen is not None and row["timestamp"] is not None:
            row["timestamp"] = entry.first_seen.isoformat().replace("+00:00", "Z")
        if row["request_id"] in seen:  # a requestId shared by two message ids
            row["request_id"] = f"{row['request_id']}/{row['message_id']}"
        seen.add(row["request_id"])
        row["team"] = team
        if user is not None:
            row["user"] = user
        else:
            home = HOME_IN_CWD.match(row["cwd"] or "")
            row["user"] = home.group(1) if home else None
        price_call(prices, row)
        rows.append(row)
        where.append(entry.where)
    frame = checked_calls(rows, CLAUDE_CODE_COLUMNS, bad, where)
    summary = {
        "files": len(files),
        "session_files": counts["session_files"],
        "subagent_files": counts["subagent_files"],
        "lines_by_type": dict(by_type.most_common()),
        "usage_lines": counts["usage_lines"],
        "synthetic_skipped": counts["synthetic_skipped"],
        "duplicates_collapsed": {
            "streamed_chunks": counts["streamed_chunks"],
            "sidechain_replays": counts["sidechain_replays"],
        },
        "sidechain_calls": int(frame["is_sidechain"].sum()),
        "calls_without_prompt": int(frame["prompt"].isna().sum()),
        "fast_mode_calls": int((frame["speed"] == "fast").sum()),
    }
    return CallsImport(
        source="claude-code",
        frame=frame,
        n_rows=counts["lines_read"],
        quarantined=bad,
        counts=summary,
    )


def _collapse(
    entry: _Entry,
    entries: list[_Entry],
    exact: dict[tuple[str, str | None], int],
    by_message: dict[str, list[int]],
    counts: Counter[str],
) -> None:
    """Add a candidate call, or fold it into the call it repeats (ccusage
    ``push_deduped_entry``): same ``message.id`` and ``requestId`` (a streamed chunk),
    or same ``message.id`` where either line is a sidechain's (a replay)."""
    if entry.message_id is None:
        entries.append(entry)
        return
    index = exact.get((entry.message_id, entry.request_id))
    kind = "streamed_chunks"
    if index is None:
        kind = "sidechain_replays"
        index = next(
            (
                i
                for i in by_message.get(entry.message_id, [])
                if entry.sidechain or entries[i].sidechain
            ),
            None,
        )
    if index is None:
        entries.append(entry)
        exact[(entry.message_id, entry.request_id)] = len(entries) - 1
        by_message.setdefault(entry.message_id, []).append(len(entries) - 1)
        return
    counts[kind] += 1
    existing = entries[index]
    first = min((t for t in (existing.first_seen, entry.first_seen) if t is not None), default=None)
    if _replaces(entry, existing):
        entry.first_seen = first
        entries[index] = entry
        exact[(entry.message_id, entry.request_id)] = index
    else:
        existing.first_seen = first
