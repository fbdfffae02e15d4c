"""``GET /metrics``: the app's `serving.metrics.RouterMetrics` in the Prometheus
text format."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from serving.api.deps import MetricsDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, summary="Prometheus metrics")
def metrics(registry: MetricsDep) -> Response:
    """Counters of decisions, fallbacks and errors, the latency histogram and the
    router version, in the Prometheus text format."""
    return Response(content=registry.render(), media_type=CONTENT_TYPE_LATEST)
