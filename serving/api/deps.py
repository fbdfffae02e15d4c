"""Dependencies of the routes, as ``Annotated`` aliases.

A route's signature lists what it needs (``SettingsDep``, ``ServiceDep``,
``MetricsDep``, ``ReloaderDep``); the objects themselves are built once by the
app's lifespan and kept on ``app.state``.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request, status

from serving.config import Settings, get_settings
from serving.metrics import RouterMetrics
from serving.reload import BundleReloader
from serving.service import RouterService

# The dependencies below are ``async def`` on purpose: they only read attributes, and
# FastAPI runs a plain ``def`` dependency in its thread pool, one hand-off (tens to
# hundreds of microseconds on a busy machine) per dependency per request.


def resolve_settings(app: Any) -> Settings:
    """The settings an app's routes see: an override of `get_settings` (tests swap
    settings that way), else those given to `serving.app.create_app`, else the
    environment's.

    `create_app` keeps its settings on ``app.state`` rather than in
    ``app.dependency_overrides``: FastAPI re-analyses every dependency of every
    request while any override is registered (about a millisecond a request).
    """
    override = app.dependency_overrides.get(get_settings)
    if override is not None:
        return override()
    given = getattr(app.state, "given_settings", None)
    return given if given is not None else get_settings()


async def request_settings(request: Request) -> Settings:
    """`resolve_settings` of the request's app."""
    return resolve_settings(request.app)


async def get_service(request: Request) -> RouterService:
    """The service the lifespan stored on ``app.state``."""
    service = getattr(request.app.state, "service", None)
    if service is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "The router bundle is not loaded: the app's lifespan has not run.",
        )
    return service


async def get_metrics(request: Request) -> RouterMetrics:
    """The app's Prometheus metrics (built by `serving.app.create_app`)."""
    return request.app.state.metrics


async def get_reloader(request: Request) -> BundleReloader:
    """The app's bundle reloader (built by `serving.app.create_app`)."""
    return request.app.state.reloader


SettingsDep = Annotated[Settings, Depends(request_settings)]


def _presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key a request carries: ``X-API-Key``, else ``Authorization: Bearer KEY``."""
    if x_api_key is not None:
        return x_api_key
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


def _key_matches(presented: str | None, keys: tuple[str, ...]) -> bool:
    """Constant-time check, every key every time, so response timing reveals neither
    how much of a guess was right nor which key matched."""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest((presented or "").encode(), key.encode())
    return presented is not None and matched


async def require_api_key(
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> None:
    """Refuse a request without a configured API key (none configured: open)."""
    keys = settings.api_key_list
    if not keys:
        return
    if not _key_matches(_presented_key(authorization, x_api_key), keys):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "A valid API key is required: send `Authorization: Bearer KEY` or `X-API-Key: KEY`.",
            headers={"WWW-Authenticate": "Bearer"},
        )


def require_admin_key(
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> None:
    """Refuse an admin request without an admin key; with none configured, refuse all.

    Unlike `require_api_key`, no keys means closed (403), not open: swapping the
    bundle must be switched on deliberately.
    """
    keys = settings.admin_key_list
    if not keys:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "Admin endpoints are disabled: set OUTCOME_ROUTER_ADMIN_KEYS to enable them.",
        )
    if not _key_matches(_presented_key(authorization, x_api_key), keys):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "A valid admin key is required: send `Authorization: Bearer KEY` or "
            "`X-API-Key: KEY` with a key from OUTCOME_ROUTER_ADMIN_KEYS.",
            headers={"WWW-Authenticate": "Bearer"},
        )


ServiceDep = Annotated[RouterService, Depends(get_service)]
MetricsDep = Annotated[RouterMetrics, Depends(get_metrics)]
ReloaderDep = Annotated[BundleReloader, Depends(get_reloader)]
