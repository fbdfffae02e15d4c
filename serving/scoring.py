"""Score every candidate of a bundle: success probability and expected cost.

This is the whole learned part of a decision. The same object answers `/route`,
`outcome-router route` and offline evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from features.context import RequestContext
from features.featurizer import Featurizer
from serving.bundle import Bundle, BundleError, check_graph_signature
from serving.calibration import apply_calibration


@dataclass(frozen=True)
class CacheHint:
    """Prompt tokens the gateway expects ``model`` to serve from its prompt cache."""

    model: str
    cached_tokens: int


@dataclass(frozen=True)
class CacheHintEffect:
    """What a cache hint did to one request's expected costs.

    Attributes
    ----------
    model : str
        The hinted model.
    applied : bool
        Whether the hint lowered the model's expected cost.
    cached_tokens : float
        Prompt tokens re-priced at the cache-read price: the hint's count capped at
        the prompt tokens the cost model predicts for the model (a prompt cannot
        hit the cache for more tokens than it has, and output is never cached;
        the prediction is an expectation, hence a float); 0 when not applied.
    discount_usd : float
        ``cached_tokens * (input price - cache-read price)``.
    reason : str or None
        Why nothing changed, when not applied.
    """

    model: str
    applied: bool
    cached_tokens: float = 0.0
    discount_usd: float = 0.0
    reason: str | None = None

    @classmethod
    def unused(cls, model: str, reason: str) -> CacheHintEffect:
        """A hint that changed nothing, and why."""
        return cls(model=model, applied=False, reason=reason)


@dataclass(frozen=True)
class Scores:
    """Per-candidate predictions.

    Attributes
    ----------
    p_success : ndarray of shape (n_rounds, n_candidates)
    expected_cost_usd : ndarray of shape (n_rounds, n_candidates)
    cache_hint : CacheHintEffect or None
        What the request's cache hint did (None: no hint).
    """

    p_success: np.ndarray
    expected_cost_usd: np.ndarray
    cache_hint: CacheHintEffect | None = None

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
        self._scorer = _open_graph(bundle, "scorer", scorer, options)
        self._scorer_io = (scorer.input, scorer.output)
        self._calibration = scorer.calibration
        self._cost = _open_graph(bundle, "cost_model", cost, options)
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
        return self._score(features)[0]

    def _score(self, features: np.ndarray) -> tuple[Scores, np.ndarray]:
        """Scores and the predicted units of every cost component, shape
        ``(n_rounds, n_components)``."""
        features = np.ascontiguousarray(features, dtype=np.float32)
        p = self._scorer.run([self._scorer_io[1]], {self._scorer_io[0]: features})[0]
        log_units = self._cost.run([self._cost_io[1]], {self._cost_io[0]: features})[0]
        units = np.exp(log_units.astype(np.float64)) * self._component_smearing
        units = np.clip(units - self._component_offset, 0.0, None)
        cost = np.zeros((features.shape[0], len(self.candidates)))
        np.add.at(cost.T, self._component_candidate, (units * self._component_price).T)
        p = apply_calibration(p.astype(np.float64), self._calibration)
        return Scores(p_success=np.clip(p, 0.0, 1.0), expected_cost_usd=cost), units

    def score_texts(
        self, texts: list[str], contexts: Sequence[RequestContext] | None = None
    ) -> Scores:
        """Scores of routing texts (with their request contexts), one row per text."""
        return self.score_features(self.featurizer.transform_texts(texts, contexts))

    def score_request(
        self,
        prompt: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        cache: CacheHint | None = None,
        context: RequestContext | None = None,
    ) -> Scores:
        """Scores of one request, shape ``(1, n_candidates)``, cache-aware."""
        return self.score_text(self.featurizer.text_of(prompt, messages), cache, context)

    def score_text(
        self,
        text: str,
        cache: CacheHint | None = None,
        context: RequestContext | None = None,
    ) -> Scores:
        """Scores of one routing text, shape ``(1, n_candidates)``.

        ``context`` (task, team, conversation depth) feeds the bundle's request-context
        columns, if its feature spec has any (`features.context`).

        A cache hint re-prices the hinted model's cached prompt tokens at its
        cache-read price instead of its input price, for at most the prompt tokens
        predicted for it; ``Scores.cache_hint`` says what it did.
        """
        contexts = None if context is None else [context]
        scores, units = self._score(self.featurizer.transform_texts([text], contexts))
        if cache is None:
            return scores
        effect = self._cache_effect(units[0], cache)
        cost = scores.expected_cost_usd
        if effect.applied:
            cost = cost.copy()
            cost[0, self._index[cache.model]] -= effect.discount_usd
        return Scores(scores.p_success, cost, effect)

    def _cache_effect(self, units: np.ndarray, cache: CacheHint) -> CacheHintEffect:
        """What ``cache`` does given one request's predicted ``units`` per component."""
        model = cache.model
        k = self._index.get(model)
        if k is None:
            return CacheHintEffect.unused(
                model, f"{model!r} is not a candidate of this router: nothing to re-price."
            )
        component = self._input_component.get(k)
        if component is None:
            return CacheHintEffect.unused(
                model,
                f"The cost of {model!r} is learned from logged cost_usd, not from tokens, "
                "so its cached prompt tokens cannot be re-priced.",
            )
        price = self.bundle.candidates[k].price
        cache_read = None if price is None else price.cache_read_input_token_cost
        if cache_read is None:
            return CacheHintEffect.unused(
                model,
                f"{model!r} has no cache-read price (cache_read_input_token_cost) in the "
                "bundle's price catalog, so cached tokens cost what input tokens cost.",
            )
        if cache.cached_tokens == 0:
            return CacheHintEffect.unused(model, "cached_tokens is 0.")
        per_token = float(self._component_price[component]) - cache_read
        if per_token <= 0:
            return CacheHintEffect.unused(
                model, f"Cache reads of {model!r} cost no less than its input tokens."
            )
        tokens = min(float(cache.cached_tokens), float(units[component]))
        if tokens <= 0:
            return CacheHintEffect.unused(
                model, f"No prompt tokens are predicted for {model!r} to re-price."
            )
        return CacheHintEffect(
            model=model, applied=True, cached_tokens=tokens, discount_usd=tokens * per_token
        )


def _open_graph(bundle: Bundle, section: str, graph: Any, options: Any) -> Any:
    """An onnxruntime session of one of the bundle's graphs, its tensor names checked
    against the manifest (`serving.bundle.check_graph_signature`)."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(
            str(bundle.file(graph.file)), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types
        raise BundleError(
            f"Bundle file {graph.file} ({section}) is not a loadable ONNX graph: {exc}"
        ) from exc
    check_graph_signature(session, section, graph)
    return session
