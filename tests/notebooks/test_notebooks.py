"""The notebooks run top to bottom on small data and reach the right conclusions.

Each is executed with nbclient in a temporary working folder with its own MLflow
store, parametrised through its ``OUTCOME_ROUTER_NB_*`` environment variables, and
writes a JSON of its conclusions that is checked against the data and the registry.
The notebooks in git keep the outputs of one top-to-bottom run on the shipped logs, so
a reader sees results without running them.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from training.registry import (
    RegistryError,
    list_versions,
    promote,
    register_bundle,
    resolve_version,
)
from training.tracking import log_training_run

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
MODEL_NAME = "outcome-router"
#: One learner keeps the notebook's training to seconds; the logic is the same.
FAST_LEARNER = "logistic-C0.003"


def run_notebook(name: str, workdir: Path, env: dict[str, str], monkeypatch) -> None:
    """Execute ``notebooks/<name>`` in ``workdir``; the kernel inherits ``env``."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()  # raises CellExecutionError with the failing cell and traceback


@pytest.mark.parametrize("name", ["explore.ipynb", "production.ipynb", "retrain.ipynb"])
def test_notebooks_are_committed_with_the_outputs_of_one_clean_run(name):
    """Every code cell ran once, in order, in one kernel, without an error, and the
    plots are there: what a reader sees is what the code shown produces."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr" and "Traceback" in o.text]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert "parameters" in code[0].metadata.get("tags", [])


def test_explore_notebook(small_logs, tmp_path, monkeypatch):
    workdir = tmp_path / "explore"
    workdir.mkdir()
    env = {"OUTCOME_ROUTER_NB_LOGS": str(small_logs["train"]), "OUTCOME_ROUTER_NB_WORKDIR": "."}
    run_notebook("explore.ipynb", workdir, env, monkeypatch)

    found = json.loads((workdir / "explore_conclusions.json").read_text())
    calls = pd.read_parquet(small_logs["train"])
    expected = calls.groupby("model").agg(rate=("outcome", "mean"), cost=("cost_usd", "mean"))
    assert found["n_prompts"] == calls["prompt_id"].nunique() == 120
    assert found["n_calls"] == len(calls)
    assert set(found["per_model"]) == set(expected.index)
    for model, row in expected.iterrows():
        assert found["per_model"][model]["outcome_rate"] == pytest.approx(row["rate"])
        assert found["per_model"][model]["mean_cost_usd"] == pytest.approx(row["cost"])
    best = expected["rate"].max()
    assert found["best_single"]["quality"] == pytest.approx(best)
    assert expected.loc[found["best_single"]["name"], "rate"] == pytest.approx(best)
    oracle_quality = calls.groupby("prompt_id")["outcome"].max().mean()
    assert found["oracle"]["quality"] == pytest.approx(oracle_quality)
    assert found["oracle_quality_gain"] == pytest.approx(oracle_quality - best)
    assert found["oracle_quality_gain"] >= 0 and found["best_single_fails_others_succeed"] >= 0
    assert found["full_info_prompts"] == 120
    assert "task" not in found["segments"]  # one task only: skipped, not a one-row table
    assert found["outcome_by_length"]


def _retrain_env(small_logs, workdir: Path, mlruns: Path, promote_setting: str | None) -> dict:
    env = {
        "OUTCOME_ROUTER_NB_LOGS": str(small_logs["train"]),
        "OUTCOME_ROUTER_NB_TEST_LOGS": str(small_logs["test"]),
        "OUTCOME_ROUTER_NB_WORKDIR": str(workdir),
        "OUTCOME_ROUTER_NB_MLRUNS": str(mlruns),
        "OUTCOME_ROUTER_NB_LEARNERS": FAST_LEARNER,
    }
    if promote_setting is not None:
        env["OUTCOME_ROUTER_NB_PROMOTE"] = promote_setting
    return env


@pytest.mark.parametrize("promote_setting", [None, "1"], ids=["default", "promote"])
def test_retrain_notebook_moves_the_alias_only_when_asked(
    small_logs, tmp_path, monkeypatch, promote_setting
):
    """With no champion yet the challenger wins outright; by default a reader running
    the notebook still leaves the alias alone, since moving it changes what every
    `serve --bundle models:/NAME@champion` serves next."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("OUTCOME_ROUTER_NB_PROMOTE", raising=False)
    mlruns, workdir = tmp_path / "mlruns", tmp_path / "work"
    workdir.mkdir()
    run_notebook(
        "retrain.ipynb",
        workdir,
        _retrain_env(small_logs, workdir, mlruns, promote_setting),
        monkeypatch,
    )

    found = json.loads((workdir / "retrain_conclusions.json").read_text())
    assert found["champion_before"] is None and found["challenger_wins"] is True
    assert found["promote_requested"] is (promote_setting == "1")
    assert [v.version for v in list_versions(MODEL_NAME, root=mlruns)] == ["1"]
    if promote_setting == "1":
        assert found["promoted"] is True and found["champion_after"] == "1"
        assert resolve_version(f"models:/{MODEL_NAME}@champion", root=mlruns).version == "1"
    else:
        assert found["promoted"] is False and found["champion_after"] is None
        with pytest.raises(RegistryError, match="champion"):
            resolve_version(f"models:/{MODEL_NAME}@champion", root=mlruns)


def test_retrain_notebook_compares_registers_and_promotes(
    small_logs, bundle_dir, tmp_path, monkeypatch
):
    """A champion (the session bundle) is in the registry; with promotion asked for, the
    notebook trains a challenger, evaluates both on the same held-out logs, and moves
    the alias iff the challenger's area is larger."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlruns = tmp_path / "mlruns"
    run_id = log_training_run(bundle_dir, params={"learner": "session"}, metrics={}, root=mlruns)
    champion = register_bundle(run_id, name=MODEL_NAME, root=mlruns)
    promote(champion, name=MODEL_NAME, root=mlruns)

    workdir = tmp_path / "work"
    workdir.mkdir()
    run_notebook(
        "retrain.ipynb", workdir, _retrain_env(small_logs, workdir, mlruns, "1"), monkeypatch
    )

    found = json.loads((workdir / "retrain_conclusions.json").read_text())
    challenger, before = found["challenger"], found["champion_before"]
    assert before["version"] == champion == "1" and challenger["version"] == "2"
    assert challenger["n_prompts"] == before["n_prompts"] == 40  # the same held-out prompts
    for role, brief in (("challenger", challenger), ("champion", before)):
        metrics = json.loads((workdir / "evaluation" / role / "metrics.json").read_text())
        assert metrics["area"] == pytest.approx(brief["area"])
        assert metrics["router_version"] == brief["router_version"]
    assert found["challenger_wins"] == (challenger["area"] > before["area"])
    assert found["promote_requested"] is True
    assert found["promoted"] == found["challenger_wins"]
    now = resolve_version(f"models:/{MODEL_NAME}@champion", root=mlruns)
    assert now.version == found["champion_after"] == ("2" if found["promoted"] else "1")
    versions = list_versions(MODEL_NAME, root=mlruns)
    assert [v.version for v in versions] == ["1", "2"]
    assert versions[1].router_version == challenger["router_version"]
    assert versions[1].run_id == challenger["run_id"]


def test_production_notebook_simulates_grades_trains_and_estimates_off_policy(
    tmp_path, monkeypatch
):
    """simulate -> grade -> train a champion and a challenger on the bandit log ->
    off-policy evaluation, paired -> promote with evidence, on the shipped SWE-bench
    table; grading gives back the true outcomes, and the quoted estimate is checked
    against the hidden table's exact figure."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    workdir = tmp_path / "production"
    env = {
        "OUTCOME_ROUTER_NB_WORKDIR": str(workdir),
        "OUTCOME_ROUTER_NB_MLRUNS": str(tmp_path / "mlruns"),
        "OUTCOME_ROUTER_NB_LEARNERS": FAST_LEARNER,
        "OUTCOME_ROUTER_NB_POLICY": "biased",
        "OUTCOME_ROUTER_NB_SEED": "0",
    }
    run_notebook("production.ipynb", tmp_path, env, monkeypatch)

    found = json.loads((workdir / "production_conclusions.json").read_text())
    assert found["graded_equals_truth"] == 1.0
    assert found["log_kind"] == "bandit" and found["propensity_source"] == "logged"
    held_out = pd.read_parquet(workdir / "split" / "test.parquet")
    assert found["off_policy"]["n"] == len(held_out)
    assert 0 < found["off_policy"]["ess"] <= found["off_policy"]["n"]
    estimators = found["off_policy"]["estimators"]
    assert set(estimators) == {"dm", "ips", "snips", "dr"}
    for e in estimators.values():
        assert e["quality_ci"][0] <= e["quality"] <= e["quality_ci"][1]
        assert e["cost_usd_ci"][0] <= e["cost_usd"] <= e["cost_usd_ci"][1]
    paired = found["paired"]
    assert paired["quality_diff_ci"][0] <= paired["quality_diff"] <= paired["quality_diff_ci"][1]
    low, high = paired["net_value_diff_ci"]
    assert found["promoted"] == (high >= 0)  # refused only when surely worse
    quoted = estimators[found["off_policy"]["default_estimator"]]
    truth = found["truth"]
    assert truth["n_prompts"] == held_out["prompt_id"].nunique()
    assert abs(quoted["quality"] - truth["quality"]) < 0.25
    assert found["covered"] == {
        "quality": quoted["quality_ci"][0] <= truth["quality"] <= quoted["quality_ci"][1],
        "cost_usd": quoted["cost_usd_ci"][0] <= truth["cost_usd"] <= quoted["cost_usd_ci"][1],
    }
