"""``outcome-router report spend``: what the spend bought, per team, user, model, task
and day, written as ``spend.json``, one CSV per grouping and ``spend.html``.

``report`` is a command group (``outcome-router report REPORT``) so later reports join
it with one line in `add_report_parser`. The figures and their definitions are in
:mod:`training.report.spend`; ``--bundle`` adds the off-policy counterfactual of
:mod:`training.report.spend_counterfactual`.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from training.cluster import add_cluster_argument

#: Files written in --out besides the CSVs.
SPEND_JSON = "spend.json"
QUARANTINE = "quarantine.jsonl"
EVENTS_QUARANTINE = "events-quarantine.jsonl"
#: ``outcome_source`` labels of a retried call (`features.grading`: a ``retry`` event,
#: or a retry found in the call log).
RETRY_LABEL = r"(?:^|;)retry(?:_in_logs)?:"


def add_report_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``report`` group (and its ``spend`` report) to the command line."""
    report = sub.add_parser(
        "report",
        help="reports on call logs: spend (what the spend bought)",
        description="Reports on call logs. `outcome-router report REPORT --help` lists a "
        "report's arguments.",
    )
    reports = report.add_subparsers(
        dest="report",
        required=True,
        metavar="REPORT",
        help="which report: spend (spend, waste and value per team, user, model, task, day)",
        parser_class=type(report),
    )
    add_spend_parser(reports)


def add_spend_parser(reports: argparse._SubParsersAction) -> None:
    spend = reports.add_parser(
        "spend",
        help="what the spend bought: spend, cache, outcomes and waste per team, user, "
        "model, task and day",
        description="Aggregate call logs (in DuckDB) into OUT/spend.json, one CSV per "
        "grouping (by_team.csv, by_user.csv, by_model.csv, by_task.csv, by_day.csv, "
        "sessions_by_spend.csv, sessions_by_context_growth.csv, cold_cache.csv, "
        "model_mix.csv, source_cost_by_model.csv) and OUT/spend.html: spend, tokens, cache "
        "hit rate and savings, good outcomes and cost per good outcome, waste (failed or "
        "retried calls), top sessions by spend and by context growth, cold-cache "
        "re-sends, the model mix per day and, with --bundle, what that router would have "
        "spent and achieved on the same traffic (off-policy estimate with its interval). "
        "Definitions: README.md, 'What the spend bought'. Prints a short JSON summary.",
    )
    spend.add_argument(
        "--logs",
        nargs="+",
        required=True,
        metavar="CALLS",
        help="call-log files or folders (.jsonl, .jsonl.gz, .csv, .csv.gz, .parquet); bad "
        f"rows go to OUT/{QUARANTINE} (format: docs/call-log.md)",
    )
    spend.add_argument(
        "--events",
        nargs="+",
        metavar="EVENTS",
        help="outcome-event files or folders: the calls are graded first, as `outcome-router "
        "grade` does (docs/grading.md); events matching no call go to "
        f"OUT/{EVENTS_QUARANTINE}. Default: the outcomes as logged, retries found in the "
        "logs",
    )
    spend.add_argument(
        "--config",
        metavar="TOML",
        help="grading config (scores, windows, retry rule) for --events and for finding "
        "retries in the logs. Default: the defaults of docs/grading.md",
    )
    spend.add_argument(
        "--as-of",
        metavar="T",
        help="with --events: grade as known at this ISO 8601 time (later events ignored, "
        "open windows pending). Default: now",
    )
    spend.add_argument(
        "--bundle",
        metavar="B",
        help="a bundle: estimate off-policy what it would have spent and achieved on the "
        "same traffic (calls with a prompt, an outcome and a cost). Default: no estimate",
    )
    spend.add_argument(
        "--prices",
        metavar="FILE",
        help="price catalog (LiteLLM's JSON format) for calls without cost_usd and for "
        "cache prices; default: the shipped features/data/default_prices.json",
    )
    spend.add_argument(
        "--top",
        type=int,
        default=20,
        metavar="N",
        help="rows of the top-sessions and cold-cache lists",
    )
    spend.add_argument(
        "--n-bootstrap",
        type=int,
        default=1000,
        metavar="N",
        help="with --bundle: bootstrap resamples of the 95%% intervals",
    )
    spend.add_argument(
        "--seed", type=int, default=0, help="with --bundle: seed of the bootstrap resampling"
    )
    spend.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="folder for spend.json, spend.html and the CSVs (created; files replaced)",
    )
    add_cluster_argument(spend)
    spend.set_defaults(func=run_spend)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def calls_table(frame, retried):
    """The Arrow table `training.report.spend.aggregate_spend` reads, from a call-log
    frame (`features.call_log.read_call_logs`, graded or not) and the retried flags.

    Vectorised column conversions only: timestamps (ISO 8601 text) to naive UTC.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from training.report.spend import CALL_COLUMNS

    columns: dict[str, Any] = {}
    for name, kind in CALL_COLUMNS.items():
        if name == "retried":
            values = pd.Series(np.asarray(retried, dtype=bool))
        elif name not in frame:
            columns[name] = pa.nulls(len(frame), kind)
            continue
        elif name == "timestamp":
            values = pd.to_datetime(frame[name], utc=True, format="ISO8601").dt.tz_convert(None)
        elif kind == pa.float64():
            values = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        else:
            values = frame[name].astype(object).where(frame[name].notna(), None)
        columns[name] = pa.array(values, type=kind, from_pandas=True)
    return pa.table(columns)


def _retried(frame, config, graded: bool):
    """Which calls were retried: by ``outcome_source`` after grading, else the retries
    found in the call log itself (`features.grading.detect_retries`)."""
    import numpy as np

    from features.grading import detect_retries

    if graded:
        return frame["outcome_source"].fillna("").astype(str).str.contains(RETRY_LABEL).to_numpy()
    flags = np.zeros(len(frame), dtype=bool)
    if config.detect_retries:
        flags[detect_retries(frame.reset_index(drop=True), config)["call"].to_numpy()] = True
    return flags


def _write_csv(rows: list[dict[str, Any]], path: Path, columns: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_spend_csvs(spend: dict[str, Any], out: Path) -> list[Path]:
    """One CSV per grouping and list of spend.json (header row even when empty)."""
    from training.report.spend import METRIC_KEYS

    paths = []
    for name, rows in spend["by"].items():
        paths.append(_write_csv(rows, out / f"by_{name}.csv", [name, *METRIC_KEYS]))
    sessions = spend["sessions"]
    paths.append(
        _write_csv(
            sessions["by_spend"],
            out / "sessions_by_spend.csv",
            ["session_id", "user", "team", "calls", "spend_usd", "good_outcomes", "first", "last"],
        )
    )
    paths.append(
        _write_csv(
            sessions["by_context_growth"],
            out / "sessions_by_context_growth.csv",
            [
                "session_id",
                "user",
                "team",
                "calls",
                "spend_usd",
                "start_input_tokens",
                "end_input_tokens",
                "growth_tokens",
                "turns_without_fresh_start",
                "run_spend_usd",
            ],
        )
    )
    paths.append(
        _write_csv(
            spend["cold_cache"]["top"],
            out / "cold_cache.csv",
            ["session_id", "model", "resends", "extra_usd"],
        )
    )
    paths.append(
        _write_csv(
            spend["model_mix"], out / "model_mix.csv", ["day", "model", "calls", "spend_usd"]
        )
    )
    paths.append(
        _write_csv(
            spend["source_cost"]["by_model"],
            out / "source_cost_by_model.csv",
            ["model", "calls", "source_spend_usd", "recomputed_spend_usd", "difference_usd"],
        )
    )
    return paths


def _spend_on_cluster(args, out: Path, prices, settings, config):
    """``report spend --cluster``: read, grade and aggregate on the workers
    (`training.report.spend_cluster`); returns the figures, grading and rejected rows."""
    from features.call_log import write_quarantine
    from features.call_log_dataset import open_call_log_dataset
    from features.events import read_events
    from training.cluster import connect
    from training.report.spend_cluster import spend_on_cluster

    dataset = open_call_log_dataset(args.logs)
    events = None
    if args.events:
        _say(f"reading events: {' '.join(args.events)}")
        events = read_events(args.events)
    with connect(args.cluster) as client:
        result = spend_on_cluster(
            client,
            dataset,
            prices=prices,
            settings=settings,
            config=config,
            events=None if events is None else events.frame,
            as_of=args.as_of,
            calls_quarantine=out / QUARANTINE,
            table_of=calls_table,
            retried_of=_retried,
        )
    if result.calls_quarantined:
        _say(
            f"{result.calls_quarantined} rows quarantined (bad rows of the logs) -> "
            f"{out / QUARANTINE}"
        )
    events_quarantine = out / EVENTS_QUARANTINE
    rejected = []
    if events is not None:
        rejected = events.quarantined.to_dict(orient="records") if events.n_quarantined else []
        rejected += result.events_quarantined.to_dict(orient="records")
    if rejected:
        write_quarantine(rejected, events_quarantine)
    else:
        events_quarantine.unlink(missing_ok=True)
    return result.figures, result.grading, result.calls_quarantined


def run_spend(args: argparse.Namespace) -> int:
    from features.call_log import read_call_logs, write_quarantine
    from features.events import read_events
    from features.grading import GradingConfig, grade
    from features.prices import PriceCatalog
    from training.report.spend import SpendSettings, aggregate_spend
    from training.report.spend_page import write_spend_page

    if args.as_of and not args.events:
        raise ValueError("--as-of sets the time events are graded at: give --events too.")
    if args.top < 1:
        raise ValueError(f"--top must be at least 1, got {args.top}.")
    bundle = None
    if args.bundle:  # a wrong --bundle fails now, not after the aggregation
        from serving.bundle import load_bundle

        bundle = load_bundle(args.bundle)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    prices = PriceCatalog.load(args.prices)
    config = GradingConfig.from_toml(args.config) if args.config else GradingConfig()
    settings = SpendSettings(top=args.top)
    if getattr(args, "cluster", None):
        if bundle is not None:
            raise ValueError(
                "--bundle with --cluster: the off-policy estimate needs the prompts in one "
                "process; run it without --cluster (on a sample of days), or leave --bundle out."
            )
        figures, grading, n_quarantined = _spend_on_cluster(args, out, prices, settings, config)
        frame = None
    else:
        _say(f"reading call logs: {' '.join(args.logs)}")
        # Spend logs often keep no prompt (LiteLLM stores none by default): the report needs
        # none; the --bundle estimate leaves such calls out and says how many.
        read = read_call_logs(
            args.logs, prices=prices, quarantine_path=out / QUARANTINE, require_prompt=False
        )
        if read.n_quarantined:
            _say(
                f"{read.n_quarantined} rows quarantined (bad rows of the logs) -> "
                f"{out / QUARANTINE}"
            )
        frame = read.frame
        grading = None
        events_quarantine = out / EVENTS_QUARANTINE
        if args.events:
            _say(f"reading events: {' '.join(args.events)}")
            events = read_events(args.events)
            _say(f"grading {len(frame)} calls with {len(events.frame)} events")
            result = grade(frame, events.frame, config, as_of=args.as_of)
            frame = result.graded
            grading = result.to_dict()
            rejected = events.quarantined.to_dict(orient="records") if events.n_quarantined else []
            rejected += result.quarantined.to_dict(orient="records")
            if rejected:
                write_quarantine(rejected, events_quarantine)
            else:
                events_quarantine.unlink(missing_ok=True)
        else:
            events_quarantine.unlink(missing_ok=True)
        retried = _retried(frame, config, graded=args.events is not None)
        _say(f"aggregating {len(frame)} calls")
        figures = aggregate_spend(calls_table(frame, retried), prices, settings)
        n_quarantined = read.n_quarantined
    counterfactual = None
    if bundle is not None:
        from training.report.spend_counterfactual import estimate_counterfactual

        _say(f"estimating what {args.bundle} would have spent and achieved (off-policy)")
        counterfactual = estimate_counterfactual(
            bundle, frame, n_bootstrap=args.n_bootstrap, random_state=args.seed
        ).to_dict()
        for warning in counterfactual["warnings"]:
            _say(f"warning: {warning}")
    spend = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "logs": [str(p) for p in args.logs],
        "window": figures["window"],
        "currency": "USD",
        "total": figures["total"],
        "by": figures["by"],
        "sessions": figures["sessions"],
        "cold_cache": figures["cold_cache"],
        "model_mix": figures["model_mix"],
        "source_cost": figures["source_cost"],
        "counterfactual": counterfactual,
        "calls_quarantined": n_quarantined,
        "grading": grading,
        "settings": {
            "good_outcome_at_least": 0.5,
            "top": settings.top,
            "fresh_start_fraction": settings.fresh_start_fraction,
            "cold_cache_fraction": settings.cold_cache_fraction,
            "cold_cache_max_gap": settings.cold_cache_max_gap,
            "prices": args.prices or "features/data/default_prices.json",
        },
    }
    json_path = out / SPEND_JSON
    json_path.write_text(json.dumps(spend, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    csvs = write_spend_csvs(spend, out)
    page = write_spend_page(spend, out)
    total = spend["total"]
    printed = {
        "out": str(out),
        "spend_json": str(json_path),
        "spend_html": str(page),
        "csv": [p.name for p in csvs],
        "window": spend["window"],
        "total": {
            k: total[k]
            for k in (
                "calls",
                "spend_usd",
                "cache_hit_rate",
                "cache_saved_usd",
                "good_outcomes",
                "cost_per_good_outcome_usd",
                "wasted_usd",
            )
        },
        "cold_cache_extra_usd": spend["cold_cache"]["extra_usd"],
        "calls_quarantined": n_quarantined,
    }
    if counterfactual is not None:
        printed["counterfactual"] = {
            "estimator": counterfactual["estimator"],
            "calls": counterfactual["calls"],
            "logged": counterfactual["logged"],
            "router": {k: counterfactual["router"][k] for k in ("quality", "spend_usd")},
            "warnings": len(counterfactual["warnings"]),
        }
    print(json.dumps(printed, indent=2))
    return 0
