"""Export fitted learners and cost models to ONNX, and write the bundle.

The bundle (DESIGN.md section 5) is the only thing that crosses to serving: ONNX
graphs, the tokenizer and a manifest with hashes. No pickles: a learner the
exporter does not know is refused with a message, never serialised some other way.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from features.encoder import ENCODER_FILE, TOKENIZER_FILE
from features.prices import ModelPrice
from features.spec import FeatureSpec
from serving.bundle import (
    BUNDLE_SCHEMA_VERSION,
    MANIFEST_FILE,
    Bundle,
    file_sha256,
    load_bundle,
    router_version_of,
)
from training.cost_model import LogLinearCostModel
from training.learners import LightGBMLearner, LogisticLearner, PerCandidateLearner

#: ai.onnx opset of the scorer and cost graphs; onnxmltools' LightGBM converter
#: accepts at most 15.
SCORER_OPSET = 15
ML_OPSET = 3
INPUT_NAME = "features"
SCORER_FILE, SCORER_OUTPUT = "scorer.onnx", "p_success"
COST_FILE, COST_OUTPUT = "cost.onnx", "log_cost"


def _make_model(
    nodes: list, initializers: list, n_features: int, output: str, width: int
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "outcome_router",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [None, width])],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[
            helper.make_opsetid("", SCORER_OPSET),
            helper.make_opsetid("ai.onnx.ml", ML_OPSET),
        ],
        producer_name="outcome-router",
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _linear_nodes(
    prefix: str, weights: np.ndarray, bias: np.ndarray, output: str, sigmoid: bool
) -> tuple[list, list]:
    """``output = [sigmoid](features @ weights + bias)``; weights (n_features, width)."""
    w = numpy_helper.from_array(weights.astype(np.float32), f"{prefix}W")
    b = numpy_helper.from_array(bias.astype(np.float32), f"{prefix}b")
    linear = output if not sigmoid else f"{prefix}logit"
    nodes = [
        helper.make_node("MatMul", [INPUT_NAME, w.name], [f"{prefix}xw"]),
        helper.make_node("Add", [f"{prefix}xw", b.name], [linear]),
    ]
    if sigmoid:
        nodes.append(helper.make_node("Sigmoid", [linear], [output]))
    return nodes, [w, b]


def _lightgbm_nodes(prefix: str, model, n_features: int, output: str) -> tuple[list, list]:
    """One LGBMClassifier as nodes giving its positive-class probability ``(N, 1)``."""
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    sub = convert_lightgbm(
        model,
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        target_opset=SCORER_OPSET,
        zipmap=False,
    )
    sub = onnx.compose.add_prefix(sub, prefix, rename_inputs=False)
    probabilities = next(o.name for o in sub.graph.output if "probab" in o.name)
    starts = numpy_helper.from_array(np.array([1], dtype=np.int64), f"{prefix}start")
    ends = numpy_helper.from_array(np.array([2], dtype=np.int64), f"{prefix}end")
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), f"{prefix}axis")
    nodes = [
        *sub.graph.node,
        helper.make_node("Slice", [probabilities, starts.name, ends.name, axes.name], [output]),
    ]
    return nodes, [*sub.graph.initializer, starts, ends, axes]


def export_scorer(learner: PerCandidateLearner) -> onnx.ModelProto:
    """ONNX graph ``features (N, n_features) -> p_success (N, n_candidates)``.

    Raises
    ------
    TypeError
        If the learner has no ONNX export, naming the ones that do.
    """
    d, k = learner.n_features_in_, learner.n_candidates_
    if isinstance(learner, LogisticLearner):
        nodes, inits = _linear_nodes(
            "lr_", learner.coef_.T, learner.intercept_, SCORER_OUTPUT, True
        )
        return _make_model(nodes, inits, d, SCORER_OUTPUT, k)
    if isinstance(learner, LightGBMLearner):
        nodes, inits, columns = [], [], []
        for j, model in enumerate(learner.models_):
            column = f"c{j}_p"
            if model is None:
                logit = np.log(learner.constant_[j] / (1.0 - learner.constant_[j]))
                n, i = _linear_nodes(f"c{j}_", np.zeros((d, 1)), np.array([logit]), column, True)
            else:
                n, i = _lightgbm_nodes(f"c{j}_", model, d, column)
            nodes += n
            inits += i
            columns.append(column)
        nodes.append(helper.make_node("Concat", columns, [SCORER_OUTPUT], axis=1))
        return _make_model(nodes, inits, d, SCORER_OUTPUT, k)
    raise TypeError(
        f"{type(learner).__name__} has no ONNX export; exportable learners: "
        "LogisticLearner, LightGBMLearner."
    )


def export_cost_model(cost_model: LogLinearCostModel) -> onnx.ModelProto:
    """ONNX graph ``features (N, n_features) -> log_cost (N, n_components)``."""
    nodes, inits = _linear_nodes(
        "cost_", cost_model.coef_.T, cost_model.intercept_, COST_OUTPUT, sigmoid=False
    )
    return _make_model(
        nodes, inits, cost_model.n_features_in_, COST_OUTPUT, len(cost_model.components_)
    )


def write_bundle(
    out_dir: str | Path,
    *,
    encoder_dir: str | Path,
    spec: FeatureSpec,
    candidates: list[str],
    families: dict[str, str],
    prices: dict[str, ModelPrice | None],
    learner: PerCandidateLearner,
    learner_name: str,
    cost_model: LogLinearCostModel,
    policy: dict[str, Any],
    training: dict[str, Any],
    calibration: dict[str, Any] | None = None,
) -> Bundle:
    """Write a complete, hashed bundle folder and return it loaded and verified."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    encoder_dir = Path(encoder_dir)
    for name in (ENCODER_FILE, TOKENIZER_FILE):
        shutil.copyfile(encoder_dir / name, out_dir / name)
    onnx.save(export_scorer(learner), out_dir / SCORER_FILE)
    onnx.save(export_cost_model(cost_model), out_dir / COST_FILE)
    manifest: dict[str, Any] = {
        "schema_version": BUNDLE_SCHEMA_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "candidates": [
            {
                "name": name,
                "family": families.get(name, name),
                "price": prices[name].to_dict() if prices.get(name) else None,
            }
            for name in candidates
        ],
        "feature_spec": spec.to_dict(),
        "scorer": {
            "file": SCORER_FILE,
            "input": INPUT_NAME,
            "output": SCORER_OUTPUT,
            "learner": learner_name,
            "params": {k: _plain(v) for k, v in learner.get_params().items()},
            "calibration": calibration,
        },
        "cost_model": {
            "file": COST_FILE,
            "input": INPUT_NAME,
            "output": COST_OUTPUT,
            "components": [
                {
                    "candidate": c.candidate,
                    "name": c.name,
                    "price": c.price,
                    "offset": c.offset,
                    "smearing": float(s),
                }
                for c, s in zip(cost_model.components_, cost_model.smearing_, strict=True)
            ],
        },
        "policy": policy,
        "training": training,
        "files": {
            name: file_sha256(out_dir / name)
            for name in (ENCODER_FILE, TOKENIZER_FILE, SCORER_FILE, COST_FILE)
        },
    }
    manifest["router_version"] = router_version_of(manifest)
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return load_bundle(out_dir)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return value
