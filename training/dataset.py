"""Training sets built from call logs: one feature row per prompt, one outcome row
per logged call.

Works the same for full-information benchmarks (every candidate answered each
``prompt_id``) and for production logs (one row per prompt, only the chosen
model's outcome seen): learners fit each candidate on the rows it answered.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.featurizer import Featurizer
from features.routing_text import routing_text


@dataclass(frozen=True)
class TrainingSet:
    """Prompts, their features, and the logged calls that answered them.

    Attributes
    ----------
    candidates : tuple of str, length n_candidates
    prompt_ids : ndarray of str, shape (n_prompts,)
    texts : list of str, length n_prompts
        Routing text of each prompt (`features.routing_text`).
    features : ndarray of float32, shape (n_prompts, n_features)
    prompt : ndarray of int, shape (n_rows,)
        Index into the prompts of each logged call.
    candidate : ndarray of int, shape (n_rows,)
    outcome : ndarray of float, shape (n_rows,)
        Graded outcome in [0, 1]; NaN where pending or unknown.
    cost_usd, input_tokens, output_tokens : ndarray of float, shape (n_rows,)
        NaN where not logged.
    segments : dict of str -> ndarray of str, shape (n_prompts,)
        ``task`` and ``team`` of each prompt, for per-segment reports.
    """

    candidates: tuple[str, ...]
    prompt_ids: np.ndarray
    texts: list[str]
    features: np.ndarray
    prompt: np.ndarray
    candidate: np.ndarray
    outcome: np.ndarray
    cost_usd: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    segments: dict[str, np.ndarray]

    @property
    def n_prompts(self) -> int:
        return len(self.prompt_ids)

    @property
    def labelled(self) -> np.ndarray:
        """Rows with a known outcome, shape ``(n_rows,)`` bool."""
        return ~np.isnan(self.outcome)

    def full_information(self) -> np.ndarray:
        """Prompts whose every candidate has a labelled, costed row, shape ``(n_prompts,)``."""
        seen = np.zeros((self.n_prompts, len(self.candidates)), dtype=bool)
        ok = self.labelled & ~np.isnan(self.cost_usd)
        seen[self.prompt[ok], self.candidate[ok]] = True
        return seen.all(axis=1)

    def subset(self, prompts: np.ndarray) -> TrainingSet:
        """The prompts where ``prompts`` (bool, shape ``(n_prompts,)``) is True, and their rows."""
        prompts = np.asarray(prompts, dtype=bool)
        new_index = np.cumsum(prompts) - 1
        rows = prompts[self.prompt]
        return TrainingSet(
            candidates=self.candidates,
            prompt_ids=self.prompt_ids[prompts],
            texts=[t for t, keep in zip(self.texts, prompts, strict=True) if keep],
            features=self.features[prompts],
            prompt=new_index[self.prompt[rows]],
            candidate=self.candidate[rows],
            outcome=self.outcome[rows],
            cost_usd=self.cost_usd[rows],
            input_tokens=self.input_tokens[rows],
            output_tokens=self.output_tokens[rows],
            segments={k: v[prompts] for k, v in self.segments.items()},
        )

    def matrix(self, values: np.ndarray) -> np.ndarray:
        """Row values as ``(n_prompts, n_candidates)`` (mean of duplicates, NaN if none)."""
        total = np.zeros((self.n_prompts, len(self.candidates)))
        count = np.zeros_like(total)
        ok = ~np.isnan(values)
        np.add.at(total, (self.prompt[ok], self.candidate[ok]), values[ok])
        np.add.at(count, (self.prompt[ok], self.candidate[ok]), 1)
        with np.errstate(invalid="ignore"):
            return total / np.where(count > 0, count, np.nan)


def default_candidates(frame: pd.DataFrame) -> list[str]:
    """Models with at least one graded call, sorted."""
    return sorted(frame.loc[frame["outcome"].notna(), "model"].unique().tolist())


def featurize(featurizer: Featurizer, texts: list[str], chunk: int = 256) -> np.ndarray:
    """Feature matrix of many texts, with progress on stderr."""
    from tqdm.auto import tqdm

    parts = []
    with tqdm(total=len(texts), desc="featurizing", unit="prompt", file=sys.stderr) as bar:
        for start in range(0, len(texts), chunk):
            parts.append(featurizer.transform_texts(texts[start : start + chunk]))
            bar.update(min(chunk, len(texts) - start))
    if not parts:
        return np.zeros((0, featurizer.spec.n_features), dtype=np.float32)
    return np.vstack(parts)


def build_training_set(
    frame: pd.DataFrame, featurizer: Featurizer, candidates: Sequence[str] | None = None
) -> TrainingSet:
    """Build a `TrainingSet` from a validated call-log frame.

    Rows of models outside ``candidates`` are left out; the first row of each
    ``prompt_id`` supplies its text.
    """
    candidates = list(candidates) if candidates else default_candidates(frame)
    unknown = sorted(set(candidates) - set(frame["model"].unique()))
    if unknown:
        raise ValueError(
            f"Candidates {unknown} have no rows in the logs; models present: "
            f"{sorted(frame['model'].unique())}."
        )
    frame = frame[frame["model"].isin(candidates)].reset_index(drop=True)
    firsts = frame.drop_duplicates("prompt_id")
    prompt_ids = firsts["prompt_id"].to_numpy()
    source = featurizer.spec.text_source
    texts = [
        routing_text(p if isinstance(p, str) else None, m, source=source)
        for p, m in zip(firsts["prompt"], firsts["messages"], strict=True)
    ]
    index = {pid: i for i, pid in enumerate(prompt_ids)}
    segments = {
        key: firsts[key].fillna("(none)").astype(str).to_numpy()
        for key in ("task", "team")
        if key in firsts and firsts[key].notna().any()
    }
    return TrainingSet(
        candidates=tuple(candidates),
        prompt_ids=prompt_ids,
        texts=texts,
        features=featurize(featurizer, texts),
        prompt=frame["prompt_id"].map(index).to_numpy(dtype=np.int64),
        candidate=frame["model"].map({c: i for i, c in enumerate(candidates)}).to_numpy(np.int64),
        outcome=frame["outcome"].to_numpy(dtype=np.float64),
        cost_usd=frame["cost_usd"].to_numpy(dtype=np.float64),
        input_tokens=frame["input_tokens"].to_numpy(dtype=np.float64),
        output_tokens=frame["output_tokens"].to_numpy(dtype=np.float64),
        segments=segments,
    )
