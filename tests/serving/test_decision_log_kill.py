"""kill -9 under load: every decision a client was answered is in the decision log.

The real server (``outcome-router serve`` in a child process) is driven by client
threads, each recording the ``decision_id`` of every 200 it gets; the server is
sent SIGKILL while they are still sending. The log, rotated files included, must
then hold every acknowledged decision, and every line must parse except at most
one torn last line (a write the kill cut short, which no client was answered for).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from serving.decision_log import decision_log_files, read_decision_log
from training.demo import free_port, post_route, start_server, wait_for_health

HOST = "127.0.0.1"
N_CLIENTS = 4
#: Decisions acknowledged before the kill: enough for several rotations.
N_BEFORE_KILL = 200


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_no_acknowledged_decision_is_lost_on_kill_9(bundle_dir, tmp_path, monkeypatch):
    log_path = tmp_path / "log" / "decisions.jsonl"
    # The child reads its settings from the environment (`serving.config`).
    monkeypatch.setenv("OUTCOME_ROUTER_DECISION_LOG", str(log_path))
    monkeypatch.setenv("OUTCOME_ROUTER_DECISION_LOG_MAX_BYTES", "40000")
    monkeypatch.setenv("OUTCOME_ROUTER_TIME_BUDGET_MS", "60000")
    monkeypatch.setenv("OUTCOME_ROUTER_EXPLORE", "softmax")
    port = free_port(HOST)
    stderr_path = tmp_path / "server.stderr"
    with open(stderr_path, "wb") as stderr:
        proc = start_server(bundle_dir, HOST, port, stdout=subprocess.DEVNULL, stderr=stderr)
    acknowledged: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def drive(worker: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        i = 0
        while not stop.is_set():
            body = {"prompt": f"Client {worker} asks question {i}: why does the build fail?"}
            try:
                status, decision = post_route(conn, json.dumps(body).encode())
            except (OSError, http.client.HTTPException, ValueError):
                return  # the server is gone: this request was not acknowledged
            with lock:
                if status == 200:
                    acknowledged.append(decision["decision_id"])
                else:
                    failures.append(f"{status}: {decision}")
            i += 1

    threads = [threading.Thread(target=drive, args=(w,), daemon=True) for w in range(N_CLIENTS)]
    try:
        wait_for_health(HOST, port, proc=proc)
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 120
        while len(acknowledged) < N_BEFORE_KILL and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.01)
        in_flight = sum(thread.is_alive() for thread in threads)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)

    assert proc.returncode == -signal.SIGKILL, stderr_path.read_text()[-3000:]
    assert in_flight == N_CLIENTS, "the kill did not come under load"
    assert failures == []
    assert len(acknowledged) >= N_BEFORE_KILL, stderr_path.read_text()[-3000:]

    read = read_decision_log(log_path)
    logged = [record["decision_id"] for record in read.records]
    missing = set(acknowledged) - set(logged)
    assert not missing, f"{len(missing)} acknowledged decisions are not in the log"
    assert len(logged) == len(set(logged))
    # Every line parses, but for at most one torn last line of the live file.
    assert all(b["reason"].startswith("torn last line") for b in read.bad), read.bad
    assert all(b["source"].startswith(f"{log_path}:") for b in read.bad)
    assert len(read.bad) <= 1
    assert len(decision_log_files(log_path)) > 2, "the log did not rotate under load"
    for record in read.records:
        assert 0.0 < record["propensity"] <= 1.0
    print(
        f"kill -9: {len(acknowledged)} acknowledged, {len(logged)} logged, "
        f"{len(decision_log_files(log_path))} files, {read.n_torn} torn"
    )
