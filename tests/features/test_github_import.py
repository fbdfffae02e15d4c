"""GitHub import (features/importers/github.py) on a fixture in the exact shape of
`gh api 'repos/O/R/pulls?state=all'` and `gh api repos/O/R/pulls/N/reviews`. The
command line, end to end: tests/training/test_grade_command.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from features.events import EventsError
from features.importers import IMPORTERS
from features.importers.github import import_github, session_id_of
from features.importers.sessions import DEFAULT_SESSION_PATTERN

FIXTURE = Path(__file__).parent / "fixtures" / "github"
PULLS = FIXTURE / "pulls.json"
REVIEWS = sorted(FIXTURE.glob("reviews-*.json"))


def events_by_pr(result) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in result.frame.itertuples():
        out.setdefault(row.pr, []).append(row.event)
    return out


def test_the_fixture_is_in_the_shape_gh_api_returns():
    pulls = json.loads(PULLS.read_text())
    assert isinstance(pulls, list) and len(pulls) == 5
    for pull in pulls:
        assert {"number", "state", "created_at", "closed_at", "merged_at", "body"} <= set(pull)
        assert pull["base"]["repo"]["full_name"] == "acme/pay"
        assert {"ref", "sha"} <= set(pull["head"]) and "login" in pull["user"]
        assert "merged" not in pull  # the list endpoint has no merged flag
    for path in REVIEWS:
        for review in json.loads(path.read_text()):
            assert {"id", "state", "pull_request_url", "commit_id"} <= set(review)


def test_pull_requests_and_reviews_become_events():
    result = import_github(PULLS, REVIEWS)
    assert events_by_pr(result) == {
        "acme/pay#101": ["pr_opened", "review_approved", "pr_merged"],
        "acme/pay#102": [
            "pr_opened",
            "review_changes_requested",
            "review_approved",
            "pr_merged",
        ],
        "acme/pay#103": ["pr_opened", "review_changes_requested", "pr_closed_unmerged"],
        "acme/pay#104": ["pr_opened"],
    }
    opened = result.frame[result.frame["event"] == "pr_opened"].set_index("pr")["session_id"]
    assert opened.to_dict() == {
        "acme/pay#101": "7f3a9c2e41",  # head branch agent/session-7f3a9c2e41
        "acme/pay#102": "9b1d44e0c7",  # body "Session: 9b1d44e0c7"
        "acme/pay#103": "a1b2c3d4e5",  # head branch claude/sess_a1b2c3d4e5
        "acme/pay#104": "c0ffee1234",
    }
    merged = result.frame[(result.frame["event"] == "pr_merged")]
    assert merged["timestamp"].dt.strftime("%Y-%m-%dT%H:%M").tolist() == [
        "2026-01-06T09:00",
        "2026-01-08T10:00",
    ]
    assert result.prs_without_session == ("acme/pay#105",)
    assert result.reviews_skipped == {"COMMENTED": 1, "PENDING": 1}
    assert result.to_dict()["prs_without_session"] == 1


def test_paginated_output_and_a_repeated_export_are_read_once(tmp_path):
    pulls = json.loads(PULLS.read_text())
    paginated = tmp_path / "pulls.json"
    paginated.write_text(json.dumps(pulls[:2]) + json.dumps(pulls[2:]))  # gh api --paginate
    result = import_github([paginated, PULLS], REVIEWS)
    assert len(result.frame) == len(import_github(PULLS, REVIEWS).frame)
    assert result.n_duplicates == 7  # the PR events; reviews given once
    assert result.prs_without_session == ("acme/pay#105",)


def test_a_merged_revert_pr_reverts_the_pr_it_names(tmp_path):
    pulls = json.loads(PULLS.read_text())
    revert = copy.deepcopy(pulls[-1])  # #101's shape
    revert.update(
        number=106,
        title='Revert "Fix rounding in currency conversion"',
        body="Reverts acme/pay#101",
        merged_at="2026-01-07T15:00:00Z",
        closed_at="2026-01-07T15:00:00Z",
    )
    revert["head"]["ref"] = "revert-101-agent/fix-rounding"
    path = tmp_path / "pulls.json"
    path.write_text(json.dumps([revert, *pulls]))
    result = import_github(path)
    reverted = result.frame[result.frame["event"] == "pr_reverted"]
    assert reverted[["pr", "event_id"]].values.tolist() == [
        ["acme/pay#101", "github:acme/pay#101:reverted-by:acme/pay#106"]
    ]


@pytest.mark.parametrize(
    ("ref", "body", "expected"),
    [
        ("agent/session-7f3a9c2e41", "", "7f3a9c2e41"),
        ("feature/x", "Session: 0b7c9e2a-11aa", "0b7c9e2a-11aa"),
        ("feature/session-management", "Improves session handling.", None),  # no digit
        ("main", None, None),
    ],
)
def test_the_session_pattern(ref, body, expected):
    import re

    pull = {"head": {"ref": ref}, "body": body}
    assert session_id_of(pull, re.compile(DEFAULT_SESSION_PATTERN)) == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "is not the JSON `gh api` writes"), ("[1, 2]", "not JSON objects")],
)
def test_a_file_that_is_not_a_gh_api_answer_is_one_clear_error(tmp_path, content, message):
    path = tmp_path / "pulls.json"
    path.write_text(content)
    with pytest.raises(EventsError, match=message):
        import_github(path)


def test_sources_are_a_registry():
    assert IMPORTERS["github"].produces == "events"
    assert IMPORTERS["github"].load() is import_github
