"""The ``serve`` and ``route`` commands of ``outcome-router``: argument parsing only.

`training.cli` owns the entry point and calls `add_serve_parser` and
`add_route_parser`; each sets ``func`` to a function taking the parsed arguments,
which calls the work where it lives (`serving.app` under uvicorn,
`serving.batch_routing.route_file`). Everything heavy (uvicorn, onnxruntime, the
bundle) is imported or loaded inside those functions, so ``outcome-router --help``
stays instant.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

from serving.registry_fetch import is_registry_uri, local_bundle


def _float_arg(name: str, *, low: float, high: float = math.inf, low_open: bool = False):
    """argparse ``type=`` for a finite float in a range, with a message naming the flag."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} expects a number, got {text!r}") from None
        below = value <= low if low_open else value < low
        if not math.isfinite(value) or below or value > high:
            bracket = "(" if low_open else "["
            upper = "inf)" if math.isinf(high) else f"{high}]"
            raise argparse.ArgumentTypeError(
                f"{name} expects a finite number in {bracket}{low}, {upper}, got {text!r}"
            )
        return value

    return parse


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _add_policy_knobs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--value-usd",
        type=_float_arg("--value-usd", low=0.0),
        help="What one good outcome is worth in USD (default: the bundle's policy).",
    )
    parser.add_argument(
        "--min-success",
        type=_float_arg("--min-success", low=0.0, high=1.0),
        help="Floor on the success probability (default: the bundle's policy).",
    )
    parser.add_argument(
        "--max-cost-usd",
        type=_float_arg("--max-cost-usd", low=0.0, low_open=True),
        help="Budget on the expected cost of one call (default: the bundle's policy).",
    )


def _add_mlruns_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mlruns",
        default="mlruns",
        help="MLflow store folder for models:/ bundles, which are cached under "
        "MLRUNS/served ($MLFLOW_TRACKING_URI overrides the store; default: %(default)s).",
    )


def resolve_bundle_arg(bundle: str, mlruns: str | Path = "mlruns") -> str:
    """A bundle folder as given, or the local copy of a ``models:/`` bundle (printed)."""
    if not is_registry_uri(bundle):
        return bundle
    path = local_bundle(bundle, mlruns)
    print(f"{bundle} -> {path}", file=sys.stderr, flush=True)
    return str(path)


# --------------------------------------------------------------------------- serve


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``serve``: run the /route service on a bundle with uvicorn."""
    parser = subparsers.add_parser(
        "serve",
        help="Serve POST /route, /health and /metrics from a bundle.",
        description=(
            "Serve POST /route from a bundle with uvicorn, in-process and with one worker "
            "(uvicorn --workers leaves TCP_NODELAY off, which adds latency). Other "
            "settings come from OUTCOME_ROUTER_* environment variables."
        ),
    )
    parser.add_argument(
        "--bundle",
        help="Bundle folder, or models:/NAME@ALIAS or models:/NAME/VERSION from the MLflow "
        "registry (default: $OUTCOME_ROUTER_BUNDLE).",
    )
    _add_mlruns_option(parser)
    parser.add_argument("--host", default="127.0.0.1", help="Interface (default: %(default)s).")
    parser.add_argument("--port", type=int, default=8000, help="Port (default: %(default)s).")
    # Defaults of the settings below live in `serving.config.Settings` (not imported
    # here: it would slow down --help); tests check the help against them.
    parser.add_argument(
        "--fallback-model",
        help="Model answered when deciding fails or is too slow (default: "
        "$OUTCOME_ROUTER_FALLBACK_MODEL, else the bundle's policy.fallback_model).",
    )
    parser.add_argument(
        "--time-budget-ms",
        type=_float_arg("--time-budget-ms", low=0.0, low_open=True),
        help="Decisions slower than this answer the fallback model (default: "
        "$OUTCOME_ROUTER_TIME_BUDGET_MS, else 250).",
    )
    parser.add_argument(
        "--decision-log",
        help="JSONL file receiving one line per decision (default: "
        "$OUTCOME_ROUTER_DECISION_LOG, else none).",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level (default: %(default)s).",
    )
    parser.add_argument(
        "--http",
        default="auto",
        choices=["auto", "h11", "httptools"],
        help="uvicorn HTTP parser; auto takes httptools when installed (default: %(default)s).",
    )
    parser.add_argument(
        "--loop",
        default="auto",
        choices=["auto", "asyncio", "uvloop"],
        help="Event loop; auto takes uvloop when installed (default: %(default)s).",
    )
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="Log one line per request (off by default: the decision log records every "
        "decision, and a log line per request costs latency).",
    )
    parser.set_defaults(func=serve_command)
    return parser


def serve_command(args: argparse.Namespace) -> int:
    """Check the bundle, then run uvicorn until interrupted.

    Raises
    ------
    ValueError
        For a registry URI that does not resolve, missing or invalid settings, or a
        bundle that fails verification (`serving.bundle.BundleError`).
    """
    from pydantic import ValidationError

    from serving.bundle import load_bundle
    from serving.config import Settings

    source = args.bundle or os.environ.get("OUTCOME_ROUTER_BUNDLE")
    bundle = resolve_bundle_arg(source, args.mlruns) if source else None
    overrides = {
        "bundle": bundle,
        # A bodyless POST /admin/reload re-resolves the URI (a moved alias), not the
        # folder it resolved to at start-up.
        "bundle_source": source if source != bundle else None,
        "mlruns": args.mlruns,
        "fallback_model": args.fallback_model,
        "time_budget_ms": args.time_budget_ms,
        "decision_log": args.decision_log,
    }
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ValueError(
            f"Invalid serving settings (pass --bundle PATH or set OUTCOME_ROUTER_BUNDLE): {exc}"
        ) from exc
    # Verify up front so a bad bundle is one clear line, not a lifespan traceback.
    load_bundle(settings.bundle)

    import uvicorn

    from serving.app import create_app

    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        http=getattr(args, "http", "auto"),
        loop=getattr(args, "loop", "auto"),
        access_log=getattr(args, "access_log", False),
    )
    return 0


# --------------------------------------------------------------------------- route


def add_route_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``route``: decide for every prompt of a JSONL file, as /route would."""
    parser = subparsers.add_parser(
        "route",
        help="Route a JSONL file of prompts with a bundle, offline.",
        description=(
            "Read PROMPTS.jsonl lines {prompt_id, prompt | messages} and write "
            "DECISIONS.jsonl lines {prompt_id, model, reason, propensity, scores: [{model, "
            "p_success, expected_cost_usd, utility}]} in input order, deciding exactly as "
            "POST /route does. Lines with a session_id (and an optional ISO 8601 "
            "timestamp) are routed cache-aware in file order, as /route routes a session, "
            "and their decisions add cache_assumed."
        ),
    )
    parser.add_argument(
        "--bundle",
        required=True,
        help="Bundle folder, or models:/NAME@ALIAS or models:/NAME/VERSION.",
    )
    _add_mlruns_option(parser)
    parser.add_argument("--input", required=True, help="PROMPTS.jsonl.")
    parser.add_argument("--out", required=True, help="DECISIONS.jsonl (replaced when done).")
    _add_policy_knobs(parser)
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        default=64,
        help="Prompts read and scored per chunk (default: %(default)s).",
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=os.cpu_count() or 1,
        help="Prompts encoded in parallel (default: all cores, %(default)s).",
    )
    parser.set_defaults(func=route_command)
    return parser


def route_command(args: argparse.Namespace) -> int:
    """Run `serving.batch_routing.route_file` with progress on stderr and a summary
    on stdout."""
    from serving.batch_routing import route_file

    interactive = sys.stderr.isatty()

    def progress(n: int) -> None:
        if interactive:
            print(f"\rrouted {n} prompts", end="", file=sys.stderr, flush=True)

    counts = route_file(
        resolve_bundle_arg(args.bundle, args.mlruns),
        args.input,
        args.out,
        value_usd=args.value_usd,
        min_success=args.min_success,
        max_cost_usd=args.max_cost_usd,
        batch_size=args.batch_size,
        workers=args.threads,
        progress=progress,
    )
    if interactive:
        print(file=sys.stderr)
    total = sum(counts.values())
    shares = ", ".join(f"{m} {n}" for m, n in counts.most_common())
    print(f"Routed {total} prompts to {args.out} ({shares or 'none'}).")
    return 0
