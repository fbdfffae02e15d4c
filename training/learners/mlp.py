"""RouterBench's MLP router: a small neural network per candidate."""

from __future__ import annotations

import numpy as np

from training.learners._base import (
    DEFAULT_MIN_ROWS,
    PerCandidateLearner,
    logit,
    prompt_groups,
    sigmoid,
    smoothed_mean,
    standardizer,
)
from training.learners._torch import TorchFitConfig, check_config, train_early_stopped


class MLPLearner(PerCandidateLearner):
    """One-hidden-layer ReLU network per candidate, on standardised features.

    Each candidate with at least ``min_rows`` rows gets its own network
    ``sigmoid(w2 . relu(W1 x_std + b1) + b2)`` (RouterBench's MLP router), trained
    in torch with Adam on the soft-label cross-entropy plus
    ``alpha * (|W1|^2 + |w2|^2)``. A few hundred prompts over ~400 features overfit
    within a few epochs, so the number of epochs is chosen on held-out prompts by
    their cross-entropy, and the network is then refit on all the candidate's rows
    (`training.learners._torch.train_early_stopped`). scikit-learn's
    ``MLPClassifier`` was not used: its early stopping watches accuracy, which
    let it grow overconfident (cross-validated log-loss 0.62-0.75 against 0.60 for
    the constant on the shipped data).

    After fitting, the per-candidate networks are stacked into one wider network
    (``hidden_coef_`` side by side, ``output_coef_`` block-diagonal) with the
    standardisation folded into the first layer: the exported graph is that
    network (MatMul, Add, Relu, MatMul, Add, Sigmoid), while ``predict_proba``
    runs each candidate's own network, so the parity test checks the stacking.
    Torch is imported inside ``fit`` only.

    Parameters
    ----------
    hidden_units : int, default=8
        Narrow on purpose: with a few hundred rows per candidate, 8 units and
        ``alpha=0.1`` beat 32 units and ``alpha=0.01`` in cross-validation on the
        shipped data (log-loss 0.598 against 0.601).
    alpha : float, default=0.1
        L2 penalty on the weights (not the biases), added to the mean row loss.
    learning_rate : float, default=1e-3
        Adam step size.
    max_epochs : int, default=300
    patience : int, default=20
        Epochs without improvement of the held-out loss before stopping.
    validation_fraction : float, default=0.2
        Share of the candidate's prompts held out to choose the number of epochs.
    batch_size : int, default=256
    min_rows : int, default=20
        Below this many rows a candidate gets its smoothed mean outcome.
    random_state : int, default=0
    n_threads : int, default=1
        Torch intra-op threads during ``fit`` (restored afterwards). One is
        fastest for matrices this small: two ran 2-7x slower on a busy 2-core box.

    Attributes
    ----------
    models_ : list, length n_candidates
        Per candidate ``(W1, b1, w2, b2, n_epochs)`` on raw features, or None
        (constant).
    constant_ : ndarray of shape (n_candidates,)
    hidden_coef_ : ndarray of shape (n_features, n_candidates * hidden_units)
        First-layer weights on raw features, candidate ``k`` in columns
        ``k * hidden_units : (k + 1) * hidden_units`` (zero for constants).
    hidden_intercept_ : ndarray of shape (n_candidates * hidden_units,)
    output_coef_ : ndarray of shape (n_candidates * hidden_units, n_candidates)
        Block-diagonal output weights.
    output_intercept_ : ndarray of shape (n_candidates,)
        Output bias; the constant's logit for constant candidates.

    See Also
    --------
    training.learners.KNNLearner : RouterBench's other baseline.

    References
    ----------
    .. [1] Hu et al., "RouterBench: A Benchmark for Multi-LLM Routing System",
       arXiv:2403.12031, 2024.
    """

    def __init__(
        self,
        *,
        hidden_units: int = 8,
        alpha: float = 0.1,
        learning_rate: float = 1e-3,
        max_epochs: int = 300,
        patience: int = 20,
        validation_fraction: float = 0.2,
        batch_size: int = 256,
        min_rows: int = DEFAULT_MIN_ROWS,
        random_state: int = 0,
        n_threads: int = 1,
    ):
        self.hidden_units = hidden_units
        self.alpha = alpha
        self.learning_rate = learning_rate
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.batch_size = batch_size
        self.min_rows = min_rows
        self.random_state = random_state
        self.n_threads = n_threads

    def _config(self) -> TorchFitConfig:
        return TorchFitConfig(
            learning_rate=self.learning_rate,
            max_epochs=self.max_epochs,
            patience=self.patience,
            validation_fraction=self.validation_fraction,
            batch_size=self.batch_size,
            random_state=self.random_state,
            n_threads=self.n_threads,
        )

    def _fit_one(self, X, y, sample_weight):
        import torch

        d, h = X.shape[1], self.hidden_units
        mean, scale = standardizer(X)
        Xt = torch.from_numpy(((X - mean) / scale).astype(np.float32))
        start = float(logit(smoothed_mean(y, sample_weight)))

        def init(torch):
            return {
                "W1": torch.nn.Parameter(torch.randn(d, h) * np.sqrt(2.0 / d)),
                "b1": torch.nn.Parameter(torch.zeros(h)),
                "w2": torch.nn.Parameter(torch.randn(h) * 0.01),
                "b2": torch.nn.Parameter(torch.tensor(start)),
            }

        def logits(params, rows):
            hidden = torch.relu(Xt[rows] @ params["W1"] + params["b1"])
            return hidden @ params["w2"] + params["b2"]

        def penalty(params):
            return self.alpha * (params["W1"].square().sum() + params["w2"].square().sum())

        params, n_epochs = train_early_stopped(
            torch, self._config(), init, logits, penalty, y, prompt_groups(X), sample_weight
        )
        W1 = params["W1"] / scale[:, None]
        return W1, params["b1"] - mean @ W1, params["w2"], float(params["b2"]), n_epochs

    def _predict_one(self, model, X):
        W1, b1, w2, b2, _ = model
        return sigmoid(np.maximum(X.astype(np.float64) @ W1 + b1, 0.0) @ w2 + b2)

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
        """Fit on logged rows; see `PerCandidateLearner.fit` (``sample_weight`` weighs
        each row's cross-entropy, `training.learners._torch.train_early_stopped`)."""
        if not (isinstance(self.hidden_units, int | np.integer) and self.hidden_units >= 1):
            raise ValueError(f"hidden_units must be an int >= 1, got {self.hidden_units!r}.")
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha!r}.")
        check_config(self._config())
        super().fit(
            X,
            y,
            candidate=candidate,
            n_candidates=n_candidates,
            candidate_info=candidate_info,
            sample_weight=sample_weight,
        )
        h, d = self.hidden_units, self.n_features_in_
        self.hidden_coef_ = np.zeros((d, n_candidates * h))
        self.hidden_intercept_ = np.zeros(n_candidates * h)
        self.output_coef_ = np.zeros((n_candidates * h, n_candidates))
        self.output_intercept_ = logit(self.constant_)
        for k, model in enumerate(self.models_):
            if model is None:
                continue
            W1, b1, w2, b2, _ = model
            block = slice(k * h, (k + 1) * h)
            self.hidden_coef_[:, block] = W1
            self.hidden_intercept_[block] = b1
            self.output_coef_[block, k] = w2
            self.output_intercept_[k] = b2
        return self
