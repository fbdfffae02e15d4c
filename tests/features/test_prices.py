"""Tests of the LiteLLM-format price catalog and the token-cost convention."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from features.prices import ModelPrice, PriceCatalog

DEMO_MODELS = (
    "openai/gpt-oss-20b",
    "openai/gpt-oss-120b",
    "MiniMaxAI/MiniMax-M2",
    "Qwen/Qwen3-Coder-30B-A3B-Instruct",
    "Qwen/Qwen3-Coder-480B-A35B-Instruct",
)


@pytest.fixture(scope="module")
def default() -> PriceCatalog:
    return PriceCatalog.load()


@pytest.fixture()
def litellm_shaped(tmp_path: Path) -> Path:
    """A small file shaped like LiteLLM's: sample_spec, unpriced entries, odd values."""
    entries = {
        "sample_spec": {
            "input_cost_per_token": 0.0,
            "output_cost_per_token": 0.0,
            "litellm_provider": "one of https://docs.litellm.ai/docs/providers",
            "max_tokens": "LEGACY parameter.",
        },
        "1024-x-1024/dall-e-2": {
            "input_cost_per_pixel": 1.9e-08,
            "litellm_provider": "openai",
            "mode": "image_generation",
        },
        "aiml/flux-pro": {"output_cost_per_image": 0.065, "mode": "image_generation"},
        "together_ai/Qwen/Qwen2.5-7B-Instruct-Turbo": {"litellm_provider": "together_ai"},
        "broken/negative": {"input_cost_per_token": -1e-06, "output_cost_per_token": 1e-06},
        "broken/string": {"input_cost_per_token": "1e-06", "output_cost_per_token": 1e-06},
        "not-an-object": 3,
        "deepinfra/openai/gpt-oss-20b": {
            "input_cost_per_token": 4e-08,
            "output_cost_per_token": 1.5e-07,
            "litellm_provider": "deepinfra",
            "mode": "chat",
            "supports_tool_choice": True,
        },
        "together_ai/openai/gpt-oss-20b": {
            "input_cost_per_token": 5e-08,
            "output_cost_per_token": 2e-07,
            "litellm_provider": "together_ai",
        },
        "claude-haiku-4-5": {
            "cache_creation_input_token_cost": 1.25e-06,
            "cache_creation_input_token_cost_above_1hr": 2e-06,
            "cache_read_input_token_cost": 1e-07,
            "input_cost_per_token": 1e-06,
            "output_cost_per_token": 5e-06,
            "litellm_provider": "anthropic",
        },
        "text-moderation-latest": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0},
    }
    path = tmp_path / "model_prices_and_context_window.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    return path


def test_default_catalog_prices_every_demo_model(default: PriceCatalog) -> None:
    for model in DEMO_MODELS:
        assert model in default
        price = default.get(model)
        assert price is not None and price.input_cost_per_token > 0
        assert price.output_cost_per_token > 0


def test_cost_of_one_million_input_and_ten_thousand_output_tokens(
    default: PriceCatalog,
) -> None:
    # openai/gpt-oss-20b: 7e-08 $/input token, 3e-07 $/output token (Bedrock, via LiteLLM).
    # 1_000_000 * 7e-08 = 0.07 ; 10_000 * 3e-07 = 0.003
    assert default.cost_usd("openai/gpt-oss-20b", 1_000_000, 10_000) == pytest.approx(0.073)
    # Qwen3-Coder-480B: 2.2e-07 and 1.8e-06 -> 0.22 + 0.018
    assert default.cost_usd(
        "Qwen/Qwen3-Coder-480B-A35B-Instruct", 1_000_000, 10_000
    ) == pytest.approx(0.238)
    # gpt-4o: 2.5e-06 and 1e-05 -> 2.5 + 0.1
    assert default.cost_usd("gpt-4o", 1_000_000, 10_000) == pytest.approx(2.6)


def test_default_catalog_entries_name_their_litellm_source() -> None:
    from importlib import resources

    raw = json.loads(
        resources.files("features").joinpath("data", "default_prices.json").read_text("utf-8")
    )
    priced = {k: v for k, v in raw.items() if "input_cost_per_token" in v}
    assert set(DEMO_MODELS) <= set(priced)
    for entry in priced.values():
        assert entry["source"] and entry["litellm_provider"]


def test_cache_accounting_splits_input_tokens() -> None:
    # claude-sonnet-4-5 prices: input 3e-06, read 3e-07, write 3.75e-06, output 1.5e-05.
    price = ModelPrice(3e-06, 1.5e-05, 3e-07, 3.75e-06)
    # 10_000 prompt tokens of which 6_000 read from cache and 1_000 written to it.
    got = price.cost_usd(10_000, 500, cached_input_tokens=6_000, cache_write_tokens=1_000)
    expected = 3_000 * 3e-06 + 6_000 * 3e-07 + 1_000 * 3.75e-06 + 500 * 1.5e-05
    assert got == pytest.approx(expected)
    assert got == pytest.approx(0.02205)


def test_missing_cache_prices_fall_back_to_the_input_price() -> None:
    price = ModelPrice(7e-08, 3e-07)
    with_cache = price.cost_usd(1_000, 10, cached_input_tokens=400, cache_write_tokens=100)
    assert with_cache == pytest.approx(price.cost_usd(1_000, 10))


def test_unknown_model_costs_none(default: PriceCatalog) -> None:
    assert default.get("no-such/model-7b") is None
    assert "no-such/model-7b" not in default
    assert default.cost_usd("no-such/model-7b", 10, 10) is None
    assert default.get("") is None


def test_lookup_is_case_insensitive_and_strips_provider_prefixes(
    default: PriceCatalog,
) -> None:
    exact = default.get("openai/gpt-oss-20b")
    assert default.get("OpenAI/GPT-OSS-20B") == exact
    assert default.get("openrouter/openai/gpt-oss-20b") == exact
    assert default.get("gpt-oss-20b") == exact
    assert default.get("hosted_vllm/minimaxai/minimax-m2") == default.get("MiniMaxAI/MiniMax-M2")
    assert default.resolve("bedrock/Qwen3-Coder-30B-A3B-Instruct") == (
        "Qwen/Qwen3-Coder-30B-A3B-Instruct"
    )
    # gpt-oss-20b must not match gpt-oss-120b or the other way round.
    assert default.get("gpt-oss-120b") != exact


def test_litellm_shaped_file_loads_and_skips_unpriced_entries(litellm_shaped: Path) -> None:
    catalog = PriceCatalog.load(litellm_shaped)
    assert "sample_spec" not in catalog.models
    assert set(catalog.models) == {
        "deepinfra/openai/gpt-oss-20b",
        "together_ai/openai/gpt-oss-20b",
        "claude-haiku-4-5",
        "text-moderation-latest",
    }
    assert set(catalog.skipped) == {
        "1024-x-1024/dall-e-2",
        "aiml/flux-pro",
        "together_ai/Qwen/Qwen2.5-7B-Instruct-Turbo",
        "broken/negative",
        "broken/string",
        "not-an-object",
    }
    assert "input_cost_per_token" in catalog.skipped["aiml/flux-pro"]
    haiku = catalog.get("claude-haiku-4-5")
    assert haiku == ModelPrice(1e-06, 5e-06, 1e-07, 1.25e-06)
    assert catalog.cost_usd("text-moderation-latest", 100, 0) == 0.0


def test_ambiguous_short_name_resolves_to_nothing(litellm_shaped: Path) -> None:
    catalog = PriceCatalog.load(litellm_shaped)
    # Two providers sell gpt-oss-20b at different prices: no guessing between them.
    assert catalog.get("gpt-oss-20b") is None
    assert catalog.get("openai/gpt-oss-20b") is None
    assert catalog.get("deepinfra/openai/gpt-oss-20b").input_cost_per_token == 4e-08
    assert catalog.get("openrouter/together_ai/openai/gpt-oss-20b").input_cost_per_token == 5e-08


def test_round_trip_through_the_manifest_dict() -> None:
    price = ModelPrice(3e-06, 1.5e-05, 3e-07, 3.75e-06)
    assert ModelPrice.from_dict(price.to_dict()) == price
    no_cache = ModelPrice(7e-08, 3e-07)
    assert no_cache.to_dict() == {"input_cost_per_token": 7e-08, "output_cost_per_token": 3e-07}
    assert ModelPrice.from_dict(no_cache.to_dict()) == no_cache


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_tokens": -1, "output_tokens": 0}, "input_tokens must be"),
        ({"input_tokens": 10, "output_tokens": -5}, "output_tokens must be"),
        ({"input_tokens": 10, "output_tokens": 1, "cached_input_tokens": -1}, "cached_input"),
        ({"input_tokens": math.nan, "output_tokens": 1}, "finite token count"),
        (
            {
                "input_tokens": 10,
                "output_tokens": 1,
                "cached_input_tokens": 8,
                "cache_write_tokens": 5,
            },
            "must be <= input_tokens",
        ),
    ],
)
def test_bad_token_counts_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelPrice(1e-06, 2e-06).cost_usd(**kwargs)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"output_cost_per_token": 1e-06}, "needs input_cost_per_token"),
        ({"input_cost_per_token": -1.0, "output_cost_per_token": 0.0}, ">= 0"),
        ({"input_cost_per_token": True, "output_cost_per_token": 0.0}, "must be a number"),
        ({"input_cost_per_token": 1e-6, "output_cost_per_token": math.inf}, "finite"),
    ],
)
def test_bad_prices_raise(entry: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelPrice.from_dict(entry)


def test_not_an_object_catalog_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError, match="JSON object"):
        PriceCatalog.load(path)
