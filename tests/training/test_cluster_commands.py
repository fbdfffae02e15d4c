"""`grade`, `evaluate` and `report spend` with ``--cluster`` on a 2-worker LocalCluster
(processes) give what they give in one process.

The logs: a gateway log simulated from the shipped SWE-bench calls (`simulate`, PR
events over days) plus calls that cross the day boundary on purpose: a session that
retries a prompt over midnight, a session whose PR is merged two days later, a user without
a session who retries over midnight, an event that names no call and a bad row. One
process reads them as one JSONL file; the cluster reads the same rows as a dataset
partitioned by day (``day=YYYY-MM-DD/part-0.jsonl``).

Tolerances: grading and spend counts are equal; spend sums of USD and tokens agree
to 1e-9 (relative; partial sums are added in another order); evaluate's metrics agree
to 1e-6 (onnxruntime scores a partition's texts in another batch than one process).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from training.cli import main

distributed = pytest.importorskip("distributed")

SWEBENCH = Path(__file__).parents[2] / "data" / "swebench_verified" / "calls.parquet"
AS_OF = "2026-02-15T00:00:00Z"
#: Keys that name files or times of the run, not results.
RUN_KEYS = {"out", "seconds", "seconds_on_workers", "shards", "generated_at", "logs", "report",
            "quarantine"}  # fmt: skip


def _call(request_id, timestamp, prompt, *, session=None, user=None, **more) -> dict:
    return {
        "request_id": request_id,
        "model": "openai/gpt-oss-20b",
        "prompt": prompt,
        "timestamp": timestamp,
        "session_id": session,
        "user": user,
        "team": "io",
        "input_tokens": 1200,
        "output_tokens": 300,
        **more,
    }


#: Calls whose grading crosses a day boundary, and a bad row.
ACROSS_MIDNIGHT = [
    _call("m1", "2026-01-05T23:59:00Z", "Fix the flaky test in test_io.py", session="s-night"),
    _call("m2", "2026-01-06T00:00:40Z", "fix the flaky test in test_io.py ", session="s-night"),
    _call("p1", "2026-01-05T22:00:00Z", "Make read_table stream large files", session="s-pr"),
    _call("u1", "2026-01-06T23:58:00Z", "What is a monad, in two lines?", user="ben@io"),
    _call("u2", "2026-01-07T00:02:00Z", "what is a monad, in two lines", user="ben@io"),
    _call("bad-1", "2026-01-06T10:00:00Z", "x", user="ben@io", input_tokens=-1),
]
EXTRA_EVENTS = [
    {"timestamp": "2026-01-06T01:00:00Z", "event": "pr_opened", "session_id": "s-pr",
     "pr": "acme/io#7"},
    {"timestamp": "2026-01-08T12:00:00Z", "event": "pr_merged", "pr": "acme/io#7"},
    {"timestamp": "2026-01-07T00:05:00Z", "event": "tests_failed", "request_id": "u2"},
    {"timestamp": "2026-01-07T09:00:00Z", "event": "thumbs_up", "request_id": "nobody"},
    {"timestamp": "2026-01-07T09:00:00Z", "event": "pr_merged", "pr": "acme/none#1"},
]  # fmt: skip


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps({k: v for k, v in row.items() if v is not None}) + "\n")
    return path


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _write_by_day(rows: list[dict], root: Path) -> Path:
    days: dict[str, list[dict]] = {}
    for row in rows:
        stamp = pd.Timestamp(row["timestamp"]).tz_convert("UTC")
        days.setdefault(stamp.strftime("%Y-%m-%d"), []).append(row)
    for day, part in days.items():
        _write_jsonl(root / f"day={day}" / "part-0.jsonl", part)
    return root


@pytest.fixture(scope="module")
def scheduler() -> str:
    """One 2-worker LocalCluster (processes, one thread each) for the module; the
    commands connect to it with ``--cluster tcp://...``."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> dict[str, Path]:
    """The same calls as one file (in day order) and as a day-partitioned folder."""
    root = tmp_path_factory.mktemp("gateway")
    assert main(["simulate", "--logs", str(SWEBENCH), "--policy", "uniform", "--days", "3",
                 "--out", str(root / "sim"), "--seed", "5"]) == 0  # fmt: skip
    calls = _rows(root / "sim" / "calls.jsonl") + ACROSS_MIDNIGHT
    calls.sort(key=lambda r: pd.Timestamp(r["timestamp"]).tz_convert("UTC").strftime("%Y-%m-%d"))
    events = _rows(root / "sim" / "events.jsonl") + EXTRA_EVENTS
    events = _write_jsonl(root / "events.jsonl", events)
    return {
        "flat": _write_jsonl(root / "calls.jsonl", calls),
        "days": _write_by_day(calls, root / "calls"),
        "events": events,
        "root": root,
    }


def _same(one, many, tol: float, path: str = "") -> list[str]:
    """Where two JSON values differ (floats within ``tol``, relative)."""
    if isinstance(one, dict) and isinstance(many, dict):
        keys = (set(one) | set(many)) - RUN_KEYS
        return [d for k in sorted(keys) for d in _same(one.get(k), many.get(k), tol, f"{path}.{k}")]
    if isinstance(one, list) and isinstance(many, list):
        if len(one) != len(many):
            return [f"{path}: {len(one)} items != {len(many)}"]
        return [d for i, (a, b) in enumerate(zip(one, many, strict=True))
                for d in _same(a, b, tol, f"{path}[{i}]")]  # fmt: skip
    if isinstance(one, float) and isinstance(many, int | float) and not isinstance(many, bool):
        return [] if abs(one - many) <= tol * max(1.0, abs(one)) else [f"{path}: {one} != {many}"]
    return [] if one == many else [f"{path}: {one!r} != {many!r}"]


@pytest.fixture(scope="module")
def graded(logs, scheduler, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("graded")
    capsys = _Capture()
    common = ["--events", str(logs["events"]), "--as-of", AS_OF]
    one = capsys.run(["grade", "--logs", str(logs["flat"]), *common,
                      "--out", str(out / "one.jsonl")])  # fmt: skip
    many = capsys.run(["grade", "--cluster", scheduler, "--logs", str(logs["days"]), *common,
                       "--out", str(out / "many.jsonl")])  # fmt: skip
    folder = capsys.run(["grade", "--cluster", scheduler, "--logs", str(logs["days"]), *common,
                         "--out", str(out / "graded")])  # fmt: skip
    return {"out": out, "one": one, "many": many, "folder": folder}


class _Capture:
    """The printed JSON of a command run in this process (module fixtures have no capsys)."""

    def run(self, args: list[str]) -> dict:
        import contextlib
        import io

        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            assert main(args) == 0
        return json.loads(buffer.getvalue())


GRADE_COLUMNS = ["request_id", "outcome", "outcome_source", "outcome_status"]


def test_grade_on_a_cluster_gives_the_same_outcomes(graded: dict) -> None:
    one = pd.read_json(graded["out"] / "one.jsonl", lines=True)
    many = pd.read_json(graded["out"] / "many.jsonl", lines=True)
    assert list(many["request_id"]) == list(one["request_id"])  # the dataset's order
    pd.testing.assert_frame_equal(one[GRADE_COLUMNS], many[GRADE_COLUMNS])


def test_grade_on_a_cluster_prints_the_same_counts(graded: dict) -> None:
    assert graded["one"]["retries_found_in_logs"] >= 2
    assert not _same(graded["one"], graded["many"], 0.0)
    assert graded["many"]["shards"] >= 2


def test_what_crosses_midnight_is_graded_as_in_one_process(graded: dict) -> None:
    many = pd.read_json(graded["out"] / "many.jsonl", lines=True).set_index("request_id")
    # m1 was retried by m2 after midnight (the next day's partition) ...
    assert "retry_in_logs:m2" in many.loc["m1", "outcome_source"]
    assert "retry_in_logs:u2" in many.loc["u1", "outcome_source"]
    # p1 is graded by the PR its session opened the next day, merged two days later
    assert "pr_merged:acme/io#7" in many.loc["p1", "outcome_source"]
    assert many.loc["p1", "outcome"] == 1.0


def test_grade_on_a_cluster_quarantines_the_same_rows(graded: dict) -> None:
    out = graded["out"]
    for suffix in (".quarantine.jsonl", ".events-quarantine.jsonl"):
        one = sorted(_rows(out / f"one{suffix}"), key=lambda r: r["source"])
        many = sorted(_rows(out / f"many{suffix}"), key=lambda r: r["source"])
        one = [{**r, "source": r["source"].rsplit("/", 1)[-1]} for r in one]
        many = [{**r, "source": r["source"].rsplit("/", 1)[-1]} for r in many]
        assert [r["quarantine_reason"] for r in one] == [r["quarantine_reason"] for r in many]
    reasons = [r["quarantine_reason"] for r in _rows(out / "many.events-quarantine.jsonl")]
    assert any("no call has request_id nobody" in r for r in reasons)
    assert any("acme/none#1" in r for r in reasons)
    assert not list(out.glob("*.parts"))


def test_grade_on_a_cluster_writes_a_day_partitioned_folder(graded: dict) -> None:
    folder = graded["out"] / "graded"
    assert sorted(p.name for p in folder.iterdir()) == [
        "day=2026-01-05",
        "day=2026-01-06",
        "day=2026-01-07",
    ]
    many = pd.read_parquet(folder).sort_values("request_id", ignore_index=True)
    one = pd.read_json(graded["out"] / "one.jsonl", lines=True)
    one = one.sort_values("request_id", ignore_index=True)
    pd.testing.assert_frame_equal(one[GRADE_COLUMNS], many[GRADE_COLUMNS], check_dtype=False)
    assert not _same(graded["one"], graded["folder"], 0.0)


@pytest.mark.parametrize("with_events", [True, False], ids=["graded", "logged-outcomes"])
def test_report_spend_on_a_cluster_gives_the_same_spend_json(
    logs, scheduler, tmp_path, with_events: bool
) -> None:
    extra = ["--events", str(logs["events"]), "--as-of", AS_OF] if with_events else []
    capture = _Capture()
    capture.run(["report", "spend", "--logs", str(logs["flat"]), *extra,
                 "--out", str(tmp_path / "one")])  # fmt: skip
    capture.run(["report", "spend", "--cluster", scheduler, "--logs", str(logs["days"]), *extra,
                 "--out", str(tmp_path / "many")])  # fmt: skip
    one = json.loads((tmp_path / "one" / "spend.json").read_text())
    many = json.loads((tmp_path / "many" / "spend.json").read_text())
    assert one["total"]["calls"] == many["total"]["calls"] > 400
    assert one["total"]["retried_calls"] == many["total"]["retried_calls"] >= 2
    assert not _same(one, many, 1e-9)
    assert many["calls_quarantined"] == 1


def test_evaluate_on_a_cluster_gives_the_same_metrics_on_a_gateway_log(
    graded, bundle_dir, scheduler, tmp_path
) -> None:
    """Off-policy: the graded gateway log (its first 150 calls, over two days), one file
    against day partitions."""
    rows = _rows(graded["out"] / "one.jsonl")[:150]
    flat = _write_jsonl(tmp_path / "graded.jsonl", rows)
    days = _write_by_day(rows, tmp_path / "graded")
    capture = _Capture()
    capture.run(["evaluate", "--bundle", str(bundle_dir), "--logs", str(flat),
                 "--out", str(tmp_path / "one"), "--n-bootstrap", "50"])  # fmt: skip
    capture.run(["evaluate", "--cluster", scheduler, "--bundle", str(bundle_dir), "--logs",
                 str(days), "--out", str(tmp_path / "many"), "--n-bootstrap", "50"])  # fmt: skip
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    many = json.loads((tmp_path / "many" / "metrics.json").read_text())
    assert one["off_policy"]["n"] > 100
    assert not _same(one, many, 1e-6)


def test_evaluate_on_a_cluster_gives_the_same_metrics_on_a_full_table(
    small_logs, bundle_dir, scheduler, tmp_path
) -> None:
    """Full information: every candidate answered every prompt; prompts spread on days."""
    frame = pd.read_parquet(small_logs["test"])
    ids = sorted(frame["prompt_id"].unique())
    day = {pid: f"2026-02-0{1 + i % 3}T10:00:00Z" for i, pid in enumerate(ids)}
    frame["timestamp"] = frame["prompt_id"].map(day)
    frame = frame.sort_values("timestamp", kind="stable")
    rows = frame.to_dict(orient="records")
    flat = _write_jsonl(tmp_path / "full.jsonl", rows)
    days = _write_by_day(rows, tmp_path / "full")
    capture = _Capture()
    one = capture.run(["evaluate", "--bundle", str(bundle_dir), "--logs", str(flat),
                       "--out", str(tmp_path / "one")])  # fmt: skip
    many = capture.run(["evaluate", "--cluster", scheduler, "--bundle", str(bundle_dir),
                        "--logs", str(days), "--out", str(tmp_path / "many")])  # fmt: skip
    assert one["n_prompts"] == many["n_prompts"] == len(ids)
    one_metrics = json.loads((tmp_path / "one" / "metrics.json").read_text())
    many_metrics = json.loads((tmp_path / "many" / "metrics.json").read_text())
    assert not _same(one_metrics, many_metrics, 1e-6)


def test_evaluate_on_a_cluster_refuses_compare(
    logs, bundle_dir, scheduler, tmp_path, capsys
) -> None:
    args = ["evaluate", "--cluster", scheduler, "--bundle", str(bundle_dir), "--logs",
            str(logs["days"]), "--compare", str(bundle_dir), "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 2
    assert "--compare with --cluster is not supported" in capsys.readouterr().err
