"""`outcome-router import litellm-spend` end to end: the call log, its quarantine and the
printed summary (importer details: tests/features/test_litellm_spend_import.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from features.call_log import read_call_logs
from training.cli import main
from training.import_calls_command import quarantine_path

FIXTURES = Path(__file__).parents[1] / "features" / "fixtures" / "litellm_spend"
CSV = FIXTURES / "spend_logs.csv"
JSON = FIXTURES / "spend_logs.json"


@pytest.mark.parametrize(
    ("out", "beside"),
    [("a/calls.jsonl", "a/calls.quarantine.jsonl"), ("calls.csv.gz", "calls.quarantine.jsonl")],
)
def test_quarantine_sits_beside_the_call_log(out, beside) -> None:
    assert quarantine_path(out) == Path(beside)


def test_cli_writes_the_call_log_quarantine_and_summary(tmp_path, capsys) -> None:
    out = tmp_path / "calls.jsonl"
    assert main(["import", "litellm-spend", str(CSV), str(JSON), "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["rows_read"], printed["calls_written"], printed["quarantined"]) == (12, 10, 2)
    assert printed["models_not_in_catalog"] == {"mistral-large-2411": 1}
    assert "--prices" in printed["note"]
    quarantine = tmp_path / "calls.quarantine.jsonl"
    assert printed["quarantine"] == str(quarantine)
    assert len(quarantine.read_text().splitlines()) == 2
    # Spend reporting reads every call; training's default refuses the prompt-less ones.
    spend = read_call_logs(out, require_prompt=False).frame.set_index("request_id")
    assert len(spend) == 10
    assert spend.loc["chatcmpl-7f3a1c2e-anthropic", "cost_usd"] == pytest.approx(0.19425)
    assert spend.loc["chatcmpl-7f3a1c2e-anthropic", "cache_write_1h_tokens"] == 5_000
    assert spend["source"].eq("litellm-spend").all()
    assert spend["cost_usd"].sum() == pytest.approx(printed["recomputed_spend_usd"], abs=1e-5)
    assert len(read_call_logs(out).frame) == 2  # only the two calls with a stored prompt


def test_cli_prices_option_and_bad_out(tmp_path, capsys) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(
        json.dumps(
            {"mistral-large-2411": {"input_cost_per_token": 2e-06, "output_cost_per_token": 6e-06}}
        )
    )
    out = tmp_path / "calls.parquet"
    assert (
        main(["import", "litellm-spend", str(CSV), "--out", str(out), "--prices", str(prices)]) == 0
    )
    printed = json.loads(capsys.readouterr().out)
    # Only mistral is in this catalog now: the other priced models keep LiteLLM's spend.
    assert "mistral-large-2411" not in printed["models_not_in_catalog"]
    assert printed["models_not_in_catalog"]["claude-sonnet-4-5"] == 1
    assert main(["import", "litellm-spend", str(CSV), "--out", str(tmp_path / "c.txt")]) == 2
    assert "name the call log" in capsys.readouterr().err
