"""Grading (features/grading.py): every rule of docs/grading.md on small logs written
by the tests, read through the real call-log and event readers."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.call_log import read_call_logs
from features.events import validate_events
from features.grading import (
    DEFAULT_SCORES,
    GradingConfig,
    detect_retries,
    grade,
    prompt_similarity,
)

ROOT = Path(__file__).resolve().parents[2]
T0 = pd.Timestamp("2026-01-05T10:00:00Z")


def at(offset: str) -> str:
    return (T0 + pd.Timedelta(offset)).isoformat()


def calls_frame(tmp_path, rows) -> pd.DataFrame:
    path = tmp_path / "calls.jsonl"
    path.write_text("".join(json.dumps({"model": "m", **r}) + "\n" for r in rows))
    return read_call_logs(path, compute_costs=False).frame


def events_frame(rows) -> pd.DataFrame:
    frame, bad = validate_events(rows)
    assert not bad, bad
    return frame


def outcomes(result) -> dict[str, float | None]:
    g = result.graded
    return {
        r: (None if np.isnan(o) else o) for r, o in zip(g["request_id"], g["outcome"], strict=True)
    }


def pr_calls(tmp_path, sessions=("s1",)):
    rows = []
    for s in sessions:
        rows += [
            {
                "request_id": f"{s}-a",
                "prompt": f"plan the change {s}",
                "session_id": s,
                "timestamp": at("0h"),
            },
            {
                "request_id": f"{s}-b",
                "prompt": f"write the code {s}",
                "session_id": s,
                "timestamp": at("1h"),
            },
        ]
    return calls_frame(tmp_path, rows)


def opened(session="s1", pr="acme/pay#101", when="2h"):
    return {"timestamp": at(when), "event": "pr_opened", "session_id": session, "pr": pr}


def pr_event(kind, when, pr="acme/pay#101"):
    return {"timestamp": at(when), "event": kind, "pr": pr}


# ------------------------------------------------------------------- PR rules
def test_a_merged_pr_grades_every_call_of_its_session(tmp_path):
    calls = pr_calls(tmp_path)
    events = events_frame(
        [opened(), pr_event("review_approved", "1D"), pr_event("pr_merged", "2D")]
    )
    result = grade(calls, events, as_of=at("30D"))
    assert outcomes(result) == {"s1-a": 1.0, "s1-b": 1.0}
    assert set(result.graded["outcome_source"]) == {
        "review_approved:acme/pay#101;pr_merged:acme/pay#101"
    }
    assert result.counts["by_source"] == {"pr_merged": 2}
    assert len(result.quarantined) == 0


def test_merged_after_changes_requested_scores_less_than_merged_on_first_review(tmp_path):
    calls = pr_calls(tmp_path, sessions=("s1", "s2"))
    events = events_frame(
        [
            opened("s1", "acme/pay#1"),
            pr_event("pr_merged", "2D", "acme/pay#1"),
            opened("s2", "acme/pay#2"),
            pr_event("review_changes_requested", "1D", "acme/pay#2"),
            pr_event("review_approved", "2D", "acme/pay#2"),
            pr_event("pr_merged", "2D", "acme/pay#2"),
        ]
    )
    got = outcomes(grade(calls, events, as_of=at("30D")))
    assert got["s2-a"] < got["s1-a"]
    assert got["s2-a"] == DEFAULT_SCORES["pr_merged_after_changes_requested"]


def test_closed_unmerged_scores_zero(tmp_path):
    calls = pr_calls(tmp_path)
    events = events_frame([opened(), pr_event("pr_closed_unmerged", "3D")])
    assert outcomes(grade(calls, events, as_of=at("30D"))) == {"s1-a": 0.0, "s1-b": 0.0}


def test_reverted_within_its_window_scores_zero_and_later_does_not_count(tmp_path):
    calls = pr_calls(tmp_path, sessions=("s1", "s2"))
    events = events_frame(
        [
            opened("s1", "acme/pay#1"),
            pr_event("pr_merged", "1D", "acme/pay#1"),
            pr_event("pr_reverted", "3D", "acme/pay#1"),  # 2 days after the merge: in window
            opened("s2", "acme/pay#2"),
            pr_event("pr_merged", "1D", "acme/pay#2"),
            pr_event("pr_reverted", "20D", "acme/pay#2"),  # 19 days after: outside 7D
        ]
    )
    result = grade(calls, events, as_of=at("60D"))
    got = outcomes(result)
    assert got["s1-a"] == 0.0 and got["s2-a"] == 1.0
    assert "pr_reverted:acme/pay#1" in result.graded.loc[0, "outcome_source"]
    (late,) = result.quarantined.itertuples()
    assert late.pr == "acme/pay#2" and "windows.pr_reverted (7D)" in late.quarantine_reason


def test_a_pr_still_open_leaves_its_calls_pending_until_the_window_closes(tmp_path):
    calls = pr_calls(tmp_path)
    events = events_frame([opened(), pr_event("review_approved", "1D")])
    pending = grade(calls, events, as_of=at("5D"))
    assert outcomes(pending) == {"s1-a": None, "s1-b": None}
    assert set(pending.graded["outcome_status"]) == {"pending"}
    assert pending.counts["pending"] == 2
    closed = grade(calls, events, as_of=at("30D"))  # past windows.pr_merged (14D)
    assert set(closed.graded["outcome_status"]) == {"no_event"}
    assert outcomes(closed) == {"s1-a": None, "s1-b": None}  # still null, not failed


def test_a_merge_outside_the_window_of_the_call_does_not_grade_it(tmp_path):
    calls = pr_calls(tmp_path)
    events = events_frame([opened(), pr_event("pr_merged", "20D")])
    result = grade(calls, events, as_of=at("40D"))
    assert outcomes(result) == {"s1-a": None, "s1-b": None}
    assert "grades no call" in " ".join(result.quarantined["quarantine_reason"])


def test_one_pr_linked_to_two_sessions_grades_both(tmp_path):
    calls = pr_calls(tmp_path, sessions=("s1", "s2"))
    events = events_frame([opened("s1"), opened("s2"), pr_event("pr_merged", "2D")])
    assert set(outcomes(grade(calls, events, as_of=at("30D"))).values()) == {1.0}


def test_wait_for_revert_window_keeps_a_fresh_merge_pending(tmp_path):
    calls = pr_calls(tmp_path)
    events = events_frame([opened(), pr_event("pr_merged", "1D")])
    config = GradingConfig(wait_for_revert_window=True)
    assert set(grade(calls, events, config, as_of=at("3D")).graded["outcome_status"]) == {"pending"}
    assert outcomes(grade(calls, events, config, as_of=at("9D")))["s1-a"] == 1.0


# ----------------------------------------------------------- call-level rules
def call_rows():
    return [
        {"request_id": "r1", "prompt": "first", "timestamp": at("0h"), "decision_id": "d1"},
        {"request_id": "r2", "prompt": "second", "timestamp": at("0h")},
        {"request_id": "r3", "prompt": "third", "timestamp": at("0h")},
    ]


def test_thumbs_judge_and_checks(tmp_path):
    calls = calls_frame(tmp_path, call_rows())
    events = events_frame(
        [
            {"timestamp": at("1h"), "event": "judge_score", "decision_id": "d1", "value": 0.2},
            {"timestamp": at("2h"), "event": "thumbs_up", "request_id": "r1"},  # a person wins
            {"timestamp": at("1h"), "event": "judge_score", "request_id": "r2", "value": 0.6},
            {"timestamp": at("2h"), "event": "judge_score", "request_id": "r2", "value": 0.8},
            {"timestamp": at("1h"), "event": "tests_failed", "request_id": "r3"},
            {"timestamp": at("2h"), "event": "tests_passed", "request_id": "r3"},
        ]
    )
    result = grade(calls, events, as_of=at("30D"))
    assert outcomes(result) == pytest.approx(
        {"r1": 1.0, "r2": 0.7, "r3": DEFAULT_SCORES["checks_passed_after_failure"]}
    )
    assert result.graded.loc[2, "outcome_source"] == "tests_failed:r3;tests_passed:r3"


def test_the_last_check_failing_scores_its_failure(tmp_path):
    calls = calls_frame(tmp_path, call_rows())
    events = events_frame(
        [
            {"timestamp": at("1h"), "event": "ci_passed", "request_id": "r1"},
            {"timestamp": at("2h"), "event": "ci_failed", "request_id": "r1"},
            {"timestamp": at("1h"), "event": "ci_passed", "request_id": "r2"},
        ]
    )
    got = outcomes(grade(calls, events, as_of=at("30D")))
    assert got["r1"] == 0.0 and got["r2"] == 1.0


def test_a_call_with_no_event_is_pending_while_its_window_is_open(tmp_path):
    calls = calls_frame(tmp_path, call_rows())
    assert set(grade(calls, events_frame([]), as_of=at("1D")).graded["outcome_status"]) == {
        "pending"
    }
    late = grade(calls, events_frame([]), as_of=at("8D"))  # past the longest window, 7D
    assert set(late.graded["outcome_status"]) == {"no_event"}
    assert late.graded["outcome"].isna().all()
    expired = grade(calls, events_frame([]), GradingConfig(expired_outcome=0.0), as_of=at("8D"))
    assert (expired.graded["outcome"] == 0.0).all()
    assert set(expired.graded["outcome_source"]) == {"expired"}
    assert expired.counts["expired"] == 3 and expired.counts["no_event"] == 0


def test_events_after_as_of_are_ignored(tmp_path):
    calls = calls_frame(tmp_path, call_rows())
    events = events_frame([{"timestamp": at("2D"), "event": "thumbs_down", "request_id": "r1"}])
    before = grade(calls, events, as_of=at("1D"))
    assert np.isnan(before.graded.loc[0, "outcome"])
    assert before.counts["events"]["after_as_of"] == 1
    assert grade(calls, events, as_of=at("3D")).graded.loc[0, "outcome"] == 0.0


def test_pr_outcome_takes_precedence_over_call_level_feedback_unless_configured(tmp_path):
    calls = pr_calls(tmp_path)
    events = events_frame(
        [
            opened(),
            pr_event("pr_merged", "2D"),
            {"timestamp": at("3h"), "event": "thumbs_down", "request_id": "s1-a"},
        ]
    )
    assert outcomes(grade(calls, events, as_of=at("30D")))["s1-a"] == 1.0
    feedback_first = GradingConfig(precedence=("feedback", "pr", "checks", "retry"))
    got = outcomes(grade(calls, events, feedback_first, as_of=at("30D")))
    assert got == {"s1-a": 0.0, "s1-b": 1.0}


def test_a_logged_outcome_is_kept_when_no_event_decides(tmp_path):
    rows = call_rows()
    rows[0]["outcome"] = 0.5
    result = grade(calls_frame(tmp_path, rows), events_frame([]), as_of=at("30D"))
    assert result.graded.loc[0, ["outcome", "outcome_status"]].tolist() == [0.5, "logged"]
    dropped = grade(
        calls_frame(tmp_path, rows),
        events_frame([]),
        GradingConfig(keep_logged_outcome=False),
        as_of=at("30D"),
    )
    assert np.isnan(dropped.graded.loc[0, "outcome"])


# ---------------------------------------------------------------- quarantine
def test_events_that_match_no_call_are_quarantined_with_reasons(tmp_path):
    calls = calls_frame(tmp_path, call_rows())
    events = events_frame(
        [
            {"timestamp": at("1h"), "event": "thumbs_up", "request_id": "nope"},
            {"timestamp": at("1h"), "event": "thumbs_up", "session_id": "ghost"},
            {"timestamp": at("20D"), "event": "thumbs_up", "request_id": "r2"},
            pr_event("pr_merged", "1D", "acme/other#9"),
            opened("s-without-calls", "acme/pay#5"),
            pr_event("pr_merged", "1D", "acme/pay#5"),
            {"timestamp": at("1h"), "event": "thumbs_down", "request_id": "r1"},
        ]
    )
    result = grade(calls, events, as_of=at("30D"))
    reasons = dict(
        zip(
            result.quarantined["source"].str.rsplit(":").str[-1].astype(int),
            result.quarantined["quarantine_reason"],
            strict=True,
        )
    )
    assert reasons[1] == "no call has request_id nope"
    assert reasons[2] == "no call has session_id ghost"
    assert reasons[3] == "thumbs_up is outside windows.thumbs_up (7D) of every call it names"
    assert reasons[4] == "no pr_opened event links PR acme/other#9 to a session"
    assert "session with no calls" in reasons[5]
    assert "linked only to sessions with no calls" in reasons[6]
    assert 7 not in reasons  # used
    assert result.counts["events"] == {"n": 7, "used": 1, "after_as_of": 0, "quarantined": 6}
    assert len(result.graded) == 3  # every call kept


# -------------------------------------------------------------------- retries
def retry_rows():
    return [
        {
            "request_id": "a",
            "prompt": "How do I  reverse a list in Python?",
            "session_id": "s",
            "timestamp": at("0min"),
        },
        {
            "request_id": "b",
            "prompt": "how do i reverse a list in python",
            "session_id": "s",
            "timestamp": at("2min"),
        },
        {
            "request_id": "c",
            "prompt": "How do I reverse a list in Python?",
            "session_id": "other",
            "timestamp": at("3min"),
        },
        {
            "request_id": "d",
            "prompt": "Summarise this contract for me.",
            "user": "u",
            "timestamp": at("0min"),
        },
        {
            "request_id": "e",
            "prompt": "Summarise this contract for me!",
            "user": "u",
            "timestamp": at("30min"),
        },
        {
            "request_id": "f",
            "prompt": "Translate 'hello' to French",
            "user": "v",
            "timestamp": at("0min"),
        },
        {
            "request_id": "g",
            "prompt": "Write a poem about the sea",
            "user": "v",
            "timestamp": at("1min"),
        },
    ]


def test_retries_are_found_in_the_call_log(tmp_path):
    calls = calls_frame(tmp_path, retry_rows())
    found = detect_retries(calls)
    # a: same session, near-identical, 2 minutes later; c is another session, e came
    # 30 minutes later (outside 10min), g is a different prompt
    assert found.to_dict(orient="records") == [{"call": 0, "retried_by": "b"}]
    result = grade(calls, events_frame([]), as_of=at("30D"))
    assert result.graded.loc[0, ["outcome", "outcome_source"]].tolist() == [0.0, "retry_in_logs:b"]
    assert result.counts["retries_found_in_logs"] == 1


def test_an_agent_tool_loop_is_not_a_retry(tmp_path):
    """The same last user turn with more messages after it continues the chat; the same
    question sent again (regenerate: the same messages) is a retry."""
    ask = [{"role": "user", "content": "Fix the failing test in billing/"}]
    step = [
        *ask,
        {"role": "assistant", "content": "Running the tests."},
        {"role": "tool", "content": "1 failed"},
    ]
    rows = [
        {"request_id": "a1", "messages": ask, "session_id": "agent", "timestamp": at("0min")},
        {"request_id": "a2", "messages": step, "session_id": "agent", "timestamp": at("1min")},
        {"request_id": "c1", "messages": ask, "session_id": "chat", "timestamp": at("0min")},
        {"request_id": "c2", "messages": ask, "session_id": "chat", "timestamp": at("1min")},
    ]
    found = detect_retries(calls_frame(tmp_path, rows))
    assert found.to_dict(orient="records") == [{"call": 2, "retried_by": "c2"}]


def test_the_retry_window_and_similarity_come_from_the_config(tmp_path):
    calls = calls_frame(tmp_path, retry_rows())
    wide = GradingConfig(windows={"retry": "1h"})
    assert detect_retries(calls, wide)["call"].tolist() == [0, 3]
    off = GradingConfig(detect_retries=False)
    assert np.isnan(grade(calls, events_frame([]), off, as_of=at("30D")).graded.loc[0, "outcome"])


def test_prompt_similarity_is_normalised_indel_similarity():
    assert prompt_similarity("abc", "abc") == 1.0
    assert prompt_similarity("abcd", "abce") == pytest.approx(0.75)
    assert prompt_similarity("", "abc") == 0.0


# ---------------------------------------------------------------------- config
def test_toml_overrides_scores_windows_and_precedence(tmp_path):
    path = tmp_path / "grading.toml"
    path.write_text(
        'precedence = ["feedback", "pr"]\n'
        "expired_outcome = 0.25\n"
        "[scores]\npr_merged_after_changes_requested = 0.4\n"
        '[windows]\npr_merged = "30D"\n'
        "[retry]\nsimilarity = 0.8\n"
    )
    config = GradingConfig.from_toml(path)
    assert config.scores["pr_merged_after_changes_requested"] == 0.4
    assert config.scores["pr_merged"] == 1.0  # left out: the default
    assert config.window("pr_merged") == pd.Timedelta(days=30)
    assert config.precedence == ("feedback", "pr")
    calls = pr_calls(tmp_path)
    events = events_frame(
        [opened(), pr_event("review_changes_requested", "1D"), pr_event("pr_merged", "20D")]
    )
    # merged 20 days after the calls: outside the default 14D, inside the TOML's 30D
    assert outcomes(grade(calls, events, as_of=at("60D")))["s1-a"] is None
    assert outcomes(grade(calls, events, config, as_of=at("60D")))["s1-a"] == 0.4
    assert GradingConfig.from_dict(config.to_dict()) == config


BAD_CONFIGS = [
    ("[scores]\npr_merge = 1.0\n", r"Unknown key\(s\) \['pr_merge'\]"),
    ("[scores]\npr_merged = 2\n", r"scores.pr_merged must be a number in \[0, 1\]"),
    ('[windows]\nretry = "soon"\n', "windows.retry must be a positive duration"),
    ('precedence = ["pr", "vibes"]\n', "precedence must list distinct groups"),
    ('[pr]\ncombine = "median"\n', "pr_combine must be one of"),
    ("colour = 1\n", r"Unknown key\(s\) \['colour'\]"),
    ("[scores\n", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD_CONFIGS)
def test_a_bad_config_says_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "grading.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        GradingConfig.from_toml(path)


def test_the_default_toml_in_the_docs_is_the_default_config():
    text = (ROOT / "docs" / "grading.md").read_text()
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    assert GradingConfig.from_dict(tomllib.loads(block)) == GradingConfig()
    # every key of the config is shown (expired_outcome commented out: its default is None)
    shown = {line.split(" = ")[0].lstrip("# ") for line in block.splitlines() if " = " in line}
    assert shown == {
        line.split(" = ")[0]
        for line in GradingConfig(expired_outcome=0.0).to_toml().splitlines()
        if " = " in line
    }


# -------------------------------------------------------------------- real data
def test_grading_the_shipped_log_keeps_every_call_and_its_outcome():
    read = read_call_logs(ROOT / "data" / "swebench_verified" / "calls.parquet")
    calls = read.frame
    result = grade(read, events_frame([]), as_of="2030-01-01")  # a reader's result works too
    assert len(result.graded) == len(calls)
    assert result.graded["request_id"].tolist() == calls["request_id"].tolist()
    np.testing.assert_array_equal(result.graded["outcome"], calls["outcome"])
    assert result.counts["logged"] == int(calls["outcome"].notna().sum())
