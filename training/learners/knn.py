"""RouterBench's kNN router: a candidate's success rate among similar past prompts."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from training.learners._base import (
    _check_rows,
    candidate_means,
    check_candidate_info,
    check_embedding_dim,
    check_sample_weight,
)

#: Added to the similarity of a stored prompt the candidate never answered, so it
#: ranks below every answered one (cosine similarities lie in [-1, 1]).
UNOBSERVED_PENALTY = -10.0


class KNNLearner(BaseEstimator):
    """Cosine k-nearest-neighbour success rates, one per candidate.

    For each candidate, ``p`` is the mean outcome of the ``n_neighbors`` training
    prompts most similar to the query *among those the candidate answered*,
    shrunk toward the candidate's overall rate by ``prior_weight`` pseudo-prompts::

        p_k(x) = (sum of neighbour outcomes + prior_weight * m_k)
                 / (n neighbours + prior_weight)

    Looking only at answered prompts is what lets it learn from production logs,
    where each prompt has the outcome of the one model that was called. A prompt
    logged several times for one candidate counts once, with its mean outcome.

    With ``sample_weight`` (importance weights of a biased log) a neighbour counts
    by the mean weight of its rows, in the outcome sum and in the count::

        p_k(x) = (sum of w_i * outcome_i + prior_weight * m_k)
                 / (sum of w_i + prior_weight)

    so ``observed_`` holds each stored prompt's weight (float) instead of a flag
    and ``outcome_`` its weighted outcome; the exported graph, which sums both,
    computes the same. The neighbours themselves are still the nearest answered
    prompts: a weight changes how much a neighbour counts, not who is one.

    Similarity is computed on the sentence embedding only (the first
    ``embedding_dim`` features): the text statistics after it are on other scales
    and would swamp the cosine. Similarities are computed in float64, here and in
    the exported graph, so near-ties rank the same in both.

    Parameters
    ----------
    n_neighbors : int, default=40
        Neighbours per candidate (fewer when it answered fewer prompts).
    prior_weight : float, default=2.0
        Strength of the shrinkage toward the candidate's smoothed mean outcome,
        in prompts; > 0 keeps every prediction strictly inside (0, 1).
    embedding_dim : int, default=384
        Leading feature columns holding the embedding (`FeatureSpec.embedding_dim`).

    Attributes
    ----------
    n_features_in_ : int
    n_candidates_ : int
    embeddings_ : ndarray of float32, shape (n_stored, embedding_dim)
        Unit-norm embeddings of the distinct training prompts.
    outcome_ : ndarray of shape (n_candidates, n_stored)
        Mean outcome of each candidate on each stored prompt (0 where unobserved);
        with ``sample_weight``, the mean of weight x outcome over its rows.
    observed_ : ndarray of bool, shape (n_candidates, n_stored)
        Whether the candidate answered the prompt; with ``sample_weight``, float:
        the mean weight of its rows (0 where unobserved).
    prior_ : ndarray of shape (n_candidates,)
        Smoothed mean outcome of each candidate, the value shrunk toward.
    n_neighbors_ : int
        ``min(n_neighbors, n_stored)``, the width of the top-k.

    See Also
    --------
    training.learners.MLPLearner : RouterBench's other baseline.

    References
    ----------
    .. [1] Hu et al., "RouterBench: A Benchmark for Multi-LLM Routing System",
       arXiv:2403.12031, 2024.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    >>> knn = KNNLearner(n_neighbors=1, prior_weight=1.0, embedding_dim=2).fit(
    ...     X, np.array([1.0, 0.0]), candidate=np.array([0, 0]), n_candidates=1
    ... )
    >>> knn.predict_proba(X).round(2).tolist()
    [[0.75], [0.25]]
    """

    def __init__(
        self, *, n_neighbors: int = 40, prior_weight: float = 2.0, embedding_dim: int = 384
    ):
        self.n_neighbors = n_neighbors
        self.prior_weight = prior_weight
        self.embedding_dim = embedding_dim

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
        """Store the training prompts and each candidate's outcomes on them.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
        y : ndarray of shape (n_rows,)
            Graded outcome in [0, 1].
        candidate : ndarray of int, shape (n_rows,)
        n_candidates : int
        candidate_info : CandidateInfo, optional
            Checked but unused.
        usage : mapping, optional
            Unused.
        sample_weight : ndarray of shape (n_rows,), optional
            Row weights: how much each stored prompt counts among the neighbours
            and in the prior (see the class docstring). None: once each.
        """
        X, y, candidate = _check_rows(X, y, candidate, n_candidates)
        check_candidate_info(candidate_info, n_candidates)
        w = check_sample_weight(sample_weight, len(y))
        if not (isinstance(self.n_neighbors, int | np.integer) and self.n_neighbors >= 1):
            raise ValueError(f"n_neighbors must be an int >= 1, got {self.n_neighbors!r}.")
        if not self.prior_weight > 0:
            raise ValueError(f"prior_weight must be > 0, got {self.prior_weight!r}.")
        check_embedding_dim(self.embedding_dim, X.shape[1])
        emb = X[:, : self.embedding_dim].astype(np.float64)
        if len(emb):
            stored, prompt = np.unique(emb, axis=0, return_inverse=True)
            prompt = prompt.reshape(-1)
        else:  # no rows: one dummy prompt nobody answered, so the graph stays valid
            stored, prompt = np.zeros((1, self.embedding_dim)), np.zeros(0, dtype=np.int64)
        norms = np.linalg.norm(stored, axis=1, keepdims=True)
        total = np.zeros((n_candidates, len(stored)))
        count = np.zeros_like(total)
        np.add.at(total, (candidate, prompt), y)
        np.add.at(count, (candidate, prompt), 1.0)
        self.n_features_in_ = X.shape[1]
        self.n_candidates_ = n_candidates
        # float32 halves the bundle; both predict paths widen it to float64 exactly.
        self.embeddings_ = (stored / np.maximum(norms, 1e-12)).astype(np.float32)
        self.observed_ = count > 0
        self.outcome_ = np.where(self.observed_, total / np.maximum(count, 1.0), 0.0)
        if w is not None:
            # Per stored prompt: weighted outcome sum and weight, both per row, so
            # neighbours sum to the weighted mean of their rows.
            mass, weighted = np.zeros_like(total), np.zeros_like(total)
            np.add.at(mass, (candidate, prompt), w)
            np.add.at(weighted, (candidate, prompt), w * y)
            self.outcome_ = weighted / np.maximum(count, 1.0)
            self.observed_ = mass / np.maximum(count, 1.0)
        self.prior_ = candidate_means(y, candidate, n_candidates, w)
        self.n_neighbors_ = int(min(self.n_neighbors, len(stored)))
        return self

    def predict_proba(self, X, *, chunk: int = 512) -> np.ndarray:
        """``p_success`` of shape ``(n_prompts, n_candidates)``."""
        check_is_fitted(self, "embeddings_")
        X = np.asarray(X, dtype=np.float32)
        penalty = np.where(self.observed_, 0.0, UNOBSERVED_PENALTY)
        out = np.empty((len(X), self.n_candidates_))
        k = np.arange(self.n_candidates_)[None, :, None]
        for start in range(0, len(X), chunk):
            q = X[start : start + chunk, : self.embedding_dim].astype(np.float64)
            scores = (q @ self.embeddings_.T.astype(np.float64))[:, None, :] + penalty[None]
            # Stable sort of the negated scores: equal scores keep the lower index
            # first, as ONNX TopK does.
            top = np.argsort(-scores, axis=2, kind="stable")[:, :, : self.n_neighbors_]
            hits = self.outcome_[k, top].sum(axis=2)
            n = self.observed_[k, top].sum(axis=2)
            out[start : start + chunk] = (hits + self.prior_weight * self.prior_) / (
                n + self.prior_weight
            )
        return out
