"""Outcome events (features/events.py): the schema of DESIGN.md section 3, bad rows
quarantined with their reason, whole-file problems as one clear error."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from features.call_log import CallLogError
from features.events import (
    EVENT_KINDS,
    EventsError,
    read_events,
    validate_event,
    write_events,
)

GOOD = [
    {
        "timestamp": "2026-01-05T10:00:00Z",
        "event": "pr_opened",
        "session_id": "s1",
        "pr": "acme/pay#101",
    },
    {
        "timestamp": "2026-01-06T09:00:00+01:00",
        "event": "pr_merged",
        "pr": "acme/pay#101",
        "event_id": "e1",
    },
    {"timestamp": "2026-01-06T10:00:00", "event": "judge_score", "request_id": "r1", "value": 0.8},
    {"timestamp": "2026-01-06T11:00:00Z", "event": "thumbs_down", "decision_id": "d1"},
    {"timestamp": "2026-01-06T12:00:00Z", "event": "ci_failed", "pr": "acme/pay#101"},
]


def _write_jsonl(path, rows, extra_lines=()):
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
        for line in extra_lines:
            fh.write(line + "\n")
    return path


def test_every_kind_of_the_design_is_known():
    design = [
        "pr_opened",
        "pr_merged",
        "pr_closed_unmerged",
        "pr_reverted",
        "review_approved",
        "review_changes_requested",
        "ci_passed",
        "ci_failed",
        "tests_passed",
        "tests_failed",
        "retry",
        "thumbs_up",
        "thumbs_down",
        "judge_score",
    ]
    assert set(design) <= set(EVENT_KINDS)


def test_good_events_read_from_jsonl_csv_and_parquet_alike(tmp_path):
    frames = []
    jsonl = _write_jsonl(tmp_path / "e.jsonl", GOOD)
    frames.append(read_events(jsonl).frame)
    for name in ("e.csv", "e.parquet"):
        write_events(frames[0], tmp_path / name)
        frames.append(read_events(tmp_path / name).frame)
    for frame in frames:
        assert list(frame["event"]) == [r["event"] for r in GOOD]
        # times are UTC; one without an offset is taken as UTC, +01:00 converted
        assert frame["timestamp"].iloc[1] == pd.Timestamp("2026-01-06T08:00:00Z")
        assert frame["timestamp"].iloc[2] == pd.Timestamp("2026-01-06T10:00:00Z")
        assert frame["value"].iloc[2] == pytest.approx(0.8)
        assert frame.loc[0, ["session_id", "pr"]].tolist() == ["s1", "acme/pay#101"]


BAD = [
    ({"event": "pr_merged", "pr": "a/b#1"}, "missing required column 'timestamp'"),
    ({"timestamp": 1767225600, "event": "pr_merged", "pr": "a/b#1"}, "ISO 8601"),
    (
        {"timestamp": "2026-01-01T00:00:00Z", "event": "merged", "pr": "a/b#1"},
        "unknown event 'merged'",
    ),
    (
        {"timestamp": "2026-01-01T00:00:00Z", "event": "pr_merged", "pr": "a/b/1"},
        "owner/repo#number",
    ),
    (
        {"timestamp": "2026-01-01T00:00:00Z", "event": "pr_merged", "session_id": "s"},
        "exactly one key, pr",
    ),
    (
        {"timestamp": "2026-01-01T00:00:00Z", "event": "pr_opened", "pr": "a/b#1"},
        "exactly session_id and pr",
    ),
    (
        {
            "timestamp": "2026-01-01T00:00:00Z",
            "event": "thumbs_up",
            "request_id": "r",
            "session_id": "s",
        },
        "exactly one key among",
    ),
    ({"timestamp": "2026-01-01T00:00:00Z", "event": "thumbs_up"}, "got none"),
    (
        {"timestamp": "2026-01-01T00:00:00Z", "event": "judge_score", "request_id": "r"},
        "needs a `value`",
    ),
    (
        {
            "timestamp": "2026-01-01T00:00:00Z",
            "event": "judge_score",
            "request_id": "r",
            "value": 1.5,
        },
        r"value must be a number in \[0, 1\]",
    ),
]


@pytest.mark.parametrize(("row", "message"), BAD)
def test_a_bad_event_says_what_is_wrong(row, message):
    with pytest.raises(ValueError, match=message):
        validate_event(row)


def test_bad_rows_are_quarantined_with_reason_and_line(tmp_path):
    rows = GOOD + [row for row, _ in BAD] + [GOOD[1]]  # GOOD[1] again: a repeated event_id
    path = _write_jsonl(tmp_path / "e.jsonl", rows, extra_lines=["{not json"])
    quarantine = tmp_path / "q.jsonl"
    read = read_events(path, quarantine_path=quarantine)
    assert len(read.frame) == len(GOOD)
    assert read.n_quarantined == len(BAD) + 2
    lines = [json.loads(line) for line in quarantine.read_text().splitlines()]
    reasons = {q["source"].rsplit(":", 1)[1]: q["quarantine_reason"] for q in lines}
    assert reasons[str(len(rows) + 1)].startswith("invalid JSON")
    assert reasons[str(len(rows))] == "duplicate event_id 'e1'"
    assert "unknown event 'merged'" in reasons[str(len(GOOD) + 3)]


def test_an_event_id_repeated_across_files_is_kept_once(tmp_path):
    _write_jsonl(tmp_path / "a.jsonl", GOOD)
    _write_jsonl(tmp_path / "b.jsonl", [GOOD[1]])
    read = read_events(tmp_path)
    assert (read.frame["event_id"] == "e1").sum() == 1
    assert read.quarantined["quarantine_reason"].tolist() == ["duplicate event_id 'e1'"]


FILE_PROBLEMS = [
    ("missing.jsonl", None, "no such file or folder"),
    ("e.txt", "x", "unsupported events format"),
    ("e.jsonl", "", "is empty: no events"),
    ("e.jsonl.gz", "plain text", "is named .gz but is not gzip-compressed"),
    ("e.parquet", "not parquet", "is not a readable Parquet file"),
    ("e.jsonl", json.dumps({"timestamp": "2026-01-01T00:00:00Z", "pr": "a/b#1"}), "`event`"),
    (
        "e.jsonl",
        json.dumps({"event": "pr_merged", "timestamp": "2026-01-01T00:00:00Z"}),
        "no row names",
    ),
    (
        "e.jsonl",
        json.dumps({"event": "merged", "timestamp": "x", "pr": "a/b#1"}),
        "none of its 1 events",
    ),
]


@pytest.mark.parametrize(("name", "content", "message"), FILE_PROBLEMS)
def test_a_file_that_cannot_be_read_is_one_clear_error(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(EventsError, match=message) as caught:
        read_events(path)
    assert isinstance(caught.value, CallLogError)  # commands report both alike
    assert str(path) in str(caught.value)


def test_a_folder_without_event_files_names_the_format_page(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(EventsError, match=r"no events files .*docs/grading.md"):
        read_events(tmp_path)


def test_gzip_jsonl_is_read(tmp_path):
    path = tmp_path / "e.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(json.dumps(r) for r in GOOD))
    assert len(read_events(path).frame) == len(GOOD)
