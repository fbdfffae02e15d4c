"""What a running router holds: the bundle, its scorer, the fallback model, the
decision log and the decision pool, loaded once (`RouterService.load`), plus the
policy knobs of one decision (`policy_params`).

``POST /route`` (through `serving.api.deps`), ``POST /admin/reload``
(`serving.reload`) and the app's lifespan (`serving.app`) all build and use the
same `RouterService`; ``outcome-router route`` decides with the same
`policy_params`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from features.context import RequestContext
from features.spec import FeatureSpec
from serving.bundle import Bundle, BundleError, FallbackModelError, load_bundle
from serving.config import Settings
from serving.deadline import DecisionRunner
from serving.decision import RoutingDecision, routing_decisions
from serving.decision_log import DecisionLog
from serving.policy import Exploration, PolicyParams
from serving.scoring import BundleScorer, CacheHint, Scores
from serving.session_cache import SessionCache, SessionPrefix


def policy_params(
    defaults: Mapping[str, Any],
    *,
    value_usd: float | None = None,
    min_success: float | None = None,
    max_cost_usd: float | None = None,
    candidates: Sequence[str] | None = None,
) -> PolicyParams:
    """The knobs of one decision: the caller's where given, else the bundle's.

    Shared by ``POST /route`` and ``outcome-router route`` so both decide alike.
    A knob cannot be unset by the caller (None means "use the default"): send
    ``min_success=0`` to drop the bundle's floor.

    Parameters
    ----------
    defaults : mapping
        The manifest's ``policy`` (``value_usd``, ``min_success``, ``max_cost_usd``,
        and optionally ``reference_model`` and ``reference_margin``).
    candidates : sequence of str, optional
        The bundle's candidates, in column order; needed to place a
        ``reference_model``.

    Examples
    --------
    >>> policy_params({"value_usd": 1.0, "min_success": 0.5}, value_usd=0.1)
    PolicyParams(value_usd=0.1, min_success=0.5, max_cost_usd=None)
    """
    reference, margin = None, float(defaults.get("reference_margin") or 0.0)
    name = defaults.get("reference_model")
    if name is not None and margin > 0:
        if candidates is None or name not in candidates:
            raise ValueError(
                f"The policy's reference_model {name!r} is not among the candidates "
                f"{None if candidates is None else list(candidates)}: pass the bundle's "
                "candidates, or retrain the bundle."
            )
        reference = list(candidates).index(name)
    return PolicyParams(
        value_usd=float(value_usd if value_usd is not None else defaults["value_usd"]),
        min_success=min_success if min_success is not None else defaults.get("min_success"),
        max_cost_usd=max_cost_usd if max_cost_usd is not None else defaults.get("max_cost_usd"),
        reference=reference,
        reference_margin=margin if reference is not None else 0.0,
    )


@dataclass
class RouterService:
    """What the lifespan loads once: the bundle, its scorer, the fallback model and
    the decision log.

    Attributes
    ----------
    bundle : Bundle
    scorer : BundleScorer
        Anything with ``score_text(text, cache) -> Scores`` and ``offload`` (whether
        a decision is worth a hand-off to ``runner``).
    fallback_model : str
        A bundle candidate answered when deciding fails or is too slow.
    feature_spec : FeatureSpec
        The bundle's feature spec, parsed once (its text source picks the routing
        text; its version goes to the decision log).
    runner : DecisionRunner
        Pool that scores and decides under the preemptive time budget.
    decision_log : DecisionLog or None
    exploration : Exploration
        The exploring policy's knobs (method ``"none"``: greedy, propensity 1).
    rng : numpy.random.Generator
        Draws of the exploring policy (seeded by ``OUTCOME_ROUTER_EXPLORE_SEED``).
    sessions : SessionCache or None
        Per-session cache state for cache-aware costs (`serving.session_cache`);
        None when ``OUTCOME_ROUTER_CACHE_SESSIONS`` is 0.
    """

    bundle: Bundle
    scorer: BundleScorer
    fallback_model: str
    feature_spec: FeatureSpec
    runner: DecisionRunner
    decision_log: DecisionLog | None = None
    exploration: Exploration = field(default_factory=Exploration)
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    sessions: SessionCache | None = None

    @classmethod
    def load(
        cls,
        settings: Settings,
        bundle_path: str | Path | None = None,
        *,
        handover: RouterService | None = None,
    ) -> RouterService:
        """Load and verify the bundle, build and warm up the scorer, open the log.

        Parameters
        ----------
        settings : Settings
        bundle_path : path, optional
            A bundle folder other than ``settings.bundle``: ``POST /admin/reload``
            loads its new bundle here, off to the side of the one serving.
        handover : RouterService, optional
            The service serving now, whose decision log, decision pool and session
            state the new one takes over instead of opening its own: a reload keeps
            exactly one writer on the log file and one pool, and live sessions keep
            their warm caches.

        Raises
        ------
        serving.bundle.BundleError
            If the bundle is missing, does not match its hashes, or its warm-up
            decision is not finite scores for every candidate.
        serving.bundle.FallbackModelError
            If the fallback model is not one of the bundle's candidates.
        """
        source = settings.bundle if bundle_path is None else str(bundle_path)
        bundle = load_bundle(source)
        try:
            policy_params(bundle.policy, candidates=bundle.candidate_names)
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(
                f"The manifest of {source} has an unusable `policy` "
                f"{bundle.policy!r} ({exc!r}); expected at least a numeric value_usd."
            ) from exc
        fallback = settings.fallback_model or bundle.policy["fallback_model"]
        if fallback not in bundle.candidate_names:
            raise FallbackModelError(
                f"The fallback model {fallback!r} is not a candidate of the bundle "
                f"{source} (candidates: {list(bundle.candidate_names)}); set "
                "OUTCOME_ROUTER_FALLBACK_MODEL to one of them."
            )
        rules = settings.cache_rules
        scorer = BundleScorer(bundle, intra_op_threads=settings.intra_op_threads, cache_rules=rules)
        # The first onnxruntime run allocates and optimises; pay it here, not on a
        # request that would then miss its time budget. Its output is checked too:
        # a bundle that cannot score is refused before it answers anyone.
        try:
            scorer.score_request(prompt="warm-up").check_one(len(bundle.candidate_names))
        except ValueError as exc:
            raise BundleError(
                f"The bundle {source} cannot score its warm-up prompt ({exc}): its graphs "
                "do not match its manifest's candidates."
            ) from exc
        if handover is not None:
            log, runner = handover.decision_log, handover.runner
            sessions = handover.sessions
        else:
            sessions = (
                SessionCache(settings.cache_sessions, rules=rules)
                if settings.cache_sessions > 0
                else None
            )
            log = (
                DecisionLog(
                    settings.decision_log,
                    log_prompts=settings.log_prompts,
                    max_bytes=settings.decision_log_max_bytes,
                    backups=settings.decision_log_backups,
                    fsync_interval_s=settings.decision_log_fsync_s,
                )
                if settings.decision_log is not None
                else None
            )
            runner = DecisionRunner(
                threads=settings.decision_threads, max_pending=settings.decision_queue
            )
        exploration = Exploration(
            settings.explore,
            epsilon=settings.explore_epsilon,
            temperature=settings.explore_temperature,
            margin_usd=settings.explore_margin_usd,
            top_k=settings.explore_top_k,
        )
        return cls(
            bundle=bundle,
            scorer=scorer,
            fallback_model=fallback,
            feature_spec=bundle.feature_spec,
            decision_log=log,
            exploration=exploration,
            rng=np.random.default_rng(settings.explore_seed),
            runner=runner,
            sessions=sessions,
        )

    def policy(
        self,
        value_usd: float | None = None,
        min_success: float | None = None,
        max_cost_usd: float | None = None,
    ) -> PolicyParams:
        """`policy_params` with this bundle's defaults."""
        return policy_params(
            self.bundle.policy,
            value_usd=value_usd,
            min_success=min_success,
            max_cost_usd=max_cost_usd,
            candidates=self.bundle.candidate_names,
        )

    def decide_text(
        self,
        text: str,
        params: PolicyParams,
        *,
        cache: CacheHint | None = None,
        session: SessionPrefix | None = None,
        allowed: np.ndarray | None = None,
        context: RequestContext | None = None,
    ) -> tuple[RoutingDecision, Scores]:
        """Score one routing text and decide: the CPU-bound part of ``POST /route``,
        also run in process by `benchmarks/cache.py`.

        Raises
        ------
        ValueError
            If the scores are not finite scores of every candidate.
        """
        # Only what the request has is passed: a scorer without sessions or request
        # context (a test double) keeps the ``score_text(text, cache)`` signature.
        extra: dict[str, Any] = {}
        if session is not None:
            extra["session"] = session
        if context is not None:
            extra["context"] = context
        scores = self.scorer.score_text(text, cache, **extra)
        scores.check_one(len(self.bundle.candidate_names))
        [decided] = routing_decisions(
            scores.p_success,
            scores.expected_cost_usd,
            self.bundle.candidate_names,
            params,
            exploration=self.exploration,
            rng=self.rng,
            allowed=allowed,
        )
        return decided, scores

    def session_prefix(
        self, session_id: str | None, *, prompt_chars: int | None = None, hinted: bool = False
    ) -> SessionPrefix | None:
        """The session's prompt-cache state to score a request with, or None: no
        ``session_id``, sessions off, or a request ``cache`` hint (``hinted``), which
        overrides the session state. ``prompt_chars``: the request's whole prompt
        (`serving.session_cache.prompt_chars`), measured into its prompt tokens."""
        if session_id is None or self.sessions is None or hinted:
            return None
        return self.sessions.lookup(session_id, self.bundle.candidate_names, prompt_chars)

    def remember(self, session_id: str | None, model: str, scores: Scores) -> None:
        """Record that ``session_id`` was routed to ``model``: it now holds this
        request's prompt, as many tokens as the cost model predicted for it."""
        if session_id is None or self.sessions is None:
            return
        k = self.bundle.candidate_names.index(model)
        self.sessions.remember(session_id, model, scores.prompt_tokens_of(k))

    def close(self) -> None:
        """Release what the service holds open (the decision log, the decision pool)."""
        self.runner.close()
        if self.decision_log is not None:
            self.decision_log.close()
