"""``outcome-router simulate``: its parser and run function (`training.simulation`)."""

from __future__ import annotations

import argparse
import json


def add_simulate_parser(sub) -> None:
    """Register ``simulate`` on the ``outcome-router`` subparsers."""
    simulate = sub.add_parser(
        "simulate",
        help="turn a full-information log into gateway logs with known ground truth",
        description="Pick one model per prompt of a full-information log (every candidate "
        "answered every prompt) with a known logging policy, and write what a gateway "
        "would log: OUT/calls.jsonl (the chosen model's call, its propensity, users, teams, "
        "sessions, timestamps, no outcome) and OUT/events.jsonl (delayed outcome events "
        "that `grade` turns back into outcomes); plus the hidden truth for checks: "
        "OUT/truth.parquet, OUT/logging_distribution.parquet, OUT/policy.json, "
        "OUT/summary.json and OUT/README.txt. Prints the summary. The same --seed gives "
        "the same files.",
    )
    simulate.add_argument(
        "--logs",
        nargs="+",
        required=True,
        metavar="FULL_INFO",
        help="full-information call-log files or folders: every candidate answered every "
        "prompt_id (prompts some candidate lacks are left out and counted)",
    )
    simulate.add_argument(
        "--policy",
        required=True,
        help="the logging policy: uniform; epsilon:BUNDLE:EPS (the bundle's choice, any "
        "candidate with probability EPS); softmax:BUNDLE:TEMP (probability proportional "
        "to exp(utility/TEMP), TEMP in USD); biased[:LONG_SHARE[:TARGET]] or human "
        "(each team has a habitual model, chosen 80%% of the time; prompts longer than "
        "the median go to the big model, TARGET expensive (default), strongest or a "
        "model name, with probability LONG_SHARE, default 0.7)",
    )
    simulate.add_argument(
        "--out", required=True, metavar="DIR", help="folder for the files (created)"
    )
    simulate.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    simulate.add_argument(
        "--drop-propensity",
        action="store_true",
        help="leave propensity out of calls.jsonl, as a gateway without a router logs",
    )
    simulate.add_argument(
        "--candidates",
        metavar="A,B",
        help="comma-separated models to choose among; default: every model of the log",
    )
    simulate.add_argument(
        "--prices",
        metavar="FILE",
        help="price catalog (LiteLLM's JSON format) for rows without cost_usd; default: "
        "the shipped features/data/default_prices.json",
    )
    simulate.add_argument(
        "--outcome-events",
        choices=["auto", "tests", "judge", "pr"],
        default="auto",
        help="how outcomes are revealed: tests (tests_passed/tests_failed per request_id; "
        "fractional outcomes as judge_score), judge (judge_score for all), pr (each prompt "
        "its own agent session: pr_opened, a review, then pr_merged or "
        "pr_closed_unmerged hours to days later); auto is pr for SWE-bench (task "
        "swe-bench), else tests",
    )
    simulate.add_argument(
        "--retry-share",
        type=float,
        default=0.1,
        help="share of failed calls that also get a retry event (tests style)",
    )
    simulate.add_argument(
        "--days", type=int, default=14, help="calls are spread over this many days"
    )
    simulate.add_argument(
        "--start",
        default="2026-01-05T00:00:00Z",
        help="first day of the simulated traffic (UTC, ISO 8601)",
    )
    simulate.add_argument(
        "--teams",
        type=int,
        default=5,
        help="synthetic teams when the log has no team column (its own teams are kept)",
    )
    simulate.add_argument(
        "--task-affinity",
        type=float,
        default=0.8,
        help="synthetic teams: share of a task's prompts sent by the task's home team "
        "(teams do different work), the rest by any team",
    )
    simulate.add_argument(
        "--users-per-team", type=int, default=3, help="users sending each team's prompts"
    )
    simulate.add_argument(
        "--session-calls",
        type=float,
        default=3.0,
        help="mean calls per session (geometric, at most 8; 1 per session in pr style)",
    )
    simulate.set_defaults(func=run_simulate)


def run_simulate(args: argparse.Namespace) -> int:
    from training.simulation import simulate, write_simulation
    from training.simulation.logs import TrafficConfig

    candidates = None
    if args.candidates is not None:
        candidates = [c.strip() for c in args.candidates.split(",") if c.strip()]
        if not candidates:
            raise ValueError(
                f"--candidates takes comma-separated model names, got {args.candidates!r}."
            )
    traffic = TrafficConfig(
        days=args.days,
        start=args.start,
        n_teams=args.teams,
        task_affinity=args.task_affinity,
        users_per_team=args.users_per_team,
        mean_session_calls=args.session_calls,
    )
    result = simulate(
        args.logs,
        args.policy,
        seed=args.seed,
        candidates=candidates,
        prices=args.prices,
        drop_propensity=args.drop_propensity,
        event_style=args.outcome_events,
        retry_share=args.retry_share,
        traffic=traffic,
    )
    out = write_simulation(result, args.out)
    print(json.dumps({**result.to_dict(), "out": str(out)}, indent=2, default=str))
    return 0
