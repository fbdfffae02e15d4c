"""What a hot reload costs: the time a new bundle takes to be ready, and what
``POST /route`` latency does while reloads run.

Starts the real server (``outcome-router serve``, its own process) on a bundle,
then, from this process over loopback with one connection:

1. times ``--requests`` sequential /route calls with no reload running (idle);
2. times /route calls while a second thread reloads back and forth between the
   bundle and a variant of it ``--reloads`` times (the variant is a copy with
   another default ``value_usd``, re-hashed, so each reload is a real swap);

and prints each reload's ``load_ms`` (fetch + verify + onnxruntime sessions +
warm-up, as the server measured it), the /route p50/p99/max in both phases, the
errors, and the router versions seen. A reload hashes and loads the bundle on the
server's cores, so on a small machine it competes with /route for CPU: the second
phase measures exactly that.

Run: ``.venv/bin/python benchmarks/reload.py --bundle build/demo/bundle``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from serving.bundle import MANIFEST_FILE, router_version_of  # noqa: E402
from training.demo import start_server, wait_for_health  # noqa: E402

ADMIN_KEY = "benchmark-admin"
PROMPT = json.dumps({"prompt": "Fix the off-by-one error in paginate() and add a test."})


def variant(bundle: Path, dst: Path) -> Path:
    """A copy of ``bundle`` with another default value: valid, another router version."""
    shutil.copytree(bundle, dst)
    manifest = json.loads((dst / MANIFEST_FILE).read_text())
    manifest["policy"]["value_usd"] = float(manifest["policy"]["value_usd"]) * 2 + 0.5
    manifest["router_version"] = router_version_of(manifest)
    (dst / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return dst


def post(conn: http.client.HTTPConnection, path: str, body: str, headers: dict) -> tuple:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def timed_routes(conn: http.client.HTTPConnection, keep_going) -> tuple[list[float], list, set]:
    """Sequential /route calls while ``keep_going()``: latencies (ms), errors, versions."""
    latencies, errors, versions = [], [], set()
    while keep_going(len(latencies)):
        start = time.perf_counter()
        status, body = post(conn, "/route", PROMPT, {})
        latencies.append((time.perf_counter() - start) * 1000.0)
        if status != 200:
            errors.append((status, body))
        else:
            versions.add(body["router_version"])
    return latencies, errors, versions


def summary(name: str, latencies: list[float], errors: list) -> str:
    a = np.asarray(latencies)
    return (
        f"{name:<18} n={len(a):>5}  p50={np.percentile(a, 50):6.2f} ms  "
        f"p99={np.percentile(a, 99):6.2f} ms  max={a.max():7.2f} ms  errors={len(errors)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", default="build/demo/bundle", help="bundle folder")
    parser.add_argument("--reloads", type=int, default=10, help="reloads in phase 2")
    parser.add_argument("--requests", type=int, default=500, help="/route calls in phase 1")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        bundles = [Path(args.bundle).resolve(), variant(Path(args.bundle), Path(tmp) / "v")]
        os.environ["OUTCOME_ROUTER_ADMIN_KEYS"] = ADMIN_KEY
        os.environ.setdefault("OUTCOME_ROUTER_TIME_BUDGET_MS", "1000")
        proc = start_server(bundles[0], "127.0.0.1", port)
        try:
            wait_for_health("127.0.0.1", port, timeout_s=120, proc=proc)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for _ in range(50):  # warm the connection and the server's thread pool
                post(conn, "/route", PROMPT, {})
            idle, idle_errors, _ = timed_routes(conn, lambda n: n < args.requests)

            load_ms, wall_ms, reload_errors = [], [], []
            done = threading.Event()

            def reloader() -> None:
                admin = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
                headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
                try:
                    for k in range(args.reloads):
                        body = json.dumps({"bundle": str(bundles[(k + 1) % 2])})
                        start = time.perf_counter()
                        status, answer = post(admin, "/admin/reload", body, headers)
                        wall_ms.append((time.perf_counter() - start) * 1000.0)
                        if status == 200:
                            load_ms.append(answer["load_ms"])
                        else:
                            reload_errors.append((status, answer))
                finally:
                    done.set()

            thread = threading.Thread(target=reloader)
            thread.start()
            during, during_errors, versions = timed_routes(conn, lambda n: not done.is_set())
            thread.join()
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    print(f"bundle {args.bundle}, {os.cpu_count()} cores, client and server on this machine")
    print(
        f"reload   n={len(load_ms)}  load_ms p50={np.median(load_ms):.0f}  "
        f"max={max(load_ms):.0f}  (HTTP round trip p50={np.median(wall_ms):.0f} ms)  "
        f"errors={len(reload_errors)}"
    )
    print(summary("/route idle", idle, idle_errors))
    print(summary("/route reloading", during, during_errors))
    print(f"router versions seen while reloading: {len(versions)}")
    return 1 if idle_errors or during_errors or reload_errors else 0


if __name__ == "__main__":
    sys.exit(main())
