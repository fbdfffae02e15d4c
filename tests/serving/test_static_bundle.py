"""A bundle trained with ``--encoder static`` serves /route, with the vectors it was
trained on (train/serve parity) and without the training stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from features.call_log import read_call_logs
from features.encoder import ENCODER_FILE, STATIC_ENCODER_FILE, StaticEncoder
from features.featurizer import Featurizer
from serving.app import create_app
from serving.bundle import BundleError, load_bundle
from serving.config import Settings
from serving.scoring import BundleScorer
from training.cli import main as cli_main


@pytest.fixture(scope="module")
def static_bundle(small_logs, static_encoder_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("static") / "bundle"
    argv = ["train", "--logs", str(small_logs["train"]), "--out", str(out)]
    # kNN reads the embedding width: 256 columns here, not MiniLM's 384.
    argv += ["--encoder", "static", "--learner", "knn,logistic-C0.0003", "--no-mlflow"]
    assert cli_main(argv) == 0
    return out


def test_every_learner_setting_fits_the_static_width(static_bundle):
    selection = load_bundle(static_bundle).manifest["training"]["selection"]
    assert selection["learners"]["knn"]["params"]["embedding_dim"] == 256
    assert set(selection["learners"]) == {"knn", "logistic-C0.0003"}


def test_bundle_carries_the_static_vectors_hashed(static_bundle, static_encoder_dir):
    manifest = load_bundle(static_bundle).manifest
    assert manifest["feature_spec"]["encoder"] == "static"
    assert manifest["feature_spec"]["embedding_dim"] == 256
    assert STATIC_ENCODER_FILE in manifest["files"] and ENCODER_FILE not in manifest["files"]
    assert not (static_bundle / ENCODER_FILE).exists()
    shipped = np.load(static_bundle / STATIC_ENCODER_FILE, allow_pickle=False)
    cached = np.load(static_encoder_dir / STATIC_ENCODER_FILE, allow_pickle=False)
    np.testing.assert_array_equal(shipped, cached)


def test_a_tampered_vectors_file_is_refused(static_bundle, tmp_path):
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(static_bundle, copy)
    vectors = np.load(copy / STATIC_ENCODER_FILE, allow_pickle=False)
    vectors[0, 0] += 1.0
    np.save(copy / STATIC_ENCODER_FILE, vectors, allow_pickle=False)
    with pytest.raises(BundleError, match=STATIC_ENCODER_FILE):
        load_bundle(copy)


def test_served_features_equal_training_features(static_bundle, static_encoder_dir, small_logs):
    bundle = load_bundle(static_bundle)
    texts = read_call_logs(small_logs["test"]).frame["prompt"].drop_duplicates().tolist()[:20]
    training = Featurizer(bundle.feature_spec, static_encoder_dir, workers=2)
    scorer = BundleScorer(bundle)
    served = scorer.featurizer
    assert isinstance(served.encoder, StaticEncoder)
    assert scorer.offload is False  # cheap and GIL-bound: /route runs it on the loop
    np.testing.assert_array_equal(training.transform_texts(texts), served.transform_texts(texts))
    # The one-text path /route takes gives the same vectors.
    one_by_one = np.vstack([served.transform_texts([t]) for t in texts])
    np.testing.assert_array_equal(one_by_one, served.transform_texts(texts))


def test_static_bundle_serves_route(static_bundle):
    settings = Settings(bundle=str(static_bundle), time_budget_ms=60_000.0)
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/route",
            json={"messages": [{"role": "user", "content": "Fix the off-by-one in paginate()"}]},
        )
        assert response.status_code == 200, response.text
        decision = response.json()
        names = load_bundle(static_bundle).candidate_names
        assert decision["reason"] == "max_utility" and decision["model"] in names
        assert {s["model"] for s in decision["scores"]} == set(names)


def test_static_serving_loads_no_training_stack(
    static_bundle, serving_forbidden, imported_packages
):
    code = (
        "from serving.bundle import load_bundle; from serving.scoring import BundleScorer; "
        f"s = BundleScorer(load_bundle({str(static_bundle)!r})); "
        "print(s.score_text('hello world').p_success.shape)"
    )
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert json.loads(proc.stdout.strip().replace("(", "[").replace(")", "]").replace(",]", "]"))
    assert not imported_packages(proc.stderr) & serving_forbidden


def test_static_tier_decides_on_the_event_loop(static_bundle, decided_on_thread):
    # Cheaper than a thread hand-off: no pool, the budget is checked after.
    _, on_loop = decided_on_thread(str(static_bundle))
    assert on_loop
