"""What the decision log and the preemptive time budget add to one /route request.

1. Decision log: time of one `DecisionLog.write` (record and line built, JSON
   encoded, ``os.write`` on the O_APPEND descriptor), as /route calls it before
   answering,
   with the background fsync (default) and with an fsync per line.
2. Time budget: the hand-off of a decision to `DecisionRunner` awaited with a
   timeout, against FastAPI's own thread-pool hop for a ``def`` endpoint (what
   /route paid before the budget was preemptive) and against no hop at all; with a
   no-op decision and, given ``--bundle``, a real one (encode + score + policy).

Timings are interleaved in a shuffled order (a, c, b, b, a, c, ...) so drift on a
shared machine hits every variant alike. Usage::

    .venv/bin/python benchmarks/route_overheads.py [--bundle BUNDLE] [-n 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from starlette.concurrency import run_in_threadpool

# The project root, not this folder (whose features.py would shadow the package).
ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)

from serving.deadline import DecisionRunner  # noqa: E402
from serving.decision_log import DecisionLog  # noqa: E402
from serving.schemas import ScoreOut  # noqa: E402

PROMPT = "Fix the off-by-one error in paginate(): the last page is dropped. " * 4


def _summary(name: str, us: list[float]) -> str:
    q = np.percentile(us, [50, 99])
    return f"{name:<44} p50 {q[0]:8.1f} us   p99 {q[1]:8.1f} us"


def bench_log(n: int, folder: Path) -> dict[str, float]:
    # /route hands the log the score dicts it built for the response.
    scores = [
        ScoreOut(model=f"vendor/model-{k}", p_success=0.61, expected_cost_usd=0.0123, utility=1.1)
        for k in range(5)
    ]
    dumped = [s.model_dump() for s in scores]
    logs = {
        "decision log, fsync every 1 s (default)": DecisionLog(folder / "a.jsonl"),
        "decision log, fsync every line": DecisionLog(folder / "b.jsonl", fsync_interval_s=0),
    }
    times: dict[str, list[float]] = {name: [] for name in logs}
    for i in range(n):
        for name, log in logs.items():
            if name.endswith("every line") and i >= n // 10:
                continue  # a disk flush per line is slow; fewer samples suffice
            t0 = time.perf_counter()
            log.write(
                decision_id=f"{i:032x}",
                router_version="2e4114b04d207917",
                candidates=[s.model for s in scores],
                model=scores[1].model,
                propensity=1.0,
                reason="max_utility",
                scores=dumped,
                routing_text=PROMPT,
                value_usd=2.0,
                user="ann",
                team="infra",
                task="code-review",
                session_id="s-1",
                feature_spec_version=1,
            )
            times[name].append((time.perf_counter() - t0) * 1e6)
    for log in logs.values():
        log.close()
    for name, us in times.items():
        print(_summary(name, us))
    return {name: statistics.median(us) for name, us in times.items()}


async def _bench_hops(work: Callable[[], object], n: int, label: str) -> dict[str, float]:
    runner = DecisionRunner(threads=2)
    pool = ThreadPoolExecutor(2)
    variants = {
        f"{label}: inline on the event loop": None,
        f"{label}: FastAPI thread-pool hop (before)": "threadpool",
        f"{label}: DecisionRunner + timeout (now)": "runner",
        f"{label}: bare pool hop, no timeout or bound": "pool",
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants.items())
    shuffle = random.Random(0).shuffle
    for _ in range(n):
        shuffle(order)  # no variant always runs right after the same other one
        for name, how in order:
            t0 = time.perf_counter()
            if how is None:
                work()
            elif how == "threadpool":
                await run_in_threadpool(work)
            elif how == "pool":
                await asyncio.wrap_future(pool.submit(work))
            else:
                await runner.run(work, 10.0)
            times[name].append((time.perf_counter() - t0) * 1e6)
    runner.close()
    pool.shutdown()
    for name, us in times.items():
        print(_summary(name, us))
    return {name: statistics.median(us) for name, us in times.items()}


async def _bench_mechanism(n: int) -> None:
    """The budget's own cost without a thread hop (whose wake-up latency dominates
    the wall-clock numbers above on a busy machine): the timeout's timer handle,
    and the admission bound's acquire, done-callback and release."""
    runner = DecisionRunner(threads=1)
    timeout_us, bound_us = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        async with asyncio.timeout(10.0):
            pass
        t1 = time.perf_counter()
        runner._slots.acquire(blocking=False)
        done: Future[None] = Future()
        done.add_done_callback(runner._release)
        done.set_result(None)
        t2 = time.perf_counter()
        timeout_us.append((t1 - t0) * 1e6)
        bound_us.append((t2 - t1) * 1e6)
    runner.close()
    print(_summary("budget mechanism alone: asyncio.timeout", timeout_us))
    print(_summary("budget mechanism alone: admission bound", bound_us))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", help="A bundle folder, to time real decisions too.")
    parser.add_argument("-n", type=int, default=5000, help="Samples per variant.")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        bench_log(args.n, Path(folder))
    asyncio.run(_bench_mechanism(args.n))
    medians = asyncio.run(_bench_hops(lambda: None, args.n, "no-op"))
    names = list(medians)
    print(
        f"-> budget mechanism vs thread-pool hop, no-op decision: "
        f"{medians[names[2]] - medians[names[1]]:+.1f} us at p50; timeout and bound alone: "
        f"{medians[names[2]] - medians[names[3]]:+.1f} us"
    )
    if args.bundle:
        from serving.bundle import load_bundle
        from serving.policy import PolicyParams, decide
        from serving.scoring import BundleScorer

        scorer = BundleScorer(load_bundle(args.bundle))
        params = PolicyParams(2.0)

        def real() -> None:
            s = scorer.score_text(PROMPT)
            decide(s.p_success, s.expected_cost_usd, params)

        real()
        medians = asyncio.run(_bench_hops(real, max(args.n // 5, 200), "real decision"))
        names = list(medians)
        print(
            f"-> budget mechanism vs thread-pool hop, real decision: "
            f"{medians[names[2]] - medians[names[1]]:+.1f} us at p50; timeout and bound alone: "
            f"{medians[names[2]] - medians[names[3]]:+.1f} us"
        )


if __name__ == "__main__":
    main()
