"""Champion and challenger (issue 10, section 5) on a gateway log simulated from the
shipped SWE-bench table: `evaluate --compare` reports paired differences, and
`promote --evaluation` refuses a challenger worth less than the champion unless
`--force`.

The champion is the session bundle; the challenger is the same bundle with value_usd 0
in its manifest (a valid bundle of its own version that always takes the model it
expects to be cheapest), clearly worse on SWE-bench where resolving an issue is worth
far more than a call costs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serving.bundle import load_bundle
from serving.manifest import MANIFEST_FILE, router_version_of
from training import cli
from training.evaluation.run import evaluate
from training.registry import (
    PromotionRefused,
    RegistryError,
    promote,
    register_bundle,
    resolve_version,
)
from training.simulation import simulate
from training.tracking import log_training_run

SHIPPED_CALLS = Path(__file__).resolve().parents[2] / "data" / "swebench_verified" / "calls.parquet"
NAME = "outcome-router"
DIFF_KEYS = {
    "label",
    "bundle",
    "router_version",
    "note",
    "quality_diff",
    "quality_diff_ci",
    "cost_usd_diff",
    "cost_usd_diff_ci",
    "net_value_diff",
    "net_value_diff_ci",
    "value_usd",
    "estimator",
    "n_bootstrap",
    "alpha",
}


@pytest.fixture(autouse=True)
def _no_env_store(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)


@pytest.fixture(scope="module")
def runs(bundle_dir: Path, tmp_path_factory) -> dict:
    """The gateway log (uniform logging with propensities, graded with the truth) and
    two evaluations on it: A = challenger --compare champion; B (through the command
    line, --value-usd 20) = champion --compare champion challenger."""
    base = tmp_path_factory.mktemp("champion")
    bad = base / "cheapest"
    shutil.copytree(bundle_dir, bad)
    manifest = json.loads((bad / MANIFEST_FILE).read_text())
    manifest["policy"]["value_usd"] = 0.0
    manifest["router_version"] = router_version_of(manifest)
    (bad / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))

    sim = simulate(SHIPPED_CALLS, "uniform", seed=0)
    calls = sim.calls.copy()
    outcome_of = dict(zip(sim.prompt_ids, sim.reward, strict=True))
    calls["outcome"] = calls["prompt_id"].map(outcome_of)
    log = base / "gateway.parquet"
    calls.to_parquet(log, index=False)

    challenger = evaluate(bad, [str(log)], base / "a", compare=[bundle_dir], n_bootstrap=300)
    code = cli.main(
        [
            "evaluate", "--bundle", str(bundle_dir), "--logs", str(log),
            "--out", str(base / "b"), "--compare", str(bundle_dir), str(bad),
            "--value-usd", "20", "--n-bootstrap", "300",
        ]
    )  # fmt: skip
    assert code == 0
    return {
        "base": base,
        "bad": bad,
        "log": log,
        "challenger": challenger,
        "a": base / "a",
        "b": base / "b",
        "champion_value": load_bundle(bundle_dir).policy["value_usd"],
    }


def _comparisons(out: Path) -> list[dict]:
    return json.loads((out / "metrics.json").read_text())["off_policy"]["comparisons"]


def test_evaluate_reports_the_paired_difference_with_the_champion(runs, bundle_dir):
    metrics = json.loads((runs["a"] / "metrics.json").read_text())
    assert metrics == runs["challenger"].to_dict()
    assert metrics["off_policy"]["propensity_source"] == "logged"
    (entry,) = metrics["off_policy"]["comparisons"]
    assert set(entry) == DIFF_KEYS
    assert entry["router_version"] == load_bundle(bundle_dir).router_version
    assert entry["estimator"] == "dr" and entry["n_bootstrap"] == 300
    # default value: the champion's manifest value_usd
    assert entry["value_usd"] == pytest.approx(runs["champion_value"])
    for key in ("quality", "cost_usd", "net_value"):
        low, high = entry[f"{key}_diff_ci"]
        assert low <= entry[f"{key}_diff"] <= high, key
    # the challenger is worse: net value and quality intervals lie below 0
    assert entry["net_value_diff_ci"][1] < 0
    assert entry["quality_diff_ci"][1] < 0
    assert entry["net_value_diff"] == pytest.approx(
        entry["value_usd"] * entry["quality_diff"] - entry["cost_usd_diff"]
    )
    html = (runs["a"] / "report.html").read_text()
    assert 'id="off-policy-comparisons"' in html and "worse (interval below 0)" in html


def test_the_champion_against_itself_is_exactly_zero(runs, bundle_dir):
    itself, against_bad = _comparisons(runs["b"])
    assert itself["router_version"] == load_bundle(bundle_dir).router_version
    assert itself["label"].endswith(f"[{itself['router_version']}]")  # told apart from NEW
    for key in ("quality", "cost_usd", "net_value"):
        assert itself[f"{key}_diff"] == 0.0
        assert itself[f"{key}_diff_ci"] == [0.0, 0.0]
    assert itself["value_usd"] == against_bad["value_usd"] == 20.0  # --value-usd
    assert against_bad["net_value_diff_ci"][0] > 0  # the mirror of the challenger's
    assert np.sign(against_bad["quality_diff"]) == 1


@pytest.fixture(scope="module")
def store(runs, bundle_dir):
    """Champion = version 1 (the session bundle); version 2 = the challenger."""
    root = runs["base"] / "mlruns"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        run_ids = [
            log_training_run(path, params={}, metrics={}, root=root)
            for path in (bundle_dir, runs["bad"])
        ]
        assert [register_bundle(r, name=NAME, root=root) for r in run_ids] == ["1", "2"]
        promote("1", name=NAME, root=root)
    return root


def test_promote_refuses_the_worse_challenger_and_names_the_numbers(runs, store, capsys):
    (entry,) = _comparisons(runs["a"])
    low, high = entry["net_value_diff_ci"]
    numbers = (
        rf"net value per call {entry['net_value_diff']:+.4g} USD, 95% interval "
        rf"\[{low:+.4g}, {high:+.4g}\]"
    )
    with pytest.raises(PromotionRefused, match=rf"version 2 .*version 1: {numbers}.*--force"):
        promote("2", name=NAME, root=store, evaluation=runs["a"])
    assert resolve_version(f"models:/{NAME}@champion", root=store).version == "1"

    argv = ["promote", "2", "--mlruns", str(store), "--evaluation", str(runs["a"] / "metrics.json")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "Refusing to promote version 2" in err and f"{entry['net_value_diff']:+.4g}" in err
    assert resolve_version(f"models:/{NAME}@champion", root=store).version == "1"

    try:
        assert cli.main([*argv, "--force"]) == 0
        captured = capsys.readouterr()
        printed = json.loads(captured.out)
        assert printed["forced"] is True and printed["previous"] == "1"
        assert printed["evidence"]["refused"] is True
        assert printed["evidence"]["net_value_diff_ci"] == [low, high]
        assert "promoted despite the evidence" in captured.err
        assert resolve_version(f"models:/{NAME}@champion", root=store).version == "2"
        # the old champion back, on the evidence of B (champion vs challenger: better)
        back = promote("1", name=NAME, root=store, evaluation=runs["b"])
        assert back["forced"] is False and back["evidence"]["refused"] is False
        assert back["evidence"]["net_value_diff_ci"][0] > 0
    finally:
        promote("1", name=NAME, root=store)


def test_promote_needs_evidence_about_the_right_bundles(runs, store, tmp_path):
    # an evaluation of another bundle than the promoted version
    with pytest.raises(RegistryError, match=r"is of router_version .* evaluate version 2"):
        promote("2", name=NAME, root=store, evaluation=runs["b"], force=True)
    # an evaluation of version 2 that never compared it with the champion
    metrics = json.loads((runs["a"] / "metrics.json").read_text())
    metrics["off_policy"]["comparisons"] = []
    lonely = tmp_path / "metrics.json"
    lonely.write_text(json.dumps(metrics))
    with pytest.raises(PromotionRefused, match=r"no paired comparison with the champion"):
        promote("2", name=NAME, root=store, evaluation=lonely)
    with pytest.raises(RegistryError, match=r"Cannot read the evaluation"):
        promote("2", name=NAME, root=store, evaluation=tmp_path / "missing")
    # without --evaluation, promote checks nothing (as before)
    assert promote("1", name=NAME, root=store)["evidence"] is None


def test_without_logged_propensities_both_are_estimated_with_snips(runs, bundle_dir, tmp_path):
    """A gateway log without `propensity`: the logging policy is estimated once and both
    policies are weighed by it, with SNIPS (the headline estimator there)."""
    log = pd.read_parquet(runs["log"]).drop(columns=["propensity"])
    path = tmp_path / "no_propensity.parquet"
    log.to_parquet(path, index=False)
    result = evaluate(
        runs["bad"], [str(path)], tmp_path / "out", compare=[bundle_dir], n_bootstrap=200
    )
    section = result.off_policy.to_dict()
    assert section["propensity_source"] == "estimated"
    (entry,) = section["comparisons"]
    assert entry["estimator"] == "snips"
    assert entry["net_value_diff_ci"][1] < 0


def test_an_undefined_interval_is_no_evidence(runs, store, tmp_path):
    metrics = json.loads((runs["a"] / "metrics.json").read_text())
    metrics["off_policy"]["comparisons"][0]["net_value_diff_ci"] = [None, None]
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(metrics))
    with pytest.raises(PromotionRefused, match=r"interval \[n/a, n/a\].*undefined"):
        promote("2", name=NAME, root=store, evaluation=tmp_path)


def test_full_information_compare_is_paired_evidence_promote_reads(runs, bundle_dir, store):
    """On a full-information table both decisions are known on every prompt: the
    difference is read off it, with a paired interval, and promote weighs it as it
    weighs the off-policy one."""
    out = runs["base"] / "full"
    result = evaluate(runs["bad"], [str(SHIPPED_CALLS)], out, compare=[bundle_dir], n_bootstrap=300)
    (entry,) = json.loads((out / "metrics.json").read_text())["comparisons"]
    assert entry == result.comparisons[0].to_dict()
    assert DIFF_KEYS - {"note"} <= set(entry)
    assert entry["estimator"] == "full_information" and entry["n_bootstrap"] == 300
    assert entry["value_usd"] == pytest.approx(runs["champion_value"])
    # The differences are the two default decisions' rows of the table, exactly.
    challenger, champion = result.summary.default_point, result.comparisons[0].row
    assert entry["quality_diff"] == pytest.approx(challenger.quality - champion.quality)
    assert entry["cost_usd_diff"] == pytest.approx(challenger.cost_usd - champion.cost_usd)
    for key in ("quality", "cost_usd", "net_value"):
        low, high = entry[f"{key}_diff_ci"]
        assert low <= entry[f"{key}_diff"] <= high, key
    assert entry["net_value_diff_ci"][1] < 0  # value_usd 0 is worse here too
    with pytest.raises(PromotionRefused, match=r"version 1: net value per call .*below 0"):
        promote("2", name=NAME, root=store, evaluation=out)
