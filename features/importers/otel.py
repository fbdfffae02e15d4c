"""OpenTelemetry GenAI traces (OTLP/JSON) -> call log and judge_score outcome events.

Reads the files `features.importers.otlp_json` reads (a collector's ``file`` exporter
output, saved OTLP/HTTP bodies) and maps the OpenTelemetry GenAI semantic conventions
(open-telemetry/semantic-conventions ``docs/gen-ai/gen-ai-spans.md``,
``gen-ai-events.md`` and ``model/gen-ai/deprecated/*.yaml`` at commit 7b0c0fe1e, the
last before they moved to the semantic-conventions-genai repository) onto our call log.

One call per completion: an inference span, ``gen_ai.operation.name`` ``chat``,
``text_completion`` or ``generate_content`` (`INFERENCE_OPERATIONS`). A span with no
operation name but a model and token usage (instrumentations older than the attribute,
OpenLLMetry, LiteLLM's callback) is an inference span too. Tool, agent, embeddings and
retrieval spans are counted by operation and skipped; spans without GenAI attributes
(HTTP, database) are counted as ``non_genai_spans``. One completion seen twice is one
call: the same span in two files, two spans with one ``gen_ai.response.id``, or a
framework's span wrapping the client library's with the same token counts.

=========================  ==============================================================
call-log column            span attribute (first found)
=========================  ==============================================================
request_id                 ``gen_ai.response.id``, else the span id
model                      ``gen_ai.response.model``, else ``gen_ai.request.model``
timestamp, latency_ms      ``startTimeUnixNano``; ``endTimeUnixNano - startTimeUnixNano``
session_id                 ``gen_ai.conversation.id``, else ``session.id``
user                       `USER_KEYS` on the span, then on its resource
team                       `TEAM_KEYS` on the span, then on its resource
messages                   ``gen_ai.system_instructions`` + ``gen_ai.input.messages`` (span
                           attribute or ``gen_ai.client.inference.operation.details``
                           event), else the deprecated ``gen_ai.{system,user,assistant,
                           tool}.message`` events (on the span, or log records of
                           it), ``gen_ai.prompt`` (attribute or
                           ``gen_ai.content.prompt`` event) or OpenLLMetry's flattened
                           ``gen_ai.prompt.N.role``/``.content``; text parts only
input_tokens               ``gen_ai.usage.input_tokens`` (``gen_ai.usage.prompt_tokens``)
cached_input_tokens        ``gen_ai.usage.cache_read.input_tokens``
cache_write_tokens         ``gen_ai.usage.cache_creation.input_tokens``
output_tokens              ``gen_ai.usage.output_tokens`` (``..completion_tokens``)
reasoning_tokens           ``gen_ai.usage.reasoning.output_tokens`` (part of output)
source_cost_usd            ``gen_ai.cost.total_cost`` (LiteLLM's callback)
cost_usd                   recomputed from the price catalog
source                     ``"otel"``
provider, operation        ``gen_ai.provider.name`` (``gen_ai.system``); the operation
trace_id, span_id          the span's ids, to find the call in a trace viewer
error_type                 ``error.type``, else ``"span_status_error"`` for status ERROR
=========================  ==============================================================

Cached tokens: the convention says ``gen_ai.usage.input_tokens`` SHOULD include cache
reads and writes (our convention too), and its Anthropic page tells instrumentations
to add Anthropic's separately reported cache counts in. Instrumentations that did not
(older Anthropic ones) give reads + writes > input tokens; with
``cache_tokens_in_input="auto"`` such a span's input is taken as excluding them and
they are added, and the summary counts how often. ``"included"`` quarantines such a
span instead, ``"excluded"`` always adds them.

LiteLLM's OpenTelemetry callback writes no cache counts on its spans; where a span has
none, its ``metadata.usage_object`` (`LITELLM_USAGE_OBJECT`) gives every token count,
read by `features.importers.litellm_usage` as ``import litellm-spend`` reads it.

Evaluations: a ``gen_ai.evaluation.result`` event (a span event, or a log record of a
logs export) or a span carrying ``gen_ai.evaluation.name`` becomes a ``judge_score``
outcome event (docs/grading.md) about the call it names: its ``gen_ai.response.id``,
else the inference span it is attached to (span event, or the log record's span), else
that span's parent. ``value`` is ``gen_ai.evaluation.score.value``, which must lie in
[0, 1] (a 1-5 rubric is quarantined, never clipped or rescaled by guess); without a
value, ``gen_ai.evaluation.score.label`` is read through `LABEL_SCORES`.
"""

from __future__ import annotations

import ast
import contextlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from features.events import validate_events
from features.importers.genai_semconv import (
    CACHE_TOKEN_MODES,
    DETAILS_EVENT,
    EVALUATION_EVENT,
    INFERENCE_OPERATIONS,
    LABEL_SCORES,
    LITELLM_COST,
    LITELLM_USAGE_OBJECT,
    SESSION_KEYS,
    TEAM_KEYS,
    TOKEN_KEYS,
    USER_KEYS,
)
from features.importers.imported_calls import CallsImport, checked_calls, price_call
from features.importers.litellm_usage import usage_tokens
from features.importers.otlp_json import (
    LogRecord,
    Span,
    is_finite_number,
    otlp_files,
    read_otlp_file,
)
from features.prices import PriceCatalog

__all__ = [
    "CACHE_TOKEN_MODES",
    "INFERENCE_OPERATIONS",
    "LABEL_SCORES",
    "TEAM_KEYS",
    "USER_KEYS",
    "import_otel",
]

OTEL_COLUMNS = ("provider", "operation", "trace_id", "span_id", "error_type")
_STATUS_ERROR = 2
#: A span event as read: (name, time in ns, attributes).
SpanEvent = tuple[str, int | None, dict[str, Any]]
_MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}


def _iso(ns: int | None) -> str | None:
    if not ns:
        return None
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)
    return moment.isoformat().replace("+00:00", "Z")


def _first(keys: Sequence[str], *scopes: dict[str, Any]) -> str | None:
    for scope in scopes:
        for key in keys:
            value = scope.get(key)
            if value is not None and str(value).strip():
                return str(value)
    return None


def _count(attrs: dict[str, Any], column: str) -> int | None:
    for key in TOKEN_KEYS[column]:
        if key not in attrs or attrs[key] is None:
            continue
        value = attrs[key]
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if not is_finite_number(value) or value < 0 or value != int(value):
            raise ValueError(f"{key} must be a whole number >= 0, got {attrs[key]!r}")
        return int(value)
    return None


# --------------------------------------------------------------------- messages
def _text(content: Any) -> str:
    """The text of a message's content: a string, or parts (``{"type": "text",
    "content"|"text": ...}``); tool calls, images and other parts carry no text."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        return ""
    texts = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and part.get("type", "text") == "text":
            value = part.get("content", part.get("text"))
            if isinstance(value, str):
                texts.append(value)
    return "\n".join(t for t in texts if t)


def _structured(value: Any) -> Any:
    """A structured attribute, which spans MAY record as a JSON string."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _chat(value: Any) -> list[dict[str, str]]:
    """``gen_ai.input.messages`` (``[{role, parts}]``) or an older ``[{role, content}]``."""
    value = _structured(value)
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return []
    out = []
    for message in value:
        if not isinstance(message, dict):
            continue
        text = _text(message.get("parts", message.get("content")))
        if text:
            out.append({"role": str(message.get("role") or "user"), "content": text})
    return out


def _messages(span: Span, logged: Sequence[SpanEvent] = ()) -> list[dict[str, str]] | None:
    """The call's prompt as chat messages, from wherever the instrumentation put it (see
    the module docstring): the span's attributes, its events, or the log-record events
    of the span (``logged``: the OpenTelemetry Python instrumentations write
    ``gen_ai.user.message``-style events as log records). None when none was captured."""
    attrs = span.attributes
    events = [*span.events, *logged]
    sources = [attrs]
    sources += [a for name, _, a in events if name == DETAILS_EVENT]
    for scope in sources:
        chat = _chat(scope.get("gen_ai.input.messages"))
        if chat:
            system = _text(_structured(scope.get("gen_ai.system_instructions")))
            return ([{"role": "system", "content": system}] if system else []) + chat
    chat = []
    for name, _, event_attrs in events:
        if name in _MESSAGE_EVENTS:
            text = _text(_structured(event_attrs.get("content")))
            if text:
                role = str(event_attrs.get("role") or _MESSAGE_EVENTS[name])
                chat.append({"role": role, "content": text})
        elif name == "gen_ai.content.prompt":
            chat.extend(_chat(event_attrs.get("gen_ai.prompt")))
    if chat:
        return chat
    prompt = attrs.get("gen_ai.prompt")
    chat = _chat(prompt)
    if chat:
        return chat
    if isinstance(prompt, str) and prompt.strip() and _structured(prompt) is prompt:
        return [{"role": "user", "content": prompt}]  # plain text, as some wrote it
    indexed = sorted(
        int(key.split(".")[2])
        for key in attrs
        if key.startswith("gen_ai.prompt.") and key.endswith(".content")
        if key.split(".")[2].isdigit()
    )
    for i in indexed:
        text = _text(_structured(attrs[f"gen_ai.prompt.{i}.content"]))
        if text:
            chat.append(
                {"role": str(attrs.get(f"gen_ai.prompt.{i}.role") or "user"), "content": text}
            )
    return chat or None


def _logged_messages(logs: list[LogRecord]) -> dict[tuple[str, str], list[SpanEvent]]:
    """Message events written as log records, by the (trace, span) they belong to; a
    record's body (``{"content": ...}``) is read as its attributes."""
    found: dict[tuple[str, str], list[SpanEvent]] = {}
    names = {*_MESSAGE_EVENTS, DETAILS_EVENT, "gen_ai.content.prompt"}
    for record in logs:
        if record.event_name in names and record.span_id:
            body = record.body if isinstance(record.body, dict) else {"content": record.body}
            event = (record.event_name, record.time_ns, {**body, **record.attributes})
            found.setdefault((record.trace_id, record.span_id), []).append(event)
    return found


# ------------------------------------------------------------------------ calls
def _operation(span: Span) -> str | None:
    """The span's GenAI operation; ``"chat"`` for a legacy inference span without one,
    None for a span with no GenAI attributes."""
    attrs = span.attributes
    operation = attrs.get("gen_ai.operation.name")
    if operation:
        return str(operation)
    has_model = attrs.get("gen_ai.request.model") or attrs.get("gen_ai.response.model")
    has_usage = any(key in attrs for keys in TOKEN_KEYS.values() for key in keys)
    if has_model and has_usage:
        return "chat"
    if any(key.startswith("gen_ai.") for key in attrs):
        return "(none)"
    return None


def _litellm_usage(attrs: dict[str, Any]) -> dict[str, Any] | None:
    """LiteLLM's usage object on the span (a dict, or its JSON or Python text), or None."""
    value = attrs.get(LITELLM_USAGE_OBJECT)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            try:
                value = ast.literal_eval(value)  # LiteLLM writes str(dict)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                return None
    return value if isinstance(value, dict) else None


def _tokens(attrs: dict[str, Any], cache_mode: str, notes: list[str]) -> dict[str, int | None]:
    """The span's token counts in the call log's convention (see the module docstring);
    ``notes`` gets the summary counts it adds to. Raises ValueError with the reason."""
    tokens: dict[str, int | None] = {column: _count(attrs, column) for column in TOKEN_KEYS}
    reads, writes = tokens["cached_input_tokens"], tokens["cache_write_tokens"]
    litellm = _litellm_usage(attrs) if reads is None and writes is None else None
    if litellm is not None:
        usage = usage_tokens(
            litellm, prompt_tokens=tokens["input_tokens"], completion_tokens=tokens["output_tokens"]
        )
        notes.append("litellm_usage_objects_read")
        return usage.to_dict()
    reads, writes = reads or 0, writes or 0
    if tokens["input_tokens"] is not None and reads + writes:
        exceeds = reads + writes > tokens["input_tokens"]
        if cache_mode == "included" and exceeds:
            raise ValueError(
                "cache reads + writes exceed gen_ai.usage.input_tokens, which "
                "--cache-tokens-in-input included says counts them, got "
                f"{reads} + {writes} > {tokens['input_tokens']}"
            )
        if cache_mode == "excluded" or exceeds:
            tokens["input_tokens"] += reads + writes
            notes.append("input_tokens_without_cache_counts")
    if (tokens["reasoning_tokens"] or 0) > (tokens["output_tokens"] or 0):
        raise ValueError(
            "gen_ai.usage.reasoning.output_tokens exceeds gen_ai.usage.output_tokens (it "
            f"is a part of it), got {tokens['reasoning_tokens']} > {tokens['output_tokens']}"
        )
    return tokens


def _call(
    span: Span, operation: str, cache_mode: str, logged: Sequence[SpanEvent] = ()
) -> tuple[dict[str, Any], list[str]]:
    """One call-log row for an inference span, and the summary counts it adds to.
    Raises ValueError with the quarantine reason."""
    attrs = span.attributes
    model = _first(("gen_ai.response.model", "gen_ai.request.model"), attrs)
    if model is None:
        raise ValueError("inference span without gen_ai.response.model or gen_ai.request.model")
    notes: list[str] = []
    tokens = _tokens(attrs, cache_mode, notes)
    stated = attrs.get(LITELLM_COST)
    if isinstance(stated, str):
        with contextlib.suppress(ValueError):
            stated = float(stated)
    if stated is not None and not (is_finite_number(stated) and stated >= 0):
        raise ValueError(f"{LITELLM_COST} must be a number >= 0, got {attrs[LITELLM_COST]!r}")
    latency = None
    if span.start_ns and span.end_ns and span.end_ns >= span.start_ns:
        latency = (span.end_ns - span.start_ns) / 1e6
    error = attrs.get("error.type")
    if error is None and span.status_code == _STATUS_ERROR:
        error = "span_status_error"
    row = {
        "request_id": _first(("gen_ai.response.id",), attrs) or span.span_id or span.where,
        "model": model,
        "messages": _messages(span, logged),
        "timestamp": _iso(span.start_ns),
        "latency_ms": latency,
        "session_id": _first(SESSION_KEYS, attrs),
        "user": _first(USER_KEYS, attrs, span.resource),
        "team": _first(TEAM_KEYS, attrs, span.resource),
        **tokens,
        "source_cost_usd": None if stated is None else float(stated),
        "source": "otel",
        "provider": _first(("gen_ai.provider.name", "gen_ai.system"), attrs),
        "operation": operation,
        "trace_id": span.trace_id or None,
        "span_id": span.span_id or None,
        "error_type": None if error is None else str(error),
        "_where": span.where,
    }
    return row, notes


# ------------------------------------------------------------------ evaluations
def _score(attrs: dict[str, Any]) -> float:
    name = attrs.get("gen_ai.evaluation.name") or "unnamed"
    value = attrs.get("gen_ai.evaluation.score.value")
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if value is not None:
        if not is_finite_number(value):
            raise ValueError(
                "gen_ai.evaluation.score.value must be a number, got "
                f"{attrs.get('gen_ai.evaluation.score.value')!r} (evaluation {name!r})"
            )
        if not 0 <= value <= 1:
            raise ValueError(
                "gen_ai.evaluation.score.value must be in [0, 1] to be a judge_score (not "
                "clipped: rescale the evaluator's scores to [0, 1]), got "
                f"{value!r} (evaluation {name!r})"
            )
        return float(value)
    label = attrs.get("gen_ai.evaluation.score.label")
    if isinstance(label, str) and label.strip().lower() in LABEL_SCORES:
        return LABEL_SCORES[label.strip().lower()]
    raise ValueError(
        "evaluation without gen_ai.evaluation.score.value, and its score.label is not one of "
        f"{', '.join(LABEL_SCORES)}, got {label!r} (evaluation {name!r})"
    )


def _evaluations(
    spans: dict[tuple[str, str], Span], logs: list[LogRecord]
) -> list[tuple[dict[str, Any], int | None, tuple[str, str], str, str]]:
    """Every evaluation: (attributes, time, the (trace, span) it is attached to, its
    event id, where it was read)."""
    found = []
    for key, span in spans.items():
        for i, (name, time_ns, attrs) in enumerate(span.events):
            if name == EVALUATION_EVENT:
                found.append((attrs, time_ns, key, f"otel:{key[0]}:{key[1]}:{i}", span.where))
        if "gen_ai.evaluation.name" in span.attributes:
            parent = (span.trace_id, span.parent_span_id)
            found.append(
                (
                    span.attributes,
                    span.end_ns or span.start_ns,
                    parent,
                    f"otel:{key[0]}:{key[1]}",
                    span.where,
                )
            )
    for record in logs:
        if record.event_name == EVALUATION_EVENT:
            attrs = dict(record.attributes)
            if isinstance(record.body, dict):
                attrs = {**record.body, **attrs}
            key = (record.trace_id, record.span_id)
            event_id = (
                f"otel:{key[0]}:{key[1]}:log:{record.time_ns}:{attrs.get('gen_ai.evaluation.name')}"
            )
            found.append((attrs, record.time_ns, key, event_id, record.where))
    return found


def _evaluation_events(
    spans: dict[tuple[str, str], Span],
    logs: list[LogRecord],
    call_of_span: dict[tuple[str, str], str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows, bad = [], []
    for attrs, time_ns, key, event_id, where in _evaluations(spans, logs):
        request_id = _first(("gen_ai.response.id",), attrs)
        if request_id is None:
            request_id = call_of_span.get(key)
        if request_id is None and key in spans:
            parent = (key[0], spans[key].parent_span_id)
            request_id = call_of_span.get(parent)
        shown = {k: v for k, v in attrs.items() if k.startswith(("gen_ai.", "event."))}
        try:
            if request_id is None:
                raise ValueError(
                    "evaluation names no call: no gen_ai.response.id, and it is not attached "
                    "to a GenAI inference span (or a child of one) in these files"
                )
            value = _score(attrs)
            if not time_ns:
                raise ValueError("evaluation without a time (timeUnixNano)")
        except ValueError as exc:
            bad.append({**shown, "quarantine_reason": str(exc), "source": where})
            continue
        rows.append(
            {
                "timestamp": _iso(time_ns),
                "event": "judge_score",
                "request_id": request_id,
                "value": value,
                "event_id": event_id,
                "_line": where,
            }
        )
    return rows, bad


# ----------------------------------------------------------------------- import
def _read_exports(
    files: Iterable[Path], bad: list[dict[str, Any]], counts: Counter[str]
) -> tuple[dict[tuple[str, str], Span], list[LogRecord]]:
    """Every span (by trace and span id, a re-exported span kept once) and log record of
    the files; unreadable objects are added to ``bad``."""
    spans: dict[tuple[str, str], Span] = {}
    logs: list[LogRecord] = []
    for path in files:
        try:
            document = read_otlp_file(path)
        except (OSError, UnicodeDecodeError, EOFError) as exc:
            raise ValueError(
                f"{path}: cannot be read as OTLP JSON text ({type(exc).__name__}: {exc}). "
                "Export it again as UTF-8 JSON (gzip-compressed only if named .gz)."
            ) from None
        if document.bad and len(document.bad) == document.n_objects:
            reasons = Counter(b["quarantine_reason"].split(":")[0] for b in document.bad)
            raise ValueError(
                f"{path}: none of its {document.n_objects} JSON objects is OTLP JSON "
                f"({'; '.join(f'{r} ({n})' for r, n in reasons.most_common(3))}). Give the "
                "collector's file exporter output or saved OTLP/HTTP JSON bodies."
            )
        counts["objects_read"] += document.n_objects
        counts["metrics_objects_skipped"] += document.n_metrics_objects
        counts["spans_read"] += len(document.spans)
        counts["log_records_read"] += len(document.logs)
        bad.extend(document.bad)
        logs.extend(document.logs)
        for span in document.spans:
            key = (span.trace_id, span.span_id)
            if span.span_id and key in spans:
                counts["duplicate_spans"] += 1  # the same span exported twice
                continue
            spans[key if span.span_id else (span.trace_id, span.where)] = span
    return spans, logs


def _calls(
    spans: dict[tuple[str, str], Span],
    logged: dict[tuple[str, str], list[SpanEvent]],
    cache_mode: str,
    bad: list[dict[str, Any]],
    counts: Counter[str],
) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], str], Counter[str]]:
    """Calls by request id, the call of each inference span, and the skipped spans by
    operation; spans that cannot be calls are added to ``bad``."""
    calls: dict[str, dict[str, Any]] = {}
    call_of_span: dict[tuple[str, str], str] = {}
    skipped: Counter[str] = Counter()
    for key, span in spans.items():
        operation = _operation(span)
        if "gen_ai.evaluation.name" in span.attributes:
            operation = "evaluation"  # read below, as an outcome event
        if operation is None:
            counts["non_genai_spans"] += 1
            continue
        if operation not in INFERENCE_OPERATIONS:
            skipped[operation] += 1
            continue
        try:
            row, notes = _call(span, operation, cache_mode, logged.get(key, ()))
        except ValueError as exc:
            shown = {k: v for k, v in span.attributes.items() if k.startswith("gen_ai.")}
            bad.append(
                {
                    **shown,
                    "span_id": span.span_id,
                    "quarantine_reason": str(exc),
                    "source": span.where,
                }
            )
            continue
        counts["inference_spans"] += 1
        counts.update(notes)
        request_id = row["request_id"]
        call_of_span[key] = request_id
        if request_id in calls:
            # One completion seen by two instrumentations (a gateway's span and the
            # client library's): one call. Keep the span that has token counts.
            counts["duplicate_response_ids"] += 1
            if calls[request_id]["input_tokens"] is not None or row["input_tokens"] is None:
                continue
        calls[request_id] = row
    _fold_wrapping_spans(spans, calls, call_of_span, counts)
    return calls, call_of_span, skipped


def _fold_wrapping_spans(
    spans: dict[tuple[str, str], Span],
    calls: dict[str, dict[str, Any]],
    call_of_span: dict[tuple[str, str], str],
    counts: Counter[str],
) -> None:
    """Drop an inference span that only wraps another: a framework's LLM step (LangChain,
    an agent SDK) around the client library's span of the same completion, with the same
    input and output token counts. The inner span is the call; an evaluation of the outer
    one grades it."""
    folded: dict[str, str] = {}
    for key, request_id in list(call_of_span.items()):
        parent = (key[0], spans[key].parent_span_id)
        outer_id = call_of_span.get(parent)
        if outer_id is None or outer_id == request_id or outer_id not in calls:
            continue
        inner, outer = calls[request_id], calls[outer_id]
        same = ("input_tokens", "output_tokens")
        if all(inner[c] is not None and inner[c] == outer[c] for c in same):
            del calls[outer_id]
            folded[outer_id] = request_id
            counts["wrapping_spans"] += 1
    for key, request_id in call_of_span.items():
        while request_id in folded:  # a wrapper of a wrapper
            request_id = folded[request_id]
        call_of_span[key] = request_id


def import_otel(
    paths: str | Path | Sequence[str | Path],
    *,
    prices: PriceCatalog | None = None,
    cache_tokens_in_input: str = "auto",
    progress: Callable[[list[Path]], Iterable[Path]] | None = None,
) -> CallsImport:
    """Read OTLP/JSON trace (and logs) exports into calls and judge_score events.

    Parameters
    ----------
    paths : path or list of paths
        Files or folders (searched recursively for ``.json``, ``.jsonl``, ``.ndjson``,
        optionally ``.gz``).
    prices : PriceCatalog, optional
        Catalog that prices every call (``cost_usd``); the default catalog when None.
    cache_tokens_in_input : {"auto", "included", "excluded"}, default="auto"
        Whether ``gen_ai.usage.input_tokens`` counts the cache reads and writes (see
        the module docstring).
    progress : callable, optional
        Wraps the list of files as they are read (e.g. ``tqdm``), to show progress.

    Returns
    -------
    CallsImport
        Calls, quarantined records (spans and evaluations), counts and ``events``.

    Raises
    ------
    ValueError
        If a file cannot be read, holds no OTLP JSON at all, or no file holds a GenAI
        inference span.
    """
    if cache_tokens_in_input not in CACHE_TOKEN_MODES:
        raise ValueError(
            f"cache_tokens_in_input must be one of {CACHE_TOKEN_MODES}, "
            f"got {cache_tokens_in_input!r}."
        )
    prices = prices or PriceCatalog.load()
    files = otlp_files([paths] if isinstance(paths, str | Path) else list(paths))
    bad: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    spans, logs = _read_exports(progress(files) if progress else files, bad, counts)
    calls, call_of_span, skipped = _calls(
        spans, _logged_messages(logs), cache_tokens_in_input, bad, counts
    )
    if not calls:
        raise ValueError(
            f"{', '.join(map(str, files))}: no GenAI inference span (gen_ai.operation.name "
            f"{'/'.join(INFERENCE_OPERATIONS)}) among {counts['spans_read']} spans "
            f"(operations seen: {dict(skipped) or 'none'}; spans with bad attributes: "
            f"{len(bad)}). Check that the instrumentation emits GenAI spans."
        )
    rows = list(calls.values())
    where = [row.pop("_where") for row in rows]
    for row in rows:
        price_call(prices, row)
    frame = checked_calls(rows, OTEL_COLUMNS, bad, where)
    event_rows, bad_evaluations = _evaluation_events(spans, logs, call_of_span)
    events, invalid = validate_events(event_rows, source="otel")
    bad.extend(bad_evaluations + invalid)
    summary = {
        "files": len(files),
        "objects_read": counts["objects_read"],
        "spans_read": counts["spans_read"],
        "log_records_read": counts["log_records_read"],
        "inference_spans": counts["inference_spans"],
        "skipped_spans_by_operation": dict(skipped.most_common()),
        "non_genai_spans": counts["non_genai_spans"],
        "metrics_objects_skipped": counts["metrics_objects_skipped"],
        "duplicates_collapsed": {
            "same_span": counts["duplicate_spans"],
            "same_response_id": counts["duplicate_response_ids"],
            "wrapping_span": counts["wrapping_spans"],
        },
        "input_tokens_without_cache_counts": counts["input_tokens_without_cache_counts"],
        "litellm_usage_objects_read": counts["litellm_usage_objects_read"],
        "calls_without_prompt": int(frame["messages"].isna().sum()),
        "evaluations": {
            "found": len(event_rows) + len(bad_evaluations),
            "judge_score_events": len(events),
            "quarantined": len(bad_evaluations) + len(invalid),
        },
    }
    return CallsImport(
        source="otel",
        frame=frame,
        n_rows=counts["spans_read"],
        quarantined=bad,
        counts=summary,
        events=events,
    )
