"""`outcome-router evaluate` on partial-feedback logs: one call per held-out SWE-bench
prompt, drawn uniformly, with and without a logged propensity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serving.bundle import load_bundle
from serving.policy import Exploration
from training.cli import main
from training.evaluation.off_policy import is_partial_feedback, routing_texts
from training.evaluation.results import BanditEvaluation
from training.evaluation.run import evaluate
from training.evaluation.served import ServedPolicy

ESTIMATOR_KEYS = {"quality", "quality_ci", "cost_usd", "cost_usd_ci"}


def _bandit_log(calls: pd.DataFrame, seed: int, *, propensity: bool) -> pd.DataFrame:
    """One call per prompt, each of the prompt's models with equal probability."""
    rng = np.random.default_rng(seed)
    picked = []
    for _, group in calls.groupby("prompt_id", sort=True):
        row = group.iloc[[rng.integers(len(group))]].copy()
        if propensity:
            row["propensity"] = 1.0 / len(group)
        picked.append(row)
    return pd.concat(picked, ignore_index=True)


@pytest.fixture(scope="module")
def bandit(small_logs: dict[str, Path], bundle_dir: Path, tmp_path_factory) -> dict:
    calls = pd.read_parquet(small_logs["test"])
    root = tmp_path_factory.mktemp("bandit")
    log = _bandit_log(calls, seed=0, propensity=True)
    path = root / "bandit.parquet"
    log.to_parquet(path, index=False)
    result = evaluate(bundle_dir, [str(path)], root / "out", n_bootstrap=200)
    return {"calls": calls, "log": log, "path": path, "result": result, "out": root / "out"}


def test_metrics_json_has_the_off_policy_shape(bandit: dict) -> None:
    result, out = bandit["result"], bandit["out"]
    assert isinstance(result, BanditEvaluation)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == result.to_dict()
    section = metrics["off_policy"]
    assert section["n"] == len(bandit["log"]) == 40
    assert section["propensity_source"] == "logged"
    assert section["default_estimator"] == "dr"
    assert 0 < section["ess"] <= section["n"]
    assert set(section["estimators"]) == {"dr", "snips", "ips", "dm"}
    for name, entry in section["estimators"].items():
        assert set(entry) == ESTIMATOR_KEYS, name
        low, high = entry["quality_ci"]
        assert low <= entry["quality"] <= high, name
        low, high = entry["cost_usd_ci"]
        assert low <= entry["cost_usd"] <= high, name
    assert len(section["curve"]) == 17
    assert [p["value_usd"] for p in section["curve"]] == sorted(
        p["value_usd"] for p in section["curve"]
    )
    assert set(section["curve"][0]["estimators"]["snips"]) == ESTIMATOR_KEYS
    assert isinstance(section["warnings"], list)
    # 40 calls: the ESS is below 30, and the warnings say so
    assert any("Effective sample size" in w for w in section["warnings"])


def test_ips_is_the_served_policy_weighted_by_the_logged_propensity(
    bandit: dict, bundle_dir: Path
) -> None:
    """IPS computed by hand from what `/route` would choose on each logged prompt."""
    log = bandit["log"]
    served = ServedPolicy(load_bundle(bundle_dir))
    texts = routing_texts(log, list(log["prompt_id"]), "last_user")
    from serving.policy import choose

    p, c = served.score(served.featurize(texts))
    chosen, _ = choose(p, c, served.params)
    names = np.array(served.candidates)[chosen]
    hit = (log["model"].to_numpy() == names).astype(float)
    ips_quality = float(np.mean(hit / log["propensity"] * log["outcome"]))
    ips_cost = float(np.mean(hit / log["propensity"] * log["cost_usd"]))
    section = bandit["result"].off_policy
    assert section.estimators["ips"].quality.estimate == pytest.approx(ips_quality, abs=1e-12)
    assert section.estimators["ips"].cost_usd.estimate == pytest.approx(ips_cost, abs=1e-12)
    assert section.estimators["dm"].quality.estimate == pytest.approx(
        float(p[np.arange(len(log)), chosen].mean()), abs=1e-9
    )


def test_report_renders_the_off_policy_section(bandit: dict) -> None:
    page = (bandit["out"] / "report.html").read_text(encoding="utf-8")
    assert '<h2 id="off-policy">' in page
    assert 'id="off-policy-estimators"' in page
    for name in ("DR", "SNIPS", "IPS", "DM"):
        assert f"<td class='l'>{name}</td>" in page
    assert page.count("data:image/png;base64,") == 1
    assert "Effective sample size" in page


def test_without_propensity_the_logging_policy_is_estimated(
    bandit: dict, bundle_dir: Path, tmp_path: Path
) -> None:
    log = bandit["log"].drop(columns=["propensity"])
    log.loc[0, "outcome"] = None  # one call still pending
    path = tmp_path / "bandit.parquet"
    log.to_parquet(path, index=False)
    result = evaluate(bundle_dir, [str(path)], tmp_path / "out", n_bootstrap=50)
    section = result.off_policy
    assert section.propensity_source == "estimated"
    assert section.default_estimator == "snips"
    assert any("logging policy was estimated" in w for w in section.warnings)
    assert section.n == 39 and result.n_ungraded == 1
    assert any("1 calls without an outcome (pending)" in w for w in section.warnings)


def test_cli_evaluates_an_exploring_policy(bandit: dict, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "evaluate",
            "--bundle",
            bandit["result"].bundle,
            "--logs",
            str(bandit["path"]),
            "--out",
            str(out),
            "--explore",
            "epsilon",
            "--explore-epsilon",
            "0.3",
            "--n-bootstrap",
            "50",
            "--clip-weights",
            "10",
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed["estimators"]) == {"dr", "snips", "ips", "dm"}
    section = json.loads((out / "metrics.json").read_text())["off_policy"]
    assert section["policy"]["exploration"] == Exploration("epsilon", epsilon=0.3).describe()
    assert section["clip"] == 10.0
    # epsilon-greedy spreads 30% over every candidate: no candidate keeps share 0
    assert min(section["policy_share"].values()) > 0.0


def test_full_information_logs_are_not_partial_feedback(bandit: dict) -> None:
    calls, log = bandit["calls"], bandit["log"]
    candidates = sorted(calls["model"].unique())
    assert not is_partial_feedback(calls, candidates)
    assert not is_partial_feedback(calls[calls["model"] != candidates[0]], candidates)
    assert is_partial_feedback(log, candidates)
