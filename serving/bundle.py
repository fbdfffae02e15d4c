"""The bundle: the only thing that crosses from training to serving.

A folder with ``manifest.json``, ONNX files and ``tokenizer.json``. The manifest
(`serving.manifest`) lists the sha256 of every file and a router version that
hashes the manifest itself, so a bundle that was edited, truncated or half-copied
is refused before it can answer a single request; so is one whose graphs do not
have the tensor names the manifest declares.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from features.spec import FeatureSpec
from serving.manifest import (
    MANIFEST_FILE,
    BundleError,
    Candidate,
    Manifest,
    read_manifest,
    router_version_of,
)

__all__ = [
    "MANIFEST_FILE",
    "Bundle",
    "BundleError",
    "Candidate",
    "FallbackModelError",
    "file_sha256",
    "load_bundle",
    "router_version_of",
]


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


@dataclass(frozen=True)
class Bundle:
    """A verified bundle folder and its manifest.

    Attributes
    ----------
    path : Path
    contents : Manifest
        The typed manifest (`serving.manifest`).
    """

    path: Path
    contents: Manifest

    @cached_property
    def manifest(self) -> dict[str, Any]:
        """The manifest's JSON form, for code that reads ``manifest.json``'s layout."""
        return self.contents.to_dict()

    @property
    def router_version(self) -> str:
        return self.contents.router_version

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        return self.contents.candidates

    @property
    def candidate_names(self) -> tuple[str, ...]:
        return self.contents.candidate_names

    @property
    def feature_spec(self) -> FeatureSpec:
        return self.contents.feature_spec

    @property
    def policy(self) -> dict[str, Any]:
        """The default policy as a mapping (`serving.api.deps.policy_params` reads it)."""
        return self.contents.policy.to_dict()

    def file(self, name: str) -> Path:
        return self.path / name


def check_graph_signature(session: Any, section: str, graph: Any) -> None:
    """Check that an opened graph has the tensor names the manifest declares.

    Serving runs each graph by those names; a graph exported under other names would
    otherwise fail on the first request instead of at load. Checked where the graph
    is opened (`serving.scoring.BundleScorer`), so no graph is opened twice.

    Raises
    ------
    BundleError
        Naming the file, the declared name and the names found.
    """
    for kind, expected, found in (
        ("input", graph.input, [i.name for i in session.get_inputs()]),
        ("output", graph.output, [o.name for o in session.get_outputs()]),
    ):
        if expected not in found:
            raise BundleError(
                f"Bundle file {graph.file} has {kind} names {found}, but the manifest's "
                f"{section}.{kind} is {expected!r}: the graph and the manifest do not "
                "belong together; retrain or re-export the bundle."
            )


def load_bundle(path: str | Path) -> Bundle:
    """Read and verify a bundle folder.

    Raises
    ------
    BundleError
        If the folder or manifest is missing or malformed (`serving.manifest.read_manifest`),
        or a listed file is missing or its sha256 differs. A graph whose input or output
        names differ from the manifest's is refused where it is opened
        (`serving.scoring.BundleScorer`).
    """
    path = Path(path)
    manifest = read_manifest(path)
    for name, expected in manifest.files.items():
        file_path = path / name
        if not file_path.is_file():
            raise BundleError(f"Bundle file {name} listed in the manifest is missing from {path}.")
        actual = file_sha256(file_path)
        if actual != expected:
            raise BundleError(
                f"Bundle file {name} has sha256 {actual[:12]}…, the manifest says "
                f"{expected[:12]}…: the bundle was modified or copied incompletely."
            )
    return Bundle(path=path, contents=manifest)
