"""GitHub pull requests and reviews -> outcome events (docs/grading.md "Importing").

Reads the JSON the GitHub REST API returns, as saved by the GitHub CLI:

- ``gh api 'repos/O/R/pulls?state=all' [--paginate] > pulls.json``: "List pull
  requests", an array of pull-request objects; the fields read are ``number``,
  ``state``, ``created_at``, ``closed_at``, ``merged_at`` (null unless merged; the list
  has no ``merged`` flag), ``head.ref``, ``base.repo.full_name``, ``body``,
  ``html_url`` and ``user.login``.
- ``gh api repos/O/R/pulls/N/reviews > reviews-N.json``: "List reviews for a pull
  request", an array of reviews with ``id``, ``state`` (APPROVED, CHANGES_REQUESTED,
  COMMENTED, DISMISSED, PENDING), ``submitted_at`` and ``pull_request_url``
  (``https://api.github.com/repos/O/R/pulls/N``).

``--paginate`` prints one array per page back to back; every array is read.

Each PR becomes ``pr_opened`` (when a session id is found, see `DEFAULT_SESSION_PATTERN`),
then ``pr_merged`` or ``pr_closed_unmerged``. A merged PR whose body starts with
GitHub's revert text ``Reverts O/R#N`` adds ``pr_reverted`` for PR N at its merge time.
APPROVED and CHANGES_REQUESTED reviews become ``review_approved`` and
``review_changes_requested``; the others are counted and skipped.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from features.events import EVENTS_DOC, EventsError, validate_events
from features.importers.sessions import DEFAULT_SESSION_PATTERN

__all__ = ["DEFAULT_SESSION_PATTERN", "GitHubImport", "import_github", "session_id_of"]

#: The body GitHub's "Revert" button writes on the reverting PR.
REVERT_PATTERN = re.compile(r"^\s*Reverts\s+([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)#([0-9]+)")
PULL_URL_PATTERN = re.compile(r"/repos/([^/]+)/([^/]+)/pulls/([0-9]+)/?$")


@dataclass(frozen=True)
class GitHubImport:
    """Events read from GitHub exports.

    Attributes
    ----------
    frame : DataFrame
        Valid events (`features.events.EventsRead.frame` columns).
    n_pulls : int
        Pull requests read.
    prs_without_session : tuple of str
        PRs (``O/R#N``) whose head branch and body name no session: their events are
        written, but no call can be graded by them until a ``pr_opened`` links them.
    reviews_skipped : dict of str to int
        Reviews not turned into events, by state (COMMENTED, DISMISSED, PENDING).
    n_duplicates : int
        Events read twice (the same PR or review in two files), kept once.
    """

    frame: pd.DataFrame
    n_pulls: int
    prs_without_session: tuple[str, ...]
    reviews_skipped: dict[str, int]
    n_duplicates: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_pulls": self.n_pulls,
            "n_events": len(self.frame),
            "by_event": {str(k): int(v) for k, v in self.frame["event"].value_counts().items()},
            "prs_without_session": len(self.prs_without_session),
            "prs_without_session_examples": list(self.prs_without_session[:5]),
            "reviews_skipped": self.reviews_skipped,
            "duplicates_dropped": self.n_duplicates,
        }


def read_json_arrays(path: str | Path) -> list[dict[str, Any]]:
    """Objects of a JSON file holding one array, or several back to back (``gh api
    --paginate``), or one object.

    Raises
    ------
    EventsError
        If the file is missing or not such JSON; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise EventsError(
            path, "no such file", "Check the path (save it with `gh api ... > FILE`)."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EventsError(path, f"cannot be read ({exc})", "Save it again as UTF-8 JSON.") from None
    decoder, items, pos = json.JSONDecoder(), [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise EventsError(
                path,
                f"is not the JSON `gh api` writes ({exc})",
                "Save the answer of `gh api 'repos/O/R/pulls?state=all'` as it is.",
            ) from None
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, dict) for v in values):
            raise EventsError(path, "holds values that are not JSON objects", "Check the file.")
        items.extend(values)
    return items


def session_id_of(pull: dict[str, Any], pattern: re.Pattern[str]) -> str | None:
    """The session id named in the PR's head branch, else in its body; None if none."""
    head = (pull.get("head") or {}).get("ref") or ""
    for text in (head, pull.get("body") or ""):
        for match in pattern.finditer(text):
            found = match.group(1) if pattern.groups else match.group(0)
            if found and any(c.isdigit() for c in found):
                return found.strip("-")
    return None


def _pr_ref(pull: dict[str, Any], where: str) -> str:
    repo = ((pull.get("base") or {}).get("repo") or {}).get("full_name")
    number = pull.get("number")
    if not repo or number is None:
        url = pull.get("url") or ""
        match = PULL_URL_PATTERN.search(url)
        if not match:
            raise ValueError(
                f"{where}: a pull request needs number and base.repo.full_name "
                "(the objects of `gh api 'repos/O/R/pulls?state=all'`)"
            )
        return f"{match.group(1)}/{match.group(2)}#{match.group(3)}"
    return f"{repo}#{number}"


def import_github(
    pulls: str | Path | Sequence[str | Path],
    reviews: Sequence[str | Path] = (),
    *,
    session_pattern: str = DEFAULT_SESSION_PATTERN,
) -> GitHubImport:
    """Turn GitHub pull requests (and their reviews) into outcome events.

    Parameters
    ----------
    pulls : path or list of paths
        Answers of ``gh api 'repos/O/R/pulls?state=all'``. A file of reviews given here
        is recognised (its objects have ``pull_request_url``) and read as reviews.
    reviews : list of paths
        Answers of ``gh api repos/O/R/pulls/N/reviews``.
    session_pattern : str
        Regular expression searched in ``head.ref``, then ``body``; its first group (or
        whole match) is the session id that ``pr_opened`` links to the PR.
    """
    try:
        pattern = re.compile(session_pattern)
    except re.error as exc:
        raise ValueError(f"--session-pattern is not a regular expression: {exc}") from None
    paths = [pulls] if isinstance(pulls, str | Path) else list(pulls)
    paths += list(reviews)
    rows: list[dict[str, Any]] = []
    no_session: list[str] = []
    skipped: Counter[str] = Counter()
    n_pulls = 0
    for path in paths:
        for i, item in enumerate(read_json_arrays(path), 1):
            where = f"{path}:{i}"
            if "pull_request_url" in item:
                rows.extend(_review_events(item, where, skipped))
                continue
            n_pulls += 1
            pr = _pr_ref(item, where)
            rows.extend(_pull_events(item, pr, pattern, no_session, where))
    frame, bad = validate_events(rows, "github")
    n_duplicates = sum(b["quarantine_reason"].startswith("duplicate event_id") for b in bad)
    bad = [b for b in bad if not b["quarantine_reason"].startswith("duplicate event_id")]
    if bad:
        first = bad[0]
        raise EventsError(
            first.get("source", "github"),
            f"{len(bad)} events built from the export are invalid, e.g. "
            f"{first['quarantine_reason']}",
            f"Check that the files are `gh api` answers (format: {EVENTS_DOC}).",
        )
    return GitHubImport(
        frame=frame.sort_values("timestamp", kind="stable").reset_index(drop=True),
        n_pulls=n_pulls,
        prs_without_session=tuple(dict.fromkeys(no_session)),
        reviews_skipped=dict(skipped),
        n_duplicates=n_duplicates,
    )


def _pull_events(pull, pr, pattern, no_session, where) -> list[dict[str, Any]]:
    events = []
    session = session_id_of(pull, pattern)
    if session is None:
        no_session.append(pr)
    elif pull.get("created_at"):
        events.append(_event(pull["created_at"], "pr_opened", pr, f"{pr}:opened", where, session))
    if pull.get("merged_at"):
        events.append(_event(pull["merged_at"], "pr_merged", pr, f"{pr}:merged", where))
        match = REVERT_PATTERN.match(pull.get("body") or "")
        if match:
            target = f"{match.group(1)}#{match.group(2)}"
            events.append(
                _event(
                    pull["merged_at"], "pr_reverted", target, f"{target}:reverted-by:{pr}", where
                )
            )
    elif pull.get("state") == "closed" and pull.get("closed_at"):
        events.append(_event(pull["closed_at"], "pr_closed_unmerged", pr, f"{pr}:closed", where))
    return events


def _review_events(review, where, skipped) -> list[dict[str, Any]]:
    state = str(review.get("state") or "").upper()
    kind = {"APPROVED": "review_approved", "CHANGES_REQUESTED": "review_changes_requested"}
    match = PULL_URL_PATTERN.search(review.get("pull_request_url") or "")
    if state not in kind or not review.get("submitted_at") or not match:
        skipped[state or "no state"] += 1
        return []
    pr = f"{match.group(1)}/{match.group(2)}#{match.group(3)}"
    event_id = f"{pr}:review:{review.get('id')}"
    return [_event(review["submitted_at"], kind[state], pr, event_id, where)]


def _event(timestamp, kind, pr, event_id, where, session_id=None) -> dict[str, Any]:
    return {
        "timestamp": timestamp,
        "event": kind,
        "pr": pr,
        "session_id": session_id,
        "event_id": f"github:{event_id}",
        "_line": where,
    }
