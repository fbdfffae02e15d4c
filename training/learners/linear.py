"""Per-candidate logistic regression: the simplest learner, and RouterBench-style
baselines' linear cousin.
"""

from __future__ import annotations

import numpy as np

from training.learners._base import (
    DEFAULT_MIN_ROWS,
    PerCandidateLearner,
    logit,
    sigmoid,
    soft_label_rows,
    standardizer,
)


class LogisticLearner(PerCandidateLearner):
    """L2 logistic regression per candidate on standardised features.

    The standardisation is folded into the weights after fitting, so the exported
    graph is a single MatMul + Add + Sigmoid on raw features.

    Parameters
    ----------
    C : float, default=0.1
        Inverse L2 strength (scikit-learn's convention).
    C_meta : float, optional
        Inverse L2 strength of the columns after the embedding (text statistics and
        request context); None: ``C``. A handful of task and team columns carry
        more of the routing signal than hundreds of embedding columns, so they
        bear a weaker penalty (`training.train.DEFAULT_LEARNERS`).
    embedding_dim : int, default=384
        Number of leading embedding columns (``C`` applies to them); set from the
        feature spec by `training.train.learners_for_spec`.
    min_rows : int, default=20

    Attributes
    ----------
    coef_ : ndarray of shape (n_candidates, n_features)
        Weights on raw features (zero for constant candidates).
    intercept_ : ndarray of shape (n_candidates,)
    """

    def __init__(
        self,
        *,
        C: float = 0.1,
        C_meta: float | None = None,
        embedding_dim: int = 384,
        min_rows: int = DEFAULT_MIN_ROWS,
    ):
        self.C = C
        self.C_meta = C_meta
        self.embedding_dim = embedding_dim
        self.min_rows = min_rows

    def _fit_one(self, X, y, sample_weight):
        from sklearn.linear_model import LogisticRegression

        mean, scale = standardizer(X)
        # A column multiplied by a has its weight's penalty divided by a**2: one
        # solver, two strengths.
        stretch = np.ones(X.shape[1])
        if self.C_meta is not None:
            stretch[self.embedding_dim :] = np.sqrt(self.C_meta / self.C)
        Xs, labels, weights = soft_label_rows((X - mean) / scale * stretch, y, sample_weight)
        model = LogisticRegression(C=self.C, max_iter=2000).fit(Xs, labels, sample_weight=weights)
        coef = model.coef_[0] * stretch / scale
        return coef, float(model.intercept_[0] - coef @ mean)

    def _predict_one(self, model, X):
        coef, intercept = model
        return sigmoid(X.astype(np.float64) @ coef + intercept)

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
        """Fit on logged rows; see `PerCandidateLearner.fit`."""
        super().fit(
            X,
            y,
            candidate=candidate,
            n_candidates=n_candidates,
            candidate_info=candidate_info,
            sample_weight=sample_weight,
        )
        self.coef_ = np.zeros((n_candidates, self.n_features_in_))
        self.intercept_ = logit(self.constant_)
        for k, model in enumerate(self.models_):
            if model is not None:
                self.coef_[k], self.intercept_[k] = model
        return self
