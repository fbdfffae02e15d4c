"""A new user's first gateway log, end to end through the command line.

The issue that opened this file: a 300-row gateway-style log (no ``prompt_id``, a few
malformed rows, one model that appears once and has no price) broke ``split``,
``evaluate`` and the bundle's candidates in ways the shipped benchmark logs never
show. Every command must finish, quarantine what it cannot read, and leave the
one-row model out of the router.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from training.cli import main

ONE_OFF = "gpt-5-turbo-preview"
N_PROMPTS = 96


@pytest.fixture(scope="module")
def gateway_log(shipped_calls, tmp_path_factory) -> Path:
    """Three priced models answering each of 96 shipped prompts, as a gateway logs them
    (no prompt_id, one request_id per call), plus the rows real logs contain."""
    models = sorted(shipped_calls["model"].unique())[:3]
    calls = shipped_calls[shipped_calls["model"].isin(models)]
    counts = calls.groupby("prompt_id")["model"].nunique()
    prompts = sorted(counts[counts == 3].index)[:N_PROMPTS]
    calls = calls[calls["prompt_id"].isin(prompts)]
    rows = [
        {
            "request_id": f"req-{i}",
            "model": r.model,
            "prompt": r.prompt,
            "team": r.team,
            "input_tokens": int(r.input_tokens),
            "output_tokens": int(r.output_tokens),
            "outcome": float(r.outcome),
        }
        for i, r in enumerate(calls.itertuples())
    ]
    lines = [json.dumps(row) for row in rows]
    lines += [
        '{"request_id": "bad-1", "model": "openai/gpt-oss-20b", "prompt": "hi", "outcome": nul',
        json.dumps({"request_id": "bad-2", "model": models[0], "prompt": "x", "outcome": "merged"}),
        json.dumps(
            {
                "request_id": "bad-3",
                "model": ONE_OFF,
                "prompt": "what is 2+2",
                "input_tokens": 10,
                "output_tokens": 2,
                "outcome": 1,
            }
        ),
        json.dumps({"request_id": "bad-4", "prompt": "no model"}),
    ]
    path = tmp_path_factory.mktemp("gateway") / "calls.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(capsys, *argv: str) -> dict:
    code = main(list(argv))
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out[out.out.index("{") :])


def test_a_gateway_log_goes_through_every_command(gateway_log, tmp_path, capsys):
    split = run(capsys, "split", "--logs", str(gateway_log), "--out", str(tmp_path / "split"))
    train_rows = pd.read_parquet(split["train"])
    test_rows = pd.read_parquet(split["test"])
    # One prompt key: no prompt text on both sides.
    assert not set(train_rows["prompt"]) & set(test_rows["prompt"])
    assert len(train_rows) + len(test_rows) == 3 * N_PROMPTS + 1  # the one-off row is valid
    assert (tmp_path / "split" / "quarantine.jsonl").is_file()

    bundle = tmp_path / "bundle"
    run(
        capsys,
        "train",
        "--logs", str(gateway_log),
        "--out", str(bundle),
        "--learner", "logistic-C0.003",
        "--no-mlflow",
    )  # fmt: skip
    manifest = json.loads((bundle / "manifest.json").read_text())
    candidates = [c["name"] for c in manifest["candidates"]]
    assert ONE_OFF not in candidates and len(candidates) == 3
    excluded = {e["model"]: e for e in manifest["excluded_candidates"]}
    assert "graded" in excluded[ONE_OFF]["reason"]
    assert manifest["policy"]["fallback_model"] in candidates

    report = tmp_path / "report"
    run(
        capsys,
        "evaluate",
        "--bundle", str(bundle),
        "--logs", split["test"],
        "--out", str(report),
    )  # fmt: skip
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["n_prompts"] == test_rows["prompt"].nunique()

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        "\n".join(
            json.dumps({"prompt_id": str(i), "prompt": p})
            for i, p in enumerate(test_rows["prompt"].unique()[:20])
        )
    )
    decisions = tmp_path / "decisions.jsonl"
    main(["route", "--bundle", str(bundle), "--input", str(prompts), "--out", str(decisions)])
    chosen = [json.loads(line)["model"] for line in decisions.read_text().splitlines()]
    assert len(chosen) == 20 and set(chosen) <= set(candidates)
