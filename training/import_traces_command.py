"""``outcome-router import otel`` and ``outcome-router import claude-code``: traces and
agent transcripts in, call log out (docs/call-log.md, "Importing ...").

Each source's parser is one entry of ``training.grade_command.SOURCE_PARSERS``. The
``PATH...``/``--out``/``--prices`` arguments and the quarantine file's name are the
shared ones of `training.import_calls_command`; the run functions are these importers'
own, for their extra options (``--events``, ``--cache-tokens-in-input``, ``--user``,
``--team``), progress over the files, and the columns of their own they write.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training.import_calls_command import add_call_import_arguments, quarantine_path

CALL_LOG_DOC = "docs/call-log.md"


def add_otel_parser(sources: argparse._SubParsersAction) -> None:
    from features.importers.genai_semconv import CACHE_TOKEN_MODES, INFERENCE_OPERATIONS

    otel = sources.add_parser(
        "otel",
        help="OpenTelemetry GenAI spans (OTLP/JSON) -> call log",
        description="Turn OTLP/JSON trace exports (the collector's file exporter output, one "
        "object per line, or saved OTLP/HTTP bodies) into a call log: one call per GenAI "
        f"inference span ({', '.join(INFERENCE_OPERATIONS)}), cost recomputed from the "
        "catalog. gen_ai.evaluation.result events become judge_score outcome events. Prints "
        f"a JSON summary. Mapping: {CALL_LOG_DOC}, 'Importing OpenTelemetry GenAI traces'.",
    )
    add_call_import_arguments(
        otel,
        paths_help="OTLP JSON files (.json, .jsonl, .ndjson, optionally .gz) or folders of "
        "them; logs exports holding evaluation events may be given too",
    )
    otel.add_argument(
        "--events",
        metavar="EVENTS",
        help="write the judge_score events of gen_ai.evaluation.result here (.jsonl, .csv or "
        ".parquet; for `outcome-router grade --events`). Default: not written, only counted",
    )
    otel.add_argument(
        "--cache-tokens-in-input",
        choices=CACHE_TOKEN_MODES,
        default="auto",
        help="whether gen_ai.usage.input_tokens counts cache reads and writes, as the "
        "convention says: 'auto' adds them where reads + writes exceed it (an "
        "instrumentation that copied Anthropic's input_tokens), 'included' quarantines such "
        "spans, 'excluded' always adds them (default: %(default)s)",
    )
    otel.set_defaults(func=run_otel)


def add_claude_code_parser(sources: argparse._SubParsersAction) -> None:
    claude = sources.add_parser(
        "claude-code",
        help="Claude Code session transcripts -> call log",
        description="Turn Claude Code transcripts (~/.claude/projects/<project>/<session>.jsonl "
        "and their subagents/agent-*.jsonl) into a call log: one call per API response "
        "(streamed chunks of one message counted once), cache reads and writes added into "
        "input_tokens, cost recomputed from the catalog beside the transcript's costUSD. "
        f"Prints a JSON summary. Mapping: {CALL_LOG_DOC}, 'Importing Claude Code transcripts'.",
    )
    add_call_import_arguments(
        claude,
        paths_help="folders searched recursively for .jsonl transcripts (e.g. "
        "~/.claude/projects), or transcript files",
    )
    claude.add_argument(
        "--user",
        metavar="NAME",
        help="user written on every call (a transcript folder is one person's). Default: "
        "the home folder's name in each transcript line's cwd (/home/NAME/..., "
        "/Users/NAME/...), else empty",
    )
    claude.add_argument(
        "--team",
        metavar="NAME",
        help="team written on every call. Default: empty",
    )
    claude.set_defaults(func=run_claude_code)


def _write(result, args: argparse.Namespace) -> dict:
    from features.call_log_files import write_quarantine
    from features.importers.imported_calls import write_calls

    out = Path(args.out)
    write_calls(result.frame, out)
    quarantine = quarantine_path(out)
    if result.quarantined:
        write_quarantine(result.quarantined, quarantine)
    else:
        quarantine.unlink(missing_ok=True)  # a previous run's rejects would mislead
    return {
        "out": str(out),
        "prices": str(args.prices) if args.prices else "features/data/default_prices.json",
        "quarantine": str(quarantine) if result.quarantined else None,
    }


def _catalog(args: argparse.Namespace):
    from features.importers.imported_calls import check_calls_path
    from features.prices import PriceCatalog

    check_calls_path(args.out)  # before minutes of reading, not after
    return PriceCatalog.load(args.prices)


def _progress(unit: str):
    """Progress over the files on stderr (plain text, as `training.dataset` shows it)."""
    from tqdm import tqdm

    return lambda files: tqdm(files, desc="reading", unit=unit, file=sys.stderr)


def run_otel(args: argparse.Namespace) -> int:
    from features.events import write_events
    from features.importers import IMPORTERS

    prices = _catalog(args)
    result = IMPORTERS["otel"].load()(
        args.paths,
        prices=prices,
        cache_tokens_in_input=args.cache_tokens_in_input,
        progress=_progress("file"),
    )
    printed = _write(result, args)
    if args.events:
        write_events(result.events, args.events)
        printed["events"] = str(args.events)
    elif len(result.events):
        printed["note"] = (
            f"{len(result.events)} judge_score events found; pass --events FILE to write them."
        )
    print(json.dumps({**printed, **result.to_dict()}, indent=2))
    return 0


def run_claude_code(args: argparse.Namespace) -> int:
    from features.importers import IMPORTERS

    prices = _catalog(args)
    result = IMPORTERS["claude-code"].load()(
        args.paths, prices=prices, user=args.user, team=args.team, progress=_progress("file")
    )
    printed = _write(result, args)
    print(json.dumps({**printed, **result.to_dict()}, indent=2))
    return 0
