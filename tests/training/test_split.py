"""`outcome-router split` reads logs through the validated call-log reader, groups by
the reader's prompt key, and writes rows that `train` and `evaluate` read back as they were.

Each test writes its own small gateway-style log: one row per call, several models
answering the same prompt as separate rows, no ``prompt_id``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.call_log import prompt_key, read_call_logs
from training.cli import main
from training.evaluation import FullInfoLog
from training.split import split_logs

MODELS = ("gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5")  # priced by the shipped catalog


def gateway_rows(n_prompts: int = 90, seed: int = 0) -> list[dict]:
    """Every prompt answered by 2 or 3 models, as separate rows with no prompt_id."""
    rng = random.Random(seed)
    rows = []
    for p in range(n_prompts):
        for model in rng.sample(MODELS, rng.choice([2, 3])):
            rows.append(
                {
                    "request_id": f"req-{len(rows)}",
                    "model": model,
                    "prompt": f"question number {p}: what is {p} + {p}?",
                    "input_tokens": 100 + p,
                    "output_tokens": 20,
                    "outcome": rng.choice([0, 1]),
                }
            )
    return rows


def write_jsonl(path: Path, rows: list[dict], extra_lines: tuple[str, ...] = ()) -> Path:
    lines = [json.dumps(r) for r in rows]
    lines[10:10] = extra_lines
    path.write_text("\n".join(lines) + "\n")
    return path


def read_split(out_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (
        read_call_logs(out_dir / "train.parquet").frame,
        read_call_logs(out_dir / "test.parquet").frame,
    )


def test_a_bad_json_line_is_quarantined_not_fatal(tmp_path, capsys):
    logs = write_jsonl(tmp_path / "calls.jsonl", gateway_rows(), ('{"request_id": nul',))
    code = main(["split", "--logs", str(logs), "--out", str(tmp_path / "split")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    printed = json.loads(captured.out)
    assert printed["n_quarantined"] == 1
    assert "quarantined 1" in captured.err
    quarantined = [json.loads(x) for x in (tmp_path / "split" / "quarantine.jsonl").open()]
    assert len(quarantined) == 1
    assert quarantined[0]["quarantine_reason"].startswith("invalid JSON")
    train, test = read_split(tmp_path / "split")
    assert len(train) + len(test) == len(gateway_rows())
    # Once the log is fixed, the old rejects are gone rather than misleading.
    write_jsonl(logs, gateway_rows())
    assert main(["split", "--logs", str(logs), "--out", str(tmp_path / "split")]) == 0
    assert not (tmp_path / "split" / "quarantine.jsonl").exists()


def test_a_string_outcome_is_quarantined_with_its_column(tmp_path, capsys):
    rows = gateway_rows()
    rows[5]["outcome"] = "merged"
    logs = write_jsonl(tmp_path / "calls.jsonl", rows)
    assert main(["split", "--logs", str(logs), "--out", str(tmp_path / "split")]) == 0
    assert json.loads(capsys.readouterr().out)["n_quarantined"] == 1
    (quarantined,) = [json.loads(x) for x in (tmp_path / "split" / "quarantine.jsonl").open()]
    assert quarantined["request_id"] == rows[5]["request_id"]
    assert "outcome" in quarantined["quarantine_reason"]
    assert "'merged'" in quarantined["quarantine_reason"]


def test_no_prompt_lands_on_both_sides_without_prompt_id(tmp_path):
    logs = write_jsonl(tmp_path / "calls.jsonl", gateway_rows())
    split = split_logs([str(logs)], tmp_path / "split", train_fraction=0.7)
    train, test = read_split(tmp_path / "split")
    assert split.n_test_prompts > 10 and split.n_train_prompts > 30
    assert set(train["prompt"]).isdisjoint(set(test["prompt"]))
    # The key split grouped by is the one train and evaluate group by: the reader's.
    assert set(train["prompt_id"]).isdisjoint(set(test["prompt_id"]))
    raw = read_call_logs(logs).frame
    assert set(raw["prompt_id"]) == set(train["prompt_id"]) | set(test["prompt_id"])


def test_evaluation_groups_by_the_same_key(tmp_path):
    """The per-prompt table of evaluate is keyed like the split: one entry per prompt text."""
    rows = gateway_rows()
    frame = read_call_logs(write_jsonl(tmp_path / "calls.jsonl", rows)).frame
    both = list(MODELS[:2])
    log, _ = FullInfoLog.from_frame(frame, both)
    answered = pd.DataFrame(rows).groupby("prompt")["model"].agg(set)
    texts = answered[answered.map(lambda models: set(both) <= models)].index
    assert sorted(log.prompt_ids) == sorted(prompt_key(t, None) for t in texts)


def test_what_split_writes_reads_back_unchanged(tmp_path):
    rows = gateway_rows(n_prompts=30)
    for i, row in enumerate(rows):
        if i % 3 == 0:
            del row["prompt"]
            row["messages"] = [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": f"chat {i // 2}"}]},
            ]
        if i % 4 == 0:
            row["outcome"] = None  # pending
            row["timestamp"] = "2026-03-01T10:00:00.250Z"
        if i % 5 == 0:
            row["cost_usd"] = 0.0125
            row["propensity"] = 0.5
            row["decision_id"] = f"dec-{i}"
            row["team"] = "payments"
    logs = write_jsonl(tmp_path / "calls.jsonl", rows)
    split_logs([str(logs)], tmp_path / "split")
    before = read_call_logs(logs).frame.sort_values("request_id", ignore_index=True)
    after = read_call_logs(tmp_path / "split").frame.sort_values("request_id", ignore_index=True)
    pd.testing.assert_frame_equal(after, before)
    assert before["outcome"].isna().sum() > 0
    assert isinstance(after.loc[after["messages"].notna(), "messages"].iloc[0], list)


def test_split_writes_logged_costs_only(tmp_path):
    """Costs are priced by `train` and `evaluate` with their own --prices, not frozen here."""
    rows = gateway_rows(n_prompts=20)
    rows[0]["cost_usd"] = 0.5
    logs = write_jsonl(tmp_path / "calls.jsonl", rows)
    split_logs([str(logs)], tmp_path / "split")
    written = pd.concat(
        [pd.read_parquet(tmp_path / "split" / f"{side}.parquet") for side in ("train", "test")]
    )
    assert written["cost_usd"].notna().sum() == 1
    assert np.isclose(written["cost_usd"].max(), 0.5)


def test_train_fraction_is_checked(tmp_path):
    logs = write_jsonl(tmp_path / "calls.jsonl", gateway_rows(n_prompts=5))
    with pytest.raises(ValueError, match=r"train_fraction must be in \(0, 1\), got 1.5"):
        split_logs([str(logs)], tmp_path / "split", train_fraction=1.5)
