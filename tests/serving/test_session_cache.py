"""Cache-aware routing from the router's own per-session state (issue 11, section 4).

The unit tests drive `SessionCache` with a simulated clock; the app tests serve copies
of the session's real bundle whose manifest gives two candidates cache prices:

- ``warm``: the dearest cold candidate (its prompt tokens cost 1000x the others'), with
  a free cache read and no output cost, so once it holds the prefix it is the cheapest;
- ``premium``: an Anthropic-style write price (1.25x its input price).
"""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.batch_routing import route_file
from serving.config import Settings
from serving.decision_log import read_decision_log
from serving.session_cache import CacheRules, SessionCache

PROMPT = "Review this patch for thread-safety problems: " + "lock.acquire(); x += 1\n" * 40
RELAXED_BUDGET_MS = 60_000.0
WRITE_FACTOR = 1.25


class Clock:
    """A settable clock, in seconds."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------ SessionCache


def test_a_prefix_is_warm_within_the_ttl_and_cold_after():
    clock = Clock()
    cache = SessionCache(10, clock=clock)
    cache.remember("s", "a", 2000)
    clock.now += 299.0
    warm = cache.lookup("s", ["a", "b"])
    assert (warm.warm, warm.model, warm.prompt_tokens, warm.age_s) == (True, "a", 2000.0, 299.0)
    clock.now += 2.0
    cold = cache.lookup("s", ["a", "b"])
    assert cold.warm is False and cold.model == "a"
    assert "expired: 301 s since its last use, TTL 300 s" in cold.reason


def test_the_ttl_and_minimum_follow_the_overrides_longest_key_first():
    rules = CacheRules(
        ttl_s=300,
        ttl_overrides={"claude-": 3600, "claude-haiku-4-5": 60},
        min_tokens_overrides={"claude-haiku": 4096},
    )
    assert rules.ttl_for("claude-sonnet-4-5") == 3600
    assert rules.ttl_for("claude-haiku-4-5") == 60
    assert rules.ttl_for("gpt-4o") == 300
    assert rules.min_tokens_for("claude-haiku-4-5") == 4096
    assert rules.min_tokens_for("gpt-4o") == 1024
    clock = Clock()
    cache = SessionCache(10, rules=rules, clock=clock)
    cache.remember("s", "claude-sonnet-4-5", 5000)
    clock.now += 1800
    assert cache.lookup("s", ["claude-sonnet-4-5"]).warm is True


@pytest.mark.parametrize(
    ("session_id", "candidates", "reason"),
    [
        ("new", ["a"], "no earlier decision of this session"),
        ("s", ["b"], "is not a candidate of this router"),
    ],
)
def test_a_prefix_that_cannot_be_warm_says_why(session_id, candidates, reason):
    cache = SessionCache(10, clock=Clock())
    cache.remember("s", "a", 2000)
    prefix = cache.lookup(session_id, candidates)
    assert prefix.warm is False
    assert reason in prefix.reason


def test_the_least_recently_routed_session_is_evicted_beyond_the_bound():
    cache = SessionCache(3, clock=Clock())
    for session in ("s1", "s2", "s3"):
        cache.remember(session, "a", 100)
    cache.remember("s1", "b", 200)  # s1 routed again: s2 is now the oldest
    cache.remember("s4", "a", 100)
    assert len(cache) == 3
    assert cache.get("s2") is None
    assert [cache.get(s).model for s in ("s1", "s3", "s4")] == ["b", "a", "a"]


@pytest.mark.parametrize("kwargs", [{"max_sessions": 0}, {"models_per_session": 0}])
def test_bounds_must_be_positive(kwargs):
    with pytest.raises(ValueError, match="OUTCOME_ROUTER_CACHE_SESSIONS=0"):
        SessionCache(**kwargs)


@pytest.mark.parametrize(("models", "at_most"), [(1, 350), (4, 650)])
def test_a_session_costs_280_to_560_bytes(models, at_most):
    """The figures the module docstring quotes: entries, their key and the mapping's
    share, for a session routed to one model and to the cap of four."""
    n = 20_000
    ids = [f"{i:08d}-aaaa-bbbb-cccc-dddddddddddd" for i in range(n)]  # 36 characters
    names = ["claude-haiku-4-5", "gpt-4o", "gpt-5", "gpt-4.1-nano"][:models]
    cache = SessionCache(n, clock=Clock())
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for model in names:
        for session_id in ids:
            cache.remember(session_id, model, 1234.5)
    per_session = (tracemalloc.get_traced_memory()[0] - before) / n
    tracemalloc.stop()
    key_bytes = 49 + 36  # the ids were built before measuring: add their own size
    assert 150 < per_session + key_bytes < at_most, per_session


def test_earlier_models_of_a_session_stay_warm_within_their_ttl():
    clock = Clock()
    cache = SessionCache(10, clock=clock, models_per_session=2)
    cache.remember("s", "a", 1000)
    clock.now += 100
    cache.remember("s", "b", 1500)
    clock.now += 100
    prefix = cache.lookup("s", ["a", "b", "c"])
    assert prefix.model == "b" and prefix.warm
    assert prefix.prefixes == {"b": (1500.0, 100.0), "a": (1000.0, 200.0)}
    clock.now += 150  # a: 350 s since its last use, b: 250 s
    assert cache.lookup("s", ["a", "b"]).prefixes == {"b": (1500.0, 250.0)}
    cache.remember("s", "c", 2000)  # at most two models: a is forgotten
    assert [e.model for e in cache.entries("s")] == ["c", "b"]


def test_many_threads_remember_and_look_up_without_errors():
    bound, threads, rounds = 50, 16, 2000
    cache = SessionCache(bound)
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(rounds):
                session = f"s{(t * 7 + i) % 120}"
                cache.lookup(session, ["a", "b"])
                cache.remember(session, "ab"[i % 2], i)
                if i % 50 == 0:
                    cache.forget(f"s{i % 120}")
        except BaseException as exc:  # any error fails the test below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert errors == []
    assert len(cache) <= bound + threads  # eviction may lag by one entry per writer


# -------------------------------------------------------------------- /route


def _components(manifest: dict[str, Any], k: int) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in manifest["cost_model"]["components"] if c["candidate"] == k}


def _cache_prices(manifest: dict[str, Any]) -> None:
    """Candidate 0: dear prompt tokens, free cache reads, free output (``warm``);
    candidate 1: an Anthropic-style write premium (``premium``)."""
    warm, premium = manifest["candidates"][0], manifest["candidates"][1]
    parts = _components(manifest, 0)
    parts["input_tokens"]["price"] *= 1000
    parts["output_tokens"]["price"] = 0.0
    warm["price"] = {
        "input_cost_per_token": parts["input_tokens"]["price"],
        "output_cost_per_token": 0.0,
        "cache_read_input_token_cost": 0.0,
    }
    input_price = _components(manifest, 1)["input_tokens"]["price"]
    premium["price"] = {
        **premium["price"],
        "cache_read_input_token_cost": input_price * 0.1,
        "cache_creation_input_token_cost": input_price * WRITE_FACTOR,
    }


@pytest.fixture(scope="module")
def cached_bundle(bundle_dir: Path, copy_bundle, tmp_path_factory) -> Path:
    return copy_bundle(bundle_dir, tmp_path_factory.mktemp("session-cache") / "b", _cache_prices)


@pytest.fixture(scope="module")
def log_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("session-log") / "decisions.jsonl"


@pytest.fixture(scope="module")
def client(cached_bundle: Path, log_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        bundle=str(cached_bundle),
        time_budget_ms=RELAXED_BUDGET_MS,
        decision_log=log_path,
        decision_log_fsync_s=0,
        cache_min_tokens=0,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def names(client) -> list[str]:
    return client.get("/health").json()["candidates"]


def _route(client: TestClient, **extra) -> dict[str, Any]:
    response = client.post("/route", json={"prompt": PROMPT, "value_usd": 0.0, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def _costs(body: dict[str, Any]) -> dict[str, float]:
    return {s["model"]: s["expected_cost_usd"] for s in body["scores"]}


def test_a_warm_session_makes_its_model_the_cheapest(client, names):
    warm = names[0]
    plain = _route(client)
    assert plain["model"] != warm and plain["cache_assumed"] is None
    first = _route(client, session_id="warm-1", candidates=[warm])
    assert first["model"] == warm
    assert first["cache_assumed"]["reason"] == "no earlier decision of this session"
    second = _route(client, session_id="warm-1")
    assumed = second["cache_assumed"]
    assert second["model"] == warm
    assert assumed["source"] == "session" and assumed["model"] == warm
    assert assumed["cached_tokens"] > 0 and assumed["reason"] is None
    assert 0 <= assumed["age_s"] < 60
    assert _costs(second)[warm] == pytest.approx(_costs(plain)[warm] - assumed["discount_usd"])
    assert _costs(second)[warm] < min(c for m, c in _costs(plain).items() if m != warm)


def test_a_model_the_session_left_is_still_priced_warm(client, names):
    warm, other = names[0], names[1]
    _route(client, session_id="left", candidates=[warm])
    moved = _route(client, session_id="left", candidates=[other])
    assert moved["model"] == other
    back = _route(client, session_id="left")
    assumed = back["cache_assumed"]
    assert assumed["model"] == other
    assert set(assumed["warm_prefixes"]) == {warm, other}
    assert back["model"] == warm


def test_cold_candidates_pay_the_write_premium(client, names):
    premium = names[1]
    plain = _route(client)
    body = _route(client, session_id="premium-1")
    charged = body["cache_assumed"]["write_premium_usd"]
    assert list(charged) == [premium]
    assert charged[premium] > 0
    assert _costs(body)[premium] == pytest.approx(_costs(plain)[premium] + charged[premium])
    for other in names[2:]:
        assert _costs(body)[other] == pytest.approx(_costs(plain)[other])


def test_an_expired_session_is_priced_cold(cached_bundle, tmp_path, names):
    settings = Settings(
        bundle=str(cached_bundle),
        time_budget_ms=RELAXED_BUDGET_MS,
        cache_min_tokens=0,
        cache_ttl_overrides={names[0]: 0.05},
    )
    with TestClient(create_app(settings)) as short_ttl:
        _route(short_ttl, session_id="s", candidates=[names[0]])
        time.sleep(0.2)
        body = _route(short_ttl, session_id="s")
    assert body["model"] != names[0]
    assert body["cache_assumed"]["cached_tokens"] == 0
    assert "expired" in body["cache_assumed"]["reason"]


def test_the_request_cache_field_overrides_the_session(client, names):
    warm, other = names[0], names[2]
    _route(client, session_id="hinted", candidates=[warm])
    body = _route(client, session_id="hinted", cache={"model": other, "cached_tokens": 10})
    assumed = body["cache_assumed"]
    assert assumed["source"] == "request" and assumed["model"] == other
    assert assumed["write_premium_usd"] == {}
    assert body["model"] != warm  # the session's warm prefix was not priced
    # ... but the decision still updated the session: its model is the warm one now.
    again = _route(client, session_id="hinted")
    assert again["cache_assumed"]["model"] == body["model"]


def test_the_decision_log_records_the_assumption(client, log_path, names):
    _route(client, session_id="logged", candidates=[names[0]])
    body = _route(client, session_id="logged")
    records = {r["decision_id"]: r for r in read_decision_log(log_path).records}
    record = records[body["decision_id"]]
    assert record["session_id"] == "logged"
    assert record["cache_assumed"] == body["cache_assumed"]
    assert record["cache_assumed"]["source"] == "session"
    assert record["cache_assumed"]["cached_tokens"] > 0
    plain = _route(client)  # no session: nothing assumed
    last = read_decision_log(log_path).records[-1]
    assert last["decision_id"] == plain["decision_id"] and last["cache_assumed"] is None


def test_sessions_can_be_turned_off(cached_bundle, names):
    settings = Settings(
        bundle=str(cached_bundle), time_budget_ms=RELAXED_BUDGET_MS, cache_sessions=0
    )
    with TestClient(create_app(settings)) as off:
        _route(off, session_id="s", candidates=[names[0]])
        body = _route(off, session_id="s")
    assert body["cache_assumed"] is None


def test_concurrent_requests_of_many_sessions_do_not_fail(client, names):
    def one(i: int) -> tuple[int, str]:
        extra = {"candidates": [names[i % len(names)]]} if i % 3 == 0 else {}
        response = client.post(
            "/route",
            json={"prompt": f"{PROMPT} #{i}", "session_id": f"c{i % 7}", **extra},
        )
        return response.status_code, response.json()["reason"]

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(one, range(120)))
    assert {status for status, _ in answers} == {200}
    assert "fallback" not in {reason for _, reason in answers}
    sessions = client.app.state.service.sessions
    assert all(sessions.get(f"c{i}") is not None for i in range(7))


def _short_prompts(manifest: dict[str, Any]) -> None:
    """Every candidate's predicted prompt tokens shrunk a million-fold (the shipped
    SWE-bench bundle predicts agent runs of 10^5 tokens and more)."""
    for component in manifest["cost_model"]["components"]:
        if component["name"] == "input_tokens":
            component["smearing"] *= 1e-6


def test_a_session_request_is_priced_at_its_measured_prompt_at_least(
    bundle_dir, copy_bundle, tmp_path
):
    """The routing text is the last user turn; in a session the whole conversation is
    measured (characters / 4), and no candidate's prompt is priced below it."""
    bundle = copy_bundle(bundle_dir, tmp_path / "short", _short_prompts)
    history = "def f(x):\n    return x + 1\n" * 1000
    messages = [
        {"role": "user", "content": history},
        {"role": "assistant", "content": "Done."},
        {"role": "user", "content": "And now?"},
    ]
    settings = Settings(bundle=str(bundle), time_budget_ms=RELAXED_BUDGET_MS)
    with TestClient(create_app(settings)) as short:
        plain = _route(short, messages=messages, prompt=None)
        body = _route(short, messages=messages, prompt=None, session_id="measured")
        manifest = short.app.state.service.bundle.manifest
    measured = body["cache_assumed"]["request_tokens"]
    assert measured == pytest.approx((len(history) + len("Done.") + len("And now?")) / 4)
    for k, model in enumerate(_costs(body)):
        input_price = _components(manifest, k)["input_tokens"]["price"]
        added = _costs(body)[model] - _costs(plain)[model]
        assert added == pytest.approx(measured * input_price, rel=0.01)  # minus the tiny prediction


# ------------------------------------------------------- outcome-router route


def _route_lines(bundle: Path, tmp_path: Path, lines: list[dict]) -> list[dict]:
    source = tmp_path / "prompts.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "decisions.jsonl"
    route_file(bundle, source, out, value_usd=0.0, cache_rules=CacheRules(min_tokens=0))
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_the_route_command_routes_session_lines_in_order(cached_bundle, tmp_path):
    lines = [
        {"prompt_id": 1, "prompt": PROMPT, "session_id": "s", "timestamp": "2026-12-02T16:00Z"},
        {"prompt_id": 2, "prompt": PROMPT, "session_id": "s", "timestamp": "2026-12-02T16:01Z"},
        {"prompt_id": 3, "prompt": PROMPT},
        {"prompt_id": 4, "prompt": PROMPT, "session_id": "s", "timestamp": "2026-12-02T17:00Z"},
    ]
    first, second, alone, late = _route_lines(cached_bundle, tmp_path, lines)
    assert [d["prompt_id"] for d in (first, second, alone, late)] == [1, 2, 3, 4]
    assert first["cache_assumed"]["reason"] == "no earlier decision of this session"
    assert second["cache_assumed"]["model"] == first["model"]
    assert second["cache_assumed"]["age_s"] == pytest.approx(60.0)
    assert "cache_assumed" not in alone
    assert late["cache_assumed"]["age_s"] == pytest.approx(3540.0)
    assert "expired" in late["cache_assumed"]["reason"]


def test_the_route_command_refuses_a_bad_timestamp(cached_bundle, tmp_path):
    lines = [{"prompt_id": 1, "prompt": PROMPT, "session_id": "s", "timestamp": "noon"}]
    with pytest.raises(ValueError, match=r"prompts.jsonl:1: `timestamp` must be an ISO 8601"):
        _route_lines(cached_bundle, tmp_path, lines)
