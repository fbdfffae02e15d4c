"""The manifest schema (`serving.manifest`), the checks `load_bundle` runs with it, and
the graph names checked where the graphs are opened (`serving.scoring.BundleScorer`)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import onnx
import pytest

from serving.bundle import MANIFEST_FILE, file_sha256, load_bundle, router_version_of
from serving.manifest import (
    SCHEMA_VERSION,
    BundleError,
    ExcludedCandidate,
    Manifest,
    read_manifest,
    write_manifest,
)
from serving.scoring import BundleScorer

FIXTURES = Path(__file__).parent / "fixtures"


def test_manifest_round_trips(bundle_dir, tmp_path):
    written = json.loads((bundle_dir / MANIFEST_FILE).read_text())
    manifest = Manifest.from_dict(written)
    assert manifest.schema_version == SCHEMA_VERSION
    assert manifest.to_dict() == written
    assert Manifest.from_dict(manifest.to_dict()) == manifest

    excluded = (ExcludedCandidate("m", "1 graded call", 1),)
    edited = dataclasses.replace(manifest, excluded_candidates=excluded)
    again = write_manifest(tmp_path, edited)
    assert read_manifest(tmp_path) == again
    assert again.excluded_candidates == excluded
    on_disk = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert again.router_version == router_version_of(on_disk)
    assert again.router_version != manifest.router_version


def test_a_version_1_manifest_still_reads():
    """Written before `excluded_candidates`: it reads as having excluded nothing."""
    written = json.loads((FIXTURES / "manifest_v1.json").read_text())
    manifest = Manifest.from_dict(written)
    assert manifest.schema_version == 1 and manifest.excluded_candidates == ()
    assert manifest.training.min_calls is None
    assert manifest.to_dict() == written
    assert router_version_of(manifest.to_dict()) == manifest.router_version


def test_a_version_1_bundle_still_loads(copy_bundle, bundle_dir, tmp_path):
    def to_version_1(manifest):
        manifest["schema_version"] = 1
        del manifest["excluded_candidates"]
        del manifest["training"]["min_calls"]

    bundle = load_bundle(copy_bundle(bundle_dir, tmp_path / "v1", to_version_1))
    assert bundle.contents.schema_version == 1
    assert bundle.candidate_names == load_bundle(bundle_dir).candidate_names


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda m: m.update(schema_version=4),
            r"Bundle schema version 4 is not supported \(this code reads versions \[1, 2, 3\]\); "
            "retrain the bundle",
        ),
        (lambda m: m.pop("schema_version"), "Bundle schema version None is not supported"),
        (lambda m: m.update(routing_rules=[]), r"unknown keys \['routing_rules'\]"),
        (lambda m: m.pop("excluded_candidates"), r"lacks the keys \['excluded_candidates'\]"),
        (
            lambda m: m["policy"].pop("fallback_model"),
            r"section 'policy' lacks the keys \['fallback_model'\]",
        ),
        (lambda m: m.update(scorer=[]), "must be an object"),
    ],
)
def test_a_manifest_of_another_shape_is_refused(copy_bundle, bundle_dir, tmp_path, edit, message):
    folder = copy_bundle(bundle_dir, tmp_path / "b", edit)
    with pytest.raises(BundleError, match=message):
        load_bundle(folder)


def _rename_output(path: Path, old: str, new: str) -> None:
    model = onnx.load(path)
    for node in model.graph.node:
        node.output[:] = [new if name == old else name for name in node.output]
    for output in model.graph.output:
        if output.name == old:
            output.name = new
    onnx.save(model, path)


def test_a_graph_whose_output_was_renamed_is_refused(copy_bundle, bundle_dir, tmp_path):
    folder = copy_bundle(bundle_dir, tmp_path / "b", lambda m: None)
    _rename_output(folder / "scorer.onnx", "p_success", "probabilities")

    def rehash(manifest):
        manifest["files"]["scorer.onnx"] = file_sha256(folder / "scorer.onnx")

    folder = copy_bundle(folder, tmp_path / "rehashed", rehash)
    with pytest.raises(
        BundleError,
        match=r"scorer.onnx has output names \['probabilities'\], but the manifest's "
        r"scorer.output is 'p_success'",
    ):
        BundleScorer(load_bundle(folder))


def test_a_graph_whose_input_the_manifest_misnames_is_refused(copy_bundle, bundle_dir, tmp_path):
    folder = copy_bundle(
        bundle_dir, tmp_path / "b", lambda m: m["cost_model"].update(input="embedding")
    )
    with pytest.raises(
        BundleError,
        match=r"cost.onnx has input names \['features'\], but the manifest's "
        r"cost_model.input is 'embedding'",
    ):
        BundleScorer(load_bundle(folder))
