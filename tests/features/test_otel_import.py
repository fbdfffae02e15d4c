"""`outcome-router import otel`: OTLP/JSON GenAI spans -> call log and judge_score events,
on the hand-written exports of fixtures/otel (features/importers/otel.py).

The fixture is one agent trace of a support bot: an ``invoke_agent`` span, an
``execute_tool`` span and three ``chat`` spans (OpenAI with a cache read, Anthropic
with cache read and write counted inside input_tokens as the convention says, and an
older Anthropic instrumentation whose input_tokens leaves the cache counts out), three
evaluation events on the spans (0.8, a 1-5 rubric's 4.0, a "pass" label) and one in a
logs export. traces.json holds it as one OTLP/HTTP body, traces.jsonl as the
collector's file exporter writes it (one object per line, in another order).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from features.call_log import read_call_logs
from features.events import read_events
from features.importers.imported_calls import price_key, write_calls
from features.importers.otel import import_otel
from features.prices import PriceCatalog
from training.cli import main

FIXTURE = Path(__file__).parent / "fixtures" / "otel"
TRACES_JSON = FIXTURE / "traces.json"
TRACES_JSONL = FIXTURE / "traces.jsonl"
EVALUATION_LOGS = FIXTURE / "evaluation-logs.jsonl"
TRACE = "0af7651916cd43dd8448eb211c80319c"

#: Prices of the fixture's models as LiteLLM's catalog lists them (USD per token).
CATALOG = {
    "gpt-4o-2024-08-06": {
        "input_cost_per_token": 2.5e-06,
        "output_cost_per_token": 1e-05,
        "cache_read_input_token_cost": 1.25e-06,
    },
    "claude-sonnet-4-5-20250929": {
        "input_cost_per_token": 3e-06,
        "output_cost_per_token": 1.5e-05,
        "cache_read_input_token_cost": 3e-07,
        "cache_creation_input_token_cost": 3.75e-06,
    },
    "claude-haiku-4-5": {
        "input_cost_per_token": 1e-06,
        "output_cost_per_token": 5e-06,
        "cache_read_input_token_cost": 1e-07,
        "cache_creation_input_token_cost": 1.25e-06,
    },
}

# The worked bill, one call per chat span:
#   chatcmpl-C3xvQ2aB (gpt-4o-2024-08-06): input 1200 of which 1024 cache reads, output 300
#       176 * 2.5e-6 + 1024 * 1.25e-6 + 300 * 1e-5             = 0.00044 + 0.00128 + 0.003
#                                                               = 0.00472
#   msg_01XFDUDYJgAACzvnptvVoYEL (claude-sonnet-4-5-20250929): input 3000 incl. 2000 reads
#       and 500 writes (the convention's inclusive count), output 400
#       500 * 3e-6 + 2000 * 3e-7 + 500 * 3.75e-6 + 400 * 1.5e-5 = 0.0015 + 0.0006 + 0.001875
#                                                                 + 0.006 = 0.009975
#   9d4f2b6a8c1e3f57 (claude-haiku-4-5, no response id -> span id): input_tokens 50 with
#       6000 reads + 1000 writes > 50, so Anthropic's exclusive count: input 7050
#       50 * 1e-6 + 6000 * 1e-7 + 1000 * 1.25e-6 + 120 * 5e-6  = 0.00005 + 0.0006 + 0.00125
#                                                                 + 0.0006 = 0.0025
BILL = {
    "chatcmpl-C3xvQ2aB": {
        "model": "gpt-4o-2024-08-06",
        "input_tokens": 1200,
        "cached_input_tokens": 1024,
        "cache_write_tokens": None,
        "output_tokens": 300,
        "cost_usd": 0.00472,
    },
    "msg_01XFDUDYJgAACzvnptvVoYEL": {
        "model": "claude-sonnet-4-5-20250929",
        "input_tokens": 3000,
        "cached_input_tokens": 2000,
        "cache_write_tokens": 500,
        "output_tokens": 400,
        "cost_usd": 0.009975,
    },
    "9d4f2b6a8c1e3f57": {
        "model": "claude-haiku-4-5",
        "input_tokens": 7050,
        "cached_input_tokens": 6000,
        "cache_write_tokens": 1000,
        "output_tokens": 120,
        "cost_usd": 0.0025,
    },
}


@pytest.fixture
def prices() -> PriceCatalog:
    return PriceCatalog.from_entries(CATALOG)


def _none(value):
    return None if value != value else value  # NaN -> None


def test_every_call_matches_the_worked_bill(prices):
    result = import_otel(TRACES_JSON, prices=prices)
    calls = result.frame.set_index("request_id")
    assert sorted(calls.index) == sorted(BILL)
    for request_id, expected in BILL.items():
        row = calls.loc[request_id]
        for column in ("model", "input_tokens", "cached_input_tokens", "cache_write_tokens"):
            assert _none(row[column]) == expected[column], (request_id, column)
        assert row["output_tokens"] == expected["output_tokens"]
        assert row["cost_usd"] == pytest.approx(expected["cost_usd"], abs=1e-12), request_id
    assert result.to_dict()["recomputed_spend_usd"] == pytest.approx(0.017195)
    assert result.counts["input_tokens_without_cache_counts"] == 1
    assert set(calls["source"]) == {"otel"}


def test_attributes_map_to_the_call_log_columns(prices):
    calls = import_otel(TRACES_JSON, prices=prices).frame.set_index("request_id")
    gpt = calls.loc["chatcmpl-C3xvQ2aB"]
    assert gpt["timestamp"] == "2026-01-01T10:00:00+00:00"
    assert gpt["latency_ms"] == 1500.0
    assert gpt["session_id"] == "conv-7781"
    assert (gpt["user"], gpt["team"]) == ("ana", "support")  # span user.id, resource team.id
    assert (gpt["provider"], gpt["operation"]) == ("openai", "chat")
    assert (gpt["trace_id"], gpt["span_id"]) == (TRACE, "00f067aa0ba902b7")
    assert gpt["messages"] == [
        {"role": "system", "content": "You are the Acme support agent."},
        {"role": "user", "content": "My invoice INV-204 was charged twice. Can you refund one?"},
    ]
    claude = calls.loc["msg_01XFDUDYJgAACzvnptvVoYEL"]  # input.messages as a JSON string
    assert claude["messages"] == [
        {"role": "user", "content": "Draft the refund confirmation email for INV-204."}
    ]
    haiku = calls.loc["9d4f2b6a8c1e3f57"]  # deprecated gen_ai.system, enduser.id, user event
    assert (haiku["provider"], haiku["user"]) == ("anthropic", "bo")
    assert haiku["messages"] == [
        {"role": "user", "content": "Classify this ticket: double charge on INV-204"}
    ]


def test_tool_and_agent_spans_are_counted_not_imported(prices):
    counts = import_otel(TRACES_JSON, prices=prices).counts
    assert counts["spans_read"] == 5 and counts["inference_spans"] == 3
    assert counts["skipped_spans_by_operation"] == {"invoke_agent": 1, "execute_tool": 1}


def test_the_collector_file_exporter_lines_read_like_one_body(prices):
    one = import_otel(TRACES_JSON, prices=prices).frame.set_index("request_id").sort_index()
    lines = import_otel(TRACES_JSONL, prices=prices).frame.set_index("request_id").sort_index()
    assert one.drop(columns="messages").equals(lines.drop(columns="messages"))
    assert one["messages"].tolist() == lines["messages"].tolist()


def test_a_span_exported_twice_is_one_call(prices):
    result = import_otel([TRACES_JSON, TRACES_JSONL], prices=prices)
    assert len(result.frame) == 3
    assert result.counts["duplicates_collapsed"] == {
        "same_span": 5,
        "same_response_id": 0,
        "wrapping_span": 0,
    }
    assert len(result.events) == 2  # the span events too are read once


def test_evaluations_become_judge_scores_and_an_off_scale_score_is_quarantined(prices):
    result = import_otel([TRACES_JSON, EVALUATION_LOGS], prices=prices)
    events = result.events.set_index("request_id")["value"].to_dict()
    assert events == {
        "chatcmpl-C3xvQ2aB": 0.8,  # score.value on the span's event
        "9d4f2b6a8c1e3f57": 1.0,  # label "pass", no value
        "msg_01XFDUDYJgAACzvnptvVoYEL": 0.6,  # log record naming the span
    }
    assert set(result.events["event"]) == {"judge_score"}
    (bad,) = result.quarantined
    assert bad["quarantine_reason"] == (
        "gen_ai.evaluation.score.value must be in [0, 1] to be a judge_score (not clipped: "
        "rescale the evaluator's scores to [0, 1]), got 4.0 (evaluation 'Helpfulness')"
    )
    assert result.counts["evaluations"] == {"found": 4, "judge_score_events": 3, "quarantined": 1}


# ----------------------------------------------------------- spans written here
def _attr(key, value):
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def _span(span_id, attrs, parent="", events=(), start=1767261600000000000):
    return {
        "traceId": TRACE,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": "span",
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 250_000_000),
        "attributes": [_attr(k, v) for k, v in attrs.items()],
        "events": [
            {
                "timeUnixNano": str(start + 1),
                "name": name,
                "attributes": [_attr(k, v) for k, v in a.items()],
            }
            for name, a in events
        ],
    }


def _export(tmp_path, spans, name="spans.json"):
    path = tmp_path / name
    doc = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {}, "spans": spans}]}]}
    path.write_text(json.dumps(doc))
    return path


CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "claude-haiku-4-5",
    "gen_ai.usage.input_tokens": 100,
    "gen_ai.usage.cache_read.input_tokens": 60,
    "gen_ai.usage.output_tokens": 10,
}


@pytest.mark.parametrize(
    "attrs, reason",
    [
        (
            {**CHAT, "gen_ai.request.model": None},
            "inference span without gen_ai.response.model or gen_ai.request.model",
        ),
        (
            {**CHAT, "gen_ai.usage.output_tokens": "ten"},
            "gen_ai.usage.output_tokens must be a whole number >= 0, got 'ten'",
        ),
        (
            {**CHAT, "gen_ai.usage.output_tokens": 2.5},
            "gen_ai.usage.output_tokens must be a whole number >= 0, got 2.5",
        ),
        (
            {**CHAT, "gen_ai.usage.reasoning.output_tokens": 11},
            "gen_ai.usage.reasoning.output_tokens exceeds gen_ai.usage.output_tokens (it is a "
            "part of it), got 11 > 10",
        ),
    ],
)
def test_a_bad_span_is_quarantined_with_its_reason(tmp_path, prices, attrs, reason):
    attrs = {k: v for k, v in attrs.items() if v is not None}
    path = _export(tmp_path, [_span("a1", attrs), _span("a2", CHAT)])
    result = import_otel(path, prices=prices)
    assert result.frame["request_id"].tolist() == ["a2"]
    (bad,) = result.quarantined
    assert bad["quarantine_reason"] == reason
    assert bad["source"] == f"{path}:1#span1"


@pytest.mark.parametrize(
    "mode, input_tokens, quarantined",
    [("auto", 100, 0), ("excluded", 160, 0), ("included", 100, 0)],
)
def test_cache_tokens_in_input_modes(tmp_path, prices, mode, input_tokens, quarantined):
    path = _export(tmp_path, [_span("a1", CHAT)])
    result = import_otel(path, prices=prices, cache_tokens_in_input=mode)
    assert result.frame["input_tokens"].tolist() == [input_tokens]
    assert len(result.quarantined) == quarantined


def test_included_mode_quarantines_cache_counts_above_the_input(tmp_path, prices):
    span = {**CHAT, "gen_ai.usage.input_tokens": 50}
    path = _export(tmp_path, [_span("a1", span), _span("a2", CHAT)])
    result = import_otel(path, prices=prices, cache_tokens_in_input="included")
    assert result.quarantined[0]["quarantine_reason"].startswith(
        "cache reads + writes exceed gen_ai.usage.input_tokens"
    )
    with pytest.raises(ValueError, match="cache_tokens_in_input must be one of"):
        import_otel(path, prices=prices, cache_tokens_in_input="sometimes")


def test_reasoning_tokens_are_priced_at_the_reasoning_rate(tmp_path):
    # 100 prompt tokens, 100 output tokens of which 40 reasoning:
    # 100 * 1e-6 + 60 * 4e-6 + 40 * 8e-6 = 0.0001 + 0.00024 + 0.00032 = 0.00066
    prices = PriceCatalog.from_entries(
        {
            "reasoner-1": {
                "input_cost_per_token": 1e-06,
                "output_cost_per_token": 4e-06,
                "output_cost_per_reasoning_token": 8e-06,
            }
        }
    )
    span = {
        "gen_ai.operation.name": "generate_content",
        "gen_ai.provider.name": "gcp.gemini",
        "gen_ai.request.model": "reasoner-1",
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 100,
        "gen_ai.usage.reasoning.output_tokens": 40,
    }
    (row,) = import_otel(_export(tmp_path, [_span("a1", span)]), prices=prices).frame.to_dict(
        "records"
    )
    assert (row["output_tokens"], row["reasoning_tokens"]) == (100, 40)
    assert row["cost_usd"] == pytest.approx(0.00066, abs=1e-12)


def test_one_completion_seen_by_a_gateway_and_a_client_is_one_call(tmp_path, prices):
    gateway = {k: v for k, v in CHAT.items() if not k.startswith("gen_ai.usage")}
    both = {"gen_ai.response.id": "msg_same"}
    path = _export(tmp_path, [_span("a1", {**gateway, **both}), _span("a2", {**CHAT, **both})])
    result = import_otel(path, prices=prices)
    assert result.frame["request_id"].tolist() == ["msg_same"]
    assert result.frame["input_tokens"].tolist() == [100]  # the span with usage is kept
    assert result.counts["duplicates_collapsed"]["same_response_id"] == 1


def test_a_framework_span_wrapping_the_client_span_is_one_call(tmp_path, prices):
    """LangChain-style: a chat span for the chain's LLM step, and inside it the OpenAI
    client's chat span of the same completion (same tokens). Two levels of wrapping;
    the judge graded the outermost span. A sibling with other tokens is its own call."""
    judged = [("gen_ai.evaluation.result", {"gen_ai.evaluation.score.value": 0.9})]
    spans = [
        _span("c0", CHAT, events=judged),
        _span("c1", CHAT, parent="c0"),
        _span("c2", {**CHAT, "gen_ai.response.id": "msg_inner"}, parent="c1"),
        _span("c3", {**CHAT, "gen_ai.usage.output_tokens": 99}, parent="c0"),
    ]
    result = import_otel(_export(tmp_path, spans), prices=prices)
    assert sorted(result.frame["request_id"]) == ["c3", "msg_inner"]
    assert result.counts["duplicates_collapsed"]["wrapping_span"] == 2
    assert result.events[["request_id", "value"]].values.tolist() == [["msg_inner", 0.9]]


def test_older_instrumentations_are_read(tmp_path, prices):
    """No gen_ai.operation.name, deprecated token names, OpenLLMetry's flattened prompt."""
    legacy = {
        "gen_ai.system": "anthropic",
        "gen_ai.request.model": "claude-haiku-4-5",
        "gen_ai.usage.prompt_tokens": 40,
        "gen_ai.usage.completion_tokens": 8,
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "Be brief.",
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": "Summarise the outage report",
    }
    path = _export(tmp_path, [_span("a1", legacy)])
    (row,) = import_otel(path, prices=prices).frame.to_dict(orient="records")
    assert (row["input_tokens"], row["output_tokens"], row["operation"]) == (40, 8, "chat")
    assert row["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Summarise the outage report"},
    ]
    assert row["cost_usd"] == pytest.approx(40 * 1e-6 + 8 * 5e-6)


@pytest.mark.parametrize(
    "evaluation, reason",
    [
        (
            {"gen_ai.evaluation.name": "Tone", "gen_ai.evaluation.score.label": "meh"},
            "evaluation without gen_ai.evaluation.score.value, and its score.label is not one",
        ),
        (
            {"gen_ai.evaluation.name": "Tone", "gen_ai.evaluation.score.value": -0.1},
            "gen_ai.evaluation.score.value must be in [0, 1]",
        ),
    ],
)
def test_an_unusable_evaluation_is_quarantined(tmp_path, prices, evaluation, reason):
    events = [("gen_ai.evaluation.result", evaluation)]
    path = _export(tmp_path, [_span("a1", CHAT, events=events)])
    result = import_otel(path, prices=prices)
    assert len(result.events) == 0
    assert result.quarantined[0]["quarantine_reason"].startswith(reason)


def test_an_evaluation_span_grades_its_parent_call(tmp_path, prices):
    judge = {"gen_ai.evaluation.name": "Correctness", "gen_ai.evaluation.score.value": 0.25}
    orphan = {"gen_ai.evaluation.name": "Correctness", "gen_ai.evaluation.score.value": 1.0}
    spans = [_span("a1", CHAT), _span("e1", judge, parent="a1"), _span("e2", orphan)]
    path = _export(tmp_path, spans)
    result = import_otel(path, prices=prices)
    assert result.events[["request_id", "value"]].values.tolist() == [["a1", 0.25]]
    assert result.counts["skipped_spans_by_operation"] == {"evaluation": 2}
    assert result.quarantined[0]["quarantine_reason"].startswith("evaluation names no call")


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json at all\n", "none of its 1 JSON objects is OTLP JSON"),
        ('{"resourceMetrics": []}\n', "no GenAI inference span"),
        (json.dumps({"resourceSpans": []}), "no GenAI inference span"),
    ],
)
def test_a_file_with_nothing_to_import_is_an_error(tmp_path, content, message):
    path = tmp_path / "export.jsonl"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        import_otel(path)


def test_a_missing_path_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        import_otel(tmp_path / "nowhere.json")
    with pytest.raises(FileNotFoundError, match="folder holds no OTLP JSON files"):
        import_otel(tmp_path)


# -------------------------------------------------------------- command line
def test_the_command_writes_calls_events_and_quarantine(tmp_path, capsys):
    catalog = tmp_path / "prices.json"
    catalog.write_text(json.dumps(CATALOG))
    calls, events = tmp_path / "calls.jsonl", tmp_path / "events.jsonl"
    argv = ["import", "otel", str(FIXTURE), "--out", str(calls), "--events", str(events)]
    assert main([*argv, "--prices", str(catalog)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["files"] == 3 and printed["calls_written"] == 3
    assert printed["duplicates_collapsed"] == {
        "same_span": 5,
        "same_response_id": 0,
        "wrapping_span": 0,
    }
    assert printed["quarantined"] == 1 and printed["judge_score_events"] == 3
    assert printed["recomputed_spend_usd"] == pytest.approx(0.017195)
    assert printed["calls_not_in_catalog"] == 0 and printed["source"] == "otel"
    assert [m["model"] for m in printed["by_model"]] == [
        "claude-sonnet-4-5-20250929",
        "gpt-4o-2024-08-06",
        "claude-haiku-4-5",
    ]
    quarantine = tmp_path / "calls.quarantine.jsonl"
    assert printed["quarantine"] == str(quarantine)
    assert len(quarantine.read_text().splitlines()) == 1

    back = read_call_logs(calls, compute_costs=False).frame.set_index("request_id")
    assert back["cost_usd"].to_dict() == pytest.approx({k: v["cost_usd"] for k, v in BILL.items()})
    lines = [json.loads(line) for line in calls.read_text().splitlines()]
    assert {line["source"] for line in lines} == {"otel"}
    judged = read_events(events).frame.set_index("request_id")["value"]
    assert judged.to_dict() == {
        "chatcmpl-C3xvQ2aB": 0.8,
        "9d4f2b6a8c1e3f57": 1.0,
        "msg_01XFDUDYJgAACzvnptvVoYEL": 0.6,
    }


def test_the_command_refuses_an_unknown_output_format(tmp_path, capsys):
    argv = ["import", "otel", str(TRACES_JSON), "--out", str(tmp_path / "calls.txt")]
    assert main(argv) == 2
    assert "name the call log by its format" in capsys.readouterr().err


def test_base64_ids_of_protobufs_generic_json_mapping_read_as_hex(tmp_path, prices):
    """``MessageToJson`` of an OTLP message writes the id bytes as base64, not hex."""
    span = _span("b0Wnb04GV/8=", CHAT)
    span["traceId"] = "e4U5y74LIJ2Xrtn4F085xA=="
    (row,) = import_otel(_export(tmp_path, [span]), prices=prices).frame.to_dict("records")
    assert row["trace_id"] == "7b8539cbbe0b209d97aed9f8174f39c4"
    assert row["span_id"] == row["request_id"] == "6f45a76f4e0657ff"


@pytest.mark.parametrize(
    "model, key",
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),  # OpenAI snapshot
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),  # Anthropic snapshot
        ("claude-haiku-4-5@20251001", "claude-haiku-4-5"),  # Vertex AI's spelling
        ("claude-haiku-4-5", "claude-haiku-4-5"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-5-codex", None),  # no snapshot date: not guessed
    ],
)
def test_price_key_falls_back_to_the_undated_alias(model, key):
    catalog = PriceCatalog.from_entries(
        {
            name: {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}
            for name in ("gpt-4o", "gpt-4o-mini", "claude-haiku-4-5")
        }
    )
    assert price_key(catalog, model) == key


@pytest.mark.parametrize("name", ["traces.json", "traces.jsonl"])
def test_gzip_compressed_exports_are_read(tmp_path, prices, name):
    packed = tmp_path / f"{name}.gz"
    packed.write_bytes(gzip.compress((FIXTURE / name).read_bytes()))
    frame = import_otel(packed, prices=prices).frame
    assert sorted(frame["request_id"]) == sorted(BILL)


def test_a_broken_line_of_a_json_lines_export_is_quarantined(tmp_path, prices):
    path = tmp_path / "export.jsonl"
    path.write_text(TRACES_JSONL.read_text() + '{"resourceSpans": [\n')
    result = import_otel(path, prices=prices)
    assert len(result.frame) == 3
    (bad,) = result.quarantined[:1]
    assert bad["quarantine_reason"].startswith("invalid JSON")
    assert bad["source"] == f"{path}:3"


def test_imported_evaluations_grade_the_imported_calls(tmp_path, capsys):
    """import otel --events, then grade: each call's outcome is its judge's score."""
    catalog = tmp_path / "prices.json"
    catalog.write_text(json.dumps(CATALOG))
    calls, events = tmp_path / "calls.jsonl", tmp_path / "judge.jsonl"
    argv = ["import", "otel", str(FIXTURE), "--out", str(calls), "--events", str(events)]
    assert main([*argv, "--prices", str(catalog)]) == 0
    graded = tmp_path / "graded.parquet"
    argv = ["grade", "--logs", str(calls), "--events", str(events), "--out", str(graded)]
    assert main([*argv, "--as-of", "2026-01-20T00:00:00Z"]) == 0
    capsys.readouterr()
    outcome = read_call_logs(graded, compute_costs=False).frame.set_index("request_id")
    assert outcome["outcome"].to_dict() == {
        "chatcmpl-C3xvQ2aB": 0.8,
        "msg_01XFDUDYJgAACzvnptvVoYEL": 0.6,
        "9d4f2b6a8c1e3f57": 1.0,
    }


def test_a_json_lines_export_with_a_broken_first_line_keeps_the_others(tmp_path, prices):
    path = tmp_path / "export.jsonl"
    path.write_text('{"resourceSpans": [{"scopeSp\n' + TRACES_JSONL.read_text())
    result = import_otel(path, prices=prices)
    assert sorted(result.frame["request_id"]) == sorted(BILL)
    assert result.quarantined[0]["source"] == f"{path}:1"
    assert result.counts["objects_read"] == 3


def test_spans_of_litellms_opentelemetry_callback(tmp_path, prices):
    """LiteLLM's callback writes the deprecated token names, no gen_ai.operation.name and
    no cache counts, but its metadata's usage object (``str(dict)``) holds them, and
    gen_ai.cost.total_cost holds LiteLLM's own cost. Same tokens as the haiku call of
    the worked bill: 7050 prompt tokens with 6000 reads and 1000 writes, 120 out."""
    usage = {
        "completion_tokens": 120,
        "prompt_tokens": 7050,
        "total_tokens": 7170,
        "prompt_tokens_details": {"cached_tokens": 6000, "audio_tokens": None},
        "cache_creation_input_tokens": 1000,
        "cache_read_input_tokens": 6000,
    }
    span = {
        "gen_ai.system": "anthropic",
        "llm.request.type": "acompletion",
        "gen_ai.request.model": "claude-haiku-4-5",
        "gen_ai.response.model": "claude-haiku-4-5",
        "gen_ai.response.id": "chatcmpl-litellm-1",
        "gen_ai.usage.prompt_tokens": 7050,
        "gen_ai.usage.completion_tokens": 120,
        "llm.usage.total_tokens": 7170,
        "metadata.usage_object": str(usage),
        "metadata.user_api_key_user_id": "ana",
        "metadata.user_api_key_team_id": "support",
        "llm.user": "customer-9",
        "gen_ai.cost.total_cost": 0.00715,
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": "Classify this ticket",
    }
    result = import_otel(_export(tmp_path, [_span("a1", span)]), prices=prices)
    (row,) = result.frame.to_dict("records")
    assert (row["input_tokens"], row["cached_input_tokens"], row["cache_write_tokens"]) == (
        7050,
        6000,
        1000,
    )
    assert row["cost_usd"] == pytest.approx(0.0025, abs=1e-12)  # the bill's haiku call
    assert row["source_cost_usd"] == 0.00715
    assert (row["user"], row["team"]) == ("ana", "support")
    assert result.counts["litellm_usage_objects_read"] == 1
    assert result.to_dict()["calls_stating_spend"]["source_spend_usd"] == 0.00715


def test_calls_without_captured_content_are_written_for_spend_reports(tmp_path, prices):
    """Content capture is opt-in, so most spans carry no prompt: the call is still
    written, and read back as a spend-only call log (require_prompt=False)."""
    path = _export(tmp_path, [_span("a1", CHAT), _span("a2", {**CHAT, "gen_ai.prompt": "hi"})])
    result = import_otel(path, prices=prices)
    assert result.counts["calls_without_prompt"] == 1
    out = tmp_path / "calls.csv"
    write_calls(result.frame, out)
    back = read_call_logs(out, compute_costs=False, require_prompt=False).frame
    assert back.set_index("request_id")["cost_usd"].to_dict() == pytest.approx(
        dict(zip(result.frame["request_id"], result.frame["cost_usd"], strict=True))
    )
    assert back["prompt_id"].isna().tolist() == [True, False]


def test_message_events_written_as_log_records_give_the_prompt(tmp_path, prices):
    """The OpenTelemetry Python instrumentations write gen_ai.user.message as a log
    record of the span, its content in the body."""
    traces = _export(tmp_path, [_span("a1", CHAT)])
    record = {
        "timeUnixNano": "1767261600000000000",
        "eventName": "gen_ai.user.message",
        "traceId": TRACE,
        "spanId": "a1",
        "attributes": [_attr("gen_ai.system", "anthropic")],
        "body": {"kvlistValue": {"values": [_attr("content", "Summarise INV-204")]}},
    }
    logs = tmp_path / "logs.jsonl"
    logs.write_text(
        json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]}) + "\n"
    )
    (row,) = import_otel([traces, logs], prices=prices).frame.to_dict("records")
    assert row["messages"] == [{"role": "user", "content": "Summarise INV-204"}]
