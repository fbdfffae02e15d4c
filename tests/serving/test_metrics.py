"""``GET /metrics`` parsed with prometheus_client's own parser after real requests,
a fallback and a reload."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from serving.app import create_app
from serving.bundle import load_bundle
from serving.config import Settings, get_settings

ADMIN = {"X-API-Key": "metrics-admin"}
PROMPTS = ["Fix the off-by-one in paginate().", "Write a haiku.", "Explain this stack trace."]


@pytest.fixture(scope="module")
def settings(bundle_dir: Path) -> Settings:
    return Settings(bundle=str(bundle_dir), time_budget_ms=60_000.0, admin_keys="metrics-admin")


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def scrape(client: TestClient) -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted labels): value}`` of one scrape."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def samples(scraped: dict, name: str) -> dict[tuple, float]:
    return {labels: value for (n, labels), value in scraped.items() if n == name}


def delta(after: dict, before: dict, name: str) -> dict[tuple, float]:
    now, then = samples(after, name), samples(before, name)
    return {k: v - then.get(k, 0.0) for k, v in now.items() if v != then.get(k, 0.0)}


def test_metrics_after_decisions_a_fallback_and_a_reload(
    client, settings, bundle_dir, copy_bundle, tmp_path
):
    first = load_bundle(bundle_dir)
    before = scrape(client)
    assert samples(before, "outcome_router_build_info") == {
        (
            ("fallback_model", first.policy["fallback_model"]),
            ("router_version", first.router_version),
        ): 1.0
    }
    assert samples(before, "outcome_router_candidates") == {(): len(first.candidate_names)}
    assert samples(before, "outcome_router_bundle_loaded_timestamp_seconds")[()] > 0
    for outcome in ("success", "rejected", "busy", "error"):
        assert samples(before, "outcome_router_reloads_total")[(("outcome", outcome),)] == 0
    for cause in ("error", "time_budget", "overload"):
        assert (("cause", cause),) in samples(before, "outcome_router_fallbacks_total")

    chosen = [client.post("/route", json={"prompt": p}).json()["model"] for p in PROMPTS]
    # Every real decision takes longer than a nanosecond: all answer the fallback.
    client.app.dependency_overrides[get_settings] = lambda: settings.model_copy(
        update={"time_budget_ms": 1e-6}
    )
    try:
        fallback = client.post("/route", json={"prompt": "Hi"}).json()
    finally:
        client.app.dependency_overrides[get_settings] = lambda: settings
    assert fallback["reason"] == "fallback"

    after = scrape(client)
    decided = delta(after, before, "outcome_router_decisions_total")
    expected: dict[tuple, float] = {}
    for model in chosen:
        key = (("model", model), ("reason", "max_utility"))
        expected[key] = expected.get(key, 0.0) + 1
    expected[(("model", fallback["model"]), ("reason", "fallback"))] = 1.0
    assert decided == expected
    assert delta(after, before, "outcome_router_fallbacks_total") == {
        (("cause", "time_budget"),): 1.0
    }
    assert delta(after, before, "outcome_router_errors_total") == {}
    assert delta(after, before, "outcome_router_route_latency_seconds_count") == {
        (): len(PROMPTS) + 1
    }
    buckets = samples(after, "outcome_router_route_latency_seconds_bucket")
    assert (
        buckets[(("le", "+Inf"),)]
        == samples(after, "outcome_router_route_latency_seconds_count")[()]
    )

    other = copy_bundle(bundle_dir, tmp_path / "other", lambda m: m["policy"].update(value_usd=7.5))
    second = load_bundle(other).router_version
    assert (
        client.post("/admin/reload", json={"bundle": "/nowhere"}, headers=ADMIN).status_code == 422
    )
    response = client.post("/admin/reload", json={"bundle": str(other)}, headers=ADMIN)
    assert response.status_code == 200, response.text
    reloaded = scrape(client)
    # The old version's series is gone, not left behind at 1.
    assert samples(reloaded, "outcome_router_build_info") == {
        (("fallback_model", first.policy["fallback_model"]), ("router_version", second)): 1.0
    }
    assert delta(reloaded, after, "outcome_router_reloads_total") == {
        (("outcome", "rejected"),): 1.0,
        (("outcome", "success"),): 1.0,
    }
    assert delta(reloaded, after, "outcome_router_reload_duration_seconds_count") == {(): 1.0}
    assert (
        samples(reloaded, "outcome_router_bundle_loaded_timestamp_seconds")[()]
        >= samples(after, "outcome_router_bundle_loaded_timestamp_seconds")[()]
    )
    # Decision counters are cumulative across the swap.
    assert samples(reloaded, "outcome_router_decisions_total") == samples(
        after, "outcome_router_decisions_total"
    )
    assert client.post("/admin/reload", headers=ADMIN).status_code == 200
