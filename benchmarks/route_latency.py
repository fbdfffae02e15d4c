"""How fast is ``POST /route`` over real HTTP, and where does the time go?

Starts the real server (``outcome-router serve``, one uvicorn worker) on loopback for
each bundle, drives it from a second process (a lean ``http.client`` client with
keep-alive connections), and prints, for short (about 40 tokens) and long (256
routing tokens) prompts:

- p50 / p99 with one keep-alive connection (sequential requests);
- decisions/s with 4 concurrent connections (a closed loop, so at most 4 requests
  are in flight: a bounded load), with errors and fallbacks counted;
- next to the in-process cost of tokenize + encode + score (`BundleScorer.score_text`)
  measured in this same run, and the derived HTTP + policy overhead (HTTP p50 minus
  in-process p50);
- and the same request sent straight to the ASGI app in this process, which splits
  that overhead into framework + validation + policy and the rest (sockets, HTTP
  parsing, waking two processes);
- ratios against the targets of issue 4 and against the in-process baseline.

Run: ``.venv/bin/python benchmarks/route_latency.py [--bundle B ...]``. Without
``--bundle`` it trains (once, cached under ``build/benchmarks/route_latency``) one
small bundle per encoder tier (MiniLM and static) on the shipped SWE-bench logs.
``--server LABEL='ARGS'`` (repeatable) serves each bundle once per server
configuration in the same run, for A/B comparisons; ARGS are extra ``serve``
options, and ``NAME=VALUE`` words set environment variables of the server (for
example ``--server h11='--http h11 --loop asyncio'``). ``--sessions N`` gives every
body a ``session_id`` among N, so each request reads and updates the cache-aware session
state (`serving.session_cache`). Absolute numbers depend on
the machine's load, which is printed: compare ratios measured in one run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORK = ROOT / "build" / "benchmarks" / "route_latency"
SHORT_TOKENS = 38
LONG_MIN_TOKENS = 400
#: Issue 4's targets on 2 cores: one connection short p50/p99 and long p99 (ms),
#: short decisions/s at 4 connections, HTTP + policy overhead at p50 (ms).
TARGETS = {
    "short_p50_ms": 3.0,
    "short_p99_ms": 6.0,
    "long_p99_ms": 20.0,
    "short_rps_4": 500.0,
    "overhead_p50_ms": 1.0,
}


# ----------------------------------------------------------------------- client


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class _RouteConnection:
    """One keep-alive connection to ``/route`` that reconnects after a failure."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, body: bytes) -> tuple[float, int, bytes] | None:
        """``(latency ms, status, payload)``, or None when the connection failed."""
        start = time.perf_counter()
        try:
            self.conn.request(
                "POST", "/route", body=body, headers={"Content-Type": "application/json"}
            )
            response = self.conn.getresponse()
            status, payload = response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            return None
        return (time.perf_counter() - start) * 1000.0, status, payload

    def close(self) -> None:
        self.conn.close()


def client_main(args: argparse.Namespace) -> None:
    """The load generator (its own process): prints one JSON line of results."""
    bodies = [json.dumps(b).encode() for b in json.loads(Path(args.bodies).read_text())]
    result: dict[str, Any] = {}

    # One keep-alive connection, sequential requests.
    conn = _RouteConnection(args.port)
    for i in range(args.warmup):
        conn.post(bodies[i % len(bodies)])
    times, errors, fallbacks = [], 0, 0
    for i in range(args.requests):
        answer = conn.post(bodies[i % len(bodies)])
        if answer is None:
            errors += 1
            continue
        ms, status, payload = answer
        times.append(ms)
        errors += status != 200
        fallbacks += b'"reason":"fallback"' in payload
    conn.close()
    result["sequential"] = {
        "n": len(times),
        "p50_ms": _percentile(times, 50),
        "p90_ms": _percentile(times, 90),
        "p99_ms": _percentile(times, 99),
        "errors": errors,
        "fallbacks": fallbacks,
    }

    # N concurrent keep-alive connections in a closed loop for a fixed time.
    lock = threading.Lock()
    totals = {"ok": 0, "errors": 0, "fallbacks": 0}
    latencies: list[float] = []
    stop_at = time.perf_counter() + args.seconds

    def worker(offset: int) -> None:
        c = _RouteConnection(args.port)
        ok = err = fb = 0
        mine: list[float] = []
        i = offset
        while time.perf_counter() < stop_at:
            answer = c.post(bodies[i % len(bodies)])
            if answer is None:
                err += 1
                continue
            ms, status, payload = answer
            mine.append(ms)
            if status == 200:
                ok += 1
            else:
                err += 1
            fb += b'"reason":"fallback"' in payload
            i += 1
        c.close()
        with lock:
            totals["ok"] += ok
            totals["errors"] += err
            totals["fallbacks"] += fb
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k * 7,)) for k in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    result["concurrent"] = {
        "connections": args.concurrency,
        "seconds": elapsed,
        "decisions_per_s": totals["ok"] / elapsed,
        "ok": totals["ok"],
        "errors": totals["errors"],
        "fallbacks": totals["fallbacks"],
        "p50_ms": _percentile(latencies, 50),
        "p99_ms": _percentile(latencies, 99),
    }
    print(json.dumps(result), flush=True)


# ----------------------------------------------------------------- orchestration


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def ensure_demo_bundles() -> list[Path]:
    """One small bundle per encoder tier, trained once on the shipped logs."""
    bundles = []
    for encoder in ("minilm", "static"):
        out = WORK / "bundles" / encoder
        if not (out / "manifest.json").exists():
            print(f"training a {encoder} demo bundle into {out} ...", file=sys.stderr)
            subprocess.run(
                [
                    str(BIN / "outcome-router"),
                    "train",
                    "--logs",
                    str(ROOT / "data/swebench_verified/calls.parquet"),
                    "--out",
                    str(out),
                    "--learner",
                    "mf",
                    "--encoder",
                    encoder,
                    "--no-mlflow",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        bundles.append(out)
    return bundles


def make_prompts(bundle: Path, n: int = 50) -> tuple[list[str], list[str]]:
    """Short texts of about `SHORT_TOKENS` tokens and long ones of more than
    `LONG_MIN_TOKENS` (truncated to the bundle's 256-token cap), from SWE-bench issues."""
    import pyarrow.parquet as pq
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    table = pq.read_table(ROOT / "data/swebench_verified/calls.parquet", columns=["prompt"])
    texts = list(dict.fromkeys(table.column("prompt").to_pylist()))
    short, long = [], []
    for text in texts:
        enc = tokenizer.encode(text, add_special_tokens=False)
        if len(enc.ids) >= LONG_MIN_TOKENS and len(long) < n:
            long.append(text)
        if len(enc.ids) >= SHORT_TOKENS and len(short) < n:
            short.append(text[: enc.offsets[SHORT_TOKENS - 1][1]])
        if len(short) >= n and len(long) >= n:
            break
    return short, long


def in_process(bundle: Path, texts: list[str], n: int) -> dict[str, float]:
    """p50/p99 of tokenize + encode + score of one text, in this process, one thread."""
    import numpy as np

    from serving.bundle import load_bundle
    from serving.scoring import BundleScorer

    scorer = BundleScorer(load_bundle(bundle), intra_op_threads=1)
    for text in texts[:10]:
        scorer.score_text(text)
    times = []
    for i in range(n):
        start = time.perf_counter()
        scorer.score_text(texts[i % len(texts)])
        times.append((time.perf_counter() - start) * 1000.0)
    return {
        "p50_ms": float(np.percentile(times, 50)),
        "p99_ms": float(np.percentile(times, 99)),
    }


#: Request-path variants of `asgi_in_process`: (label, a dependency override
#: registered as `create_app` used to do, endpoint run in the thread pool).
ABLATION = (
    ("settings override + thread pool (before)", True, True),
    ("thread pool, no override", False, True),
    ("on the loop, no override (static default)", False, False),
)
#: The cache-aware session state on and off (`serving.session_cache`), same app and
#: bodies (with a session_id), the default request path: what the state costs.
SESSION_ABLATION = (
    ("session state off", False, None, False),
    ("session state on", False, None, True),
)


def asgi_in_process(
    bundle: Path, bodies: list[dict], n: int, variants: tuple = (), rounds: int = 5
) -> dict[str, Any]:
    """p50/p99 of a whole /route request through the ASGI app, called directly in
    this process (no socket, no HTTP parsing, no second process): what the framework,
    validation and policy add to encode+score, apart from transport and scheduling.

    With ``variants`` (see `ABLATION`), the request-path changes are toggled on the
    same loaded app, interleaved in ``rounds``, and each variant's p50/p99 is returned.
    """
    import asyncio

    import numpy as np

    from serving.app import create_app
    from serving.config import Settings, get_settings

    settings = Settings(bundle=str(bundle), time_budget_ms=60_000.0)
    app = create_app(settings)
    payloads = [json.dumps(b).encode() for b in bodies]

    async def call(body: bytes) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/route",
            "raw_path": b"/route",
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"bench"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            "state": {},
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        status: list[int] = []

        async def receive() -> dict:
            if messages:
                return messages.pop()
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        if status != [200]:
            raise RuntimeError(f"/route answered {status}")

    async def timed(k: int) -> list[float]:
        times = []
        for i in range(k):
            start = time.perf_counter()
            await call(payloads[i % len(payloads)])
            times.append((time.perf_counter() - start) * 1000.0)
        return times

    def stats(times: list[float]) -> dict[str, float]:
        p50, p99 = np.percentile(times, [50, 99])
        return {"p50_ms": float(p50), "p99_ms": float(p99)}

    async def run() -> dict[str, Any]:
        async with app.router.lifespan_context(app):
            for body in payloads[:10]:
                await call(body)
            if not variants:
                return stats(await timed(n))
            service = app.state.service
            scorer, sessions = service.scorer, service.sessions
            default_offload = scorer.offload
            by_label: dict[str, list[float]] = {v[0]: [] for v in variants}
            for _ in range(rounds):
                # (label, override, offload or None: the tier's default, sessions on)
                for label, override, offload, *state in variants:
                    if override:
                        app.dependency_overrides[get_settings] = lambda: settings
                    else:
                        app.dependency_overrides.clear()
                    scorer.offload = default_offload if offload is None else offload
                    service.sessions = sessions if not state or state[0] else None
                    by_label[label] += await timed(max(n // rounds, 1))
            app.dependency_overrides.clear()
            scorer.offload = default_offload
            service.sessions = sessions
            return {label: stats(times) for label, times in by_label.items()}

    return asyncio.run(run())


def _wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer /health within {timeout:.0f} s")


def serve_and_drive(
    bundle: Path, server_args: list[str], bodies: dict[str, list[dict]], args: argparse.Namespace
) -> dict[str, Any]:
    """Start the real server, drive it with the client process per prompt length."""
    from training.demo import free_port

    env = dict(os.environ)
    options = []
    for word in server_args:
        if "=" in word and not word.startswith("-"):
            key, value = word.split("=", 1)
            env[key] = value
        else:
            options.append(word)
    port = free_port()
    cmd = [str(BIN / "outcome-router"), "serve", "--bundle", str(bundle), "--port", str(port)]
    cmd += ["--log-level", "warning", *options]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    results: dict[str, Any] = {}
    try:
        _wait_healthy(port, server)
        for length, items in bodies.items():
            path = WORK / f"bodies-{length}.json"
            path.write_text(json.dumps(items))
            n = args.requests if length == "short" else args.long_requests
            client = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "client",
                    "--port",
                    str(port),
                    "--bodies",
                    str(path),
                    "--requests",
                    str(n),
                    "--warmup",
                    str(min(50, n)),
                    "--seconds",
                    str(args.seconds),
                    "--concurrency",
                    str(args.concurrency),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            results[length] = json.loads(client.stdout.strip().splitlines()[-1])
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    return results


def _ratio(value: float, target: float, higher_is_better: bool = False) -> str:
    ok = value >= target if higher_is_better else value <= target
    return f"{value / target:4.2f}x target {'ok' if ok else 'MISSED'}"


def report(label: str, tier: str, base: dict, http_: dict) -> list[str]:
    """The printed block of one bundle and server configuration."""
    s_in, l_in = base["short"], base["long"]
    s_seq, l_seq = http_["short"]["sequential"], http_["long"]["sequential"]
    s_con, l_con = http_["short"]["concurrent"], http_["long"]["concurrent"]
    over_s = s_seq["p50_ms"] - s_in["p50_ms"]
    over_l = l_seq["p50_ms"] - l_in["p50_ms"]
    errors = s_con["errors"] + l_con["errors"] + s_seq["errors"] + l_seq["errors"]
    t = TARGETS

    def pair(a: dict, b: dict) -> str:
        return (
            f"short p50 {a['p50_ms']:7.2f} ms  p99 {a['p99_ms']:7.2f} ms"
            f" | long p50 {b['p50_ms']:7.2f} ms  p99 {b['p99_ms']:7.2f} ms"
        )

    def rate(c: dict) -> str:
        return (
            f"{c['decisions_per_s']:7.1f} /s (errors {c['errors']}, fallbacks {c['fallbacks']},"
            f" p99 {c['p99_ms']:.1f} ms)"
        )

    return [
        f"== {label} [{tier}] ==",
        f"in-process encode+score   {pair(s_in, l_in)}",
        f"in-process ASGI /route    {pair(base['asgi_short'], base['asgi_long'])}",
        f"  framework+policy p50    short {base['asgi_short']['p50_ms'] - s_in['p50_ms']:6.2f} ms"
        f" | long {base['asgi_long']['p50_ms'] - l_in['p50_ms']:6.2f} ms"
        " (the rest of the HTTP overhead is sockets, HTTP parsing and scheduling)",
        f"HTTP, 1 connection        {pair(s_seq, l_seq)}",
        f"  HTTP / in-process p50   short {s_seq['p50_ms'] / s_in['p50_ms']:5.2f}x"
        f" | long {l_seq['p50_ms'] / l_in['p50_ms']:5.2f}x",
        f"HTTP+policy overhead p50  short {over_s:6.2f} ms"
        f" ({_ratio(over_s, t['overhead_p50_ms'])}) | long {over_l:6.2f} ms",
        f"{s_con['connections']} connections             short {rate(s_con)} | long {rate(l_con)}",
        f"targets: short p50 {_ratio(s_seq['p50_ms'], t['short_p50_ms'])};"
        f" short p99 {_ratio(s_seq['p99_ms'], t['short_p99_ms'])};"
        f" long p99 {_ratio(l_seq['p99_ms'], t['long_p99_ms'])};"
        f" short /s {_ratio(s_con['decisions_per_s'], t['short_rps_4'], True)};"
        f" errors {errors} ({'ok' if errors == 0 else 'MISSED'})",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", action="append", help="bundle folder (repeatable)")
    parser.add_argument(
        "--server",
        action="append",
        metavar="LABEL=ARGS",
        help="a server configuration: extra serve options and NAME=VALUE env words",
    )
    parser.add_argument("--requests", type=int, default=1000, help="sequential short requests")
    parser.add_argument("--long-requests", type=int, default=300, help="sequential long requests")
    parser.add_argument("--in-process", type=int, default=300, help="in-process timings per length")
    parser.add_argument("--seconds", type=float, default=5.0, help="concurrent phase length")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="also time the request-path variants of ABLATION in-process, per bundle",
    )
    parser.add_argument(
        "--session-ablation",
        action="store_true",
        help="also time /route in-process with the cache-aware session state on and off, "
        "interleaved, per bundle",
    )
    parser.add_argument(
        "--sessions",
        type=int,
        default=0,
        help="give the bodies a session_id among this many sessions, so every request "
        "reads and updates the cache-aware session state (0: no session_id)",
    )
    parser.add_argument("--out", default=str(WORK / "results.json"))
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    WORK.mkdir(parents=True, exist_ok=True)
    bundles = [Path(b) for b in args.bundle] if args.bundle else ensure_demo_bundles()
    servers = [("default", [])]
    if args.server:
        servers = []
        for spec in args.server:
            label, _, rest = spec.partition("=")
            servers.append((label, shlex.split(rest)))
    print(f"load average before: {_load()} on {os.cpu_count()} cores", flush=True)
    rows, lines = [], []
    for bundle in bundles:
        manifest = json.loads((bundle / "manifest.json").read_text())
        tier = manifest["feature_spec"].get("encoder", "minilm")
        short, long = make_prompts(bundle)
        base = {
            "short": in_process(bundle, short, args.in_process),
            "long": in_process(bundle, long, max(args.in_process // 3, 50)),
        }
        # The tags a gateway sends: a bundle with request-context columns builds them.
        tags = {"task": "gsm8k", "team": "demo-team"}
        bodies = {
            "short": [{"prompt": t, **tags} for t in short],
            "long": [{"messages": [{"role": "user", "content": t}], **tags} for t in long],
        }
        if args.sessions:
            for items in bodies.values():
                for i, body in enumerate(items):
                    body["session_id"] = f"session-{i % args.sessions}"
        base["asgi_short"] = asgi_in_process(bundle, bodies["short"], args.in_process)
        base["asgi_long"] = asgi_in_process(bundle, bodies["long"], max(args.in_process // 3, 50))
        if args.session_ablation:
            print(f"== {bundle.name} [{tier}]: session state, in-process ASGI, interleaved ==")
            for length in ("short", "long"):
                with_ids = [
                    {**b, "session_id": f"session-{i % 50}"} for i, b in enumerate(bodies[length])
                ]
                # Alternating every 2 requests: a busy host's swings hit both alike.
                n = 6 * args.in_process
                timed_ = asgi_in_process(bundle, with_ids, n, SESSION_ABLATION, rounds=n // 2)
                for label, r in timed_.items():
                    p50, p99 = r["p50_ms"], r["p99_ms"]
                    print(f"{length:5} {label:18} p50 {p50:6.3f} ms  p99 {p99:6.3f} ms")
                base[f"session_ablation_{length}"] = timed_
        if args.ablation:
            ablation = asgi_in_process(bundle, bodies["short"], 3 * args.in_process, ABLATION)
            first = next(iter(ablation.values()))["p50_ms"]
            print(f"== {bundle.name} [{tier}]: request path, short prompts, in-process ASGI ==")
            for label, r in ablation.items():
                print(
                    f"{label:44} p50 {r['p50_ms']:6.2f} ms ({r['p50_ms'] / first:4.2f}x)"
                    f"  p99 {r['p99_ms']:6.2f} ms  overhead p50 "
                    f"{r['p50_ms'] - base['short']['p50_ms']:6.2f} ms"
                )
            base["ablation"] = ablation
        for label, server_args in servers:
            try:
                http_ = serve_and_drive(bundle, server_args, bodies, args)
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                print(f"== {bundle.name} / {label}: skipped, {exc}", flush=True)
                continue
            rows.append(
                {
                    "bundle": str(bundle),
                    "tier": tier,
                    "server": label,
                    "in_process": base,
                    "http": http_,
                    "load": _load(),
                }
            )
            block = report(f"{bundle.name} / {label}", tier, base, http_)
            print("\n".join(block), flush=True)
            lines.extend(block)
    print(f"load average after: {_load()}")
    Path(args.out).write_text(json.dumps(rows, indent=2))
    print(f"results: {args.out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        cp = argparse.ArgumentParser()
        cp.add_argument("client")
        cp.add_argument("--port", type=int, required=True)
        cp.add_argument("--bodies", required=True)
        cp.add_argument("--requests", type=int, default=1000)
        cp.add_argument("--warmup", type=int, default=50)
        cp.add_argument("--seconds", type=float, default=5.0)
        cp.add_argument("--concurrency", type=int, default=4)
        client_main(cp.parse_args())
    else:
        main()
