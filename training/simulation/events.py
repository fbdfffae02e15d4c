"""Delayed outcome events of simulated calls (DESIGN.md section 3), which
``outcome-router grade`` turns back into each call's outcome.

One event row has ``timestamp``, ``event``, one key among ``request_id``,
``decision_id``, ``session_id`` and ``pr`` (``pr_opened`` carries both ``session_id``
and ``pr``), ``value`` for ``judge_score`` and ``event_id``. Every event comes after
its call. The chosen model's true outcome decides the events:

- ``tests``: a 0/1 outcome as ``tests_passed`` (1) or ``tests_failed`` (0), keyed by
  ``request_id``, 30 s to 20 min after the call (a fractional one as ``judge_score``).
  A share of failed calls is also retried by its user (``retry``, 1 to 5 min after
  the call), which agrees with the failure.
- ``judge``: every outcome as ``judge_score`` with ``value`` = the outcome,
  keyed by ``request_id``, 1 to 60 min after the call.
- ``pr`` (agent sessions, binary outcomes): ``pr_opened`` (``session_id`` and
  ``pr``) 10 min to 2 h after the call; then a review 1 to 48 h later; then
  ``review_approved`` and ``pr_merged`` (1, merged on first review) 30 min to 24 h
  after it, or ``review_changes_requested`` and ``pr_closed_unmerged`` (0) 1 to 5 days
  after it. A fractional outcome in a ``pr`` log is graded by ``judge_score``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Event styles: how a simulated call's outcome is revealed (``auto``: ``pr`` for agent
#: logs, else ``tests``).
EVENT_STYLES = ("auto", "tests", "judge", "pr")
#: Task tags of agent logs, whose outcome ``auto`` reveals through PR events.
AGENT_TASKS = frozenset({"swe-bench"})
#: Columns of the events file, in order.
EVENT_COLUMNS = ("timestamp", "event", "request_id", "session_id", "pr", "value", "event_id")


def resolve_style(style: str, tasks: pd.Series) -> str:
    """``auto`` becomes ``pr`` when every call's task is an agent task (`AGENT_TASKS`),
    else ``tests`` (which reveals fractional outcomes by ``judge_score``)."""
    if style not in EVENT_STYLES:
        raise ValueError(f"Unknown event style {style!r}; expected one of {list(EVENT_STYLES)}.")
    if style == "auto" and len(tasks) and tasks.isin(AGENT_TASKS).all():
        return "pr"
    return "tests" if style == "auto" else style


def is_binary(outcome: np.ndarray) -> np.ndarray:
    """True where an outcome is exactly 0 or 1."""
    return (outcome == 0.0) | (outcome == 1.0)


def _minutes(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    return (rng.uniform(low, high, size=n) * 60_000).astype(np.int64).astype("timedelta64[ms]")


def outcome_events(
    calls: pd.DataFrame,
    outcome: np.ndarray,
    style: str,
    rng: np.random.Generator,
    *,
    retry_share: float = 0.1,
) -> pd.DataFrame:
    """The events that reveal each call's ``outcome``.

    Parameters
    ----------
    calls : DataFrame
        Simulated calls with ``request_id``, ``session_id``, ``team`` and
        ``timestamp`` (datetime64).
    outcome : ndarray of float, shape (n_calls,)
        The chosen model's true outcome of each call, in ``calls`` order.
    style : {"tests", "judge", "pr"}
        Resolved style (`resolve_style`). ``tests`` reveals a fractional outcome by
        ``judge_score``; ``judge`` reveals every outcome by ``judge_score``; ``pr``
        requires one session per call.
    retry_share : float in [0, 1], default=0.1
        Share of failed calls (tests style) that also get a ``retry`` event.

    Returns
    -------
    DataFrame
        `EVENT_COLUMNS`, sorted by time, ``event_id`` ``evt-000001``...
    """
    if not 0.0 <= retry_share <= 1.0:
        raise ValueError(f"retry_share must be in [0, 1], got {retry_share!r}.")
    if style not in ("tests", "judge", "pr"):
        raise ValueError(
            f"Expected a resolved event style (tests, judge or pr), got {style!r}; see "
            "resolve_style."
        )
    outcome = np.asarray(outcome, dtype=np.float64)
    stamp = calls["timestamp"].to_numpy().astype("datetime64[ms]")
    request = calls["request_id"].to_numpy(dtype=object)
    binary = is_binary(outcome)
    parts: list[pd.DataFrame] = []

    def add(when, event, **keys) -> None:
        parts.append(pd.DataFrame({"timestamp": when, "event": event, **keys}))

    judged = ~binary if style != "judge" else np.ones(len(outcome), dtype=bool)
    if judged.any():
        add(
            stamp[judged] + _minutes(rng, 1, 60, int(judged.sum())),
            "judge_score",
            request_id=request[judged],
            value=outcome[judged],
        )
    tested = binary & ~judged
    if style == "tests" and tested.any():
        _test_events(add, stamp[tested], request[tested], outcome[tested], rng, retry_share)
    if style == "pr" and tested.any():
        sessions = calls["session_id"].to_numpy(dtype=object)[tested]
        if len(set(sessions.tolist())) != len(sessions):
            raise ValueError(
                "PR events need one call per session (a PR grades every call of its "
                "session); simulate agent logs with one prompt per session."
            )
        _pr_events(
            add,
            stamp[tested],
            sessions,
            calls["team"].to_numpy(dtype=object)[tested],
            outcome[tested],
            rng,
        )
    if not parts:
        return pd.DataFrame(columns=list(EVENT_COLUMNS))
    events = pd.concat(parts, ignore_index=True).reindex(columns=list(EVENT_COLUMNS))
    events = events.sort_values(["timestamp", "event"], kind="stable").reset_index(drop=True)
    events["event_id"] = [f"evt-{i + 1:06d}" for i in range(len(events))]
    return events


def _test_events(add, stamp, request, outcome, rng, retry_share: float) -> None:
    passed = outcome == 1.0
    when = stamp + _minutes(rng, 0.5, 20, len(stamp))
    add(when, np.where(passed, "tests_passed", "tests_failed"), request_id=request)
    retried = ~passed & (rng.random(len(stamp)) < retry_share)
    if retried.any():
        add(
            stamp[retried] + _minutes(rng, 1, 5, int(retried.sum())),
            "retry",
            request_id=request[retried],
        )


def _pr_events(add, stamp, sessions, teams, outcome, rng) -> None:
    n = len(stamp)
    repos = np.array([t if "/" in str(t) else f"acme/{t}" for t in teams], dtype=object)
    prs = np.array([f"{repo}#{1000 + i}" for i, repo in enumerate(repos)], dtype=object)
    merged = outcome == 1.0
    opened = stamp + _minutes(rng, 10, 120, n)
    add(opened, "pr_opened", session_id=sessions, pr=prs)
    reviewed = opened + _minutes(rng, 60, 48 * 60, n)
    add(
        reviewed,
        np.where(merged, "review_approved", "review_changes_requested"),
        pr=prs,
    )
    closed = reviewed + np.where(
        merged, _minutes(rng, 30, 24 * 60, n), _minutes(rng, 24 * 60, 5 * 24 * 60, n)
    )
    add(closed, np.where(merged, "pr_merged", "pr_closed_unmerged"), pr=prs)
