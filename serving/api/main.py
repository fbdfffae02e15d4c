"""Every router of the API, gathered in one place for `serving.app.create_app`."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from serving.api.deps import require_admin_key, require_api_key
from serving.api.routes import admin, health, metrics, route

api_router = APIRouter()
# /route needs an API key when keys are configured; probes and scrapers stay open.
api_router.include_router(route.router, dependencies=[Depends(require_api_key)])
api_router.include_router(health.router)
api_router.include_router(metrics.router)
# /admin/* needs an admin key, and is closed (403) when none is configured.
api_router.include_router(admin.router, dependencies=[Depends(require_admin_key)])
