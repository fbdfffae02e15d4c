"""The one entry point, ``outcome-router``.

Commands import their heavy dependencies only when run, so ``outcome-router serve``
never loads the training stack.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def learner_configs(wanted: list[str]) -> list:
    """Learner settings for ``--learner``: default-grid labels, or registered names.

    A registered name picks every default-grid setting of that learner, or the
    learner with its own defaults when the grid has none.
    """
    from training.learners import LEARNERS
    from training.train import DEFAULT_LEARNERS

    configs = []
    for name in wanted:
        matches = [c for c in DEFAULT_LEARNERS if name in (c[0], c[1])]
        if not matches and name in LEARNERS:
            matches = [(name, name, {})]
        if not matches:
            raise ValueError(
                f"No learner setting matches {name!r}; grid labels: "
                f"{[c[0] for c in DEFAULT_LEARNERS]}; registered learners: {sorted(LEARNERS)}."
            )
        configs.extend(c for c in matches if c not in configs)
    return configs


def _train(args: argparse.Namespace) -> int:
    from features.spec import FeatureSpec
    from training.train import DEFAULT_LEARNERS, TrainConfig, train

    learners = DEFAULT_LEARNERS
    if args.learner:
        learners = learner_configs(args.learner.split(","))
    config = TrainConfig(
        logs=args.logs,
        out=args.out,
        prices=args.prices,
        candidates=args.candidates.split(",") if args.candidates else None,
        learners=learners,
        target=args.target,
        n_folds=args.folds,
        cv_repeats=args.cv_repeats,
        cv_max_prompts=args.cv_max_prompts,
        seed=args.seed,
        calibrate=not args.no_calibration,
        spec=FeatureSpec.for_encoder(
            args.encoder,
            max_tokens=args.max_tokens,
            head_tokens=min(args.head_tokens, args.max_tokens - 2),
        ),
        track=not args.no_mlflow,
        register_as=args.register_as or None,
        mlruns=args.mlruns,
    )
    result = train(config)
    print(
        json.dumps(
            {
                "bundle": str(result.bundle.path),
                "router_version": result.bundle.router_version,
                "mlflow_run_id": result.run_id,
                "model_version": result.model_version,
                "learner": result.validation.get("chosen"),
                # The chosen setting's figures; every setting's are in the manifest and MLflow.
                "metrics": {
                    k: v
                    for k, v in result.metrics.items()
                    if not any(k.endswith(f"_{label}") for label in result.validation["learners"])
                },
            },
            indent=2,
        )
    )
    return 0


# --- evaluate (owned by the evaluation report; keep edits inside these markers) ---
def _evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from training.evaluate import evaluate

    pairs = []
    for text in args.pair or []:
        names = [n.strip() for n in text.split(",")]
        if len(names) != 2 or not all(names):
            raise ValueError(f"--pair takes two comma-separated models, got {text!r}.")
        pairs.append((names[0], names[1]))
    summary = evaluate(
        args.bundle,
        args.logs,
        args.out,
        prices=args.prices,
        compare=args.compare or [],
        pairs=pairs,
    )
    keys = (
        "n_prompts",
        "savings_at_parity",
        "savings_at_95",
        "quality_at_quarter_cost",
        "area",
        "area_single_models",
        "area_oracle",
        "apgr",
        "cpt_50",
        "cpt_80",
    )
    printed = {k: summary.get(k) for k in keys}
    if summary.get("comparisons"):
        printed["comparisons"] = {
            c["label"]: {k: c["row"].get(k) for k in ("area", "savings_at_parity", "apgr")}
            for c in summary["comparisons"]
        }
    printed["report"] = str(Path(args.out) / "report.html")
    print(json.dumps(printed, indent=2))
    return 0


# --- end evaluate ---


def _split(args: argparse.Namespace) -> int:
    from training.split import split_logs

    split = split_logs(args.logs, args.out, train_fraction=args.train_fraction, seed=args.seed)
    print(json.dumps(split.to_dict(), indent=2))
    return 0


def _demo_request(args: argparse.Namespace) -> int:
    from training.demo import demo_request

    result = demo_request(args.bundle, args.request, host=args.host, port=args.port)
    print(json.dumps(result, indent=2))
    return 0


# --------------------------------------------------------------- promote (issue 3)
def _promote(args: argparse.Namespace) -> int:
    from training.registry import promote

    result = promote(args.version, name=args.name, alias=args.alias, root=args.mlruns)
    print(json.dumps(result, indent=2))
    return 0


def _add_promote_parser(sub) -> None:
    from training.registry import DEFAULT_ALIAS, DEFAULT_MODEL_NAME

    promote = sub.add_parser(
        "promote",
        help="point a registry alias (default: champion) at a registered bundle version",
        description="Set ALIAS of the registered model NAME to VERSION, so "
        "`serve --bundle models:/NAME@ALIAS` serves that version from its next start.",
    )
    promote.add_argument("version", help="registered version number, e.g. 3")
    promote.add_argument("--name", default=DEFAULT_MODEL_NAME, help="registered model name")
    promote.add_argument("--alias", default=DEFAULT_ALIAS, help="alias to set")
    promote.add_argument("--mlruns", default="mlruns", help="MLflow store folder")
    promote.set_defaults(func=_promote)


# --------------------------------------------------------------------------------


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
    train.add_argument(
        "--target",
        default="parity",
        help="default policy: parity | budget:USD (mean cost per request) | floor:QUALITY",
    )
    train.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    train.add_argument(
        "--cv-repeats",
        type=int,
        default=1,
        help="cross-validation runs on fresh cuts of the prompts, scores averaged",
    )
    train.add_argument(
        "--cv-max-prompts",
        type=int,
        default=4000,
        help="cross-validate on a sample of at most this many prompts (refit uses all)",
    )
    train.add_argument("--no-calibration", action="store_true", help="skip calibration")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--max-tokens", type=int, default=256, help="routing token cap")
    train.add_argument("--head-tokens", type=int, default=64, help="tokens kept from the start")
    train.add_argument(
        "--encoder",
        choices=["minilm", "static"],
        default="minilm",
        help="sentence encoder: int8 MiniLM, or its static token vectors distilled offline "
        "(about 50x faster on a long prompt, see README 'Speed'; default: %(default)s)",
    )
    train.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    train.add_argument(
        "--register-as",
        default="outcome-router",
        help="MLflow registered model name ('' to track without registering)",
    )
    train.add_argument("--mlruns", default="mlruns", help="MLflow store folder")
    train.set_defaults(func=_train)

    evaluate = sub.add_parser("evaluate", help="evaluate a bundle on full-information logs")
    evaluate.add_argument("--bundle", required=True)
    evaluate.add_argument("--logs", nargs="+", required=True)
    evaluate.add_argument("--out", required=True, help="folder for metrics.json and report.html")
    evaluate.add_argument("--prices", help="price catalog for rows without cost_usd")
    # --- evaluate options (evaluation report) ---
    evaluate.add_argument(
        "--compare",
        nargs="+",
        metavar="BUNDLE",
        help="other bundles to draw on the same plot and compare (e.g. one per learner)",
    )
    evaluate.add_argument(
        "--pair",
        action="append",
        metavar="WEAK,STRONG",
        help="model pair for RouteLLM's APGR/CPT besides (cheapest, best single); repeatable",
    )
    # --- end evaluate options ---
    evaluate.set_defaults(func=_evaluate)

    split = sub.add_parser("split", help="split call logs into train/test, grouped by prompt_id")
    split.add_argument(
        "--logs",
        nargs="+",
        required=True,
        help="call-log files or folders; bad rows go to OUT/quarantine.jsonl",
    )
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
    _add_promote_parser(sub)
    _link_log_format(sub)
    return parser


#: The page that documents the call-log format (`features.call_log_files.FORMAT_DOC`).
LOG_FORMAT_DOC = "docs/call-log.md"


def _link_log_format(sub: argparse._SubParsersAction) -> None:
    """Every command's ``--logs`` help ends by naming the format page: one rule, so a
    new command cannot forget it (the text is not imported, to keep ``serve`` light)."""
    for command in sub.choices.values():
        for action in command._actions:
            if "--logs" in action.option_strings and LOG_FORMAT_DOC not in (action.help or ""):
                text = action.help or "call-log files or folders"
                action.help = f"{text} (format: {LOG_FORMAT_DOC})"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a problem with the user's input is one ``error:`` line, exit 2.

    Such problems are ValueErrors (a `features.call_log.CallLogError` names the log file
    and the fix) or OSErrors (a path that cannot be read or written); anything else is
    a bug and keeps its traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
