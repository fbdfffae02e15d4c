"""``evaluate --cluster``: read, featurize and score the calls per partition on Dask
workers; draw the curves and run the off-policy estimators on the gathered per-prompt
arrays in this process.

The expensive part of ``evaluate`` is per row and needs no other row: checking the
row (the reader's rules) and encoding its routing text through the bundle's ONNX
encoder. Each worker does both for one partition of the dataset
(`features.call_log_dataset`), with the same serving code as `/route`
(`serving.scoring.BundleScorer`: its featurizer, then its scorer and cost model on
the features). What comes back is small: the calls without their prompt text (the
prompt is replaced by a key of its routing text), and one feature row and one row of
scores per distinct routing text.

In this process `PrescoredPolicy` stands in for `training.evaluation.served.
ServedPolicy`: ``featurize`` returns the workers' features of each key and ``score``
returns the workers' scores of each feature row (scores are a function of the feature
row, so a row seen on a worker is not scored again; an unseen one is scored here by the
same `BundleScorer`). Everything after that, curves, summaries and off-policy
estimates, is the code ``evaluate`` runs without a cluster. The one difference is
onnxruntime's batching: a worker scores a partition's texts in one batch, so the
float32 scores can differ from a one-process run in their last bits (metrics agree
to 1e-6, `tests/training/test_cluster_commands.py`).

Which row's text represents a prompt is unchanged: the first row of the prompt in the
dataset's order (partitions in order, rows in file order), as one process reads them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.call_log_dataset import CallLogPartition, open_call_log_dataset
from features.context import RequestContext
from features.prices import PriceCatalog
from features.routing_text import routing_text
from serving.bundle import Bundle, load_bundle
from training.dataset import request_contexts
from training.evaluation.served import ServedPolicy

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

__all__ = ["PrescoredPolicy", "score_on_cluster", "text_key"]

#: The prefix of the keys that stand in for prompts in the gathered calls.
KEY_PREFIX = "routing-text:"


def text_key(text: str, context: RequestContext | None = None) -> str:
    """A short key of a routing text and, for a bundle with request-context columns, its
    context (SHA-256, 24 hex digits): the same text under two tasks is two feature rows."""
    if context is not None:
        text = f"{text}\x00{context.task}\x00{context.team}\x00{context.n_messages}"
    return KEY_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


@lru_cache(maxsize=4)
def _scorer(bundle_path: str, router_version: str):
    """One verified bundle and scorer per worker process (loaded on first use)."""
    from serving.scoring import BundleScorer

    bundle = load_bundle(bundle_path)
    if bundle.router_version != router_version:
        raise ValueError(
            f"{bundle_path} on this worker is router version {bundle.router_version}, the "
            f"client evaluates {router_version}: every worker must read the same bundle."
        )
    return BundleScorer(bundle)


def _score_partition(
    partition: CallLogPartition,
    *,
    bundle_path: str,
    router_version: str,
    text_source: str,
    prices: PriceCatalog,
    quarantine_path: str | None,
    storage_options: dict[str, Any],
) -> dict[str, Any]:
    """Read, featurize and score one partition (runs on a worker)."""
    read = partition.read(
        prices=prices, quarantine_path=quarantine_path, storage_options=storage_options
    )
    frame = read.frame
    texts = [
        routing_text(p if isinstance(p, str) else None, m, source=text_source)
        for p, m in zip(frame["prompt"], frame["messages"], strict=True)
    ]
    scorer = _scorer(bundle_path, router_version)
    contexts = (
        request_contexts(frame) if scorer.featurizer.spec.context_names else [None] * len(texts)
    )
    keys = [text_key(t, c) for t, c in zip(texts, contexts, strict=True)]
    unique: dict[str, tuple[str, RequestContext | None]] = {}
    for key, text, context in zip(keys, texts, contexts, strict=True):
        unique.setdefault(key, (text, context))
    names = list(unique)
    features = (
        scorer.featurizer.transform_texts(
            [unique[k][0] for k in names],
            [unique[k][1] for k in names] if scorer.featurizer.spec.context_names else None,
        )
        if names
        else np.zeros((0, 0), np.float32)
    )
    scores = (
        scorer.score_features(features)
        if names
        else None  # an empty partition (every row rejected is an error, not this)
    )
    slim = frame.assign(prompt=keys, messages=None)
    return {
        "frame": slim,
        "keys": names,
        "features": features,
        "p_success": None if scores is None else scores.p_success,
        "expected_cost_usd": None if scores is None else scores.expected_cost_usd,
        "n_quarantined": read.n_quarantined,
    }


class PrescoredPolicy(ServedPolicy):
    """`ServedPolicy` over features and scores computed on the workers.

    Parameters
    ----------
    bundle : Bundle
    candidates : sequence of str, optional
        As `ServedPolicy`.
    keys : list of str
        Routing-text keys, one per row of ``features``.
    features : ndarray of float32, shape (n_keys, n_features)
    p_success, expected_cost_usd : ndarray of float, shape (n_keys, n_bundle_candidates)
        The workers' scores of every bundle candidate.
    """

    def __init__(
        self,
        bundle: Bundle,
        candidates: Sequence[str] | None,
        *,
        keys: list[str],
        features: np.ndarray,
        p_success: np.ndarray,
        expected_cost_usd: np.ndarray,
    ) -> None:
        super().__init__(bundle, candidates)
        self._position = {k: i for i, k in enumerate(keys)}
        self._features = np.ascontiguousarray(features, dtype=np.float32)
        self._p = p_success
        self._c = expected_cost_usd
        self._by_row = {row.tobytes(): i for i, row in enumerate(self._features)}

    def featurize(
        self, texts: list[str], contexts: Sequence[RequestContext] | None = None
    ) -> np.ndarray:
        """The workers' feature rows of routing-text keys (a real text is encoded here).

        A key already stands for its text and request context as the worker read them
        (the client's rows lost their messages), so ``contexts`` is used only for texts
        encoded here."""
        missing = [t for t in texts if t not in self._position]
        if missing:  # not a key: a text this process must encode itself
            return super().featurize(texts, contexts)
        return self._features[[self._position[t] for t in texts]]

    def score(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The workers' scores of each feature row; rows never seen there scored here."""
        features = np.ascontiguousarray(features, dtype=np.float32)
        rows = [self._by_row.get(row.tobytes(), -1) for row in features]
        index = np.asarray(rows, dtype=np.int64)
        if len(index) and (index < 0).any():
            return super().score(features)
        p = self._p[index] if len(index) else self._p[:0]
        c = self._c[index] if len(index) else self._c[:0]
        return p[:, self.allowed], c[:, self.allowed]


def score_on_cluster(
    client: Client,
    bundle: Bundle,
    candidates: Sequence[str] | None,
    logs: Sequence[str | Path],
    *,
    prices: PriceCatalog,
    quarantine: Path,
) -> tuple[pd.DataFrame, int, PrescoredPolicy]:
    """The calls of ``logs`` (prompts as routing-text keys), the rows rejected, and the
    bundle's policy over the workers' features and scores.

    The bundle folder and the logs must be readable by every worker at the same path or
    URL (README "Beyond one machine").
    """
    import dask

    from features.call_log_dataset import collect_quarantine, partition_quarantine_path

    dataset = open_call_log_dataset(logs)
    parts_dir = Path(str(quarantine) + ".parts")
    tasks = [
        dask.delayed(_score_partition)(
            partition,
            bundle_path=str(bundle.path.resolve()),
            router_version=bundle.router_version,
            text_source=bundle.feature_spec.text_source,
            prices=prices,
            quarantine_path=str(partition_quarantine_path(parts_dir, partition)),
            storage_options=dataset.storage_options,
        )
        for partition in dataset.partitions
    ]
    parts_dir.mkdir(parents=True, exist_ok=True)
    results = dask.compute(*tasks)
    n_quarantined = collect_quarantine(parts_dir, quarantine)
    frame = pd.concat([r["frame"] for r in results], ignore_index=True)
    keys: list[str] = []
    seen: set[str] = set()
    features, p, c = [], [], []
    for r in results:
        if not r["keys"]:
            continue
        fresh = [i for i, k in enumerate(r["keys"]) if k not in seen]
        seen.update(r["keys"])
        keys.extend(r["keys"][i] for i in fresh)
        features.append(r["features"][fresh])
        p.append(r["p_success"][fresh])
        c.append(r["expected_cost_usd"][fresh])
    served = PrescoredPolicy(
        bundle,
        candidates,
        keys=keys,
        features=np.concatenate(features) if features else np.zeros((0, 0), np.float32),
        p_success=np.concatenate(p) if p else np.zeros((0, len(bundle.candidate_names))),
        expected_cost_usd=np.concatenate(c) if c else np.zeros((0, len(bundle.candidate_names))),
    )
    return frame, n_quarantined, served
