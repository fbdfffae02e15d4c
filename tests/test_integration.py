"""The whole path through the command line: shipped data -> train -> bundle ->
evaluate -> route offline -> serve over real HTTP -> decisions.
"""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from training.demo import free_port, start_server, wait_for_health


def cli(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "training.cli", *args], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def cli_bundle(small_logs, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "bundle"
    result = cli(
        "train",
        "--logs",
        str(small_logs["train"]),
        "--out",
        str(out),
        "--no-mlflow",
        "--learner",
        "logistic-C0.0003,lightgbm-small",
        "--cv-repeats",
        "2",
    )
    assert json.loads(result.stdout)["bundle"] == str(out)
    return out


def test_selection_scores_are_means_over_the_repeated_cuts(cli_bundle):
    manifest = json.loads((cli_bundle / "manifest.json").read_text())
    selection = manifest["training"]["selection"]
    assert selection["n_repeats"] == 2
    for entry in selection["learners"].values():
        assert len(entry["area_repeats"]) == 2
        assert entry["area"] == pytest.approx(sum(entry["area_repeats"]) / 2)


def test_evaluate_writes_metrics_and_report(cli_bundle, small_logs, tmp_path):
    cli(
        "evaluate",
        "--bundle",
        str(cli_bundle),
        "--logs",
        str(small_logs["test"]),
        "--out",
        str(tmp_path),
    )
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["n_prompts"] == 40
    assert len(metrics["single_models"]) == 5
    assert metrics["oracle"]["quality"] >= metrics["best_single"]["quality"]
    assert 0 < metrics["area"] <= 1
    html = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in html and metrics["router_version"] in html


@pytest.fixture(scope="module")
def prompts_file(small_logs, tmp_path_factory):
    import pandas as pd

    frame = pd.read_parquet(small_logs["test"]).drop_duplicates("prompt_id").head(8)
    path = tmp_path_factory.mktemp("prompts") / "prompts.jsonl"
    with open(path, "w") as fh:
        for i, row in enumerate(frame.itertuples()):
            if i % 2:
                line = {"prompt_id": row.prompt_id, "prompt": row.prompt}
            else:
                line = {
                    "prompt_id": row.prompt_id,
                    "messages": [{"role": "user", "content": row.prompt}],
                }
            fh.write(json.dumps(line) + "\n")
    return path


def test_route_then_serve_give_the_same_decisions(
    cli_bundle, prompts_file, tmp_path, imported_packages, serving_forbidden
):
    decisions = tmp_path / "decisions.jsonl"
    cli(
        "route",
        "--bundle",
        str(cli_bundle),
        "--input",
        str(prompts_file),
        "--out",
        str(decisions),
        "--value-usd",
        "2.0",
    )
    offline = [json.loads(line) for line in decisions.read_text().splitlines()]
    assert len(offline) == 8
    for line in offline:
        assert len(line["scores"]) == 5
        for score in line["scores"]:
            assert 0 < score["p_success"] < 1 and score["expected_cost_usd"] > 0

    port = free_port()
    proc = start_server(
        cli_bundle,
        "127.0.0.1",
        port,
        python_flags=("-X", "importtime"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        health = wait_for_health("127.0.0.1", port, proc=proc)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            requests = [json.loads(x) for x in prompts_file.read_text().splitlines()]
            for request, expected in zip(requests, offline, strict=True):
                body = {**request, "value_usd": 2.0, "model": "auto", "stream": False}
                response = client.post("/route", json=body)
                assert response.status_code == 200, response.text
                decision = response.json()
                assert decision["reason"] == "max_utility"
                assert decision["model"] == expected["model"]
                assert decision["router_version"] == health["router_version"]
                served = {s["model"]: s["p_success"] for s in decision["scores"]}
                for score in expected["scores"]:
                    assert served[score["model"]] == pytest.approx(score["p_success"], abs=1e-6)
            bad = client.post(
                "/route", content=b"{not json", headers={"content-type": "application/json"}
            )
            assert bad.status_code == 422
            unknown = client.post("/route", json={"prompt": "hi", "candidates": ["gpt-9"]})
            assert unknown.status_code == 422 and "gpt-9" in unknown.text
            metrics = client.get("/metrics").text
            assert "outcome_router_decisions_total" in metrics
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=20)
    top_level = imported_packages(stderr)
    assert "onnxruntime" in top_level and "fastapi" in top_level
    assert not top_level & serving_forbidden, sorted(top_level & serving_forbidden)
