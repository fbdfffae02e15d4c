"""`simulate`: a full-information log -> gateway logs with known ground truth.

One call per prompt, chosen by a known logging policy (`training.simulation.policies`)
with its exact propensity; users, teams, sessions and timestamps around it
(`training.simulation.logs`); the delayed events that reveal the chosen model's
outcome (`training.simulation.events`); and the hidden full table beside it, so
any estimate made from the logs can be checked against the truth. This is also how a
user tries a router out before production data exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.simulation.events import outcome_events, resolve_style
from training.simulation.logs import (
    TrafficConfig,
    build_calls,
    prompt_teams,
    simulate_traffic,
)
from training.simulation.policies import LoggingPolicy, PromptContext, parse_policy
from training.simulation.table import FullInformationTable, read_full_information

#: Files `write_simulation` writes into the output folder.
OUTPUT_FILES = (
    "calls.jsonl",
    "events.jsonl",
    "truth.parquet",
    "logging_distribution.parquet",
    "policy.json",
    "summary.json",
    "README.txt",
)

# Independent random streams, so e.g. a new kind of event never changes the choices.
_TEAMS, _TRAFFIC, _CHOICE, _IDS, _EVENTS = range(5)


@dataclass(frozen=True)
class SimulationResult:
    """A simulated gateway log and its ground truth.

    Attributes
    ----------
    table : FullInformationTable
        The hidden truth: every candidate's outcome and cost on every prompt.
    policy : LoggingPolicy
    policy_spec : dict
        The policy's description (`LoggingPolicy.describe`) and the seed.
    action_dist : ndarray of float, shape (n_prompts, n_candidates)
        The logging policy's distribution, rows in ``table.prompt_ids`` order.
    action : ndarray of int, shape (n_prompts,)
        The chosen candidate of each prompt (index into ``table.candidates``).
    pscore : ndarray of float, shape (n_prompts,)
        ``action_dist[i, action[i]]``.
    calls : DataFrame
        The simulated call log, one row per prompt, sorted by time, without outcome
        (``propensity`` unless dropped).
    events : DataFrame
        The outcome events (`training.simulation.events.EVENT_COLUMNS`).
    event_style : str
        ``tests``, ``judge`` or ``pr``.
    seed : int
    n_quarantined : int
        Rows of the input log the reader rejected.
    """

    table: FullInformationTable
    policy: LoggingPolicy
    policy_spec: dict[str, Any]
    action_dist: np.ndarray
    action: np.ndarray
    pscore: np.ndarray
    calls: pd.DataFrame
    events: pd.DataFrame
    event_style: str
    seed: int
    n_quarantined: int = 0

    @property
    def candidates(self) -> tuple[str, ...]:
        return self.table.candidates

    @property
    def prompt_ids(self) -> np.ndarray:
        return self.table.prompt_ids

    @property
    def reward(self) -> np.ndarray:
        """The chosen candidate's true outcome, shape (n_prompts,), prompt order."""
        return self.table.outcome[np.arange(len(self.action)), self.action]

    @property
    def cost_usd(self) -> np.ndarray:
        """The chosen candidate's cost, shape (n_prompts,), prompt order."""
        return self.table.cost_usd[np.arange(len(self.action)), self.action]

    def policy_value(self, action_dist: np.ndarray) -> dict[str, float]:
        """True mean outcome and cost per call of a policy over these prompts.

        Parameters
        ----------
        action_dist : ndarray of float, shape (n_prompts, n_candidates)
            Any policy's distribution, rows in ``prompt_ids`` order, columns in
            ``candidates`` order (OBP's ``calc_ground_truth_policy_value``).
        """
        dist = np.asarray(action_dist, dtype=np.float64)
        if dist.shape != self.table.outcome.shape:
            raise ValueError(
                f"Expected action_dist of shape (n_prompts, n_candidates) = "
                f"{self.table.outcome.shape}, got {dist.shape}."
            )
        return {
            "quality": float((dist * self.table.outcome).sum(axis=1).mean()),
            "cost_usd": float((dist * self.table.cost_usd).sum(axis=1).mean()),
        }

    def bandit_feedback(self) -> dict[str, Any]:
        """The logged data under Open Bandit Pipeline's key names, prompt order:
        ``n_rounds``, ``n_actions``, ``action``, ``reward``, ``pscore``, ``cost_usd``,
        ``action_names``, ``pi_b`` (shape (n_rounds, n_actions, 1)) and
        ``expected_reward`` (the truth, shape (n_rounds, n_actions))."""
        return {
            "action_names": self.candidates,
            "n_rounds": len(self.action),
            "n_actions": len(self.candidates),
            "action": self.action,
            "reward": self.reward,
            "pscore": self.pscore,
            "cost_usd": self.cost_usd,
            "position": None,
            "pi_b": self.action_dist[:, :, None],
            "expected_reward": self.table.outcome,
        }

    def to_dict(self) -> dict[str, Any]:
        """The summary `outcome-router simulate` prints and writes as ``summary.json``."""
        calls, events = self.calls, self.events
        chosen = pd.Series(np.asarray(self.candidates)[self.action]).value_counts()
        stamps = pd.to_datetime(calls["timestamp"])
        last_event = pd.to_datetime(events["timestamp"]).max() if len(events) else stamps.max()
        return {
            "n_prompts": int(self.table.n_prompts),
            "n_prompts_dropped": int(self.table.n_dropped),
            "n_quarantined": int(self.n_quarantined),
            "candidates": list(self.candidates),
            "policy": self.policy_spec,
            "seed": self.seed,
            "n_calls": len(calls),
            "n_sessions": int(calls["session_id"].nunique()),
            "n_users": int(calls["user"].nunique()),
            "n_teams": int(calls["team"].nunique()),
            "first_call": _iso(stamps.min()),
            "last_call": _iso(stamps.max()),
            "event_style": self.event_style,
            "n_events": {str(k): int(v) for k, v in events["event"].value_counts().items()},
            # grade --as-of this time sees every event: nothing is left pending
            "all_events_by": _iso(last_event + pd.Timedelta(seconds=1)),
            "chosen_share": {
                m: round(float(chosen.get(m, 0)) / len(calls), 4) for m in self.candidates
            },
            "min_propensity": float(self.pscore.min()),
            # support: off-policy estimates need every action a target policy takes to
            # have some logging probability
            "min_action_probability": float(self.action_dist.min()),
            "zero_probability_share": float((self.action_dist == 0).mean()),
            "logging_policy_value": self.policy_value(self.action_dist),
            "logged_mean_outcome": float(self.reward.mean()),
            "logged_mean_cost_usd": float(self.cost_usd.mean()),
            "has_propensity": "propensity" in calls.columns,
        }


def _iso(stamp: pd.Timestamp) -> str:
    return pd.Timestamp(stamp).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def context_of(table: FullInformationTable, teams: np.ndarray) -> PromptContext:
    """What the logging policy sees of ``table``'s prompts."""
    return PromptContext(
        prompt_ids=table.prompt_ids,
        prompts=[p if isinstance(p, str) else None for p in table.prompts["prompt"]],
        messages=[m if isinstance(m, list) else None for m in table.prompts["messages"]],
        teams=np.asarray(teams).astype(str),
        candidates=table.candidates,
        typical_cost_usd=table.cost_usd.mean(axis=0),
        typical_outcome=table.outcome.mean(axis=0),
    )


def simulate(
    logs: Any,
    policy: str | LoggingPolicy,
    *,
    seed: int = 0,
    candidates: list[str] | None = None,
    prices: str | Path | None = None,
    drop_propensity: bool = False,
    event_style: str = "auto",
    retry_share: float = 0.1,
    traffic: TrafficConfig | None = None,
) -> SimulationResult:
    """Turn a full-information log into gateway-style logs with known ground truth.

    Parameters
    ----------
    logs : path, list of paths, DataFrame or FullInformationTable
        A full-information call log: every candidate answered every prompt
        (`training.simulation.table.read_full_information`). Prompts some candidate
        did not answer are left out and counted. A table read once
        (`read_full_information`) saves reading the log again for every seed.
    policy : str or LoggingPolicy
        A ``--policy`` spec (`training.simulation.policies.parse_policy`; a biased
        policy draws the teams' habits with ``seed``) or a policy object (which
        keeps its own ``random_state``). `PrecomputedPolicy` replays a distribution
        computed once, e.g. a bundle's, over many seeds.
    seed : int, default=0
        Seeds everything random; the same seed gives the same files.
    candidates : list of str, optional
        Models to choose among. Default: every model of the log.
    prices : path, optional
        Price catalog for input rows without ``cost_usd``.
    drop_propensity : bool, default=False
        Leave ``propensity`` out of the calls, as a gateway without a router logs.
    event_style : {"auto", "tests", "judge", "pr"}, default="auto"
        How outcomes are revealed (`training.simulation.events`). ``auto``: PR events
        for agent logs (task ``swe-bench``), else tests for 0/1 outcomes and judge
        scores for fractional ones. ``pr`` puts each prompt in its own session.
    retry_share : float in [0, 1], default=0.1
        Share of failed calls also retried (tests style).
    traffic : TrafficConfig, optional
        Days, teams, users and sessions; `TrafficConfig` defaults.

    Returns
    -------
    SimulationResult
    """
    if isinstance(logs, FullInformationTable):
        table, n_quarantined = logs, 0
        if candidates is not None and tuple(candidates) != table.candidates:
            raise ValueError(
                f"candidates {list(candidates)} differ from the table's "
                f"{list(table.candidates)}; read the log again with them."
            )
    else:
        table, n_quarantined = read_full_information(logs, candidates=candidates, prices=prices)
    given = policy if isinstance(policy, str) else None
    if isinstance(policy, str):
        policy = parse_policy(policy, random_state=seed)
    style = resolve_style(event_style, table.prompts["task"].fillna(""))
    config = traffic or TrafficConfig()
    if style == "pr" and not config.one_prompt_per_session:
        config = TrafficConfig(**{**config.__dict__, "one_prompt_per_session": True})

    def stream(k: int) -> np.random.Generator:
        return np.random.default_rng([seed, k])

    teams = prompt_teams(table, config, stream(_TEAMS))
    context = context_of(table, teams)
    dist = np.asarray(policy.action_dist(context), dtype=np.float64)
    _check_distribution(dist, table)

    from serving.policy import sample_actions

    action, pscore = sample_actions(dist, stream(_CHOICE))
    who = simulate_traffic(teams, config, stream(_TRAFFIC))
    calls = build_calls(table, who, action, None if drop_propensity else pscore, stream(_IDS))
    row_of = {pid: i for i, pid in enumerate(table.prompt_ids)}
    call_rows = calls["prompt_id"].map(row_of).to_numpy()
    events = outcome_events(
        calls,
        table.outcome[call_rows, action[call_rows]],
        style,
        stream(_EVENTS),
        retry_share=retry_share,
    )
    spec = {**({"spec": given} if given else {}), **policy.describe(context), "seed": seed}
    return SimulationResult(
        table=table,
        policy=policy,
        policy_spec=spec,
        action_dist=dist,
        action=action,
        pscore=pscore,
        calls=calls,
        events=events,
        event_style=style,
        seed=seed,
        n_quarantined=n_quarantined,
    )


def _check_distribution(dist: np.ndarray, table: FullInformationTable) -> None:
    """OBP's ``check_ope_inputs`` rule: one row per prompt, probabilities summing to 1."""
    expected = table.outcome.shape
    if dist.shape != expected:
        raise ValueError(
            f"The logging policy returned action_dist of shape {dist.shape}; expected "
            f"(n_prompts, n_candidates) = {expected}."
        )
    if (dist < 0).any() or not np.allclose(dist.sum(axis=1), 1.0):
        raise ValueError("The logging policy's action_dist must be >= 0 with rows summing to 1.")


def write_simulation(result: SimulationResult, out: str | Path) -> Path:
    """Write the simulation into ``out`` (`OUTPUT_FILES`); returns the folder.

    ``calls.jsonl`` and ``events.jsonl`` are what a gateway and its CI/review systems
    would log (null fields left out); ``truth.parquet`` (one row per prompt x
    candidate: outcome, cost, usage, the logging policy's ``logging_probability``,
    whether it was ``chosen`` and the call's ``request_id``),
    ``logging_distribution.parquet`` (``prompt_id`` and one column per candidate) and
    ``policy.json`` are the hidden truth, for checks only.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_jsonl(result.calls, out / "calls.jsonl")
    _write_jsonl(result.events, out / "events.jsonl")

    truth = result.table.to_long_frame()
    k = len(result.candidates)
    truth["logging_probability"] = result.action_dist.ravel()
    chosen = np.zeros_like(result.action_dist, dtype=bool)
    chosen[np.arange(len(result.action)), result.action] = True
    truth["chosen"] = chosen.ravel()
    request_of = dict(zip(result.calls["prompt_id"], result.calls["request_id"], strict=True))
    truth["request_id"] = np.repeat([request_of[p] for p in result.prompt_ids], k)
    truth.to_parquet(out / "truth.parquet", index=False)

    dist = pd.DataFrame(result.action_dist, columns=list(result.candidates))
    dist.insert(0, "prompt_id", result.prompt_ids)
    dist.to_parquet(out / "logging_distribution.parquet", index=False)

    policy = {
        "policy": result.policy_spec,
        "seed": result.seed,
        "candidates": list(result.candidates),
        "event_style": result.event_style,
        "action_dist": {
            "file": "logging_distribution.parquet",
            "shape": list(result.action_dist.shape),
            "rows": "prompt_id column",
            "columns": "one per candidate, in `candidates` order",
        },
    }
    (out / "policy.json").write_text(json.dumps(policy, indent=2, default=str) + "\n")
    summary = result.to_dict()
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (out / "README.txt").write_text(_readme(summary))
    return out


def _write_jsonl(frame: pd.DataFrame, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in frame.to_dict(orient="records"):
            clean = {k: _json_value(v) for k, v in row.items() if not _missing(v)}
            fh.write(json.dumps(clean, ensure_ascii=False) + "\n")


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float | np.floating) and np.isnan(value):
        return True
    return value is pd.NaT


def _json_value(value: Any) -> Any:
    if isinstance(value, pd.Timestamp | np.datetime64):
        return _iso(pd.Timestamp(value))
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _readme(summary: dict[str, Any]) -> str:
    return f"""Simulated gateway logs (outcome-router simulate)

Policy: {summary["policy"].get("name")}, seed {summary["seed"]}; {summary["n_calls"]} calls,
{summary["n_sessions"]} sessions, {summary["n_users"]} users, {summary["n_teams"]} teams,
{summary["first_call"]} to {summary["last_call"]}.

What production would log:
  calls.jsonl    one call per prompt (docs/call-log.md), the chosen model, its tokens
                 and cost, propensity (unless --drop-propensity), decision_id, users,
                 teams, sessions, timestamps; no outcome.
  events.jsonl   delayed outcome events ({summary["event_style"]} style, DESIGN.md
                 section 3); `outcome-router grade --as-of {summary["all_events_by"]}`
                 sees them all.

Hidden truth, for checks only (never train on it):
  truth.parquet                  every candidate's outcome and cost on every prompt,
                                 the logging probability, chosen, request_id.
  logging_distribution.parquet   the logging policy's action distribution.
  policy.json                    the policy, its parameters and the seed.
  summary.json                   these figures.
"""
