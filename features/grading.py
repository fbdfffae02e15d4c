"""Grading: outcome events -> the ``outcome`` of each logged call (docs/grading.md).

Outcomes arrive late and indirectly: a PR merges days after the calls that wrote it,
a reviewer asks for changes, a user presses thumbs-down or sends the same prompt again.
`grade` joins such events (`features.events`) to the calls they are about, within each
kind's attribution window, and scores them by a `GradingConfig` (TOML, defaults here).

Rules, in the order of `GradingConfig.precedence` (the first group with a decisive
grade sets the outcome; the others are ignored for that call):

- ``pr``: a PR's final state grades every call of the session(s) linked to it by
  ``pr_opened``, if it was merged or closed within the window of the call. Merged on
  first review > merged after changes were requested; closed unmerged and reverted
  within the revert window are 0.
- ``feedback``: the call's latest thumbs (a person) wins over judge scores (mean).
- ``checks``: per family (CI, tests) the latest result; a pass after a failure scores
  less than a clean pass; the worst family counts.
- ``retry``: a ``retry`` event, or a retry found in the call log itself (same session,
  or user when there is none, sending a near-identical prompt within the window): the
  earlier call was not good enough.

A call with no decisive event while a window that could still reach it is open at
``as_of`` is **pending** (null), never failed. Every call is kept; events that match no
call are returned with the reason. Vectorised with pandas merges and groupbys: 100k
calls grade in seconds (README, docs/grading.md).
"""

from __future__ import annotations

import difflib
import re
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.call_log_files import plain_value
from features.events import CALL_KINDS, EVENT_COLUMNS, KEYS
from features.routing_text import TEXT_SOURCES, routing_text

try:  # listed in pyproject; difflib gives the same measure, slower and approximate
    from rapidfuzz.fuzz import ratio as _rapidfuzz_ratio
except ImportError:  # pragma: no cover - depends on the environment
    _rapidfuzz_ratio = None

__all__ = [
    "DEFAULT_SCORES",
    "DEFAULT_WINDOWS",
    "TIERS",
    "GradeResult",
    "GradingConfig",
    "detect_retries",
    "grade",
    "prompt_similarity",
    "write_graded",
]

#: Groups of events that can decide an outcome, in the default order of precedence.
TIERS = ("pr", "feedback", "checks", "retry")
PR_COMBINE = ("mean", "min", "max")

#: Score of each kind, and of the two combinations (docs/grading.md "Scores").
DEFAULT_SCORES: dict[str, float] = {
    "pr_merged": 1.0,
    "pr_merged_after_changes_requested": 0.7,
    "pr_closed_unmerged": 0.0,
    "pr_reverted": 0.0,
    "ci_passed": 1.0,
    "ci_failed": 0.0,
    "tests_passed": 1.0,
    "tests_failed": 0.0,
    "checks_passed_after_failure": 0.7,
    "thumbs_up": 1.0,
    "thumbs_down": 0.0,
    "retry": 0.0,
}
#: How long after the call an event of each kind still counts (``pr_reverted``: after
#: the merge). Text that `pandas.Timedelta` reads: "14D", "36h", "10min".
DEFAULT_WINDOWS: dict[str, str] = {
    "pr_merged": "14D",
    "pr_closed_unmerged": "14D",
    "pr_reverted": "7D",
    "ci_passed": "1D",
    "ci_failed": "1D",
    "tests_passed": "1D",
    "tests_failed": "1D",
    "thumbs_up": "7D",
    "thumbs_down": "7D",
    "judge_score": "7D",
    "retry": "10min",
}
_FEEDBACK = ("thumbs_up", "thumbs_down", "judge_score")
_CHECKS = ("ci_passed", "ci_failed", "tests_passed", "tests_failed")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class GradingConfig:
    """How events become outcomes; every field is documented in docs/grading.md.

    Parameters
    ----------
    scores : dict of str to float, default=DEFAULT_SCORES
        Score in [0, 1] of each kind and combination; a TOML file overrides any subset.
    windows : dict of str to str, default=DEFAULT_WINDOWS
        Attribution window of each kind, as `pandas.Timedelta` text.
    precedence : tuple of str, default=TIERS
        Order in which groups of events decide; a group left out never decides.
    pr_combine : {"mean", "min", "max"}, default="mean"
        How the scores of several PRs linked to one call's session combine.
    wait_for_revert_window : bool, default=False
        Keep a merged PR's calls pending until its revert window has closed.
    clock_skew : str, default="5min"
        How long *before* a call an event may be stamped and still count (clocks of
        the gateway and of GitHub or a feedback widget differ).
    keep_logged_outcome : bool, default=True
        A call with no decisive event keeps the ``outcome`` its log already had.
    expired_outcome : float or None, default=None
        Outcome of a call whose windows all closed without an event; None keeps it null.
    detect_retries : bool, default=True
        Look for retries in the call log itself (`detect_retries`).
    retry_similarity : float, default=0.9
        Least `prompt_similarity` of two prompts for the later one to be a retry.
    retry_text : {"last_user", "all"}, default="last_user"
        Which text of a call is compared (`features.routing_text.routing_text`).
    retry_max_chars : int, default=2000
        Characters of each normalised text compared (the start of the prompt).
    """

    scores: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SCORES))
    windows: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_WINDOWS))
    precedence: tuple[str, ...] = TIERS
    pr_combine: str = "mean"
    wait_for_revert_window: bool = False
    clock_skew: str = "5min"
    keep_logged_outcome: bool = True
    expired_outcome: float | None = None
    detect_retries: bool = True
    retry_similarity: float = 0.9
    retry_text: str = "last_user"
    retry_max_chars: int = 2000

    def __post_init__(self) -> None:
        object.__setattr__(self, "scores", {**DEFAULT_SCORES, **dict(self.scores)})
        object.__setattr__(self, "windows", {**DEFAULT_WINDOWS, **dict(self.windows)})
        object.__setattr__(self, "precedence", tuple(self.precedence))
        _check_known("scores", self.scores, DEFAULT_SCORES)
        _check_known("windows", self.windows, DEFAULT_WINDOWS)
        for name, score in self.scores.items():
            _check_unit(f"scores.{name}", score)
        for name, text in self.windows.items():
            _timedelta(f"windows.{name}", text)
        _timedelta("clock_skew", self.clock_skew, allow_zero=True)
        unknown = [t for t in self.precedence if t not in TIERS]
        if unknown or len(set(self.precedence)) != len(self.precedence):
            raise ValueError(
                f"precedence must list distinct groups among {list(TIERS)}, "
                f"got {list(self.precedence)}."
            )
        if self.pr_combine not in PR_COMBINE:
            raise ValueError(f"pr_combine must be one of {PR_COMBINE}, got {self.pr_combine!r}.")
        if self.expired_outcome is not None:
            _check_unit("expired_outcome", self.expired_outcome)
        if not 0 < self.retry_similarity <= 1:
            raise ValueError(f"retry_similarity must be in (0, 1], got {self.retry_similarity}.")
        if self.retry_text not in TEXT_SOURCES:
            raise ValueError(f"retry_text must be one of {TEXT_SOURCES}, got {self.retry_text!r}.")
        if int(self.retry_max_chars) < 1:
            raise ValueError(f"retry_max_chars must be >= 1, got {self.retry_max_chars}.")

    def window(self, kind: str) -> pd.Timedelta:
        """The attribution window of ``kind`` as a Timedelta."""
        return pd.Timedelta(self.windows[kind])

    # ------------------------------------------------------------------ TOML
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GradingConfig:
        """Read the TOML layout (docs/grading.md): top-level keys and the sections
        ``[scores]``, ``[windows]``, ``[pr]`` and ``[retry]``; missing keys keep defaults."""
        data = dict(data)
        known_top = {"precedence", "clock_skew", "keep_logged_outcome", "expired_outcome"}
        sections = {
            "scores": None,
            "windows": None,
            "pr": {"combine": "pr_combine", "wait_for_revert_window": "wait_for_revert_window"},
            "retry": {
                "detect_in_logs": "detect_retries",
                "similarity": "retry_similarity",
                "text": "retry_text",
                "max_chars": "retry_max_chars",
            },
        }
        _check_known("the grading config", data, {*known_top, *sections})
        kwargs: dict[str, Any] = {k: data[k] for k in known_top if k in data}
        for name, mapping in sections.items():
            section = data.get(name, {})
            if not isinstance(section, Mapping):
                raise ValueError(f"[{name}] must be a table of keys, got {section!r}.")
            if mapping is None:
                kwargs[name] = section
                continue
            _check_known(f"[{name}]", section, mapping)
            kwargs.update({mapping[k]: v for k, v in section.items()})
        return cls(**kwargs)

    @classmethod
    def from_toml(cls, path: str | Path) -> GradingConfig:
        """Read a grading config file; a missing key keeps its default."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML ({exc}). See docs/grading.md.") from None
        try:
            return cls.from_dict(data)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: {exc} See docs/grading.md.") from None

    def to_dict(self) -> dict[str, Any]:
        """The TOML layout of `from_dict` (``expired_outcome`` left out when None)."""
        out: dict[str, Any] = {
            "precedence": list(self.precedence),
            "clock_skew": self.clock_skew,
            "keep_logged_outcome": self.keep_logged_outcome,
        }
        if self.expired_outcome is not None:
            out["expired_outcome"] = self.expired_outcome
        out["scores"] = dict(self.scores)
        out["windows"] = dict(self.windows)
        out["pr"] = {
            "combine": self.pr_combine,
            "wait_for_revert_window": self.wait_for_revert_window,
        }
        out["retry"] = {
            "detect_in_logs": self.detect_retries,
            "similarity": self.retry_similarity,
            "text": self.retry_text,
            "max_chars": self.retry_max_chars,
        }
        return out

    def to_toml(self) -> str:
        """The config as TOML text that `from_toml` reads back."""
        lines = []
        data = self.to_dict()
        for key, value in data.items():
            if not isinstance(value, dict):
                lines.append(f"{key} = {_toml_value(value)}")
        for key, value in data.items():
            if isinstance(value, dict):
                lines.append(f"\n[{key}]")
                lines.extend(f"{k} = {_toml_value(v)}" for k, v in value.items())
        return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(float(value)) if isinstance(value, float) else str(value)


def _check_known(where: str, given: Mapping[str, Any], known) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f"Unknown key(s) {unknown} in {where}; known keys: {sorted(known)}.")


def _check_unit(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}.")


def _timedelta(name: str, text: Any, allow_zero: bool = False) -> pd.Timedelta:
    try:
        value = pd.Timedelta(text)
    except (ValueError, TypeError):
        value = pd.NaT
    if value is pd.NaT or value < pd.Timedelta(0) or (value == pd.Timedelta(0) and not allow_zero):
        raise ValueError(
            f'{name} must be a positive duration such as "14D", "36h" or "10min", got {text!r}.'
        )
    return value


# ------------------------------------------------------------------------ result
@dataclass(frozen=True)
class GradeResult:
    """What `grade` returns.

    Attributes
    ----------
    graded : DataFrame, shape (n_calls, n_columns + 4)
        Every call, in input order, with ``outcome`` (float in [0, 1], NaN when pending
        or ungraded), ``outcome_source`` (the deciding events, ``kind:key`` joined by
        ``;``), ``outcome_status`` (graded, logged, pending, no_event, expired) and
        ``graded_at`` (``as_of``, ISO 8601).
    quarantined : DataFrame
        Events that match no call: the event's columns, ``source`` and
        ``quarantine_reason``.
    counts : dict
        graded / pending / no_event / expired / logged, ``by_source`` (the deciding
        rule), the
        events used, ignored (after ``as_of``) and quarantined, and retries found.
    as_of : Timestamp
        The time the windows were measured against (UTC).
    """

    graded: pd.DataFrame
    quarantined: pd.DataFrame
    counts: dict[str, Any]
    as_of: pd.Timestamp

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), **self.counts}


# ------------------------------------------------------------------ similarity
def normalise_prompt(text: str, max_chars: int = 2000) -> str:
    """Lower case, runs of whitespace as one space, trimmed, the first ``max_chars``."""
    return _WHITESPACE.sub(" ", text).strip().lower()[:max_chars]


def prompt_similarity(a: str, b: str) -> float:
    """Similarity in [0, 1] of two normalised texts: ``1 - indel_distance / (len(a) +
    len(b))``, i.e. twice the longest common subsequence over the total length
    (rapidfuzz ``fuzz.ratio`` / 100; difflib's ratio where rapidfuzz is missing)."""
    if a == b:
        return 1.0
    if _rapidfuzz_ratio is not None:
        return _rapidfuzz_ratio(a, b) / 100.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()  # pragma: no cover


def detect_retries(calls: pd.DataFrame, config: GradingConfig | None = None) -> pd.DataFrame:
    """Retries found in the call log: the earlier of two near-identical prompts.

    Two calls are a retry pair when they share a ``session_id`` (or, for calls without
    one, a ``user``), the later one started within ``windows.retry`` of the earlier
    one, and `prompt_similarity` of their normalised texts (``retry_text``, first
    ``retry_max_chars`` characters) is at least ``retry_similarity``. A later call that
    continues the earlier one's chat (more messages, the same last user turn: an agent's
    tool loop) is not a retry. Calls without a timestamp, or without session and user,
    are never paired.

    Returns
    -------
    DataFrame with columns ``call`` (position of the earlier call in ``calls``) and
    ``retried_by`` (``request_id`` of the first later call that repeated it).
    """
    config = config or GradingConfig()
    empty = pd.DataFrame({"call": pd.Series(dtype="int64"), "retried_by": pd.Series(dtype=object)})
    if calls.empty:
        return empty
    session = calls["session_id"] if "session_id" in calls else pd.Series(None, index=calls.index)
    user = calls["user"] if "user" in calls else pd.Series(None, index=calls.index)
    group = ("session:" + session.astype("string")).fillna("user:" + user.astype("string"))
    ts = _utc_series(calls["timestamp"]) if "timestamp" in calls else pd.Series(pd.NaT)
    keep = group.notna().to_numpy() & ts.notna().to_numpy()
    if keep.sum() < 2:
        return empty
    positions = np.flatnonzero(keep)
    frame = pd.DataFrame(
        {"call": positions, "group": group.to_numpy()[keep], "t": ts.to_numpy()[keep]}
    ).sort_values(["group", "t", "call"], kind="stable")
    codes = pd.factorize(frame["group"])[0]
    t = frame["t"].dt.tz_convert(None).astype("datetime64[ns]").astype("int64").to_numpy()
    call = frame["call"].to_numpy()
    window = config.window("retry").value
    texts: dict[int, str] = {}

    nothing = np.full(len(calls), None, dtype=object)
    prompts = calls["prompt"].to_numpy(dtype=object) if "prompt" in calls else nothing
    chats = calls["messages"].to_numpy(dtype=object) if "messages" in calls else nothing

    def text(i: int) -> str:
        if i not in texts:
            prompt, messages = prompts[i], chats[i]
            prompt = prompt if isinstance(prompt, str) and prompt else None
            messages = messages if isinstance(messages, list | np.ndarray) else None
            try:
                raw = routing_text(prompt, messages, config.retry_text)
            except (ValueError, TypeError):  # no text: never a retry
                raw = ""
            texts[i] = normalise_prompt(raw, config.retry_max_chars)
        return texts[i]

    turns: dict[int, tuple[int, int]] = {}

    def shape(i: int) -> tuple[int, int]:
        """(number of messages, position of the last user turn); (0, -1) for a prompt."""
        if i not in turns:
            messages = chats[i] if isinstance(chats[i], list | np.ndarray) else []
            users = [k for k, m in enumerate(messages) if m.get("role") == "user"]
            turns[i] = (len(messages), users[-1] if users else -1)
        return turns[i]

    def continues(a: int, b: int) -> bool:
        """Call b carries a's conversation further (an agent's tool loop): same last
        user turn, more messages after it. Not a retry."""
        (na, ua), (nb, ub) = shape(a), shape(b)
        return na > 0 and nb > na and ua == ub

    retried_by = np.full(len(frame), -1)
    threshold = config.retry_similarity
    for lag in range(1, len(frame)):
        i = np.arange(len(frame) - lag)
        j = i + lag
        near = (codes[i] == codes[j]) & (t[j] - t[i] <= window)
        if not near.any():
            break
        for a, b in zip(i[near & (retried_by[i] < 0)], j[near & (retried_by[i] < 0)], strict=True):
            ta, tb = text(int(call[a])), text(int(call[b]))
            total = len(ta) + len(tb)
            if total == 0 or 2 * min(len(ta), len(tb)) / total < threshold:
                continue  # the lengths alone rule it out
            if prompt_similarity(ta, tb) >= threshold and not continues(call[a], call[b]):
                retried_by[a] = call[b]
    found = retried_by >= 0
    request_ids = calls["request_id"].to_numpy()
    return pd.DataFrame(
        {"call": call[found].astype("int64"), "retried_by": request_ids[retried_by[found]]}
    ).sort_values("call", ignore_index=True)


# --------------------------------------------------------------------- grading
def _utc_series(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")


def _as_of(value: Any) -> pd.Timestamp:
    if value is None:
        return pd.Timestamp.now(tz="UTC")
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _event_key(events: pd.DataFrame) -> pd.Series:
    """The value of each event's one key (for pr_opened: its pr)."""
    key = events["pr"].copy()
    for name in ("session_id", "decision_id", "request_id"):
        key = key.fillna(events[name])
    return key


def grade(
    calls: pd.DataFrame,
    events: pd.DataFrame,
    config: GradingConfig | None = None,
    as_of: Any = None,
) -> GradeResult:
    """Grade every call from the outcome events.

    Parameters
    ----------
    calls : DataFrame, shape (n_calls, n_columns), or CallLogRead
        A call log (`features.call_log.read_call_logs`); uses ``request_id``,
        ``decision_id``, ``session_id``, ``user``, ``timestamp``, ``prompt`` /
        ``messages`` and ``outcome``.
    events : DataFrame, shape (n_events, 9), or EventsRead
        Valid events (`features.events.read_events`).
    config : GradingConfig, optional
        Scores, windows and rules; the defaults when None.
    as_of : str or Timestamp, optional
        Grade as known at this time (UTC when no offset): later events are ignored and
        windows still open then leave calls pending. Now when None.

    Returns
    -------
    GradeResult
    """
    started = time.perf_counter()
    calls = getattr(calls, "frame", calls)  # a CallLogRead or its frame
    events = getattr(events, "frame", events)  # an EventsRead or its frame
    config = config or GradingConfig()
    as_of = _as_of(as_of)
    skew = pd.Timedelta(config.clock_skew)
    n = len(calls)
    if "request_id" not in calls:
        raise ValueError("grade needs the calls' request_id (a call log, docs/call-log.md).")
    calls = original = calls.reset_index(drop=True)
    for name in ("timestamp", "decision_id", "session_id", "user", "outcome"):
        if name not in calls:  # a frame built elsewhere may leave optional columns out
            calls = calls.assign(**{name: np.nan if name == "outcome" else None})
    call_ts = _utc_series(calls["timestamp"])
    table = pd.DataFrame(
        {
            "call": np.arange(n),
            "call_ts": call_ts,
            **{k: calls[k].to_numpy() for k in ("request_id", "decision_id", "session_id")},
        }
    )
    ev = events.reset_index(drop=True)
    for name in (*EVENT_COLUMNS, "source"):
        if name not in ev:  # a frame built elsewhere may leave optional columns out
            ev = ev.assign(**{name: np.nan if name == "value" else None})
    ev = ev.loc[:, [*EVENT_COLUMNS, "source"]]
    ev["timestamp"] = pd.to_datetime(ev["timestamp"], utc=True)
    late = ev["timestamp"] > as_of
    n_late = int(late.sum())
    ev = ev[~late].reset_index(drop=True)
    ev["eid"] = np.arange(len(ev))
    ev["key"] = _event_key(ev)
    ev["label"] = ev["event"] + ":" + ev["key"].astype(str)
    reasons = pd.Series(None, index=ev.index, dtype=object)
    used = np.zeros(len(ev), dtype=bool)

    links = ev.loc[ev["event"] == "pr_opened", ["session_id", "pr"]].drop_duplicates()
    linked_calls = links.merge(table[["call", "session_id", "call_ts"]], on="session_id")

    tier_score: dict[str, pd.Series] = {}
    tier_source: dict[str, pd.Series] = {}
    tier_rule: dict[str, pd.Series] = {}

    # --- pr: a PR's final state, for the calls of its linked sessions ---------------
    pr_pending_calls, pr_used = _grade_prs(
        ev, links, linked_calls, config, skew, as_of, reasons, tier_score, tier_source, tier_rule
    )
    used |= pr_used

    # --- call-level kinds: feedback, checks, retry events ---------------------------
    pairs = _attribute_call_events(ev, table, linked_calls, config, skew, reasons)
    used[pairs["eid"].to_numpy(dtype="int64")] = True
    _grade_feedback(pairs, config, tier_score, tier_source, tier_rule)
    _grade_checks(pairs, config, tier_score, tier_source, tier_rule)
    retries = (
        detect_retries(calls.reset_index(drop=True), config) if config.detect_retries else None
    )
    _grade_retries(pairs, retries, config, tier_score, tier_source, tier_rule)

    # --- precedence -----------------------------------------------------------------
    outcome = np.full(n, np.nan)
    source = np.full(n, None, dtype=object)
    rule = np.full(n, None, dtype=object)
    for tier in config.precedence:
        if tier not in tier_score:
            continue
        scores = tier_score[tier]
        idx = scores.index.to_numpy(dtype="int64")
        free = np.isnan(outcome[idx])
        idx = idx[free]
        outcome[idx] = scores.to_numpy()[free]
        source[idx] = tier_source[tier].reindex(scores.index).to_numpy()[free]
        rule[idx] = tier_rule[tier].reindex(scores.index).to_numpy()[free]
    status = np.where(np.isnan(outcome), None, "graded").astype(object)

    if config.keep_logged_outcome and "outcome" in calls:
        logged = calls["outcome"].to_numpy(dtype=float)
        take = np.isnan(outcome) & ~np.isnan(logged)
        outcome[take], source[take], rule[take], status[take] = (
            logged[take],
            "logged",
            "logged",
            "logged",
        )

    open_window = _open_windows(table, calls, config, as_of, pr_pending_calls)
    pending = np.isnan(outcome) & open_window & (status == None)  # noqa: E711
    status[pending] = "pending"
    no_event = np.isnan(outcome) & (status == None)  # noqa: E711
    status[no_event] = "no_event"
    if config.expired_outcome is not None:
        outcome[no_event] = config.expired_outcome
        source[no_event] = rule[no_event] = status[no_event] = "expired"

    graded = original.copy()
    graded["outcome"] = outcome
    graded["outcome_source"] = source
    graded["outcome_status"] = status
    graded["graded_at"] = as_of.isoformat()

    quarantined = _quarantine(ev, used, reasons)
    by_source = pd.Series(rule[rule != None]).value_counts()  # noqa: E711
    counts = {
        "n_calls": n,
        "graded": int((status == "graded").sum()),
        "pending": int(pending.sum()),
        "no_event": int((status == "no_event").sum()),
        "expired": int((status == "expired").sum()),
        "logged": int((status == "logged").sum()),
        "by_source": {str(k): int(v) for k, v in by_source.items()},
        "mean_outcome": None if np.isnan(outcome).all() else round(float(np.nanmean(outcome)), 4),
        "retries_found_in_logs": 0 if retries is None else len(retries),
        "events": {
            "n": len(ev) + n_late,
            "used": int(used.sum()),
            "after_as_of": n_late,
            "quarantined": len(quarantined),
        },
        "seconds": round(time.perf_counter() - started, 3),
    }
    return GradeResult(graded=graded, quarantined=quarantined, counts=counts, as_of=as_of)


def _joined(keys, labels) -> pd.Series:
    """Distinct ``labels`` of each key joined by ``;`` in their order (a fast groupby-join:
    one sort, then plain Python over the rows)."""
    keys = np.asarray(keys)
    labels = np.asarray(labels, dtype=object)
    if len(keys) == 0:
        return pd.Series(dtype=object)
    order = np.argsort(keys, kind="stable")
    keys, labels = keys[order], labels[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    joined = [
        ";".join(dict.fromkeys(x for x in labels[a:b] if isinstance(x, str)))
        for a, b in zip(starts, ends, strict=True)
    ]
    return pd.Series(joined, index=keys[starts], dtype=object)


def _grade_prs(ev, links, linked_calls, config, skew, as_of, reasons, score, source, rule):
    """Final state of every PR, attributed to the calls of its linked sessions."""
    used = np.zeros(len(ev), dtype=bool)
    pr_ev = ev[ev["pr"].notna() & (ev["event"] != "pr_opened")]
    pr_kinds = pr_ev["event"].isin(
        [
            "pr_merged",
            "pr_closed_unmerged",
            "pr_reverted",
            "review_approved",
            "review_changes_requested",
        ]
    )
    pr_ev = pr_ev[pr_kinds]
    opened = ev[ev["event"] == "pr_opened"]
    sessions_with_calls = set(linked_calls["session_id"])
    no_calls = ~opened["session_id"].isin(sessions_with_calls)
    reasons[opened.index[no_calls]] = (
        "pr_opened links a session with no calls in the log: session_id "
        + opened.loc[no_calls, "session_id"].astype(str)
    )
    used[opened.loc[~no_calls, "eid"].to_numpy()] = True

    linked_prs = set(links["pr"])
    prs_with_calls = set(linked_calls["pr"])
    unlinked = ~pr_ev["pr"].isin(linked_prs)
    reasons[pr_ev.index[unlinked]] = (
        "no pr_opened event links PR " + pr_ev.loc[unlinked, "pr"] + " to a session"
    )
    callless = ~unlinked & ~pr_ev["pr"].isin(prs_with_calls)
    reasons[pr_ev.index[callless]] = (
        "PR " + pr_ev.loc[callless, "pr"] + " is linked only to sessions with no calls in the log"
    )
    pr_ev = pr_ev[~unlinked & ~callless]
    if pr_ev.empty and linked_calls.empty:
        return np.zeros(0, dtype=int), used

    def first(kind: str, how: str = "min") -> pd.Series:
        sel = pr_ev[pr_ev["event"] == kind]
        return sel.groupby("pr")["timestamp"].agg(how)

    prs = pd.DataFrame(index=pd.Index(sorted(prs_with_calls), name="pr"))
    prs["merged_at"] = first("pr_merged", "min")
    prs["closed_at"] = first("pr_closed_unmerged", "max")
    merged = prs["merged_at"].notna() & ~(prs["closed_at"] > prs["merged_at"])
    closed = ~merged & prs["closed_at"].notna()
    changes = pr_ev[pr_ev["event"] == "review_changes_requested"].merge(
        prs["merged_at"].reset_index(), on="pr"
    )
    changes = changes[changes["timestamp"] <= changes["merged_at"]]
    prs["changes_requested"] = prs.index.isin(changes["pr"])
    reverts = pr_ev[pr_ev["event"] == "pr_reverted"].merge(prs["merged_at"].reset_index(), on="pr")
    gap = reverts["timestamp"] - reverts["merged_at"]
    in_window = (
        merged.reindex(reverts["pr"]).to_numpy()
        & (gap >= -skew).to_numpy()
        & (gap <= config.window("pr_reverted")).to_numpy()
    )
    outside = reverts.loc[~in_window]
    reasons[pr_ev.index[pr_ev["eid"].isin(outside["eid"])]] = (
        "pr_reverted not within windows.pr_reverted ("
        + config.windows["pr_reverted"]
        + ") after a merge of PR "
        + pr_ev.loc[pr_ev["eid"].isin(outside["eid"]), "pr"]
    )
    prs["reverted"] = prs.index.isin(reverts.loc[in_window, "pr"])

    s = config.scores
    prs["state"] = np.select([merged, closed], ["merged", "closed"], "open")
    prs["decided_at"] = prs["merged_at"].where(merged, prs["closed_at"].where(closed))
    prs["rule"] = np.select(
        [prs["reverted"], merged & prs["changes_requested"], merged, closed],
        ["pr_reverted", "pr_merged_after_changes_requested", "pr_merged", "pr_closed_unmerged"],
        None,
    )
    prs["score"] = prs["rule"].map(s).astype(float)
    waiting = (
        merged
        & ~prs["reverted"]
        & config.wait_for_revert_window
        & (prs["merged_at"] + config.window("pr_reverted") > as_of)
    )
    prs.loc[waiting, ["score", "rule"]] = [np.nan, None]
    # the events that decided each PR: reviews before the decision, the decision, a revert
    relevant = pr_ev.merge(prs[["decided_at", "rule"]].reset_index(), on="pr")
    keep = relevant["rule"].notna() & (
        ((relevant["event"] == "pr_reverted") & relevant["pr"].isin(prs.index[prs["reverted"]]))
        | ((relevant["event"] != "pr_reverted") & (relevant["timestamp"] <= relevant["decided_at"]))
    )
    labels = _joined(relevant.loc[keep, "pr"], relevant.loc[keep, "label"])
    prs["source"] = labels

    pairs = linked_calls.merge(prs.reset_index(), on="pr")
    decisive_window = np.where(
        pairs["state"] == "merged",
        config.window("pr_merged").value,
        config.window("pr_closed_unmerged").value,
    ).astype("timedelta64[ns]")
    delta = pairs["decided_at"] - pairs["call_ts"]
    in_reach = pairs["call_ts"].isna() | ((delta >= -skew) & (delta.to_numpy() <= decisive_window))
    decided = pairs[pairs["score"].notna() & in_reach.to_numpy()]
    open_pairs = pairs[
        pairs["score"].isna()
        & (pairs["call_ts"].isna() | (pairs["call_ts"] + config.window("pr_merged") > as_of))
    ]
    # PR events are used when their PR graded a call or may still grade one
    live = set(decided["pr"]) | set(open_pairs["pr"])
    used[pr_ev.loc[pr_ev["pr"].isin(live) & ~pr_ev["eid"].isin(outside["eid"]), "eid"]] = True
    missed = ~pr_ev["pr"].isin(live) & ~pr_ev["eid"].isin(outside["eid"])
    reasons[pr_ev.index[missed]] = (
        "PR "
        + pr_ev.loc[missed, "pr"]
        + " grades no call: it was not merged or closed within the window "
        "(windows.pr_merged / pr_closed_unmerged) of any call of its session(s)"
    )
    if not decided.empty:
        grouped = decided.groupby("call")
        score["pr"] = grouped["score"].agg(config.pr_combine)
        source["pr"] = _joined(decided["call"], decided["source"])
        first_rule = grouped["rule"].first()
        rule["pr"] = first_rule.where(grouped["rule"].nunique() == 1, "pr_mixed")
    return open_pairs["call"].unique(), used


def _attribute_call_events(ev, table, linked_calls, config, skew, reasons) -> pd.DataFrame:
    """(call, event) pairs of the call-level kinds, within each kind's window."""
    sub = ev[ev["event"].isin(CALL_KINDS)]
    parts = []
    for key in ("request_id", "decision_id", "session_id"):
        keyed = sub[sub[key].notna()]
        if not keyed.empty:
            parts.append(keyed.merge(table[["call", key, "call_ts"]], on=key, suffixes=("", "_c")))
    by_pr = sub[sub["pr"].notna()]
    if not by_pr.empty:
        parts.append(by_pr.merge(linked_calls[["pr", "call", "call_ts"]], on="pr"))
    columns = ["eid", "call", "event", "timestamp", "value", "label", "call_ts"]
    pairs = (
        pd.concat([p[columns] for p in parts], ignore_index=True)
        if parts
        else pd.DataFrame(columns=columns)
    ).drop_duplicates(["eid", "call"])
    pairs = pairs.astype({"eid": "int64", "call": "int64"})
    windows = pairs["event"].map({k: config.window(k).value for k in CALL_KINDS})
    delta = (
        (pairs["timestamp"] - pairs["call_ts"]).to_numpy().astype("timedelta64[ns]").astype("int64")
    )
    untimed = pairs["call_ts"].isna().to_numpy()
    reach = untimed | ((delta >= -skew.value) & (delta <= windows.to_numpy(dtype="int64")))
    matched = set(pairs["eid"])
    inside = pairs[reach]
    got = set(inside["eid"])
    no_call = ~sub["eid"].isin(matched)
    key_name = np.select([sub[k].notna() for k in KEYS], list(KEYS), default="key")
    reasons[sub.index[no_call]] = (
        "no call has "
        + pd.Series(key_name, index=sub.index)[no_call]
        + " "
        + sub.loc[no_call, "key"].astype(str)
        + np.where(sub.loc[no_call, "pr"].notna(), " (or no pr_opened links it to a session)", "")
    )
    outside = sub["eid"].isin(matched) & ~sub["eid"].isin(got)
    reasons[sub.index[outside]] = (
        sub.loc[outside, "event"]
        + " is outside windows."
        + sub.loc[outside, "event"]
        + " ("
        + sub.loc[outside, "event"].map(config.windows)
        + ") of every call it names"
    )
    return inside


def _grade_feedback(pairs, config, score, source, rule) -> None:
    fb = pairs[pairs["event"].isin(_FEEDBACK)]
    if fb.empty:
        return
    fb = fb.sort_values(["call", "timestamp"], kind="stable")
    thumbs = fb[fb["event"] != "judge_score"].groupby("call").tail(1).set_index("call")
    judge = fb[fb["event"] == "judge_score"].groupby("call")["value"].mean()
    value = thumbs["event"].map(config.scores).astype(float).combine_first(judge)
    score["feedback"] = value
    labels = pd.concat(
        [thumbs["label"], fb[fb["event"] == "judge_score"].set_index("call")["label"]]
    )
    labels = labels[~labels.index.isin(thumbs.index) | labels.isin(thumbs["label"])]
    source["feedback"] = _joined(labels.index, labels)
    rule["feedback"] = pd.Series(
        np.where(value.index.isin(thumbs.index), "thumbs", "judge_score"), index=value.index
    )


def _grade_checks(pairs, config, score, source, rule) -> None:
    ck = pairs[pairs["event"].isin(_CHECKS)]
    if ck.empty:
        return
    ck = ck.sort_values(["call", "timestamp"], kind="stable").assign(
        family=ck["event"].str.split("_").str[0],
        failed=ck["event"].str.endswith("_failed"),
    )
    grouped = ck.groupby(["call", "family"])
    last = grouped.tail(1).set_index(["call", "family"])
    any_failed = grouped["failed"].any()
    s = config.scores
    per_family = np.where(
        last["failed"],
        last["event"].map(s),
        np.where(
            any_failed.reindex(last.index), s["checks_passed_after_failure"], last["event"].map(s)
        ),
    ).astype(float)
    per_family = pd.Series(per_family, index=last.index)
    score["checks"] = per_family.groupby(level="call").min()
    source["checks"] = _joined(ck["call"], ck["label"])
    rule["checks"] = pd.Series("checks", index=score["checks"].index)


def _grade_retries(pairs, retries, config, score, source, rule) -> None:
    parts = []
    events = pairs[pairs["event"] == "retry"][["call", "label"]]
    parts.append(events)
    if retries is not None and not retries.empty:
        parts.append(
            pd.DataFrame(
                {
                    "call": retries["call"],
                    "label": "retry_in_logs:" + retries["retried_by"].astype(str),
                }
            )
        )
    both = pd.concat(parts, ignore_index=True)
    if both.empty:
        return
    labels = _joined(both["call"], both["label"])
    score["retry"] = pd.Series(config.scores["retry"], index=labels.index, dtype=float)
    source["retry"] = labels
    rule["retry"] = pd.Series(
        np.where(labels.str.contains(r"(?:^|;)retry:"), "retry", "retry_in_logs"),
        index=labels.index,
    )


def _open_windows(table, calls, config, as_of, pr_pending_calls) -> np.ndarray:
    """Whether a window that could still grade each call is open at ``as_of``.

    A call can be reached by the call-level kinds always, and by PR kinds when it has a
    ``session_id`` (only sessions link to PRs). A call without a timestamp has no
    window to wait for.
    """
    call_level = max(config.window(k) for k in CALL_KINDS if k in config.windows)
    pr_level = max(config.window("pr_merged"), config.window("pr_closed_unmerged"))
    has_session = table["session_id"].notna().to_numpy()
    longest = np.where(has_session, max(call_level, pr_level).value, call_level.value)
    ts = table["call_ts"]
    age = (as_of - ts).to_numpy().astype("timedelta64[ns]").astype("int64")
    open_ = ts.notna().to_numpy() & (age < longest)
    open_[pr_pending_calls.astype(int)] = True
    return open_


def _quarantine(ev: pd.DataFrame, used: np.ndarray, reasons: pd.Series) -> pd.DataFrame:
    bad = ev[~used].copy()
    bad["quarantine_reason"] = reasons[~used].fillna("matches no call")
    bad["timestamp"] = bad["timestamp"].map(lambda t: t.isoformat())
    return bad.loc[:, [*EVENT_COLUMNS, "source", "quarantine_reason"]].reset_index(drop=True)


# ------------------------------------------------------------------------ output
GRADED_SUFFIXES = (".jsonl", ".csv", ".parquet")


def write_graded(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a graded call log by the file's extension (``.jsonl``, ``.csv`` or
    ``.parquet``) so that `features.call_log.read_call_logs` (``train``) reads it back.

    ``messages`` is JSON text in CSV and Parquet (one Parquet struct type would not fit
    every row's messages), a list in JSONL; missing values are null.
    """
    import json

    path = Path(path)
    if not path.name.endswith(GRADED_SUFFIXES):
        raise ValueError(
            f"{path}: the graded log is written as {', '.join(GRADED_SUFFIXES)}; "
            "name --out with one of these extensions."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    out = frame.copy()
    if path.suffix == ".jsonl":
        with open(path, "w", encoding="utf-8") as fh:
            for row in out.to_dict(orient="records"):
                kept = {k: plain_value(v) for k, v in row.items()}
                fh.write(json.dumps(kept, ensure_ascii=False, default=str) + "\n")
        return path
    if "messages" in out:
        out["messages"] = out["messages"].map(
            lambda m: None if m is None else json.dumps(plain_value(m), ensure_ascii=False)
        )
    if path.suffix == ".csv":
        out.to_csv(path, index=False)
    else:
        out.to_parquet(path, index=False)
    return path
