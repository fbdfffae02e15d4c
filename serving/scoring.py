"""Score every candidate of a bundle: success probability and expected cost.

This is the whole learned part of a decision. The same object answers `/route`,
`outcome-router route` and offline evaluation.

Expected costs can account for prompt caches, from one of two sources: a request's
``cache`` hint (a gateway's word that one model holds N cached prompt tokens), or the
router's own per-session state (`serving.session_cache`, whose docstring states the
cost model: warm prefix at the cache-read price, write premium where the provider
charges one). `CacheAssumption` says what was assumed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from features.context import RequestContext
from features.featurizer import Featurizer
from serving.bundle import Bundle, BundleError, check_graph_signature
from serving.calibration import apply_calibration
from serving.session_cache import CacheRules, SessionPrefix


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
class CacheAssumption:
    """What one request's expected costs assume about prompt caches.

    Attributes
    ----------
    source : {"session", "request"}
        The router's session state, or the request's ``cache`` field.
    model : str or None
        The model assumed to hold a warm prefix: the hinted model, or the session's
        last model (None: a session not seen before).
    cached_tokens : float
        Prompt tokens priced at ``model``'s cache-read price (0: none).
    age_s : float or None
        Seconds since the session's last decision (None for a request hint or a new
        session).
    discount_usd : float
        How much the cached tokens lowered the expected costs, summed over
        ``warm_prefixes``.
    write_premium_usd : dict of str to float
        Per candidate, the cache-write premium added to its expected cost: writing
        its prompt (a cold candidate) or the part beyond its prefix (the warm one)
        at ``cache_creation_input_token_cost`` instead of the input price. Empty for
        a request hint and for providers without a write fee.
    reason : str or None
        Why no prefix was priced as cached, when none was.
    request_tokens : float or None
        The request's whole prompt, measured (`serving.session_cache`): the floor of
        every candidate's prompt tokens in a session. None for a request hint.
    warm_prefixes : dict of str to float
        Every model priced with a warm prefix and its cached tokens: the session's
        last model and earlier ones still within their TTL (a request hint: its model).
    """

    source: str
    model: str | None
    cached_tokens: float = 0.0
    age_s: float | None = None
    discount_usd: float = 0.0
    write_premium_usd: dict[str, float] = field(default_factory=dict)
    reason: str | None = None
    request_tokens: float | None = None
    warm_prefixes: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_hint(cls, effect: CacheHintEffect) -> CacheAssumption:
        """The assumption of a request's ``cache`` hint, from what it did."""
        return cls(
            source="request",
            model=effect.model,
            cached_tokens=effect.cached_tokens,
            discount_usd=effect.discount_usd,
            reason=effect.reason,
            warm_prefixes={effect.model: effect.cached_tokens} if effect.applied else {},
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the answer and the decision log."""
        return {
            "source": self.source,
            "model": self.model,
            "cached_tokens": self.cached_tokens,
            "age_s": self.age_s,
            "discount_usd": self.discount_usd,
            "write_premium_usd": dict(self.write_premium_usd),
            "reason": self.reason,
            "request_tokens": self.request_tokens,
            "warm_prefixes": dict(self.warm_prefixes),
        }


@dataclass(frozen=True)
class Scores:
    """Per-candidate predictions.

    Attributes
    ----------
    p_success : ndarray of shape (n_rounds, n_candidates)
    expected_cost_usd : ndarray of shape (n_rounds, n_candidates)
    cache_hint : CacheHintEffect or None
        What the request's cache hint did (None: no hint).
    prompt_tokens : ndarray of shape (n_rounds, n_candidates) or None
        Prompt tokens the cost model predicts per candidate (NaN where a candidate's
        cost is learned from ``cost_usd`` rather than tokens); what a session
        remembers of the chosen model (`serving.session_cache`).
    cache_assumed : CacheAssumption or None
        What the costs assume about prompt caches (None: nothing).
    """

    p_success: np.ndarray
    expected_cost_usd: np.ndarray
    cache_hint: CacheHintEffect | None = None
    prompt_tokens: np.ndarray | None = None
    cache_assumed: CacheAssumption | None = None

    def prompt_tokens_of(self, k: int, row: int = 0) -> float:
        """Predicted prompt tokens of candidate ``k`` (0 where its cost is not token-based):
        what a session remembers of the chosen model."""
        if self.prompt_tokens is None:
            return 0.0
        tokens = float(self.prompt_tokens[row, k])
        return 0.0 if np.isnan(tokens) else tokens

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
    cache_rules : CacheRules, optional
        Shortest cacheable prompt per candidate, for session-aware costs
        (`serving.session_cache`); default: 1,024 tokens for every candidate.
    """

    def __init__(
        self,
        bundle: Bundle,
        *,
        intra_op_threads: int = 1,
        workers: int = 1,
        cache_rules: CacheRules | None = None,
    ) -> None:
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
        self._set_cache_prices(cache_rules if cache_rules is not None else CacheRules())
        #: Worth a hand-off to the decision pool per request (`/route`): MiniLM
        #: runs for milliseconds with the GIL released; the static encoder does not.
        self.offload = bundle.feature_spec.encoder != "static"

    def _set_cache_prices(self, rules: CacheRules) -> None:
        """Per-candidate arrays of session-aware pricing, shape ``(n_candidates,)``: the
        input-token component (-1: none), input and cache-read prices (NaN: no read
        price), the write premium per token (0: no fee) and the shortest cacheable
        prompt."""
        n = len(self.candidates)
        self._prompt_component = np.full(n, -1, dtype=np.int64)
        self._input_price = np.zeros(n)
        self._read_price = np.full(n, np.nan)
        self._write_premium = np.zeros(n)
        for k, component in self._input_component.items():
            self._prompt_component[k] = component
            input_price = float(self._component_price[component])
            self._input_price[k] = input_price
            price = self.bundle.candidates[k].price
            if price is not None and price.cache_read_input_token_cost is not None:
                self._read_price[k] = price.cache_read_input_token_cost
            if price is not None and price.cache_creation_input_token_cost is not None:
                self._write_premium[k] = max(price.cache_creation_input_token_cost - input_price, 0)
        self._has_prompt = self._prompt_component >= 0
        self._prompt_columns = np.maximum(self._prompt_component, 0)
        self._some_without_prompt = not bool(self._has_prompt.all())
        self._min_cache_tokens = np.array([rules.min_tokens_for(c) for c in self.candidates])
        # Plain lists for the per-request loops over a handful of candidates: faster
        # than numpy on arrays this small (`_floor_prompt`, `_session_costs`).
        self._token_priced = [int(k) for k in np.flatnonzero(self._has_prompt)]
        self._write_fee = [
            (k, float(self._write_premium[k]), float(self._min_cache_tokens[k]))
            for k in self._token_priced
            if self._write_premium[k] > 0
        ]

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
        return self.score_text(self.featurizer.text_of(prompt, messages), cache, context=context)

    def score_text(
        self,
        text: str,
        cache: CacheHint | None = None,
        session: SessionPrefix | None = None,
        context: RequestContext | None = None,
    ) -> Scores:
        """Scores of one routing text, shape ``(1, n_candidates)``.

        ``context`` (task, team, conversation depth) feeds the bundle's request-context
        columns, if its feature spec has any (`features.context`).

        A cache hint re-prices the hinted model's cached prompt tokens at its
        cache-read price instead of its input price, for at most the prompt tokens
        predicted for it; ``Scores.cache_hint`` says what it did. Without a hint, a
        session's state prices its warm prefix and every candidate's cache-write
        premium (`serving.session_cache`). ``Scores.cache_assumed`` says what was
        assumed either way.
        """
        contexts = None if context is None else [context]
        scores, units = self._score(self.featurizer.transform_texts([text], contexts))
        prompt_tokens = units[:, self._prompt_columns]
        if self._some_without_prompt:
            prompt_tokens[:, ~self._has_prompt] = np.nan
        cost = scores.expected_cost_usd
        if cache is not None:
            effect = self._cache_effect(units[0], cache)
            if effect.applied:
                cost = cost.copy()
                cost[0, self._index[cache.model]] -= effect.discount_usd
            return Scores(
                scores.p_success, cost, effect, prompt_tokens, CacheAssumption.from_hint(effect)
            )
        if session is None:
            return Scores(scores.p_success, cost, None, prompt_tokens)
        if session.request_tokens is not None:
            # A conversation's prompt is measured, not predicted (`serving.session_cache`).
            cost, prompt_tokens = self._floor_prompt(cost, prompt_tokens, session.request_tokens)
        cost, assumed = self._session_costs(prompt_tokens[0], cost, session)
        return Scores(scores.p_success, cost, None, prompt_tokens, assumed)

    def floor_prompt_tokens(self, scores: Scores, request_tokens: float) -> Scores:
        """``scores`` with every token-priced candidate's prompt at least
        ``request_tokens`` (its measured size), priced at the input price: what
        session-aware costs do before any cache is priced, alone (an ablation in
        `benchmarks/cache.py`)."""
        cost, tokens = self._floor_prompt(
            scores.expected_cost_usd, scores.prompt_tokens, request_tokens
        )
        return Scores(scores.p_success, cost, scores.cache_hint, tokens, scores.cache_assumed)

    def _floor_prompt(
        self, cost: np.ndarray, prompt_tokens: np.ndarray, request_tokens: float
    ) -> tuple[np.ndarray, np.ndarray]:
        cost, tokens = cost.copy(), prompt_tokens.copy()
        for k in self._token_priced:
            short = request_tokens - tokens[0, k]
            if short > 0:
                cost[0, k] += short * self._input_price[k]
                tokens[0, k] = request_tokens
        return cost, tokens

    def _session_costs(
        self, tokens: np.ndarray, cost: np.ndarray, session: SessionPrefix
    ) -> tuple[np.ndarray, CacheAssumption]:
        """``cost`` (shape ``(1, n_candidates)``) with every warm prefix of the session at
        the cache-read price and every candidate's write premium, given the prompt
        ``tokens`` per candidate."""
        n_tokens = tokens.tolist()
        premium = dict.fromkeys(range(len(n_tokens)), 0.0)
        for k, fee, minimum in self._write_fee:
            if n_tokens[k] >= minimum:
                premium[k] = n_tokens[k] * fee
        discount = 0.0
        cost = cost.copy()
        cached: dict[str, float] = {}
        reason = session.reason
        for model, (previous, _) in session.prefixes.items():
            k = self._index[model]
            minimum = float(self._min_cache_tokens[k])
            prefix = min(previous, n_tokens[k]) if self._has_prompt[k] else 0.0
            if not self._has_prompt[k]:
                why = (
                    f"the cost of {model} is learned from logged cost_usd, not from tokens, "
                    "so its cached prefix cannot be re-priced"
                )
            elif np.isnan(self._read_price[k]):
                why = f"{model} has no cache-read price in the bundle's price catalog"
            elif prefix < minimum:
                why = (
                    f"the prefix ({prefix:.0f} tokens) is shorter than the {minimum:.0f} "
                    f"tokens {model}'s provider caches at least"
                )
            else:
                cached[model] = prefix
                saved = prefix * max(self._input_price[k] - self._read_price[k], 0.0)
                cost[0, k] -= saved
                discount += saved
                premium[k] = (n_tokens[k] - prefix) * float(self._write_premium[k])
                continue
            if model == session.model:
                reason = why
        charged = {self.candidates[k]: p for k, p in premium.items() if p > 0}
        for k, p in premium.items():
            if p > 0:
                cost[0, k] += p
        last = cached.get(session.model or "", 0.0)
        assumed = CacheAssumption(
            source="session",
            model=session.model,
            cached_tokens=last,
            age_s=session.age_s,
            discount_usd=float(discount),
            write_premium_usd=charged,
            reason=None if last > 0 else reason or "no prompt tokens to price as cached",
            request_tokens=session.request_tokens,
            warm_prefixes=cached,
        )
        return cost, assumed

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
