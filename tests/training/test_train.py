"""`train` end to end on real shipped data: manifest, policy, parity, tracking."""

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from features.prices import PriceCatalog
from serving.scoring import BundleScorer
from training.dataset import DEFAULT_MIN_CALLS
from training.selection import prompt_folds
from training.train import DEFAULT_LEARNERS, TrainConfig, model_family, train


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
    # No propensities: the target is measured off-policy (SNIPS, estimated logging policy).
    fit = manifest["policy"]["target_fit"]
    assert (fit["method"], fit["estimator"]) == ("off_policy", "snips")
    assert isinstance(fit["met"], bool)
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
    # A client of its own: mlflow.set_tracking_uri would also set $MLFLOW_TRACKING_URI,
    # which leaks into every later test and the registry children they start.
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    run = client.get_run(result.run_id)
    assert run.data.params["router_version"] == result.bundle.router_version
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "bundle")}
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


# --- A candidate needs evidence (issue 9, A1) -------------------------------------------

#: The repro row: a model seen once, with no price and no cost, that succeeded.
ONE_ROW_MODEL = {
    "request_id": "bad-3",
    "model": "gpt-5-turbo-preview",
    "prompt": "what is 2+2",
    "input_tokens": 10,
    "output_tokens": 2,
    "outcome": 1,
}
TOPICS = ("a SQL query", "a Python traceback", "a CSS layout", "a Rust borrow error", "a poem")
NORMAL_MODELS = ("openai/gpt-oss-20b", "openai/gpt-oss-120b")


def gateway_rows(n_prompts: int, models=NORMAL_MODELS, prefix: str = "req") -> list[dict]:
    """``n_prompts`` prompts each answered by every model in ``models``, gateway style
    (no prompt_id, no cost_usd): the larger model succeeds more often on long prompts."""
    rng = np.random.default_rng(7)
    rows = []
    for i in range(n_prompts):
        words = int(rng.integers(5, 60))
        prompt = f"Question {i} about {TOPICS[i % len(TOPICS)]}: " + " ".join(
            f"detail{j}" for j in range(words)
        )
        for k, model in enumerate(models):
            success = rng.random() < (0.85 - 0.01 * words if k == 0 else 0.8)
            rows.append(
                {
                    "request_id": f"{prefix}-{i}-{k}",
                    "model": model,
                    "prompt": prompt,
                    "input_tokens": 20 + 2 * words,
                    "output_tokens": int(rng.integers(50, 400)),
                    "outcome": float(success),
                }
            )
    return rows


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_a_model_seen_once_without_price_is_no_candidate(tmp_path, capsys):
    from training.cli import main

    logs = write_jsonl(tmp_path / "calls.jsonl", [*gateway_rows(145), ONE_ROW_MODEL])
    out = tmp_path / "bundle"
    args = ["--logs", logs, "--out", str(out), "--learner", "logistic-C0.003", "--no-mlflow"]
    code = main(["train", *args])
    assert code == 0
    captured = capsys.readouterr()
    manifest = json.loads((out / "manifest.json").read_text())
    assert [c["name"] for c in manifest["candidates"]] == sorted(NORMAL_MODELS)
    assert manifest["policy"]["fallback_model"] in NORMAL_MODELS
    (excluded,) = manifest["excluded_candidates"]
    assert excluded["model"] == "gpt-5-turbo-preview" and excluded["n_graded_calls"] == 1
    assert "1 graded call" in excluded["reason"] and "--min-calls" in excluded["reason"]
    printed = json.loads(captured.out)
    assert printed["excluded_candidates"] == manifest["excluded_candidates"]
    assert "gpt-5-turbo-preview" in captured.err and "excluded" in captured.err


def test_a_model_without_price_or_cost_is_no_candidate(tmp_path):
    """Neither a price nor a cost; or a price but no tokens to apply it to."""
    no_tokens = gateway_rows(30, models=("gpt-4o",), prefix="g")
    for row in no_tokens:
        del row["input_tokens"], row["output_tokens"]
    unpriced = gateway_rows(40, models=("acme/unpriced-model",), prefix="u")
    rows = gateway_rows(60) + unpriced + no_tokens
    result = train(
        TrainConfig(
            logs=[write_jsonl(tmp_path / "calls.jsonl", rows)],
            out=str(tmp_path / "b"),
            track=False,
            learners=[("logistic", "logistic", {"C": 0.01})],
        )
    )
    assert result.bundle.candidate_names == tuple(sorted(NORMAL_MODELS))
    unpriced, no_tokens = result.bundle.manifest["excluded_candidates"]
    assert unpriced["model"] == "acme/unpriced-model" and unpriced["n_graded_calls"] == 40
    assert unpriced["reason"].startswith("no price in the catalog and no logged cost_usd")
    assert no_tokens["model"] == "gpt-4o" and no_tokens["n_graded_calls"] == 30
    assert no_tokens["reason"].startswith("priced in the catalog, but none of its rows logs")


def test_min_calls_is_respected(tmp_path):
    """gpt-4o is priced but has 6 graded calls, all successes: below the default
    evidence it is left out; with ``min_calls=5`` it is a candidate, yet not the
    fallback, which goes to a model with a hundred calls of evidence."""
    rows = gateway_rows(100) + gateway_rows(6, models=("gpt-4o",), prefix="g")
    for row in rows[-6:]:
        row["outcome"] = 1.0
    logs = [write_jsonl(tmp_path / "calls.jsonl", rows)]
    learners = [("logistic", "logistic", {"C": 0.01})]
    default = train(TrainConfig(logs=logs, out=str(tmp_path / "a"), track=False, learners=learners))
    assert "gpt-4o" not in default.bundle.candidate_names
    assert default.bundle.manifest["excluded_candidates"][0]["model"] == "gpt-4o"
    lowered = train(
        TrainConfig(logs=logs, out=str(tmp_path / "b"), track=False, learners=learners, min_calls=5)
    )
    assert "gpt-4o" in lowered.bundle.candidate_names
    assert lowered.bundle.manifest["excluded_candidates"] == []
    assert lowered.bundle.policy["fallback_model"] in NORMAL_MODELS
    with pytest.raises(ValueError, match=r"gpt-4o: 6 graded calls, fewer than --min-calls 20"):
        train(
            TrainConfig(
                logs=logs,
                out=str(tmp_path / "c"),
                track=False,
                learners=learners,
                candidates=["gpt-4o", *NORMAL_MODELS],
            )
        )


# --- train --help (issue 9, A8) ----------------------------------------------------------


def _train_parser():
    from training.cli import build_parser

    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return commands.choices["train"]


def test_every_train_option_has_help():
    options = [a for a in _train_parser()._actions if not isinstance(a, argparse._HelpAction)]
    assert "--min-calls" in {s for a in options for s in a.option_strings}
    undocumented = [a.option_strings for a in options if not (a.help or "").strip()]
    assert undocumented == []


def test_train_help_lists_learners_and_defaults(capsys):
    from training.cli import main
    from training.learners import LEARNERS

    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"Registered learners: {', '.join(sorted(LEARNERS))};" in text
    labels = ", ".join(label for label, _, _ in DEFAULT_LEARNERS)
    assert f"default-grid settings: {labels}" in text
    for default in ("--min-calls N", "(default: 20)", "(default: parity)", "(default: 4000)"):
        assert default in text
    assert _train_parser().get_default("min_calls") == DEFAULT_MIN_CALLS
