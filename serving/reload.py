"""Swap the served bundle while the server runs: what ``POST /admin/reload`` does.

The new `RouterService` is built completely off to the side: fetched (a
``models:/`` URI goes through the same child process as ``serve``, so this process
never imports MLflow), verified against its hashes, its fallback model checked,
its onnxruntime sessions built and warmed up on one decision. Only then is it
published, by one reference assignment to ``app.state.service``. A request
resolves the service once, when it starts, so requests in flight finish on the
old service and every later one sees the new one; no request ever sees half of
each. Anything that fails before the assignment leaves the old bundle serving.

The decision log is not reopened and the decision pool (`serving.deadline`) is
not rebuilt: the objects the old service uses are handed to the new one, so the
file keeps exactly one writer (and one lock, one rotation policy), and in-flight
requests on the old service keep writing through that same open object. The old
service is never closed; it is dropped once its last request finishes.
Changing the decision log's settings needs a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from serving.bundle import BundleError, FallbackModelError
from serving.registry_fetch import local_bundle

if TYPE_CHECKING:
    from serving.config import Settings
    from serving.metrics import RouterMetrics
    from serving.service import RouterService

logger = logging.getLogger(__name__)

#: Longest a ``models:/`` download may take before the reload is refused.
REGISTRY_TIMEOUT_S = 600.0

LoadService = Callable[..., "RouterService"]


class ReloadError(Exception):
    """A reload that did not happen; the old bundle keeps serving.

    Attributes
    ----------
    status_code : int
        HTTP status for the admin: 409 (another reload running, or the fallback
        model is not in the new bundle), 422 (the bundle cannot be served), 503 (no
        bundle loaded yet).
    message : str
    outcome : str
        Label of ``outcome_router_reloads_total``
        (`serving.metrics.RELOAD_OUTCOMES`).
    """

    def __init__(self, status_code: int, message: str, outcome: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.outcome = outcome


@dataclass(frozen=True)
class ReloadReport:
    """What a successful reload swapped.

    Attributes
    ----------
    previous_router_version, router_version : str
    source : str
        The bundle as asked for (folder or ``models:/`` URI).
    bundle : str
        The local folder loaded (a ``models:/`` URI's downloaded copy).
    candidates : tuple of str
    fallback_model : str
    load_ms : float
        Fetch, verification, session building and warm-up, in milliseconds: the
        time the new bundle took to become ready, all of it off the request path.
    """

    previous_router_version: str
    router_version: str
    source: str
    bundle: str
    candidates: tuple[str, ...]
    fallback_model: str
    load_ms: float


class BundleReloader:
    """Loads a new `RouterService` beside the serving one and swaps it in.

    One reload at a time: a second one that arrives while the first runs is
    refused at once (409) rather than queued, so a stuck fetch cannot pile up
    admin requests on the server's thread pool, and the order of swaps is the
    order the admin saw answered.

    Parameters
    ----------
    state : starlette.datastructures.State
        ``app.state``, whose ``service`` attribute is read and replaced.
    metrics : RouterMetrics
    load : callable
        ``load(settings, bundle_path, handover=current) -> RouterService``: normally
        `RouterService.load`, or any loader of that signature.

    Attributes
    ----------
    lock : threading.Lock
        Held for a whole reload; the app's shutdown takes it too, so it never
        closes a log a reload is handing over.
    """

    def __init__(self, state: Any, metrics: RouterMetrics, load: LoadService) -> None:
        self._state = state
        self._metrics = metrics
        self._load = load
        self.lock = threading.Lock()

    def reload(self, settings: Settings, source: str | None = None) -> ReloadReport:
        """Load ``source`` (default: the configured bundle) and swap it in.

        Blocks for the whole load (seconds): call it from a worker thread, never
        on the event loop.

        Parameters
        ----------
        settings : Settings
            Fallback model, onnxruntime threads and the ``models:/`` store come
            from here; ``bundle_source`` (else ``bundle``) when ``source`` is None.
        source : str, optional
            A bundle folder or ``models:/NAME@ALIAS`` / ``models:/NAME/VERSION``.

        Raises
        ------
        ReloadError
            With the HTTP status and message for the admin; the old bundle serves.
        """
        if not self.lock.acquire(blocking=False):
            self._count("busy")
            raise ReloadError(
                409,
                "Another reload is running; retry when it has finished "
                "(GET /health shows the router version serving).",
                "busy",
            )
        try:
            report = self._reload_locked(settings, source or settings.bundle_source)
        except ReloadError as exc:
            self._count(exc.outcome)
            raise
        finally:
            self.lock.release()
        self._count("success")
        self._metrics.reload_duration.observe(report.load_ms / 1000.0)
        return report

    def _count(self, outcome: str) -> None:
        self._metrics.reloads.labels(outcome=outcome).inc()

    def _reload_locked(self, settings: Settings, source: str | None) -> ReloadReport:
        current: RouterService | None = getattr(self._state, "service", None)
        if current is None:
            raise ReloadError(
                503, "No bundle is loaded yet: the app's lifespan has not run.", "error"
            )
        source = source or settings.bundle
        keeps = f"Bundle {current.bundle.router_version} keeps serving."
        start = time.perf_counter()
        try:
            path = local_bundle(source, settings.mlruns, timeout_s=REGISTRY_TIMEOUT_S)
            fresh = self._load(settings, path, handover=current)
        except FallbackModelError as exc:
            raise ReloadError(409, f"Refused {source}: {exc} {keeps}", "rejected") from exc
        except (BundleError, ValueError, OSError) as exc:
            raise ReloadError(422, f"Refused {source}: {exc} {keeps}", "rejected") from exc
        except Exception as exc:
            logger.exception("Reloading %s failed unexpectedly.", source)
            raise ReloadError(
                422,
                f"Could not load {source}: {type(exc).__name__}: {exc} {keeps}",
                "error",
            ) from exc
        load_ms = (time.perf_counter() - start) * 1000.0
        self._state.service = fresh  # the swap: one reference assignment
        self._metrics.set_bundle(
            fresh.bundle.router_version, fresh.fallback_model, len(fresh.bundle.candidate_names)
        )
        logger.info(
            "Reloaded %s: router version %s -> %s in %.0f ms.",
            source,
            current.bundle.router_version,
            fresh.bundle.router_version,
            load_ms,
        )
        return ReloadReport(
            previous_router_version=current.bundle.router_version,
            router_version=fresh.bundle.router_version,
            source=source,
            bundle=str(fresh.bundle.path),
            candidates=fresh.bundle.candidate_names,
            fallback_model=fresh.fallback_model,
            load_ms=load_ms,
        )
