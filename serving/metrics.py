"""The service's Prometheus metrics: decision counters, the latency histogram of
/route, the bundle serving and the reloads. ``GET /metrics``
(`serving.api.routes.metrics`) serves them; the route, the app and the reloader
update them.

Each app owns its `RouterMetrics` on a private `CollectorRegistry` (not the
process-global one), so tests and benchmarks can build many apps in one process
without "duplicated timeseries" errors.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

NAMESPACE = "outcome_router"
#: Seconds (Prometheus' base unit) at millisecond resolution: the decision budget
#: is tens of milliseconds, so that is where the buckets are dense.
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0)
#: A reload reads and hashes tens of MB and builds onnxruntime sessions (about a
#: second); a ``models:/`` reload also starts a child process that imports MLflow.
RELOAD_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)
#: ``success``: swapped; ``rejected``: the bundle was refused (hashes, missing,
#: fallback model, registry), the old one serves; ``busy``: another reload was
#: running; ``error``: an unexpected failure, the old bundle serves.
RELOAD_OUTCOMES = ("success", "rejected", "busy", "error")


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
        ``cause`` is ``"error"``, ``"time_budget"`` or ``"overload"`` (more decisions
        in flight than the decision pool admits, `serving.deadline`).
    errors : Counter
        ``outcome_router_errors_total``: internal exceptions (scoring, decision log).
    latency : Histogram
        ``outcome_router_route_latency_seconds``: time spent deciding, per answer.
    build : Info
        ``outcome_router_build_info{router_version, fallback_model}``: the bundle
        serving now. An Info holds one label set, so a reload replaces the old
        version's series instead of leaving it behind at 1.
    candidates : Gauge
        ``outcome_router_candidates``: candidates of the bundle serving now.
    bundle_loaded : Gauge
        ``outcome_router_bundle_loaded_timestamp_seconds``: when it was loaded.
    reloads : Counter
        ``outcome_router_reloads_total{outcome}``: ``POST /admin/reload`` calls that
        got past authentication, by `RELOAD_OUTCOMES`.
    reload_duration : Histogram
        ``outcome_router_reload_duration_seconds``: fetch + load + warm-up of each
        successful reload.
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
        self.candidates = Gauge(
            "candidates",
            "Candidates of the bundle serving now.",
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.bundle_loaded = Gauge(
            "bundle_loaded_timestamp_seconds",
            "Unix time the bundle serving now was loaded (start-up or reload).",
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.reloads = Counter(
            "reloads",
            "POST /admin/reload calls past authentication, by outcome.",
            ["outcome"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.reload_duration = Histogram(
            "reload_duration_seconds",
            "Fetch, load, verify and warm-up time of each successful reload.",
            buckets=RELOAD_BUCKETS,
            namespace=NAMESPACE,
            registry=self.registry,
        )
        # Export the labelled series at 0 from the start, so rates are defined.
        for cause in ("error", "time_budget", "overload"):
            self.fallbacks.labels(cause=cause)
        for outcome in RELOAD_OUTCOMES:
            self.reloads.labels(outcome=outcome)

    def set_bundle(self, router_version: str, fallback_model: str, n_candidates: int) -> None:
        """Publish the bundle now serving (at start-up and after each reload)."""
        self.build.info({"router_version": router_version, "fallback_model": fallback_model})
        self.candidates.set(n_candidates)
        self.bundle_loaded.set_to_current_time()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
