"""The LiteLLM hook against the real litellm library and a real /route server.

Requests go through the hook's pre-call method the way the LiteLLM proxy calls it
(``async_pre_call_hook(user_api_key_dict, cache, data, call_type)`` and then the
router with the same ``data``), into a real `litellm.Router` whose deployments
answer with ``mock_response``; the hook's success callback is registered in
``litellm.callbacks``, where LiteLLM calls it. The server is ``outcome-router
serve`` in a subprocess on a free loopback port, writing its decision log.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# LiteLLM fetches its price map from the internet at import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
from litellm import Router
from litellm.caching.dual_cache import DualCache
from litellm.types.proxy.auth.user_api_key_auth import UserAPIKeyAuth
from litellm.types.utils import Usage

from features.call_log import read_call_logs
from serving.bundle import load_bundle
from serving.gateways.litellm_hook import (
    META_DECISION_ID,
    META_REQUESTED_MODEL,
    HookSettings,
    OutcomeRouterHook,
)
from training.demo import free_port, start_server, wait_for_health

REQUESTED = "auto"  # the model clients ask for; a real deployment, so unrouted calls work
PROMPT_TOKENS, CACHED, CACHE_WRITE, OUTPUT_TOKENS = 1000, 600, 100, 50
INPUT_PRICE, OUTPUT_PRICE, CACHE_READ_PRICE = 1e-6, 2e-6, 1e-7
# LiteLLM's cost for the mock usage: uncached input (writes included, no write price
# set) at the input price, cache reads at their price, output at the output price.
EXPECTED_COST = (
    (PROMPT_TOKENS - CACHED) * INPUT_PRICE
    + CACHED * CACHE_READ_PRICE
    + OUTPUT_TOKENS * OUTPUT_PRICE
)


@pytest.fixture(scope="module")
def router_server(bundle_dir: Path, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """``outcome-router serve`` with a decision log; yields (base URL, log path)."""
    decision_log = tmp_path_factory.mktemp("hook_decisions") / "decisions.jsonl"
    port = free_port()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OUTCOME_ROUTER_DECISION_LOG", str(decision_log))
        # Behaviour, not speed: a busy shared machine must not turn decisions into fallbacks.
        mp.setenv("OUTCOME_ROUTER_TIME_BUDGET_MS", "60000")
        proc = start_server(bundle_dir, "127.0.0.1", port)
    try:
        wait_for_health("127.0.0.1", port, proc=proc)
        yield f"http://127.0.0.1:{port}", decision_log
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def candidates(bundle_dir: Path) -> list[str]:
    """Three of the bundle's candidates, served by the router below."""
    return list(load_bundle(bundle_dir).candidate_names[:3])


def _mock(model: str) -> dict:
    return {
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"answer from {model}"},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": OUTPUT_TOKENS,
            "total_tokens": PROMPT_TOKENS + OUTPUT_TOKENS,
            "prompt_tokens_details": {"cached_tokens": CACHED, "cache_write_tokens": CACHE_WRITE},
        },
    }


@pytest.fixture(scope="module")
def router(candidates: list[str]) -> Router:
    """A real LiteLLM router: one mock deployment per candidate, plus ``auto``."""
    model_list = [
        {
            "model_name": name,
            "litellm_params": {
                # An OpenAI-compatible deployment of each open-weight model.
                "model": f"openai/{name}",
                "api_key": "sk-test",
                "mock_response": _mock(name),
                "input_cost_per_token": INPUT_PRICE,
                "output_cost_per_token": OUTPUT_PRICE,
                "cache_read_input_token_cost": CACHE_READ_PRICE,
            },
        }
        for name in [*candidates, REQUESTED]
    ]
    return Router(model_list=model_list)


@pytest.fixture
def registered() -> Iterator:
    """Register hooks in ``litellm.callbacks`` for one test, then drop them.

    LiteLLM copies ``litellm.callbacks`` into its internal success and failure
    lists on the first call (one instance per class and settings), so a hook is
    removed with its own ``drop_callbacks``, which clears them all.
    """
    added: list[OutcomeRouterHook] = []

    def register(hook: OutcomeRouterHook) -> OutcomeRouterHook:
        litellm.callbacks.append(hook)
        added.append(hook)
        return hook

    yield register
    litellm.logging_callback_manager.drop_callbacks(added)


@pytest.fixture(scope="module")
def prompts(small_logs) -> list[str]:
    import pandas as pd

    frame = pd.read_parquet(small_logs["test"]).drop_duplicates("prompt_id")
    return [str(p)[:4000] for p in frame["prompt"].head(6)]


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def _through_proxy_path(
    hook: OutcomeRouterHook, router: Router, data: dict, key: UserAPIKeyAuth
) -> tuple[dict, object]:
    """What the proxy does per request: pre-call hooks on ``data``, then the router."""
    data = await hook.async_pre_call_hook(
        user_api_key_dict=key, cache=DualCache(), data=data, call_type="acompletion"
    )
    response = await router.acompletion(**data)
    return data, response


async def _wait_for_rows(path: Path, n: int, timeout_s: float = 60.0) -> list[dict]:
    """LiteLLM runs success callbacks after the response returns: wait for them."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = _read_jsonl(path)
        if len(rows) >= n:
            return rows
        await asyncio.sleep(0.05)
    return _read_jsonl(path)


def test_requests_reach_the_chosen_models_and_call_rows_join_decisions(
    router_server, router, candidates, prompts, registered, tmp_path
):
    url, decision_log = router_server
    call_log = tmp_path / "calls.jsonl"
    hook = registered(
        OutcomeRouterHook(
            HookSettings(
                url=url,
                call_log=call_log,
                candidates=",".join(candidates),
                timeout_ms=30_000,  # a busy machine must not turn this into the failure path
            )
        )
    )
    key = UserAPIKeyAuth(api_key="sk-proxy-key", user_id="key-owner", team_id="team-a")

    async def run() -> tuple[list, list[dict]]:
        served = []
        for i, prompt in enumerate(prompts):
            data = {
                "model": REQUESTED,
                "messages": [{"role": "user", "content": prompt}],
                "user": f"user-{i % 2}",
                "metadata": {"task": "code-review", "session_id": f"session-{i}"},
            }
            served.append(await _through_proxy_path(hook, router, data, key))
        rows = await _wait_for_rows(call_log, len(prompts))
        await hook.aclose()
        return served, rows

    served, rows = asyncio.run(run())
    decisions = {d["decision_id"]: d for d in _read_jsonl(decision_log)}

    for data, response in served:
        decision = decisions[data["metadata"][META_DECISION_ID]]
        assert data["model"] == decision["model"] in candidates
        assert data["metadata"][META_REQUESTED_MODEL] == REQUESTED
        # The deployment that answered is the one /route chose.
        assert response.model == decision["model"]
        assert response.choices[0].message.content == f"answer from {decision['model']}"

    assert len(rows) == len(prompts)
    read = read_call_logs(call_log)
    assert read.n_quarantined == 0, read.quarantined.to_dict("records")
    assert len(read.frame) == len(prompts)
    assert read.frame["request_id"].is_unique
    for row in rows:
        decision = decisions[row["decision_id"]]
        assert row["model"] == decision["model"]
        assert row["propensity"] == decision["propensity"]
        assert row["router_version"] == decision["router_version"]
        for field in ("user", "team", "task", "session_id"):
            assert row[field] == decision[field], field
        assert row["team"] == "team-a" and row["task"] == "code-review"
        assert row["messages"][-1]["role"] == "user"
        assert row["input_tokens"] == PROMPT_TOKENS
        assert row["cached_input_tokens"] == CACHED
        assert row["cache_write_tokens"] == CACHE_WRITE
        assert row["output_tokens"] == OUTPUT_TOKENS
        assert row["cost_usd"] == pytest.approx(EXPECTED_COST)
        assert row["latency_ms"] >= 0
    assert {r["decision_id"] for r in rows} == {d["metadata"][META_DECISION_ID] for d, _ in served}


def _unrouted_call(
    hook: OutcomeRouterHook, router: Router, call_log: Path
) -> tuple[dict, object, list[dict]]:
    key = UserAPIKeyAuth(api_key="sk-proxy-key", team_id="team-a")

    async def run():
        data = {"model": REQUESTED, "messages": [{"role": "user", "content": "Fix the flaky test"}]}
        data, response = await _through_proxy_path(hook, router, data, key)
        rows = await _wait_for_rows(call_log, 1)
        await hook.aclose()
        return data, response, rows

    return asyncio.run(run())


def _assert_served_unrouted(data: dict, response, rows: list[dict], call_log: Path) -> None:
    assert data["model"] == REQUESTED
    assert META_DECISION_ID not in data.get("metadata", {})
    assert response.choices[0].message.content == f"answer from {REQUESTED}"
    assert len(rows) == 1
    assert rows[0]["model"] == REQUESTED and "decision_id" not in rows[0]
    assert rows[0]["team"] == "team-a"
    read = read_call_logs(call_log)
    assert read.n_quarantined == 0 and len(read.frame) == 1


def test_route_unreachable_keeps_the_requested_model(router, registered, tmp_path):
    call_log = tmp_path / "calls.jsonl"
    closed = free_port()  # nothing listens there
    hook = registered(
        OutcomeRouterHook(HookSettings(url=f"http://127.0.0.1:{closed}", call_log=call_log))
    )
    _assert_served_unrouted(*_unrouted_call(hook, router, call_log), call_log)


def test_route_too_slow_keeps_the_requested_model(router, registered, tmp_path):
    call_log = tmp_path / "calls.jsonl"
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        hook = registered(
            OutcomeRouterHook(
                HookSettings(url=f"http://127.0.0.1:{port}", call_log=call_log, timeout_ms=200)
            )
        )
        result = _unrouted_call(hook, router, call_log)
    _assert_served_unrouted(*result, call_log)


def test_route_refusing_the_request_keeps_the_requested_model(
    router_server, router, registered, tmp_path
):
    """A 4xx from /route (here an unknown candidate) is not the request's problem."""
    url, _ = router_server
    call_log = tmp_path / "calls.jsonl"
    hook = registered(
        OutcomeRouterHook(
            HookSettings(url=url, call_log=call_log, candidates="gpt-9", timeout_ms=30_000)
        )
    )
    _assert_served_unrouted(*_unrouted_call(hook, router, call_log), call_log)


def test_only_listed_models_are_routed(router_server, candidates):
    url, decision_log = router_server
    hook = OutcomeRouterHook(
        HookSettings(url=url, route_models=REQUESTED, candidates=",".join(candidates))
    )
    before = len(_read_jsonl(decision_log))

    async def run(model: str) -> dict:
        data = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        try:
            key = UserAPIKeyAuth()
            return await hook.async_pre_call_hook(key, DualCache(), data, "acompletion")
        finally:
            await hook.aclose()

    explicit = asyncio.run(run(candidates[0]))
    assert explicit["model"] == candidates[0]
    assert META_DECISION_ID not in explicit["metadata"]
    assert len(_read_jsonl(decision_log)) == before
    embedding = asyncio.run(
        hook.async_pre_call_hook(
            UserAPIKeyAuth(), DualCache(), {"model": REQUESTED, "input": ["x"]}, "aembedding"
        )
    )
    assert embedding["model"] == REQUESTED


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        # LiteLLM's prompt_tokens already counts cache reads and writes.
        (
            Usage(
                prompt_tokens=100,
                completion_tokens=5,
                prompt_tokens_details={"cached_tokens": 60, "cache_write_tokens": 10},
            ),
            (100, 60, 10, 5),
        ),
        # A count that evidently leaves them out gets them added.
        (
            Usage(
                prompt_tokens=10, completion_tokens=5, prompt_tokens_details={"cached_tokens": 60}
            ),
            (70, 60, 0, 5),
        ),
        (Usage(prompt_tokens=7, completion_tokens=3), (7, 0, 0, 3)),
        # A streamed Anthropic call's reads sit in cache_read_input_tokens only (#11789).
        (
            {
                "prompt_tokens": 2459,
                "completion_tokens": 23,
                "cache_read_input_tokens": 2455,
                "prompt_tokens_details": {"cached_tokens": 0},
            },
            (2459, 2455, 0, 23),
        ),
    ],
)
def test_call_rows_count_cached_tokens_in_input_tokens(usage, expected, tmp_path):
    response = litellm.ModelResponse(model="m", usage=usage)
    hook = OutcomeRouterHook(HookSettings(call_log=tmp_path / "calls.jsonl"))
    kwargs = {
        "litellm_call_id": "call-1",
        "model": "m",
        "call_type": "acompletion",
        "messages": [{"role": "user", "content": "hi"}],
    }
    row = hook.call_log_row(kwargs, response, None, None)
    got = tuple(row[k] for k in ("input_tokens", "cached_input_tokens", "cache_write_tokens"))
    assert (*got, row["output_tokens"]) == expected
    asyncio.run(hook.async_log_success_event(kwargs, response, None, None))
    assert read_call_logs(tmp_path / "calls.jsonl").n_quarantined == 0


def test_call_rows_keep_one_hour_writes_and_reasoning(tmp_path):
    usage = Usage(
        prompt_tokens=1_000,
        completion_tokens=300,
        prompt_tokens_details={
            "cached_tokens": 200,
            "cache_creation_tokens": 500,
            "cache_creation_token_details": {
                "ephemeral_5m_input_tokens": 100,
                "ephemeral_1h_input_tokens": 400,
            },
        },
        completion_tokens_details={"reasoning_tokens": 120},
    )
    response = litellm.ModelResponse(model="m", usage=usage)
    hook = OutcomeRouterHook(HookSettings(call_log=tmp_path / "calls.jsonl"))
    kwargs = {
        "litellm_call_id": "call-1h",
        "model": "m",
        "call_type": "acompletion",
        "messages": [{"role": "user", "content": "hi"}],
    }
    row = hook.call_log_row(kwargs, response, None, None)
    assert (row["cache_write_tokens"], row["cache_write_1h_tokens"]) == (500, 400)
    assert (row["output_tokens"], row["reasoning_tokens"]) == (300, 120)
    asyncio.run(hook.async_log_success_event(kwargs, response, None, None))
    assert read_call_logs(tmp_path / "calls.jsonl").n_quarantined == 0


def test_the_documented_proxy_config_loads_the_hook(bundle_dir):
    """docs/litellm-proxy-config.yaml: its ``callbacks`` line resolves through the
    proxy's own loader to a hook, and the models it routes to are bundle candidates."""
    import yaml
    from litellm.proxy.types_utils.utils import get_instance_fn

    path = Path(__file__).resolve().parents[2] / "docs" / "litellm-proxy-config.yaml"
    config = yaml.safe_load(path.read_text())
    instance = get_instance_fn(config["litellm_settings"]["callbacks"], config_file_path=str(path))
    assert isinstance(instance, OutcomeRouterHook)
    assert "async_pre_call_hook" in vars(type(instance))  # how the proxy detects the hook
    names = [m["model_name"] for m in config["model_list"]]
    assert REQUESTED in names
    assert set(names) - {REQUESTED} <= set(load_bundle(bundle_dir).candidate_names)
