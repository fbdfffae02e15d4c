"""Logistic regression on the prompt's predicted usage: a projection supervised by
the token counts every call logs.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from training.cost_model import CostComponent, LogLinearCostModel, cost_offset
from training.learners._base import (
    DEFAULT_MIN_ROWS,
    _check_rows,
    candidate_means,
    check_candidate_info,
    check_embedding_dim,
    check_sample_weight,
    learnable,
    logit,
    prompt_groups,
    sigmoid,
    soft_label_rows,
    standardizer,
)

#: Usage units regressed on the prompt where a candidate's rows log them; a
#: candidate with neither gets its ``cost_usd`` regressed instead.
TOKEN_UNITS = ("input_tokens", "output_tokens")


class UsageLogisticLearner(BaseEstimator):
    """Per-candidate logistic regression on each candidate's predicted log usage.

    Outcomes are sparse: one graded bit per call, a few hundred prompts per
    candidate. But every call also logs how many tokens it read and wrote (or what
    it cost), a dense, continuous signal that the prompt largely decides: a request
    for an essay gets a long answer from every model, an agent task that drags on
    costs more. A ridge regression of each candidate's log usage on the prompt
    features (`training.cost_model.LogLinearCostModel`, the cost model's own
    regression) is well determined from a few hundred prompts, and its predictions
    are a low-dimensional summary of the prompt that the outcome model can weigh
    with mild regularisation, where a logistic regression on the raw embedding
    needs so much that it learns little. On AlpacaEval the prompts that draw long
    answers are the ones strong models win and weak models lose more often; there,
    averaged with kNN, it is the best setting on repeated splits (README
    "Benchmarks").

    The usage predictions of the training prompts are cross-fitted: each inner
    fold of prompts gets predictions from a regression fit on the others, so the
    logistic regression sees them as noisy as they will be at serving time. The
    text statistics after the embedding are used as they are. The fitted model is
    linear in the raw features (projection, standardisation and weights folded
    together), so it exports as the logistic regression's graph.

    Parameters
    ----------
    C : float, default=0.01
        Inverse L2 strength on the standardised usage predictions and statistics.
    n_inner_folds : int, default=5
        Folds of prompts for cross-fitting the usage predictions.
    embedding_dim : int, default=384
        Leading feature columns holding the embedding (`FeatureSpec.embedding_dim`);
        the columns after it are used directly.
    min_rows : int, default=20
        Below this many rows a candidate gets its smoothed mean outcome, and a usage
        unit is not regressed.
    random_state : int, default=0
        Seed of the inner folds.

    Attributes
    ----------
    usage_model_ : LogLinearCostModel or None
        The usage regression fit on all rows (None when no usage was logged).
    usage_components_ : list of CostComponent
        The (candidate, unit) pairs regressed.
    projection_mean_, projection_scale_ : ndarray of shape (n_projected,)
        Standardisation of the projected features (usage predictions, then the
        text statistics).
    weights_ : ndarray of shape (n_candidates, n_projected)
        Logistic weights on the standardised projected features.
    bias_ : ndarray of shape (n_candidates,)
        Their intercepts (the logit of ``constant_`` where a candidate is thin).
    coef_ : ndarray of shape (n_candidates, n_features)
        The same model as weights on raw features (what is exported).
    intercept_ : ndarray of shape (n_candidates,)
    constant_ : ndarray of shape (n_candidates,)
        Smoothed mean outcome per candidate.
    n_features_in_ : int
    n_candidates_ : int
    """

    def __init__(
        self,
        *,
        C: float = 0.01,
        n_inner_folds: int = 5,
        embedding_dim: int = 384,
        min_rows: int = DEFAULT_MIN_ROWS,
        random_state: int = 0,
    ):
        self.C = C
        self.n_inner_folds = n_inner_folds
        self.embedding_dim = embedding_dim
        self.min_rows = min_rows
        self.random_state = random_state

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
            Graded outcome in [0, 1].
        candidate : ndarray of int, shape (n_rows,)
        n_candidates : int
        candidate_info : CandidateInfo, optional
            Checked but unused.
        usage : mapping of str -> ndarray of shape (n_rows,), optional
            Logged ``input_tokens``, ``output_tokens`` and ``cost_usd`` of each row
            (NaN where unknown). Without it the learner is a logistic regression on
            the text statistics alone.
        sample_weight : ndarray of shape (n_rows,), optional
            Row weights of the outcome model (the logistic regressions and the
            constants). The usage regression stays unweighted on purpose: it
            predicts token counts, which every logged call reports whatever the
            logger preferred, and it only builds the features the weighted outcome
            model reads. None: every row counts once.
        """
        X, y, candidate = _check_rows(X, y, candidate, n_candidates)
        check_candidate_info(candidate_info, n_candidates)
        w = check_sample_weight(sample_weight, len(y))
        check_embedding_dim(self.embedding_dim, X.shape[1])
        if self.n_inner_folds < 2:
            raise ValueError(f"n_inner_folds must be >= 2, got {self.n_inner_folds!r}.")
        X64 = X.astype(np.float64)
        units = {name: np.asarray(v, dtype=np.float64) for name, v in (usage or {}).items()}
        for name, values in units.items():
            if values.shape != (len(y),):
                raise ValueError(
                    f"usage[{name!r}] must have one value per row, got shape {values.shape}."
                )
        self.usage_components_ = usage_components(units, candidate, n_candidates, self.min_rows)
        self.n_features_in_ = X.shape[1]
        self.n_candidates_ = n_candidates
        self.constant_ = candidate_means(y, candidate, n_candidates, w)

        # Projection of the raw features: usage predictions, then the statistics.
        n_stats = X.shape[1] - self.embedding_dim
        n_usage = len(self.usage_components_)
        project = np.zeros((X.shape[1], n_usage + n_stats))
        offset = np.zeros(n_usage + n_stats)
        project[self.embedding_dim :, n_usage:] = np.eye(n_stats)
        projected = np.zeros((len(X), n_usage + n_stats))
        projected[:, n_usage:] = X64[:, self.embedding_dim :]
        self.usage_model_ = None
        if n_usage:
            self.usage_model_ = self._fit_usage(X64, units, candidate)
            project[:, :n_usage] = self.usage_model_.coef_.T
            offset[:n_usage] = self.usage_model_.intercept_
            projected[:, :n_usage] = self._cross_fitted_usage(X64, units, candidate)

        mean, scale = standardizer(projected)
        self.projection_mean_, self.projection_scale_ = mean, scale
        Z = (projected - mean) / scale
        self.weights_ = np.zeros((n_candidates, Z.shape[1]))
        self.coef_ = np.zeros((n_candidates, X.shape[1]))
        self.bias_ = logit(self.constant_)
        self.intercept_ = self.bias_.copy()
        from sklearn.linear_model import LogisticRegression

        for k in range(n_candidates):
            rows = candidate == k
            if not learnable(y[rows], self.min_rows):
                continue
            Zk, labels, weights = soft_label_rows(Z[rows], y[rows], None if w is None else w[rows])
            model = LogisticRegression(C=self.C, max_iter=2000).fit(
                Zk, labels, sample_weight=weights
            )
            self.weights_[k] = model.coef_[0]
            self.bias_[k] = model.intercept_[0]
            raw = model.coef_[0] / scale
            self.coef_[k] = project @ raw
            self.intercept_[k] = float(model.intercept_[0] + raw @ (offset - mean))
        return self

    def _fit_usage(self, X, units, candidate) -> LogLinearCostModel:
        return LogLinearCostModel(min_rows=self.min_rows).fit(
            X, units, components=self.usage_components_, candidate=candidate
        )

    def _cross_fitted_usage(self, X, units, candidate) -> np.ndarray:
        """Log-usage predictions of each prompt by a regression that never saw it."""
        groups = prompt_groups(X)
        n_groups = groups.max() + 1
        folds = np.empty(n_groups, dtype=np.int64)
        order = np.random.default_rng(self.random_state).permutation(n_groups)
        folds[order] = np.arange(n_groups) % self.n_inner_folds
        row_fold = folds[groups]
        out = np.empty((len(X), len(self.usage_components_)))
        for f in range(min(self.n_inner_folds, n_groups)):
            held = row_fold == f
            fit = ~held
            model = self._fit_usage(
                X[fit], {name: v[fit] for name, v in units.items()}, candidate[fit]
            )
            out[held] = model.predict_log_units(X[held])
        return out

    def predict_proba(self, X) -> np.ndarray:
        """``p_success`` of shape ``(n_prompts, n_candidates)``."""
        check_is_fitted(self, "coef_")
        return sigmoid(np.asarray(X, dtype=np.float64) @ self.coef_.T + self.intercept_)


def usage_components(
    units: Mapping[str, np.ndarray], candidate: np.ndarray, n_candidates: int, min_rows: int
) -> list[CostComponent]:
    """The (candidate, unit) pairs with at least ``min_rows`` logged values.

    Token counts where logged, else ``cost_usd`` (offset by
    `training.cost_model.cost_offset` of the candidate's costs).
    """
    components = []
    for k in range(n_candidates):
        rows = candidate == k
        names = [
            n for n in TOKEN_UNITS if n in units and np.isfinite(units[n][rows]).sum() >= min_rows
        ]
        for name in names:
            components.append(CostComponent(k, name, 1.0, 1.0))
        cost = units.get("cost_usd")
        if not names and cost is not None and np.isfinite(cost[rows]).sum() >= min_rows:
            components.append(CostComponent(k, "cost_usd", 1.0, cost_offset(cost[rows])))
    return components
