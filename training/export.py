"""Export fitted learners and cost models to ONNX, and write the bundle.

The bundle (DESIGN.md section 5) is the only thing that crosses to serving: ONNX
graphs, the tokenizer and a manifest with hashes. No pickles: a learner the
exporter does not know is refused with a message, never serialised some other way.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.utils.validation import check_is_fitted

from features.encoder import ENCODER_FILES
from features.prices import ModelPrice
from features.spec import FeatureSpec
from serving.bundle import Bundle, file_sha256, load_bundle
from serving.manifest import (
    Candidate,
    CostComponent,
    CostGraph,
    ExcludedCandidate,
    Manifest,
    PolicyDefaults,
    ScorerGraph,
    TrainingSummary,
    write_manifest,
)
from training.cost_model import LogLinearCostModel
from training.learners import (
    AveragingLearner,
    KNNLearner,
    Learner,
    LightGBMLearner,
    LogisticLearner,
    MatrixFactorizationLearner,
    MLPLearner,
    SharedLearner,
    UsageLogisticLearner,
)
from training.learners.knn import UNOBSERVED_PENALTY

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


def _lightgbm_nodes(
    prefix: str, model, n_features: int, output: str, input_name: str = INPUT_NAME
) -> tuple[list, list]:
    """One LGBMClassifier as nodes giving its positive-class probability ``(N, 1)``.

    ``input_name`` is the ``(N, n_features)`` float tensor the trees read: the graph
    input, or an intermediate one (`_export_shared`).
    """
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    sub = convert_lightgbm(
        model,
        initial_types=[(input_name, FloatTensorType([None, n_features]))],
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


def _constant_nodes(prefix: str, p: np.ndarray, n_features: int, output: str):
    """``output (N, len(p))`` repeating the probabilities ``p`` on every row."""
    return _linear_nodes(
        prefix, np.zeros((n_features, len(p))), np.log(p / (1.0 - p)), output, sigmoid=True
    )


def _export_logistic(learner: LogisticLearner) -> onnx.ModelProto:
    nodes, inits = _linear_nodes("lr_", learner.coef_.T, learner.intercept_, SCORER_OUTPUT, True)
    return _make_model(nodes, inits, learner.n_features_in_, SCORER_OUTPUT, learner.n_candidates_)


def _export_lightgbm(learner: LightGBMLearner) -> onnx.ModelProto:
    d = learner.n_features_in_
    nodes, inits, columns = [], [], []
    for j, model in enumerate(learner.models_):
        column = f"c{j}_p"
        if model is None:
            n, i = _constant_nodes(f"c{j}_", learner.constant_[j : j + 1], d, column)
        else:
            n, i = _lightgbm_nodes(f"c{j}_", model, d, column)
        nodes += n
        inits += i
        columns.append(column)
    nodes.append(helper.make_node("Concat", columns, [SCORER_OUTPUT], axis=1))
    return _make_model(nodes, inits, d, SCORER_OUTPUT, learner.n_candidates_)


def _export_mlp(learner: MLPLearner) -> onnx.ModelProto:
    """The stacked network: ``sigmoid(relu(x W1 + b1) W2 + b2)``."""
    inits = [
        numpy_helper.from_array(learner.hidden_coef_.astype(np.float32), "mlp_W1"),
        numpy_helper.from_array(learner.hidden_intercept_.astype(np.float32), "mlp_b1"),
        numpy_helper.from_array(learner.output_coef_.astype(np.float32), "mlp_W2"),
        numpy_helper.from_array(learner.output_intercept_.astype(np.float32), "mlp_b2"),
    ]
    nodes = [
        helper.make_node("MatMul", [INPUT_NAME, "mlp_W1"], ["mlp_xw1"]),
        helper.make_node("Add", ["mlp_xw1", "mlp_b1"], ["mlp_pre"]),
        helper.make_node("Relu", ["mlp_pre"], ["mlp_hidden"]),
        helper.make_node("MatMul", ["mlp_hidden", "mlp_W2"], ["mlp_hw2"]),
        helper.make_node("Add", ["mlp_hw2", "mlp_b2"], ["mlp_logit"]),
        helper.make_node("Sigmoid", ["mlp_logit"], [SCORER_OUTPUT]),
    ]
    return _make_model(nodes, inits, learner.n_features_in_, SCORER_OUTPUT, learner.n_candidates_)


def _export_mf(learner: MatrixFactorizationLearner) -> onnx.ModelProto:
    """``sigmoid((x P + c) Q^T + b)``: the prompt embedding, then one dot per candidate."""
    inits = [
        numpy_helper.from_array(learner.projection_.astype(np.float32), "mf_P"),
        numpy_helper.from_array(learner.projection_intercept_.astype(np.float32), "mf_c"),
        numpy_helper.from_array(learner.candidate_factors_.T.astype(np.float32), "mf_Qt"),
        numpy_helper.from_array(learner.intercept_.astype(np.float32), "mf_b"),
    ]
    nodes = [
        helper.make_node("MatMul", [INPUT_NAME, "mf_P"], ["mf_xp"]),
        helper.make_node("Add", ["mf_xp", "mf_c"], ["mf_prompt"]),
        helper.make_node("MatMul", ["mf_prompt", "mf_Qt"], ["mf_pq"]),
        helper.make_node("Add", ["mf_pq", "mf_b"], ["mf_logit"]),
        helper.make_node("Sigmoid", ["mf_logit"], [SCORER_OUTPUT]),
    ]
    return _make_model(nodes, inits, learner.n_features_in_, SCORER_OUTPUT, learner.n_candidates_)


def _export_knn(learner: KNNLearner) -> onnx.ModelProto:
    """Top-k over the stored prompts, per candidate, in one graph.

    Similarities ``(N, n_stored)`` are computed in float64 from the float32 query
    and stored embeddings, as ``predict_proba`` does, so near-ties rank alike. They
    are broadcast to ``(N, K, n_stored)`` with a penalty on prompts a candidate
    never answered and cut with TopK; the outcomes and observed flags of the chosen
    prompts are gathered from flat ``(K * n_stored,)`` tables at
    ``k * n_stored + index``.
    """
    k, u = learner.outcome_.shape
    e = learner.embeddings_.shape[1]
    arrays = {
        "knn_start": np.array([0], dtype=np.int64),
        "knn_end": np.array([e], dtype=np.int64),
        "knn_axis": np.array([1], dtype=np.int64),
        "knn_Et": learner.embeddings_.T.astype(np.float32),
        "knn_penalty": np.where(learner.observed_, 0.0, UNOBSERVED_PENALTY)[None],
        "knn_k": np.array([learner.n_neighbors_], dtype=np.int64),
        "knn_offset": (np.arange(k, dtype=np.int64) * u)[None, :, None],
        "knn_outcome": learner.outcome_.reshape(-1).astype(np.float64),
        "knn_observed": learner.observed_.reshape(-1).astype(np.float64),
        "knn_last": np.array([-1], dtype=np.int64),
        "knn_one": np.array([1], dtype=np.int64),
        "knn_prior": (learner.prior_weight * learner.prior_)[None].astype(np.float64),
        "knn_weight": np.array(learner.prior_weight, dtype=np.float64),
    }
    inits = [numpy_helper.from_array(np.ascontiguousarray(v), name) for name, v in arrays.items()]
    nodes = [
        helper.make_node(
            "Slice", [INPUT_NAME, "knn_start", "knn_end", "knn_axis"], ["knn_embedding"]
        ),
        helper.make_node("Cast", ["knn_embedding"], ["knn_query"], to=TensorProto.DOUBLE),
        helper.make_node("Cast", ["knn_Et"], ["knn_Et64"], to=TensorProto.DOUBLE),
        helper.make_node("MatMul", ["knn_query", "knn_Et64"], ["knn_sim"]),
        helper.make_node("Unsqueeze", ["knn_sim", "knn_one"], ["knn_sim3"]),
        helper.make_node("Add", ["knn_sim3", "knn_penalty"], ["knn_score"]),
        helper.make_node(
            "TopK", ["knn_score", "knn_k"], ["knn_top", "knn_index"], axis=-1, sorted=1
        ),
        helper.make_node("Add", ["knn_index", "knn_offset"], ["knn_flat"]),
        helper.make_node("Gather", ["knn_outcome", "knn_flat"], ["knn_hit"], axis=0),
        helper.make_node("Gather", ["knn_observed", "knn_flat"], ["knn_seen"], axis=0),
        helper.make_node("ReduceSum", ["knn_hit", "knn_last"], ["knn_hits"], keepdims=0),
        helper.make_node("ReduceSum", ["knn_seen", "knn_last"], ["knn_n"], keepdims=0),
        helper.make_node("Add", ["knn_hits", "knn_prior"], ["knn_num"]),
        helper.make_node("Add", ["knn_n", "knn_weight"], ["knn_den"]),
        helper.make_node("Div", ["knn_num", "knn_den"], ["knn_p"]),
        helper.make_node("Cast", ["knn_p"], [SCORER_OUTPUT], to=TensorProto.FLOAT),
    ]
    return _make_model(nodes, inits, learner.n_features_in_, SCORER_OUTPUT, k)


def _export_shared(learner: SharedLearner) -> onnx.ModelProto:
    """Pair every prompt with every candidate's feature row, score, fold to ``(N, K)``.

    ``features (N, d)`` is expanded to ``(N, K, d)``, the constant candidate block
    ``(K, m)`` to ``(N, K, m)``; both are concatenated and flattened to
    ``(N * K, d + m)`` rows in the order ``predict_proba`` builds them, scored by
    the converted LightGBM model, and reshaped to ``(N, K)``.
    """
    d, k = learner.n_features_in_, learner.n_candidates_
    if learner.model_ is None:
        nodes, inits = _constant_nodes("shared_", learner.constant_, d, SCORER_OUTPUT)
        return _make_model(nodes, inits, d, SCORER_OUTPUT, k)
    block = learner.candidate_features_
    m = block.shape[1]
    rows = "shared_rows"
    arrays = {
        "shared_one": np.array([1], dtype=np.int64),
        "shared_tile": np.array([1, k, 1], dtype=np.int64),
        "shared_block": block[None].astype(np.float32),
        "shared_km": np.array([k, m], dtype=np.int64),
        "shared_flat": np.array([-1, d + m], dtype=np.int64),
        "shared_out": np.array([-1, k], dtype=np.int64),
    }
    inits = [numpy_helper.from_array(v, name) for name, v in arrays.items()]
    nodes = [
        helper.make_node("Unsqueeze", [INPUT_NAME, "shared_one"], ["shared_x3"]),
        helper.make_node("Expand", ["shared_x3", "shared_tile"], ["shared_xk"]),
        # Shape (N, K, m) for the candidate block: N from the input, then K and m.
        helper.make_node("Shape", [INPUT_NAME], ["shared_xshape"], start=0, end=1),
        helper.make_node("Concat", ["shared_xshape", "shared_km"], ["shared_cshape"], axis=0),
        helper.make_node("Expand", ["shared_block", "shared_cshape"], ["shared_ck"]),
        helper.make_node("Concat", ["shared_xk", "shared_ck"], ["shared_pairs"], axis=2),
        helper.make_node("Reshape", ["shared_pairs", "shared_flat"], [rows]),
    ]
    tree_nodes, tree_inits = _lightgbm_nodes(
        "shared_trees_", learner.model_, d + m, "shared_p", input_name=rows
    )
    nodes += tree_nodes
    inits += tree_inits
    nodes.append(helper.make_node("Reshape", ["shared_p", "shared_out"], [SCORER_OUTPUT]))
    return _make_model(nodes, inits, d, SCORER_OUTPUT, k)


def _export_ensemble(learner: AveragingLearner) -> onnx.ModelProto:
    """Every member's graph side by side on the shared input, then their Mean."""
    nodes, inits, outputs = [], [], []
    for i, member in enumerate(learner.members_):
        graph = onnx.compose.add_prefix(export_scorer(member), f"m{i}_", rename_inputs=False)
        nodes += graph.graph.node
        inits += graph.graph.initializer
        outputs.append(f"m{i}_{SCORER_OUTPUT}")
    nodes.append(helper.make_node("Mean", outputs, [SCORER_OUTPUT]))
    return _make_model(nodes, inits, learner.n_features_in_, SCORER_OUTPUT, learner.n_candidates_)


#: Exporter of each learner class; `export_scorer` refuses anything else.
SCORER_EXPORTERS: dict[type, Callable[[Any], onnx.ModelProto]] = {
    LogisticLearner: _export_logistic,
    LightGBMLearner: _export_lightgbm,
    KNNLearner: _export_knn,
    MLPLearner: _export_mlp,
    MatrixFactorizationLearner: _export_mf,
    SharedLearner: _export_shared,
    AveragingLearner: _export_ensemble,
    UsageLogisticLearner: _export_logistic,
}


def export_scorer(learner: Learner) -> onnx.ModelProto:
    """ONNX graph ``features (N, n_features) -> p_success (N, n_candidates)``.

    Every registered learner has an exporter in `SCORER_EXPORTERS`; each writes
    plain ONNX (ai.onnx and ai.onnx.ml operators), never a pickle.

    Raises
    ------
    TypeError
        If the learner has no ONNX export, naming the ones that do.
    sklearn.exceptions.NotFittedError
        If it has one but is not fitted.
    """
    for cls, exporter in SCORER_EXPORTERS.items():
        if isinstance(learner, cls):
            check_is_fitted(learner)
            return exporter(learner)
    exportable = ", ".join(cls.__name__ for cls in SCORER_EXPORTERS)
    raise TypeError(
        f"{type(learner).__name__} has no ONNX export; exportable learners: {exportable}. "
        "Register an exporter in training.export.SCORER_EXPORTERS or pick one of these."
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
    learner: Learner,
    learner_name: str,
    cost_model: LogLinearCostModel,
    policy: PolicyDefaults,
    training: TrainingSummary,
    calibration: dict[str, Any] | None = None,
    excluded_candidates: Sequence[ExcludedCandidate] = (),
) -> Bundle:
    """Write a complete, hashed bundle folder and return it loaded and verified.

    The manifest is written through `serving.manifest`, the module serving reads
    it with; ``excluded_candidates`` are the models of the logs left out
    (`training.dataset.screen_candidates`).
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    encoder_dir = Path(encoder_dir)
    encoder_files = ENCODER_FILES[spec.encoder]
    for name in encoder_files:
        shutil.copyfile(encoder_dir / name, out_dir / name)
    onnx.save(export_scorer(learner), out_dir / SCORER_FILE)
    onnx.save(export_cost_model(cost_model), out_dir / COST_FILE)
    manifest = Manifest(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        candidates=tuple(
            Candidate(name=name, family=families.get(name, name), price=prices.get(name))
            for name in candidates
        ),
        feature_spec=spec,
        scorer=ScorerGraph(
            file=SCORER_FILE,
            input=INPUT_NAME,
            output=SCORER_OUTPUT,
            learner=learner_name,
            params={k: _plain(v) for k, v in learner.get_params().items()},
            calibration=calibration,
        ),
        cost_model=CostGraph(
            file=COST_FILE,
            input=INPUT_NAME,
            output=COST_OUTPUT,
            components=tuple(
                CostComponent(
                    candidate=c.candidate,
                    name=c.name,
                    price=c.price,
                    offset=c.offset,
                    smearing=float(s),
                )
                for c, s in zip(cost_model.components_, cost_model.smearing_, strict=True)
            ),
        ),
        policy=policy,
        training=training,
        files={
            name: file_sha256(out_dir / name) for name in (*encoder_files, SCORER_FILE, COST_FILE)
        },
        excluded_candidates=tuple(excluded_candidates),
    )
    write_manifest(out_dir, manifest)
    return load_bundle(out_dir)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return value
