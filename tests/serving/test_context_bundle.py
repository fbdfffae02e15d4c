"""A bundle trained with ``--context task,team,depth`` builds the same request-context
columns from a /route body as training built from the call log (train/serve parity)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from features.call_log import read_call_logs
from features.context import RequestContext
from features.featurizer import Featurizer
from serving.app import create_app
from serving.bundle import load_bundle
from serving.config import Settings
from serving.scoring import BundleScorer
from training.cli import main as cli_main
from training.dataset import featurize, request_contexts

ROUTEPROFILE = Path(__file__).resolve().parents[2] / "data" / "routeprofile"


@pytest.fixture(scope="module")
def context_logs(tmp_path_factory) -> dict[str, Path]:
    """Routeprofile cut in two by prompt, with a ``team`` tag added per prompt."""
    calls = pd.read_json(ROUTEPROFILE / "calls.jsonl.gz", lines=True)
    ids = sorted(calls["prompt_id"].unique())
    calls["team"] = calls["prompt_id"].map({pid: f"team-{i % 2}" for i, pid in enumerate(ids)})
    order = np.random.default_rng(0).permutation(ids)
    folder = tmp_path_factory.mktemp("context-logs")
    paths = {}
    for name, part in (("train", order[:240]), ("test", order[240:260])):
        paths[name] = folder / f"{name}.parquet"
        calls[calls["prompt_id"].isin(part)].to_parquet(paths[name], index=False)
    return paths


@pytest.fixture(scope="module")
def context_bundle(context_logs, static_encoder_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("context") / "bundle"
    argv = ["train", "--logs", str(context_logs["train"]), "--out", str(out), "--no-mlflow"]
    argv += ["--prices", str(ROUTEPROFILE / "prices.json"), "--encoder", "static"]
    argv += ["--learner", "logistic-C0.0003", "--folds", "2", "--context", "task,team,depth"]
    assert cli_main(argv) == 0
    return out


def _body(row: pd.Series, **changes) -> dict:
    body = {
        "messages": [{"role": "user", "content": row["prompt"]}],
        "task": row["task"],
        "team": row["team"],
    }
    return {**body, **changes}


def test_the_spec_stores_the_tags_seen_in_training(context_bundle):
    spec = load_bundle(context_bundle).feature_spec
    assert len(spec.context_tasks) == 12 and "gsm8k" in spec.context_tasks
    assert spec.context_teams == ("team-0", "team-1") and spec.conversation_depth
    assert spec.feature_names[-4:] == ["team=team-0", "team=team-1", "team=(other)", "log_messages"]


def test_route_scores_equal_the_training_features_scores(context_bundle, context_logs):
    bundle = load_bundle(context_bundle)
    firsts = read_call_logs(context_logs["test"]).frame.drop_duplicates("prompt_id")
    # The training path: call-log columns -> contexts -> the bundle's featurizer.
    featurizer = Featurizer(bundle.feature_spec, context_bundle)
    features = featurize(featurizer, firsts["prompt"].tolist(), contexts=request_contexts(firsts))
    expected = BundleScorer(bundle).score_features(features).p_success
    settings = Settings(bundle=str(context_bundle), time_budget_ms=60_000.0)
    with TestClient(create_app(settings)) as client:
        for i, (_, row) in enumerate(firsts.iterrows()):
            response = client.post("/route", json=_body(row))
            assert response.status_code == 200, response.text
            served = {s["model"]: s["p_success"] for s in response.json()["scores"]}
            got = [served[name] for name in bundle.candidate_names]
            np.testing.assert_allclose(got, expected[i], rtol=1e-6)


def test_task_team_and_depth_move_the_scores(context_bundle, context_logs):
    row = read_call_logs(context_logs["test"]).frame.iloc[0]
    settings = Settings(bundle=str(context_bundle), time_budget_ms=60_000.0)

    def p_success(body: dict) -> list[float]:
        response = client.post("/route", json=body)
        assert response.status_code == 200, response.text
        return [s["p_success"] for s in response.json()["scores"]]

    with TestClient(create_app(settings)) as client:
        base = p_success(_body(row))
        other_task = "mmlu" if row["task"] != "mmlu" else "gsm8k"
        assert p_success(_body(row, task=other_task)) != base
        # A task never seen in training and no task at all share the (other) column.
        assert p_success(_body(row, task="never-seen")) == p_success(_body(row, task=None))
        assert p_success(_body(row, team="team-0" if row["team"] != "team-0" else "team-1")) != base


def test_depth_column_counts_the_request_messages(context_bundle):
    # Every routeprofile prompt is one message, so training learns no weight for depth;
    # the column itself is still built from the request.
    featurizer = BundleScorer(load_bundle(context_bundle)).featurizer
    contexts = [RequestContext.of(messages=[{}] * n) for n in (1, 3)]
    features = featurizer.transform_texts(["What is 2 + 2?"] * 2, contexts)
    np.testing.assert_allclose(features[:, -1], [math.log1p(1), math.log1p(3)])


def test_route_command_reads_the_same_context_from_its_input_lines(
    context_bundle, context_logs, tmp_path
):
    from serving.batch_routing import route_file

    bundle = load_bundle(context_bundle)
    firsts = read_call_logs(context_logs["test"]).frame.drop_duplicates("prompt_id").head(5)
    features = featurize(
        Featurizer(bundle.feature_spec, context_bundle),
        firsts["prompt"].tolist(),
        contexts=request_contexts(firsts),
    )
    expected = BundleScorer(bundle).score_features(features).p_success
    lines = [
        {
            "prompt_id": row["prompt_id"],
            "prompt": row["prompt"],
            "task": row["task"],
            "team": row["team"],
        }
        for _, row in firsts.iterrows()
    ]
    src, out = tmp_path / "prompts.jsonl", tmp_path / "decisions.jsonl"
    src.write_text("".join(json.dumps(line) + "\n" for line in lines))
    route_file(context_bundle, src, out)
    decided = [json.loads(line) for line in out.read_text().splitlines()]
    got = [[s["p_success"] for s in d["scores"]] for d in decided]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
