"""The mean of several learners' probabilities: averaging instead of picking one."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from training.learners._base import _check_rows, check_candidate_info
from training.learners.members import make_member

#: Members when none are given: one setting of each kind of learner, those that do
#: well on few hundred prompts.
DEFAULT_MEMBERS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("logistic", {"C": 0.0003}),
    ("knn", {}),
    ("mlp", {}),
    ("mf", {}),
    ("shared", {}),
)


class AveragingLearner(BaseEstimator):
    """Mean ``p_success`` of member learners fit on the same rows.

    Why average: on a few hundred prompts the learners' routing quality differs by
    less than the noise of cross-validation, so picking the one with the best
    cross-validated area picks nearly at random among them, while their mean has
    lower variance than any one of them. Members that err on different prompts (a
    learner of the rows' usage and kNN on the text, ``usage+knn``, which ``train
    --learner ensemble`` picks) gain most; the measurements are in README
    "Benchmarks" and ``benchmarks/learners.py``. The five default members are a
    starting point for notebooks (`training.train.TrainConfig.learners`). When the
    members are settings of the grid being cross-validated, the ensemble's
    out-of-fold predictions are the mean of theirs, so selection gets them without
    a second fit (`training.selection.ensembles_of_configs`).

    Parameters
    ----------
    members : sequence of (name, params), default=`DEFAULT_MEMBERS`
        Registered learner names (`training.learners.LEARNERS`, not ``ensemble``)
        and their keyword arguments. The default members are settings of
        ``train``'s default grid (`training.train.DEFAULT_LEARNERS`).

    Attributes
    ----------
    members_ : list of fitted learners
    n_features_in_ : int
    n_candidates_ : int
    """

    def __init__(self, *, members: tuple[tuple[str, dict[str, Any]], ...] = DEFAULT_MEMBERS):
        self.members = members

    def fit(
        self,
        X,
        y,
        *,
        candidate,
        n_candidates: int,
        candidate_info=None,
        usage=None,
        sample_weight=None,
    ):
        """Fit every member on the same logged rows and weights (see `training.learners`)."""
        X, y, candidate = _check_rows(X, y, candidate, n_candidates)
        check_candidate_info(candidate_info, n_candidates)
        if not self.members:
            raise ValueError("An ensemble needs at least one member learner.")
        if any(name == "ensemble" for name, _ in self.members):
            raise ValueError("Ensembles do not nest: list the member learners themselves.")
        self.members_ = [
            make_member(name, **params).fit(
                X,
                y,
                candidate=candidate,
                n_candidates=n_candidates,
                candidate_info=candidate_info,
                usage=usage,
                sample_weight=sample_weight,
            )
            for name, params in self.members
        ]
        self.n_features_in_ = X.shape[1]
        self.n_candidates_ = n_candidates
        return self

    def predict_proba(self, X) -> np.ndarray:
        """``p_success`` of shape ``(n_prompts, n_candidates)``: the members' mean."""
        check_is_fitted(self, "members_")
        return np.mean([member.predict_proba(X) for member in self.members_], axis=0)
