"""The full-information log: every candidate's logged outcome and cost on every prompt.

A full-information log (a benchmark where each model answered each prompt) lets any
routing decision be scored exactly, without off-policy estimation: look up the logged
outcome and cost of the chosen candidate. Every metric of this package reads one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

#: Two qualities closer than this count as equal (float noise of means over prompts).
QUALITY_TOL = 1e-9

#: Required columns of the call-log frame that :meth:`FullInfoLog.from_frame` reads.
FRAME_COLUMNS = ("prompt_id", "model", "outcome", "cost_usd")

#: Per-prompt tags that :meth:`FullInfoLog.from_frame` keeps as segments: the free tags
#: of the call log (``features.call_log.COLUMNS``), so they come from the validated reader.
SEGMENT_COLUMNS = ("task", "team")


@dataclass(frozen=True)
class FullInfoLog:
    """Per-prompt truth: every candidate's logged outcome and cost for each prompt.

    Validated once in ``__post_init__`` so every metric below can trust its shapes.

    Parameters
    ----------
    prompt_ids : ndarray of str, shape (n_prompts,)
        One id per prompt, unique.
    candidates : tuple of str, length n_candidates
        Candidate model names; column ``j`` of ``outcome`` and ``cost_usd`` is
        ``candidates[j]``.
    outcome : ndarray of float, shape (n_prompts, n_candidates)
        Graded outcome in [0, 1] of each candidate on each prompt.
    cost_usd : ndarray of float, shape (n_prompts, n_candidates)
        Cost in USD (>= 0) of each candidate on each prompt.
    segments : dict of str to ndarray of str, shape (n_prompts,) each, optional
        Per-prompt tags (e.g. ``{"task": ..., "team": ...}``) to break metrics down by.

    Examples
    --------
    >>> import numpy as np
    >>> log = FullInfoLog(
    ...     prompt_ids=np.array(["p1", "p2"]),
    ...     candidates=("small", "large"),
    ...     outcome=np.array([[1.0, 1.0], [0.0, 1.0]]),
    ...     cost_usd=np.array([[0.01, 0.10], [0.01, 0.10]]),
    ... )
    >>> log.n_prompts, log.n_candidates
    (2, 2)
    """

    prompt_ids: np.ndarray
    candidates: tuple[str, ...]
    outcome: np.ndarray
    cost_usd: np.ndarray
    segments: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        prompt_ids = np.asarray(self.prompt_ids).astype(str)
        candidates = tuple(str(c) for c in self.candidates)
        outcome = np.asarray(self.outcome, dtype=np.float64)
        cost = np.asarray(self.cost_usd, dtype=np.float64)

        if prompt_ids.ndim != 1:
            raise ValueError(
                f"Expected prompt_ids of shape (n_prompts,), got shape {prompt_ids.shape}."
            )
        n_prompts = prompt_ids.shape[0]
        if n_prompts == 0:
            raise ValueError("Expected at least one prompt, got an empty log.")
        if len(set(prompt_ids.tolist())) != n_prompts:
            raise ValueError(
                f"Expected unique prompt_ids, got {n_prompts - len(set(prompt_ids.tolist()))} "
                "duplicates; aggregate rows per prompt first (FullInfoLog.from_frame does)."
            )
        if not candidates:
            raise ValueError("Expected at least one candidate, got none.")
        if len(set(candidates)) != len(candidates):
            raise ValueError(f"Expected unique candidates, got {candidates}.")
        expected = (n_prompts, len(candidates))
        for name, arr in (("outcome", outcome), ("cost_usd", cost)):
            if arr.shape != expected:
                raise ValueError(
                    f"Expected {name} of shape (n_prompts, n_candidates) = {expected}, "
                    f"got {arr.shape}."
                )
            if not np.isfinite(arr).all():
                raise ValueError(
                    f"Expected finite {name}, got {int((~np.isfinite(arr)).sum())} NaN/inf "
                    "values; drop or fill incomplete prompts (FullInfoLog.from_frame drops them)."
                )
        if outcome.min() < 0.0 or outcome.max() > 1.0:
            raise ValueError(
                f"Expected outcome in [0, 1], got values in [{outcome.min()}, {outcome.max()}]."
            )
        if cost.min() < 0.0:
            raise ValueError(f"Expected cost_usd >= 0, got a minimum of {cost.min()}.")

        segments: dict[str, np.ndarray] = {}
        for key, values in dict(self.segments).items():
            arr = np.asarray(values).astype(str)
            if arr.shape != (n_prompts,):
                raise ValueError(
                    f"Expected segment {key!r} of shape (n_prompts,) = ({n_prompts},), "
                    f"got {arr.shape}."
                )
            segments[str(key)] = arr

        object.__setattr__(self, "prompt_ids", prompt_ids)
        object.__setattr__(self, "candidates", candidates)
        object.__setattr__(self, "outcome", outcome)
        object.__setattr__(self, "cost_usd", cost)
        object.__setattr__(self, "segments", segments)

    @property
    def n_prompts(self) -> int:
        """Number of prompts (rows)."""
        return int(self.outcome.shape[0])

    @property
    def n_candidates(self) -> int:
        """Number of candidates (columns)."""
        return int(self.outcome.shape[1])

    def subset(self, mask: np.ndarray) -> FullInfoLog:
        """The log restricted to some prompts, e.g. one segment.

        Parameters
        ----------
        mask : ndarray of bool, shape (n_prompts,)
        """
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (self.n_prompts,):
            raise ValueError(
                f"Expected mask of shape (n_prompts,) = ({self.n_prompts},), got {mask.shape}."
            )
        return FullInfoLog(
            prompt_ids=self.prompt_ids[mask],
            candidates=self.candidates,
            outcome=self.outcome[mask],
            cost_usd=self.cost_usd[mask],
            segments={k: v[mask] for k, v in self.segments.items()},
        )

    @classmethod
    def from_frame(
        cls, df: pd.DataFrame, candidates: Sequence[str] | None = None
    ) -> tuple[FullInfoLog, int]:
        """Build the log from a call-log frame (one row per call).

        Only prompts that every candidate answered can be scored exactly, so the others
        are dropped, and counted so the caller can say how many.

        Parameters
        ----------
        df : pandas.DataFrame
            Call-log rows with columns ``prompt_id``, ``model``, ``outcome``, ``cost_usd``
            and optionally ``task`` and ``team`` (kept as segments). Rows with a missing
            outcome (unknown or pending) are ignored. Duplicate ``(prompt_id, model)``
            rows are averaged (outcome and cost).
        candidates : sequence of str, optional
            Models to evaluate, in this column order. Default: every model that has at
            least one row with an outcome, sorted. Rows of other models are ignored.

        Returns
        -------
        log : FullInfoLog
            The prompts where every candidate has an outcome and a cost.
        n_dropped : int
            Distinct ``prompt_id`` values of ``df`` not in ``log``.
        """
        missing = [c for c in FRAME_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(
                f"Expected columns {list(FRAME_COLUMNS)} in the call-log frame, "
                f"missing {missing}; got {list(df.columns)}."
            )
        all_prompts = df["prompt_id"].astype(str).unique()
        rows = df[df["outcome"].notna()].copy()
        rows["prompt_id"] = rows["prompt_id"].astype(str)
        rows["model"] = rows["model"].astype(str)
        if candidates is None:
            cands = tuple(sorted(rows["model"].unique().tolist()))
        else:
            cands = tuple(str(c) for c in candidates)
            absent = [c for c in cands if c not in set(rows["model"])]
            if absent:
                raise ValueError(
                    f"Candidates {absent} have no rows with an outcome; "
                    f"models with outcomes are {sorted(rows['model'].unique().tolist())}."
                )
            rows = rows[rows["model"].isin(cands)]
        if not cands:
            raise ValueError("Expected at least one row with an outcome, got none.")

        rows["outcome"] = rows["outcome"].astype(float)
        rows["cost_usd"] = rows["cost_usd"].astype(float)
        means = rows.groupby(["prompt_id", "model"])[["outcome", "cost_usd"]].mean()
        outcome = means["outcome"].unstack("model").reindex(columns=list(cands))
        cost = means["cost_usd"].unstack("model").reindex(columns=list(cands))
        complete = outcome.notna().all(axis=1) & cost.notna().all(axis=1)
        kept = outcome.index[complete.to_numpy()]
        if len(kept) == 0:
            raise ValueError(
                f"No prompt has an outcome and a cost for every candidate {list(cands)}; "
                "pass fewer candidates or a full-information log."
            )

        segments: dict[str, np.ndarray] = {}
        for key in SEGMENT_COLUMNS:
            if key in rows.columns:
                tags = rows.dropna(subset=[key]).groupby("prompt_id")[key].first()
                segments[key] = tags.reindex(kept).fillna("(none)").astype(str).to_numpy()

        log = cls(
            prompt_ids=np.asarray(kept, dtype=str),
            candidates=cands,
            outcome=outcome.loc[kept].to_numpy(dtype=np.float64),
            cost_usd=cost.loc[kept].to_numpy(dtype=np.float64),
            segments=segments,
        )
        return log, int(len(all_prompts) - len(kept))
