"""LiteLLM proxy spend logs -> our call log (docs/call-log.md, "Importing from LiteLLM").

Reads exports of the proxy's ``LiteLLM_SpendLogs`` table (``litellm/proxy/schema.prisma``):
a CSV (a database or UI export, JSON columns as JSON text), a JSON array of rows (the
``GET /spend/logs`` answer; an object with a ``data`` array, as ``/spend/logs/v2``
pages, works too) or JSON lines, optionally gzipped, or a folder of them. The columns
read are ``request_id, startTime, endTime, model, model_group, custom_llm_provider, user,
team_id, end_user, spend, prompt_tokens, completion_tokens, cache_hit, session_id,
request_tags, metadata, status, messages, proxy_server_request``; token counts come from
``metadata.usage_object`` (`features.importers.litellm_usage`).

Each row becomes one call:

- ``model``: the spend log's ``model`` (the deployment's model, which the catalog prices),
  else ``model_group``; priced by ``model``, then ``custom_llm_provider/model``, then
  ``model_group``.
- ``timestamp`` = ``startTime`` (UTC when it has no offset), ``latency_ms`` = ``endTime -
  startTime`` (else ``request_duration_ms``).
- ``user`` = ``user`` (the key's internal user), else ``end_user`` (the request's
  ``user``); ``team`` = ``team_id``; ``session_id`` as logged.
- ``task``: the first request tag ``task:X`` or ``task=X`` (also ``taskName:X``,
  ``task_name=X``, any case), else ``metadata.requester_metadata.task``, else
  ``metadata.spend_logs_metadata.task``.
- tokens from the usage object; ``source_cost_usd`` = ``spend``; ``cost_usd`` recomputed
  from the price catalog; a model the catalog lacks keeps ``spend`` as ``cost_usd`` and
  is named in the summary.
- ``prompt``/``messages``: the ``messages`` column when it holds a chat, else the request
  body in ``proxy_server_request`` (``messages``, or a Responses API ``input``, or
  ``prompt``). LiteLLM stores neither unless ``store_prompts_in_spend_logs`` is on, so
  most calls have no prompt: read the result with ``read_call_logs(...,
  require_prompt=False)`` (``report spend`` does); ``train`` needs prompts.
- ``cache_hit`` true means LiteLLM's own response cache answered: no provider call was
  made, so the call costs 0 and bills no tokens. (It is not the provider's prompt cache:
  LiteLLM leaves it false on Anthropic prompt-cache reads, BerriAI/litellm#11364; those
  are read from the usage object.)
- ``status`` ``failure``: the call is kept (it was made), priced by its tokens (usually
  none), and counted in the summary.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import pandas as pd

from features.call_log import COLUMNS, validate_call_row
from features.call_log_files import jsonable_row
from features.importers.call_import import CallImport
from features.importers.litellm_usage import usage_tokens
from features.prices import ModelPrice, PriceCatalog

__all__ = [
    "SOURCE",
    "TASK_TAG",
    "SpendLogError",
    "import_litellm_spend",
    "prompt_of",
    "read_spend_rows",
    "spend_row_to_call",
    "task_of",
]

SOURCE = "litellm-spend"
SUFFIXES = (".csv", ".csv.gz", ".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson")
#: A request tag naming the task: ``task:code-review``, ``taskName=triage``...
TASK_TAG = re.compile(r"^\s*task(?:[_-]?name)?\s*[:=]\s*(\S(?:.*\S)?)\s*$", re.IGNORECASE)
DOC = "docs/call-log.md"
CSV_FIELD_LIMIT = 2**31 - 1


class SpendLogError(ValueError):
    """A spend-log file that cannot be read as a whole (names the file and the fix)."""

    def __init__(self, path: str | Path, problem: str, fix: str) -> None:
        super().__init__(f"{path}: {problem}. {fix}")


# ------------------------------------------------------------------------- files
def _files(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(paths, str | Path):
        paths = [paths]
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.name.endswith(SUFFIXES))
            if not inside:
                raise SpendLogError(
                    path,
                    "folder holds no spend-log export",
                    f"Expected files ending {', '.join(SUFFIXES)}.",
                )
            found.extend(inside)
        elif path.is_file():
            if not path.name.endswith(SUFFIXES):
                raise SpendLogError(
                    path,
                    "not a spend-log export",
                    f"Name it with one of {', '.join(SUFFIXES)} (CSV, JSON array or JSON lines).",
                )
            found.append(path)
        else:
            raise SpendLogError(path, "no such file or folder", "Check the path.")
    return found


def _open(path: Path) -> IO[str]:
    """The export as text, gunzipped when it ends ``.gz`` (a BOM is dropped)."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def read_spend_rows(
    paths: str | Path | Sequence[str | Path],
) -> Iterator[tuple[dict[str, Any] | None, str, str | None]]:
    """Every row of the exports, as ``(row, where, problem)``.

    ``where`` is ``FILE:LINE`` (CSV, JSON lines) or ``FILE:#N`` (the N-th element of a
    JSON array, from 1); ``problem`` says why a line could not be read as a row (then
    ``row`` is None or the raw line). CSV and JSON lines are streamed; a JSON array is
    read whole.

    Raises
    ------
    SpendLogError
        If a path is missing, has another extension, cannot be read, or a ``.json`` file
        is not a JSON array of rows.
    """
    for path in _files(paths):
        try:
            yield from _rows_of(path)
        except (OSError, UnicodeDecodeError, EOFError, csv.Error) as exc:
            raise SpendLogError(path, f"cannot be read ({exc})", "Re-export the file.") from None


def _rows_of(path: Path) -> Iterator[tuple[dict[str, Any] | None, str, str | None]]:
    name = path.name.removesuffix(".gz")
    with _open(path) as fh:
        if name.endswith(".csv"):
            # A stored request body in a JSON column easily passes csv's 128 KiB default.
            csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
            reader = csv.DictReader(fh)
            start = 2
            for row in reader:
                yield dict(row), f"{path}:{start}", None
                start = reader.line_num + 1
            return
        if not name.endswith(".json"):
            yield from _json_lines(path, fh)
            return
        text = fh.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        yield from _json_lines(path, io.StringIO(text))  # JSON lines named .json
        return
    if isinstance(data, Mapping) and isinstance(data.get("data"), list):
        data = data["data"]  # a /spend/logs/v2 page
    elif isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, list):
        raise SpendLogError(
            path,
            f"holds a JSON {type(data).__name__}, not an array of spend-log rows",
            "Export the rows as a JSON array (GET /spend/logs) or JSON lines.",
        )
    for i, row in enumerate(data, start=1):
        where = f"{path}:#{i}"
        if isinstance(row, Mapping):
            yield dict(row), where, None
        else:
            yield None, where, "array element is not a JSON object"


def _json_lines(
    path: Path, lines: Iterable[str]
) -> Iterator[tuple[dict[str, Any] | None, str, str | None]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield {"line": line[:2000]}, where, f"invalid JSON: {exc}"
            continue
        if isinstance(row, Mapping):
            yield dict(row), where, None
        else:
            yield {"line": line[:2000]}, where, "line is not a JSON object"


# --------------------------------------------------------------------------- rows
def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _string(value: Any, name: str) -> str | None:
    if _missing(value):
        return None
    if isinstance(value, list | dict):
        raise ValueError(f"{name} must be text, got {value!r}"[:300])
    return str(value).strip() or None


def _json(value: Any, name: str, kind: type) -> Any:
    """A JSON column: parsed when it is JSON text (CSV), as is when already parsed."""
    if _missing(value):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{name} is not valid JSON: {exc}") from None
    if value is not None and not isinstance(value, kind):
        expected = getattr(kind, "__name__", "array or object")
        raise ValueError(f"{name} must be a JSON {expected}, got {value!r}"[:300])
    return value


def _time(value: Any, name: str) -> pd.Timestamp | None:
    if _missing(value):
        return None
    try:
        parsed = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise ValueError(f"{name} must be an ISO 8601 date-time, got {value!r}") from None
    if parsed is pd.NaT or (isinstance(value, int | float) and not isinstance(value, bool)):
        raise ValueError(f"{name} must be an ISO 8601 date-time, got {value!r}")
    return parsed.tz_localize("UTC") if parsed.tzinfo is None else parsed.tz_convert("UTC")


def _spend(value: Any) -> float | None:
    if _missing(value):
        return None
    try:
        spend = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"spend must be a number of USD, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(spend) or spend < 0:
        raise ValueError(f"spend must be a finite number of USD >= 0, got {value!r}")
    return spend


def _true(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes")


def task_of(tags: Sequence[Any] | None, metadata: Mapping[str, Any]) -> str | None:
    """The task a spend log names (see the module docstring for the rule)."""
    for tag in tags or ():
        match = TASK_TAG.match(tag) if isinstance(tag, str) else None
        if match:
            return match.group(1)
    for key in ("requester_metadata", "spend_logs_metadata"):
        inner = metadata.get(key)
        task = inner.get("task") if isinstance(inner, Mapping) else None
        if isinstance(task, str) and task.strip():
            return task.strip()
    return None


def _chat(value: Any) -> list[dict[str, Any]] | None:
    if (
        isinstance(value, list)
        and value
        and all(isinstance(m, Mapping) and "role" in m for m in value)
    ):
        return [dict(m) for m in value]
    return None


def prompt_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """``prompt`` or ``messages`` from the ``messages`` column or the stored request body;
    empty when LiteLLM stored neither (its default)."""
    messages = _chat(_json(row.get("messages"), "messages", list | dict))
    if messages:
        return {"messages": messages}
    body = _json(row.get("proxy_server_request"), "proxy_server_request", dict) or {}
    if isinstance(body.get("body"), Mapping):  # the request object rather than its body
        body = body["body"]
    messages = _chat(body.get("messages")) or _chat(body.get("input"))
    if messages:
        return {"messages": messages}
    for key in ("input", "prompt"):
        if isinstance(body.get(key), str) and body[key].strip():
            return {"prompt": body[key]}
    return {}


def _price(catalog: PriceCatalog, row: Mapping[str, Any], model: str) -> ModelPrice | None:
    names = [model]
    provider = _string(row.get("custom_llm_provider"), "custom_llm_provider")
    deployment = _string(row.get("model"), "model")
    if provider and deployment and not deployment.startswith(provider + "/"):
        names.append(f"{provider}/{deployment}")
    group = _string(row.get("model_group"), "model_group")
    if group:
        names.append(group)
    for name in names:
        price = catalog.get(name)
        if price is not None:
            return price
    return None


def spend_row_to_call(
    row: Mapping[str, Any], catalog: PriceCatalog
) -> tuple[dict[str, Any], dict[str, bool]]:
    """One spend-log row as one call-log row (checked like the reader checks it), and
    flags for the summary (``priced``, ``failed``, ``gateway_cache_hit``).

    Raises
    ------
    ValueError
        Naming the column that is wrong (the quarantine reason).
    """
    request_id = _string(row.get("request_id"), "request_id")
    if request_id is None:
        raise ValueError("missing required column 'request_id'")
    model = _string(row.get("model"), "model") or _string(row.get("model_group"), "model_group")
    if model is None:
        raise ValueError("missing required column 'model' (and model_group)")
    metadata = _json(row.get("metadata"), "metadata", dict) or {}
    usage = usage_tokens(
        metadata.get("usage_object"),
        prompt_tokens=None if _missing(row.get("prompt_tokens")) else row.get("prompt_tokens"),
        completion_tokens=None
        if _missing(row.get("completion_tokens"))
        else row.get("completion_tokens"),
        additional_usage_values=metadata.get("additional_usage_values"),
    )
    spend = _spend(row.get("spend"))
    start = _time(row.get("startTime"), "startTime")
    end = _time(row.get("endTime"), "endTime")
    latency = None
    if start is not None and end is not None and end >= start:
        latency = (end - start).total_seconds() * 1000
    elif not _missing(row.get("request_duration_ms")):
        latency = row.get("request_duration_ms")
    tags = _json(row.get("request_tags"), "request_tags", list)
    gateway_hit = _true(row.get("cache_hit"))
    failed = str(row.get("status") or "").strip().lower() == "failure"

    tokens = usage.to_dict()
    if gateway_hit:  # LiteLLM's response cache answered: the provider billed nothing
        tokens = dict.fromkeys(tokens, 0)
    price = _price(catalog, row, model)
    if price is not None:
        cost = price.cost_usd(
            tokens["input_tokens"],
            tokens["output_tokens"],
            tokens["cached_input_tokens"],
            tokens["cache_write_tokens"],
            cache_write_1h_tokens=tokens["cache_write_1h_tokens"] or 0,
            reasoning_tokens=tokens["reasoning_tokens"] or 0,
        )
    else:
        cost = 0.0 if gateway_hit else spend
    call = {
        "request_id": request_id,
        "model": model,
        **prompt_of(row),
        "timestamp": None if start is None else start.isoformat(),
        "user": _string(row.get("user"), "user") or _string(row.get("end_user"), "end_user"),
        "team": _string(row.get("team_id"), "team_id"),
        "task": task_of(tags, metadata),
        "session_id": _string(row.get("session_id"), "session_id"),
        **tokens,
        "cost_usd": cost,
        "source_cost_usd": spend,
        "latency_ms": latency,
        "source": SOURCE,
    }
    clean = validate_call_row(call, require_prompt=False)
    return clean, {"priced": price is not None, "failed": failed, "gateway_cache_hit": gateway_hit}


def import_litellm_spend(
    paths: str | Path | Sequence[str | Path], *, prices: PriceCatalog | None = None
) -> CallImport:
    """Read LiteLLM spend-log exports into call-log rows, recomputing every cost.

    Parameters
    ----------
    paths : path or list of paths
        CSV, JSON (array) or JSON-lines exports of ``LiteLLM_SpendLogs``, or folders.
    prices : PriceCatalog, optional
        The catalog that prices the calls; the shipped default when None.

    Returns
    -------
    CallImport
        ``frame`` (the calls, prompt-less where LiteLLM stored no prompt), the rejected
        rows with their reasons, and the counts the command prints.

    Raises
    ------
    SpendLogError
        If a path is missing or not an export.
    """
    catalog = prices if prices is not None else PriceCatalog.load()
    calls: list[dict[str, Any]] = []
    quarantined: list[dict[str, Any]] = []
    seen: set[str] = set()
    unpriced: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    n_rows = 0
    for row, where, problem in read_spend_rows(paths):
        n_rows += 1
        if problem is None:
            try:
                call, flags = spend_row_to_call(row, catalog)
            except (ValueError, TypeError) as exc:
                problem = str(exc)
            else:
                if call["request_id"] in seen:
                    problem = f"duplicate request_id {call['request_id']!r}"
                else:
                    seen.add(call["request_id"])
                    calls.append(call)
                    counts["failed_calls"] += flags["failed"]
                    counts["gateway_cache_hits"] += flags["gateway_cache_hit"]
                    if not flags["priced"]:
                        unpriced[call["model"]] += 1
                    continue
        quarantined.append(
            {**jsonable_row(dict(row or {})), "quarantine_reason": problem, "source": where}
        )
    if not calls:
        reasons = Counter(q["quarantine_reason"] for q in quarantined).most_common(3)
        shown = "; ".join(f"{reason} ({n} rows)" for reason, n in reasons)
        raise SpendLogError(
            ", ".join(str(p) for p in ([paths] if isinstance(paths, str | Path) else paths)),
            f"no spend-log row could be read ({shown})" if quarantined else "no spend-log rows",
            f"Check that these are LiteLLM_SpendLogs exports ({DOC}, 'Importing from LiteLLM').",
        )
    frame = pd.DataFrame.from_records(calls, columns=list(COLUMNS))
    counts.setdefault("failed_calls", 0)
    counts.setdefault("gateway_cache_hits", 0)
    return CallImport(
        source=SOURCE,
        frame=frame,
        quarantined=quarantined,
        n_rows=n_rows,
        unpriced=dict(unpriced),
        counts=dict(counts),
    )
