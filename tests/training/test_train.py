"""`train` end to end on real shipped data: manifest, policy, parity, tracking."""

import json

import numpy as np
import pandas as pd
import pytest

from features.prices import PriceCatalog
from serving.scoring import BundleScorer
from training.selection import prompt_folds
from training.train import TrainConfig, model_family, train


def test_manifest_describes_the_bundle(trained, shipped_calls):
    manifest = trained.bundle.manifest
    names = [c["name"] for c in manifest["candidates"]]
    assert names == sorted(shipped_calls["model"].unique())
    catalog = PriceCatalog.load()
    for c in manifest["candidates"]:
        assert c["price"] == catalog.get(c["name"]).to_dict()
    components = manifest["cost_model"]["components"]
    assert {(c["candidate"], c["name"]) for c in components} == {
        (k, unit) for k in range(len(names)) for unit in ("input_tokens", "output_tokens")
    }
    policy = manifest["policy"]
    assert policy["value_usd"] > 0 and policy["fallback_model"] in names
    training = manifest["training"]
    assert training["n_prompts"] == 120 and training["n_quarantined"] == 0
    selection = training["selection"]
    assert selection["chosen"] in selection["learners"] and selection["criterion"] == "area"
    assert selection["n_full_information_prompts"] == 120
    assert "cv_area" in trained.metrics and "cv_log_loss" in trained.metrics
    fit = policy["target_fit"]
    assert fit["target"] == "parity" and fit["value_usd"] == policy["value_usd"]
    low, high = fit["ci95"]["quality"]
    assert low <= fit["quality"] <= high


def test_expected_costs_are_on_the_scale_of_logged_costs(trained, small_logs):
    frame = pd.read_parquet(small_logs["test"])
    scorer = BundleScorer(trained.bundle)
    prompts = frame.drop_duplicates("prompt_id")
    scores = scorer.score_texts(prompts["prompt"].tolist())
    predicted = dict(zip(scorer.candidates, scores.expected_cost_usd.mean(axis=0), strict=True))
    logged = frame.groupby("model")["cost_usd"].mean()
    for model, cost in predicted.items():
        assert logged[model] / 3 < cost < logged[model] * 3, model
    # gpt-oss-120b runs far longer than the others: the ordering must survive.
    assert max(predicted, key=predicted.get) == "openai/gpt-oss-120b"


def test_one_row_per_prompt_logs_with_cost_only(shipped_calls, tmp_path):
    """Production-like logs: one model per prompt, no tokens, cost_usd only."""
    rng = np.random.default_rng(0)
    prompts = shipped_calls["prompt_id"].drop_duplicates().sample(150, random_state=0)
    rows = shipped_calls[shipped_calls["prompt_id"].isin(prompts)]
    logged = rows.groupby("prompt_id").sample(1, random_state=rng.integers(1 << 31))
    logged = logged.drop(columns=["input_tokens", "output_tokens"])
    logged.to_json(tmp_path / "calls.jsonl", orient="records", lines=True)
    result = train(
        TrainConfig(
            logs=[str(tmp_path / "calls.jsonl")],
            out=str(tmp_path / "b"),
            track=False,
            learners=[("logistic", "logistic", {"C": 0.01})],
        )
    )
    manifest = result.bundle.manifest
    assert {c["name"] for c in manifest["cost_model"]["components"]} == {"cost_usd"}
    assert manifest["policy"]["target_fit"]["met"] is None
    scores = BundleScorer(result.bundle).score_texts(["A bug in the ORM's query builder."])
    assert (scores.expected_cost_usd > 0).all()
    assert ((scores.p_success > 0) & (scores.p_success < 1)).all()


def test_bad_rows_are_counted_and_quarantined(small_logs, tmp_path):
    frame = pd.read_parquet(small_logs["train"]).head(150)
    frame.loc[3, "outcome"] = 7.0
    frame.loc[4, "model"] = None
    frame.to_parquet(tmp_path / "calls.parquet")
    out = tmp_path / "bundle"
    result = train(
        TrainConfig(
            logs=[str(tmp_path / "calls.parquet")],
            out=str(out),
            track=False,
            learners=[("logistic", "logistic", {"C": 0.01})],
        )
    )
    assert result.bundle.manifest["training"]["n_quarantined"] == 2
    lines = (tmp_path / "bundle.quarantine.jsonl").read_text().splitlines()
    assert [json.loads(x)["quarantine_reason"] for x in lines] == [
        "outcome must be in [0, 1], got 7.0",
        "missing required column 'model'",
    ]


def test_training_run_is_tracked_in_mlflow(small_logs, tmp_path):
    import mlflow

    frame = pd.read_parquet(small_logs["train"]).head(200)
    frame.to_parquet(tmp_path / "calls.parquet")
    result = train(
        TrainConfig(
            logs=[str(tmp_path / "calls.parquet")],
            out=str(tmp_path / "b"),
            mlruns=str(tmp_path / "mlruns"),
            tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db",
            learners=[("logistic", "logistic", {"C": 0.01})],
        )
    )
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    run = mlflow.get_run(result.run_id)
    assert run.data.params["router_version"] == result.bundle.router_version
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id, "bundle")}
    assert "bundle/manifest.json" in artifacts and "bundle/scorer.onnx" in artifacts
    assert (tmp_path / "mlruns" / "artifacts").is_dir()


def test_prompt_folds_and_family():
    folds = prompt_folds(103, 5, seed=1)
    assert np.bincount(folds).tolist() == [21, 21, 21, 20, 20]
    assert (prompt_folds(103, 5, seed=1) == folds).all()
    with pytest.raises(ValueError, match="at least 5 prompts"):
        prompt_folds(3, 5, seed=1)
    assert model_family("openai/gpt-oss-20b") == "openai"
    assert model_family("gpt-4o-mini") == "gpt"
    assert model_family("claude-sonnet-4-5") == "claude-sonnet"


def test_unknown_candidates_fail_clearly(small_logs, tmp_path):
    with pytest.raises(ValueError, match="have no rows in the logs"):
        train(
            TrainConfig(
                logs=[str(small_logs["train"])],
                out=str(tmp_path / "b"),
                candidates=["missing-model"],
                track=False,
            )
        )


def test_subset_keeps_rows_of_kept_prompts(training_set):
    keep = np.zeros(training_set.n_prompts, dtype=bool)
    keep[::3] = True
    part = training_set.subset(keep)
    assert part.n_prompts == keep.sum() and len(part.texts) == keep.sum()
    assert (part.prompt_ids == training_set.prompt_ids[keep]).all()
    kept_rows = keep[training_set.prompt]
    assert len(part.outcome) == kept_rows.sum()
    np.testing.assert_array_equal(
        part.features[part.prompt], training_set.features[training_set.prompt[kept_rows]]
    )
