"""`outcome-router evaluate` end to end: a real bundle on held-out SWE-bench prompts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from training.cli import main
from training.evaluate import evaluate


@pytest.fixture(scope="module")
def evaluated(bundle_dir: Path, small_logs: dict[str, Path], tmp_path_factory) -> dict:
    """The bundle evaluated once, compared with a copy of itself under another name."""
    root = tmp_path_factory.mktemp("evaluate")
    twin = root / "twin-bundle"
    shutil.copytree(bundle_dir, twin)
    summary = evaluate(bundle_dir, [str(small_logs["test"])], root / "out", compare=[twin])
    return {"summary": summary, "out": root / "out", "twin": twin}


def test_evaluate_writes_report_and_metrics(evaluated: dict) -> None:
    s, out = evaluated["summary"], evaluated["out"]
    assert json.loads((out / "metrics.json").read_text()) == s
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 3
    for key in (
        "n_prompts",
        "savings_at_parity",
        "savings_at_95",
        "quality_at_quarter_cost",
        "area",
        "area_single_models",
        "area_oracle",
        "baselines",
        "table",
        "pairs",
        "apgr",
        "cpt_50",
        "cpt_80",
        "calibration",
        "model_share",
        "default_point",
        "prediction_quality",
    ):
        assert key in s
    assert s["n_prompts"] > 0 and s["candidates_missing_from_logs"] == []
    assert s["table"][0]["name"] == s["label"]
    assert s["area_oracle"] >= s["area"] - 1e-12
    assert s["default_pair"] is not None and 0.0 <= s["cpt_50"] <= s["cpt_80"] <= 1.0
    assert set(s["calibration"]["candidates"]) == set(s["candidates"])


def test_compare_scores_the_same_router_identically(evaluated: dict) -> None:
    s = evaluated["summary"]
    (comp,) = s["comparisons"]
    assert comp["label"].startswith("twin-bundle")
    assert comp["router_version"] == s["router_version"]
    row = comp["row"]
    for key in ("area", "savings_at_parity", "savings_at_95", "quality_at_quarter_cost", "apgr"):
        assert row[key] == pytest.approx(s[key]) if s[key] is not None else row[key] is None
    assert row["quality"] == pytest.approx(s["default_point"]["quality"])
    assert [p["quality"] for p in comp["router_curve"]] == [p["quality"] for p in s["router_curve"]]
    assert comp["calibration"]["ece"] == pytest.approx(s["calibration"]["pooled"]["ece"])
    page = (evaluated["out"] / "report.html").read_text(encoding="utf-8")
    assert comp["label"] in page


def test_cli_evaluate_with_compare_pair_and_dataset_segments(
    evaluated: dict, bundle_dir: Path, small_logs: dict[str, Path], tmp_path: Path, capsys
) -> None:
    calls = pd.read_parquet(small_logs["test"])
    first_half = sorted(calls["prompt_id"].unique())[: calls["prompt_id"].nunique() // 2]
    calls["dataset"] = calls["prompt_id"].isin(first_half).map({True: "part-a", False: "part-b"})
    logs = tmp_path / "tagged.parquet"
    calls.to_parquet(logs, index=False)
    weak, strong = "openai/gpt-oss-20b", evaluated["summary"]["best_single"]["name"]
    code = main(
        [
            "evaluate",
            "--bundle",
            str(bundle_dir),
            "--logs",
            str(logs),
            "--out",
            str(tmp_path / "out"),
            "--compare",
            str(evaluated["twin"]),
            "--pair",
            f"{strong},{weak}",
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["apgr"] == pytest.approx(evaluated["summary"]["apgr"])
    assert len(printed["comparisons"]) == 1
    s = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert [(p["weak"], p["strong"]) for p in s["pairs"]][1] == (weak, strong)
    assert [r["value"] for r in s["segments"]["dataset"]] == ["part-a", "part-b"]
    assert "by dataset" in (tmp_path / "out" / "report.html").read_text(encoding="utf-8")


def test_cli_rejects_a_bad_pair(bundle_dir: Path, small_logs: dict[str, Path], tmp_path) -> None:
    args = ["evaluate", "--bundle", str(bundle_dir), "--logs", str(small_logs["test"])]
    assert main([*args, "--out", str(tmp_path), "--pair", "only-one"]) == 2
