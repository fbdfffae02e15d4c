"""`outcome-router demo-request`: start the real server on a bundle, send it a real
request, print the decision, time a burst of requests, stop the server.

The server runs as its own process (exactly `outcome-router serve`), so the demo
exercises the same path a gateway does, over HTTP on loopback.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now, for a server started next (tests, benchmarks).

    The OS picks it (bind to port 0); another process could take it before the
    server binds, which on loopback in a test run does not happen in practice.
    """
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_health(host: str, port: int, timeout_s: float = 60.0, proc=None) -> dict[str, Any]:
    """Poll ``GET /health`` until it answers 200; raise if the server died or timed out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"The server exited with code {proc.returncode} before it was up.")
        try:
            conn = http.client.HTTPConnection(host, port, timeout=2)
            conn.request("GET", "/health")
            response = conn.getresponse()
            body = response.read()
            conn.close()
            if response.status == 200:
                return json.loads(body)
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"No healthy server on {host}:{port} after {timeout_s:.0f} s.")


def post_route(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, dict[str, Any]]:
    conn.request("POST", "/route", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def start_server(
    bundle: str | Path, host: str, port: int, *, python_flags: tuple[str, ...] = (), **popen: Any
) -> subprocess.Popen:
    """Start ``outcome-router serve`` as a child process (warnings and errors only)."""
    cmd = [
        sys.executable,
        *python_flags,
        "-m",
        "training.cli",
        "serve",
        "--bundle",
        str(bundle),
        "--host",
        host,
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    return subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}, **popen)


def demo_request(
    bundle: str | Path,
    request_path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    n_timed: int = 200,
) -> dict[str, Any]:
    """Run the demo; return the decision and the measured latency."""
    body = Path(request_path).read_bytes()
    proc = start_server(bundle, host, port)
    try:
        health = wait_for_health(host, port, proc=proc)
        conn = http.client.HTTPConnection(host, port, timeout=10)
        status, decision = post_route(conn, body)
        if status != 200:
            raise RuntimeError(f"/route answered {status}: {decision}")
        latencies = []
        for _ in range(n_timed):
            start = time.perf_counter()
            post_route(conn, body)
            latencies.append((time.perf_counter() - start) * 1000)
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    latencies.sort()
    timing = {
        "requests": n_timed,
        "p50_ms": round(latencies[len(latencies) // 2], 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2),
    }
    return {"health": health, "decision": decision, "latency_one_connection": timing}
