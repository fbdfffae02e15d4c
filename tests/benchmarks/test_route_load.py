"""`benchmarks/route_load.py` end to end: a short fixed-rate load on a real server.

Only counts are asserted (every scheduled request answered, zero errors, the exit
status); latencies are printed by the benchmark, never asserted, since the tests
share a busy machine.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "route_load.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_short_load_is_answered_in_full(bundle_dir):
    result = run("--bundle", str(bundle_dir), "--seconds", "3", "--rate", "10", "--timeout", "60")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["sent"] == summary["ok"] == 30
    assert summary["errors"] == 0
    assert 0 < summary["p50_ms"] <= summary["p99_ms"] <= summary["max_ms"]


def test_errors_make_it_exit_non_zero():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens once the socket is closed
    result = run("--url", f"http://127.0.0.1:{closed}", "--seconds", "1", "--rate", "5")
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert summary["ok"] == 0 and summary["errors"] == 5
    assert summary["error_kinds"] == {"ConnectError": 5}
