"""RouteLLM's matrix-factorisation router, generalised from a model pair to N models."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from training.learners._base import (
    _check_rows,
    candidate_means,
    check_candidate_info,
    check_sample_weight,
    logit,
    prompt_groups,
    sigmoid,
    standardizer,
)
from training.learners._torch import TorchFitConfig, check_config, train_early_stopped


class MatrixFactorizationLearner(BaseEstimator):
    """Bilinear prompt x candidate model trained on the logged cells only.

    A prompt is projected to ``n_factors`` dimensions and each candidate has a
    learned embedding of the same size::

        logit p(x, k) = <P x_std, q_k> + b_k

    where ``x_std`` is the standardised feature vector. RouteLLM's MF router scores
    ``w . (v_k * (P x))``, which is this form with ``q_k = w * v_k``; there it is
    trained on pairwise preferences between two models, here on each candidate's
    own graded outcome, so any number of candidates share the prompt projection
    ``P``. That sharing is the point: a rank-``n_factors`` model needs far fewer
    rows per candidate than one logistic regression each.

    Training minimises, with Adam, the mean soft-label binary cross-entropy over
    the observed (prompt, candidate) rows only (the mask that makes it usable on
    production logs, where one candidate answered each prompt) plus
    ``alpha * (|P|^2 + |q|^2)``. That penalty on the two factors is a trace-norm
    penalty on their product ``P q^T``, so small data gets a low-rank, shrunk
    model. A held-out ``validation_fraction`` of the prompts picks the number of
    epochs, then the model is refit on all rows for that many
    (`training.learners._torch.train_early_stopped`). A candidate with no rows
    keeps ``q_k = 0`` and predicts its smoothed mean.

    Torch is imported inside ``fit`` only; ``predict_proba`` and the exported graph
    are plain matrix products.

    Parameters
    ----------
    n_factors : int, default=4
    alpha : float, default=0.03
        L2 penalty on ``P`` and ``q`` (biases are not penalised), added to the mean
        row loss; larger for fewer rows.
    learning_rate : float, default=0.01
        Adam step size.
    max_epochs : int, default=300
    patience : int, default=20
        Epochs without improvement of the held-out loss before stopping.
    validation_fraction : float, default=0.2
        Share of prompts held out to choose the number of epochs.
    batch_size : int, default=1024
    random_state : int, default=0
        Seeds the initial weights, the shuffling and the held-out prompts.
    n_threads : int, default=1
        Torch intra-op threads during ``fit`` (restored afterwards). One is
        fastest for matrices this small: two ran 2-7x slower on a busy 2-core box.

    Attributes
    ----------
    n_features_in_ : int
    n_candidates_ : int
    projection_ : ndarray of shape (n_features, n_factors)
        ``P`` with the standardisation folded in, applied to raw features.
    projection_intercept_ : ndarray of shape (n_factors,)
    candidate_factors_ : ndarray of shape (n_candidates, n_factors)
        The candidate embeddings ``q_k``.
    intercept_ : ndarray of shape (n_candidates,)
    n_epochs_ : int
        Epochs of the final fit (chosen on the held-out prompts).

    See Also
    --------
    training.learners.SharedLearner : pools candidates through their family and price.

    References
    ----------
    .. [1] Ong et al., "RouteLLM: Learning to Route LLMs with Preference Data",
       arXiv:2406.18665, 2024.
    """

    def __init__(
        self,
        *,
        n_factors: int = 4,
        alpha: float = 0.03,
        learning_rate: float = 0.01,
        max_epochs: int = 300,
        patience: int = 20,
        validation_fraction: float = 0.2,
        batch_size: int = 1024,
        random_state: int = 0,
        n_threads: int = 1,
    ):
        self.n_factors = n_factors
        self.alpha = alpha
        self.learning_rate = learning_rate
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.batch_size = batch_size
        self.random_state = random_state
        self.n_threads = n_threads

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
        """Fit on logged rows.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
        y : ndarray of shape (n_rows,)
            Graded outcome in [0, 1], soft labels allowed.
        candidate : ndarray of int, shape (n_rows,)
        n_candidates : int
        candidate_info : CandidateInfo, optional
            Checked but unused: candidates are learned embeddings.
        usage : mapping, optional
            Unused.
        sample_weight : ndarray of shape (n_rows,), optional
            Row weights of the cross-entropy (the loss becomes their weighted mean)
            and of the candidates' starting means. None: every row counts once.
        """
        X, y, candidate = _check_rows(X, y, candidate, n_candidates)
        check_candidate_info(candidate_info, n_candidates)
        w = check_sample_weight(sample_weight, len(y))
        if not (isinstance(self.n_factors, int | np.integer) and self.n_factors >= 1):
            raise ValueError(f"n_factors must be an int >= 1, got {self.n_factors!r}.")
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha!r}.")
        config = TorchFitConfig(
            learning_rate=self.learning_rate,
            max_epochs=self.max_epochs,
            patience=self.patience,
            validation_fraction=self.validation_fraction,
            batch_size=self.batch_size,
            random_state=self.random_state,
            n_threads=self.n_threads,
        )
        check_config(config)
        import torch

        d, r = X.shape[1], self.n_factors
        prior = candidate_means(y, candidate, n_candidates, w)
        mean, scale = standardizer(X) if len(X) else (np.zeros(d), np.ones(d))
        Xt = torch.from_numpy(((X - mean) / scale).astype(np.float32))
        ct = torch.from_numpy(candidate.copy())

        def init(torch):
            return {
                "P": torch.nn.Parameter(torch.randn(d, r) / np.sqrt(d)),
                "q": torch.nn.Parameter(torch.randn(n_candidates, r) * 0.1),
                "b": torch.nn.Parameter(torch.tensor(logit(prior), dtype=torch.float32)),
            }

        def logits(params, rows):
            c = ct[rows]
            return ((Xt[rows] @ params["P"]) * params["q"][c]).sum(dim=1) + params["b"][c]

        def penalty(params):
            return self.alpha * (params["P"].square().sum() + params["q"].square().sum())

        params, self.n_epochs_ = train_early_stopped(
            torch, config, init, logits, penalty, y, prompt_groups(X), w
        )
        P, q = params["P"], params["q"]
        q[np.bincount(candidate, minlength=n_candidates) == 0] = 0.0
        self.n_features_in_ = d
        self.n_candidates_ = n_candidates
        self.projection_ = P / scale[:, None]
        self.projection_intercept_ = -(mean / scale) @ P
        self.candidate_factors_ = q
        self.intercept_ = params["b"]
        return self

    def decision_function(self, X) -> np.ndarray:
        """Logits of shape ``(n_prompts, n_candidates)``."""
        check_is_fitted(self, "candidate_factors_")
        X = np.asarray(X, dtype=np.float32).astype(np.float64)
        z = X @ self.projection_ + self.projection_intercept_
        return z @ self.candidate_factors_.T + self.intercept_

    def predict_proba(self, X) -> np.ndarray:
        """``p_success`` of shape ``(n_prompts, n_candidates)``."""
        return sigmoid(self.decision_function(X))
