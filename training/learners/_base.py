"""What every learner shares: row checks, soft labels, candidate descriptions and
the per-candidate fitting loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

#: Below this many rows (or with a single outcome class) a candidate gets its
#: smoothed mean outcome instead of a fitted model.
DEFAULT_MIN_ROWS = 20


class Learner(Protocol):
    """The interface `training.train`, selection and the exporter rely on."""

    n_features_in_: int
    n_candidates_: int

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        candidate: np.ndarray,
        n_candidates: int,
        candidate_info: CandidateInfo | None = None,
        usage: Mapping[str, np.ndarray] | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> Learner: ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...

    def get_params(self, deep: bool = True) -> dict[str, Any]: ...


@dataclass(frozen=True, eq=False)
class CandidateInfo:
    """What is known about each candidate besides its logged rows.

    Learners that pool evidence across candidates (`SharedLearner`) describe a
    candidate by its family and price, so a model with few logged rows borrows
    strength from similar ones; the others ignore it.

    Parameters
    ----------
    names : tuple of str, length n_candidates
    families : tuple of str, length n_candidates
        Model family of each candidate (e.g. ``"qwen"``); a candidate with no known
        family is best given its own name, so it shares with no one.
    input_price, output_price : ndarray of float, shape (n_candidates,)
        USD per token; NaN where unknown.

    Examples
    --------
    >>> info = CandidateInfo.identity(2)
    >>> info.names, info.families
    (('candidate_0', 'candidate_1'), ('candidate_0', 'candidate_1'))
    """

    names: tuple[str, ...]
    families: tuple[str, ...]
    input_price: np.ndarray
    output_price: np.ndarray

    def __post_init__(self) -> None:
        names, families = tuple(self.names), tuple(self.families)
        input_price = np.asarray(self.input_price, dtype=np.float64).copy()
        output_price = np.asarray(self.output_price, dtype=np.float64).copy()
        n = len(names)
        if len(families) != n or input_price.shape != (n,) or output_price.shape != (n,):
            raise ValueError(
                f"CandidateInfo needs one family and one input and output price per name: "
                f"got {n} names, {len(families)} families and prices of shape "
                f"{input_price.shape} and {output_price.shape}."
            )
        if (input_price < 0).any() or (output_price < 0).any():
            raise ValueError("Prices must be >= 0 USD per token (NaN where unknown).")
        input_price.flags.writeable = False
        output_price.flags.writeable = False
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "families", families)
        object.__setattr__(self, "input_price", input_price)
        object.__setattr__(self, "output_price", output_price)

    @property
    def n_candidates(self) -> int:
        return len(self.names)

    @classmethod
    def identity(cls, n_candidates: int) -> CandidateInfo:
        """Names only: each candidate its own family, prices unknown."""
        names = tuple(f"candidate_{k}" for k in range(n_candidates))
        nan = np.full(n_candidates, np.nan)
        return cls(names=names, families=names, input_price=nan, output_price=nan)

    @classmethod
    def from_prices(
        cls,
        names: Sequence[str],
        families: Mapping[str, str],
        prices: Mapping[str, Any],
    ) -> CandidateInfo:
        """Build from what `training.train` has at hand.

        Parameters
        ----------
        names : sequence of str
        families : mapping of name -> family
            Missing names are their own family.
        prices : mapping of name -> `features.prices.ModelPrice` or None
            Anything with ``input_cost_per_token`` and ``output_cost_per_token``.
        """
        names = tuple(names)
        price = [prices.get(name) for name in names]
        return cls(
            names=names,
            families=tuple(families.get(name, name) for name in names),
            input_price=np.array([np.nan if p is None else p.input_cost_per_token for p in price]),
            output_price=np.array(
                [np.nan if p is None else p.output_cost_per_token for p in price]
            ),
        )


def check_candidate_info(info: CandidateInfo | None, n_candidates: int) -> CandidateInfo:
    """The given description, or an identity-only one; refuse a wrong length."""
    if info is None:
        return CandidateInfo.identity(n_candidates)
    if not isinstance(info, CandidateInfo):
        raise TypeError(f"candidate_info must be a CandidateInfo, got {type(info).__name__}.")
    if info.n_candidates != n_candidates:
        raise ValueError(
            f"candidate_info describes {info.n_candidates} candidates but n_candidates is "
            f"{n_candidates}; build it from the same candidate list as the rows."
        )
    return info


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
    if not np.isfinite(X).all():
        raise ValueError("Features X must be finite; featurize with features.featurizer.")
    return X, y, candidate


def check_sample_weight(sample_weight: np.ndarray | None, n_rows: int) -> np.ndarray | None:
    """Row weights as float64 of shape ``(n_rows,)``, or None (every row counts once).

    Weights correct for a biased logging policy (`training.propensity`): a row the
    logger was unlikely to produce stands for more prompts like it. They must be
    finite and > 0: a zero weight would drop a row silently, which the caller
    should do itself if it means to.
    """
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n_rows,):
        raise ValueError(f"sample_weight must have shape ({n_rows},), got {w.shape}.")
    if not np.isfinite(w).all() or (w <= 0).any():
        raise ValueError("sample_weight must be finite and > 0 for every row.")
    return w


def check_embedding_dim(embedding_dim: int, n_features: int) -> None:
    """Refuse an embedding width the features cannot hold (it depends on the encoder)."""
    if not 1 <= embedding_dim <= n_features:
        raise ValueError(
            f"embedding_dim must be in [1, n_features = {n_features}], got "
            f"{embedding_dim!r}; set it to FeatureSpec.embedding_dim."
        )


def learnable(y: np.ndarray, min_rows: int) -> bool:
    """Whether outcomes ``y`` can fit a model: ``min_rows`` of them, both classes."""
    hard = np.round(y)
    return len(y) >= min_rows and hard.min(initial=1) != hard.max(initial=0)


def soft_label_rows(
    X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expand soft labels into weighted hard rows; zero-weight rows are dropped.

    A row's ``sample_weight`` multiplies both of its halves (None: weight 1).
    """
    X2 = np.vstack([X, X])
    labels = np.concatenate([np.ones(len(y)), np.zeros(len(y))])
    weights = np.concatenate([y, 1.0 - y])
    if sample_weight is not None:
        weights = weights * np.concatenate([sample_weight, sample_weight])
    keep = weights > 0
    return X2[keep], labels[keep], weights[keep]


def smoothed_mean(y: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Mean outcome with a Beta(1, 1) prior, so 0/3 is not a certain failure.

    With ``sample_weight`` the rows count by their weight (the prior still counts
    two rows), so importance weights normalised to mean 1 keep the prior's strength.
    """
    if sample_weight is None:
        return float((y.sum() + 1.0) / (len(y) + 2.0))
    return float(((sample_weight * y).sum() + 1.0) / (sample_weight.sum() + 2.0))


def candidate_means(
    y: np.ndarray,
    candidate: np.ndarray,
    n_candidates: int,
    sample_weight: np.ndarray | None = None,
) -> np.ndarray:
    """Smoothed mean outcome per candidate, shape ``(n_candidates,)``.

    A candidate without rows gets the smoothed mean over all rows (0.5 if none).
    """
    means = np.full(n_candidates, smoothed_mean(y, sample_weight) if len(y) else 0.5)
    for k in range(n_candidates):
        rows = candidate == k
        if rows.any():
            means[k] = smoothed_mean(
                y[rows], None if sample_weight is None else sample_weight[rows]
            )
    return means


def prompt_groups(X: np.ndarray) -> np.ndarray:
    """Index of each row's prompt, shape ``(n_rows,)``.

    Rows of one prompt repeat its feature vector exactly, so equal rows are one
    prompt; inner validation splits group by it, as the outer ones group by
    ``prompt_id``.
    """
    if not len(X):
        return np.zeros(0, dtype=np.int64)
    _, inverse = np.unique(X, axis=0, return_inverse=True)
    return inverse.reshape(-1)


def standardizer(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and scale (std, 1 where a column is constant), float64."""
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-6] = 1.0
    return mean, scale


def logit(p: np.ndarray | float) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return np.log(p / (1.0 - p))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class PerCandidateLearner(BaseEstimator):
    """Shared fitting loop: one model per candidate, a constant where data is thin.

    Attributes
    ----------
    n_candidates_ : int
    n_features_in_ : int
    models_ : list of (fitted model or None), length n_candidates
        None where the candidate is predicted by its constant.
    constant_ : ndarray of shape (n_candidates,)
        Smoothed mean outcome per candidate (the fallback prediction).
    n_rows_ : ndarray of shape (n_candidates,)
    """

    min_rows: int

    def _fit_one(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None):
        raise NotImplementedError  # pragma: no cover - abstract

    def _predict_one(self, model, X: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

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
            Features of the prompt each row answered.
        y : ndarray of shape (n_rows,)
            Graded outcome in [0, 1].
        candidate : ndarray of int, shape (n_rows,)
            Index of the candidate that answered.
        n_candidates : int
        candidate_info : CandidateInfo, optional
            Checked but unused: each candidate is fit on its own rows alone.
        usage : mapping, optional
            Logged usage of each row; unused here (see `UsageLogisticLearner`).
        sample_weight : ndarray of shape (n_rows,), optional
            Row weights (`check_sample_weight`): they weigh each row's loss in the
            candidate's model and its constant. None: every row counts once.
        """
        X, y, candidate = _check_rows(X, y, candidate, n_candidates)
        check_candidate_info(candidate_info, n_candidates)
        w = check_sample_weight(sample_weight, len(y))
        self.n_candidates_ = n_candidates
        self.n_features_in_ = X.shape[1]
        self.models_ = []
        self.constant_ = candidate_means(y, candidate, n_candidates, w)
        self.n_rows_ = np.bincount(candidate, minlength=n_candidates)
        for k in range(n_candidates):
            rows = candidate == k
            yk = y[rows]
            if not learnable(yk, self.min_rows):
                self.models_.append(None)
                continue
            self.models_.append(self._fit_one(X[rows], yk, None if w is None else w[rows]))
        return self

    def predict_proba(self, X) -> np.ndarray:
        """``p_success`` of shape ``(n_prompts, n_candidates)``."""
        check_is_fitted(self, "models_")
        X = np.asarray(X, dtype=np.float32)
        out = np.empty((len(X), self.n_candidates_))
        for k, model in enumerate(self.models_):
            out[:, k] = self.constant_[k] if model is None else self._predict_one(model, X)
        return out
