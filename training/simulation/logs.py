"""Gateway traffic around the prompts: teams, users, sessions, timestamps, and the calls.

A gateway log is not a list of prompts: people in teams send them, in sessions of a
few calls, during working hours, over days. The simulated calls carry all of that,
so grading (which attributes PR events to sessions and spots retries per user) and
reports (per team, per user) see the shape they will see in production.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.simulation.table import USAGE_COLUMNS, FullInformationTable

#: Synthetic team names, for logs without a ``team`` column.
TEAM_NAMES = (
    "payments",
    "search",
    "mobile",
    "platform",
    "data",
    "support",
    "growth",
    "security",
)
#: First names of the synthetic users; a user is ``name@team``.
USER_NAMES = ("ana", "ben", "chen", "dana", "eli", "fatima", "goran", "hana", "ivan", "jun")


@dataclass(frozen=True)
class TrafficConfig:
    """How the simulated traffic is shaped.

    Parameters
    ----------
    days : int, default=14
        Calls spread over this many days from ``start``.
    start : str, default="2026-01-05T00:00:00Z"
        First day (UTC) of the simulated traffic.
    n_teams : int, default=5
        Synthetic teams, when the log has no ``team`` (the log's own teams are kept).
    users_per_team : int, default=3
    mean_session_calls : float >= 1, default=3.0
        Mean number of calls of one session (geometric, at most
        ``max_session_calls``).
    max_session_calls : int, default=8
    task_affinity : float in [0, 1], default=0.8
        Synthetic teams only: share of a task's prompts sent by the task's home team
        (`prompt_teams`).
    one_prompt_per_session : bool, default=False
        Each prompt its own session: agent-style logs, where a PR grades every call
        of its session, so two prompts in one session could not keep their own
        outcomes.
    """

    days: int = 14
    start: str = "2026-01-05T00:00:00Z"
    n_teams: int = 5
    users_per_team: int = 3
    mean_session_calls: float = 3.0
    max_session_calls: int = 8
    task_affinity: float = 0.8
    one_prompt_per_session: bool = False

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError(f"days must be at least 1, got {self.days!r}.")
        if not 1 <= self.n_teams <= len(TEAM_NAMES):
            raise ValueError(f"n_teams must be in [1, {len(TEAM_NAMES)}], got {self.n_teams!r}.")
        if not 1 <= self.users_per_team <= len(USER_NAMES):
            raise ValueError(
                f"users_per_team must be in [1, {len(USER_NAMES)}], got {self.users_per_team!r}."
            )
        if not 1.0 <= self.mean_session_calls <= self.max_session_calls:
            raise ValueError(
                "mean_session_calls must be in [1, max_session_calls], got "
                f"{self.mean_session_calls!r}."
            )
        if not 0.0 <= self.task_affinity <= 1.0:
            raise ValueError(f"task_affinity must be in [0, 1], got {self.task_affinity!r}.")
        try:
            pd.Timestamp(self.start)
        except ValueError:
            raise ValueError(
                f"start must be an ISO 8601 date-time, e.g. 2026-01-05T00:00:00Z, got "
                f"{self.start!r}."
            ) from None


@dataclass(frozen=True)
class Traffic:
    """Who sent each prompt, in which session, when.

    Attributes
    ----------
    team, user, session_id : ndarray of str, shape (n_prompts,)
    timestamp : ndarray of datetime64[ms], shape (n_prompts,)
        UTC.
    """

    team: np.ndarray
    user: np.ndarray
    session_id: np.ndarray
    timestamp: np.ndarray


def prompt_teams(
    table: FullInformationTable, config: TrafficConfig, rng: np.random.Generator
) -> np.ndarray:
    """The team that sent each prompt.

    The log's ``team`` where every prompt has one (SWE-bench: the repository).
    Otherwise synthetic teams: each ``task`` tag has a home team (teams do different
    work), which sends its prompts with probability ``config.task_affinity``; the
    rest, and prompts without a task, come from any team uniformly.
    """
    logged = table.prompts["team"]
    if logged.notna().all():
        return logged.astype(str).to_numpy()
    names = np.array(TEAM_NAMES[: config.n_teams])
    team = rng.integers(config.n_teams, size=table.n_prompts)
    tasks = table.prompts["task"]
    known = sorted(tasks.dropna().astype(str).unique().tolist())
    home = dict(zip(known, rng.integers(config.n_teams, size=len(known)), strict=True))
    at_home = tasks.notna().to_numpy() & (rng.random(table.n_prompts) < config.task_affinity)
    homes = np.array([home.get(t, 0) for t in tasks.fillna("").astype(str)], dtype=np.int64)
    return names[np.where(at_home, homes, team)]


def simulate_traffic(teams: np.ndarray, config: TrafficConfig, rng: np.random.Generator) -> Traffic:
    """Sessions, users and timestamps for prompts whose teams are known.

    Each team's prompts are shuffled and cut into sessions; a session belongs to one
    user of its team, starts at a random working hour (08:00-19:00 UTC) of a random
    day, and its calls follow 2 to 15 minutes apart.
    """
    n = len(teams)
    user = np.empty(n, dtype=object)
    session = np.empty(n, dtype=object)
    offset_s = np.zeros(n, dtype=np.int64)
    counter = 0
    for team in sorted(set(teams.tolist())):
        members = np.flatnonzero(teams == team)
        members = members[rng.permutation(len(members))]
        slug = team.replace("/", "-")
        people = [f"{name}@{slug}" for name in USER_NAMES[: config.users_per_team]]
        i = 0
        while i < len(members):
            if config.one_prompt_per_session:
                size = 1
            else:
                size = min(
                    int(rng.geometric(1.0 / config.mean_session_calls)), config.max_session_calls
                )
            calls = members[i : i + size]
            i += size
            counter += 1
            start = int(rng.integers(config.days)) * 86400 + int(rng.uniform(8 * 3600, 19 * 3600))
            gaps = rng.uniform(120, 900, size=len(calls)).astype(np.int64)
            gaps[0] = 0
            offset_s[calls] = start + np.cumsum(gaps)
            user[calls] = people[int(rng.integers(len(people)))]
            session[calls] = f"session-{counter:06d}"
    base = pd.Timestamp(config.start).tz_convert(None).normalize().to_datetime64()
    timestamp = (base + offset_s.astype("timedelta64[s]")).astype("datetime64[ms]")
    return Traffic(
        team=np.asarray(teams, dtype=object),
        user=user,
        session_id=session,
        timestamp=timestamp,
    )


def decision_ids(n: int, rng: np.random.Generator) -> list[str]:
    """UUID4 strings drawn from ``rng``: unique, and the same for the same seed."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    return [str(uuid.UUID(bytes=row.tobytes(), version=4)) for row in raw]


def build_calls(
    table: FullInformationTable,
    traffic: Traffic,
    action: np.ndarray,
    propensity: np.ndarray | None,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """One call-log row per prompt (docs/call-log.md), sorted by time, without outcome.

    The chosen candidate's tokens, cost and latency come from the full table; the
    call keeps the log's ``prompt_id`` so it can be joined to the hidden truth.
    """
    rows = np.arange(table.n_prompts)
    prompts = table.prompts
    frame = pd.DataFrame(
        {
            "decision_id": decision_ids(table.n_prompts, rng),
            "timestamp": traffic.timestamp,
            "user": traffic.user,
            "team": traffic.team,
            "task": prompts["task"].to_numpy(dtype=object),
            "session_id": traffic.session_id,
            "prompt_id": table.prompt_ids,
            "prompt": prompts["prompt"].to_numpy(dtype=object),
            "messages": prompts["messages"].to_numpy(dtype=object),
            "model": np.asarray(table.candidates, dtype=object)[action],
        }
    )
    for name in USAGE_COLUMNS:
        values = pd.Series(table.usage[name][rows, action])
        # token counts are whole numbers: written as 812, not 812.0
        frame[name] = values if name == "latency_ms" else values.round().astype("Int64")
    frame["cost_usd"] = table.cost_usd[rows, action]
    if propensity is not None:
        frame["propensity"] = propensity
    order = np.lexsort((table.prompt_ids, traffic.timestamp))
    frame = frame.iloc[order].reset_index(drop=True)
    frame.insert(0, "request_id", [f"req-{i:06d}" for i in range(len(frame))])
    return frame
