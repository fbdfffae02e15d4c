"""The bundle: the only thing that crosses from training to serving.

A folder with ``manifest.json``, ONNX files and ``tokenizer.json``. The manifest
lists the sha256 of every file and a router version that hashes the manifest
itself, so a bundle that was edited, truncated or half-copied is refused before
it can answer a single request.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from features.prices import ModelPrice
from features.spec import FeatureSpec

MANIFEST_FILE = "manifest.json"
BUNDLE_SCHEMA_VERSION = 1
#: Manifest keys left out of the router version: they do not change behaviour.
_UNVERSIONED_KEYS = ("router_version", "created_at")


class BundleError(ValueError):
    """The bundle is missing, malformed or does not match its hashes."""


class FallbackModelError(BundleError):
    """The configured fallback model is not a candidate of the bundle.

    Apart from `BundleError` because the fix differs: the bundle may be fine, the
    setting ``OUTCOME_ROUTER_FALLBACK_MODEL`` (or the manifest's policy) must change.
    """


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def router_version_of(manifest: dict[str, Any]) -> str:
    """Content hash of a manifest (file hashes included), 16 hex characters."""
    content = {k: v for k, v in manifest.items() if k not in _UNVERSIONED_KEYS}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Candidate:
    """One model the router can pick, with its catalog price when known."""

    name: str
    family: str
    price: ModelPrice | None


@dataclass(frozen=True)
class Bundle:
    """A verified bundle folder and its parsed manifest."""

    path: Path
    manifest: dict[str, Any]

    @property
    def router_version(self) -> str:
        return self.manifest["router_version"]

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        return tuple(
            Candidate(
                name=c["name"],
                family=c.get("family") or c["name"],
                price=ModelPrice.from_dict(c["price"]) if c.get("price") else None,
            )
            for c in self.manifest["candidates"]
        )

    @property
    def candidate_names(self) -> tuple[str, ...]:
        return tuple(c["name"] for c in self.manifest["candidates"])

    @property
    def feature_spec(self) -> FeatureSpec:
        return FeatureSpec.from_dict(self.manifest["feature_spec"])

    @property
    def policy(self) -> dict[str, Any]:
        return self.manifest["policy"]

    def file(self, name: str) -> Path:
        return self.path / name


_REQUIRED_KEYS = (
    "schema_version",
    "router_version",
    "candidates",
    "feature_spec",
    "scorer",
    "cost_model",
    "policy",
    "files",
)


def load_bundle(path: str | Path) -> Bundle:
    """Read and verify a bundle folder.

    Raises
    ------
    BundleError
        If the folder or manifest is missing or malformed, a listed file is missing
        or its sha256 differs, or the manifest does not hash to its router version.
    """
    path = Path(path)
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        raise BundleError(
            f"No {MANIFEST_FILE} in {path}: expected a bundle folder written by "
            "`outcome-router train --out`."
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{manifest_path} is not valid JSON: {exc}") from exc
    missing = [k for k in _REQUIRED_KEYS if k not in manifest]
    if missing:
        raise BundleError(f"{manifest_path} lacks the keys {missing}.")
    if manifest["schema_version"] != BUNDLE_SCHEMA_VERSION:
        raise BundleError(
            f"Bundle schema version {manifest['schema_version']} is not supported "
            f"(this code reads version {BUNDLE_SCHEMA_VERSION}); retrain the bundle."
        )
    for name, expected in manifest["files"].items():
        file_path = path / name
        if not file_path.is_file():
            raise BundleError(f"Bundle file {name} listed in the manifest is missing from {path}.")
        actual = file_sha256(file_path)
        if actual != expected:
            raise BundleError(
                f"Bundle file {name} has sha256 {actual[:12]}…, the manifest says "
                f"{expected[:12]}…: the bundle was modified or copied incompletely."
            )
    expected_version = router_version_of(manifest)
    if manifest["router_version"] != expected_version:
        raise BundleError(
            f"The manifest hashes to router version {expected_version}, but says "
            f"{manifest['router_version']}: the manifest was edited after training."
        )
    return Bundle(path=path, manifest=manifest)
