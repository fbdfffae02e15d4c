"""One model for all candidates, so evidence is pooled across them."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from training.learners._base import (
    CandidateInfo,
    _check_rows,
    candidate_means,
    check_candidate_info,
    check_sample_weight,
    soft_label_rows,
)

#: Added to a price in USD per million tokens before its log, so a free model
#: (price 0) gets a finite feature.
PRICE_FLOOR_PER_MTOK = 0.01


def candidate_features(info: CandidateInfo) -> tuple[np.ndarray, list[str]]:
    """Describe each candidate by identity, family and price.

    Parameters
    ----------
    info : CandidateInfo

    Returns
    -------
    features : ndarray of float32, shape (n_candidates, n_candidate_features)
        One-hot identity; one-hot family where some family has two or more
        candidates (otherwise it repeats the identity); log input and output
        price per million tokens where any price is known, unknown prices set to
        the median of the known ones, plus a ``price_unknown`` flag where some
        are unknown.
    names : list of str, length n_candidate_features
    """
    k = info.n_candidates
    blocks = [np.eye(k)]
    names = [f"candidate={name}" for name in info.names]
    families = sorted(set(info.families))
    if len(families) < k:
        blocks.append(np.array([[float(f == g) for g in families] for f in info.families]))
        names += [f"family={g}" for g in families]
    prices = np.column_stack([info.input_price, info.output_price]).reshape(k, 2)
    known = ~np.isnan(prices).any(axis=1)
    if known.any():
        logs = np.log(prices * 1e6 + PRICE_FLOOR_PER_MTOK)
        logs[~known] = np.median(logs[known], axis=0)
        blocks.append(logs)
        names += ["log_input_price", "log_output_price"]
        if not known.all():
            blocks.append((~known).astype(np.float64)[:, None])
            names.append("price_unknown")
    return np.hstack(blocks).astype(np.float32), names


class SharedLearner(BaseEstimator):
    """Gradient-boosted trees over (prompt features, candidate features) pairs.

    Every logged row becomes one example ``[x, c_k]`` where ``c_k`` describes the
    candidate that answered (`candidate_features`: identity, family, price), and
    one LightGBM model learns ``p(success | x, c_k)`` for all candidates at once.
    A tree can split on the identity of a candidate only where that candidate has
    ``min_child_samples`` rows, so a candidate with a handful of rows is predicted
    like its family and price peers until its own data says otherwise; a
    per-candidate learner gives it a constant instead. With ``candidate_info=None``
    the candidates are described by identity alone, and the model still shares
    prompt-difficulty splits across candidates.

    ``predict_proba`` scores each prompt against every candidate's feature row;
    the exported graph does the same with Expand, Concat and Reshape around the
    converted trees.

    Parameters
    ----------
    n_estimators : int, default=200
    learning_rate : float, default=0.03
    num_leaves : int, default=7
    min_child_samples : int, default=50
        Fewest rows in a leaf; a candidate with fewer rows than this cannot be
        split off on its identity and is predicted with its family and price peers.
    colsample_bytree : float, default=0.5
    reg_lambda : float, default=1.0
    random_state : int, default=0
    n_jobs : int, default=1
        LightGBM threads. One is the fastest for a few thousand rows, and far
        faster on a busy machine, where OpenMP threads spin waiting for cores.

    Attributes
    ----------
    n_features_in_ : int
    n_candidates_ : int
    candidate_features_ : ndarray of float32, shape (n_candidates, n_candidate_features)
    candidate_feature_names_ : list of str
    model_ : lightgbm.LGBMClassifier or None
        None when the rows hold a single outcome class; then ``constant_`` is used.
    constant_ : ndarray of shape (n_candidates,)
        Smoothed mean outcome per candidate.
    n_rows_ : ndarray of shape (n_candidates,)

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)).astype(np.float32)
    >>> candidate = rng.integers(0, 2, size=200)
    >>> y = (X[:, 0] > 0).astype(float)
    >>> shared = SharedLearner(n_estimators=20).fit(X, y, candidate=candidate, n_candidates=2)
    >>> shared.predict_proba(X[:4]).shape
    (4, 2)
    """

    def __init__(
        self,
        *,
        n_estimators: int = 200,
        learning_rate: float = 0.03,
        num_leaves: int = 7,
        min_child_samples: int = 50,
        colsample_bytree: float = 0.5,
        reg_lambda: float = 1.0,
        random_state: int = 0,
        n_jobs: int = 1,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.random_state = random_state
        self.n_jobs = n_jobs

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
        """Fit one model on every logged row.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
        y : ndarray of shape (n_rows,)
            Graded outcome in [0, 1], soft labels allowed.
        candidate : ndarray of int, shape (n_rows,)
        n_candidates : int
        candidate_info : CandidateInfo, optional
            Families and prices; None describes candidates by identity only.
        usage : mapping, optional
            Unused.
        sample_weight : ndarray of shape (n_rows,), optional
            Row weights, multiplied into LightGBM's soft-label weights (and the
            constants). None: every row counts once.
        """
        from lightgbm import LGBMClassifier

        X, y, candidate = _check_rows(X, y, candidate, n_candidates)
        info = check_candidate_info(candidate_info, n_candidates)
        w = check_sample_weight(sample_weight, len(y))
        self.n_features_in_ = X.shape[1]
        self.n_candidates_ = n_candidates
        self.candidate_features_, self.candidate_feature_names_ = candidate_features(info)
        self.constant_ = candidate_means(y, candidate, n_candidates, w)
        self.n_rows_ = np.bincount(candidate, minlength=n_candidates)
        hard = np.round(y)
        if hard.min(initial=1) == hard.max(initial=0):
            self.model_ = None
            return self
        rows, labels, weights = soft_label_rows(self._pairs(X, candidate), y, w)
        self.model_ = LGBMClassifier(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            verbose=-1,
        ).fit(rows, labels.astype(np.int64), sample_weight=weights)
        return self

    def _pairs(self, X: np.ndarray, candidate: np.ndarray) -> np.ndarray:
        """Rows ``[x, c_k]`` of shape ``(n_rows, n_features + n_candidate_features)``."""
        return np.hstack([X, self.candidate_features_[candidate]]).astype(np.float32)

    def predict_proba(self, X) -> np.ndarray:
        """``p_success`` of shape ``(n_prompts, n_candidates)``."""
        check_is_fitted(self, "candidate_features_")
        X = np.asarray(X, dtype=np.float32)
        n, k = len(X), self.n_candidates_
        if self.model_ is None:
            return np.tile(self.constant_, (n, 1))
        pairs = self._pairs(np.repeat(X, k, axis=0), np.tile(np.arange(k), n))
        return self.model_.predict_proba(pairs)[:, 1].reshape(n, k)
