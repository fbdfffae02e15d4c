"""``POST /route``: score every allowed candidate, then pick one.

The endpoint is a plain ``def``: the work is CPU-bound onnxruntime calls, which
FastAPI runs in its thread pool, and on a couple of cores that beats an ``async``
endpoint that would block the event loop.

Failure policy: bad input is the caller's to fix and gets a 4xx with a message.
Anything that goes wrong on our side (an exception while scoring, non-finite
scores, a decision slower than ``time_budget_ms``) is answered with the fallback
model and ``reason: "fallback"``, never a 500 and never a hang.

The time budget is checked *post-hoc*: a decision that took longer than the budget
is discarded and the fallback is answered, so a slow decision still costs its
time. It is measured from the start of the endpoint, so body parsing and waiting
for a thread-pool slot are not counted. Making the budget preemptive (answering
the fallback as soon as the budget runs out) is issue 4; no per-request thread is
spawned here.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException, status

from features.routing_text import routing_text
from serving.api.deps import MetricsDep, RouterService, ServiceDep, SettingsDep
from serving.api.offload import offload_when_slow
from serving.api.routes.metrics import RouterMetrics
from serving.policy import (
    REASON_FALLBACK,
    REASON_NO_FEASIBLE,
    REASON_UTILITY,
    PolicyParams,
    choose,
    utility,
)
from serving.schemas import RouteRequest, RouteResponse, ScoreOut
from serving.scoring import CacheHint

logger = logging.getLogger(__name__)

#: Deterministic policy: the chosen model had probability 1. Exploration (a
#: stochastic policy with real propensities) comes with a later issue.
PROPENSITY = 1.0

router = APIRouter(tags=["route"])


class _TimeBudgetExceeded(Exception):
    """The decision took longer than ``time_budget_ms``."""


def _check_size(body: RouteRequest, max_messages: int, max_text_chars: int) -> None:
    n_messages = len(body.messages or ())
    if n_messages > max_messages:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"The request has {n_messages} messages; at most {max_messages} are accepted "
            "(OUTCOME_ROUTER_MAX_MESSAGES). Send the recent turns only.",
        )
    n_chars = body.text_chars()
    if n_chars > max_text_chars:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"The request holds {n_chars} characters of prompt and message text; at most "
            f"{max_text_chars} are accepted (OUTCOME_ROUTER_MAX_TEXT_CHARS).",
        )


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
        413: {"description": "The body, message count or text exceeds the limits."},
        422: {"description": "Malformed JSON, invalid knobs or unknown candidates."},
    },
)
@offload_when_slow
def route(
    body: RouteRequest, service: ServiceDep, settings: SettingsDep, metrics: MetricsDep
) -> RouteResponse:
    """Score every allowed candidate and pick ``argmax(value_usd * p_success - cost)``
    among those meeting ``min_success`` and ``max_cost_usd``.

    Knobs left out of the request take the bundle's policy defaults. If no allowed
    candidate meets the constraints, the most likely to succeed (with a floor) or
    the cheapest (with a budget only) is answered with
    ``reason: "no_candidate_met_constraints"``.
    """
    start = time.perf_counter()
    _check_size(body, settings.max_messages, settings.max_text_chars)
    candidates = service.bundle.candidate_names
    allowed = _allowed(body.candidates, candidates)
    params = service.policy(body.value_usd, body.min_success, body.max_cost_usd)
    prompt, messages = body.routing_input()
    cache = CacheHint(body.cache.model, body.cache.cached_tokens) if body.cache else None

    text: str | None = None
    try:
        text = routing_text(prompt, messages, source=service.feature_spec.text_source)
        scores = service.scorer.score_text(text, cache)
        p, cost = scores.p_success, scores.expected_cost_usd
        if p.shape != (1, len(candidates)) or cost.shape != p.shape:
            raise ValueError(
                f"The scorer returned shapes {p.shape} and {cost.shape}; "
                f"expected (1, {len(candidates)})."
            )
        if not (np.isfinite(p).all() and np.isfinite(cost).all()):
            raise ValueError("The scorer returned non-finite scores.")
        action, feasible = choose(p, cost, params, allowed=allowed)
        u = utility(p, cost, params.value_usd)
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        if elapsed_ms > settings.time_budget_ms:
            raise _TimeBudgetExceeded(
                f"Decision took {elapsed_ms:.1f} ms, budget {settings.time_budget_ms} ms."
            )
    except _TimeBudgetExceeded as exc:
        logger.warning("Answering the fallback model: %s", exc)
        return _answer_fallback(body, service, metrics, params, "time_budget", text, start)
    except Exception:
        logger.exception("Scoring failed; answering the fallback model.")
        metrics.errors.inc()
        return _answer_fallback(body, service, metrics, params, "error", text, start)

    chosen = candidates[int(action[0])]
    reason = REASON_UTILITY if bool(feasible[0]) else REASON_NO_FEASIBLE
    score_rows = [
        ScoreOut(
            model=name,
            p_success=float(p[0, k]),
            expected_cost_usd=float(cost[0, k]),
            utility=float(u[0, k]),
        )
        for k, name in enumerate(candidates)
        if allowed[k]
    ]
    response = RouteResponse(
        model=chosen,
        decision_id=uuid.uuid4().hex,
        propensity=PROPENSITY,
        router_version=service.bundle.router_version,
        reason=reason,
        scores=score_rows,
    )
    _record(body, service, metrics, response, params, text, start)
    return response


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
    response = RouteResponse(
        model=_fallback_model(service.fallback_model, body.candidates),
        decision_id=uuid.uuid4().hex,
        propensity=PROPENSITY,
        router_version=service.bundle.router_version,
        reason=REASON_FALLBACK,
        scores=[],
    )
    _record(body, service, metrics, response, params, text, start)
    return response


def _record(
    body: RouteRequest,
    service: RouterService,
    metrics: RouterMetrics,
    response: RouteResponse,
    params: PolicyParams,
    text: str | None,
    start: float,
) -> None:
    """Count, time and log one answered decision; logging never fails the request."""
    metrics.decisions.labels(model=response.model, reason=response.reason).inc()
    metrics.latency.observe(time.perf_counter() - start)
    log = service.decision_log
    if log is None:
        return
    candidates = body.candidates or list(service.bundle.candidate_names)
    scores: list[dict[str, Any]] = [s.model_dump() for s in response.scores]
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
        )
    except Exception:
        logger.exception("Could not write decision %s to the decision log.", response.decision_id)
        metrics.errors.inc()
