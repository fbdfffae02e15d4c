"""TEMPORARY: a throwaway bundle for the serving tests.

Replace with the session-scoped ``bundle_dir`` fixture of ``tests/conftest.py``
(a really trained bundle) once it exists, then delete this file. The bundle here has
random linear heads on the real MiniLM encoder: its scores are meaningless but its
files, manifest and hashes are those of a real bundle.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

CANDIDATES = ("cheap-mini", "mid-model", "big-model")


def build_throwaway_bundle(out_dir: Path, seed: int = 0) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from features.encoder import ENCODER_FILE, TOKENIZER_FILE
    from features.encoder_export import ensure_encoder
    from features.spec import FeatureSpec
    from serving.bundle import BUNDLE_SCHEMA_VERSION, file_sha256, router_version_of

    out_dir.mkdir(parents=True, exist_ok=True)
    encoder_dir = ensure_encoder()
    for name in (ENCODER_FILE, TOKENIZER_FILE):
        shutil.copyfile(encoder_dir / name, out_dir / name)
    spec = FeatureSpec()
    d, k = spec.n_features, len(CANDIDATES)
    rng = np.random.default_rng(seed)

    def linear(file: str, output: str, w: np.ndarray, b: np.ndarray, sigmoid: bool) -> None:
        inits = [
            numpy_helper.from_array(w.astype(np.float32), "W"),
            numpy_helper.from_array(b.astype(np.float32), "b"),
        ]
        linear_out = "logit" if sigmoid else output
        nodes = [
            helper.make_node("MatMul", ["features", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], [linear_out]),
        ]
        if sigmoid:
            nodes.append(helper.make_node("Sigmoid", ["logit"], [output]))
        graph = helper.make_graph(
            nodes,
            "throwaway",
            [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, d])],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, [None, w.shape[1]])],
            initializer=inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        onnx.save(model, out_dir / file)

    linear(
        "scorer.onnx",
        "p_success",
        rng.normal(0, 0.3, (d, k)),
        np.array([-0.5, 0.3, 1.2]),
        sigmoid=True,
    )
    linear(
        "cost.onnx",
        "log_cost",
        rng.normal(0, 0.02, (d, k)),
        np.log([0.0002, 0.002, 0.02]),
        sigmoid=False,
    )
    manifest = {
        "schema_version": BUNDLE_SCHEMA_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "candidates": [{"name": n, "family": n.split("-")[0], "price": None} for n in CANDIDATES],
        "feature_spec": spec.to_dict(),
        "scorer": {"file": "scorer.onnx", "input": "features", "output": "p_success"},
        "cost_model": {
            "file": "cost.onnx",
            "input": "features",
            "output": "log_cost",
            "components": [
                {"candidate": j, "name": "cost_usd", "price": 1.0, "smearing": 1.0, "offset": 0.0}
                for j in range(k)
            ],
        },
        "policy": {
            "value_usd": 1.0,
            "min_success": None,
            "max_cost_usd": None,
            "fallback_model": CANDIDATES[1],
        },
        "files": {
            name: file_sha256(out_dir / name)
            for name in (ENCODER_FILE, TOKENIZER_FILE, "scorer.onnx", "cost.onnx")
        },
    }
    manifest["router_version"] = router_version_of(manifest)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out_dir


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_throwaway_bundle(tmp_path_factory.mktemp("throwaway") / "bundle")
