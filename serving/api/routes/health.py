"""``GET /health``: the service is up and which bundle it serves."""

from __future__ import annotations

from fastapi import APIRouter

from serving.api.deps import ServiceDep
from serving.schemas import HealthResponse

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse, summary="Liveness and bundle identity")
def health(service: ServiceDep) -> HealthResponse:
    """``ok`` once the bundle is loaded, with its router version and candidates, so a
    deployment can check which bundle answers before sending traffic."""
    return HealthResponse(
        status="ok",
        router_version=service.bundle.router_version,
        candidates=list(service.bundle.candidate_names),
        fallback_model=service.fallback_model,
    )
