"""A fixed-rate load on ``POST /route``: does the server keep up, with zero errors?

Open loop: request ``i`` is sent at ``start + i / rate`` whether or not earlier
requests have been answered, as a gateway's traffic would arrive, and its latency
is measured from that scheduled time. A server that falls behind therefore shows
up in the latency (queueing included) instead of silently lowering the offered
rate, which a closed loop (send, wait, send) would do.

Prints sent / ok / errors, the achieved rate, the latency p50 / p99 / max and the
number of fallback answers; exits 1 on any error (a non-200 answer, a connection
error, or a request that could not be sent because ``--max-in-flight`` requests
were already waiting). Loopback only, bounded by ``--seconds`` and
``--max-in-flight``.

Run against a bundle (the server is started here, as ``outcome-router serve`` in a
child process on a free loopback port)::

    .venv/bin/python benchmarks/route_load.py --bundle build/demo/bundle --seconds 60 --rate 200

or against a server already running: ``--url http://127.0.0.1:8000``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.demo import free_port, start_server, wait_for_health  # noqa: E402

SHIPPED_CALLS = ROOT / "data" / "swebench_verified" / "calls.parquet"
EXAMPLE_REQUEST = ROOT / "data" / "swebench_verified" / "example_request.json"


@dataclass
class LoadResult:
    """What a load run observed.

    Attributes
    ----------
    sent : int
        Requests sent (scheduled and not dropped).
    ok : int
        200 answers.
    errors : Counter
        Failures by kind (``status 500``, ``ConnectError``, ``dropped``, ...).
    latencies_ms : list of float
        Per 200 answer, from its scheduled send time to the end of the answer.
    fallbacks : int
        200 answers with ``reason: "fallback"`` (the server missed its time budget
        or failed internally and answered its fallback model).
    elapsed_s : float
        From the first scheduled send to the last answer.
    """

    sent: int = 0
    ok: int = 0
    errors: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    fallbacks: int = 0
    elapsed_s: float = 0.0

    @property
    def n_errors(self) -> int:
        return sum(self.errors.values())

    def summary(self) -> dict:
        """Counts, achieved rate and latency percentiles, JSON-ready."""
        lat = np.asarray(self.latencies_ms, dtype=float)
        pct = (
            {
                "p50_ms": round(float(np.percentile(lat, 50)), 2),
                "p99_ms": round(float(np.percentile(lat, 99)), 2),
                "max_ms": round(float(lat.max()), 2),
            }
            if lat.size
            else {"p50_ms": None, "p99_ms": None, "max_ms": None}
        )
        return {
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.n_errors,
            "error_kinds": dict(self.errors),
            "fallbacks": self.fallbacks,
            "achieved_rps": round(self.ok / self.elapsed_s, 1) if self.elapsed_s > 0 else 0.0,
            **pct,
        }


def load_bodies(n: int = 200, prompt_chars: int | None = None) -> list[bytes]:
    """Request bodies: chat-completions bodies around distinct shipped prompts.

    The shipped SWE-bench issue texts (read with pyarrow when installed) vary from
    a few lines to long tracebacks, so the load mixes short and long routing texts
    (most fill the 256-token routing window); ``prompt_chars`` cuts each to its
    first characters for a short-prompt load. Without pyarrow the shipped example
    request is used alone.
    """
    base = json.loads(EXAMPLE_REQUEST.read_text())
    try:
        import pyarrow.parquet as pq

        prompts = pq.read_table(SHIPPED_CALLS, columns=["prompt"]).column("prompt").to_pylist()
    except ImportError:
        return [json.dumps(base).encode()]
    unique = list(dict.fromkeys(p[:prompt_chars] for p in prompts if p))[:n]
    bodies = []
    for prompt in unique:
        messages = [*base["messages"][:-1], {"role": "user", "content": prompt}]
        bodies.append(json.dumps({**base, "messages": messages}).encode())
    return bodies


async def run_load(
    url: str,
    *,
    seconds: float,
    rate: float,
    bodies: list[bytes],
    max_in_flight: int = 256,
    timeout_s: float = 10.0,
    api_key: str | None = None,
) -> LoadResult:
    """Send ``seconds * rate`` requests on an open-loop schedule; see the module doc.

    Parameters
    ----------
    url : str
        Base URL of the server (``/route`` is appended).
    seconds, rate : float
        Duration of the schedule and requests per second.
    bodies : list of bytes
        JSON bodies, used round-robin.
    max_in_flight : int
        Requests allowed to wait for an answer at once; a scheduled request beyond
        that is dropped and counted as an error instead of queueing without bound.
    timeout_s : float
        Per-request timeout (an error when exceeded).
    """
    result = LoadResult()
    n_total = max(1, round(seconds * rate))
    headers = {"content-type": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    in_flight = 0
    route_url = url.rstrip("/") + "/route"

    async with httpx.AsyncClient(
        headers=headers, limits=limits, timeout=timeout_s, trust_env=False
    ) as client:

        async def one(body: bytes, scheduled: float) -> None:
            nonlocal in_flight
            try:
                response = await client.post(route_url, content=body)
                done = time.perf_counter()
                if response.status_code != 200:
                    result.errors[f"status {response.status_code}"] += 1
                    return
                result.ok += 1
                result.latencies_ms.append((done - scheduled) * 1000.0)
                if response.json().get("reason") == "fallback":
                    result.fallbacks += 1
            except (httpx.HTTPError, OSError, ValueError) as exc:
                result.errors[type(exc).__name__] += 1
            finally:
                in_flight -= 1

        tasks = []
        start = time.perf_counter() + 0.05
        for i in range(n_total):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if in_flight >= max_in_flight:
                result.errors["dropped"] += 1
                continue
            in_flight += 1
            result.sent += 1
            tasks.append(asyncio.create_task(one(bodies[i % len(bodies)], scheduled)))
        await asyncio.gather(*tasks)
        result.elapsed_s = time.perf_counter() - start
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--bundle", help="Start `outcome-router serve` on this bundle.")
    target.add_argument("--url", help="Load a server already running at this base URL.")
    parser.add_argument("--seconds", type=float, default=60.0, help="Duration (default: 60).")
    parser.add_argument("--rate", type=float, default=200.0, help="Requests/s (default: 200).")
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=256,
        help="Requests waiting at once before more are dropped as errors (default: 256).",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="Per request, s.")
    parser.add_argument("--api-key", help="Sent as a bearer token (OUTCOME_ROUTER_API_KEYS).")
    parser.add_argument(
        "--prompt-chars",
        type=int,
        help="Cut every prompt to its first N characters (e.g. 200 for ~40-token prompts).",
    )
    parser.add_argument("--json", action="store_true", help="Print the summary as JSON only.")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rate <= 0 or args.max_in_flight < 1:
        parser.error("--seconds, --rate and --max-in-flight must be positive")

    proc = server_log = None
    url = args.url
    if args.bundle:
        port = free_port()
        # The server's warnings (one per fallback) would drown the summary: they go to
        # a file, shown only if the server fails to start. Fallbacks are counted from
        # the answers instead.
        server_log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in finally
        proc = start_server(args.bundle, "127.0.0.1", port, stderr=server_log)
        url = f"http://127.0.0.1:{port}"
    try:
        if proc is not None:
            try:
                wait_for_health("127.0.0.1", port, proc=proc)
            except (RuntimeError, TimeoutError):
                server_log.seek(0)
                print(server_log.read()[-3000:], file=sys.stderr)
                raise
        bodies = load_bodies(prompt_chars=args.prompt_chars)
        result = asyncio.run(
            run_load(
                url,
                seconds=args.seconds,
                rate=args.rate,
                bodies=bodies,
                max_in_flight=args.max_in_flight,
                timeout_s=args.timeout,
                api_key=args.api_key,
            )
        )
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=20)
            server_log.close()

    summary = {
        "offered_rps": args.rate,
        "seconds": args.seconds,
        "prompt_chars": args.prompt_chars,
        **result.summary(),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"offered {args.rate:g} req/s for {args.seconds:g} s: sent {summary['sent']}, "
            f"ok {summary['ok']}, errors {summary['errors']} {summary['error_kinds'] or ''}, "
            f"fallbacks {summary['fallbacks']}\n"
            f"achieved {summary['achieved_rps']} req/s; latency from scheduled send: "
            f"p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms, max {summary['max_ms']} ms"
        )
    return 1 if result.n_errors else 0


if __name__ == "__main__":
    sys.exit(main())
