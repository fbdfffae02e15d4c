"""Every router of the API, gathered in one place for `serving.app.create_app`."""

from __future__ import annotations

from fastapi import APIRouter

from serving.api.routes import health, metrics, route

api_router = APIRouter()
api_router.include_router(route.router)
api_router.include_router(health.router)
api_router.include_router(metrics.router)
