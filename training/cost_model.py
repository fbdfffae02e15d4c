"""Expected cost per candidate from prompt features.

Cost is modelled in *units* that the gateway's price catalog turns into dollars:
input and output tokens where the catalog prices a candidate and the logs carry
tokens (so a price change or a prompt-cache hint re-prices a decision without
retraining), or ``cost_usd`` itself where only cost is logged. Each unit is fit as
a ridge regression on ``log(units + offset)``; the log keeps a few huge agent runs
from dominating, and Duan's smearing factor turns the log-scale prediction back
into an unbiased mean: ``E[units] = exp(prediction) * smearing - offset``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)


@dataclass(frozen=True)
class CostComponent:
    """One priced unit of one candidate's cost.

    Attributes
    ----------
    candidate : int
        Index of the candidate.
    name : {"input_tokens", "output_tokens", "cost_usd"}
    price : float
        USD per unit (1.0 for ``cost_usd``).
    offset : float
        Added before the log so zero units are allowed.
    """

    candidate: int
    name: str
    price: float
    offset: float


def cost_offset(cost_usd: np.ndarray) -> float:
    """Offset added to ``cost_usd`` before the log: a thousandth of the median positive
    cost, so free calls are allowed without a tiny offset stretching the log scale."""
    cost_usd = np.asarray(cost_usd, dtype=np.float64)
    positive = cost_usd[np.isfinite(cost_usd) & (cost_usd > 0)]
    return float(np.median(positive) * 1e-3) if len(positive) else 1e-9


class LogLinearCostModel(BaseEstimator):
    """Ridge on ``log(units + offset)`` per cost component.

    Parameters
    ----------
    alphas : tuple of float
        Ridge strengths tried by efficient leave-one-out (``RidgeCV``).
    min_rows : int, default=10
        Below this, a component is predicted by its mean.

    Attributes
    ----------
    components_ : list of CostComponent
    coef_ : ndarray of shape (n_components, n_features)
        Weights on raw features (standardisation folded in).
    intercept_ : ndarray of shape (n_components,)
    smearing_ : ndarray of shape (n_components,)
    """

    def __init__(self, *, alphas: tuple[float, ...] = RIDGE_ALPHAS, min_rows: int = 10):
        self.alphas = alphas
        self.min_rows = min_rows

    def fit(self, X, units, *, components: list[CostComponent], candidate, sample_weight=None):
        """Fit every component on the rows of its candidate.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
        units : dict of str -> ndarray of shape (n_rows,)
            Logged units per component name (NaN where unknown).
        components : list of CostComponent
        candidate : ndarray of int, shape (n_rows,)
        sample_weight : ndarray of shape (n_rows,), optional
            Row weights, as the learners take them. `train` leaves the cost model
            unweighted on bandit logs: `benchmarks/bandit_cost.py` measured no gain
            from inverse-propensity weights.
        """
        X = np.asarray(X, dtype=np.float64)
        candidate = np.asarray(candidate)
        weight = (
            np.ones(len(candidate))
            if sample_weight is None
            else np.asarray(sample_weight, dtype=np.float64)
        )
        self.components_ = list(components)
        self.n_features_in_ = X.shape[1]
        self.coef_ = np.zeros((len(components), X.shape[1]))
        self.intercept_ = np.zeros(len(components))
        self.smearing_ = np.ones(len(components))
        # Components whose rows hold the same prompts in the same order (every
        # candidate of a benchmark, or the two token counts of one candidate) share
        # one standardisation and one eigendecomposition: a multi-target RidgeCV
        # picks each target's alpha exactly as a single fit would, many times faster.
        by_prompts: dict[bytes, tuple[np.ndarray, list[int]]] = {}
        targets = {}  # component -> its log units, on its own rows
        for j, comp in enumerate(components):
            values = np.asarray(units[comp.name], dtype=np.float64)
            rows = (candidate == comp.candidate) & np.isfinite(values)
            if rows.sum() < self.min_rows:
                mean = np.average(values[rows], weights=weight[rows]) if rows.any() else 0.0
                self.intercept_[j] = np.log(mean + comp.offset)
                continue
            targets[j] = np.log(values[rows] + comp.offset)
            key = hashlib.sha256(np.ascontiguousarray(X[rows]).tobytes()).digest()
            by_prompts.setdefault(key, (rows, []))[1].append(j)
        for rows, group in by_prompts.values():
            target = np.column_stack([targets[j] for j in group])
            self._fit_group(X[rows], target, group, weight[rows])
        return self

    def _fit_group(
        self, X: np.ndarray, target: np.ndarray, group: list[int], weight: np.ndarray
    ) -> None:
        from sklearn.linear_model import RidgeCV

        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        scale[scale < 1e-6] = 1.0
        ridge = RidgeCV(alphas=self.alphas, alpha_per_target=True).fit(
            (X - mean) / scale, target, sample_weight=weight
        )
        coef = np.atleast_2d(ridge.coef_) / scale
        intercept = np.atleast_1d(ridge.intercept_) - coef @ mean
        for i, j in enumerate(group):
            self.coef_[j] = coef[i]
            self.intercept_[j] = intercept[i]
            residual = target[:, i] - (X @ coef[i] + intercept[i])
            self.smearing_[j] = float(np.average(np.exp(residual), weights=weight))

    def predict_log_units(self, X) -> np.ndarray:
        """Log-scale predictions, shape ``(n_prompts, n_components)``."""
        check_is_fitted(self, "coef_")
        return np.asarray(X, dtype=np.float64) @ self.coef_.T + self.intercept_

    def predict_cost(self, X, n_candidates: int) -> np.ndarray:
        """``expected_cost_usd`` of shape ``(n_prompts, n_candidates)``."""
        units = np.exp(self.predict_log_units(X)) * self.smearing_
        offsets = np.array([c.offset for c in self.components_])
        prices = np.array([c.price for c in self.components_])
        dollars = np.clip(units - offsets, 0.0, None) * prices
        cost = np.zeros((len(dollars), n_candidates))
        for j, comp in enumerate(self.components_):
            cost[:, comp.candidate] += dollars[:, j]
        return cost
