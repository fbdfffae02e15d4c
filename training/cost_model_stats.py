"""The cost model fit from sufficient statistics, in bounded memory.

`training.cost_model.LogLinearCostModel.fit` takes the row feature matrix
``X = features[prompt]``, shape ``(n_rows, n_features)`` float64: 2 GiB for a
million calls of the 264 static-encoder features, before ``RidgeCV`` copies it.
`fit_cost_model_by_chunks` fits the same model from sums over row chunks instead:
per chunk ``X^T X``, ``X^T y``, ``sum x``, ``sum y`` (pass 1), then, for every
ridge strength, the leave-one-out errors and ``sum exp(residual)`` for the smearing
factor (pass 2). Memory is one chunk of rows plus ``d x d`` matrices, whatever the
number of calls.

The result is the one ``RidgeCV(alphas, alpha_per_target=True)`` gives on the
standardised rows, not an approximation: with an unpenalised intercept and
centred features ``Z``, the hat matrix is ``1/n + Z (Z^T Z + a I)^-1 Z^T``, so the
leave-one-out residual ``e_i / (1 - h_ii)`` (Golub, Heath and Wahba 1979; the
"efficient LOO" of scikit-learn's ``_RidgeGCV``, sklearn/linear_model/_ridge.py,
which adds the intercept as an unpenalised direction) needs only the
eigendecomposition of the ``d x d`` Gram matrix and one more pass over the rows.
`tests/training/test_cost_model_stats.py` checks it against `LogLinearCostModel`.
"""

from __future__ import annotations

import numpy as np

from training.cost_model import CostComponent, LogLinearCostModel

#: Rows per chunk: 65536 rows x 264 features x 8 bytes = 138 MB of float64.
DEFAULT_CHUNK_ROWS = 65536


def fit_cost_model_by_chunks(
    features: np.ndarray,
    prompt: np.ndarray,
    units: dict[str, np.ndarray],
    *,
    components: list[CostComponent],
    candidate: np.ndarray,
    alphas: tuple[float, ...] | None = None,
    min_rows: int = 10,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> LogLinearCostModel:
    """A fitted `LogLinearCostModel`, computed from chunked sufficient statistics.

    Parameters
    ----------
    features : ndarray of float32, shape (n_prompts, n_features)
        One row per prompt (`training.dataset.TrainingSet.features`); never
        expanded to one row per call.
    prompt : ndarray of int, shape (n_rows,)
        Prompt of each logged call.
    units : dict of str -> ndarray of shape (n_rows,)
        Logged cost units per component name (NaN where unknown).
    components : list of CostComponent
    candidate : ndarray of int, shape (n_rows,)
    alphas : tuple of float, optional
        Ridge strengths; `LogLinearCostModel`'s default when None.
    min_rows : int, default=10
        Below this, a component is predicted by its mean (as `LogLinearCostModel`).
    chunk_rows : int
        Rows expanded to float64 at a time.

    Returns
    -------
    LogLinearCostModel
        With ``components_``, ``coef_``, ``intercept_``, ``smearing_`` set; it
        predicts and exports like one fit by ``LogLinearCostModel.fit``.
    """
    model = LogLinearCostModel() if alphas is None else LogLinearCostModel(alphas=alphas)
    model.min_rows = min_rows
    alphas_arr = np.asarray(model.alphas, dtype=np.float64)
    candidate = np.asarray(candidate)
    d = features.shape[1]
    model.components_ = list(components)
    model.n_features_in_ = d
    model.coef_ = np.zeros((len(components), d))
    model.intercept_ = np.zeros(len(components))
    model.smearing_ = np.ones(len(components))
    # Components on the same rows (the two token counts of one candidate) share
    # one Gram matrix, as LogLinearCostModel shares one RidgeCV.
    groups: dict[bytes, tuple[np.ndarray, list[int]]] = {}
    for j, comp in enumerate(components):
        values = np.asarray(units[comp.name], dtype=np.float64)
        rows = (candidate == comp.candidate) & np.isfinite(values)
        if rows.sum() < min_rows:
            mean = float(values[rows].mean()) if rows.any() else 0.0
            model.intercept_[j] = np.log(mean + comp.offset)
            continue
        key = np.packbits(rows).tobytes()
        groups.setdefault(key, (np.flatnonzero(rows), []))[1].append(j)
    for row_index, group in groups.values():
        target = np.column_stack(
            [
                np.log(
                    np.asarray(units[components[j].name], dtype=np.float64)[row_index]
                    + components[j].offset
                )
                for j in group
            ]
        )
        coef, intercept, smearing = _ridge_gcv_by_chunks(
            features, prompt[row_index], target, alphas_arr, chunk_rows
        )
        for i, j in enumerate(group):
            model.coef_[j] = coef[i]
            model.intercept_[j] = intercept[i]
            model.smearing_[j] = smearing[i]
    return model


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def _ridge_gcv_by_chunks(
    features: np.ndarray,
    prompt: np.ndarray,
    target: np.ndarray,
    alphas: np.ndarray,
    chunk_rows: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge with leave-one-out choice of alpha per target, on standardised rows.

    Returns raw-feature ``coef`` (n_targets, d), ``intercept`` (n_targets,) and
    the smearing factor (n_targets,) of the chosen alpha.
    """
    n, t = target.shape
    d = features.shape[1]
    sum_x = np.zeros(d)
    gram = np.zeros((d, d))
    xty = np.zeros((d, t))
    for part in _chunks(n, chunk_rows):
        X = features[prompt[part]].astype(np.float64)
        sum_x += X.sum(axis=0)
        gram += X.T @ X
        xty += X.T @ target[part]
    mean = sum_x / n
    y_mean = target.mean(axis=0)
    var = np.clip(np.diag(gram) / n - mean**2, 0.0, None)
    scale = np.sqrt(var)
    scale[scale < 1e-6] = 1.0
    # Gram and cross-products of Z = (X - mean) / scale, y centred.
    zz = (gram - n * np.outer(mean, mean)) / np.outer(scale, scale)
    zy = (xty - n * np.outer(mean, y_mean)) / scale[:, None]
    eigval, eigvec = np.linalg.eigh(zz)
    eigval = np.clip(eigval, 0.0, None)
    projected = eigvec.T @ zy  # (d, t)
    # coef_z(alpha) = V diag(1 / (s + alpha)) V^T Z^T y, for every alpha: (a, d, t)
    coef_z = np.stack([eigvec @ (projected / (eigval + a)[:, None]) for a in alphas])
    loo = np.zeros((len(alphas), t))
    smear = np.zeros((len(alphas), t))
    for part in _chunks(n, chunk_rows):
        Z = (features[prompt[part]].astype(np.float64) - mean) / scale
        U2 = np.square(Z @ eigvec)  # (m, d)
        y = target[part]
        for i, a in enumerate(alphas):
            hat = 1.0 / n + U2 @ (1.0 / (eigval + a))  # (m,)
            residual = y - (y_mean + Z @ coef_z[i])  # (m, t)
            loo[i] += np.square(residual / (1.0 - hat)[:, None]).sum(axis=0)
            smear[i] += np.exp(residual).sum(axis=0)
    best = np.argmin(loo, axis=0)  # first minimum, as RidgeCV
    coef = np.stack([coef_z[best[k], :, k] for k in range(t)]) / scale
    intercept = y_mean - coef @ mean
    smearing = smear[best, np.arange(t)] / n
    return coef, intercept, smearing
