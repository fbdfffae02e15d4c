"""The one entry point, ``outcome-router``.

Commands import their heavy dependencies only when run, so ``outcome-router serve``
never loads the training stack.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def _train(args: argparse.Namespace) -> int:
    from features.spec import FeatureSpec
    from training.train import DEFAULT_LEARNERS, TrainConfig, train

    learners = DEFAULT_LEARNERS
    if args.learner:
        wanted = args.learner.split(",")
        learners = [c for c in DEFAULT_LEARNERS if c[0] in wanted or c[1] in wanted]
        if not learners:
            raise ValueError(
                f"No learner setting matches {wanted}; available: "
                f"{[c[0] for c in DEFAULT_LEARNERS]}."
            )
    config = TrainConfig(
        logs=args.logs,
        out=args.out,
        prices=args.prices,
        candidates=args.candidates.split(",") if args.candidates else None,
        learners=learners,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
        spec=FeatureSpec(
            max_tokens=args.max_tokens, head_tokens=min(args.head_tokens, args.max_tokens - 2)
        ),
        track=not args.no_mlflow,
        mlruns=args.mlruns,
    )
    result = train(config)
    print(
        json.dumps(
            {
                "bundle": str(result.bundle.path),
                "router_version": result.bundle.router_version,
                "mlflow_run_id": result.run_id,
                "metrics": result.metrics,
            },
            indent=2,
        )
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate

    summary = evaluate(args.bundle, args.logs, args.out, prices=args.prices)
    keys = (
        "n_prompts",
        "savings_at_parity",
        "savings_at_95",
        "quality_at_quarter_cost",
        "area",
        "area_single_models",
    )
    print(json.dumps({k: summary.get(k) for k in keys}, indent=2))
    return 0


def _split(args: argparse.Namespace) -> int:
    from training.split import split_logs

    train_path, test_path = split_logs(
        args.logs, args.out, train_fraction=args.train_fraction, seed=args.seed
    )
    print(json.dumps({"train": str(train_path), "test": str(test_path)}))
    return 0


def _demo_request(args: argparse.Namespace) -> int:
    from training.demo import demo_request

    result = demo_request(args.bundle, args.request, host=args.host, port=args.port)
    print(json.dumps(result, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from serving.commands import add_route_parser, add_serve_parser

    parser = argparse.ArgumentParser(
        prog="outcome-router",
        description="Learn LLM routing from graded outcomes; serve it as POST /route.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a bundle from call logs")
    train.add_argument("--logs", nargs="+", required=True, help="call-log files or folders")
    train.add_argument("--out", required=True, help="bundle folder to write")
    train.add_argument("--prices", help="price catalog (LiteLLM's JSON format); default: shipped")
    train.add_argument("--candidates", help="comma-separated models to route between")
    train.add_argument("--learner", help="comma-separated learners to compare (default: all)")
    train.add_argument("--validation-fraction", type=float, default=0.2)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--max-tokens", type=int, default=256, help="routing token cap")
    train.add_argument("--head-tokens", type=int, default=64, help="tokens kept from the start")
    train.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    train.add_argument("--mlruns", default="mlruns", help="MLflow store folder")
    train.set_defaults(func=_train)

    evaluate = sub.add_parser("evaluate", help="evaluate a bundle on full-information logs")
    evaluate.add_argument("--bundle", required=True)
    evaluate.add_argument("--logs", nargs="+", required=True)
    evaluate.add_argument("--out", required=True, help="folder for metrics.json and report.html")
    evaluate.add_argument("--prices", help="price catalog for rows without cost_usd")
    evaluate.set_defaults(func=_evaluate)

    split = sub.add_parser("split", help="split call logs into train/test, grouped by prompt_id")
    split.add_argument("--logs", nargs="+", required=True)
    split.add_argument("--out", required=True, help="folder for train.parquet and test.parquet")
    split.add_argument("--train-fraction", type=float, default=0.7)
    split.add_argument("--seed", type=int, default=0)
    split.set_defaults(func=_split)

    demo = sub.add_parser("demo-request", help="serve a bundle, send one request, print it")
    demo.add_argument("--bundle", required=True)
    demo.add_argument("--request", required=True, help="JSON body for POST /route")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8765)
    demo.set_defaults(func=_demo_request)

    add_route_parser(sub)
    add_serve_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
