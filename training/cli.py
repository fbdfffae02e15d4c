"""The one entry point, ``outcome-router``.

Commands import their heavy dependencies only when run, so ``outcome-router serve``
never loads the training stack.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from training.cluster import add_cluster_argument
from training.grade_command import add_grading_parsers


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
        min_calls=args.min_calls,
        learners=learners,
        target=args.target,
        n_folds=args.folds,
        cv_repeats=args.cv_repeats,
        cv_max_prompts=args.cv_max_prompts,
        seed=args.seed,
        correction=args.correction,
        max_weight=args.max_weight,
        calibrate=not args.no_calibration,
        spec=FeatureSpec.for_encoder(
            args.encoder,
            max_tokens=args.max_tokens,
            head_tokens=min(args.head_tokens, args.max_tokens - 2),
        ),
        context=tuple(k for k in args.context.split(",") if k),
        track=not args.no_mlflow,
        register_as=args.register_as or None,
        mlruns=args.mlruns,
        cluster=args.cluster,
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
                "excluded_candidates": [e.to_dict() for e in result.excluded_candidates],
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

    from training.evaluation.run import evaluate

    pairs = []
    for text in args.pair or []:
        names = [n.strip() for n in text.split(",")]
        if len(names) != 2 or not all(names):
            raise ValueError(f"--pair takes two comma-separated models, got {text!r}.")
        pairs.append((names[0], names[1]))
    candidates = None
    if args.candidates is not None:
        candidates = [c.strip() for c in args.candidates.split(",") if c.strip()]
        if not candidates:
            raise ValueError(
                f"--candidates takes comma-separated model names, got {args.candidates!r}."
            )
    from serving.policy import Exploration
    from training.evaluation.results import BanditEvaluation

    exploration = None
    if args.explore != "none":
        exploration = Exploration(
            args.explore,
            epsilon=args.explore_epsilon,
            temperature=args.explore_temperature,
            margin_usd=args.explore_margin_usd,
            top_k=args.explore_top_k,
        )
    result = evaluate(
        args.bundle,
        args.logs,
        args.out,
        prices=args.prices,
        compare=args.compare or [],
        pairs=pairs,
        candidates=candidates,
        exploration=exploration,
        n_bootstrap=args.n_bootstrap,
        clip=args.clip_weights,
        seed=args.seed,
        value_usd=args.value_usd,
        cluster=args.cluster,
    )
    if isinstance(result, BanditEvaluation):
        section = result.off_policy.to_dict()
        keys = ("n", "ess", "propensity_source", "estimators", "warnings", "comparisons")
        printed = {key: section[key] for key in keys}
        printed["report"] = str(Path(args.out) / "report.html")
        print(json.dumps(printed, indent=2))
        return 0
    s = result.summary
    printed = {
        "n_prompts": s.n_prompts,
        "candidates": list(s.candidates),
        "savings_at_parity": s.savings_at_parity,
        "savings_at_95": s.savings_at_95,
        "quality_at_quarter_cost": s.quality_at_quarter_cost,
        "area": s.area,
        "area_single_models": s.area_single_models,
        "area_oracle": s.area_oracle,
        "apgr": s.apgr,
        "cpt_50": s.cpt_50,
        "cpt_80": s.cpt_80,
        "n_quarantined": result.n_quarantined,
    }
    if result.comparisons:
        printed["comparisons"] = {
            c.label: {
                "area": c.row.figures.area,
                "savings_at_parity": c.row.figures.savings_at_parity,
                "apgr": c.row.apgr,
            }
            for c in result.comparisons
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

    result = promote(
        args.version,
        name=args.name,
        alias=args.alias,
        root=args.mlruns,
        evaluation=args.evaluation,
        force=args.force,
    )
    if result["forced"]:
        print(
            f"warning: promoted despite the evidence: {result['evidence']['reason']}",
            file=sys.stderr,
        )
    print(json.dumps(result, indent=2))
    return 0


def _add_promote_parser(sub) -> None:
    from training.registry import DEFAULT_ALIAS, DEFAULT_MODEL_NAME

    promote = sub.add_parser(
        "promote",
        help="point a registry alias (default: champion) at a registered bundle version",
        description="Set ALIAS of the registered model NAME to VERSION, so "
        "`serve --bundle models:/NAME@ALIAS` serves that version from its next start. "
        "With --evaluation (evaluate --bundle VERSION's bundle --compare CHAMPION on the "
        "champion's gateway logs), refuse a challenger whose net-value difference with "
        "the current ALIAS version has an interval wholly below 0, unless --force.",
    )
    promote.add_argument("version", help="registered version number, e.g. 3")
    promote.add_argument("--name", default=DEFAULT_MODEL_NAME, help="registered model name")
    promote.add_argument("--alias", default=DEFAULT_ALIAS, help="alias to set")
    promote.add_argument("--mlruns", default="mlruns", help="MLflow store folder")
    promote.add_argument(
        "--evaluation",
        metavar="DIR",
        help="the --out folder (or its metrics.json) of `evaluate --bundle CHALLENGER "
        "--compare CHAMPION --logs CHAMPION_LOGS`: refuse VERSION when its net-value "
        "difference with the current ALIAS version has an interval wholly below 0, or "
        "when the evaluation holds no comparison with it (default: no check)",
    )
    promote.add_argument(
        "--force",
        action="store_true",
        help="promote even when --evaluation refuses VERSION (the output records it)",
    )
    promote.set_defaults(func=_promote)


# --------------------------------------------------------------------------------


class DefaultsShownFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to an option's help, so ``--help`` never hides a default;
    options that are required, unset by default (None) or off (a flag) say nothing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        unset = default is None or default is False or default is argparse.SUPPRESS
        if unset or action.required or "%(default)" in text or "default:" in text.lower():
            return text
        return text + " (default: %(default)s)"


class CommandParser(argparse.ArgumentParser):
    """Every subcommand's parser shows defaults (`DefaultsShownFormatter`)."""

    def __init__(self, *args, formatter_class=DefaultsShownFormatter, **kwargs) -> None:
        super().__init__(*args, formatter_class=formatter_class, **kwargs)


class TrainHelpFormatter(DefaultsShownFormatter):
    """``train --help``: defaults shown, and the learner names filled in.

    The names come from the registry (`training.learners.LEARNERS`) and the default
    grid (`training.train.DEFAULT_LEARNERS`), imported only when the help is printed,
    so building the parser for ``serve`` never loads the training stack.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = super()._get_help_string(action)
        if LEARNER_NAMES_PLACEHOLDER in text:
            from training.learners import LEARNERS
            from training.train import DEFAULT_LEARNERS

            names = (
                f"Registered learners: {', '.join(sorted(LEARNERS))}; default-grid settings: "
                f"{', '.join(label for label, _, _ in DEFAULT_LEARNERS)}"
            )
            text = text.replace(LEARNER_NAMES_PLACEHOLDER, names)
        return text


#: Replaced in ``--learner``'s help by the learner names (`TrainHelpFormatter`).
LEARNER_NAMES_PLACEHOLDER = "{learner names}"


def _add_train_parser(sub) -> None:
    train = sub.add_parser(
        "train",
        help="train a bundle from call logs",
        description="Learn each candidate's chance of a good outcome and its cost from "
        "graded call logs, pick the learner by cross-validation, and write a verified ONNX "
        "bundle (manifest.json, ONNX graphs, tokenizer) for `serve` and `route`. Bad rows "
        "go to BUNDLE.quarantine.jsonl; the run is logged to MLflow unless --no-mlflow.",
        formatter_class=TrainHelpFormatter,
    )
    train.add_argument(
        "--logs",
        nargs="+",
        required=True,
        metavar="PATH",
        help="call-log files or folders (.jsonl, .jsonl.gz, .csv, .csv.gz, .parquet), one "
        "row per LLM call with model, prompt or messages and a graded outcome in [0, 1]",
    )
    train.add_argument(
        "--out", required=True, metavar="BUNDLE", help="bundle folder to write (replaced)"
    )
    train.add_argument(
        "--prices",
        metavar="FILE",
        help="price catalog in LiteLLM's model_prices_and_context_window.json format; "
        "default: the shipped features/data/default_prices.json",
    )
    train.add_argument(
        "--candidates",
        metavar="A,B",
        help="comma-separated models to route between; default: every model of the logs "
        "that passes --min-calls and has a known cost. A named model that fails is an error",
    )
    train.add_argument(
        "--min-calls",
        type=int,
        default=20,  # training.dataset.DEFAULT_MIN_CALLS, not imported to keep --help light
        metavar="N",
        help="graded calls a model needs to be a candidate; models with fewer, or with "
        "no known cost (no logged cost_usd, nor tokens at a catalog price), are left out "
        "with the reason "
        "(printed, and in the manifest's excluded_candidates). 20 is where a learner fits "
        "a candidate rather than its prior; the shipped logs have about 500 per model",
    )
    train.add_argument(
        "--learner",
        metavar="NAMES",
        help="comma-separated learner settings to compare by cross-validation: a "
        "default-grid label picks that setting, a registered name every grid setting of "
        f"that learner (or its defaults). Default: the whole grid. {LEARNER_NAMES_PLACEHOLDER}",
    )
    train.add_argument(
        "--target",
        default="parity",
        help="what the bundle's default value_usd is fit to: parity (least cost at the "
        "best single model's quality), budget:USD (best quality at this mean cost per "
        "request) or floor:QUALITY (least cost at this quality); on bandit logs measured "
        "off-policy (DR with logged propensities, SNIPS with estimated ones)",
    )
    train.add_argument(
        "--folds", type=int, default=5, help="cross-validation folds, grouped by prompt"
    )
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
    train.add_argument(
        "--correction",
        choices=("ips", "none"),
        default="ips",
        help="on a bandit log (one call per prompt), how to correct for the model "
        "choices of the logging policy: ips weights each row by 1/propensity (logged, "
        "or estimated from the prompts when the log has none), none fits the rows as "
        "logged; full-information logs are never weighted",
    )
    train.add_argument(
        "--max-weight",
        type=float,
        default=20.0,
        help="clip of the importance weight 1/propensity before weights are normalised "
        "to mean 1 per candidate",
    )
    train.add_argument(
        "--no-calibration",
        action="store_true",
        help="skip calibrating the probabilities (Platt or isotonic per candidate, chosen "
        "by cross-fitted log-loss)",
    )
    train.add_argument(
        "--seed", type=int, default=0, help="seed of the folds, samples and bootstrap"
    )
    train.add_argument(
        "--max-tokens",
        type=int,
        default=256,
        help="routing token cap of the encoder input, special tokens included (8 to 512)",
    )
    train.add_argument(
        "--head-tokens",
        type=int,
        default=64,
        help="tokens kept from the start of a long prompt; the rest of the cap comes from "
        "its end, where the question usually is",
    )
    train.add_argument(
        "--encoder",
        choices=["minilm", "static"],
        default="static",
        help="sentence encoder: MiniLM's static token vectors (distilled on first use, "
        "cached; about 50x faster than MiniLM and no worse on held-out prompts, see README "
        "'Speed'), or int8 MiniLM itself",
    )
    train.add_argument(
        "--context",
        default="task,team,depth",
        help="request context appended to the features, comma-separated from task, team, "
        "depth: one-hot of the frequent task/team tags (others -> '(other)') and log(1 + "
        "number of messages); the same columns are built from /route's task, team and "
        "messages ('' for none; see README 'Request context')",
    )
    train.add_argument(
        "--no-mlflow", action="store_true", help="do not log the run to MLflow (nor register)"
    )
    train.add_argument(
        "--register-as",
        default="outcome-router",
        help="MLflow registered model name ('' to track without registering)",
    )
    train.add_argument(
        "--mlruns", default="mlruns", help="MLflow store folder (sqlite db and artifacts)"
    )
    add_cluster_argument(train)
    train.set_defaults(func=_train)


def build_parser() -> argparse.ArgumentParser:
    from serving.commands import add_route_parser, add_serve_parser
    from training.report_command import add_report_parser
    from training.simulate_command import add_simulate_parser

    parser = CommandParser(
        prog="outcome-router",
        description="Learn LLM routing from graded outcomes; serve it as POST /route.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=CommandParser)

    _add_train_parser(sub)

    evaluate = sub.add_parser(
        "evaluate",
        help="evaluate a bundle on full-information logs (exactly) or on gateway logs "
        "(off-policy estimates)",
    )
    evaluate.add_argument(
        "--bundle", required=True, help="bundle folder to evaluate (required; no default)"
    )
    evaluate.add_argument(
        "--logs",
        nargs="+",
        required=True,
        help="held-out call-log files or folders (.jsonl, .jsonl.gz, .csv, .csv.gz, "
        ".parquet): a full-information table, or gateway logs of one call per prompt "
        "(required; no default)",
    )
    evaluate.add_argument(
        "--out",
        required=True,
        help="folder for metrics.json, report.html and quarantine.jsonl (required; no default)",
    )
    evaluate.add_argument(
        "--prices",
        help="price catalog (LiteLLM's JSON format) for rows without cost_usd "
        "(default: the shipped catalog)",
    )
    # --- evaluate options (evaluation report) ---
    evaluate.description = (
        "Run the bundle as `serve` would (its own policy defaults, over all its candidates "
        "or --candidates) on logs where every candidate answered every prompt, and write "
        "OUT/metrics.json and OUT/report.html. On gateway logs (one call per prompt, with "
        "or without `propensity`) the policy's quality and cost are estimated off-policy "
        "instead (metrics.json `off_policy`). Rows the call-log reader rejects go to "
        "OUT/quarantine.jsonl; the log format is described in README.md."
    )
    evaluate.add_argument(
        "--candidates",
        metavar="A,B",
        help="evaluate the bundle restricted to these of its candidates (comma-separated), "
        "as POST /route does with `candidates` in the request (default: all of the "
        "bundle's candidates, which the logs must all hold)",
    )
    evaluate.add_argument(
        "--compare",
        nargs="+",
        metavar="BUNDLE",
        help="other bundles to score on the same prompts, drawn on the same plot and "
        "compared in the table, e.g. one per learner; on gateway logs, the champion: "
        "the bundle minus each of them in quality, cost and net value with paired "
        "intervals, which `promote --evaluation` checks (default: none)",
    )
    evaluate.add_argument(
        "--pair",
        action="append",
        metavar="WEAK,STRONG",
        help="model pair for RouteLLM's APGR/CPT besides (cheapest, best single); "
        "repeatable (default: only (cheapest, best single))",
    )
    off_policy = evaluate.add_argument_group(
        "off-policy evaluation",
        "Used on partial-feedback logs (one logged call per prompt, as a gateway writes): "
        "the served policy's quality and cost are then estimated with DM, IPS, SNIPS and "
        "DR, each with a bootstrap interval (README.md, 'Off-policy evaluation').",
    )
    off_policy.add_argument(
        "--explore",
        choices=["none", "epsilon", "softmax"],
        default="none",
        help="evaluate the policy /route serves with this exploration "
        "(OUTCOME_ROUTER_EXPLORE) instead of the greedy one (default: none)",
    )
    off_policy.add_argument(
        "--explore-epsilon",
        type=float,
        default=0.05,
        help="epsilon of --explore epsilon (default: 0.05)",
    )
    off_policy.add_argument(
        "--explore-temperature",
        type=float,
        default=0.05,
        help="temperature in USD of --explore softmax (default: 0.05)",
    )
    off_policy.add_argument(
        "--explore-margin-usd",
        type=float,
        help="explore only candidates within this utility of the best (default: no margin)",
    )
    off_policy.add_argument(
        "--explore-top-k",
        type=int,
        help="explore only among the top K candidates by utility (default: all)",
    )
    off_policy.add_argument(
        "--n-bootstrap",
        type=int,
        default=1000,
        help="bootstrap resamples of the 95%% intervals (default: 1000)",
    )
    off_policy.add_argument(
        "--clip-weights",
        type=float,
        help="clip importance weights at this value (IPS, SNIPS, DR; default: no clipping)",
    )
    off_policy.add_argument(
        "--seed", type=int, default=0, help="seed of the bootstrap resampling (default: 0)"
    )
    off_policy.add_argument(
        "--value-usd",
        type=float,
        help="value in USD of one good outcome for the net value (value_usd * quality - "
        "cost) of the --compare differences (default: each compared bundle's manifest "
        "value_usd, i.e. the champion's)",
    )
    from training.cluster import add_cluster_argument

    add_cluster_argument(evaluate)
    # --- end evaluate options ---
    evaluate.set_defaults(func=_evaluate)

    split = sub.add_parser(
        "split",
        help="split call logs into train/test, grouped by prompt_id",
        description="Write OUT/train.parquet and OUT/test.parquet: every call of one prompt "
        "(its prompt_id, or the key of its text where the log has none) lands on the same "
        "side, so a held-out evaluation never scores a prompt the router was trained on.",
    )
    split.add_argument(
        "--logs",
        nargs="+",
        required=True,
        help="call-log files or folders; bad rows go to OUT/quarantine.jsonl",
    )
    split.add_argument("--out", required=True, help="folder for train.parquet and test.parquet")
    split.add_argument(
        "--train-fraction",
        type=float,
        default=0.7,
        help="expected share of prompts on the training side, in (0, 1)",
    )
    split.add_argument(
        "--seed",
        type=int,
        default=0,
        help="salt of the prompt hash that picks the side; the same seed gives the same "
        "split, and adding logs never moves a prompt",
    )
    split.set_defaults(func=_split)

    demo = sub.add_parser(
        "demo-request",
        help="serve a bundle, send one request, print it",
        description="Start `outcome-router serve` on BUNDLE, send one POST /route with the "
        "body in REQUEST, print the decision and the latency of 200 more requests, stop.",
    )
    demo.add_argument("--bundle", required=True, help="bundle folder to serve")
    demo.add_argument("--request", required=True, help="JSON body for POST /route")
    demo.add_argument("--host", default="127.0.0.1", help="interface the server listens on")
    demo.add_argument("--port", type=int, default=8765, help="port the server listens on")
    demo.set_defaults(func=_demo_request)

    add_route_parser(sub)
    add_serve_parser(sub)
    _add_promote_parser(sub)
    add_grading_parsers(sub)
    add_simulate_parser(sub)
    add_report_parser(sub)
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
