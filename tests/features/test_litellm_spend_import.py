"""`outcome-router import litellm-spend`: LiteLLM spend-log exports -> call log.

The fixtures (tests/features/fixtures/litellm_spend/) are hand-written in the shape of
the proxy's ``LiteLLM_SpendLogs`` table (``litellm/proxy/schema.prisma``): a CSV as a
database export writes it (JSON columns as JSON text) and a JSON array as
``GET /spend/logs`` answers. Every expected cost below is a bill worked by hand from the
shipped catalog's LiteLLM prices.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from features.importers import IMPORTERS
from features.importers.litellm_spend import (
    SpendLogError,
    import_litellm_spend,
    read_spend_rows,
    task_of,
)
from features.importers.litellm_usage import usage_tokens
from features.prices import PriceCatalog

FIXTURES = Path(__file__).parent / "fixtures" / "litellm_spend"
CSV = FIXTURES / "spend_logs.csv"
JSON = FIXTURES / "spend_logs.json"


@pytest.fixture(scope="module")
def from_csv():
    return import_litellm_spend(CSV)


@pytest.fixture(scope="module")
def from_json():
    return import_litellm_spend(JSON)


def call(result, request_id: str) -> pd.Series:
    frame = result.frame.set_index("request_id")
    return frame.loc[request_id]


def test_anthropic_call_with_cache_reads_and_both_write_lifetimes(from_csv) -> None:
    c = call(from_csv, "chatcmpl-7f3a1c2e-anthropic")
    # usage_object: prompt_tokens 100,000 (LiteLLM's count includes Anthropic's cache
    # reads and writes), cached_tokens 60,000, cache_creation 20,000 of which 5,000 for
    # 1 hour; completion 2,000.
    assert (c.input_tokens, c.cached_input_tokens, c.cache_write_tokens) == (
        100_000,
        60_000,
        20_000,
    )
    assert (c.cache_write_1h_tokens, c.output_tokens) == (5_000, 2_000)
    # claude-sonnet-4-5: 20,000 x 3e-06 + 60,000 x 3e-07 + 15,000 x 3.75e-06
    #                  + 5,000 x 6e-06 + 2,000 x 1.5e-05
    bill = 0.06 + 0.018 + 0.05625 + 0.03 + 0.03
    assert c.cost_usd == pytest.approx(bill)
    # LiteLLM's spend (every prompt token at the input price) is kept beside it.
    assert c.source_cost_usd == pytest.approx(100_000 * 3e-06 + 2_000 * 1.5e-05)
    assert c.source == "litellm-spend"
    assert (c.model, c.user, c.team, c.session_id) == (
        "claude-sonnet-4-5",
        "u-alice",
        "payments",
        "sess-pay-101",
    )
    assert c.task == "code-review"  # request tag "task:code-review"
    assert c.timestamp == "2026-11-30T10:00:00+00:00"
    assert c.latency_ms == pytest.approx(4_250)


def test_litellm_11364_reads_cache_from_usage_not_the_cache_hit_flag(from_csv) -> None:
    # BerriAI/litellm#11364: cache_hit stays "False" on Anthropic prompt-cache reads.
    rows = {r["request_id"]: r for r, _, _ in read_spend_rows(CSV)}
    assert rows["chatcmpl-7f3a1c2e-anthropic"]["cache_hit"] == "False"
    c = call(from_csv, "chatcmpl-7f3a1c2e-anthropic")
    assert c.cached_input_tokens == 60_000
    assert c.cost_usd < c.source_cost_usd


def test_openai_call_with_cached_tokens_and_reasoning(from_csv) -> None:
    c = call(from_csv, "chatcmpl-BX9o4mini")
    assert (c.input_tokens, c.cached_input_tokens, c.cache_write_tokens) == (5_000, 1_024, 0)
    assert (c.output_tokens, c.reasoning_tokens) == (3_000, 2_000)
    assert math.isnan(c.cache_write_1h_tokens)  # OpenAI does not split writes by lifetime
    # o4-mini: 3,976 x 1.1e-06 + 1,024 x 2.75e-07 + 3,000 x 4.4e-06 (reasoning is output)
    assert c.cost_usd == pytest.approx(0.0043736 + 0.0002816 + 0.0132)
    assert c.cost_usd == pytest.approx(c.source_cost_usd)  # LiteLLM got this one right
    assert c.user == "customer-42"  # no internal user: the request's end_user
    assert c.task == "triage"  # request tag "taskName:triage"


def test_gateway_cache_hit_costs_nothing(from_csv) -> None:
    c = call(from_csv, "chatcmpl-C44mini_cache_hit1764497100.254")
    assert c.cost_usd == 0 and c.source_cost_usd == 0
    assert c.input_tokens == 0 and c.output_tokens == 0  # the provider billed no tokens
    assert from_csv.counts["gateway_cache_hits"] == 1


def test_failed_zero_token_call_is_kept_at_zero_cost(from_csv) -> None:
    c = call(from_csv, "chatcmpl-failed-429")
    assert c.cost_usd == 0 and c.input_tokens == 0 and c.output_tokens == 0
    assert from_csv.counts["failed_calls"] == 1


def test_model_missing_from_the_catalog_keeps_the_source_spend(from_csv) -> None:
    c = call(from_csv, "chatcmpl-mistral-1")
    assert c.cost_usd == pytest.approx(0.0042) == c.source_cost_usd
    assert from_csv.unpriced == {"mistral-large-2411": 1}
    summary = from_csv.to_dict()
    assert summary["models_not_in_catalog"] == {"mistral-large-2411": 1}
    assert summary["calls_not_in_catalog"] == 1


def test_a_fuller_catalog_prices_it(tmp_path) -> None:
    # LiteLLM's mistral/mistral-large-2411: 2e-06 input, 6e-06 output.
    catalog = PriceCatalog.from_entries(
        {
            "mistral/mistral-large-2411": {
                "input_cost_per_token": 2e-06,
                "output_cost_per_token": 6e-06,
            }
        }
    )
    result = import_litellm_spend(CSV, prices=catalog)
    c = call(result, "chatcmpl-mistral-1")
    assert c.cost_usd == pytest.approx(1_200 * 2e-06 + 300 * 6e-06)
    assert "mistral-large-2411" not in result.unpriced


def test_bad_rows_are_quarantined_with_their_reason(from_csv, from_json) -> None:
    (bad_csv,) = from_csv.quarantined
    assert bad_csv["request_id"] == "chatcmpl-broken-metadata"
    assert bad_csv["quarantine_reason"].startswith("metadata is not valid JSON")
    assert bad_csv["source"] == f"{CSV}:7"
    (bad_json,) = from_json.quarantined
    assert bad_json["quarantine_reason"] == (
        "prompt_tokens must be a whole number of tokens >= 0, got -5"
    )
    assert bad_json["source"] == f"{JSON}:#6"
    assert from_csv.n_rows == 6 and len(from_csv.frame) == 5


def test_litellm_11789_streamed_cache_reads_are_found(from_json) -> None:
    # BerriAI/litellm#11789: cached_tokens 0, cache_read_input_tokens 2,455, prompt 2,459.
    c = call(from_json, "chatcmpl-haiku-streamed")
    assert (c.input_tokens, c.cached_input_tokens, c.output_tokens) == (2_459, 2_455, 23)
    # claude-3-5-haiku: 4 x 8e-07 + 2,455 x 8e-08 + 23 x 4e-06; LiteLLM said $0.002059.
    assert c.cost_usd == pytest.approx(0.0000032 + 0.0001964 + 0.000092)
    assert c.source_cost_usd == pytest.approx(0.0020592)
    assert c.task == "support-reply"  # metadata.requester_metadata.task


def test_litellm_9812_cache_writes_are_charged_once(from_json) -> None:
    # BerriAI/litellm#9812: Anthropic input_tokens 3 + cache_creation 12,304, output 550.
    for request_id in ("chatcmpl-sonnet-cache-write", "chatcmpl-sonnet-anthropic-convention"):
        c = call(from_json, request_id)
        # The second row kept Anthropic's convention (prompt_tokens 3, writes apart).
        assert (c.input_tokens, c.cache_write_tokens) == (12_307, 12_304)
        assert c.cost_usd == pytest.approx(3 * 3e-06 + 12_304 * 3.75e-06 + 550 * 1.5e-05)
    assert call(from_json, "chatcmpl-sonnet-cache-write").source_cost_usd == 0.091311


def test_gemini_long_context_call_and_its_stored_prompt(from_json) -> None:
    c = call(from_json, "chatcmpl-gemini-long")
    assert (c.input_tokens, c.cached_input_tokens) == (250_000, 100_000)
    assert (c.output_tokens, c.reasoning_tokens) == (4_000, 1_000)
    # gemini-2.5-pro above 200k: 150,000 x 2.5e-06 + 100,000 x 2.5e-07 + 4,000 x 1.5e-05
    assert c.cost_usd == pytest.approx(0.375 + 0.025 + 0.06)
    # store_prompts_in_spend_logs was on: the request body holds the chat.
    assert [m["role"] for m in c.messages] == ["system", "user"]
    assert c.prompt_id.startswith("sha256:")
    old = call(from_json, "chatcmpl-gpt4o-old-messages")
    assert old.messages[0]["content"] == "Fix the off-by-one in paginate()"
    assert pd.isna(call(from_json, "chatcmpl-haiku-streamed").prompt_id)


def test_summary_compares_stated_and_recomputed_spend(from_csv) -> None:
    summary = from_csv.to_dict()
    assert (summary["rows_read"], summary["calls_written"], summary["quarantined"]) == (6, 5, 1)
    stated = 0.33 + 0.0178552 + 0 + 0 + 0.0042
    recomputed = 0.19425 + 0.0178552 + 0 + 0 + 0.0042
    assert summary["source_spend_usd"] == pytest.approx(stated, abs=1e-6)
    assert summary["recomputed_spend_usd"] == pytest.approx(recomputed, abs=1e-6)
    assert summary["difference_usd"] == pytest.approx(stated - recomputed, abs=1e-6)
    by_model = {m["model"]: m for m in summary["by_model"]}
    assert by_model["claude-sonnet-4-5"]["difference_usd"] == pytest.approx(0.13575)
    assert by_model["claude-sonnet-4-5"]["cached_input_tokens"] == 60_000
    json.dumps(summary)  # printable as is


def test_json_lines_and_gzip_read_the_same(tmp_path, from_json) -> None:
    rows = json.loads(JSON.read_text())
    lines = tmp_path / "spend.jsonl.gz"
    with gzip.open(lines, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    again = import_litellm_spend(lines)
    pd.testing.assert_frame_equal(
        again.frame.drop(columns=["messages"]), from_json.frame.drop(columns=["messages"])
    )
    assert again.quarantined[0]["source"] == f"{lines}:6"


def test_v2_pages_and_folders_are_read(tmp_path) -> None:
    page = {"data": json.loads(JSON.read_text())[:2], "total": 2, "page": 1}
    (tmp_path / "page1.json").write_text(json.dumps(page))
    result = import_litellm_spend(tmp_path)
    assert len(result.frame) == 2


def test_duplicate_request_ids_are_quarantined(tmp_path) -> None:
    rows = json.loads(JSON.read_text())[:1] * 2
    (tmp_path / "dup.json").write_text(json.dumps(rows))
    result = import_litellm_spend(tmp_path / "dup.json")
    assert len(result.frame) == 1
    assert result.quarantined[0]["quarantine_reason"] == (
        "duplicate request_id 'chatcmpl-haiku-streamed'"
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "no such file or folder"),
        ("spend.txt", "x", "not a spend-log export"),
        ("spend.json", '"just text"', "holds a JSON str, not an array"),
        ("spend.jsonl", '"a"\n[1]\n', r"no spend-log row could be read \(line is not a JSON"),
        ("empty.csv", "request_id,model\n", "no spend-log rows"),
    ],
)
def test_unreadable_exports_fail_clearly(tmp_path, name, content, message) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(SpendLogError, match=message):
        import_litellm_spend(path)


@pytest.mark.parametrize(
    ("tags", "metadata", "task"),
    [
        (["task:code-review"], {}, "code-review"),
        (["env:prod", "Task = triage "], {}, "triage"),
        (["taskName:run_page_classification"], {}, "run_page_classification"),
        (["task_name=summarise"], {}, "summarise"),
        (["jobID:214590dsff09fds", "tasks:x", "subtask:y"], {}, None),
        ([], {"requester_metadata": {"task": "from-request"}}, "from-request"),
        (None, {"spend_logs_metadata": {"task": "from-spend-meta"}}, "from-spend-meta"),
        (["task:"], {}, None),
    ],
)
def test_task_rule(tags, metadata, task) -> None:
    assert task_of(tags, metadata) == task


@pytest.mark.parametrize(
    ("usage", "message"),
    [
        ({"prompt_tokens": 10, "completion_tokens": 2.5}, "completion_tokens must be a whole"),
        ({"prompt_tokens": "lots"}, "prompt_tokens must be a whole number"),
        (
            {
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "completion_tokens_details": {"reasoning_tokens": 6},
            },
            "reasoning_tokens \\(6\\) exceed completion_tokens \\(5\\)",
        ),
        ({"prompt_tokens": 10, "cache_read_input_tokens": -1}, "cache_read_input_tokens"),
    ],
)
def test_bad_usage_is_refused(usage, message) -> None:
    with pytest.raises(ValueError, match=message):
        usage_tokens(usage)


def test_one_hour_writes_from_anthropic_raw_usage() -> None:
    got = usage_tokens(
        {
            "prompt_tokens": 2_000,
            "completion_tokens": 10,
            "cache_creation_input_tokens": 1_500,
            "cache_creation": {
                "ephemeral_5m_input_tokens": 500,
                "ephemeral_1h_input_tokens": 1_000,
            },
        }
    )
    assert (got.input_tokens, got.cache_write_tokens, got.cache_write_1h_tokens) == (
        2_000,
        1_500,
        1_000,
    )


def test_registered_as_a_call_importer() -> None:
    importer = IMPORTERS["litellm-spend"]
    assert importer.produces == "calls"
    assert importer.load() is import_litellm_spend


def test_a_stored_prompt_larger_than_csvs_default_field_limit(tmp_path) -> None:
    import csv

    with CSV.open(newline="", encoding="utf-8") as fh:
        row = next(csv.DictReader(fh))
    long_prompt = "x" * 300_000  # csv refuses fields over 128 KiB by default
    row["proxy_server_request"] = json.dumps(
        {"messages": [{"role": "user", "content": long_prompt}]}
    )
    path = tmp_path / "big.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    (c,) = import_litellm_spend(path).frame.itertuples()
    assert c.messages[0]["content"] == long_prompt


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"request_id": ""}, "missing required column 'request_id'"),
        ({"model": "", "model_group": None}, "missing required column 'model'"),
        ({"team_id": ["a", "b"]}, "team_id must be text"),
        ({"spend": -1}, "spend must be a finite number of USD >= 0"),
        ({"spend": "n/a"}, "spend must be a number of USD"),
        ({"startTime": "last tuesday"}, "startTime must be an ISO 8601 date-time"),
        ({"request_tags": "{not json"}, "request_tags is not valid JSON"),
        ({"request_tags": {"task": "x"}}, "request_tags must be a JSON list"),
    ],
)
def test_bad_columns_name_themselves(tmp_path, change, reason) -> None:
    rows = json.loads(JSON.read_text())[:2]
    rows[1].update(change)
    path = tmp_path / "spend.json"
    path.write_text(json.dumps(rows))
    result = import_litellm_spend(path)
    assert len(result.frame) == 1
    assert result.quarantined[0]["quarantine_reason"].startswith(reason)
