"""OTLP/JSON files -> spans and log records with plain Python attribute values.

The files are what OpenTelemetry writes as JSON: the OTLP JSON encoding of
``TracesData`` (``resourceSpans[].scopeSpans[].spans[]``) and ``LogsData``
(``resourceLogs[].scopeLogs[].logRecords[]``), either one JSON object per file (an
OTLP/HTTP request body, ``curl``-saved) or one object per line, as the OpenTelemetry
Collector's ``file`` exporter and the SDKs' OTLP file exporters write them.

Encoding rules followed (opentelemetry-proto ``docs/specification.md``, "JSON Protobuf
Encoding", and ``opentelemetry/proto/common/v1/common.proto``; the file layout from the
specification's "OpenTelemetry Protocol File Exporter" page):

- keys are lowerCamelCase (``startTimeUnixNano``); snake_case keys, which protobuf
  JSON parsers also accept, are read too;
- ``traceId`` and ``spanId`` are hex strings, kept lower-cased (base64, as protobuf's
  generic JSON mapping writes bytes, is turned into hex);
- 64-bit integers (``intValue``, ``*UnixNano``) are decimal strings, or numbers;
- an attribute is ``{"key": k, "value": AnyValue}`` and ``AnyValue`` holds exactly one
  of ``stringValue``, ``boolValue``, ``intValue``, ``doubleValue`` (a number, or
  ``"NaN"``/``"Infinity"``), ``arrayValue`` (``{"values": [AnyValue]}``),
  ``kvlistValue`` (``{"values": [KeyValue]}``) or ``bytesValue`` (base64, kept as text);
- unknown fields are ignored, as the specification requires of receivers.
"""

from __future__ import annotations

import base64
import binascii
import functools
import gzip
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from features.importers.source_files import source_files

__all__ = [
    "OTLP_SUFFIXES",
    "LogRecord",
    "OtlpDocument",
    "Span",
    "any_value",
    "attributes",
    "otlp_files",
    "read_otlp_file",
]

OTLP_SUFFIXES = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz")


@dataclass(frozen=True)
class Span:
    """One span of a trace export, attributes decoded to Python values.

    ``where`` names the file and line (or span number) it came from, for the
    quarantine and for error messages.
    """

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    start_ns: int | None
    end_ns: int | None
    attributes: dict[str, Any]
    resource: dict[str, Any]
    events: tuple[tuple[str, int | None, dict[str, Any]], ...]
    status_code: int
    status_message: str
    where: str


@dataclass(frozen=True)
class LogRecord:
    """One log record (an OpenTelemetry event when ``event_name`` is set)."""

    event_name: str
    time_ns: int | None
    trace_id: str
    span_id: str
    attributes: dict[str, Any]
    body: Any
    resource: dict[str, Any]
    where: str


@dataclass
class OtlpDocument:
    """What one file held: spans, log records, and what could not be read."""

    spans: list[Span] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)
    #: Lines or objects that are not OTLP JSON, with the reason (quarantine rows).
    bad: list[dict[str, Any]] = field(default_factory=list)
    #: JSON objects read (file objects or lines).
    n_objects: int = 0
    #: Objects holding only metrics (``resourceMetrics``): valid OTLP, nothing to import.
    n_metrics_objects: int = 0


@functools.cache
def _snake(camel: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in camel)


def _get(obj: dict[str, Any], camel: str) -> Any:
    """A field by its lowerCamelCase name, else by its protobuf snake_case name."""
    value = obj.get(camel)
    return obj.get(_snake(camel)) if value is None else value


def _list(obj: Any, camel: str) -> list[Any]:
    """A repeated field, [] when absent or not a list (or ``obj`` is not an object)."""
    if not isinstance(obj, dict):
        return []
    value = _get(obj, camel)
    return value if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    """A 64-bit integer as OTLP JSON writes it (decimal string or number); else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _double(found: Any) -> Any:
    if isinstance(found, str):  # "NaN", "Infinity", "-Infinity"
        try:
            return float(found)
        except ValueError:
            return found
    return found


def _integer(found: Any) -> Any:
    number = _int(found)
    return found if number is None else number


#: How each ``AnyValue`` field (lowerCamelCase or snake_case) becomes a Python value.
_ANY_VALUE = {
    "stringValue": lambda v: v,
    "boolValue": lambda v: v,
    "bytesValue": lambda v: v,
    "intValue": _integer,
    "doubleValue": _double,
    "arrayValue": lambda v: (
        [any_value(x) for x in _list(v, "values")] if isinstance(v, dict) else []
    ),
    "kvlistValue": lambda v: attributes(_list(v, "values")) if isinstance(v, dict) else {},
}
_ANY_VALUE.update({_snake(k): f for k, f in list(_ANY_VALUE.items())})


def any_value(value: Any) -> Any:
    """An OTLP ``AnyValue`` object as a Python value (see the module's rules); an empty
    ``AnyValue`` is None.

    >>> any_value({"intValue": "42"}), any_value({"arrayValue": {"values": [{"stringValue": "a"}]}})
    (42, ['a'])
    """
    if not isinstance(value, dict):
        return value
    for name, found in value.items():
        convert = _ANY_VALUE.get(name)
        if convert is not None and found is not None:
            return convert(found)
    return None


def attributes(pairs: Any) -> dict[str, Any]:
    """``[{"key": k, "value": AnyValue}, ...]`` as a dict (a later key wins)."""
    out: dict[str, Any] = {}
    if not isinstance(pairs, list):
        return out
    for pair in pairs:
        if isinstance(pair, dict) and isinstance(pair.get("key"), str):
            out[pair["key"]] = any_value(pair.get("value"))
    return out


_HEX = frozenset("0123456789abcdefABCDEF")


def _hex(value: Any) -> str:
    """A trace or span id as lower-case hex. OTLP JSON writes hex; protobuf's generic
    JSON mapping (``MessageToJson`` of an OTLP message) writes bytes as base64, which
    is decoded so that both spellings of one span name the same span."""
    if not isinstance(value, str) or not value.strip():
        return ""
    value = value.strip()
    if set(value) <= _HEX:
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return value
    return raw.hex() if len(raw) in (8, 16) else value


def _spans(doc: dict[str, Any], where: str) -> Iterator[Span]:
    number = 0
    for resource_spans in _list(doc, "resourceSpans"):
        if not isinstance(resource_spans, dict):
            continue
        resource = attributes(_list(_get(resource_spans, "resource") or {}, "attributes"))
        scopes = _list(resource_spans, "scopeSpans") or _list(
            resource_spans,
            "instrumentationLibrarySpans",  # OTLP before 0.15
        )
        for scope in scopes:
            if not isinstance(scope, dict):
                continue
            for span in _list(scope, "spans"):
                if not isinstance(span, dict):
                    continue
                number += 1
                status = _get(span, "status")
                status = status if isinstance(status, dict) else {}
                events = tuple(
                    (
                        str(_get(e, "name") or ""),
                        _int(_get(e, "timeUnixNano")),
                        attributes(_list(e, "attributes")),
                    )
                    for e in _list(span, "events")
                    if isinstance(e, dict)
                )
                yield Span(
                    trace_id=_hex(_get(span, "traceId")),
                    span_id=_hex(_get(span, "spanId")),
                    parent_span_id=_hex(_get(span, "parentSpanId")),
                    name=str(_get(span, "name") or ""),
                    start_ns=_int(_get(span, "startTimeUnixNano")),
                    end_ns=_int(_get(span, "endTimeUnixNano")),
                    attributes=attributes(_list(span, "attributes")),
                    resource=resource,
                    events=events,
                    status_code=_int(_get(status, "code")) or 0,
                    status_message=str(_get(status, "message") or ""),
                    where=f"{where}#span{number}",
                )


def _logs(doc: dict[str, Any], where: str) -> Iterator[LogRecord]:
    number = 0
    for resource_logs in _list(doc, "resourceLogs"):
        if not isinstance(resource_logs, dict):
            continue
        resource = attributes(_list(_get(resource_logs, "resource") or {}, "attributes"))
        for scope in _list(resource_logs, "scopeLogs"):
            if not isinstance(scope, dict):
                continue
            for record in _list(scope, "logRecords"):
                if not isinstance(record, dict):
                    continue
                number += 1
                attrs = attributes(_list(record, "attributes"))
                # Before LogRecord had an event_name field, events named themselves
                # with the `event.name` attribute.
                name = _get(record, "eventName") or attrs.get("event.name") or ""
                yield LogRecord(
                    event_name=str(name),
                    time_ns=_int(_get(record, "timeUnixNano"))
                    or _int(_get(record, "observedTimeUnixNano")),
                    trace_id=_hex(_get(record, "traceId")),
                    span_id=_hex(_get(record, "spanId")),
                    attributes=attrs,
                    body=any_value(_get(record, "body")),
                    resource=resource,
                    where=f"{where}#log{number}",
                )


def _add(document: OtlpDocument, obj: Any, where: str, raw: str) -> None:
    document.n_objects += 1
    if not isinstance(obj, dict):
        document.bad.append(
            {"raw": raw[:2000], "quarantine_reason": "not a JSON object", "source": where}
        )
        return
    has_spans = _get(obj, "resourceSpans") is not None
    has_logs = _get(obj, "resourceLogs") is not None
    if not has_spans and not has_logs:
        if _get(obj, "resourceMetrics") is not None:
            document.n_metrics_objects += 1
            return
        reason = "not OTLP JSON: the object has no resourceSpans or resourceLogs"
        document.bad.append({"raw": raw[:2000], "quarantine_reason": reason, "source": where})
        return
    document.spans.extend(_spans(obj, where))
    document.logs.extend(_logs(obj, where))


def _read_lines(lines: Iterable[str], path: Path, document: OtlpDocument, *, probe: bool) -> bool:
    """Read JSON lines into ``document``. With ``probe``, stop and return False (having
    read nothing) if the first non-blank line is not JSON by itself."""
    started = not probe
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            if not started:
                return False
            document.n_objects += 1
            reason = f"invalid JSON: {exc}"
            document.bad.append({"raw": line[:2000], "quarantine_reason": reason, "source": where})
            continue
        started = True
        _add(document, obj, where, line)
    return True


def read_otlp_file(path: str | Path) -> OtlpDocument:
    """Spans and log records of one OTLP/JSON file: one object per line (read line by
    line, so a collector's large file is never held as text), or one object (or array)
    spread over the file, as a pretty-printed OTLP/HTTP body is.

    A file is read as JSON lines when its first non-blank line is a JSON value by
    itself, or when the whole file is not one JSON value (a first line cut off); each
    bad line is then quarantined and the others are read.

    Raises
    ------
    OSError, UnicodeDecodeError, EOFError
        If the file cannot be read as (gzip-compressed, for ``.gz``) UTF-8 text.
    """
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    document = OtlpDocument()
    with opener(path, "rt", encoding="utf-8") as fh:
        if _read_lines(fh, path, document, probe=True):
            return document
        fh.seek(0)
        try:
            whole = json.load(fh)
        except json.JSONDecodeError:
            fh.seek(0)
            _read_lines(fh, path, document, probe=False)
            return document
    for obj in whole if isinstance(whole, list) else [whole]:
        _add(document, obj, str(path), json.dumps(obj)[:2000])
    return document


def otlp_files(paths: list[str | Path]) -> list[Path]:
    """Files named, and OTLP JSON files (`OTLP_SUFFIXES`) under folders, in path order.

    Raises
    ------
    FileNotFoundError
        If a path does not exist, or a folder holds no such file.
    """
    return source_files(
        paths,
        OTLP_SUFFIXES,
        f"OTLP JSON files ({', '.join(OTLP_SUFFIXES)})",
        "Point to the collector's file exporter output or the saved OTLP/HTTP bodies.",
    )


def is_finite_number(value: Any) -> bool:
    """True for an int or float that is not NaN or infinite (bools are not numbers)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
