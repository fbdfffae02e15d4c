"""Fixtures for the serving tests: variants of the session's real bundle.

A variant is a copy of the trained bundle whose manifest is edited and then
re-hashed with `serving.bundle.router_version_of`, the function `write_bundle`
itself ends with: a valid bundle with its own router version, in milliseconds
instead of another training run.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from serving.api.routes.route import _run_within_budget
from serving.bundle import MANIFEST_FILE, router_version_of
from serving.config import Settings, get_settings
from serving.service import RouterService

RENAMED_SUFFIX = "-renamed"


def edited_copy(
    src: Path, dst: Path, edit: Callable[[dict[str, Any]], None], *, rehash: bool = True
) -> Path:
    """Copy a bundle folder, apply ``edit`` to its manifest, and re-hash it (or not)."""
    shutil.copytree(src, dst)
    manifest = json.loads((dst / MANIFEST_FILE).read_text())
    edit(manifest)
    if rehash:
        manifest["router_version"] = router_version_of(manifest)
    (dst / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return dst


def rename_fallback(manifest: dict[str, Any]) -> None:
    """Another default value, and the fallback candidate under a new name."""
    fallback = manifest["policy"]["fallback_model"]
    renamed = fallback + RENAMED_SUFFIX
    for candidate in manifest["candidates"]:
        if candidate["name"] == fallback:
            candidate["name"] = renamed
    manifest["policy"]["fallback_model"] = renamed
    if manifest["policy"].get("reference_model") == fallback:
        manifest["policy"]["reference_model"] = renamed
    manifest["policy"]["value_usd"] = manifest["policy"]["value_usd"] * 2 + 0.5


@pytest.fixture(scope="session")
def other_bundle(bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second valid bundle: other router version, default value and candidate names
    (the fallback model is renamed, so a configured fallback no longer fits it)."""
    return edited_copy(bundle_dir, tmp_path_factory.mktemp("other") / "bundle", rename_fallback)


@pytest.fixture(scope="session")
def copy_bundle() -> Callable[..., Path]:
    """`edited_copy`, for tests that make bundles of their own."""
    return edited_copy


def _decided_on_thread(bundle: str) -> tuple[int, bool]:
    """The thread `/route`'s decision step ran on for a real service of ``bundle``, and
    whether that was the event loop's."""
    settings = Settings(bundle=bundle, time_budget_ms=60_000.0)
    service = RouterService.load(settings)
    try:
        work = threading.get_ident
        ran_on = asyncio.run(_run_within_budget(service, work, settings, time.perf_counter()))
    finally:
        service.close()
    return ran_on, ran_on == threading.get_ident()


@pytest.fixture
def decided_on_thread():
    """``f(bundle) -> (thread id, on the event loop?)`` of `/route`'s decision step."""
    return _decided_on_thread


@pytest.fixture(scope="module")
def decision_log_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh decision-log path per test module."""
    return tmp_path_factory.mktemp("decisions") / "decisions.jsonl"


@pytest.fixture
def override_settings(client, settings: Settings) -> Iterator:
    """Swap the settings the routes see for the duration of one test (``client`` and
    ``settings`` are the requesting module's)."""
    app = client.app
    previous = app.dependency_overrides.get(get_settings)

    def apply(**changes) -> None:
        changed = settings.model_copy(update=changes)
        app.dependency_overrides[get_settings] = lambda: changed

    yield apply
    app.dependency_overrides[get_settings] = previous
