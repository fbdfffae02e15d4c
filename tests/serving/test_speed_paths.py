"""The request path's speed-related wiring: no per-request dependency re-analysis,
where the endpoint runs, and the uvicorn options of ``serve``."""

from __future__ import annotations

import argparse

from fastapi.testclient import TestClient

from serving.api.deps import resolve_settings
from serving.app import create_app
from serving.bundle import load_bundle
from serving.commands import add_serve_parser
from serving.config import Settings, get_settings
from serving.scoring import BundleScorer


def test_given_settings_are_not_a_dependency_override(bundle_dir):
    # Any registered override makes FastAPI re-analyse every dependency per request.
    settings = Settings(bundle=str(bundle_dir), time_budget_ms=60_000.0)
    app = create_app(settings)
    assert app.dependency_overrides == {}
    assert resolve_settings(app) is settings
    changed = settings.model_copy(update={"time_budget_ms": 1.0})
    app.dependency_overrides[get_settings] = lambda: changed
    assert resolve_settings(app) is changed


def test_routes_see_the_given_settings(bundle_dir):
    settings = Settings(bundle=str(bundle_dir), time_budget_ms=60_000.0, api_keys="k-1")
    with TestClient(create_app(settings)) as client:
        assert client.post("/route", json={"prompt": "a"}).status_code == 401
        keyed = client.post("/route", json={"prompt": "a"}, headers={"X-API-Key": "k-1"})
        assert keyed.status_code == 200


def test_minilm_decides_on_the_pool(bundle_dir, decided_on_thread):
    # onnxruntime releases the GIL: two requests encode on two cores.
    assert BundleScorer(load_bundle(bundle_dir)).offload is True
    _, on_loop = decided_on_thread(str(bundle_dir))
    assert not on_loop


def test_serve_passes_uvicorn_speed_options(bundle_dir, monkeypatch):
    import uvicorn

    calls = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.update(kw))
    root = argparse.ArgumentParser()
    add_serve_parser(root.add_subparsers(dest="command", required=True))
    args = root.parse_args(["serve", "--bundle", str(bundle_dir)])
    assert args.func(args) == 0
    assert (calls["http"], calls["loop"], calls["access_log"]) == ("auto", "auto", False)
    args = root.parse_args(
        ["serve", "--bundle", str(bundle_dir), "--http", "h11", "--loop", "asyncio", "--access-log"]
    )
    assert args.func(args) == 0
    assert (calls["http"], calls["loop"], calls["access_log"]) == ("h11", "asyncio", True)
