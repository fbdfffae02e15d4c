"""How long `features.grading.grade` takes on 100,000 calls (docs/grading.md "Speed").

Two synthetic gateway days, built here with a fixed seed (no data is read):

- ``agents``: 100,000 calls in 10,000 agent sessions over 30 days, each session linked
  to a PR (a third merged, a third closed, a third open) and 20,000 thumbs_up events;
- ``chat``: 100,000 chat calls of 2,000 users in one day, near-identical prompts
  repeated often, so retry detection compares many pairs.

Run: ``python -m benchmarks.grading [--calls 100000]`` from the project root (as a
script, ``benchmarks/features.py`` would shadow the ``features`` package).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from features.events import validate_events
from features.grading import grade

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def agent_day(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, list[dict]]:
    sessions = rng.integers(0, max(n // 10, 1), n)
    ts = T0 + pd.to_timedelta(np.sort(rng.integers(0, 30 * 86400, n)), unit="s")
    words = np.array(["alpha", "beta", "gamma", "delta", "fix", "bug", "test", "refactor"])
    calls = pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "model": "m",
            "prompt": [" ".join(rng.choice(words, 12)) for _ in range(n)],
            "session_id": [f"s{s}" for s in sessions],
            "timestamp": [t.isoformat() for t in ts],
        }
    )
    first = calls.groupby("session_id")["timestamp"].min()
    events = []
    for k, (session, started) in enumerate(first.items()):
        pr = f"acme/pay#{k}"
        events.append({"timestamp": started, "event": "pr_opened", "session_id": session, "pr": pr})
        later = (pd.Timestamp(started) + pd.Timedelta("2D")).isoformat()
        if k % 3 < 2:
            kind = "pr_merged" if k % 3 == 0 else "pr_closed_unmerged"
            events.append({"timestamp": later, "event": kind, "pr": pr})
    for i in rng.choice(n, n // 5, replace=False):
        when = (ts[i] + pd.Timedelta("1h")).isoformat()
        events.append({"timestamp": when, "event": "thumbs_up", "request_id": f"r{i}"})
    return calls, events


def chat_day(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, list[dict]]:
    questions = [f"question {k} about the billing service, please explain" for k in range(5000)]
    prompts = [questions[k] for k in rng.integers(0, 5000, n)]
    ts = T0 + pd.to_timedelta(rng.integers(0, 86400, n), unit="s")
    calls = pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "model": "m",
            "prompt": prompts,
            "user": [f"u{u}" for u in rng.integers(0, 2000, n)],
            "timestamp": [t.isoformat() for t in ts],
        }
    )
    return calls, []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000, help="calls per scenario")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = {}
    for name, build in (("agents", agent_day), ("chat", chat_day)):
        calls, raw = build(args.calls, rng)
        started = time.perf_counter()
        events, _ = validate_events(raw)
        validated = time.perf_counter() - started
        result = grade(calls, events, as_of="2026-02-10")
        rows[name] = {
            "calls": len(calls),
            "events": len(events),
            "validate_s": round(validated, 2),
            "grade_s": result.counts["seconds"],
            "graded": result.counts["graded"],
            "by_source": result.counts["by_source"],
        }
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
