"""How long ``outcome-router report spend``'s aggregation takes on 1M and 10M calls
(`training.report.spend.aggregate_spend`, DuckDB over Arrow), against the same figures
computed with pandas groupbys on the smallest size.

Synthetic calls, built here with numpy and pyarrow and a fixed seed (no data is read):
200 users in 20 teams, 8 models of the shipped price catalog (five with cache-read
prices), 10 task tags, 30 days; sessions of 1-50 turns (geometric, mean 8) whose
input tokens grow every turn (lognormal increments) with a 5% chance of a fresh start;
80% of a cache-priced session's later turns read the previous prompt from the cache
(the rest are cold re-sends); 60% of calls graded (70% of them good), 3% retried.
They are written to Parquet, and each measurement runs in its own child process,
which reads the Parquet file into an Arrow table and aggregates it, so its peak RSS
(``ru_maxrss``) is its own. The pandas baseline computes the same figures (totals,
five groupings, model mix, sessions by spend, context growth, cold-cache re-sends)
and must agree with DuckDB's totals; the ratio is pandas seconds / DuckDB seconds.

Run: ``python -m benchmarks.spend [--calls 1000000,10000000]`` from the project root
(as a script, ``benchmarks/features.py`` would shadow the ``features`` package).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

#: Models of the shipped catalog; the first five have cache-read prices.
MODELS = (
    "gpt-4o",
    "gpt-4o-mini",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "gemini-2.5-flash",
    "openai/gpt-oss-120b",
    "Qwen/Qwen3-Coder-480B-A35B-Instruct",
    "MiniMaxAI/MiniMax-M2",
)
MODEL_SHARE = (0.15, 0.2, 0.2, 0.15, 0.1, 0.1, 0.05, 0.05)
N_USERS, N_TEAMS, N_TASKS, DAYS = 200, 20, 10, 30
MEAN_TURNS, MAX_TURNS = 8, 50
FRESH_START, WARM, GRADED, GOOD, RETRIED = 0.05, 0.8, 0.6, 0.7, 0.03


def _strings(prefix: str, n: int) -> pa.Array:
    return pc.binary_join_element_wise(
        pa.array([prefix] * n), pa.array(np.arange(n)).cast(pa.string()), ""
    )


def _dictionary(indices: np.ndarray, values: pa.Array) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32)), values)


def synthetic_calls(n: int, seed: int = 0) -> pa.Table:
    """``n`` calls with the call-log columns `aggregate_spend` reads (module docstring)."""
    from features.prices import PriceCatalog

    rng = np.random.default_rng(seed)
    lengths = np.minimum(rng.geometric(1 / MEAN_TURNS, n // MEAN_TURNS * 2 + 10), MAX_TURNS)
    n_sessions = int(np.searchsorted(np.cumsum(lengths), n)) + 1
    lengths = lengths[:n_sessions]
    lengths[-1] -= lengths.sum() - n
    session = np.repeat(np.arange(n_sessions), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    turn = np.arange(n) - np.repeat(starts, lengths)

    user = rng.integers(0, N_USERS, n_sessions)
    model = rng.choice(len(MODELS), n_sessions, p=MODEL_SHARE)
    task = rng.integers(0, N_TASKS, n_sessions)
    t0 = np.datetime64("2026-01-01T00:00:00", "us").astype(np.int64)
    begin = t0 + rng.integers(0, DAYS * 86_400, n_sessions) * 1_000_000
    gaps = (rng.exponential(60.0, n) * 1_000_000).astype(np.int64)
    gaps[starts] = 0
    ts = np.repeat(begin, lengths) + _segment_cumsum(gaps, starts)

    # context: a base prompt, then growth each turn; a fresh start drops back to a base
    fresh = (turn == 0) | (rng.random(n) < FRESH_START)
    base = rng.lognormal(7.0, 0.8, n)
    inc = np.where(fresh, base, rng.lognormal(6.5, 0.9, n))
    segment_starts = np.flatnonzero(fresh)
    input_tokens = np.rint(_segment_cumsum(inc, segment_starts)).astype(np.int64)
    prev = np.where(fresh, 0, input_tokens - np.rint(inc).astype(np.int64))
    prices = PriceCatalog.load()
    price = [prices.get(m) for m in MODELS]
    has_cache = np.array([p.cache_read_input_token_cost is not None for p in price])
    writes_cache = np.array([p.cache_creation_input_token_cost is not None for p in price])
    m = np.repeat(model, lengths)
    warm = ~fresh & has_cache[m] & (rng.random(n) < WARM)
    cached = np.where(warm, prev, 0)
    written = np.where(writes_cache[m], input_tokens - cached, 0)
    output_tokens = np.rint(rng.lognormal(5.5, 1.0, n)).astype(np.int64)

    def per_token(field: str, fallback: str = "input_cost_per_token") -> np.ndarray:
        values = [getattr(p, field) or getattr(p, fallback) for p in price]
        return np.asarray(values)[m]

    cost = (
        (input_tokens - cached - written) * per_token("input_cost_per_token")
        + cached * per_token("cache_read_input_token_cost")
        + written * per_token("cache_creation_input_token_cost")
        + output_tokens * per_token("output_cost_per_token")
    )
    graded = rng.random(n) < GRADED
    outcome = np.where(graded, (rng.random(n) < GOOD).astype(float), np.nan)
    users = _strings("user-", N_USERS)
    teams = _strings("team-", N_TEAMS)
    u = np.repeat(user, lengths)
    return pa.table(
        {
            "request_id": _strings("r", n),
            "model": _dictionary(m, pa.array(MODELS)),
            "timestamp": pa.array(ts, pa.timestamp("us")),
            "user": _dictionary(u, users),
            "team": _dictionary(u % N_TEAMS, teams),
            "task": _dictionary(np.repeat(task, lengths), _strings("task-", N_TASKS)),
            "session_id": _dictionary(session, _strings("s", n_sessions)),
            "input_tokens": input_tokens,
            "cached_input_tokens": cached,
            "cache_write_tokens": written,
            "output_tokens": output_tokens,
            "cost_usd": cost,
            "outcome": pa.array(outcome, from_pandas=True),
            "retried": rng.random(n) < RETRIED,
        }
    )


def _segment_cumsum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``values`` restarting at each index of ``starts``."""
    total = np.cumsum(values)
    before = np.zeros(len(values), dtype=total.dtype)
    before[starts] = total[starts] - values[starts]
    return total - np.maximum.accumulate(before) if len(starts) else total


# --------------------------------------------------------------------- measurements
def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: reset by exec, unlike ru_maxrss,
    which a child inherits from the parent that built the data)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: KiB


def _cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (DuckDB's too)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure_duckdb(path: Path, threads: int | None) -> dict:
    from features.prices import PriceCatalog
    from training.report.spend import aggregate_spend

    prices = PriceCatalog.load()
    started = time.perf_counter()
    table = pq.read_table(path)
    read = time.perf_counter() - started
    started, cpu = time.perf_counter(), _cpu_seconds()
    figures = aggregate_spend(table, prices, threads=threads)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    return {
        "read_seconds": read,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mb": _peak_rss_mb(),
        "total": figures["total"],
        "cold_cache_resends": figures["cold_cache"]["resends"],
        "top_growth_tokens": [s["growth_tokens"] for s in figures["sessions"]["by_context_growth"]],
    }


def measure_pandas(path: Path) -> dict:
    """The same figures with pandas groupbys (one thread)."""
    import pandas as pd

    from features.prices import PriceCatalog

    prices = PriceCatalog.load()
    started = time.perf_counter()
    df = pq.read_table(path).to_pandas()
    read = time.perf_counter() - started
    started, cpu = time.perf_counter(), _cpu_seconds()
    model = df["model"].astype(str)
    found = {name: prices.get(name) for name in model.unique()}
    input_price = model.map({k: p.input_cost_per_token for k, p in found.items()})
    read_price = model.map({k: p.cache_read_input_token_cost for k, p in found.items()})
    df["input_price"], df["read_price"] = input_price.astype(float), read_price.astype(float)
    df["cache_saved"] = (df["cached_input_tokens"] * (df.input_price - df.read_price)).fillna(0)
    df["good"] = df["outcome"] >= 0.5
    df["failed"] = df["outcome"] < 0.5
    df["graded_cost"] = df["cost_usd"].where(df["outcome"].notna(), 0.0)
    df["wasted_cost"] = df["cost_usd"].where(df["failed"] | df["retried"], 0.0)
    df["day"] = df["timestamp"].dt.floor("D")
    aggs = {
        "calls": ("request_id", "size"),
        "spend_usd": ("cost_usd", "sum"),
        "input_tokens": ("input_tokens", "sum"),
        "output_tokens": ("output_tokens", "sum"),
        "cached_input_tokens": ("cached_input_tokens", "sum"),
        "cache_write_tokens": ("cache_write_tokens", "sum"),
        "cache_saved_usd": ("cache_saved", "sum"),
        "graded_calls": ("outcome", "count"),
        "good_outcomes": ("good", "sum"),
        "wasted_usd": ("wasted_cost", "sum"),
        "retried_calls": ("retried", "sum"),
        "failed_calls": ("failed", "sum"),
        "graded_spend_usd": ("graded_cost", "sum"),
    }

    def finish(frame):
        frame["cache_hit_rate"] = frame["cached_input_tokens"] / frame["input_tokens"]
        frame["cost_per_good_outcome_usd"] = frame["graded_spend_usd"] / frame["good_outcomes"]
        return frame

    groups = {
        key: finish(df.groupby(key, observed=True).agg(**aggs))
        for key in ("team", "user", "model", "task", "day")
    }
    groups["model_mix"] = df.groupby(["day", "model"], observed=True).agg(
        calls=("request_id", "size"), spend_usd=("cost_usd", "sum")
    )
    total = finish(df.assign(all=0).groupby("all").agg(**aggs)).iloc[0]
    by_session = df.groupby("session_id", observed=True).agg(
        calls=("request_id", "size"), spend_usd=("cost_usd", "sum"), good=("good", "sum")
    )
    top_spend = by_session.nlargest(20, "spend_usd")
    turns = df.sort_values(["session_id", "timestamp", "request_id"])
    grouped = turns.groupby("session_id", observed=True)
    prev = grouped["input_tokens"].shift()
    prev_model = grouped["model"].shift()
    prev_ts = grouped["timestamp"].shift()
    fresh = prev.isna() | (turns["input_tokens"] < 0.5 * prev)
    run = fresh.astype(int).groupby(turns["session_id"], observed=True).cumsum()
    runs = turns.assign(run=run).groupby(["session_id", "run"], observed=True)["input_tokens"]
    stats = runs.agg(["first", "last", "size"])
    stats["growth"] = stats["last"] - stats["first"]
    best = stats[(stats["size"] >= 2) & (stats["growth"] > 0)].groupby(level=0, observed=True)
    top_growth = best["growth"].max().nlargest(20)
    cold = (
        (prev > 0)
        & (turns["input_tokens"] >= prev)
        & (turns["model"] == prev_model)
        & (turns["cached_input_tokens"] < 0.5 * prev)
        & (turns["read_price"] < turns["input_price"])
        & ((turns["timestamp"] - prev_ts) <= pd.Timedelta("1h"))
    )
    extra = ((prev - turns["cached_input_tokens"]).clip(lower=0)) * (
        turns["input_price"] - turns["read_price"]
    )
    cold_top = (
        turns.assign(extra=extra)[cold]
        .groupby(["session_id", "model"], observed=True)["extra"]
        .sum()
        .nlargest(20)
    )
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    del groups, top_spend, cold_top
    return {
        "read_seconds": read,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mb": _peak_rss_mb(),
        "total": {
            "calls": int(total["calls"]),
            "spend_usd": float(total["spend_usd"]),
            "good_outcomes": int(total["good_outcomes"]),
            "wasted_usd": float(total["wasted_usd"]),
        },
        "cold_cache_resends": int(cold.sum()),
        "top_growth_tokens": [int(g) for g in top_growth],
    }


def _child(engine: str, path: Path, threads: int | None) -> dict:
    """Run one measurement in a fresh interpreter (its own peak RSS)."""
    argv = [sys.executable, "-m", "benchmarks.spend", "--measure", engine, str(path)]
    if threads:
        argv += ["--threads", str(threads)]
    run = subprocess.run(argv, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"{engine} on {path} failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout)


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(float(part)) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"--calls takes comma-separated counts, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise SystemExit(f"--calls takes counts >= 1, got {text!r}")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--calls", default="1000000,10000000", help="comma-separated sizes to measure"
    )
    parser.add_argument(
        "--baseline-calls",
        type=int,
        help="size of the pandas baseline (default: the smallest of --calls)",
    )
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: one per core)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic calls")
    parser.add_argument("--data", help="folder for the Parquet files (default: a temp folder)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--measure", nargs=2, metavar=("ENGINE", "PARQUET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        engine, path = args.measure
        result = measure_duckdb(Path(path), args.threads) if engine == "duckdb" else None
        result = result or measure_pandas(Path(path))
        print(json.dumps(result))
        return 0
    sizes = _sizes(args.calls)
    baseline = args.baseline_calls or min(sizes)
    with tempfile.TemporaryDirectory(prefix="spend-bench-") as tmp:
        folder = Path(args.data or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for n in sorted({*sizes, baseline}):
            started = time.perf_counter()
            paths[n] = folder / f"calls-{n}.parquet"
            pq.write_table(synthetic_calls(n, args.seed), paths[n])
            size_mb = paths[n].stat().st_size / 2**20
            print(
                f"built {n:,} calls in {time.perf_counter() - started:.1f} s "
                f"({size_mb:.0f} MB Parquet)",
                file=sys.stderr,
            )
        rows = []
        for n in sorted({*sizes, baseline}):
            result = _child("duckdb", paths[n], args.threads)
            rows.append({"engine": "duckdb", "calls": n, **result})
            print(f"duckdb {n:,}: {result['seconds']:.2f} s", file=sys.stderr)
        pandas_run = _child("pandas", paths[baseline], None)
        rows.append({"engine": "pandas", "calls": baseline, **pandas_run})
        print(f"pandas {baseline:,}: {pandas_run['seconds']:.2f} s", file=sys.stderr)
    duck = next(r for r in rows if r["engine"] == "duckdb" and r["calls"] == baseline)
    if duck:
        for key in ("calls", "good_outcomes"):
            if duck["total"][key] != pandas_run["total"][key]:
                raise SystemExit(f"pandas and DuckDB disagree on {key}")
        for key in ("spend_usd", "wasted_usd"):
            if not np.isclose(duck["total"][key], pandas_run["total"][key], rtol=1e-9):
                raise SystemExit(f"pandas and DuckDB disagree on {key}")
        for key in ("cold_cache_resends", "top_growth_tokens"):
            if duck[key] != pandas_run[key]:
                raise SystemExit(f"pandas and DuckDB disagree on {key}")
    ratio = pandas_run["seconds"] / duck["seconds"]
    print("| engine | calls | aggregate (s) | CPU (s) | read Parquet (s) | peak RSS (MB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['engine']} | {r['calls']:,} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} "
            f"| {r['read_seconds']:.2f} | {r['peak_rss_mb']:.0f} |"
        )
    cpu_ratio = pandas_run["cpu_seconds"] / duck["cpu_seconds"]
    print(
        f"\npandas / DuckDB on {baseline:,} calls: {ratio:.1f}x wall-clock, "
        f"{cpu_ratio:.1f}x CPU time ({os.cpu_count()} cores; load average "
        f"{os.getloadavg()[0]:.1f})"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "rows": rows,
                    "pandas_over_duckdb": ratio,
                    "pandas_over_duckdb_cpu": cpu_ratio,
                    "cores": os.cpu_count(),
                    "load_average": os.getloadavg()[0],
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
