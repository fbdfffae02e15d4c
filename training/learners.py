"""Success-probability learners over prompt x candidate.

Every learner is a scikit-learn style estimator: hyperparameters are keyword-only
``__init__`` arguments stored as given, ``fit`` does the work and returns ``self``,
learned state ends in ``_``, and ``predict_proba`` gives ``p_success`` of shape
``(n_prompts, n_candidates)``. The exporter (`training.export`) turns a fitted
learner into one ONNX scorer graph.

Training rows are logged calls: a prompt's features, the candidate that answered
and its graded outcome in [0, 1]. Fractional outcomes (judge scores) are fit as
soft labels: each row counts as a success with weight ``y`` and a failure with
weight ``1 - y``, which is exactly the cross-entropy of a soft label.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

#: Below this many rows (or with a single outcome class) a candidate gets its
#: smoothed mean outcome instead of a fitted model.
DEFAULT_MIN_ROWS = 20


def _check_rows(
    X: np.ndarray, y: np.ndarray, candidate: np.ndarray, n_candidates: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.int64)
    if X.ndim != 2 or len(X) != len(y) or len(y) != len(candidate):
        raise ValueError(
            f"Expected X (n_rows, n_features), y (n_rows,) and candidate (n_rows,), got "
            f"{X.shape}, {y.shape} and {candidate.shape}."
        )
    if np.isnan(y).any() or (y < 0).any() or (y > 1).any():
        raise ValueError("Outcomes y must be in [0, 1] with no NaN; drop pending rows first.")
    if len(candidate) and (candidate.min() < 0 or candidate.max() >= n_candidates):
        raise ValueError(f"candidate indices must be in [0, {n_candidates}).")
    return X, y, candidate


def soft_label_rows(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expand soft labels into weighted hard rows; zero-weight rows are dropped."""
    X2 = np.vstack([X, X])
    labels = np.concatenate([np.ones(len(y)), np.zeros(len(y))])
    weights = np.concatenate([y, 1.0 - y])
    keep = weights > 0
    return X2[keep], labels[keep], weights[keep]


def smoothed_mean(y: np.ndarray) -> float:
    """Mean outcome with a Beta(1, 1) prior, so 0/3 is not a certain failure."""
    return float((y.sum() + 1.0) / (len(y) + 2.0))


class PerCandidateLearner(BaseEstimator):
    """Shared fitting loop: one model per candidate, a constant where data is thin.

    Attributes
    ----------
    n_candidates_ : int
    models_ : list of (fitted model or None), length n_candidates
        None where the candidate is predicted by its constant.
    constant_ : ndarray of shape (n_candidates,)
        Smoothed mean outcome per candidate (the fallback prediction).
    n_rows_ : ndarray of shape (n_candidates,)
    """

    min_rows: int

    def _fit_one(self, X: np.ndarray, y: np.ndarray):  # pragma: no cover - abstract
        raise NotImplementedError

    def _predict_one(self, model, X: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def fit(self, X, y, *, candidate, n_candidates: int):
        """Fit on logged rows.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
            Features of the prompt each row answered.
        y : ndarray of shape (n_rows,)
            Graded outcome in [0, 1].
        candidate : ndarray of int, shape (n_rows,)
            Index of the candidate that answered.
        n_candidates : int
        """
        X, y, candidate = _check_rows(X, y, candidate, n_candidates)
        prior = smoothed_mean(y) if len(y) else 0.5
        self.n_candidates_ = n_candidates
        self.n_features_in_ = X.shape[1]
        self.models_ = []
        self.constant_ = np.full(n_candidates, prior)
        self.n_rows_ = np.bincount(candidate, minlength=n_candidates)
        for k in range(n_candidates):
            rows = candidate == k
            yk = y[rows]
            if rows.any():
                self.constant_[k] = smoothed_mean(yk)
            hard = np.round(yk)
            if rows.sum() < self.min_rows or hard.min(initial=1) == hard.max(initial=0):
                self.models_.append(None)
                continue
            self.models_.append(self._fit_one(X[rows], yk))
        return self

    def predict_proba(self, X) -> np.ndarray:
        """``p_success`` of shape ``(n_prompts, n_candidates)``."""
        check_is_fitted(self, "models_")
        X = np.asarray(X, dtype=np.float32)
        out = np.empty((len(X), self.n_candidates_))
        for k, model in enumerate(self.models_):
            out[:, k] = self.constant_[k] if model is None else self._predict_one(model, X)
        return out


class LogisticLearner(PerCandidateLearner):
    """L2 logistic regression per candidate on standardised features.

    The standardisation is folded into the weights after fitting, so the exported
    graph is a single MatMul + Add + Sigmoid on raw features.

    Parameters
    ----------
    C : float, default=0.1
        Inverse L2 strength (scikit-learn's convention).
    min_rows : int, default=20

    Attributes
    ----------
    coef_ : ndarray of shape (n_candidates, n_features)
        Weights on raw features (zero for constant candidates).
    intercept_ : ndarray of shape (n_candidates,)
    """

    def __init__(self, *, C: float = 0.1, min_rows: int = DEFAULT_MIN_ROWS):
        self.C = C
        self.min_rows = min_rows

    def _fit_one(self, X, y):
        from sklearn.linear_model import LogisticRegression

        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        scale[scale < 1e-6] = 1.0
        Xs, labels, weights = soft_label_rows((X - mean) / scale, y)
        model = LogisticRegression(C=self.C, max_iter=2000).fit(Xs, labels, sample_weight=weights)
        coef = model.coef_[0] / scale
        return coef, float(model.intercept_[0] - coef @ mean)

    def _predict_one(self, model, X):
        coef, intercept = model
        return 1.0 / (1.0 + np.exp(-(X.astype(np.float64) @ coef + intercept)))

    def fit(self, X, y, *, candidate, n_candidates: int):
        super().fit(X, y, candidate=candidate, n_candidates=n_candidates)
        self.coef_ = np.zeros((n_candidates, self.n_features_in_))
        self.intercept_ = np.log(self.constant_ / (1.0 - self.constant_))
        for k, model in enumerate(self.models_):
            if model is not None:
                self.coef_[k], self.intercept_[k] = model
        return self


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
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.min_rows = min_rows
        self.random_state = random_state

    def _fit_one(self, X, y):
        from lightgbm import LGBMClassifier

        Xs, labels, weights = soft_label_rows(X, y)
        model = LGBMClassifier(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            random_state=self.random_state,
            n_jobs=2,
            verbose=-1,
        )
        return model.fit(Xs, labels.astype(np.int64), sample_weight=weights)

    def _predict_one(self, model, X):
        return model.predict_proba(X)[:, 1]


#: Registered learners by name; `train --learner` and selection draw from here.
LEARNERS: dict[str, type[PerCandidateLearner]] = {
    "logistic": LogisticLearner,
    "lightgbm": LightGBMLearner,
}


def make_learner(name: str, **params) -> PerCandidateLearner:
    """Instantiate a registered learner; unknown names list the available ones."""
    try:
        cls = LEARNERS[name]
    except KeyError:
        raise ValueError(f"Unknown learner {name!r}; available: {sorted(LEARNERS)}.") from None
    return cls(**params)
