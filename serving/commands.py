"""The ``serve`` and ``route`` commands of ``outcome-router``.

`training.cli` owns the entry point and calls `add_serve_parser` and
`add_route_parser`; each sets ``func`` to a function taking the parsed arguments.
Everything heavy (uvicorn, onnxruntime, the bundle) is imported or loaded inside
those functions, so ``outcome-router --help`` stays instant.

``route`` decides with the same `serving.policy.choose` and the same policy
defaults as ``POST /route``: an offline run answers what the service would answer.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

MODELS_URI_PREFIX = "models:/"


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


# ----------------------------------------------------- registry bundles (issue 3)
# ``--bundle models:/NAME@ALIAS`` is resolved by `training.registry` in a child
# process: the serving process must never import mlflow (nor its dependencies).


def _add_mlruns_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mlruns",
        default="mlruns",
        help="MLflow store folder for models:/ bundles, which are cached under "
        "MLRUNS/served ($MLFLOW_TRACKING_URI overrides the store; default: %(default)s).",
    )


def fetch_registry_bundle(
    uri: str, mlruns: str | Path = "mlruns", *, timeout_s: float | None = None
) -> Path:
    """Download a ``models:/`` bundle through a child process; return its local folder.

    The child, ``python -m training.registry download``, talks to MLflow, copies the
    version into ``<mlruns>/served/<name>-<version>`` (reused when already there
    and intact) and prints the folder. This process only reads that line, so it
    never imports mlflow, and still verifies the folder's hashes itself when it
    loads it.

    Parameters
    ----------
    timeout_s : float, optional
        Give up on a child that runs longer (a hung store must not hold a running
        server's reload lock forever). None waits as long as it takes.

    Raises
    ------
    ValueError
        With the child's one-line reason (unknown alias or version, no store, no
        training extra installed, ...), or when it ran out of time.
    """
    import subprocess

    cmd = [sys.executable, "-m", "training.registry", "download", uri, "--mlruns", str(mlruns)]
    env = {**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=env, check=False, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        raise ValueError(
            f"Could not fetch {uri} from the MLflow registry within {timeout_s:g} s."
        ) from None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        errors = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
        reason = errors[-1].removeprefix("error: ") if errors else proc.stderr.strip()[-2000:]
        raise ValueError(f"Could not fetch {uri} from the MLflow registry: {reason}")
    return Path(lines[-1])


def resolve_bundle_arg(bundle: str, mlruns: str | Path = "mlruns") -> str:
    """A bundle folder as given, or the local copy of a ``models:/`` bundle."""
    if not bundle.startswith(MODELS_URI_PREFIX):
        return bundle
    path = fetch_registry_bundle(bundle, mlruns)
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
    parser.add_argument(
        "--fallback-model", help="Model answered on failure (default: the bundle's)."
    )
    parser.add_argument(
        "--time-budget-ms",
        type=_float_arg("--time-budget-ms", low=0.0, low_open=True),
        help="Decisions slower than this answer the fallback model (default: 50).",
    )
    parser.add_argument("--decision-log", help="JSONL file receiving one line per decision.")
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
            "DECISIONS.jsonl lines {prompt_id, model, reason, scores: [{model, p_success, "
            "expected_cost_usd}]} in input order, deciding exactly as POST /route does."
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
    """Run `route_file` with progress on stderr and a summary on stdout."""
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


def _describe(error: Any) -> str:
    """``field.path: message`` of one pydantic error (no path for whole-line errors)."""
    message = error["msg"].removeprefix("Value error, ")
    path = ".".join(map(str, error["loc"]))
    return f"{path}: {message}" if path else message


def _read_prompts(path: Path) -> Iterator[tuple[int, Any, str | None, list | None]]:
    """``(line number, prompt_id, prompt, messages)`` per non-blank line, validated.

    Raises
    ------
    ValueError
        Naming the file and line of the first bad line.
    """
    from pydantic import ValidationError

    from serving.schemas import RouteRequest

    seen: dict[Any, int] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not valid JSON ({exc}).") from None
            if not isinstance(row, dict):
                raise ValueError(
                    f"{where}: expected a JSON object {{prompt_id, prompt | messages}}, "
                    f"got {type(row).__name__}."
                )
            prompt_id = row.get("prompt_id")
            if isinstance(prompt_id, bool) or not isinstance(prompt_id, str | int):
                raise ValueError(
                    f"{where}: `prompt_id` must be a string or an integer, got {prompt_id!r}."
                )
            if prompt_id in seen:
                raise ValueError(
                    f"{where}: prompt_id {prompt_id!r} repeats line {seen[prompt_id]}; "
                    "prompt ids must be unique."
                )
            seen[prompt_id] = lineno
            try:
                request = RouteRequest.model_validate(
                    {"prompt": row.get("prompt"), "messages": row.get("messages")}
                )
            except ValidationError as exc:
                problems = "; ".join(_describe(e) for e in exc.errors())
                raise ValueError(f"{where}: {problems}.") from None
            prompt, messages = request.routing_input()
            yield lineno, prompt_id, prompt, messages


def route_file(
    bundle: str | Path,
    input_path: str | Path,
    out_path: str | Path,
    *,
    value_usd: float | None = None,
    min_success: float | None = None,
    max_cost_usd: float | None = None,
    batch_size: int = 64,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> Counter[str]:
    """Decide for every prompt of a JSONL file and write one decision per line.

    Parameters
    ----------
    bundle : path
        Bundle folder.
    input_path : path
        JSONL lines ``{prompt_id, prompt | messages}`` (blank lines are skipped).
    out_path : path
        Written in input order via a temporary file, so a run that fails on a bad
        line leaves no partial output behind.
    value_usd, min_success, max_cost_usd : float, optional
        Policy knobs; None takes the bundle's defaults, as ``POST /route`` does.
    batch_size : int
        Prompts read and scored per chunk (bounds memory; every prompt is still
        encoded on its own, exactly as /route encodes it).
    workers : int
        Prompts encoded in parallel threads.
    progress : callable, optional
        Called with the number of prompts routed so far after each batch.

    Returns
    -------
    collections.Counter
        Decisions per chosen model.

    Raises
    ------
    ValueError
        For a bad input line (with its line number) or a bundle that fails
        verification.
    """
    from serving.api.deps import policy_params
    from serving.bundle import load_bundle
    from serving.policy import REASON_NO_FEASIBLE, REASON_UTILITY, choose
    from serving.scoring import BundleScorer

    loaded = load_bundle(bundle)
    params = policy_params(
        loaded.policy, value_usd=value_usd, min_success=min_success, max_cost_usd=max_cost_usd
    )
    scorer = BundleScorer(loaded, intra_op_threads=1, workers=workers)
    names = scorer.candidates
    counts: Counter[str] = Counter()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = out_path.with_name(out_path.name + ".tmp")

    def flush(ids: list[Any], texts: list[str], out: Any) -> None:
        scores = scorer.score_texts(texts)
        p, cost = scores.p_success, scores.expected_cost_usd
        action, feasible = choose(p, cost, params)
        for i, prompt_id in enumerate(ids):
            model = names[int(action[i])]
            counts[model] += 1
            record = {
                "prompt_id": prompt_id,
                "model": model,
                "reason": REASON_UTILITY if feasible[i] else REASON_NO_FEASIBLE,
                "scores": [
                    {
                        "model": name,
                        "p_success": float(p[i, k]),
                        "expected_cost_usd": float(cost[i, k]),
                    }
                    for k, name in enumerate(names)
                ],
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        if progress is not None:
            progress(counts.total())

    try:
        with open(tmp_path, "w", encoding="utf-8") as out:
            ids: list[Any] = []
            texts: list[str] = []
            for _, prompt_id, prompt, messages in _read_prompts(Path(input_path)):
                ids.append(prompt_id)
                texts.append(scorer.featurizer.text_of(prompt, messages))
                if len(ids) == batch_size:
                    flush(ids, texts, out)
                    ids, texts = [], []
            if ids:
                flush(ids, texts, out)
        os.replace(tmp_path, out_path)
    finally:
        tmp_path.unlink(missing_ok=True)
    return counts
