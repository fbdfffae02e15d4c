"""Tests of the LiteLLM-format price catalog and the token-cost convention."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from features.prices import LongContextTier, ModelPrice, PriceCatalog

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
    assert haiku == ModelPrice(
        1e-06, 5e-06, 1e-07, 1.25e-06, cache_creation_input_token_cost_above_1hr=2e-06
    )
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


# ---------------------------------------------------------------------------------------
# Worked bills: each provider's price shape, the arithmetic written out by hand.


def test_anthropic_bill_prices_reads_and_both_write_lifetimes(default: PriceCatalog) -> None:
    # claude-sonnet-4-5 (LiteLLM, litellm_provider anthropic): input 3e-06; cache read
    # 3e-07 (0.1x); 5-minute write 3.75e-06 (1.25x); 1-hour write 6e-06 (2x); output 1.5e-05.
    sonnet = default.get("claude-sonnet-4-5")
    assert sonnet.cache_read_input_token_cost == pytest.approx(0.1 * 3e-06)
    assert sonnet.cache_creation_input_token_cost == pytest.approx(1.25 * 3e-06)
    assert sonnet.cache_creation_input_token_cost_above_1hr == pytest.approx(2 * 3e-06)
    # 100,000 prompt tokens (Anthropic's input_tokens 20,000 + cache_read 60,000 +
    # cache_creation 20,000, of which ephemeral_1h 5,000), 2,000 output tokens.
    got = default.cost_usd(
        "claude-sonnet-4-5", 100_000, 2_000, 60_000, 20_000, cache_write_1h_tokens=5_000
    )
    uncached = 20_000 * 3e-06  # 0.06
    read = 60_000 * 3e-07  # 0.018
    write_5m = 15_000 * 3.75e-06  # 0.05625
    write_1h = 5_000 * 6e-06  # 0.03
    output = 2_000 * 1.5e-05  # 0.03
    assert got == pytest.approx(uncached + read + write_5m + write_1h + output)
    assert got == pytest.approx(0.19425)
    # All 20,000 writes for 5 minutes: 5,000 * (6e-06 - 3.75e-06) = 0.01125 less.
    five_minutes = default.cost_usd("claude-sonnet-4-5", 100_000, 2_000, 60_000, 20_000)
    assert got - five_minutes == pytest.approx(0.01125)


def test_a_one_hour_write_without_its_own_price_costs_the_five_minute_price() -> None:
    # claude-3-5-haiku (Bedrock's entry in LiteLLM) lists no 1-hour write price.
    haiku = ModelPrice(8e-07, 4e-06, 8e-08, 1e-06)
    assert haiku.cost_usd(1_000, 0, 0, 1_000, cache_write_1h_tokens=1_000) == pytest.approx(
        1_000 * 1e-06
    )


def test_openai_bill_discounts_cached_reads_and_counts_reasoning_inside_output(
    default: PriceCatalog,
) -> None:
    # gpt-5 (LiteLLM, openai): input 1.25e-06, cache read 1.25e-07 (automatic caching,
    # no write premium: no cache_creation_input_token_cost), output 1e-05, and no
    # reasoning price of its own: reasoning tokens are output tokens.
    gpt5 = default.get("gpt-5")
    assert gpt5.cache_creation_input_token_cost is None
    assert gpt5.output_cost_per_reasoning_token is None
    # usage: prompt_tokens 20,000 (prompt_tokens_details.cached_tokens 15,000),
    # completion_tokens 3,000 (completion_tokens_details.reasoning_tokens 2,500).
    got = default.cost_usd("gpt-5", 20_000, 3_000, 15_000, reasoning_tokens=2_500)
    uncached = 5_000 * 1.25e-06  # 0.00625
    read = 15_000 * 1.25e-07  # 0.001875
    output = 3_000 * 1e-05  # 0.03: the 2,500 reasoning tokens are inside the 3,000
    assert got == pytest.approx(uncached + read + output)
    assert got == pytest.approx(0.038125)
    # Not billed on top of completion tokens (that would add 2,500 * 1e-05 = 0.025).
    assert got == pytest.approx(default.cost_usd("gpt-5", 20_000, 3_000, 15_000))


def test_gemini_bill_switches_every_rate_above_200k_prompt_tokens(default: PriceCatalog) -> None:
    # gemini-2.5-pro (LiteLLM, gemini): up to 200k prompt tokens input 1.25e-06, cache
    # read 1.25e-07, output 1e-05; above 200k input 2.5e-06, cache read 2.5e-07, output
    # 1.5e-05, for every token of the call. Thinking tokens are billed as output.
    pro = default.get("gemini-2.5-pro")
    assert [t.above_input_tokens for t in pro.long_context_tiers] == [200_000]
    # 150,000 prompt tokens (100,000 cached), 4,000 output of which 1,000 thinking.
    short = default.cost_usd("gemini-2.5-pro", 150_000, 4_000, 100_000, reasoning_tokens=1_000)
    assert short == pytest.approx(50_000 * 1.25e-06 + 100_000 * 1.25e-07 + 4_000 * 1e-05)
    assert short == pytest.approx(0.0625 + 0.0125 + 0.04)
    # 250,000 prompt tokens (100,000 cached), the same output: the whole call at the tier.
    long = default.cost_usd("gemini-2.5-pro", 250_000, 4_000, 100_000, reasoning_tokens=1_000)
    assert long == pytest.approx(150_000 * 2.5e-06 + 100_000 * 2.5e-07 + 4_000 * 1.5e-05)
    assert long == pytest.approx(0.375 + 0.025 + 0.06)
    # The threshold is strict, as LiteLLM's: exactly 200,000 prompt tokens is the base.
    at = default.cost_usd("gemini-2.5-pro", 200_000, 0)
    assert at == pytest.approx(200_000 * 1.25e-06)


def test_gemini_flash_prices_thinking_at_its_reasoning_price(default: PriceCatalog) -> None:
    # gemini-2.5-flash (LiteLLM, vertex_ai): output_cost_per_reasoning_token 2.5e-06,
    # the same as output_cost_per_token; cache read 3e-08, input 3e-07.
    flash = default.get("gemini-2.5-flash")
    assert flash.output_cost_per_reasoning_token == 2.5e-06
    got = default.cost_usd("gemini-2.5-flash", 30_000, 2_000, 10_000, reasoning_tokens=1_500)
    assert got == pytest.approx(20_000 * 3e-07 + 10_000 * 3e-08 + 500 * 2.5e-06 + 1_500 * 2.5e-06)
    assert got == pytest.approx(0.0113)


def test_reasoning_priced_apart_when_the_catalog_says_so() -> None:
    # perplexity/sonar-deep-research (LiteLLM): output 8e-06, reasoning 3e-06, input 2e-06.
    entry = {
        "input_cost_per_token": 2e-06,
        "output_cost_per_token": 8e-06,
        "output_cost_per_reasoning_token": 3e-06,
        "litellm_provider": "perplexity",
    }
    price = ModelPrice.from_dict(entry)
    got = price.cost_usd(1_000, 5_000, reasoning_tokens=4_000)
    assert got == pytest.approx(1_000 * 2e-06 + 1_000 * 8e-06 + 4_000 * 3e-06)
    assert got == pytest.approx(0.022)


def test_long_context_tier_prices_cache_writes_and_keeps_unlisted_base_rates() -> None:
    # anthropic.claude-sonnet-4-20250514-v1:0 (LiteLLM, bedrock_converse): above 200k
    # input 6e-06, output 2.25e-05, 5-minute write 7.5e-06, read 6e-07.
    entry = {
        "input_cost_per_token": 3e-06,
        "output_cost_per_token": 1.5e-05,
        "cache_read_input_token_cost": 3e-07,
        "cache_creation_input_token_cost": 3.75e-06,
        "input_cost_per_token_above_200k_tokens": 6e-06,
        "output_cost_per_token_above_200k_tokens": 2.25e-05,
        "cache_creation_input_token_cost_above_200k_tokens": 7.5e-06,
        "cache_read_input_token_cost_above_200k_tokens": 6e-07,
        "input_cost_per_token_above_200k_tokens_priority": 1.0,  # a service tier: ignored
    }
    price = ModelPrice.from_dict(entry)
    assert price.long_context_tiers == (LongContextTier(200_000, 6e-06, 2.25e-05, 6e-07, 7.5e-06),)
    got = price.cost_usd(300_000, 1_000, 250_000, 40_000)
    assert got == pytest.approx(
        10_000 * 6e-06 + 250_000 * 6e-07 + 40_000 * 7.5e-06 + 1_000 * 2.25e-05
    )
    assert got == pytest.approx(0.06 + 0.15 + 0.3 + 0.0225)
    # A tier listing only the input rate keeps the base output and cache rates.
    partial = ModelPrice.from_dict(
        {
            "input_cost_per_token": 1e-06,
            "output_cost_per_token": 2e-06,
            "input_cost_per_token_above_128k_tokens": 4e-06,
        }
    )
    assert partial.cost_usd(200_000, 10) == pytest.approx(200_000 * 4e-06 + 10 * 2e-06)
    # The highest threshold crossed wins.
    two = ModelPrice(
        1e-06,
        1e-06,
        long_context_tiers=(LongContextTier(272_000, 3e-06), LongContextTier(128_000, 2e-06)),
    )
    assert two.rates(130_000).input == 2e-06
    assert two.rates(300_000).input == 3e-06
    assert two.rates(100).input == 1e-06


def test_round_trip_keeps_the_new_fields() -> None:
    entry = {
        "input_cost_per_token": 3e-06,
        "output_cost_per_token": 1.5e-05,
        "cache_read_input_token_cost": 3e-07,
        "cache_creation_input_token_cost": 3.75e-06,
        "cache_creation_input_token_cost_above_1hr": 6e-06,
        "output_cost_per_reasoning_token": 1.5e-05,
        "input_cost_per_token_above_200k_tokens": 6e-06,
        "cache_creation_input_token_cost_above_1hr_above_200k_tokens": 1.2e-05,
    }
    price = ModelPrice.from_dict(entry)
    assert price.to_dict() == entry
    assert ModelPrice.from_dict(price.to_dict()) == price
    assert price.long_context_tiers[0].cache_creation_input_token_cost_above_1hr == 1.2e-05


# ---------------------------------------------------------------------------------------
# LiteLLM's cost bugs named in issue 11: the same usage, priced right.


def test_litellm_9812_cache_writes_are_charged_once() -> None:
    # BerriAI/litellm#9812: Anthropic usage {"input_tokens": 3,
    # "cache_creation_input_tokens": 12304, "cache_read_input_tokens": 0,
    # "output_tokens": 550} on claude-3-7-sonnet (input 3e-06, write 3.75e-06, output
    # 1.5e-05). LiteLLM said $0.091311; Anthropic's console billed $0.05439.
    sonnet_37 = ModelPrice(3e-06, 1.5e-05, 3e-07, 3.75e-06)
    prompt_tokens = 3 + 12_304  # our input_tokens: every prompt token, writes included
    got = sonnet_37.cost_usd(prompt_tokens, 550, cache_write_tokens=12_304)
    assert got == pytest.approx(3 * 3e-06 + 12_304 * 3.75e-06 + 550 * 1.5e-05)
    assert got == pytest.approx(0.054399)
    litellm_said = 0.091311  # the same plus the writes again at the input price
    assert litellm_said == pytest.approx(got + 12_304 * 3e-06)
    assert got != pytest.approx(litellm_said)


def test_litellm_11789_streamed_cache_reads_are_priced_at_the_read_rate(
    default: PriceCatalog,
) -> None:
    # BerriAI/litellm#11789: a streamed claude-3-5-haiku call, usage_object prompt_tokens
    # 2459, cache_read_input_tokens 2455 (prompt_tokens_details.cached_tokens 0),
    # completion_tokens 23. LiteLLM said $0.002059 (every prompt token at 8e-07); the
    # reporter's true cost is $0.000292. (How the importer finds the 2455 reads is
    # tests/features/test_litellm_spend_import.py.)
    got = default.cost_usd("claude-3-5-haiku", 2_459, 23, cached_input_tokens=2_455)
    assert got == pytest.approx(4 * 8e-07 + 2_455 * 8e-08 + 23 * 4e-06)
    assert got == pytest.approx(0.0002916)
    assert default.cost_usd("claude-3-5-haiku", 2_459, 23) == pytest.approx(0.0020592)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {
                "input_tokens": 10,
                "output_tokens": 1,
                "cache_write_tokens": 2,
                "cache_write_1h_tokens": 3,
            },
            "cache_write_1h_tokens must be <= cache_write_tokens",
        ),
        (
            {"input_tokens": 10, "output_tokens": 1, "reasoning_tokens": 2},
            "reasoning_tokens must be <= output_tokens",
        ),
        ({"input_tokens": 10, "output_tokens": 1, "reasoning_tokens": -1}, "reasoning_tokens"),
        (
            {"input_tokens": 10, "output_tokens": 1, "cache_write_1h_tokens": math.inf},
            "cache_write_1h_tokens must be a finite",
        ),
    ],
)
def test_bad_new_token_counts_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelPrice(1e-06, 2e-06).cost_usd(**kwargs)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {
                "input_cost_per_token": 1e-6,
                "output_cost_per_token": 1e-6,
                "cache_creation_input_token_cost_above_1hr": -1e-6,
            },
            "cache_creation_input_token_cost_above_1hr must be a finite",
        ),
        (
            {
                "input_cost_per_token": 1e-6,
                "output_cost_per_token": 1e-6,
                "input_cost_per_token_above_200k_tokens": "2e-6",
            },
            "input_cost_per_token_above_200k_tokens must be a number",
        ),
    ],
)
def test_bad_new_prices_raise(entry: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelPrice.from_dict(entry)


def test_same_arithmetic_as_litellm_generic_cost_per_token(monkeypatch) -> None:
    """Our bills equal LiteLLM's own `generic_cost_per_token` on well-formed usage."""
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import
    pytest.importorskip("litellm")
    from importlib import resources

    from litellm.litellm_core_utils.llm_cost_calc.utils import generic_cost_per_token
    from litellm.types.utils import (
        CacheCreationTokenDetails,
        CompletionTokensDetailsWrapper,
        PromptTokensDetailsWrapper,
        Usage,
    )

    raw = json.loads(
        resources.files("features").joinpath("data", "default_prices.json").read_text("utf-8")
    )
    ours = PriceCatalog.from_entries(raw)
    cases = [  # model, provider, prompt, completion, cached, written, written 1h, reasoning
        ("claude-sonnet-4-5", "anthropic", 10_000, 500, 6_000, 1_000, 400, 0),
        ("claude-opus-4-5", "anthropic", 12_307, 550, 0, 12_304, 12_304, 0),
        ("gpt-5", "openai", 20_000, 3_000, 15_000, 0, 0, 2_500),
        ("o4-mini", "openai", 5_000, 3_000, 1_024, 0, 0, 2_000),
        ("gemini-2.5-pro", "gemini", 250_000, 4_000, 100_000, 0, 0, 1_000),
        ("gemini-2.5-flash", "vertex_ai", 30_000, 2_000, 10_000, 0, 0, 1_500),
    ]
    for model, provider, prompt, completion, cached, written, written_1h, reasoning in cases:
        usage = Usage(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=prompt + completion,
            prompt_tokens_details=PromptTokensDetailsWrapper(
                cached_tokens=cached,
                cache_creation_tokens=written,
                cache_creation_token_details=CacheCreationTokenDetails(
                    ephemeral_5m_input_tokens=written - written_1h,
                    ephemeral_1h_input_tokens=written_1h,
                )
                if written
                else None,
            ),
            completion_tokens_details=CompletionTokensDetailsWrapper(reasoning_tokens=reasoning)
            if reasoning
            else None,
        )
        info = {"cache_creation_input_token_cost": None, **raw[model]}
        prompt_usd, completion_usd = generic_cost_per_token(
            model=model, usage=usage, custom_llm_provider=provider, model_info=info
        )
        mine = ours.cost_usd(
            model,
            prompt,
            completion,
            cached,
            written,
            cache_write_1h_tokens=written_1h,
            reasoning_tokens=reasoning,
        )
        assert mine == pytest.approx(prompt_usd + completion_usd, rel=1e-12), model
