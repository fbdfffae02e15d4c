"""``POST /admin/reload``: serve another bundle without a restart.

Closed unless ``OUTCOME_ROUTER_ADMIN_KEYS`` is set (403), and then it needs one of
those keys (401); `serving.api.main` attaches that check. The endpoint is a plain
``def``: loading a bundle hashes tens of MB and builds onnxruntime sessions, which
must run on a worker thread, never on the event loop that keeps answering
``/route``. See `serving.reload` for how the swap stays atomic.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException

from serving.api.deps import ReloaderDep, SettingsDep
from serving.reload import ReloadError
from serving.schemas import ReloadRequest, ReloadResponse

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post(
    "/reload",
    response_model=ReloadResponse,
    summary="Swap to a new bundle (folder or models:/ URI), atomically",
    responses={
        401: {"description": "No admin key, or not one of OUTCOME_ROUTER_ADMIN_KEYS."},
        403: {"description": "Admin endpoints are off: OUTCOME_ROUTER_ADMIN_KEYS is unset."},
        409: {
            "description": "Another reload is running, or the fallback model is not in "
            "the new bundle."
        },
        422: {"description": "The bundle is missing, fails its hashes or cannot score."},
    },
)
def reload_bundle(
    settings: SettingsDep,
    reloader: ReloaderDep,
    body: Annotated[ReloadRequest | None, Body()] = None,
) -> ReloadResponse:
    """Load, verify and warm up the bundle beside the serving one, then swap.

    Requests in flight finish on the old bundle; later ones get the new one. If
    anything fails, the answer says why and the old bundle keeps serving. The
    decision log stays open across the swap.
    """
    try:
        report = reloader.reload(settings, body.bundle if body is not None else None)
    except ReloadError as exc:
        raise HTTPException(exc.status_code, exc.message) from exc
    return ReloadResponse(
        previous_router_version=report.previous_router_version,
        router_version=report.router_version,
        changed=report.router_version != report.previous_router_version,
        source=report.source,
        bundle=report.bundle,
        candidates=list(report.candidates),
        fallback_model=report.fallback_model,
        load_ms=report.load_ms,
    )
