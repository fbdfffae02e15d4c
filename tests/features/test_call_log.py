"""Readers and validation of the call log, on rows cut from the shipped demo logs."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.call_log import (
    COLUMNS,
    CallLogError,
    prompt_key,
    read_call_logs,
    write_call_log,
)
from features.prices import PriceCatalog


@pytest.fixture()
def sample(shipped_calls) -> pd.DataFrame:
    return shipped_calls.head(20).reset_index(drop=True)


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".csv", ".parquet"])
def test_every_format_reads_the_same(sample, tmp_path, suffix):
    path = tmp_path / f"calls{suffix}"
    if suffix.startswith(".jsonl"):
        sample.to_json(path, orient="records", lines=True)
    elif suffix == ".csv":
        sample.to_csv(path, index=False)
    else:
        sample.to_parquet(path)
    read = read_call_logs(path)
    assert read.n_quarantined == 0
    assert list(read.frame.columns) == list(COLUMNS)
    assert read.frame["request_id"].tolist() == sample["request_id"].tolist()
    np.testing.assert_allclose(read.frame["cost_usd"], sample["cost_usd"])
    np.testing.assert_array_equal(read.frame["outcome"], sample["outcome"])


def test_folder_of_files(sample, tmp_path):
    sample.iloc[:10].to_parquet(tmp_path / "a.parquet")
    sample.iloc[10:].to_json(tmp_path / "b.jsonl", orient="records", lines=True)
    (tmp_path / "notes.txt").write_text("ignored")
    assert len(read_call_logs(tmp_path).frame) == 20


BAD_ROWS = [
    ({"request_id": None}, "missing required column 'request_id'"),
    ({"model": ""}, "missing required column 'model'"),
    ({"prompt": None}, "non-empty `prompt` or `messages`"),
    ({"outcome": 1.5}, "outcome must be in [0, 1]"),
    ({"cost_usd": -1.0}, "cost_usd must be in"),
    ({"input_tokens": -3}, "input_tokens must be in"),
    ({"output_tokens": 2.5}, "whole number"),
    ({"propensity": 0.0}, "propensity must be in (0"),
    ({"cached_input_tokens": 10**9}, "exceed input_tokens"),
    ({"messages": "not json"}, "Expecting value"),
    ({"cache_write_1h_tokens": -1}, "cache_write_1h_tokens must be in"),
    ({"cache_write_1h_tokens": 1.5}, "cache_write_1h_tokens must be a whole number"),
    ({"cache_write_tokens": 10, "cache_write_1h_tokens": 11}, "cache_write_1h_tokens exceed"),
    ({"reasoning_tokens": "many"}, "reasoning_tokens must be a number"),
    ({"reasoning_tokens": 10**9}, "reasoning_tokens exceed output_tokens"),
    ({"source_cost_usd": -0.5}, "source_cost_usd must be in"),
    ({"source": ["litellm-spend"]}, "source must be a string"),
]


@pytest.mark.parametrize(("change", "reason"), BAD_ROWS)
def test_bad_rows_are_quarantined_with_a_reason(sample, tmp_path, change, reason):
    rows = sample.head(3).to_dict(orient="records")
    rows[1].update(change)
    if "messages" in change:
        rows[1]["prompt"] = None
    path = tmp_path / "calls.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    quarantine = tmp_path / "bad.jsonl"
    read = read_call_logs(path, quarantine_path=quarantine)
    assert len(read.frame) == 2 and read.n_quarantined == 1
    written = [json.loads(line) for line in quarantine.read_text().splitlines()]
    assert reason in written[0]["quarantine_reason"]
    assert written[0]["source"].endswith("calls.jsonl:2")


def test_malformed_json_lines_and_duplicates(sample, tmp_path):
    rows = sample.head(2).to_dict(orient="records")
    path = tmp_path / "calls.jsonl"
    path.write_text(
        json.dumps(rows[0])
        + "\n{not json\n[1, 2]\n"
        + json.dumps(rows[0])
        + "\n"
        + json.dumps(rows[1])
        + "\n"
    )
    read = read_call_logs(path, quarantine_path=tmp_path / "q.jsonl")
    assert len(read.frame) == 2
    reasons = sorted(read.quarantined["quarantine_reason"])
    assert reasons[0].startswith("duplicate request_id")
    assert reasons[1].startswith("invalid JSON")
    assert reasons[2] == "line is not a JSON object"


def test_cost_from_catalog_and_prompt_id_from_text(sample, tmp_path):
    frame = sample.head(4).drop(columns=["cost_usd", "prompt_id"])
    frame.loc[3, "model"] = "some/unpriced-model"
    frame.to_parquet(tmp_path / "calls.parquet")
    read = read_call_logs(tmp_path / "calls.parquet")
    catalog = PriceCatalog.load()
    expected = catalog.cost_usd(
        sample.loc[0, "model"], sample.loc[0, "input_tokens"], sample.loc[0, "output_tokens"]
    )
    assert read.frame.loc[0, "cost_usd"] == pytest.approx(expected)
    assert np.isnan(read.frame.loc[3, "cost_usd"])
    ids = read.frame["prompt_id"]
    assert ids.str.startswith("sha256:").all()
    same_prompt = sample.head(4)["prompt"].duplicated(keep=False).to_numpy()
    assert ids[same_prompt].nunique() <= 1 + (~same_prompt).sum()


def test_messages_rows(tmp_path):
    rows = [
        {
            "request_id": "a",
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "hi"}],
            "input_tokens": 100,
            "cached_input_tokens": 80,
            "output_tokens": 10,
            "outcome": 1,
        },
    ]
    path = tmp_path / "calls.jsonl"
    path.write_text(json.dumps(rows[0]) + "\n")
    frame = read_call_logs(path).frame
    price = PriceCatalog.load().get("gpt-4o")
    expected = 20 * price.input_cost_per_token + 80 * price.cache_read_input_token_cost
    expected += 10 * price.output_cost_per_token
    assert frame.loc[0, "cost_usd"] == pytest.approx(expected)
    assert frame.loc[0, "messages"][0]["content"] == "hi"


def test_missing_paths_fail_clearly(tmp_path):
    with pytest.raises(CallLogError, match=r"nope.jsonl: no such file or folder\. Check the path"):
        read_call_logs(tmp_path / "nope.jsonl")
    with pytest.raises(CallLogError, match="folder holds no call-log files"):
        read_call_logs(tmp_path)


def test_an_empty_file_in_a_folder_is_skipped_but_a_named_one_is_an_error(tmp_path):
    write_rows(tmp_path / "a.jsonl", [one_call()])
    (tmp_path / "b.jsonl").write_text("")
    assert len(read_call_logs(tmp_path).frame) == 1
    with pytest.raises(CallLogError, match=r"b.jsonl: is empty"):
        read_call_logs([tmp_path / "a.jsonl", tmp_path / "b.jsonl"])
    (tmp_path / "a.jsonl").write_text("\n")
    with pytest.raises(CallLogError, match="every file is empty"):
        read_call_logs(tmp_path)


def test_a_file_of_duplicates_is_quarantined_not_an_error(tmp_path):
    write_rows(tmp_path / "a.jsonl", [one_call("r1"), one_call("r2")])
    write_rows(tmp_path / "b.jsonl", [one_call("r1")])
    read = read_call_logs(tmp_path)
    assert len(read.frame) == 2
    assert read.quarantined["quarantine_reason"].tolist() == ["duplicate request_id 'r1'"]


def test_every_row_invalid_names_the_column_and_writes_the_quarantine(tmp_path):
    path = write_rows(
        tmp_path / "calls.jsonl", [one_call(f"r{i}", outcome="merged") for i in range(3)]
    )
    quarantine = tmp_path / "q.jsonl"
    with pytest.raises(
        CallLogError,
        match=r"calls.jsonl: none of its 3 rows is valid: outcome must be a number in \[0, 1\] "
        r"or true/false \(3 rows\)",
    ):
        read_call_logs(path, quarantine_path=quarantine)
    assert len(quarantine.read_text().splitlines()) == 3


@pytest.mark.parametrize("value", [1700000000, "yesterday-ish"])
def test_a_timestamp_must_be_iso_8601(tmp_path, value):
    path = write_rows(tmp_path / "calls.jsonl", [one_call(timestamp=value), one_call("r2")])
    reason = read_call_logs(path).quarantined.loc[0, "quarantine_reason"]
    assert reason.startswith("timestamp must be an ISO 8601 date-time, got ")
    assert str(value) in reason


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def one_call(request_id="r1", **values):
    return {"request_id": request_id, "model": "gpt-4o", "prompt": "hi", **values}


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [(True, 1.0), (False, 0.0), ("true", 1.0), ("FALSE", 0.0), ("0.5", 0.5), (None, np.nan)],
)
def test_outcome_booleans_read_as_one_and_zero(tmp_path, outcome, expected):
    path = write_rows(tmp_path / "calls.jsonl", [one_call(outcome=outcome), one_call("r2")])
    read = read_call_logs(path)
    assert read.n_quarantined == 0
    np.testing.assert_equal(read.frame.loc[0, "outcome"], expected)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"outcome": "merged"}, "outcome must be a number in [0, 1] or true/false, got 'merged'"),
        ({"input_tokens": "abc"}, "input_tokens must be a number, got 'abc'"),
        ({"latency_ms": True}, "latency_ms must be a number, got True"),
        ({"model": ["gpt-4o"]}, "model must be a string, got ['gpt-4o']"),
        ({"team": {"name": "x"}}, "team must be a string, got {'name': 'x'}"),
        (
            {"prompt": [{"role": "user", "content": "hi"}]},
            "prompt must be a string (a chat goes in `messages`), got a list or object",
        ),
    ],
)
def test_a_value_of_the_wrong_type_names_its_column(tmp_path, change, reason):
    path = write_rows(tmp_path / "calls.jsonl", [one_call(**change), one_call("r2")])
    read = read_call_logs(path)
    assert read.n_quarantined == 1
    assert read.quarantined.loc[0, "quarantine_reason"] == reason


def test_one_prompt_key_for_every_row_of_a_prompt(tmp_path):
    """Without prompt_id, the reader's key groups a prompt's answers by every model."""
    chat = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "sum 2+2"}]
    rows = [
        one_call("a1", prompt="what is 2+2"),
        {**one_call("a2", prompt="what is 2+2"), "model": "gpt-4o-mini"},
        {**one_call("b1", prompt=None), "messages": chat},
        {**one_call("b2", prompt=None), "messages": chat, "model": "claude-haiku-4-5"},
        {**one_call("c1", prompt=None), "messages": [chat[1]]},  # no system turn: another prompt
        one_call("d1", prompt="given", prompt_id="mine"),
    ]
    frame = read_call_logs(write_rows(tmp_path / "calls.jsonl", rows)).frame
    ids = dict(zip(frame["request_id"], frame["prompt_id"], strict=True))
    assert ids["a1"] == ids["a2"] == prompt_key("what is 2+2", None)
    assert ids["b1"] == ids["b2"] == prompt_key(None, chat)
    assert len({ids["a1"], ids["b1"], ids["c1"]}) == 3
    assert ids["d1"] == "mine"


DOCS = Path(__file__).resolve().parents[2] / "docs" / "call-log.md"


def test_the_format_page_documents_every_column():
    text = DOCS.read_text()
    table = dict(re.findall(r"^\| `(\w+)` \| [^|]+ \| ([^|]+) \|", text, flags=re.M))
    assert list(table) == list(COLUMNS)
    documented_required = [name for name, required in table.items() if required.strip() == "yes"]
    assert documented_required == [name for name, required in COLUMNS.items() if required]


def test_the_format_page_example_reads_as_it_says(tmp_path):
    (example,) = re.findall(r"```json\n(.*?)```", DOCS.read_text(), flags=re.S)
    path = tmp_path / "calls.jsonl"
    path.write_text(example)
    read = read_call_logs(path)
    assert read.n_quarantined == 0
    frame = read.frame
    assert frame.loc[0, "prompt_id"] == frame.loc[1, "prompt_id"] != frame.loc[2, "prompt_id"]
    assert np.isnan(frame.loc[2, "outcome"]) and frame.loc[2, "cost_usd"] > 0


def test_one_hour_writes_and_reasoning_are_priced_when_cost_is_absent(tmp_path):
    # claude-sonnet-4-5: input 3e-06, read 3e-07, 5-minute write 3.75e-06, 1-hour write
    # 6e-06, output 1.5e-05. gpt-5: reasoning is output (no price of its own).
    rows = [
        {
            "request_id": "a",
            "model": "claude-sonnet-4-5",
            "prompt": "p",
            "input_tokens": 10_000,
            "cached_input_tokens": 6_000,
            "cache_write_tokens": 1_000,
            "cache_write_1h_tokens": 400,
            "output_tokens": 500,
        },
        {
            "request_id": "b",
            "model": "gpt-5",
            "prompt": "p",
            "input_tokens": 1_000,
            "output_tokens": 300,
            "reasoning_tokens": 200,
            "source_cost_usd": 0.5,
            "source": "litellm-spend",
        },
    ]
    path = tmp_path / "calls.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    frame = read_call_logs(path).frame.set_index("request_id")
    expected_a = 3_000 * 3e-06 + 6_000 * 3e-07 + 600 * 3.75e-06 + 400 * 6e-06 + 500 * 1.5e-05
    assert frame.loc["a", "cost_usd"] == pytest.approx(expected_a)
    assert frame.loc["a", "cost_usd"] == pytest.approx(0.02295)
    assert frame.loc["b", "cost_usd"] == pytest.approx(1_000 * 1.25e-06 + 300 * 1e-05)
    assert frame.loc["b", "reasoning_tokens"] == 200
    assert frame.loc["b", "source_cost_usd"] == 0.5
    assert frame.loc["b", "source"] == "litellm-spend"


def test_prompt_less_rows_are_read_only_when_asked(tmp_path):
    rows = [
        {"request_id": "a", "model": "gpt-4o", "input_tokens": 100, "output_tokens": 10},
        {"request_id": "b", "model": "gpt-4o", "prompt": "hi", "input_tokens": 5},
    ]
    path = tmp_path / "spend.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    read = read_call_logs(path, require_prompt=False)
    assert read.n_quarantined == 0
    frame = read.frame.set_index("request_id")
    assert pd.isna(frame.loc["a", "prompt_id"]) and pd.isna(frame.loc["a", "prompt"])
    assert frame.loc["b", "prompt_id"] == prompt_key("hi", None)
    assert frame.loc["a", "cost_usd"] == pytest.approx(100 * 2.5e-06 + 10 * 1e-05)
    # The default (train, evaluate) still refuses the prompt-less row.
    strict = read_call_logs(path)
    assert strict.n_quarantined == 1
    assert "non-empty `prompt` or `messages`" in strict.quarantined["quarantine_reason"][0]
    # A file without any prompt column is read too, and refused by default.
    only_usage = tmp_path / "usage.jsonl"
    only_usage.write_text(json.dumps(rows[0]) + "\n")
    assert len(read_call_logs(only_usage, require_prompt=False).frame) == 1
    with pytest.raises(CallLogError, match="no row has a `prompt` or `messages` column"):
        read_call_logs(only_usage)


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".csv", ".csv.gz", ".parquet"])
def test_write_call_log_reads_back_unchanged(sample, tmp_path, suffix):
    sample.to_parquet(tmp_path / "in.parquet")
    frame = read_call_logs(tmp_path / "in.parquet").frame
    frame.loc[0, "cache_write_tokens"] = 0
    frame.loc[0, "reasoning_tokens"] = 3
    frame.loc[0, "source_cost_usd"] = 0.25
    frame.loc[0, "source"] = "litellm-spend"
    frame.loc[1, "messages"] = [{"role": "user", "content": [{"type": "text", "text": "x"}]}]
    out = write_call_log(frame, tmp_path / f"out{suffix}")
    back = read_call_logs(out).frame
    assert list(back.columns) == list(COLUMNS)

    def cells(f: pd.DataFrame) -> pd.DataFrame:  # None and NaN alike: "missing"
        return f.astype(object).where(f.notna(), None)

    pd.testing.assert_frame_equal(cells(back), cells(frame), check_dtype=False)


def test_write_call_log_refuses_an_unknown_extension(sample, tmp_path):
    with pytest.raises(ValueError, match=r"out.txt: a call log is written as \.jsonl"):
        write_call_log(sample, tmp_path / "out.txt")
