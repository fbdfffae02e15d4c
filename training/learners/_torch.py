"""The training loop the torch learners share: penalised soft-label cross-entropy
on logged rows, early stopping on an inner split of prompts, refit on all rows.

Torch is imported by the caller inside ``fit`` and passed in, so importing the
learners never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: An inner split needs this many prompts on each side to be worth trusting;
#: below it the model trains for ``max_epochs`` on everything.
MIN_SPLIT_PROMPTS = 5


@dataclass(frozen=True)
class TorchFitConfig:
    """Optimiser and stopping settings, copied from a learner's hyperparameters."""

    learning_rate: float
    max_epochs: int
    patience: int
    validation_fraction: float
    batch_size: int
    random_state: int
    n_threads: int


def check_config(config: TorchFitConfig) -> None:
    """Refuse settings the loop cannot use, naming the allowed range."""
    for name in ("max_epochs", "batch_size", "n_threads"):
        value = getattr(config, name)
        if not (isinstance(value, int | np.integer) and value >= 1):
            raise ValueError(f"{name} must be an int >= 1, got {value!r}.")
    if not (isinstance(config.patience, int | np.integer) and config.patience >= 0):
        raise ValueError(f"patience must be an int >= 0, got {config.patience!r}.")
    if not 0 <= config.validation_fraction < 1:
        raise ValueError(
            f"validation_fraction must be in [0, 1), got {config.validation_fraction!r}."
        )
    if not config.learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {config.learning_rate!r}.")


def train_early_stopped(
    torch,
    config: TorchFitConfig,
    init: Callable[[Any], dict[str, Any]],
    logits: Callable[[dict[str, Any], Any], Any],
    penalty: Callable[[dict[str, Any]], Any],
    y: np.ndarray,
    groups: np.ndarray,
    sample_weight: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], int]:
    """Fit parameters by Adam, choosing the number of epochs on held-out prompts.

    A fraction ``config.validation_fraction`` of the prompts (``groups``) is held
    out; training on the rest stops ``patience`` epochs after the best held-out
    cross-entropy, and the model is refit from the same initial state on all rows
    for the best number of epochs, so no row is wasted on small data.

    Parameters
    ----------
    torch : module
    config : TorchFitConfig
    init : callable
        ``init(torch) -> {name: tensor}``: fresh parameters (called after seeding).
    logits : callable
        ``logits(params, rows) -> tensor of shape (len(rows),)`` for a LongTensor of
        row indices.
    penalty : callable
        ``penalty(params) -> scalar tensor`` added to the mean row loss.
    y : ndarray of shape (n_rows,)
        Soft labels in [0, 1].
    groups : ndarray of int, shape (n_rows,)
        Prompt of each row; the split never separates a prompt's rows.
    sample_weight : ndarray of shape (n_rows,), optional
        Row weights of the cross-entropy, in training and in the held-out loss that
        picks the number of epochs (each is a weighted mean over its rows). None:
        the plain mean, as before weights existed.

    Returns
    -------
    params : dict of name -> ndarray (float64)
    n_epochs : int
    """
    import torch.nn.functional as F

    yt = torch.from_numpy(np.asarray(y, dtype=np.float32))
    wt = None
    if sample_weight is not None and np.ptp(sample_weight) > 0:
        # Constant weights leave a weighted mean unchanged: the plain mean is kept,
        # so weights of 1 give the unweighted fit bit for bit.
        wt = torch.from_numpy(np.asarray(sample_weight, dtype=np.float32))

    def loss_of(z, rows):
        if wt is None:
            return F.binary_cross_entropy_with_logits(z, yt[rows])
        w = wt[rows]
        return (F.binary_cross_entropy_with_logits(z, yt[rows], reduction="none") * w).sum() / (
            w.sum()
        )

    n_groups = int(groups.max()) + 1 if len(groups) else 0
    n_val = round(n_groups * config.validation_fraction)

    def run(train: np.ndarray, val: np.ndarray | None, n_epochs: int):
        torch.manual_seed(config.random_state)
        params = init(torch)
        optimizer = torch.optim.Adam(list(params.values()), lr=config.learning_rate)
        rows = torch.from_numpy(np.flatnonzero(train))
        val_rows = None if val is None else torch.from_numpy(np.flatnonzero(val))
        history: list[float] = []
        for _ in range(n_epochs):
            if len(rows):
                order = rows[torch.randperm(len(rows))]
                for start in range(0, len(order), config.batch_size):
                    batch = order[start : start + config.batch_size]
                    optimizer.zero_grad()
                    loss = loss_of(logits(params, batch), batch)
                    (loss + penalty(params)).backward()
                    optimizer.step()
            if val_rows is not None:
                with torch.no_grad():
                    z = logits(params, val_rows)
                    history.append(float(loss_of(z, val_rows)))
                if len(history) - 1 - int(np.argmin(history)) >= config.patience:
                    break
        return params, history

    threads = torch.get_num_threads()
    torch.set_num_threads(config.n_threads)
    try:
        with torch.random.fork_rng(devices=[]):
            n_epochs = config.max_epochs
            if n_val >= MIN_SPLIT_PROMPTS and n_groups - n_val >= MIN_SPLIT_PROMPTS:
                rng = np.random.default_rng(config.random_state)
                val = np.isin(groups, rng.choice(n_groups, size=n_val, replace=False))
                _, history = run(~val, val, config.max_epochs)
                n_epochs = int(np.argmin(history)) + 1
            params, _ = run(np.ones(len(y), dtype=bool), None, n_epochs)
    finally:
        torch.set_num_threads(threads)
    return {k: v.detach().double().numpy().copy() for k, v in params.items()}, n_epochs
