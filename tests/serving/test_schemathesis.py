"""Property-based tests of the HTTP API from its own OpenAPI schema (schemathesis).

Schemathesis generates valid and invalid requests for every operation of the
schema that `serving.app.create_app` publishes, sends them to the app in process
(ASGI, with the lifespan run, so a real bundle answers) and checks the answers.
No input may produce a 5xx: bad input is the caller's to fix (4xx) and anything
else is answered (the fallback model at worst).

Bounded and reproducible: a fixed number of examples per operation, derandomized,
so the test takes seconds (after the shared bundle fixture) and fails the same way
every time.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from serving.app import create_app
from serving.config import Settings

#: Examples per operation and mode; raise it for a deeper local search, e.g.
#: ``OUTCOME_ROUTER_FUZZ_EXAMPLES=2000 pytest tests/serving/test_schemathesis.py``.
MAX_EXAMPLES = int(os.environ.get("OUTCOME_ROUTER_FUZZ_EXAMPLES", "60"))


@pytest.fixture(scope="module")
def api_schema(bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The app's OpenAPI schema, bound to the app itself (requests go in process)."""
    app = create_app(
        Settings(
            bundle=str(bundle_dir),
            time_budget_ms=60_000.0,  # behaviour, not speed, on a shared machine
            decision_log=tmp_path_factory.mktemp("fuzz") / "decisions.jsonl",
        )
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app)


# Every operation of the published schema; a new endpoint must be added here
# (checked below), so it cannot escape the fuzzing.
#: ``/admin/reload`` is fuzzed without admin keys configured (403 for everything), so
#: a generated ``models:/`` source never starts a registry download.
OPERATIONS = [
    ("POST", "/route"),
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("POST", "/admin/reload"),
]


def test_every_operation_is_fuzzed(api_schema):
    published = {(op.method.upper(), op.path) for op in _operations(api_schema)}
    assert published == set(OPERATIONS)


def _operations(api_schema):
    return [result.ok() for result in api_schema.get_all_operations()]


# schemathesis' pytest plugin (``from_fixture``/``parametrize``) does not run on
# pytest 9, so each operation's hypothesis strategy is driven directly.
@pytest.mark.parametrize(
    ("method", "path", "mode"),
    [
        *((method, path, GenerationMode.POSITIVE) for method, path in OPERATIONS),
        # Invalid bodies: wrong types, missing fields, out-of-range knobs. (The GET
        # operations take no input, so there is nothing invalid to generate.)
        ("POST", "/route", GenerationMode.NEGATIVE),
        ("POST", "/admin/reload", GenerationMode.NEGATIVE),
    ],
)
def test_no_input_gets_a_server_error(api_schema, method: str, path: str, mode: GenerationMode):
    operation = api_schema[path][method]
    sent = []

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case) -> None:
        response = case.call()
        sent.append(response.status_code)
        assert response.status_code < 500, f"{case.as_curl_command()} -> {response.text}"
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

    check()
    assert sent  # the strategy generated requests at all
