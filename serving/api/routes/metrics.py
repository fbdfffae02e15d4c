"""``GET /metrics``: Prometheus counters and the latency histogram of /route.

Each app owns its `RouterMetrics` on a private `CollectorRegistry` (not the
process-global one), so tests and benchmarks can build many apps in one process
without "duplicated timeseries" errors.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    generate_latest,
)

NAMESPACE = "outcome_router"
#: Seconds (Prometheus' base unit) at millisecond resolution: the decision budget
#: is tens of milliseconds, so that is where the buckets are dense.
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0)


class RouterMetrics:
    """The service's Prometheus metrics.

    Attributes
    ----------
    registry : CollectorRegistry
    decisions : Counter
        ``outcome_router_decisions_total{model, reason}``: every /route answer,
        fallbacks included.
    fallbacks : Counter
        ``outcome_router_fallbacks_total{cause}``: answers with the fallback model,
        ``cause`` is ``"error"`` or ``"time_budget"``.
    errors : Counter
        ``outcome_router_errors_total``: internal exceptions (scoring, decision log).
    latency : Histogram
        ``outcome_router_route_latency_seconds``: time spent deciding, per answer.
    build : Info
        ``outcome_router_build_info{router_version, fallback_model}``.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.decisions = Counter(
            "decisions",
            "Routing decisions answered, by chosen model and reason.",
            ["model", "reason"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "fallbacks",
            "Decisions answered with the fallback model, by cause.",
            ["cause"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.errors = Counter(
            "errors",
            "Internal errors while deciding or logging a decision.",
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.latency = Histogram(
            "route_latency_seconds",
            "Time spent deciding one /route request (validation excluded).",
            buckets=LATENCY_BUCKETS,
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.build = Info(
            "build",
            "The loaded bundle.",
            namespace=NAMESPACE,
            registry=self.registry,
        )
        # Export the label-less series at 0 from the start, so rates are defined.
        for cause in ("error", "time_budget"):
            self.fallbacks.labels(cause=cause)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, summary="Prometheus metrics")
def metrics(request: Request) -> Response:
    """Counters of decisions, fallbacks and errors, the latency histogram and the
    router version, in the Prometheus text format."""
    registry: RouterMetrics = request.app.state.metrics
    return Response(content=registry.render(), media_type=CONTENT_TYPE_LATEST)
