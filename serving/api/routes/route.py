"""``POST /route``: score every allowed candidate, then pick one.

Failure policy: bad input is the caller's to fix and gets a 4xx with a message.
Anything that goes wrong on our side (an exception while scoring, non-finite
scores, a decision slower than ``time_budget_ms``, more decisions in flight than
the service admits) is answered with the fallback model and ``reason:
"fallback"``, never a 500 and never a hang; `RouterMetrics.fallbacks` counts it by
cause (``error``, ``time_budget``, ``overload``).

The time budget is *preemptive*. The endpoint is ``async``: validation runs on the
event loop, and the CPU-bound part (encoder, scorer, policy) runs on the service's
`serving.deadline.DecisionRunner`, awaited with a timeout. When the budget runs
out the fallback is answered at once; the abandoned decision finishes in the
background (a thread cannot be stopped), and the runner's admission bound keeps
such work from piling up. This costs about what FastAPI's thread-pool hop for a
``def`` endpoint did. The budget is counted from the start of the endpoint, so
body parsing is not counted but waiting for a free decision thread is.

Each decision (fallbacks too) is written to the decision log before the response
is returned, so an acknowledged decision survives a killed process (see
`serving.decision_log`). With exploration on (`serving.policy.Exploration`), the
chosen model is drawn among near-best candidates and ``propensity`` is its exact
probability; fallbacks keep propensity 1.

Cache-aware costs: a request with a ``session_id`` and no ``cache`` field is priced
with the session's prompt-cache state (`serving.session_cache`: the last model's warm
prefix at the cache-read price, cache-write premiums); the state is read before the
decision and updated after it, both on the event loop, so no lock is needed. The
answer's ``cache_assumed`` and the decision log say what was assumed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TypeVar

import numpy as np
from fastapi import APIRouter, HTTPException, status

from features.context import RequestContext
from features.routing_text import routing_text
from serving.api.deps import MetricsDep, ServiceDep, SettingsDep
from serving.config import Settings
from serving.deadline import Overloaded
from serving.decision import RoutingDecision, fallback_decision
from serving.metrics import RouterMetrics
from serving.policy import REASON_FALLBACK, PolicyParams
from serving.schemas import RouteRequest, RouteResponse
from serving.scoring import CacheAssumption, CacheHint, CacheHintEffect, Scores
from serving.service import RouterService
from serving.session_cache import SessionPrefix, prompt_chars

logger = logging.getLogger(__name__)

T = TypeVar("T")

router = APIRouter(tags=["route"])


def _allowed(requested: list[str] | None, candidates: tuple[str, ...]) -> np.ndarray:
    """Boolean mask over the bundle's candidates; 422 for names it does not know."""
    if requested is None:
        return np.ones(len(candidates), dtype=bool)
    unknown = [c for c in requested if c not in candidates]
    if unknown:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"Unknown candidates {unknown}: this router's bundle can pick from "
            f"{list(candidates)}. Leave `candidates` out to allow all of them.",
        )
    wanted = set(requested)
    return np.array([c in wanted for c in candidates], dtype=bool)


def _fallback_model(configured: str, requested: list[str] | None) -> str:
    """The configured fallback, unless the caller excluded it.

    A caller that restricted ``candidates`` gets its own first choice instead, so a
    fallback never names a model the caller ruled out.
    """
    if requested is None or configured in requested:
        return configured
    return requested[0]


@router.post(
    "/route",
    response_model=RouteResponse,
    summary="Choose the model that should answer a request",
    responses={
        413: {"description": "The body is larger than OUTCOME_ROUTER_MAX_BODY_BYTES."},
        422: {"description": "Malformed JSON, invalid knobs or unknown candidates."},
    },
)
async def route(
    body: RouteRequest, service: ServiceDep, settings: SettingsDep, metrics: MetricsDep
) -> RouteResponse:
    """Score every allowed candidate and pick ``argmax(value_usd * p_success - cost)``
    among those meeting ``min_success`` and ``max_cost_usd``.

    Knobs left out of the request take the bundle's policy defaults. If no allowed
    candidate meets the constraints, the most likely to succeed (with a floor) or
    the cheapest (with a budget only) is answered with
    ``reason: "no_candidate_met_constraints"``. With exploration configured, a
    near-best candidate may be drawn instead (``reason: "explore"``), and
    ``propensity`` is the probability it had.
    """
    start = time.perf_counter()
    candidates = service.bundle.candidate_names
    allowed = _allowed(body.candidates, candidates)
    params = service.policy(body.value_usd, body.min_success, body.max_cost_usd)
    prompt, messages = body.routing_input()
    cache, excluded = _cache_hint(body, candidates, allowed)
    session = service.session_prefix(
        body.session_id,
        prompt_chars=prompt_chars(prompt, messages) if body.session_id is not None else None,
        hinted=body.cache is not None,
    )
    context = None
    if service.feature_spec.context_names:
        context = RequestContext.of(task=body.task, team=body.team, messages=messages)

    text: str | None = None
    try:
        text = routing_text(prompt, messages, source=service.feature_spec.text_source)
        decided, scores = await _run_within_budget(
            service,
            lambda: _decide(service, text, cache, session, params, allowed, context),
            settings,
            start,
        )
    except TimeoutError:
        logger.warning(
            "Answering the fallback model: no decision within the %s ms budget.",
            settings.time_budget_ms,
        )
        return _answer_fallback(body, service, metrics, params, "time_budget", text, start)
    except Overloaded as exc:
        logger.warning("Answering the fallback model: %s", exc)
        return _answer_fallback(body, service, metrics, params, "overload", text, start)
    except Exception:
        logger.exception("Scoring failed; answering the fallback model.")
        metrics.errors.inc()
        return _answer_fallback(body, service, metrics, params, "error", text, start)

    service.remember(body.session_id, decided.model, scores)
    assumed = CacheAssumption.from_hint(excluded) if excluded else scores.cache_assumed
    response = _response(decided, service, excluded or scores.cache_hint, assumed)
    _record(body, service, metrics, response, params, text, start, decided.scores)
    return response


def _cache_hint(
    body: RouteRequest, candidates: tuple[str, ...], allowed: np.ndarray
) -> tuple[CacheHint | None, CacheHintEffect | None]:
    """The hint to score with, or why it cannot matter: a hinted bundle candidate that
    the request itself excluded is not re-priced (it is not scored in the answer)."""
    if body.cache is None:
        return None, None
    model = body.cache.model
    if model in candidates and not allowed[candidates.index(model)]:
        return None, CacheHintEffect.unused(
            model, f"{model!r} is not among the request's candidates: nothing to re-price."
        )
    return CacheHint(model, body.cache.cached_tokens), None


def _response(
    decided: RoutingDecision,
    service: RouterService,
    cache_effect: CacheHintEffect | None,
    cache_assumed: CacheAssumption | None,
) -> RouteResponse:
    """The decision as answered: a fresh ``decision_id``, the serving bundle's version,
    what the cache hint did and what the costs assumed about prompt caches."""
    return RouteResponse(
        model=decided.model,
        decision_id=uuid.uuid4().hex,
        propensity=decided.propensity,
        router_version=service.bundle.router_version,
        reason=decided.reason,
        scores=decided.scores,
        cache_hint=asdict(cache_effect) if cache_effect is not None else None,
        cache_assumed=cache_assumed.to_dict() if cache_assumed is not None else None,
    )


def _decide(
    service: RouterService,
    text: str,
    cache: CacheHint | None,
    session: SessionPrefix | None,
    params: PolicyParams,
    allowed: np.ndarray,
    context: RequestContext | None = None,
) -> tuple[RoutingDecision, Scores]:
    """The CPU-bound part of a decision: encode, score, check, decide."""
    return service.decide_text(
        text, params, cache=cache, session=session, allowed=allowed, context=context
    )


async def _run_within_budget(
    service: RouterService, work: Callable[[], T], settings: Settings, start: float
) -> T:
    """``work()`` on the decision pool, or ``TimeoutError`` when the budget runs out.

    A scorer cheaper than a thread hand-off (``scorer.offload`` False: the static
    encoder tier, about a millisecond mostly under the GIL) decides inline on the
    event loop, and its budget is checked after: a hand-off to another thread and
    back costs more than the whole decision on a loaded machine (README "Speed").
    MiniLM goes to the pool, where onnxruntime releases the GIL and two requests
    encode on two cores.
    """
    remaining_s = settings.time_budget_ms / 1000.0 - (time.perf_counter() - start)
    if remaining_s <= 0:
        raise TimeoutError
    if service.scorer.offload:
        return await service.runner.run(work, remaining_s)
    result = work()
    if (time.perf_counter() - start) * 1000.0 > settings.time_budget_ms:
        raise TimeoutError
    return result


def _answer_fallback(
    body: RouteRequest,
    service: RouterService,
    metrics: RouterMetrics,
    params: PolicyParams,
    cause: str,
    text: str | None,
    start: float,
) -> RouteResponse:
    metrics.fallbacks.labels(cause=cause).inc()
    decided = fallback_decision(_fallback_model(service.fallback_model, body.candidates))
    unused = None
    if body.cache is not None:
        unused = CacheHintEffect.unused(
            body.cache.model, "The fallback model was answered without scores; the hint was unused."
        )
    assumed = CacheAssumption.from_hint(unused) if unused is not None else None
    response = _response(decided, service, unused, assumed)
    _record(body, service, metrics, response, params, text, start, decided.scores)
    return response


def _record(
    body: RouteRequest,
    service: RouterService,
    metrics: RouterMetrics,
    response: RouteResponse,
    params: PolicyParams,
    text: str | None,
    start: float,
    scores: list[dict[str, Any]],
) -> None:
    """Count, time and log one answered decision; logging never fails the request.

    ``scores`` are the response's scores as plain dicts (`RoutingDecision.scores`).
    """
    metrics.decisions.labels(model=response.model, reason=response.reason).inc()
    metrics.latency.observe(time.perf_counter() - start)
    log = service.decision_log
    if log is None:
        return
    candidates = body.candidates or list(service.bundle.candidate_names)
    try:
        log.write(
            decision_id=response.decision_id,
            router_version=response.router_version,
            candidates=[c for c in service.bundle.candidate_names if c in candidates],
            model=response.model,
            propensity=response.propensity,
            reason=response.reason,
            scores=scores,
            routing_text=text,
            value_usd=params.value_usd,
            min_success=params.min_success,
            max_cost_usd=params.max_cost_usd,
            user=body.user,
            team=body.team,
            task=body.task,
            session_id=body.session_id,
            feature_spec_version=service.feature_spec.version,
            exploration=(
                service.exploration.describe() if response.reason != REASON_FALLBACK else None
            ),
            cache_assumed=(
                response.cache_assumed.model_dump() if response.cache_assumed is not None else None
            ),
        )
    except Exception:
        logger.exception("Could not write decision %s to the decision log.", response.decision_id)
        metrics.errors.inc()
