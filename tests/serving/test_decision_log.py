"""The decision log on its own: rotation, the reader over rotated files, torn lines
and the repair on reopening, fsync settings. Its use by /route is in test_app.py;
the kill -9 proof is in test_decision_log_kill.py."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import pytest

from serving.decision_log import (
    DecisionLog,
    decision_log_files,
    read_decision_log,
    text_sha256,
)

SCORES = [{"model": f"m{k}", "p_success": 0.5, "expected_cost_usd": 0.01} for k in range(5)]


def write(log: DecisionLog, decision_id: str, **changes) -> None:
    fields = {
        "decision_id": decision_id,
        "router_version": "v1",
        "candidates": ["m0", "m1"],
        "model": "m0",
        "propensity": 1.0,
        "reason": "max_utility",
        "scores": SCORES,
        "routing_text": "a prompt",
        **changes,
    }
    log.write(**fields)


def test_rotation_keeps_every_decision_in_order(tmp_path):
    path = tmp_path / "decisions.jsonl"
    with DecisionLog(path, max_bytes=2000) as log:
        for i in range(40):
            write(log, f"d{i}")
    files = decision_log_files(path)
    assert len(files) > 5 and files[-1] == path
    assert all(f.stat().st_size <= 2000 for f in files)
    assert all(f.name.startswith("decisions.") and f.name.endswith(".jsonl") for f in files)
    read = read_decision_log(path)
    assert [r["decision_id"] for r in read.records] == [f"d{i}" for i in range(40)]
    assert read.bad == []


def test_backups_bound_the_rotated_files(tmp_path):
    path = tmp_path / "decisions.jsonl"
    with DecisionLog(path, max_bytes=1500, backups=2) as log:
        for i in range(30):
            write(log, f"d{i}")
    files = decision_log_files(path)
    assert len(files) == 3
    ids = [r["decision_id"] for r in read_decision_log(path).records]
    assert ids == [f"d{i}" for i in range(30 - len(ids), 30)]  # the newest survive


def test_a_line_larger_than_max_bytes_is_still_written(tmp_path):
    path = tmp_path / "decisions.jsonl"
    with DecisionLog(path, max_bytes=100) as log:
        write(log, "big-1")
        write(log, "big-2")
    assert [r["decision_id"] for r in read_decision_log(path).records] == ["big-1", "big-2"]
    assert len(decision_log_files(path)) == 2


def test_reader_reports_a_torn_last_line_and_bad_lines(tmp_path):
    path = tmp_path / "decisions.jsonl"
    with DecisionLog(path) as log:
        write(log, "d1")
        write(log, "d2")
    with open(path, "ab") as fh:
        fh.write(b"not json\n")
        fh.write(b'{"decision_id": "d3", "router_ver')  # a write cut short
    read = read_decision_log(path)
    assert [r["decision_id"] for r in read.records] == ["d1", "d2"]
    assert [b["reason"].split(":")[0] for b in read.bad] == ["invalid JSON", "torn last line"]
    assert read.bad[0]["source"] == f"{path}:3" and read.n_torn == 1


def test_reopening_cuts_off_a_torn_line_before_appending(tmp_path, caplog):
    path = tmp_path / "decisions.jsonl"
    with DecisionLog(path) as log:
        write(log, "d1")
    with open(path, "ab") as fh:
        fh.write(b'{"decision_id": "lost", "mod')
    with caplog.at_level(logging.WARNING), DecisionLog(path) as log:
        write(log, "d2")
    assert "unfinished line" in caplog.text
    read = read_decision_log(path)
    assert [r["decision_id"] for r in read.records] == ["d1", "d2"] and read.bad == []


def test_reopening_terminates_a_complete_last_line(tmp_path):
    path = tmp_path / "decisions.jsonl"
    path.write_text('{"decision_id": "d0"}')  # complete, only the newline missing
    with DecisionLog(path) as log:
        write(log, "d1")
    assert [r["decision_id"] for r in read_decision_log(path).records] == ["d0", "d1"]


@pytest.mark.parametrize("fsync_interval_s", [0.0, 0.01])
def test_lines_reach_the_file_before_write_returns(tmp_path, fsync_interval_s):
    """Read through a second descriptor while the log is open: nothing is buffered."""
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(path, fsync_interval_s=fsync_interval_s)
    try:
        for i in range(3):
            write(log, f"d{i}")
            assert len(path.read_bytes().splitlines()) == i + 1
        log.sync()
    finally:
        log.close()
    with pytest.raises(ValueError, match="closed"):
        write(log, "late")


def test_writers_in_threads_never_interleave_across_rotations(tmp_path):
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(path, max_bytes=50_000, fsync_interval_s=0.005)

    def run(worker: int) -> None:
        for i in range(150):
            write(log, f"{worker}-{i}", routing_text="x" * (50 * worker))

    threads = [threading.Thread(target=run, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    read = read_decision_log(path)
    assert read.bad == []
    ids = [r["decision_id"] for r in read.records]
    assert len(ids) == len(set(ids)) == 6 * 150
    assert len(decision_log_files(path)) > 2


def test_prompts_only_when_asked(tmp_path):
    for log_prompts in (False, True):
        path = tmp_path / f"log-{log_prompts}.jsonl"
        with DecisionLog(path, log_prompts=log_prompts) as log:
            write(log, "d1", routing_text="secret prompt", exploration={"method": "epsilon"})
        record = json.loads(path.read_text())
        assert ("prompt" in record) is log_prompts
        assert record["prompt_sha256"] == text_sha256("secret prompt")
        assert record["exploration"] == {"method": "epsilon"}


def test_reader_needs_a_log(tmp_path):
    with pytest.raises(FileNotFoundError, match="OUTCOME_ROUTER_DECISION_LOG"):
        read_decision_log(tmp_path / "none.jsonl")


def test_only_rotated_files_of_this_log_are_listed(tmp_path):
    path = tmp_path / "decisions.jsonl"
    with DecisionLog(path, max_bytes=1000) as log:
        for i in range(4):
            write(log, f"d{i}")
    (tmp_path / "decisions.backup.jsonl").write_text("{}\n")
    (tmp_path / "other.20261129T043616.123456Z.jsonl").write_text("{}\n")
    files = decision_log_files(path)
    assert len(files) == 4 and all(f.parent == tmp_path for f in files)
    assert not {"decisions.backup.jsonl", "other.20261129T043616.123456Z.jsonl"} & {
        f.name for f in files
    }


@pytest.mark.parametrize("kwargs", [{"max_bytes": -1}, {"backups": -1}, {"fsync_interval_s": -1.0}])
def test_bad_settings_are_refused(tmp_path, kwargs):
    with pytest.raises(ValueError, match="Expected max_bytes"):
        DecisionLog(tmp_path / "d.jsonl", **kwargs)
    assert not os.listdir(tmp_path)


def test_the_log_folder_is_created(tmp_path):
    path = tmp_path / "a" / "b" / "decisions.jsonl"
    with DecisionLog(path) as log:
        write(log, "d1")
    assert Path(path).is_file()


def test_a_lone_surrogate_does_not_cost_the_line(tmp_path):
    path = tmp_path / "decisions.jsonl"
    with DecisionLog(path, log_prompts=True) as log:
        write(log, "d1", user="ann\ud800", routing_text="why\udfff")
        write(log, "d2")
    read = read_decision_log(path)
    assert [r["decision_id"] for r in read.records] == ["d1", "d2"] and read.bad == []
