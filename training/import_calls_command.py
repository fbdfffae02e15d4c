"""``outcome-router import SOURCE PATH... --out CALLS [--prices FILE]`` for the sources
that produce a call log (``litellm-spend``; ``otel`` and ``claude-code`` can reuse it).

A source's parser function goes in ``training/grade_command.py`` ``SOURCE_PARSERS``
(one line). It builds its sub-parser with `add_call_import_arguments` (the shared
``PATH...``, ``--out`` and ``--prices``) and runs with `run_call_import`, which loads the
catalog, calls the importer registered in `features.importers.IMPORTERS` as
``import_x(paths, prices=catalog) -> CallImport``, writes the call log and the
quarantine beside it, and prints the summary as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

CALL_LOG_DOC = "docs/call-log.md"
OUT_SUFFIXES = (".jsonl", ".jsonl.gz", ".csv", ".csv.gz", ".parquet")


def add_call_import_arguments(parser: argparse.ArgumentParser, *, paths_help: str) -> None:
    """The arguments every call-log importer shares: ``PATH...``, ``--out CALLS`` and
    ``--prices FILE``. ``paths_help`` says what the source's files are."""
    parser.add_argument("paths", nargs="+", metavar="PATH", help=paths_help)
    parser.add_argument(
        "--out",
        required=True,
        metavar="CALLS",
        help="call log to write: .jsonl, .jsonl.gz, .csv, .csv.gz or .parquet (replaced); "
        f"rejected rows go to CALLS.quarantine.jsonl. Format: {CALL_LOG_DOC}",
    )
    parser.add_argument(
        "--prices",
        metavar="FILE",
        help="price catalog in LiteLLM's model_prices_and_context_window.json format that "
        "recomputes every call's cost_usd. Default: the shipped "
        "features/data/default_prices.json",
    )


def quarantine_path(out: str | Path) -> Path:
    """``CALLS.quarantine.jsonl`` beside ``--out`` (the call-log extension dropped)."""
    out = Path(out)
    name = out.name
    for ext in OUT_SUFFIXES:
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return out.with_name(name + ".quarantine.jsonl")


def run_call_import(source: str) -> Callable[[argparse.Namespace], int]:
    """The run function of ``outcome-router import SOURCE`` for a call-log source."""

    def run(args: argparse.Namespace) -> int:
        from features.call_log import write_call_log, write_quarantine
        from features.importers import IMPORTERS
        from features.prices import PriceCatalog

        out = Path(args.out)
        if not out.name.endswith(OUT_SUFFIXES):
            raise ValueError(
                f"--out {out}: name the call log {', '.join(OUT_SUFFIXES)} (format: "
                f"{CALL_LOG_DOC})."
            )
        catalog = PriceCatalog.load(args.prices)
        print(f"reading {source} exports: {' '.join(args.paths)}", file=sys.stderr)
        result = IMPORTERS[source].load()(args.paths, prices=catalog)
        write_call_log(result.frame, out)
        rejected = quarantine_path(out)
        if result.quarantined:
            write_quarantine(result.quarantined, rejected)
        else:
            rejected.unlink(missing_ok=True)  # a previous run's rejects would mislead
        printed = {
            "out": str(out),
            "prices": str(args.prices) if args.prices else "features/data/default_prices.json",
            "quarantine": str(rejected) if result.quarantined else None,
            **result.to_dict(),
        }
        if result.unpriced:
            printed["note"] = (
                f"{sum(result.unpriced.values())} calls of {len(result.unpriced)} models the "
                "catalog does not price keep the source's spend as cost_usd; give a fuller "
                "catalog with --prices (LiteLLM's own file works as-is)."
            )
        print(json.dumps(printed, indent=2))
        return 0

    return run


def add_litellm_spend_parser(sources: argparse._SubParsersAction) -> None:
    """``outcome-router import litellm-spend``."""
    parser = sources.add_parser(
        "litellm-spend",
        help="LiteLLM proxy spend logs (LiteLLM_SpendLogs export) -> call log",
        description="Turn exports of the LiteLLM proxy's LiteLLM_SpendLogs table (CSV, the "
        "GET /spend/logs JSON array, or JSON lines) into a call log: tokens with cache reads, "
        "5-minute and 1-hour cache writes and reasoning from metadata.usage_object, "
        "attribution (user, team, session, task from a task:X request tag), LiteLLM's spend "
        "kept as source_cost_usd and cost_usd recomputed from the price catalog. Prints rows "
        "read, calls written, quarantined, and the stated against the recomputed spend by "
        f"model. See {CALL_LOG_DOC}, 'Importing from LiteLLM'.",
    )
    add_call_import_arguments(
        parser,
        paths_help="spend-log exports (.csv, .json, .jsonl, optionally .gz) or folders of them",
    )
    parser.set_defaults(func=run_call_import("litellm-spend"))
