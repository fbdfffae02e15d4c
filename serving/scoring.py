"""Score every candidate of a bundle: success probability and expected cost.

This is the whole learned part of a decision. The same object answers `/route`,
`outcome-router route` and offline evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from features.featurizer import Featurizer
from serving.bundle import Bundle
from serving.calibration import apply_calibration


@dataclass(frozen=True)
class Scores:
    """Per-candidate predictions.

    Attributes
    ----------
    p_success : ndarray of shape (n_rounds, n_candidates)
    expected_cost_usd : ndarray of shape (n_rounds, n_candidates)
    """

    p_success: np.ndarray
    expected_cost_usd: np.ndarray

    def check_one(self, n_candidates: int) -> None:
        """Raise ``ValueError`` unless these are finite scores of one request for
        ``n_candidates`` candidates: what `/route` and a loading bundle both need."""
        p, cost = self.p_success, self.expected_cost_usd
        if p.shape != (1, n_candidates) or cost.shape != p.shape:
            raise ValueError(
                f"The scorer returned shapes {p.shape} and {cost.shape}; "
                f"expected (1, {n_candidates})."
            )
        if not (np.isfinite(p).all() and np.isfinite(cost).all()):
            raise ValueError("The scorer returned non-finite scores.")


@dataclass(frozen=True)
class CacheHint:
    """Prompt tokens the gateway expects ``model`` to serve from its prompt cache."""

    model: str
    cached_tokens: int


class BundleScorer:
    """Runs a bundle's encoder, success scorer and cost model.

    Parameters
    ----------
    bundle : Bundle
        A verified bundle (`serving.bundle.load_bundle`).
    intra_op_threads : int
        onnxruntime threads per session.
    workers : int
        Texts encoded in parallel by `score_texts` (batch scoring).
    """

    def __init__(self, bundle: Bundle, *, intra_op_threads: int = 1, workers: int = 1) -> None:
        import onnxruntime as ort

        self.bundle = bundle
        self.candidates = bundle.candidate_names
        self.featurizer = Featurizer(
            bundle.feature_spec, bundle.path, intra_op_threads=intra_op_threads, workers=workers
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        scorer = bundle.contents.scorer
        cost = bundle.contents.cost_model
        self._scorer = ort.InferenceSession(
            str(bundle.file(scorer.file)), options, providers=["CPUExecutionProvider"]
        )
        self._scorer_io = (scorer.input, scorer.output)
        self._calibration = scorer.calibration
        self._cost = ort.InferenceSession(
            str(bundle.file(cost.file)), options, providers=["CPUExecutionProvider"]
        )
        self._cost_io = (cost.input, cost.output)
        components = cost.components
        self._component_candidate = np.array([c.candidate for c in components], dtype=np.int64)
        self._component_price = np.array([c.price for c in components], dtype=np.float64)
        self._component_smearing = np.array([c.smearing for c in components], dtype=np.float64)
        self._component_offset = np.array([c.offset for c in components], dtype=np.float64)
        # Where a cache hint applies: the input-token component of each candidate.
        self._input_component = {
            c.candidate: i for i, c in enumerate(components) if c.name == "input_tokens"
        }
        self._index = {name: i for i, name in enumerate(self.candidates)}
        #: Worth a hand-off to the decision pool per request (`/route`): MiniLM
        #: runs for milliseconds with the GIL released; the static encoder does not.
        self.offload = bundle.feature_spec.encoder != "static"

    def score_features(self, features: np.ndarray) -> Scores:
        """Scores from feature vectors of shape ``(n_rounds, n_features)``."""
        features = np.ascontiguousarray(features, dtype=np.float32)
        p = self._scorer.run([self._scorer_io[1]], {self._scorer_io[0]: features})[0]
        log_units = self._cost.run([self._cost_io[1]], {self._cost_io[0]: features})[0]
        units = np.exp(log_units.astype(np.float64)) * self._component_smearing
        units = np.clip(units - self._component_offset, 0.0, None)
        cost = np.zeros((features.shape[0], len(self.candidates)))
        np.add.at(cost.T, self._component_candidate, (units * self._component_price).T)
        p = apply_calibration(p.astype(np.float64), self._calibration)
        return Scores(p_success=np.clip(p, 0.0, 1.0), expected_cost_usd=cost)

    def score_texts(self, texts: list[str]) -> Scores:
        """Scores of routing texts, one row per text."""
        return self.score_features(self.featurizer.transform_texts(texts))

    def score_request(
        self,
        prompt: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        cache: CacheHint | None = None,
    ) -> Scores:
        """Scores of one request, shape ``(1, n_candidates)``, cache-aware."""
        return self.score_text(self.featurizer.text_of(prompt, messages), cache)

    def score_text(self, text: str, cache: CacheHint | None = None) -> Scores:
        """Scores of one routing text, shape ``(1, n_candidates)``.

        A cache hint re-prices the hinted model's cached prompt tokens at its
        cache-read price instead of its input price.
        """
        scores = self.score_texts([text])
        if cache is not None and cache.cached_tokens > 0:
            self.apply_cache_hint(scores.expected_cost_usd, cache)
        return scores

    def apply_cache_hint(self, expected_cost_usd: np.ndarray, cache: CacheHint) -> None:
        """Lower the hinted candidate's expected cost in place by its cache discount."""
        k = self._index.get(cache.model)
        if k is None or k not in self._input_component:
            return
        price = self.bundle.candidates[k].price
        if price is None or price.cache_read_input_token_cost is None:
            return
        discount = price.input_cost_per_token - price.cache_read_input_token_cost
        expected_cost_usd[:, k] = np.maximum(
            expected_cost_usd[:, k] - cache.cached_tokens * discount, 0.0
        )
