"""``POST /admin/reload`` on real bundles: swap, refusals, auth, concurrency.

One app per module; every test that reloads puts the session's bundle back.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from serving.app import create_app
from serving.bundle import MANIFEST_FILE, load_bundle
from serving.config import Settings

ADMIN_KEY = "admin-key-1"
API_KEY = "gateway-key-1"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
GATEWAY = {"X-API-Key": API_KEY}
RELAXED_BUDGET_MS = 60_000.0


@pytest.fixture(scope="module")
def settings(bundle_dir: Path, decision_log_path: Path) -> Settings:
    return Settings(
        bundle=str(bundle_dir),
        time_budget_ms=RELAXED_BUDGET_MS,
        decision_log=decision_log_path,
        api_keys=API_KEY,
        admin_keys=f"{ADMIN_KEY}, admin-key-2",
    )


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def versions(bundle_dir: Path, other_bundle: Path) -> tuple[str, str]:
    return load_bundle(bundle_dir).router_version, load_bundle(other_bundle).router_version


@pytest.fixture
def restore(client: TestClient, bundle_dir: Path, versions) -> Iterator[None]:
    """Serve the session's bundle again after the test."""
    yield
    if client.app.state.service.bundle.router_version != versions[0]:
        response = reload(client, {"bundle": str(bundle_dir)})
        assert response.status_code == 200, response.text


def reload(client: TestClient, body: dict | None = None, headers: dict | None = None):
    return client.post("/admin/reload", json=body, headers=ADMIN if headers is None else headers)


def route_version(client: TestClient) -> str:
    response = client.post("/route", json={"prompt": "Fix the flaky test."}, headers=GATEWAY)
    assert response.status_code == 200, response.text
    return response.json()["router_version"]


def reload_count(client: TestClient, outcome: str) -> float:
    prefix = f'outcome_router_reloads_total{{outcome="{outcome}"}} '
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    raise AssertionError(f"no {prefix!r} in /metrics")


# --------------------------------------------------------------------------- swap


def test_reload_swaps_to_another_bundle_and_back(
    client, other_bundle, bundle_dir, versions, restore
):
    first, second = versions
    assert route_version(client) == first
    response = reload(client, {"bundle": str(other_bundle)})
    assert response.status_code == 200, response.text
    body = response.json()
    other = load_bundle(other_bundle)
    assert body["previous_router_version"] == first and body["router_version"] == second
    assert body["changed"] is True
    assert body["candidates"] == list(other.candidate_names)
    assert body["fallback_model"] == other.policy["fallback_model"]
    assert body["source"] == body["bundle"] == str(other_bundle)
    assert body["load_ms"] > 0
    assert route_version(client) == second
    health = client.get("/health").json()
    assert health["router_version"] == second
    assert health["candidates"] == list(other.candidate_names)
    decision = client.post("/route", json={"prompt": "Hi"}, headers=GATEWAY).json()
    assert {s["model"] for s in decision["scores"]} == set(other.candidate_names)
    assert decision["scores"][0]["utility"] == pytest.approx(
        other.policy["value_usd"] * decision["scores"][0]["p_success"]
        - decision["scores"][0]["expected_cost_usd"]
    )
    # No body: the configured bundle, re-read.
    back = client.post("/admin/reload", headers=ADMIN)
    assert back.status_code == 200, back.text
    assert back.json()["router_version"] == first and back.json()["source"] == str(bundle_dir)
    assert route_version(client) == first


def test_reloading_the_same_bundle_reports_no_change(client, versions):
    body = reload(client, {}).json()
    assert body["previous_router_version"] == body["router_version"] == versions[0]
    assert body["changed"] is False


def test_the_decision_log_is_handed_over_not_reopened(
    client, other_bundle, decision_log_path, restore
):
    old = client.app.state.service
    assert reload(client, {"bundle": str(other_bundle)}).status_code == 200
    new = client.app.state.service
    assert new is not old and new.decision_log is old.decision_log
    # A request that resolved the old service before the swap still logs, through
    # the same open file, next to requests on the new one.
    old.decision_log.write(
        decision_id="in-flight",
        router_version=old.bundle.router_version,
        candidates=list(old.bundle.candidate_names),
        model=old.fallback_model,
        propensity=1.0,
        reason="fallback",
        scores=[],
        routing_text=None,
    )
    decision_id = client.post("/route", json={"prompt": "Hi"}, headers=GATEWAY).json()[
        "decision_id"
    ]
    lines = [json.loads(x) for x in decision_log_path.read_text().splitlines()]
    assert [x["decision_id"] for x in lines[-2:]] == ["in-flight", decision_id]
    assert lines[-1]["router_version"] == new.bundle.router_version


# ------------------------------------------------------------------------ refusals


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def tampered_onnx(copy, src: Path, dst: Path) -> Path:
    copy(src, dst, lambda m: None, rehash=False)
    flip_a_byte(dst / load_bundle(src).manifest["scorer"]["file"])
    return dst


def edited_manifest(copy, src: Path, dst: Path) -> Path:
    return copy(src, dst, lambda m: m["policy"].update(value_usd=99.0), rehash=False)


def extra_candidate(copy, src: Path, dst: Path) -> Path:
    """Hashes fine, but its graphs score one candidate fewer than it lists."""

    def add(manifest: dict) -> None:
        manifest["candidates"].append({"name": "ghost-model", "family": "ghost", "price": None})

    return copy(src, dst, add)


def missing_file(copy, src: Path, dst: Path) -> Path:
    copy(src, dst, lambda m: None, rehash=False)
    (dst / load_bundle(src).manifest["cost_model"]["file"]).unlink()
    return dst


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (tampered_onnx, r"has sha256 .* the bundle was modified"),
        (edited_manifest, r"the manifest was edited after training"),
        (extra_candidate, r"do not match its manifest's candidates"),
        (missing_file, r"is missing from"),
        (lambda copy, src, dst: dst, r"No manifest\.json in"),
    ],
    ids=["tampered onnx byte", "edited manifest", "graphs disagree", "missing file", "no bundle"],
)
def test_a_bad_bundle_is_refused_and_the_old_one_keeps_serving(
    client, copy_bundle, bundle_dir, tmp_path, versions, make, message
):
    bad = make(copy_bundle, bundle_dir, tmp_path / "bad")
    rejected = reload_count(client, "rejected")
    response = reload(client, {"bundle": str(bad)})
    assert response.status_code == 422, response.text
    text = response.json()["message"]
    assert text.startswith(f"Refused {bad}: ")
    assert re.search(message, text), text
    assert f"Bundle {versions[0]} keeps serving." in text
    assert reload_count(client, "rejected") == rejected + 1
    assert route_version(client) == versions[0]
    assert client.get("/health").json()["router_version"] == versions[0]


def test_a_fallback_model_missing_from_the_new_bundle_is_refused(
    client, other_bundle, override_settings, versions, manifest_fallback
):
    override_settings(fallback_model=manifest_fallback)
    response = reload(client, {"bundle": str(other_bundle)})
    assert response.status_code == 409, response.text
    message = response.json()["message"]
    assert f"The fallback model {manifest_fallback!r} is not a candidate" in message
    assert "OUTCOME_ROUTER_FALLBACK_MODEL" in message
    assert route_version(client) == versions[0]


@pytest.fixture
def manifest_fallback(bundle_dir: Path) -> str:
    return load_bundle(bundle_dir).policy["fallback_model"]


def test_a_second_reload_while_one_runs_is_refused(client, versions):
    busy = reload_count(client, "busy")
    with client.app.state.reloader.lock:
        response = reload(client)
    assert response.status_code == 409
    assert "Another reload is running" in response.json()["message"]
    assert reload_count(client, "busy") == busy + 1
    assert reload(client).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"bundel": "x"}, "bundel: Extra inputs are not permitted"),
        ({"bundle": ""}, "bundle: String should have at least 1 character"),
        ({"bundle": 3}, "bundle: Input should be a valid string"),
    ],
    ids=["typo", "empty", "number"],
)
def test_a_malformed_body_gets_422(client, body, message, versions):
    response = reload(client, body)
    assert response.status_code == 422
    assert message in response.json()["message"]
    assert route_version(client) == versions[0]


# ---------------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": f"Bearer {ADMIN_KEY[:-1]}"},
        {"X-API-Key": API_KEY},
        {"Authorization": ADMIN_KEY},
        {"X-API-Key": f"{ADMIN_KEY}, admin-key-2"},
    ],
    ids=["none", "wrong", "gateway key", "no bearer", "the whole list"],
)
def test_a_missing_or_wrong_admin_key_gets_401(client, headers):
    response = reload(client, headers=headers)
    assert response.status_code == 401
    assert "admin key" in response.json()["message"]
    assert response.headers["www-authenticate"] == "Bearer"


def test_the_second_admin_key_and_x_api_key_work(client):
    assert reload(client, headers={"X-API-Key": "admin-key-2"}).status_code == 200


def test_without_admin_keys_reload_is_closed(client, override_settings):
    override_settings(admin_keys=None)
    for headers in (ADMIN, {}):
        response = reload(client, headers=headers)
        assert response.status_code == 403
        assert "OUTCOME_ROUTER_ADMIN_KEYS" in response.json()["message"]


def test_an_admin_key_may_not_be_an_api_key():
    with pytest.raises(ValidationError, match="shares a key"):
        Settings(bundle="b", api_keys="a,b", admin_keys="c, b")
    assert Settings(bundle="b", admin_keys=" x ,, y").admin_key_list == ("x", "y")
    assert "x ," not in repr(Settings(bundle="b", admin_keys=" x ,, y"))


# --------------------------------------------------------------------- concurrency


def test_route_keeps_answering_during_repeated_reloads(
    client, bundle_dir, other_bundle, versions, decision_log_path, restore
):
    """Gateway threads post /route while the admin swaps back and forth: no request
    fails, each answer comes from one of the two bundles, each is logged once."""
    n_threads, per_thread, n_reloads = 4, 15, 6
    lines_before = len(decision_log_path.read_text().splitlines())
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()
    failures: list[BaseException] = []

    def gateway(i: int) -> None:
        try:
            for j in range(per_thread):
                body = {"prompt": f"Thread {i} asks question {j}.", "user": f"t{i}"}
                response = client.post("/route", json=body, headers=GATEWAY)
                with lock:
                    answers.append((response.status_code, response.json().get("router_version")))
        except BaseException as exc:  # surfaced below, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=gateway, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    swapped = []
    for k in range(n_reloads):
        target = other_bundle if k % 2 == 0 else bundle_dir
        response = reload(client, {"bundle": str(target)})
        swapped.append(response.status_code)
    for t in threads:
        t.join()
    assert not failures, failures
    assert swapped == [200] * n_reloads
    assert len(answers) == n_threads * per_thread
    assert {status for status, _ in answers} == {200}
    assert {version for _, version in answers} <= set(versions)
    logged = [json.loads(x) for x in decision_log_path.read_text().splitlines()[lines_before:]]
    assert len(logged) == n_threads * per_thread
    assert {x["router_version"] for x in logged} <= set(versions)
    assert client.app.state.service.bundle.router_version == versions[0]


def test_reload_is_listed_in_the_openapi_schema(client):
    operation = client.get("/openapi.json").json()["paths"]["/admin/reload"]["post"]
    assert set(operation["responses"]) >= {"200", "401", "403", "409", "422"}


def test_bundle_files_are_untouched(bundle_dir, versions):
    """The refusal tests copied before tampering: the session's bundle still verifies."""
    assert load_bundle(bundle_dir).router_version == versions[0]
    assert (bundle_dir / MANIFEST_FILE).is_file()


def test_shutdown_closes_the_handed_over_log_once(settings, other_bundle, tmp_path):
    path = tmp_path / "decisions.jsonl"
    with TestClient(create_app(settings.model_copy(update={"decision_log": path}))) as own:
        first = own.app.state.service.decision_log
        assert reload(own, {"bundle": str(other_bundle)}).status_code == 200
        assert own.app.state.service.decision_log is first
        assert own.post("/route", json={"prompt": "Hi"}, headers=GATEWAY).status_code == 200
    assert own.app.state.service is None
    with pytest.raises(ValueError, match=r"The decision log .* is closed"):
        first.write(
            decision_id="after-shutdown",
            router_version="x",
            candidates=[],
            model="x",
            propensity=1.0,
            reason="fallback",
            scores=[],
            routing_text=None,
        )
    assert len(path.read_text().splitlines()) == 1
