"""``/docs`` and ``/redoc`` work without internet: every asset they load is served by
the app itself (issue 9 A8), never fetched from a CDN."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.config import Settings

#: ``src="..."``, ``href="..."`` and JavaScript ``url: '...'`` references in a page.
_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|\burl\s*:\s*["']([^"']+)["']""")


@pytest.fixture(scope="module")
def client(bundle_dir: Path) -> Iterator[TestClient]:
    settings = Settings(bundle=str(bundle_dir), time_budget_ms=60_000.0, api_keys="k-1")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def references(html: str) -> list[str]:
    return [a or b for a, b in _REFERENCE.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_assets(client, page):
    response = client.get(page)
    assert response.status_code == 200
    external = re.findall(r"https?://[^\s\"'<>)]+", response.text)
    assert not external, f"{page} loads from outside the app: {external}"
    assets = references(response.text)
    assert any(a.endswith(".js") for a in assets), assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


def test_swagger_ui_loads_its_script_stylesheet_and_the_schema(client):
    assets = references(client.get("/docs").text)
    assert any(a.endswith(".css") for a in assets)
    assert "/openapi.json" in assets
    assert client.get("/openapi.json").json()["info"]["title"] == "outcome-router"
