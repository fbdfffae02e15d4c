"""The learners an ensemble can average: every registered learner but the ensemble.

Kept apart from `training.learners.LEARNERS` so that `AveragingLearner` builds its
members without importing the package that registers it (ensembles do not nest).
"""

from __future__ import annotations

from training.learners._base import Learner
from training.learners.boosting import LightGBMLearner
from training.learners.knn import KNNLearner
from training.learners.linear import LogisticLearner
from training.learners.mf import MatrixFactorizationLearner
from training.learners.mlp import MLPLearner
from training.learners.shared import SharedLearner
from training.learners.usage import UsageLogisticLearner

#: Learners by registered name, the ensemble excepted.
MEMBER_LEARNERS: dict[str, type[Learner]] = {
    "logistic": LogisticLearner,
    "lightgbm": LightGBMLearner,
    "knn": KNNLearner,
    "mlp": MLPLearner,
    "mf": MatrixFactorizationLearner,
    "shared": SharedLearner,
    "usage": UsageLogisticLearner,
}


def make_member(name: str, **params) -> Learner:
    """Instantiate a member learner; unknown names list the available ones."""
    try:
        cls = MEMBER_LEARNERS[name]
    except KeyError:
        raise ValueError(
            f"Unknown member learner {name!r}; available: {sorted(MEMBER_LEARNERS)}."
        ) from None
    return cls(**params)
