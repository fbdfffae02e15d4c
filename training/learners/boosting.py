"""Per-candidate gradient-boosted trees."""

from __future__ import annotations

import numpy as np

from training.learners._base import DEFAULT_MIN_ROWS, PerCandidateLearner, soft_label_rows


class LightGBMLearner(PerCandidateLearner):
    """Gradient-boosted trees per candidate (LightGBM).

    Parameters
    ----------
    n_estimators : int, default=200
    learning_rate : float, default=0.05
    num_leaves : int, default=15
    min_child_samples : int, default=20
    colsample_bytree : float, default=0.5
    reg_lambda : float, default=1.0
    min_rows : int, default=20
    random_state : int, default=0
    n_jobs : int, default=1
        LightGBM threads. One is the fastest for a few thousand rows, and far
        faster on a busy machine, where OpenMP threads spin waiting for cores.
    """

    def __init__(
        self,
        *,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 20,
        colsample_bytree: float = 0.5,
        reg_lambda: float = 1.0,
        min_rows: int = DEFAULT_MIN_ROWS,
        random_state: int = 0,
        n_jobs: int = 1,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.min_rows = min_rows
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _fit_one(self, X, y, sample_weight):
        from lightgbm import LGBMClassifier

        Xs, labels, weights = soft_label_rows(X, y, sample_weight)
        model = LGBMClassifier(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            verbose=-1,
        )
        return model.fit(Xs, labels.astype(np.int64), sample_weight=weights)

    def _predict_one(self, model, X):
        return model.predict_proba(X)[:, 1]
