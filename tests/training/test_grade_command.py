"""`outcome-router import github` then `outcome-router grade`, end to end through the
command line (training/grade_command.py), on the GitHub fixture of tests/features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from features.call_log import read_call_logs
from features.events import read_events
from training.cli import main

FIXTURE = Path(__file__).parents[1] / "features" / "fixtures" / "github"
PULLS = FIXTURE / "pulls.json"
REVIEWS = sorted(FIXTURE.glob("reviews-*.json"))

CALLS = [
    {
        "request_id": "r1",
        "prompt": "fix rounding in convert()",
        "session_id": "7f3a9c2e41",
        "timestamp": "2026-01-05T09:40:00Z",
    },
    {
        "request_id": "r2",
        "prompt": "write a test for convert()",
        "session_id": "7f3a9c2e41",
        "timestamp": "2026-01-05T09:50:00Z",
    },
    {
        "request_id": "r3",
        "prompt": "implement partial refunds",
        "session_id": "9b1d44e0c7",
        "timestamp": "2026-01-05T13:00:00Z",
    },
    {
        "request_id": "r4",
        "prompt": "add jitter to webhook retries",
        "session_id": "a1b2c3d4e5",
        "timestamp": "2026-01-06T09:00:00Z",
    },
    {
        "request_id": "r5",
        "prompt": "idempotency keys for /charge",
        "session_id": "c0ffee1234",
        "timestamp": "2026-01-18T10:00:00Z",
    },
    {
        "request_id": "r6",
        "prompt": "What is the capital of France?",
        "user": "ana",
        "timestamp": "2026-01-10T10:00:00Z",
    },
    {
        "request_id": "r7",
        "prompt": "what is the capital of france",
        "user": "ana",
        "timestamp": "2026-01-10T10:01:30Z",
    },
    {"request_id": "r8", "prompt": "summarise the incident", "timestamp": "2026-01-10T11:00:00Z"},
]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_import_then_grade_through_the_command_line(tmp_path, capsys, suffix):
    calls = tmp_path / "calls.jsonl"
    calls.write_text("".join(json.dumps({"model": "m", **c}) + "\n" for c in CALLS))
    events = tmp_path / "events.jsonl"
    argv = ["import", "github", str(PULLS), *map(str, REVIEWS), "--out", str(events)]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["n_events"] == 11 and printed["prs_without_session"] == 1
    extra = tmp_path / "feedback.jsonl"
    extra.write_text(
        json.dumps(
            {"timestamp": "2026-01-10T11:05:00Z", "event": "thumbs_down", "request_id": "r8"}
        )
        + "\n"
        + json.dumps(
            {"timestamp": "2026-01-10T11:05:00Z", "event": "thumbs_up", "request_id": "gone"}
        )
        + "\n"
    )
    config = tmp_path / "grading.toml"
    config.write_text("[scores]\npr_merged_after_changes_requested = 0.5\n")
    graded = tmp_path / f"graded{suffix}"
    argv = ["grade", "--logs", str(calls), "--events", str(events), str(extra)]
    argv += ["--config", str(config), "--as-of", "2026-01-20T00:00:00Z", "--out", str(graded)]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["graded"] == 6 and printed["pending"] == 1 and printed["no_event"] == 1
    assert printed["by_source"] == {
        "pr_merged": 2,
        "pr_merged_after_changes_requested": 1,
        "pr_closed_unmerged": 1,
        "retry_in_logs": 1,
        "thumbs": 1,
    }
    assert printed["events"]["quarantined"] == 1
    quarantine = tmp_path / "graded.events-quarantine.jsonl"
    assert printed["quarantine"]["events"] == str(quarantine)
    (row,) = [json.loads(line) for line in quarantine.read_text().splitlines()]
    assert row["quarantine_reason"] == "no call has request_id gone"

    back = read_call_logs(graded, compute_costs=False).frame.set_index("request_id")["outcome"]
    expected = {"r1": 1.0, "r2": 1.0, "r3": 0.5, "r4": 0.0, "r5": np.nan, "r6": 0.0}
    expected.update({"r7": np.nan, "r8": 0.0})
    np.testing.assert_array_equal(back.reindex(list(expected)).to_numpy(), list(expected.values()))
    assert read_events(events).frame["event"].tolist()[0] == "pr_opened"


def test_grade_refuses_an_output_it_cannot_write(tmp_path, capsys):
    calls = tmp_path / "calls.jsonl"
    calls.write_text(json.dumps({"model": "m", **CALLS[0]}) + "\n")
    argv = ["grade", "--logs", str(calls), "--events", str(PULLS), "--out", str(tmp_path / "g.txt")]
    assert main(argv) == 2
    assert "name the graded log .jsonl, .csv or .parquet" in capsys.readouterr().err
