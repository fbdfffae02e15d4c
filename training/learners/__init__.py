"""Success-probability learners over prompt x candidate.

Every learner is a scikit-learn style estimator: hyperparameters are keyword-only
``__init__`` arguments stored as given, ``fit`` does the work and returns ``self``,
learned state ends in ``_``, and ``predict_proba`` gives ``p_success`` of shape
``(n_prompts, n_candidates)``. The exporter (`training.export`) turns a fitted
learner into one ONNX scorer graph. Learners only score; deciding is the policy's
job (`serving.policy`).

Training rows are logged calls: a prompt's features, the candidate that answered
and its graded outcome in [0, 1]. Every learner fits on the rows it is given, so a
prompt may have outcomes for all candidates (a benchmark) or for one (production
logs). Fractional outcomes (judge scores) are fit as soft labels: each row counts
as a success with weight ``y`` and a failure with weight ``1 - y``, which is
exactly the cross-entropy of a soft label.

``fit(X, y, *, candidate, n_candidates, candidate_info=None, usage=None)`` is the
same for all; ``candidate_info`` (`CandidateInfo`: family and price of each
candidate) is used by `SharedLearner`, and ``usage`` (each row's logged token
counts and cost, `training.selection.units`) by `UsageLogisticLearner`; the
others ignore them.

Registered learners (`LEARNERS`):

- ``logistic``, `LogisticLearner`: L2 logistic regression per candidate.
- ``lightgbm``, `LightGBMLearner`: boosted trees per candidate.
- ``knn``, `KNNLearner`: cosine kNN success rate (RouterBench's baseline).
- ``mlp``, `MLPLearner`: one-hidden-layer network per candidate (RouterBench's
  baseline).
- ``mf``, `MatrixFactorizationLearner`: bilinear prompt x candidate embeddings
  (RouteLLM's matrix factorisation, for N candidates).
- ``shared``, `SharedLearner`: one model over prompt and candidate features
  (identity, family, price), pooling evidence across candidates.
- ``usage``, `UsageLogisticLearner`: logistic regression on each candidate's
  predicted usage (a projection of the prompt supervised by logged token counts).
- ``ensemble``, `AveragingLearner`: the mean of several of the above.

Importing this package imports neither torch nor LightGBM; learners import what
they need in ``fit``.
"""

from __future__ import annotations

from training.learners._base import (
    DEFAULT_MIN_ROWS,
    CandidateInfo,
    Learner,
    PerCandidateLearner,
    smoothed_mean,
    soft_label_rows,
)
from training.learners.boosting import LightGBMLearner
from training.learners.ensemble import AveragingLearner
from training.learners.knn import KNNLearner
from training.learners.linear import LogisticLearner
from training.learners.members import MEMBER_LEARNERS
from training.learners.mf import MatrixFactorizationLearner
from training.learners.mlp import MLPLearner
from training.learners.shared import SharedLearner, candidate_features
from training.learners.usage import UsageLogisticLearner

__all__ = [
    "DEFAULT_MIN_ROWS",
    "LEARNERS",
    "AveragingLearner",
    "CandidateInfo",
    "KNNLearner",
    "Learner",
    "LightGBMLearner",
    "LogisticLearner",
    "MLPLearner",
    "MatrixFactorizationLearner",
    "PerCandidateLearner",
    "SharedLearner",
    "UsageLogisticLearner",
    "candidate_features",
    "make_learner",
    "smoothed_mean",
    "soft_label_rows",
]

#: Registered learners by name; `train --learner` and selection draw from here.
LEARNERS: dict[str, type[Learner]] = {**MEMBER_LEARNERS, "ensemble": AveragingLearner}


def make_learner(name: str, **params) -> Learner:
    """Instantiate a registered learner; unknown names list the available ones."""
    try:
        cls = LEARNERS[name]
    except KeyError:
        raise ValueError(f"Unknown learner {name!r}; available: {sorted(LEARNERS)}.") from None
    return cls(**params)
