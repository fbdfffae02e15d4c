"""The MLflow model registry: register bundles, promote, resolve ``models:/`` URIs, and
serve one without the serving process importing mlflow.

One store per module (MLflow's sqlite set-up costs seconds): version 1 is the
session's trained bundle, version 2 a copy with another default policy (hence another
router_version). Tests that move the alias put it back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from serving.bundle import MANIFEST_FILE, load_bundle, router_version_of
from serving.registry_fetch import fetch_registry_bundle
from training import cli
from training.demo import free_port, start_server, wait_for_health
from training.registry import (
    ModelRef,
    RegistryError,
    download_bundle,
    list_versions,
    promote,
    register_bundle,
    resolve_version,
)
from training.tracking import DEFAULT_EXPERIMENT, log_training_run

NAME = "outcome-router"
#: Never imported by the serving process (DESIGN.md: serving stays lean).


def variant_bundle(bundle_dir: Path, dst: Path, value_usd: float) -> Path:
    """A copy of a bundle with another default value: valid, with its own version."""
    shutil.copytree(bundle_dir, dst)
    manifest = json.loads((dst / MANIFEST_FILE).read_text())
    manifest["policy"]["value_usd"] = value_usd
    manifest["router_version"] = router_version_of(manifest)
    (dst / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    return dst


@pytest.fixture(scope="module")
def store(bundle_dir, tmp_path_factory):
    """``{root, runs, router_versions}``: two registered versions, champion = 1."""
    base = tmp_path_factory.mktemp("registry")
    root = base / "mlruns"
    other = variant_bundle(bundle_dir, base / "variant", value_usd=123.0)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        runs = [
            log_training_run(
                bundle_dir,
                params={"learner": "first"},
                metrics={"cv_area": 0.5, "cv_log_loss": 0.6, "cv_area_usage+knn": 0.55},
                root=root,
            ),
            log_training_run(other, params={"learner": "second"}, metrics={}, root=root),
        ]
        versions = [register_bundle(run, name=NAME, root=root) for run in runs]
        assert versions == ["1", "2"]
        promote("1", name=NAME, root=root)
        yield {
            "base": base,
            "root": root,
            "runs": runs,
            "router_versions": [
                load_bundle(bundle_dir).router_version,
                load_bundle(other).router_version,
            ],
        }


@pytest.fixture(autouse=True)
def _no_env_store(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)


# --------------------------------------------------------------------------- URIs


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("models:/outcome-router@champion", ModelRef("outcome-router", alias="champion")),
        ("models:/outcome-router/12", ModelRef("outcome-router", version="12")),
        ("models:/my_router@challenger-2", ModelRef("my_router", alias="challenger-2")),
    ],
)
def test_parse_models_uri(uri, expected):
    assert ModelRef.parse(uri) == expected
    assert ModelRef.parse(uri).uri == uri


@pytest.mark.parametrize(
    "uri",
    [
        "outcome-router@champion",
        "models:/outcome-router",
        "models:/outcome-router/Production",
        "models:/outcome-router/0",
        "models:/@champion",
        "models:/a/b/3",
        "models:/outcome-router@",
    ],
)
def test_parse_refuses_other_forms(uri):
    with pytest.raises(RegistryError, match=r"models:/NAME@ALIAS or models:/NAME/VERSION"):
        ModelRef.parse(uri)


# --------------------------------------------------------------------------- register


def test_versions_carry_router_version_and_validation_area(store):
    versions = list_versions(NAME, root=store["root"])
    assert [v.version for v in versions] == ["1", "2"]
    assert [v.router_version for v in versions] == store["router_versions"]
    assert versions[0].val_area == pytest.approx(0.5)
    assert versions[1].val_area is None
    assert versions[0].aliases == ["champion"] and versions[1].aliases == []
    assert [v.run_id for v in versions] == store["runs"]
    assert all(v.source.endswith("/bundle") for v in versions)


def test_setting_labels_become_valid_metric_names(store):
    from mlflow import MlflowClient

    from training.tracking import default_tracking_uri

    client = MlflowClient(tracking_uri=default_tracking_uri(store["root"]))
    metrics = client.get_run(store["runs"][0]).data.metrics
    assert metrics["cv_area_usage_knn"] == 0.55 and metrics["cv_area"] == 0.5


def test_register_is_idempotent_per_run(store):
    assert register_bundle(store["runs"][0], name=NAME, root=store["root"]) == "1"
    assert len(list_versions(NAME, root=store["root"])) == 2


def test_register_refuses_unknown_runs_and_runs_without_bundle(store, tmp_path):
    with pytest.raises(RegistryError, match="No MLflow run 'deadbeef'"):
        register_bundle("deadbeef", name=NAME, root=store["root"])
    (tmp_path / "notes.txt").write_text("no bundle here")
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{store['root']}/mlflow.db")
    experiment = client.get_experiment_by_name(DEFAULT_EXPERIMENT)
    run_id = client.create_run(experiment.experiment_id).info.run_id
    client.log_artifact(run_id, str(tmp_path / "notes.txt"))
    with pytest.raises(RegistryError, match=r"logged no bundle/manifest\.json"):
        register_bundle(run_id, name=NAME, root=store["root"])


def test_logging_leaves_the_process_environment_alone(store, bundle_dir):
    """mlflow.set_tracking_uri would export MLFLOW_TRACKING_URI to every later child."""
    log_training_run(bundle_dir, params={}, metrics={}, root=store["root"], experiment="env")
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_a_missing_store_is_an_error_not_an_empty_store(tmp_path):
    with pytest.raises(RegistryError, match="No MLflow store at"):
        resolve_version("models:/outcome-router@champion", root=tmp_path / "mlruns")
    assert not (tmp_path / "mlruns").exists()


# --------------------------------------------------------------------------- promote


def test_promote_moves_the_alias_and_reports_the_previous_version(store):
    root = store["root"]
    moved = promote("2", name=NAME, root=root)
    try:
        assert moved["previous"] == "1" and moved["version"] == "2"
        assert moved["router_version"] == store["router_versions"][1]
        assert resolve_version(f"models:/{NAME}@champion", root=root).version == "2"
    finally:
        assert promote("1", name=NAME, root=root)["previous"] == "2"
    challenger = promote("2", name=NAME, alias="challenger", root=root)
    assert challenger["previous"] is None
    assert resolve_version(f"models:/{NAME}@challenger", root=root).version == "2"


@pytest.mark.parametrize(
    "version, kwargs, message",
    [
        ("7", {}, r"has no version 7; its versions: 1 @champion .*; 2"),
        ("v2", {}, r"Expected a version number"),
        ("1", {"alias": "1x"}, r"Expected an alias"),
        ("1", {"alias": "v2"}, r"MLflow reserves"),
        ("1", {"name": "nope"}, r"No registered model 'nope'.*\['outcome-router'\]"),
    ],
)
def test_promote_errors(store, version, kwargs, message):
    with pytest.raises(RegistryError, match=message):
        promote(version, root=store["root"], **{"name": NAME, **kwargs})


def test_promote_command(store, capsys):
    assert cli.main(["promote", "1", "--mlruns", str(store["root"])]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["version"] == "1" and printed["alias"] == "champion"
    assert cli.main(["promote", "9", "--mlruns", str(store["root"])]) == 2
    err = capsys.readouterr().err
    assert "has no version 9" in err and "1 @champion" in err


# --------------------------------------------------------------------------- resolve


@pytest.mark.parametrize(
    "uri, message",
    [
        ("models:/outcome-router@staging", r"no alias 'staging'; its versions: 1 @champion"),
        ("models:/outcome-router/5", r"no version 5; its versions: 1 @champion"),
        ("models:/other@champion", r"No registered model 'other'"),
    ],
)
def test_unknown_alias_version_or_model(store, uri, message):
    with pytest.raises(RegistryError, match=message):
        resolve_version(uri, root=store["root"])


def test_download_resolves_to_a_verified_folder(store, tmp_path):
    champion = download_bundle(f"models:/{NAME}@champion", tmp_path, root=store["root"])
    assert champion == (tmp_path / f"{NAME}-1").resolve()
    assert load_bundle(champion).router_version == store["router_versions"][0]
    second = download_bundle(f"models:/{NAME}/2", tmp_path, root=store["root"])
    assert load_bundle(second).router_version == store["router_versions"][1]
    # Cached: reused as long as it verifies, replaced once it does not.
    onnx = next(p for p in champion.iterdir() if p.suffix == ".onnx")
    onnx.write_bytes(b"tampered")
    again = download_bundle(f"models:/{NAME}@champion", tmp_path, root=store["root"])
    assert again == champion and load_bundle(again).router_version == store["router_versions"][0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{NAME}-1", f"{NAME}-2"]


def test_fetch_in_a_child_process(store):
    path = fetch_registry_bundle(f"models:/{NAME}/2", store["root"])
    assert path == (store["root"] / "served" / f"{NAME}-2").resolve()
    assert load_bundle(path).router_version == store["router_versions"][1]
    with pytest.raises(ValueError, match=r"Could not fetch .*no alias 'gone'"):
        fetch_registry_bundle(f"models:/{NAME}@gone", store["root"])


def test_route_command_takes_a_registry_uri(store, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt_id": "p1", "prompt": "Fix the failing test."}) + "\n")
    out = tmp_path / "decisions.jsonl"
    argv = ["route", "--bundle", f"models:/{NAME}@champion", "--mlruns", str(store["root"])]
    assert cli.main([*argv, "--input", str(prompts), "--out", str(out)]) == 0
    decision = json.loads(out.read_text())
    assert decision["prompt_id"] == "p1" and decision["scores"]


def test_serve_refuses_an_unknown_alias_before_starting(store, capsys):
    argv = ["serve", "--bundle", f"models:/{NAME}@nope", "--mlruns", str(store["root"])]
    assert cli.main(argv) == 2
    assert "no alias 'nope'" in capsys.readouterr().err


def _serve_champion(store, port: int) -> subprocess.Popen:
    """``serve --bundle models:/NAME@champion`` from the store's folder (default
    ``--mlruns``: ./mlruns), with import timings on stderr."""
    return start_server(
        f"models:/{NAME}@champion",
        "127.0.0.1",
        port,
        python_flags=("-X", "importtime"),
        stderr=subprocess.PIPE,
        text=True,
        cwd=store["base"],
    )


def test_serve_a_registry_uri_without_importing_mlflow(store, imported_packages, serving_forbidden):
    """``serve --bundle models:/NAME@champion`` over HTTP; the server never imports mlflow."""
    port = free_port()
    proc = _serve_champion(store, port)
    try:
        health = wait_for_health("127.0.0.1", port, timeout_s=120, proc=proc)
        assert health["router_version"] == store["router_versions"][0]
        response = httpx.post(
            f"http://127.0.0.1:{port}/route", json={"prompt": "Fix the bug."}, timeout=30
        )
        assert response.status_code == 200, response.text
        assert response.json()["router_version"] == store["router_versions"][0]
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=20)
    top_level = imported_packages(stderr)
    assert "onnxruntime" in top_level and "uvicorn" in top_level
    assert not top_level & serving_forbidden, sorted(top_level & serving_forbidden)
    assert f"models:/{NAME}@champion -> " in stderr


def test_admin_reload_follows_a_promoted_alias_without_importing_mlflow(
    store, imported_packages, serving_forbidden, monkeypatch
):
    """serve models:/NAME@champion, promote version 2, POST /admin/reload: the server
    re-resolves the alias (in a child process) and serves version 2."""
    monkeypatch.setenv("OUTCOME_ROUTER_ADMIN_KEYS", "registry-admin")
    admin = {"Authorization": "Bearer registry-admin"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _serve_champion(store, port)
    try:
        health = wait_for_health("127.0.0.1", port, timeout_s=120, proc=proc)
        assert health["router_version"] == store["router_versions"][0]
        promote("2", name=NAME, root=store["root"])
        try:
            response = httpx.post(f"{base}/admin/reload", headers=admin, timeout=120)
        finally:
            promote("1", name=NAME, root=store["root"])
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["source"] == f"models:/{NAME}@champion"
        assert body["router_version"] == store["router_versions"][1]
        assert body["bundle"].endswith(f"{NAME}-2")
        decision = httpx.post(f"{base}/route", json={"prompt": "Fix the bug."}, timeout=30)
        assert decision.json()["router_version"] == store["router_versions"][1]

        unknown = {"bundle": f"models:/{NAME}@nope"}
        refused = httpx.post(f"{base}/admin/reload", json=unknown, headers=admin, timeout=120)
        assert refused.status_code == 422
        assert "no alias 'nope'" in refused.json()["message"]
        assert httpx.get(f"{base}/health").json()["router_version"] == store["router_versions"][1]

        pinned = {"bundle": f"models:/{NAME}/1"}
        back = httpx.post(f"{base}/admin/reload", json=pinned, headers=admin, timeout=120)
        assert back.json()["router_version"] == store["router_versions"][0]
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=20)
    top_level = imported_packages(stderr)
    assert not top_level & serving_forbidden, sorted(top_level & serving_forbidden)
