"""Every router of the API, gathered in one place for `serving.app.create_app`."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from serving.api.deps import require_api_key
from serving.api.routes import health, metrics, route

api_router = APIRouter()
# /route needs an API key when keys are configured; probes and scrapers stay open.
api_router.include_router(route.router, dependencies=[Depends(require_api_key)])
api_router.include_router(health.router)
api_router.include_router(metrics.router)
