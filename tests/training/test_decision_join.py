"""Call logs join the decision log: real prompts routed by a real server (two
replicas, exploring, rotating their logs), then call rows a gateway would write,
read back through the call-log reader."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from features.call_log import read_call_logs
from serving.app import create_app
from serving.config import Settings
from serving.decision_log import decision_log_files
from training.decision_join import attach_propensities, read_decision_logs

N_PROMPTS = 12


@pytest.fixture(scope="module")
def routed(bundle_dir, small_logs, tmp_path_factory):
    """Route real test prompts on two replicas; return their logs and the rows."""
    calls = pd.read_parquet(small_logs["test"])
    prompts = calls.drop_duplicates("prompt_id").head(N_PROMPTS)
    folder = tmp_path_factory.mktemp("replicas")
    logs, answers = [], []
    half = len(prompts) // 2
    for replica, part in enumerate((prompts.iloc[:half], prompts.iloc[half:])):
        log = folder / f"replica-{replica}" / "decisions.jsonl"
        settings = Settings(
            bundle=str(bundle_dir),
            time_budget_ms=60_000,
            decision_log=log,
            decision_log_max_bytes=3000,
            explore="epsilon",
            explore_epsilon=0.6,
            explore_seed=replica,
        )
        with TestClient(create_app(settings)) as client:
            for row in part.itertuples():
                body = client.post("/route", json={"prompt": row.prompt}).json()
                answers.append((row.prompt_id, body))
        logs.append(log)
    return calls, logs, answers


def test_call_rows_get_the_propensity_of_their_decision(routed, tmp_path):
    calls, logs, answers = routed
    assert all(len(decision_log_files(log)) > 1 for log in logs), "the logs did not rotate"
    assert len({body["propensity"] for _, body in answers}) > 1, "nothing was explored"

    rows = []
    for i, (prompt_id, body) in enumerate(answers):
        # The gateway called the chosen model: its real logged call for this prompt.
        real = calls[(calls["prompt_id"] == prompt_id) & (calls["model"] == body["model"])]
        rows.append({**real.iloc[0].to_dict(), "request_id": f"r{i}", "propensity": None})
        rows[-1]["decision_id"] = body["decision_id"]
    prompt_id, first = answers[0]
    other = calls[(calls["prompt_id"] == prompt_id) & (calls["model"] != first["model"])].iloc[0]
    failover = {**other.to_dict(), "request_id": "failover", "decision_id": first["decision_id"]}
    unknown = {**rows[1], "request_id": "unknown", "decision_id": "0" * 32, "propensity": 0.5}
    unrouted = {**rows[2], "request_id": "unrouted", "decision_id": None}
    path = tmp_path / "calls.jsonl"
    with open(path, "w") as fh:
        for row in [*rows, failover, unknown, unrouted]:
            fh.write(json.dumps(row, default=str) + "\n")
    read = read_call_logs(path)
    assert read.n_quarantined == 0

    joined = attach_propensities(read.frame, logs)
    frame = joined.frame.set_index("request_id")
    assert (joined.n_joined, joined.n_model_mismatch) == (len(answers), 1)
    assert (joined.n_unknown_decision, joined.n_without_decision) == (1, 1)
    assert joined.n_bad_log_lines == 0 and joined.n_duplicate_decisions == 0
    for i, (_, body) in enumerate(answers):
        row = frame.loc[f"r{i}"]
        assert row["propensity"] == body["propensity"]
        assert row["router_version"] == body["router_version"]
        assert row["decision_model"] == row["model"] == body["model"]
        assert row["decision_reason"] == body["reason"]
    assert np.isnan(frame.loc["failover", "propensity"])
    assert frame.loc["failover", "decision_model"] == first["model"]
    assert frame.loc["unknown", "propensity"] == 0.5  # left as the call log had it
    assert pd.isna(frame.loc["unknown", "router_version"])
    assert np.isnan(frame.loc["unrouted", "propensity"])
    assert list(joined.frame["request_id"]) == list(read.frame["request_id"])


def test_a_log_passed_twice_counts_duplicates(routed):
    _, logs, answers = routed
    read = read_decision_logs([logs[0], logs[0]])
    assert read.n_duplicates == len(read.frame) > 0
    assert set(read.frame["decision_id"]) <= {body["decision_id"] for _, body in answers}


def test_calls_without_the_join_columns_are_refused(routed):
    _, logs, _ = routed
    with pytest.raises(ValueError, match="decision_id"):
        attach_propensities(pd.DataFrame({"model": ["a"]}), logs)
