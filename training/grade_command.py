"""``outcome-router grade`` and ``outcome-router import``: outcome events in, graded
call logs out (docs/grading.md).

Each command's parser and run function live here, so ``training/cli.py`` adds them
with one line (`add_grading_parsers`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training import import_calls_command, import_traces_command
from training.cluster import add_cluster_argument

GRADING_DOC = "docs/grading.md"


def add_grading_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``grade`` and ``import`` to the command line."""
    add_grade_parser(sub)
    add_import_parser(sub)


# ------------------------------------------------------------------------ grade
def add_grade_parser(sub: argparse._SubParsersAction) -> None:
    grade = sub.add_parser(
        "grade",
        help="turn outcome events (PR merged, review, CI, thumbs, retries) into call outcomes",
        description="Join outcome events to the calls they are about and write the call log "
        "with `outcome`, `outcome_source`, `outcome_status` and `graded_at`, for `train`. "
        "Every call is kept: a call whose windows are still open is pending (null). Rejected "
        "call rows go to GRADED.quarantine.jsonl; events that are invalid or match no call to "
        f"GRADED.events-quarantine.jsonl. Rules, windows and the config: {GRADING_DOC}.",
    )
    grade.add_argument(
        "--logs",
        nargs="+",
        required=True,
        metavar="CALLS",
        help="call-log files or folders (.jsonl, .jsonl.gz, .csv, .csv.gz, .parquet)",
    )
    grade.add_argument(
        "--events",
        nargs="+",
        required=True,
        metavar="EVENTS",
        help="outcome-event files or folders, same formats (e.g. from `outcome-router import "
        f"github`; format: {GRADING_DOC})",
    )
    grade.add_argument(
        "--config",
        metavar="TOML",
        help="grading config (scores, windows, precedence, retry rule); keys left out keep "
        f"their defaults. Default: the defaults in features/grading.py, shown in {GRADING_DOC}",
    )
    grade.add_argument(
        "--as-of",
        metavar="T",
        help="grade as known at this ISO 8601 time (UTC when no offset): later events are "
        "ignored and windows still open then leave calls pending. Default: now",
    )
    grade.add_argument(
        "--out",
        required=True,
        metavar="GRADED",
        help="graded call log to write: .jsonl, .csv or .parquet (replaced); with --cluster "
        "also a folder, which the workers fill with a Parquet dataset partitioned by day",
    )
    add_cluster_argument(grade)
    grade.set_defaults(func=run_grade)


def _beside(out: Path, suffix: str) -> Path:
    name = out.name
    for ext in (".jsonl", ".csv", ".parquet"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    return out.with_name(name + suffix)


def run_grade(args: argparse.Namespace) -> int:
    from features.call_log import read_call_logs
    from features.events import read_events
    from features.grading import GRADED_SUFFIXES, GradingConfig, grade, write_graded

    out = Path(args.out)
    if getattr(args, "cluster", None):
        return _run_grade_on_cluster(args, out)
    if not out.name.endswith(GRADED_SUFFIXES):
        raise ValueError(
            f"--out {out}: name the graded log .jsonl, .csv or .parquet (read by `train`)."
        )
    config = GradingConfig.from_toml(args.config) if args.config else GradingConfig()
    calls_quarantine = _beside(out, ".quarantine.jsonl")
    events_quarantine = _beside(out, ".events-quarantine.jsonl")
    print(f"reading call logs: {' '.join(args.logs)}", file=sys.stderr)
    calls = read_call_logs(args.logs, quarantine_path=calls_quarantine, compute_costs=False)
    print(f"reading events: {' '.join(args.events)}", file=sys.stderr)
    events = read_events(args.events)
    print(f"grading {len(calls.frame)} calls with {len(events.frame)} events", file=sys.stderr)
    result = grade(calls.frame, events.frame, config, as_of=args.as_of)
    write_graded(result.graded, out)
    return _report_grading(
        result, events, out, calls_quarantine, events_quarantine, calls.n_quarantined
    )


def _run_grade_on_cluster(args: argparse.Namespace, out: Path) -> int:
    """``grade --cluster``: the calls are read and graded by the workers, one session
    shard at a time (`training.grade_cluster`); the printed summary is the same."""
    from features.call_log_dataset import open_call_log_dataset
    from features.events import read_events
    from features.grading import GradingConfig, write_graded
    from training.cluster import connect
    from training.grade_cluster import grade_on_cluster

    config = GradingConfig.from_toml(args.config) if args.config else GradingConfig()
    if out.suffix and not out.name.endswith((".jsonl", ".csv", ".parquet")):
        raise ValueError(
            f"--out {out}: name the graded log .jsonl, .csv or .parquet, or give a folder."
        )
    calls_quarantine = _beside(out, ".quarantine.jsonl")
    events_quarantine = _beside(out, ".events-quarantine.jsonl")
    dataset = open_call_log_dataset(args.logs)
    print(f"reading events: {' '.join(args.events)}", file=sys.stderr)
    events = read_events(args.events)
    with connect(args.cluster) as client:
        result = grade_on_cluster(
            client,
            dataset,
            events.frame,
            config=config,
            as_of=args.as_of,
            out=out,
            calls_quarantine=calls_quarantine,
        )
    if result.graded is not None:
        write_graded(result.graded, out)
    return _report_grading(
        result, events, out, calls_quarantine, events_quarantine, result.calls_quarantined
    )


def _report_grading(
    result, events, out: Path, calls_quarantine: Path, events_quarantine: Path, n_calls_bad: int
) -> int:
    """Write the rejected events (invalid, or matching no call) and print the counts:
    the same for one process and for a cluster, whose result has the same fields."""
    from features.call_log import write_quarantine

    rejected = []
    if events.n_quarantined:
        rejected.extend(events.quarantined.to_dict(orient="records"))
    if len(result.quarantined):
        rejected.extend(result.quarantined.to_dict(orient="records"))
    if rejected:
        write_quarantine(rejected, events_quarantine)
    else:
        events_quarantine.unlink(missing_ok=True)
    counts = result.to_dict()
    counts["events"] = {
        **counts["events"],
        "invalid": events.n_quarantined,
        "quarantined": len(rejected),
    }
    printed = {
        "out": str(out),
        **counts,
        "calls_quarantined": n_calls_bad,
        "quarantine": {
            "calls": str(calls_quarantine) if n_calls_bad else None,
            "events": str(events_quarantine) if rejected else None,
        },
    }
    print(json.dumps(printed, indent=2))
    return 0


# ----------------------------------------------------------------------- import
def add_import_parser(sub: argparse._SubParsersAction) -> None:
    from features.importers import IMPORTERS

    command = sub.add_parser(
        "import",
        help="turn another system's exports into outcome events or call logs",
        description="Read another system's exports and write our format. SOURCE is one of: "
        + "; ".join(f"{i.name} ({i.summary})" for i in IMPORTERS.values())
        + ". `outcome-router import SOURCE --help` lists its arguments.",
    )
    sources = command.add_subparsers(
        dest="source",
        required=True,
        metavar="SOURCE",
        help=f"where the exports come from: {', '.join(IMPORTERS)}",
        parser_class=type(command),
    )
    for name in IMPORTERS:
        SOURCE_PARSERS[name](sources)


def _add_github_parser(sources: argparse._SubParsersAction) -> None:
    from features.importers.sessions import DEFAULT_SESSION_PATTERN

    github = sources.add_parser(
        "github",
        help="pull requests and reviews (gh api) -> outcome events",
        description="Turn `gh api 'repos/O/R/pulls?state=all'` and `gh api "
        "repos/O/R/pulls/N/reviews` answers into outcome events: pr_opened (linking the "
        "PR to the agent session named in its head branch or body), pr_merged, "
        "pr_closed_unmerged, pr_reverted (a merged GitHub revert PR), review_approved, "
        f"review_changes_requested. Prints how many PRs name no session. See {GRADING_DOC}.",
    )
    github.add_argument(
        "pulls",
        metavar="PULLS.json",
        help="answer of `gh api 'repos/O/R/pulls?state=all'` (--paginate output is fine)",
    )
    github.add_argument(
        "reviews",
        nargs="*",
        metavar="REVIEWS.json",
        help="answers of `gh api repos/O/R/pulls/N/reviews`, one per PR (default: none)",
    )
    github.add_argument(
        "--out",
        required=True,
        metavar="EVENTS",
        help="events file to write: .jsonl, .csv or .parquet (replaced)",
    )
    github.add_argument(
        "--session-pattern",
        default=DEFAULT_SESSION_PATTERN,
        metavar="REGEX",
        help="regular expression searched in the head branch name, then the body; its first "
        "group is the session id (a match without a digit is skipped)",
    )
    github.set_defaults(func=_run_github)


def _run_github(args: argparse.Namespace) -> int:
    from features.events import write_events
    from features.importers import IMPORTERS

    result = IMPORTERS["github"].load()(
        args.pulls, args.reviews, session_pattern=args.session_pattern
    )
    write_events(result.frame, args.out)
    printed = {"out": str(args.out), **result.to_dict()}
    if result.prs_without_session:
        printed["note"] = (
            f"{len(result.prs_without_session)} PRs name no session (--session-pattern): "
            "their events are written, but no call is graded by them."
        )
    print(json.dumps(printed, indent=2))
    return 0


#: How each import source adds its command-line arguments (keys: `IMPORTERS`).
SOURCE_PARSERS = {
    "github": _add_github_parser,
    "litellm-spend": import_calls_command.add_litellm_spend_parser,
    "otel": import_traces_command.add_otel_parser,
    "claude-code": import_traces_command.add_claude_code_parser,
}
