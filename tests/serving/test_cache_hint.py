"""The prompt-cache hint of ``POST /route`` (issue 9 A6).

A hint re-prices the hinted model's cached prompt tokens at its cache-read price,
capped at the prompt tokens the cost model predicts for that model: output is never
discounted. A hint that changes nothing says why in the answer's ``cache_hint``.

The shipped demo models have no cache-read price, so the tests serve copies of the
session bundle with one edited into the manifest.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.config import Settings

PROMPT = "Review this patch for thread-safety problems: " + "lock.acquire(); x += 1\n" * 40
HUGE = 10_000_000
#: The cache-read price written into the copy: a tenth of the input price.
CACHE_SHARE = 0.1


def _input_component(manifest: dict[str, Any], k: int) -> dict[str, Any]:
    [component] = [
        c
        for c in manifest["cost_model"]["components"]
        if c["candidate"] == k and c["name"] == "input_tokens"
    ]
    return component


def _with_cache_price(share: float):
    def edit(manifest: dict[str, Any]) -> None:
        price = manifest["candidates"][0]["price"]
        price["cache_read_input_token_cost"] = price["input_cost_per_token"] * share

    return edit


def _free_input(manifest: dict[str, Any]) -> None:
    """The first candidate's prompt tokens cost nothing: its cost is its output's."""
    _input_component(manifest, 0)["price"] = 0.0


@pytest.fixture(scope="module")
def bundles(bundle_dir: Path, copy_bundle, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cache-hint")
    return {
        "cached": copy_bundle(bundle_dir, root / "cached", _with_cache_price(CACHE_SHARE)),
        "free_cache": copy_bundle(bundle_dir, root / "free-cache", _with_cache_price(0.0)),
        "free_input": copy_bundle(bundle_dir, root / "free-input", _free_input),
    }


def _client(bundle: Path) -> TestClient:
    return TestClient(create_app(Settings(bundle=str(bundle), time_budget_ms=60_000.0)))


@pytest.fixture(scope="module")
def client(bundles) -> Iterator[TestClient]:
    with _client(bundles["cached"]) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def names(client) -> list[str]:
    return client.get("/health").json()["candidates"]


def _route(client: TestClient, **extra) -> dict[str, Any]:
    response = client.post("/route", json={"prompt": PROMPT, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def _costs(body: dict[str, Any]) -> dict[str, float]:
    return {s["model"]: s["expected_cost_usd"] for s in body["scores"]}


def test_a_huge_hint_leaves_the_output_cost(bundles, names):
    """Repro: ``cached_tokens: 10000000`` used to zero the candidate's whole cost. With a
    free cache read, a full cache hit must leave exactly the cost of the output, which
    the bundle with free input tokens prices alone (same graphs, same predictions)."""
    model = names[0]
    with _client(bundles["free_cache"]) as free_cache:
        hinted = _route(free_cache, cache={"model": model, "cached_tokens": HUGE})
    with _client(bundles["free_input"]) as free_input:
        output_only = _route(free_input)
    assert _costs(output_only)[model] > 0
    assert _costs(hinted)[model] == pytest.approx(_costs(output_only)[model], rel=1e-9)
    assert hinted["cache_hint"]["applied"] is True
    assert 0 < hinted["cache_hint"]["cached_tokens"] < HUGE


def test_an_applied_hint_reports_the_tokens_and_the_discount(client, names, manifest_of):
    model = names[0]
    plain = _route(client)
    hinted = _route(client, cache={"model": model, "cached_tokens": 50})
    assert plain.get("cache_hint") is None
    hint = hinted["cache_hint"]
    assert hint["model"] == model and hint["applied"] is True and hint["reason"] is None
    assert hint["cached_tokens"] == 50  # far fewer than the predicted prompt tokens
    input_price = _input_component(manifest_of(client), 0)["price"]
    assert hint["discount_usd"] == pytest.approx(50 * input_price * (1 - CACHE_SHARE))
    cost, hinted_cost = _costs(plain), _costs(hinted)
    assert hinted_cost[model] == pytest.approx(cost[model] - hint["discount_usd"], rel=1e-9)
    for other in names[1:]:
        assert hinted_cost[other] == cost[other]


def test_the_hint_is_capped_at_the_predicted_prompt_tokens(client, names):
    model = names[0]
    capped = _route(client, cache={"model": model, "cached_tokens": HUGE})["cache_hint"]
    just_above = int(capped["cached_tokens"]) + 1
    again = _route(client, cache={"model": model, "cached_tokens": just_above})
    assert again["cache_hint"] == capped
    assert capped["cached_tokens"] < HUGE


@pytest.mark.parametrize(
    ("hint", "extra", "reason"),
    [
        ({"model": "gpt-9", "cached_tokens": 1000}, {}, "is not a candidate of this router"),
        (
            {"model": 1, "cached_tokens": 1000},  # replaced by the second candidate's name
            {},
            "has no cache-read price",
        ),
        (
            {"model": 0, "cached_tokens": 1000},
            {"candidates": 1},
            "is not among the request's candidates",
        ),
        ({"model": 0, "cached_tokens": 0}, {}, "cached_tokens is 0"),
    ],
    ids=["not a candidate", "no cache price", "excluded by the request", "zero tokens"],
)
def test_a_hint_that_changes_nothing_says_why(client, names, hint, extra, reason):
    if isinstance(hint["model"], int):
        hint = {**hint, "model": names[hint["model"]]}
    if "candidates" in extra:
        extra = {"candidates": names[extra["candidates"] :]}
    plain = _route(client, **extra)
    hinted = _route(client, cache=hint, **extra)
    assert hinted["cache_hint"]["applied"] is False
    assert reason in hinted["cache_hint"]["reason"]
    assert hinted["cache_hint"]["cached_tokens"] == 0
    assert hinted["cache_hint"]["discount_usd"] == 0.0
    assert _costs(hinted) == _costs(plain)
    assert hinted["model"] == plain["model"]


def test_a_fallback_says_the_hint_was_not_used(client, names):
    service = client.app.state.service
    original = service.scorer

    class Raising:
        offload = True

        def score_text(self, text, cache=None):
            raise RuntimeError("injected")

    service.scorer = Raising()
    try:
        body = _route(client, cache={"model": names[0], "cached_tokens": 100})
    finally:
        service.scorer = original
    assert body["reason"] == "fallback"
    assert body["cache_hint"]["applied"] is False
    assert "fallback" in body["cache_hint"]["reason"]


@pytest.fixture
def manifest_of():
    return lambda client: client.app.state.service.bundle.manifest
