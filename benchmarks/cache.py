"""Cache-aware routing benchmark: multi-turn sessions through a cache-blind and a
cache-aware router, costed with the providers' prompt-cache rules.

    .venv/bin/python benchmarks/cache.py [--sessions 300] [--min-turns 3] [--max-turns 20]

What it does
------------
1. **Data.** RouteProfile (``data/routeprofile``, shipped: 600 prompts x 8 models, every
   model's tokens and graded outcome on every prompt). Its prompts are split in half,
   grouped by prompt: a bundle is trained on one half (``outcome-router train
   --encoder static --no-mlflow``, single-turn calls, as shipped), sessions are built
   from the other.
2. **Prices.** None of LiteLLM's entries for RouteProfile's open-weight models lists a
   cache price, so each model is priced as the cached API model nearest its
   RouteProfile input price (`STAND_INS`: every figure is LiteLLM's, from
   ``litellm/model_prices_and_context_window_backup.json`` of litellm 1.110.2). The
   outcomes and token counts stay RouteProfile's; only the price table is a stand-in.
   Five OpenAI models and a Gemini model (automatic caching, no write fee) and one
   Claude model (write premium 1.25x, minimum 4,096 cacheable tokens) are in the mix.
3. **Sessions.** Each session stays on one task family (``--mix any``: draws from all)
   and lasts 3 to 20 turns (uniform); turn *t* sends an optional fixed system prompt
   (``--system-tokens``, default none), the previous turns' prompts and answers, and a
   new test prompt, so the input grows. Turns are 5 to 120 s apart, inside the 5-minute
   TTL.
4. **Routers.** The same bundle, in process, through `RouterService.decide_text` (the
   code of ``POST /route``): *cache-blind* scores each turn alone (the router before
   issue 11); *cache-aware* sends the ``session_id``, so the session state prices the
   last model's warm prefix and the cache-write premiums (`serving.session_cache`).
   The routing text of turn *t* is the session's prompts so far (the answers' text is
   not in the data; their tokens are counted in the cost). An ablation between them,
   *size-aware, cache-blind*, prices each prompt at its measured size as the
   cache-aware router does, but no cache: it separates what caching buys from what
   measuring the conversation buys. Baselines: each single model always (its cache
   warm every turn), the best single model by training outcome first.
5. **Truth.** A turn's quality is the chosen model's RouteProfile outcome on the turn's
   prompt. Its cost follows the provider's cache (`ProviderCaches`): a model keeps,
   per session, the prompt of its last call for the TTL after that call; the next call
   to it in the session reads that prefix at the cache-read price; a provider with a
   write fee charges the write price for the rest of a cacheable prompt; nothing
   shorter than the provider's minimum is cached (OpenAI and Gemini 1,024 tokens,
   Claude Haiku 4.5 4,096). Context tokens on model *m* at turn *t*: every earlier
   prompt's input tokens on *m* plus every earlier answer's output tokens.
6. **Policy sweep.** Both routers are also run at 1/4 to 4x the bundle's ``value_usd``,
   and the cache-blind router's cost at the cache-aware router's quality is read off
   its cost-quality curve (linear interpolation): the saving at equal quality.

Reports quality (mean outcome per turn, 95% bootstrap interval over sessions), cost,
cost ratio, the paired quality difference with its interval, cache hit rate (cached /
input tokens) and model switches per session. Writes ``build/benchmarks/cache/
cache.json`` and ``cache.md``; seeds are fixed, so a rerun gives the same table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on sys.path, and a sibling benchmark module
# (benchmarks/features.py) would shadow the project's `features` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from features.prices import ModelPrice  # noqa: E402
from serving.config import Settings  # noqa: E402
from serving.decision import routing_decisions  # noqa: E402
from serving.service import RouterService  # noqa: E402
from serving.session_cache import SessionCache  # noqa: E402

ROUTEPROFILE = ROOT / "data" / "routeprofile" / "calls.jsonl.gz"
WORK = ROOT / "build" / "benchmarks" / "cache"
TTL_S = 300.0
SWEEP = (0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True)
class StandIn:
    """The cached API model whose LiteLLM price a RouteProfile model is given (USD per
    token; ``write`` None: no write fee), and its provider's shortest cacheable prompt."""

    key: str
    provider: str
    input: float
    output: float
    read: float
    write: float | None
    min_tokens: int


#: RouteProfile model -> its stand-in, paired by input price (RouteProfile's nvidia_nim
#: input price, USD per million tokens, in the comment).
STAND_INS: dict[str, StandIn] = {
    "llama-3.2-3b-instruct": StandIn("gpt-5-nano", "openai", 5e-8, 4e-7, 5e-9, None, 1024),  # .06
    "gemma-2-9b-it": StandIn(
        "gemini/gemini-2.5-flash-lite", "gemini", 1e-7, 4e-7, 1e-8, None, 1024
    ),  # .10
    "mistral-small-24b-instruct-2501-bf16": StandIn(
        "gpt-4.1-nano", "openai", 1e-7, 4e-7, 2.5e-8, None, 1024
    ),  # .10
    "llama-3.1-8b-instruct": StandIn("gpt-4o-mini", "openai", 1.5e-7, 6e-7, 7.5e-8, None, 1024),
    "qwen2.5-7b-instruct": StandIn("gpt-5-mini", "openai", 2.5e-7, 2e-6, 2.5e-8, None, 1024),
    "mixtral-8x7b-instruct-v0.1": StandIn("gpt-4.1-mini", "openai", 4e-7, 1.6e-6, 1e-7, None, 1024),
    "llama-3.3-70b-instruct": StandIn(
        "claude-haiku-4-5", "anthropic", 1e-6, 5e-6, 1e-7, 1.25e-6, 4096
    ),  # .88
    "mixtral-8x22b-instruct-v0.1": StandIn("gpt-5", "openai", 1.25e-6, 1e-5, 1.25e-7, None, 1024),
}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def stand_in_prices() -> dict[str, dict[str, Any]]:
    """The stand-in catalog, in LiteLLM's format, keyed by RouteProfile model."""
    catalog = {}
    for model, s in STAND_INS.items():
        entry: dict[str, Any] = {
            "input_cost_per_token": s.input,
            "output_cost_per_token": s.output,
            "cache_read_input_token_cost": s.read,
            "litellm_provider": s.provider,
            "mode": "chat",
            "source": f"LiteLLM {s.key} (litellm 1.110.2), standing in for {model}",
        }
        if s.write is not None:
            entry["cache_creation_input_token_cost"] = s.write
        catalog[model] = entry
    return catalog


# --------------------------------------------------------------------- the truth


class ProviderCaches:
    """Each provider's prompt cache, per session and model: the prompt of the model's
    last call in the session, alive for ``ttl_s`` after that call.

    Parameters
    ----------
    prices : dict of str to ModelPrice
    min_tokens : dict of str to int
        Shortest prompt each model's provider caches.
    ttl_s : float
    """

    def __init__(
        self, prices: dict[str, ModelPrice], min_tokens: dict[str, int], ttl_s: float
    ) -> None:
        self.prices, self.min_tokens, self.ttl_s = prices, min_tokens, ttl_s
        self._held: dict[tuple[str, str], tuple[float, float]] = {}

    def call(
        self, session: str, model: str, prompt: float, output: float, at: float
    ) -> tuple[float, float, float]:
        """``(cost_usd, cached tokens, written tokens)`` of one call, and the cache
        it leaves."""
        price, minimum = self.prices[model], self.min_tokens[model]
        held = self._held.get((session, model))
        read = 0.0
        if held is not None and at - held[1] <= self.ttl_s and held[0] >= minimum:
            read = min(held[0], prompt)
        cacheable = prompt >= minimum
        charges_writes = (price.cache_creation_input_token_cost or 0.0) > price.input_cost_per_token
        written = prompt - read if cacheable and charges_writes else 0.0
        cost = price.cost_usd(prompt, output, cached_input_tokens=read, cache_write_tokens=written)
        if cacheable:
            self._held[(session, model)] = (prompt, at)
        return cost, read, written


# ------------------------------------------------------------------- the sessions


@dataclass(frozen=True)
class Session:
    """One conversation: its id, prompt ids in turn order and each turn's time (s)."""

    session_id: str
    prompt_ids: tuple[str, ...]
    times: tuple[float, ...]


def build_sessions(
    prompts: pd.DataFrame,
    n_sessions: int,
    min_turns: int,
    max_turns: int,
    gap_s: tuple[float, float],
    seed: int,
    mix: str = "task",
) -> list[Session]:
    """Sessions of ``min_turns`` to ``max_turns`` distinct prompts, turns ``gap_s``
    seconds apart; sessions start a day apart (independent).

    ``prompts``: one row per test prompt with ``prompt_id`` and ``task``. ``mix``:
    ``"task"`` draws a session's prompts from one task family (a conversation on one
    subject), ``"any"`` from all of them (one assistant asked anything).
    """
    rng = np.random.default_rng(seed)
    by_task = {t: g["prompt_id"].to_numpy() for t, g in prompts.groupby("task", sort=True)}
    tasks = sorted(by_task)
    everything = prompts["prompt_id"].to_numpy()
    sessions = []
    for i in range(n_sessions):
        pool = by_task[tasks[rng.integers(len(tasks))]] if mix == "task" else everything
        turns = int(min(rng.integers(min_turns, max_turns + 1), len(pool)))
        chosen = rng.choice(pool, size=turns, replace=False)
        gaps = rng.uniform(*gap_s, size=turns - 1)
        start = 86_400.0 * i
        times = np.concatenate([[start], start + np.cumsum(gaps)])
        sessions.append(Session(f"session-{i:04d}", tuple(chosen), tuple(times.tolist())))
    return sessions


# ---------------------------------------------------------------------- policies


@dataclass
class PolicyRun:
    """What one policy did over every session: per turn, in session order."""

    name: str
    session: list[int] = field(default_factory=list)
    outcome: list[float] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    input_tokens: list[float] = field(default_factory=list)
    cached_tokens: list[float] = field(default_factory=list)
    written_tokens: list[float] = field(default_factory=list)
    model: list[str] = field(default_factory=list)
    switches: int = 0


#: Chooses the model of one turn: (session, turn index, routing text, tokens of the
#: system prompt and earlier answers, which the text lacks) -> model.
Chooser = Callable[[Session, int, str, float], str]


def run_policy(
    name: str,
    choose: Chooser,
    sessions: Sequence[Session],
    table: dict[str, dict[str, Any]],
    texts: dict[str, str],
    caches: ProviderCaches,
    system_tokens: float = 0.0,
) -> PolicyRun:
    """Play every session with ``choose``; cost each turn with ``caches``.

    ``table[prompt_id][model]`` holds that call's ``input_tokens``, ``output_tokens``
    and ``outcome``. ``system_tokens``: a fixed prompt every turn of a session starts
    with (an agent's instructions and tool definitions), counted like the answers: in
    the tokens billed and in the size the router measures, not in the routing text.
    """
    run = PolicyRun(name)
    for s, session in enumerate(sessions):
        context: dict[str, float] = {m: 0.0 for m in STAND_INS}  # earlier prompts, per model
        answers = system_tokens  # the fixed prefix and the earlier answers' tokens
        previous = None
        for t, (prompt_id, at) in enumerate(zip(session.prompt_ids, session.times, strict=True)):
            text = "\n\n".join(texts[p] for p in session.prompt_ids[: t + 1])
            model = choose(session, t, text, answers)
            row = table[prompt_id][model]
            prompt = context[model] + answers + row["input_tokens"]
            cost, read, written = caches.call(
                session.session_id, model, prompt, row["output_tokens"], at
            )
            run.session.append(s)
            run.outcome.append(row["outcome"])
            run.cost.append(cost)
            run.input_tokens.append(prompt)
            run.cached_tokens.append(read)
            run.written_tokens.append(written)
            run.model.append(model)
            run.switches += previous is not None and model != previous
            previous = model
            for m in context:
                context[m] += table[prompt_id][m]["input_tokens"]
            answers += row["output_tokens"]
    return run


def size_aware_chooser(service: RouterService, params: Any) -> Chooser:
    """The ablation between the two routers: the cache-blind router with each prompt
    priced at its measured size (`BundleScorer.floor_prompt_tokens`), no cache."""
    rules = service.sessions.rules
    names = service.bundle.candidate_names

    def choose(session: Session, t: int, text: str, answer_tokens: float) -> str:
        scores = service.scorer.score_text(text)
        measured = (len(text) + answer_tokens * rules.chars_per_token) / rules.chars_per_token
        scores = service.scorer.floor_prompt_tokens(scores, measured)
        [decided] = routing_decisions(scores.p_success, scores.expected_cost_usd, names, params)
        return decided.model

    return choose


def router_chooser(service: Any, params: Any, *, session_aware: bool) -> Chooser:
    """A turn's model as ``POST /route`` would answer it, cache-blind or cache-aware."""

    clock = _SimulatedClock.of(service) if session_aware else None

    def choose(session: Session, t: int, text: str, answer_tokens: float) -> str:
        if clock is None:
            return service.decide_text(text, params)[0].model
        clock.now = session.times[t]
        # The request a gateway sends holds the system prompt and the earlier answers too;
        # their text is not in the data, their length is: counted at the rule of thumb the
        # router measures with.
        chars = len(text) + int(answer_tokens * service.sessions.rules.chars_per_token)
        prefix = service.session_prefix(session.session_id, prompt_chars=chars)
        decided, scores = service.decide_text(text, params, session=prefix)
        service.remember(session.session_id, decided.model, scores)
        return decided.model

    return choose


class _SimulatedClock:
    """The session state's clock, set to each turn's simulated time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    @classmethod
    def of(cls, service: Any) -> _SimulatedClock:
        clock = service.sessions.clock
        if not isinstance(clock, cls):
            raise TypeError("The service's session state must run on a _SimulatedClock.")
        return clock


# ----------------------------------------------------------------------- summary


def _ratio_interval(
    num: np.ndarray, den: np.ndarray, groups: np.ndarray, n_boot: int, rng: np.random.Generator
) -> tuple[float, float]:
    """95% bootstrap interval of ``sum(num) / sum(den)`` resampling sessions."""
    n = groups.max() + 1
    num_by = np.bincount(groups, weights=num, minlength=n)
    den_by = np.bincount(groups, weights=den, minlength=n)
    draws = rng.integers(0, n, size=(n_boot, n))
    ratios = num_by[draws].sum(axis=1) / den_by[draws].sum(axis=1)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return float(lo), float(hi)


def summarize(run: PolicyRun, n_boot: int, seed: int) -> dict[str, Any]:
    """Quality with its interval, cost, cache hit rate and switches of one policy."""
    groups = np.asarray(run.session)
    outcome = np.asarray(run.outcome)
    ones = np.ones_like(outcome)
    lo, hi = _ratio_interval(outcome, ones, groups, n_boot, np.random.default_rng(seed))
    n_sessions = int(groups.max() + 1)
    return {
        "policy": run.name,
        "quality": float(outcome.mean()),
        "quality_ci": [lo, hi],
        "cost_usd": float(np.sum(run.cost)),
        "cost_per_turn_usd": float(np.mean(run.cost)),
        "cache_hit_rate": float(np.sum(run.cached_tokens) / np.sum(run.input_tokens)),
        "written_tokens": float(np.sum(run.written_tokens)),
        "switches_per_session": run.switches / n_sessions,
        "turns": len(outcome),
        "model_mix": {m: run.model.count(m) / len(run.model) for m in sorted(set(run.model))},
    }


def paired_difference(
    a: PolicyRun, b: PolicyRun, n_boot: int, seed: int
) -> tuple[float, list[float]]:
    """Mean outcome of ``a`` minus ``b`` over the same turns, with a 95% interval
    (sessions resampled)."""
    groups = np.asarray(a.session)
    diff = np.asarray(a.outcome) - np.asarray(b.outcome)
    lo, hi = _ratio_interval(diff, np.ones_like(diff), groups, n_boot, np.random.default_rng(seed))
    return float(diff.mean()), [lo, hi]


def cost_at_quality(points: list[tuple[float, float]], quality: float) -> float | None:
    """Cost on a cost-quality curve at ``quality`` (linear between the two nearest
    points around it; None outside the curve's range)."""
    ordered = sorted(points)
    for (q0, c0), (q1, c1) in itertools.pairwise(ordered):
        if q0 <= quality <= q1:
            return c0 if q1 == q0 else c0 + (c1 - c0) * (quality - q0) / (q1 - q0)
    return None


# --------------------------------------------------------------------- the run


def load_table() -> tuple[pd.DataFrame, dict[str, dict[str, Any]], dict[str, str]]:
    """RouteProfile's calls, ``table[prompt_id][model]`` and each prompt's text."""
    calls = pd.read_json(ROUTEPROFILE, lines=True)
    table: dict[str, dict[str, Any]] = {}
    for row in calls.itertuples(index=False):
        table.setdefault(row.prompt_id, {})[row.model] = {
            "input_tokens": float(row.input_tokens),
            "output_tokens": float(row.output_tokens),
            "outcome": float(row.outcome),
        }
    texts = dict(zip(calls["prompt_id"], calls["prompt"], strict=False))
    return calls, table, texts


def split_prompts(calls: pd.DataFrame, seed: int, max_prompts: int | None) -> tuple[set, set]:
    """Train and test prompt ids: a seeded half each (of at most ``max_prompts``)."""
    ids = np.array(sorted(calls["prompt_id"].unique()))
    ids = np.random.default_rng(seed).permutation(ids)
    if max_prompts is not None:
        ids = ids[:max_prompts]
    half = len(ids) // 2
    return set(ids[:half]), set(ids[half:])


def train_bundle(
    calls: pd.DataFrame, train_ids: set, args: argparse.Namespace, folder: Path
) -> Path:
    """``outcome-router train`` on the training prompts at the stand-in prices."""
    bundle = folder / "bundle"
    if args.bundle:
        return Path(args.bundle)
    prices = folder / "prices.json"
    prices.write_text(json.dumps(stand_in_prices(), indent=1))
    logs = folder / "train.parquet"
    # Without the logged cost_usd (RouteProfile's prices), the cost model learns tokens,
    # priced at the stand-in catalog.
    train_rows = calls[calls["prompt_id"].isin(train_ids)].drop(columns=["cost_usd"])
    train_rows.to_parquet(logs, index=False)
    exe = Path(sys.executable).with_name("outcome-router")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "training.cli"]
    command += ["train", "--logs", str(logs), "--prices", str(prices), "--out", str(bundle)]
    command += ["--encoder", args.encoder, "--no-mlflow", "--seed", str(args.seed)]
    if args.learner:
        command += ["--learner", args.learner]
    if args.folds:
        command += ["--folds", str(args.folds)]
    say(f"training the bundle on {len(train_ids)} prompts -> {bundle} ...")
    start = time.perf_counter()
    log = folder / "train.err"
    with open(log, "w") as err:
        done = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
    if done.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError("train failed: " + " | ".join(tail))
    say(f"trained in {time.perf_counter() - start:.0f} s")
    return bundle


def load_service(bundle: Path) -> RouterService:
    """The router as ``serve`` loads it, its session state on a simulated clock."""
    settings = Settings(
        bundle=str(bundle),
        cache_ttl_seconds=TTL_S,
        cache_min_tokens_overrides={m: s.min_tokens for m, s in STAND_INS.items()},
    )
    service = RouterService.load(settings)
    service.sessions = SessionCache(
        settings.cache_sessions, rules=settings.cache_rules, clock=_SimulatedClock()
    )
    return service


def run(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    calls, table, texts = load_table()
    train_ids, test_ids = split_prompts(calls, args.seed, args.max_prompts)
    bundle = train_bundle(calls, train_ids, args, folder)
    test = calls[calls["prompt_id"].isin(test_ids)].drop_duplicates("prompt_id")
    sessions = build_sessions(
        test,
        args.sessions,
        args.min_turns,
        args.max_turns,
        (args.gap_min, args.gap_max),
        args.seed,
        args.mix,
    )
    n_turns = sum(len(s.prompt_ids) for s in sessions)
    say(f"{len(sessions)} sessions, {n_turns} turns, from {len(test_ids)} test prompts")

    prices = {m: ModelPrice.from_dict(e) for m, e in stand_in_prices().items()}
    min_tokens = {m: s.min_tokens for m, s in STAND_INS.items()}
    service = load_service(bundle)
    names = list(service.bundle.candidate_names)
    default_value = float(service.bundle.policy["value_usd"])

    def play(name: str, choose: Chooser) -> PolicyRun:
        start = time.perf_counter()
        caches = ProviderCaches(prices, min_tokens, TTL_S)
        result = run_policy(name, choose, sessions, table, texts, caches, args.system_tokens)
        say(f"  {name}: {time.perf_counter() - start:.1f} s")
        return result

    runs: dict[str, PolicyRun] = {}
    sweep: dict[str, list[dict[str, Any]]] = {"cache-blind": [], "cache-aware": []}
    for factor in SWEEP if args.sweep else (1.0,):
        params = service.policy(value_usd=default_value * factor)
        for label, aware in (("cache-blind", False), ("cache-aware", True)):
            if aware:
                service.sessions = SessionCache(
                    service.sessions.max_sessions,
                    rules=service.sessions.rules,
                    clock=_SimulatedClock(),
                )
            result = play(
                f"{label} x{factor:g}", router_chooser(service, params, session_aware=aware)
            )
            point = summarize(result, args.n_boot, args.seed)
            sweep[label].append({"value_usd": params.value_usd, **point})
            if factor == 1.0:
                runs[label] = result
    params = service.policy(value_usd=default_value)
    runs["size-aware, cache-blind"] = play(
        "size-aware, cache-blind", size_aware_chooser(service, params)
    )
    train_rows = calls[calls["prompt_id"].isin(train_ids)]
    best = str(train_rows.groupby("model")["outcome"].mean().idxmax())
    for model in [best, *[m for m in names if m != best]]:
        runs[f"always {model}"] = play(f"always {model}", lambda s, t, x, a, m=model: m)

    rows = [summarize(r, args.n_boot, args.seed) for r in runs.values()]
    blind, aware = rows[0], rows[1]
    diff, diff_ci = paired_difference(
        runs["cache-aware"], runs["cache-blind"], args.n_boot, args.seed
    )
    blind_curve = [(p["quality"], p["cost_usd"]) for p in sweep["cache-blind"]]
    matched = cost_at_quality(blind_curve, aware["quality"]) if args.sweep else None
    return {
        "sessions": len(sessions),
        "turns": n_turns,
        "test_prompts": len(test_ids),
        "train_prompts": len(train_ids),
        "bundle": str(bundle),
        "router_version": service.bundle.router_version,
        "value_usd": default_value,
        "ttl_s": TTL_S,
        "system_tokens": args.system_tokens,
        "mix": "one task family" if args.mix == "task" else "all task families",
        "best_single_model": best,
        "stand_ins": {m: s.key for m, s in STAND_INS.items()},
        "rows": rows,
        "cost_ratio_aware_to_blind": aware["cost_usd"] / blind["cost_usd"],
        "quality_difference_aware_minus_blind": diff,
        "quality_difference_ci": diff_ci,
        "blind_cost_at_aware_quality_usd": matched,
        "saving_at_equal_quality": None if matched is None else 1 - aware["cost_usd"] / matched,
        "sweep": sweep,
        "args": vars(args),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"{result['sessions']} sessions, {result['turns']} turns "
        f"({result['test_prompts']} held-out RouteProfile prompts; bundle trained on "
        f"{result['train_prompts']}), sessions drawn from {result['mix']}, system prompt "
        f"{result['system_tokens']:.0f} tokens, value_usd "
        f"{result['value_usd']:.4g}, TTL {result['ttl_s']:.0f} s",
        "",
        "| policy | priced as | quality [95% CI] | cost USD | vs cache-blind | cache hit "
        "| switches/session |",
        "|---|---|---|---|---|---|---|",
    ]
    blind_cost = result["rows"][0]["cost_usd"]
    for row in result["rows"]:
        model = row["policy"].removeprefix("always ")
        priced = result["stand_ins"].get(model, "")
        lo, hi = row["quality_ci"]
        lines.append(
            f"| {row['policy']} | {priced} | {row['quality']:.3f} [{lo:.3f}, {hi:.3f}] | "
            f"{row['cost_usd']:.4f} | {row['cost_usd'] / blind_cost:.2f}x | "
            f"{row['cache_hit_rate']:.0%} | {row['switches_per_session']:.1f} |"
        )
    lo, hi = result["quality_difference_ci"]
    lines += [
        "",
        f"cache-aware / cache-blind cost: {result['cost_ratio_aware_to_blind']:.3f} "
        f"({1 - result['cost_ratio_aware_to_blind']:.1%} lower); quality difference "
        f"{result['quality_difference_aware_minus_blind']:+.3f} [{lo:+.3f}, {hi:+.3f}]",
    ]
    if result["saving_at_equal_quality"] is not None:
        lines.append(
            f"cache-blind cost at the cache-aware quality (value_usd sweep "
            f"{', '.join(f'{f:g}x' for f in SWEEP)}): "
            f"{result['blind_cost_at_aware_quality_usd']:.4f} USD, saving at equal quality "
            f"{result['saving_at_equal_quality']:.1%}"
        )
    if result["sweep"]["cache-blind"] and len(result["sweep"]["cache-blind"]) > 1:
        lines += ["", "| value_usd | blind quality | blind cost | aware quality | aware cost |"]
        lines.append("|---|---|---|---|---|")
        for b, a in zip(
            result["sweep"]["cache-blind"], result["sweep"]["cache-aware"], strict=True
        ):
            lines.append(
                f"| {b['value_usd']:.4g} | {b['quality']:.3f} | {b['cost_usd']:.4f} | "
                f"{a['quality']:.3f} | {a['cost_usd']:.4f} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--sessions", type=int, default=300, help="sessions to play")
    parser.add_argument("--min-turns", type=int, default=3, help="shortest session")
    parser.add_argument("--max-turns", type=int, default=20, help="longest session")
    parser.add_argument("--gap-min", type=float, default=5.0, help="least seconds between turns")
    parser.add_argument("--gap-max", type=float, default=120.0, help="most seconds between turns")
    parser.add_argument(
        "--mix",
        choices=("task", "any"),
        default="task",
        help="a session's prompts: from one task family, or from all",
    )
    parser.add_argument(
        "--system-tokens",
        type=float,
        default=0.0,
        help="a fixed prompt every turn starts with (an agent's instructions and tools)",
    )
    parser.add_argument("--max-prompts", type=int, default=None, help="use fewer prompts")
    parser.add_argument("--seed", type=int, default=0, help="split, sessions and training seed")
    parser.add_argument("--encoder", default="static", choices=("static", "minilm"))
    parser.add_argument("--learner", default=None, help="train --learner (default: the grid)")
    parser.add_argument("--folds", type=int, default=None, help="train --folds (default: 5)")
    parser.add_argument("--bundle", default=None, help="reuse a bundle trained by this script")
    parser.add_argument("--no-sweep", dest="sweep", action="store_false", help="skip the sweep")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap draws")
    parser.add_argument("--out", default=str(WORK), help="output folder")
    args = parser.parse_args(argv)
    if not 1 <= args.min_turns <= args.max_turns:
        parser.error("expected 1 <= --min-turns <= --max-turns")
    result = run(args)
    table = markdown(result)
    out = Path(args.out)
    (out / "cache.json").write_text(json.dumps(result, indent=1, default=_plain))
    (out / "cache.md").write_text(table + "\n")
    print(table)
    return 0


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


if __name__ == "__main__":
    raise SystemExit(main())
