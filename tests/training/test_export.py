"""ONNX exports against native predictions, and the bundle's tamper checks."""

import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest

from serving.bundle import BundleError, load_bundle
from training.cost_model import CostComponent, LogLinearCostModel
from training.export import export_cost_model, export_scorer
from training.learners import LEARNERS, CandidateInfo, PerCandidateLearner, make_learner

#: Largest allowed gap between ONNX and native predictions (as `train` checks).
PARITY = 1e-4


def _run(model, X):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"features": X.astype(np.float32)})[0]


def _fit(name, data, rows, n_candidates, info=None):
    return make_learner(name).fit(
        data.features[data.prompt[rows]],
        data.outcome[rows],
        candidate=data.candidate[rows],
        n_candidates=n_candidates,
        candidate_info=info,
    )


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_scorer_onnx_matches_native(name, training_set):
    data = training_set
    k = len(data.candidates)
    learner = _fit(name, data, np.arange(len(data.prompt)), k, _shipped_info(data.candidates))
    onnx_p = _run(export_scorer(learner), data.features)
    assert onnx_p.shape == (data.n_prompts, k)
    np.testing.assert_allclose(onnx_p, learner.predict_proba(data.features), atol=PARITY)


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_scorer_onnx_matches_native_on_sparse_logs(name, training_set):
    """One row per prompt and a candidate with no rows: the thin-data paths export too."""
    data = training_set
    k = len(data.candidates)
    order = np.random.default_rng(1).permutation(len(data.prompt))
    _, first = np.unique(data.prompt[order], return_index=True)
    learner = _fit(name, data, np.sort(order[first]), k + 1)
    onnx_p = _run(export_scorer(learner), data.features)
    assert onnx_p.shape == (data.n_prompts, k + 1)
    np.testing.assert_allclose(onnx_p, learner.predict_proba(data.features), atol=PARITY)


def _shipped_info(names) -> CandidateInfo:
    from features.prices import PriceCatalog

    catalog = PriceCatalog.load(None)
    return CandidateInfo.from_prices(
        names, {n: n.split("/")[0].lower() for n in names}, {n: catalog.get(n) for n in names}
    )


def test_cost_onnx_matches_native(training_set):
    data = training_set
    components = [CostComponent(k, "cost_usd", 1.0, 1e-4) for k in range(len(data.candidates))]
    model = LogLinearCostModel().fit(
        data.features[data.prompt],
        {"cost_usd": data.cost_usd},
        components=components,
        candidate=data.candidate,
    )
    onnx_log = _run(export_cost_model(model), data.features)
    np.testing.assert_allclose(
        onnx_log, model.predict_log_units(data.features), rtol=1e-4, atol=1e-4
    )
    cost = model.predict_cost(data.features, len(data.candidates))
    logged = data.matrix(data.cost_usd).mean(axis=0)
    # Smearing makes the mean prediction track the mean logged cost.
    np.testing.assert_allclose(cost.mean(axis=0), logged, rtol=0.35)


def test_unknown_learner_is_refused_with_a_message():
    class Opaque(PerCandidateLearner):
        min_rows = 1

    learner = Opaque()
    learner.n_features_in_, learner.n_candidates_ = 3, 2
    with pytest.raises(TypeError, match="Opaque has no ONNX export; exportable") as error:
        export_scorer(learner)
    for exportable in ("KNNLearner", "MLPLearner", "MatrixFactorizationLearner", "SharedLearner"):
        assert exportable in str(error.value)


@pytest.fixture()
def bundle_copy(bundle_dir, tmp_path):
    return shutil.copytree(bundle_dir, tmp_path / "bundle")


def test_bundle_loads_and_verifies(bundle_copy):
    bundle = load_bundle(bundle_copy)
    assert len(bundle.router_version) == 16
    assert set(bundle.manifest["files"]) == {
        "encoder.onnx",
        "tokenizer.json",
        "scorer.onnx",
        "cost.onnx",
    }


@pytest.mark.parametrize(
    ("tamper", "match"),
    [
        (lambda p: (p / "scorer.onnx").write_bytes(b"\0" * 10), "scorer.onnx has sha256"),
        (lambda p: (p / "cost.onnx").unlink(), "cost.onnx listed in the manifest is missing"),
        (lambda p: (p / "manifest.json").write_text("{"), "not valid JSON"),
        (lambda p: (p / "manifest.json").unlink(), "No manifest.json"),
        (
            lambda p: _edit_manifest(p, lambda m: m["policy"].update(value_usd=123.0)),
            "edited after training",
        ),
        (lambda p: _edit_manifest(p, lambda m: m.pop("scorer")), "lacks the keys"),
        (lambda p: _edit_manifest(p, lambda m: m.update(schema_version=99)), "not supported"),
    ],
)
def test_tampered_bundle_is_refused(bundle_copy, tamper, match):
    tamper(bundle_copy)
    with pytest.raises(BundleError, match=match):
        load_bundle(bundle_copy)


def _edit_manifest(path, edit):
    manifest = json.loads((path / "manifest.json").read_text())
    edit(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))
