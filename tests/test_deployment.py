"""The Dockerfile, read and run without Docker.

Docker is not available to the tests, so what the image relies on is checked
directly: its CMD is run as written (``uvicorn --factory serving.app:create_app``,
settings from the environment only) against a real bundle, and every third-party
module that server process imports must come from the base dependencies of
pyproject.toml (plus the extras the Dockerfile installs), which is all the image has.
"""

from __future__ import annotations

import importlib
import json
import re
import shlex
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from training.demo import wait_for_health

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
OWN_PACKAGES = {"features", "serving", "training"}


def instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def cmd() -> list[str]:
    (args,) = [rest for word, rest in instructions() if word == "CMD"]
    return json.loads(args)  # exec form: no shell in between, signals reach uvicorn


def installed_extras() -> set[str]:
    """Extras of the project that the Dockerfile's ``pip install`` names."""
    (run,) = [rest for word, rest in instructions() if word == "RUN" and "pip install" in rest]
    specs = [w.strip("\"'") for w in shlex.split(run) if w.strip("\"'").startswith(".")]
    assert specs, f"the Dockerfile installs no local project: {run}"
    extras = set()
    for spec in specs:
        match = re.fullmatch(r"\.(?:\[([\w,\s-]*)\])?", spec)
        assert match, spec
        extras |= {e.strip() for e in (match.group(1) or "").split(",") if e.strip()}
    return extras


def test_the_image_is_slim_python_311_with_serving_dependencies_only():
    (base,) = [rest for word, rest in instructions() if word == "FROM"]
    assert base == "python:3.11-slim"
    assert "train" not in installed_extras()
    assert installed_extras() == set()


def test_cmd_runs_one_worker_of_an_importable_app_factory():
    args = cmd()
    assert args[0] == "uvicorn" and "--factory" in args
    assert args[args.index("--workers") + 1] == "1"
    (target,) = [a for a in args[1:] if re.fullmatch(r"[\w.]+:\w+", a)]
    module, attr = target.split(":")
    factory = getattr(importlib.import_module(module), attr)
    assert callable(factory)


def _requirements_closure(extras: set[str]) -> set[str]:
    """Canonical names of the distributions ``pip install .[extras]`` brings in,
    from the installed metadata (requirements of requirements, markers evaluated)."""

    def applies(req: Requirement, with_extras: set[str]) -> bool:
        return req.marker is None or any(req.marker.evaluate({"extra": e}) for e in with_extras)

    todo = [
        req
        for req in map(Requirement, metadata.requires("outcome-router") or [])
        if applies(req, {"", *extras})
    ]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        req = todo.pop()
        key = (canonicalize_name(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [sub for sub in map(Requirement, requires) if applies(sub, {"", *req.extras})]
    return {name for name, _ in seen}


#: Runs uvicorn in a process where every installed distribution outside the image's
#: dependencies is hidden: importing one fails as it would in the image, so optional
#: imports (``try: import uvloop``) behave as there and a required one stops the server.
IMAGE_LIKE_LAUNCHER = """
import json, runpy, sys
hidden = frozenset(json.loads(sys.argv.pop(1)))
class HideOutsideImage:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the image)", name=name)
        return None
sys.meta_path.insert(0, HideOutsideImage())
sys.argv[0] = "uvicorn"
runpy.run_module("uvicorn", run_name="__main__", alter_sys=True)
"""


def test_the_cmd_serves_with_only_the_serving_dependencies(
    bundle_dir, tmp_path, imported_packages, serving_forbidden
):
    """The Dockerfile's CMD, settings from the environment as in the image, answers
    /health and /route with only the image's distributions importable."""
    import socket

    closure = _requirements_closure(installed_extras())
    hidden = sorted(
        module
        for module, dists in metadata.packages_distributions().items()
        if module not in OWN_PACKAGES and not any(canonicalize_name(d) in closure for d in dists)
    )
    assert "torch" in hidden and "pandas" in hidden and "onnxruntime" not in hidden

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = cmd()[1:]  # after "uvicorn"
    args[args.index("--host") + 1] = "127.0.0.1"
    args[args.index("--port") + 1] = str(port)
    if importlib.util.find_spec("httptools") is None:
        # A base dependency; an environment installed before it was added may lack it.
        i = args.index("--http")
        del args[i : i + 2]
    env = {
        "PATH": str(Path(sys.executable).parent),
        "OUTCOME_ROUTER_BUNDLE": str(bundle_dir),
        "OUTCOME_ROUTER_TIME_BUDGET_MS": "60000",
        "HOME": str(tmp_path),
    }
    proc = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-c", IMAGE_LIKE_LAUNCHER, json.dumps(hidden), *args],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        health = wait_for_health("127.0.0.1", port, proc=proc)
        answer = httpx.post(
            f"http://127.0.0.1:{port}/route", json={"prompt": "Fix the flaky test"}, timeout=60
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] in health["candidates"]
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    imported = imported_packages(stderr)
    assert not imported & serving_forbidden, sorted(imported & serving_forbidden)
    assert "training" not in imported


@pytest.mark.parametrize("needed", ["pyproject.toml", "README.md", "features", "serving"])
def test_the_build_context_keeps_what_the_image_copies(needed):
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert needed not in ignored
    copied = " ".join(rest for word, rest in instructions() if word == "COPY")
    assert needed in copied


def test_pyproject_extras_named_by_the_dockerfile_exist():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert installed_extras() <= set(extras)
