"""API keys on /route; /health and /metrics stay open."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.config import Settings


@pytest.fixture(scope="module")
def client(bundle_dir) -> Iterator[TestClient]:
    settings = Settings(bundle=str(bundle_dir), api_keys="first-key, second-key")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer first-key"},
        {"Authorization": "bearer second-key"},
        {"X-API-Key": "second-key"},
    ],
)
def test_a_configured_key_is_accepted(client, headers):
    response = client.post("/route", json={"prompt": "Fix the bug."}, headers=headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer first-ke"},
        {"Authorization": "first-key"},
        {"X-API-Key": ""},
        {"X-API-Key": "first-key, second-key"},
    ],
)
def test_a_missing_or_wrong_key_is_refused(client, headers):
    response = client.post("/route", json={"prompt": "Fix the bug."}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "API key" in response.text


def test_probes_stay_open(client):
    assert client.get("/health").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_keys_are_secret_and_split():
    settings = Settings(bundle="b", api_keys=" a ,b,, ")
    assert settings.api_key_list == ("a", "b")
    assert "a ,b" not in repr(settings)
    assert Settings(bundle="b").api_key_list == ()
