"""`features.call_log_dataset`: call logs as day partitions read one at a time, with the
rules and the quarantine of `read_call_logs` per partition."""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
import pandas as pd
import pytest

from features.call_log import read_call_logs
from features.call_log_dataset import (
    collect_quarantine,
    open_call_log_dataset,
    partition_quarantine_path,
    write_partitioned_call_log,
)
from features.call_log_files import CallLogError


def _call(request_id: str, model: str, prompt: str, timestamp: str, **usage) -> dict:
    return {
        "request_id": request_id,
        "model": model,
        "prompt": prompt,
        "timestamp": timestamp,
        **usage,
    }


ROWS = [
    _call("a1", "gpt-4o", "sort a list", "2026-03-01T09:00:00Z", input_tokens=10, output_tokens=5),
    _call("a2", "gpt-4o-mini", "sort a list", "2026-03-01T23:59:00Z", input_tokens=10),
    _call("b1", "gpt-4o", "reverse a string", "2026-03-02T00:01:00Z", input_tokens=12),
    _call("b2", "gpt-4o", "merge two dicts", "2026-03-02T08:00:00+02:00", cost_usd=0.01),
]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def day_folder(tmp_path: Path) -> Path:
    """A hive-style dataset: two day folders (JSONL and Parquet), one bad row on day 2."""
    root = tmp_path / "calls"
    _jsonl(root / "day=2026-03-01" / "part-0.jsonl", ROWS[:2])
    (root / "day=2026-03-02").mkdir(parents=True)
    pd.DataFrame(ROWS[2:]).to_parquet(root / "day=2026-03-02" / "part-0.parquet")
    bad = {"request_id": "b3", "model": "gpt-4o", "prompt": "x", "input_tokens": -3}
    _jsonl(root / "day=2026-03-02" / "part-1.jsonl", [bad, {**ROWS[0], "request_id": "b4"}])
    return root


def test_day_folders_are_partitions_in_day_order(day_folder: Path) -> None:
    dataset = open_call_log_dataset(day_folder)
    assert [p.name for p in dataset.partitions] == ["day=2026-03-01", "day=2026-03-02"]
    assert [p.day for p in dataset.partitions] == ["2026-03-01", "2026-03-02"]
    assert [len(p.files) for p in dataset.partitions] == [1, 2]


def test_partitions_hold_the_rows_read_call_logs_reads(day_folder: Path) -> None:
    dataset = open_call_log_dataset(day_folder)
    parts = [read.frame for _, read in dataset.read_partitions()]
    whole = read_call_logs(day_folder).frame
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)


def test_each_partition_quarantines_its_own_bad_rows(day_folder: Path, tmp_path: Path) -> None:
    dataset = open_call_log_dataset(day_folder)
    first, second = dataset.partitions
    assert first.read(quarantine_path=tmp_path / "q1.jsonl").n_quarantined == 0
    assert not (tmp_path / "q1.jsonl").exists()
    read = second.read(quarantine_path=tmp_path / "q2.jsonl")
    (row,) = [json.loads(line) for line in (tmp_path / "q2.jsonl").read_text().splitlines()]
    assert read.n_quarantined == 1
    assert row["request_id"] == "b3" and "input_tokens" in row["quarantine_reason"]
    assert row["source"].endswith("part-1.jsonl:1")


def test_plain_files_are_one_partition_each(tmp_path: Path) -> None:
    one = _jsonl(tmp_path / "logs" / "a.jsonl", ROWS[:2])
    _jsonl(tmp_path / "logs" / "b.jsonl", ROWS[2:])
    assert [p.name for p in open_call_log_dataset(tmp_path / "logs").partitions] == [
        str(tmp_path / "logs" / "a.jsonl"),
        str(tmp_path / "logs" / "b.jsonl"),
    ]
    (single,) = open_call_log_dataset(one).partitions
    assert single.named and single.day is None


def test_a_url_is_read_through_fsspec(day_folder: Path) -> None:
    fs = fsspec.filesystem("memory")
    for f in day_folder.rglob("*.*"):
        fs.pipe(f"/calls/{f.parent.name}/{f.name}", f.read_bytes())
    dataset = open_call_log_dataset("memory://calls")
    assert [p.name for p in dataset.partitions] == ["day=2026-03-01", "day=2026-03-02"]
    assert all(f.startswith("memory://") for f in dataset.files)
    got = pd.concat([r.frame for _, r in dataset.read_partitions()], ignore_index=True)
    assert sorted(got["request_id"]) == ["a1", "a2", "b1", "b2", "b4"]


@pytest.mark.parametrize(
    ("path", "match"),
    [("missing-folder", "no such file or folder"), ("empty", "holds no call-log files")],
)
def test_a_path_without_logs_names_itself(tmp_path: Path, path: str, match: str) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CallLogError, match=match):
        open_call_log_dataset(tmp_path / path)


def test_written_partitions_read_back_by_utc_day(tmp_path: Path) -> None:
    frame = read_call_logs(_jsonl(tmp_path / "flat.jsonl", ROWS)).frame
    write_partitioned_call_log(frame, tmp_path / "ds")
    dataset = open_call_log_dataset(tmp_path / "ds")
    # 2026-03-02T08:00+02:00 is 06:00 UTC: day 2
    assert [p.name for p in dataset.partitions] == ["day=2026-03-01", "day=2026-03-02"]
    got = pd.concat([r.frame for _, r in dataset.read_partitions()], ignore_index=True)
    pd.testing.assert_frame_equal(got, frame)


def test_a_row_without_timestamp_is_not_put_in_a_made_up_day(tmp_path: Path) -> None:
    frame = pd.DataFrame([{**ROWS[0], "timestamp": None}])
    with pytest.raises(ValueError, match="1 rows have no timestamp"):
        write_partitioned_call_log(frame, tmp_path / "ds")


def test_collect_quarantine_gathers_partition_files(day_folder: Path, tmp_path: Path) -> None:
    dataset = open_call_log_dataset(day_folder)
    for partition in dataset.partitions:
        partition.read(quarantine_path=partition_quarantine_path(tmp_path / "q", partition))
    assert collect_quarantine(tmp_path / "q", tmp_path / "all.jsonl") == 1
    assert not (tmp_path / "q").exists()  # no partition file left, nor the emptied folder
    assert collect_quarantine(tmp_path / "q", tmp_path / "all.jsonl") == 0
    assert not (tmp_path / "all.jsonl").exists()
