"""The FastAPI application of the router.

`create_app` only assembles: routes, the body-size guard, the validation-error
format, the metrics and the API docs (``/docs``, ``/redoc``, whose assets the app
serves itself, so they work with no internet). The bundle is loaded by the
lifespan, once, when the server starts (never at import), so importing this module
is cheap and a broken bundle stops the server before it accepts traffic.

Run it with ``outcome-router serve --bundle PATH`` or, for a bare uvicorn,
``OUTCOME_ROUTER_BUNDLE=PATH uvicorn --factory serving.app:create_app``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.api.deps import resolve_settings
from serving.api.main import api_router
from serving.config import Settings
from serving.metrics import RouterMetrics
from serving.reload import BundleReloader
from serving.service import RouterService

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_DEFAULT_MAX_BODY_BYTES: int = Settings.model_fields["max_body_bytes"].default
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the bundle once at start-up; close the decision log at shutdown.

    ``POST /admin/reload`` may replace ``app.state.service`` in between; the
    decision log object is handed from service to service, so the one closed here
    is the one opened here.
    """
    settings = resolve_settings(app)
    service = RouterService.load(settings)
    app.state.settings = settings
    app.state.service = service
    app.state.metrics.set_bundle(
        service.bundle.router_version, service.fallback_model, len(service.bundle.candidate_names)
    )
    try:
        yield
    finally:
        await run_in_threadpool(_close_service, app)


def _close_service(app: FastAPI) -> None:
    """Close what serves now (a reload may have swapped it), never mid-reload.

    Runs on a worker thread: waiting for the reload lock must not block the loop.
    """
    with app.state.reloader.lock:
        current = app.state.service
        app.state.service = None
        if current is not None:
            current.close()


class BodySizeLimitMiddleware:
    """Answer 413 to a request body larger than the limit, before it is parsed.

    The declared ``Content-Length`` is checked first (no bytes read); the bytes
    actually received are counted too, since chunked bodies declare no length.
    Accepted bodies are buffered and replayed to the app, which reads them whole
    anyway.

    Parameters
    ----------
    app : ASGI app
    max_bytes : callable returning int
        Read per request, so the limit follows the settings the lifespan loaded.
    """

    def __init__(self, app: ASGIApp, max_bytes: Callable[[], int]) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes()
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._too_large(f"{int(value)} bytes", limit)(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(f"more than {limit} bytes", limit)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    @staticmethod
    def _too_large(size: str, limit: int) -> JSONResponse:
        return JSONResponse(
            status_code=status.HTTP_413_CONTENT_TOO_LARGE,
            content=_error_body(
                f"The request body is {size}; at most {limit} bytes are accepted "
                "(OUTCOME_ROUTER_MAX_BODY_BYTES)."
            ),
        )


def _error_body(message: str, detail: Any = None) -> dict[str, Any]:
    """Every 4xx body: a one-line ``message`` and FastAPI's ``detail``."""
    return {"message": message, "detail": message if detail is None else detail}


def _summarize(errors: list[dict[str, Any]]) -> str:
    """One readable sentence for a list of pydantic errors."""
    first = errors[0] if errors else {}
    loc = tuple(first.get("loc", ()))
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "decode error")
        where = f" at character {loc[1]}" if len(loc) > 1 else ""
        return f"The request body is not valid JSON: {reason}{where}."
    if loc == ("body",) and first.get("type") == "missing":
        return (
            "The request body is empty: send a JSON object with `prompt` or `messages` "
            "(OpenAI chat format)."
        )
    parts = []
    for error in errors[:5]:
        field = ".".join(str(p) for p in error.get("loc", ())[1:]) or "body"
        msg = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{field}: {msg}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "Invalid request: " + "; ".join(parts) + more + "."


def _json_safe(value: Any) -> Any:
    """A JSON-encodable copy of an error: the error echoes the caller's input, and an
    echo of ``Infinity`` or of an unpaired surrogate must not itself fail to encode
    (a 500 instead of the 422)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _without_body_echo(error: dict[str, Any]) -> dict[str, Any]:
    """Drop ``input`` when it is the whole body: no need to send a megabyte back."""
    if tuple(error.get("loc", ())) == ("body",) and isinstance(error.get("input"), dict):
        return {k: v for k, v in error.items() if k != "input"}
    return error


async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with FastAPI's usual ``detail`` list plus a one-line ``message``."""
    errors = _json_safe([_without_body_echo(e) for e in jsonable_encoder(exc.errors())])
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content=_error_body(_summarize(errors), errors),
    )


async def http_error_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """FastAPI's ``{"detail": ...}`` plus the same ``message`` as validation errors."""
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return JSONResponse(
        status_code=exc.status_code,
        content=_error_body(message, exc.detail),
        headers=getattr(exc, "headers", None),
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the router's FastAPI app; the bundle loads when the app starts.

    Parameters
    ----------
    settings : Settings, optional
        Used instead of the environment (`get_settings`); tests pass their own.

    Examples
    --------
    >>> app = create_app(Settings(bundle="out/bundle"))  # nothing is loaded yet
    >>> sorted(app.openapi()["paths"])
    ['/admin/reload', '/health', '/metrics', '/route']
    """
    # `/docs` and `/redoc` with their JavaScript and CSS served by the app itself
    # (fastapi-offline ships them), not from a CDN: the docs work with no internet.
    app = FastAPIOffline(
        title="outcome-router",
        summary="Pick the LLM that should answer a request, from learned outcomes and cost.",
        lifespan=lifespan,
    )
    # Not a dependency override: see `serving.api.deps.resolve_settings`.
    app.state.given_settings = settings
    app.state.metrics = RouterMetrics()
    app.state.service = None
    app.state.reloader = BundleReloader(app.state, app.state.metrics, RouterService.load)

    def max_body_bytes() -> int:
        loaded = getattr(app.state, "settings", None)
        return loaded.max_body_bytes if loaded is not None else _DEFAULT_MAX_BODY_BYTES

    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.include_router(api_router)
    return app
