"""Model prices in LiteLLM's catalog format, and the cost of one call.

The catalog is LiteLLM's ``model_prices_and_context_window.json``: a JSON object from
model name to an entry. These fields of an entry are read, all in USD per token, with
LiteLLM's names and meanings (``litellm/litellm_core_utils/llm_cost_calc/utils.py``,
``generic_cost_per_token`` and ``_get_token_base_cost``):

- ``input_cost_per_token`` and ``output_cost_per_token`` (required);
- ``cache_read_input_token_cost``: a prompt token read from the provider's cache;
- ``cache_creation_input_token_cost``: a prompt token written to the cache with the
  default (Anthropic: 5-minute) lifetime;
- ``cache_creation_input_token_cost_above_1hr``: a prompt token written with a 1-hour
  lifetime (Anthropic's ``ephemeral_1h_input_tokens``);
- ``output_cost_per_reasoning_token``: a reasoning (thinking) token, where the catalog
  prices it apart from the other output tokens;
- long-context tiers: any of the fields above with ``_above_<N>k_tokens`` appended
  (``input_cost_per_token_above_200k_tokens``, ``cache_read_input_token_cost_above_200k_tokens``,
  ``cache_creation_input_token_cost_above_1hr_above_200k_tokens``...), see below.

Every other field (batch, flex and priority rates, images, audio, search) is ignored.
LiteLLM's whole file loads as-is: its ``sample_spec`` key is skipped, and so is every
entry without both token prices (image, audio, search and rerank models priced per
image, second or query). Skipped entries are kept in `PriceCatalog.skipped` with the
reason, so a caller can say what was left out instead of pricing it at zero.

Token convention (OpenAI's and LiteLLM's usage convention)
----------------------------------------------------------
``input_tokens`` counts *all* prompt tokens, including the ones read from the prompt
cache (``cached_input_tokens``) and the ones written to it (``cache_write_tokens``, of
which ``cache_write_1h_tokens`` were written with a 1-hour lifetime).
``output_tokens`` counts all completion tokens, including ``reasoning_tokens``, as
OpenAI counts them. Anthropic's own usage reports ``input_tokens`` *without* the cache
reads and writes: add them up before calling (LiteLLM's ``prompt_tokens`` already does).
The cost of a call is therefore::

    uncached  = input_tokens - cached_input_tokens - cache_write_tokens
    write_5m  = cache_write_tokens - cache_write_1h_tokens
    visible   = output_tokens - reasoning_tokens
    cost = uncached              * input_cost_per_token
         + cached_input_tokens   * cache_read_input_token_cost               (else input price)
         + write_5m              * cache_creation_input_token_cost           (else input price)
         + cache_write_1h_tokens * cache_creation_input_token_cost_above_1hr (else 5-minute price)
         + visible               * output_cost_per_token
         + reasoning_tokens      * output_cost_per_reasoning_token           (else output price)

A model without a cache price is charged its input price for those tokens: it is the
price the provider charges when it offers no discount, and it never under-states cost.

Long-context tiers follow LiteLLM: when ``input_tokens`` is *above* N (strictly; the
highest such N of the entry wins), every token of the call is priced at that tier's
rates, and a rate the tier does not list keeps the entry's base rate (Gemini 2.5 Pro
and Claude Sonnet 4 on Bedrock charge more for the whole call above 200k prompt tokens).

What this does not repeat of LiteLLM's cost bugs (tests/features/test_prices.py
reproduces each scenario): cache writes are a part of ``input_tokens`` and are charged
once, at the write price (BerriAI/litellm#9812 charged them at the input price and
again at the write price); cache reads are charged at the read price whatever the
source's cache-hit flag says (#11364) and whichever usage field reported them
(#11789: a streamed Anthropic response put them in ``cache_read_input_tokens`` with
``prompt_tokens_details.cached_tokens`` = 0; see `features.importers.litellm_spend`).

This module is imported by serving at run time, so it uses the standard library only.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

INPUT_FIELD = "input_cost_per_token"
OUTPUT_FIELD = "output_cost_per_token"
CACHE_READ_FIELD = "cache_read_input_token_cost"
CACHE_WRITE_FIELD = "cache_creation_input_token_cost"
CACHE_WRITE_1H_FIELD = "cache_creation_input_token_cost_above_1hr"
REASONING_FIELD = "output_cost_per_reasoning_token"
#: The fields of `ModelPrice.cost_usd`'s first releases (required first).
PRICE_FIELDS = (INPUT_FIELD, OUTPUT_FIELD, CACHE_READ_FIELD, CACHE_WRITE_FIELD)
#: Every per-token rate read from an entry, and from each long-context tier.
RATE_FIELDS = (*PRICE_FIELDS, CACHE_WRITE_1H_FIELD, REASONING_FIELD)
OPTIONAL_FIELDS = RATE_FIELDS[2:]
#: ``<rate field>_above_<N>[k]_tokens``: the rate for calls whose prompt exceeds N tokens.
TIER_KEY = re.compile(
    r"^(" + "|".join(sorted(RATE_FIELDS, key=len, reverse=True)) + r")_above_(\d+)(k?)_tokens$"
)

#: Keys of LiteLLM's file that describe the format rather than a model.
NON_MODEL_KEYS = frozenset({"sample_spec"})

DEFAULT_CATALOG = "default_prices.json"


def _price(value: Any, field: str) -> float:
    """Check that ``value`` is a usable USD-per-token price and return it as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{field} must be a number of USD per token, got {value!r}.")
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{field} must be a finite price >= 0 USD per token, got {value!r}.")
    return value


def _count(value: float, name: str) -> float:
    """Check that a token count is a finite number >= 0 (NaN fails too)."""
    if isinstance(value, bool) or not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite token count >= 0, got {value!r}.")
    return value


def _tier_suffix(above_input_tokens: int) -> str:
    """LiteLLM's spelling of a threshold: ``_above_200k_tokens``, or ``_above_N_tokens``."""
    if above_input_tokens % 1000 == 0:
        return f"_above_{above_input_tokens // 1000}k_tokens"
    return f"_above_{above_input_tokens}_tokens"


@dataclass(frozen=True)
class LongContextTier:
    """The rates of a model for calls whose prompt exceeds ``above_input_tokens``.

    Parameters
    ----------
    above_input_tokens : int
        The tier applies when a call's ``input_tokens`` (every prompt token, cached ones
        included) is strictly greater than this (LiteLLM compares ``prompt_tokens``).
    input_cost_per_token, output_cost_per_token, cache_read_input_token_cost, \
cache_creation_input_token_cost, cache_creation_input_token_cost_above_1hr, \
output_cost_per_reasoning_token : float or None, default=None
        The tier's rates; None keeps the model's base rate for that kind of token.
    """

    above_input_tokens: int
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    cache_read_input_token_cost: float | None = None
    cache_creation_input_token_cost: float | None = None
    cache_creation_input_token_cost_above_1hr: float | None = None
    output_cost_per_reasoning_token: float | None = None

    def __post_init__(self) -> None:
        threshold = self.above_input_tokens
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
            raise ValueError(
                f"above_input_tokens must be a whole number of tokens >= 0, got {threshold!r}."
            )
        for name in RATE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _price(value, name + _tier_suffix(threshold)))

    def to_dict(self) -> dict[str, float]:
        """LiteLLM-named fields (``input_cost_per_token_above_200k_tokens``...)."""
        suffix = _tier_suffix(self.above_input_tokens)
        return {f + suffix: getattr(self, f) for f in RATE_FIELDS if getattr(self, f) is not None}


@dataclass(frozen=True)
class TokenRates:
    """The USD-per-token rates that price one call, every fallback resolved.

    `ModelPrice.rates` returns them for a prompt size; `ModelPrice.cost_usd` multiplies
    them out. A cache-aware router can read the same numbers for its expected cost.
    """

    input: float
    output: float
    cache_read: float
    cache_write_5m: float
    cache_write_1h: float
    reasoning: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class ModelPrice:
    """The token prices of one model, in USD per token.

    Parameters
    ----------
    input_cost_per_token : float
        Price of an uncached prompt token.
    output_cost_per_token : float
        Price of a completion token (reasoning tokens included unless
        ``output_cost_per_reasoning_token`` prices them apart).
    cache_read_input_token_cost : float or None, default=None
        Price of a prompt token read from the provider's cache; None means the
        provider lists no discount, and cached tokens cost the input price.
    cache_creation_input_token_cost : float or None, default=None
        Price of a prompt token written to the cache with the default lifetime
        (Anthropic: 5 minutes, 1.25x the input price); None means the input price.
    cache_creation_input_token_cost_above_1hr : float or None, default=None
        Price of a prompt token written with a 1-hour lifetime (Anthropic: 2x the input
        price); None means the 5-minute write price.
    output_cost_per_reasoning_token : float or None, default=None
        Price of a reasoning token; None means the output price (OpenAI, Anthropic and
        Gemini bill thinking as output).
    long_context_tiers : tuple of LongContextTier, default=()
        Rates for calls with more prompt tokens than a threshold, lowest first.

    Field names are LiteLLM's, so `to_dict` output is itself a valid catalog entry.

    Examples
    --------
    Claude Sonnet 4.5, 10,000 prompt tokens of which 6,000 read from the cache and
    1,000 written to it for an hour, 500 output tokens:

    >>> sonnet = ModelPrice(3e-06, 1.5e-05, 3e-07, 3.75e-06,
    ...                     cache_creation_input_token_cost_above_1hr=6e-06)
    >>> round(sonnet.cost_usd(10_000, 500, 6_000, 1_000, cache_write_1h_tokens=1_000), 6)
    0.0243
    """

    input_cost_per_token: float
    output_cost_per_token: float
    cache_read_input_token_cost: float | None = None
    cache_creation_input_token_cost: float | None = None
    cache_creation_input_token_cost_above_1hr: float | None = None
    output_cost_per_reasoning_token: float | None = None
    long_context_tiers: tuple[LongContextTier, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in RATE_FIELDS:
            value = getattr(self, name)
            if value is None and name in OPTIONAL_FIELDS:
                continue
            object.__setattr__(self, name, _price(value, name))
        tiers = tuple(self.long_context_tiers)
        if not all(isinstance(t, LongContextTier) for t in tiers):
            raise ValueError("long_context_tiers must be LongContextTier objects.")
        thresholds = [t.above_input_tokens for t in tiers]
        if len(set(thresholds)) != len(thresholds):
            raise ValueError(f"long_context_tiers repeat a threshold: {sorted(thresholds)}.")
        tiers = tuple(sorted(tiers, key=lambda t: t.above_input_tokens))
        object.__setattr__(self, "long_context_tiers", tiers)

    def to_dict(self) -> dict[str, float]:
        """LiteLLM-named fields (optional ones only when known), for a bundle manifest."""
        out = {f: getattr(self, f) for f in RATE_FIELDS if getattr(self, f) is not None}
        for tier in self.long_context_tiers:
            out.update(tier.to_dict())
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelPrice:
        """Read a LiteLLM catalog entry (or `to_dict` output); other fields are ignored.

        Raises
        ------
        ValueError
            If a token price is missing or is not a finite number >= 0.
        """
        missing = [f for f in (INPUT_FIELD, OUTPUT_FIELD) if d.get(f) is None]
        if missing:
            raise ValueError(
                f"A price entry needs {INPUT_FIELD} and {OUTPUT_FIELD}; missing {missing}."
            )
        tiers: dict[int, dict[str, Any]] = {}
        for key, value in d.items():
            match = TIER_KEY.match(key) if isinstance(key, str) else None
            if match is None or value is None:
                continue
            rate, number, thousand = match.groups()
            threshold = int(number) * (1000 if thousand else 1)
            tiers.setdefault(threshold, {})[rate] = value
        return cls(
            **{f: d.get(f) for f in RATE_FIELDS},
            long_context_tiers=tuple(
                LongContextTier(threshold, **rates) for threshold, rates in tiers.items()
            ),
        )

    def tier_for(self, input_tokens: float) -> LongContextTier | None:
        """The long-context tier that prices a call of ``input_tokens``, or None."""
        crossed = [t for t in self.long_context_tiers if input_tokens > t.above_input_tokens]
        return crossed[-1] if crossed else None

    def rates(self, input_tokens: float = 0) -> TokenRates:
        """The rates of a call with ``input_tokens`` prompt tokens, fallbacks resolved.

        A rate the long-context tier leaves out is the base rate; a cache read or
        5-minute write price the entry leaves out is the (tier's) input price, a 1-hour
        write price the 5-minute write price, a reasoning price the output price.
        """
        tier = self.tier_for(input_tokens)

        def pick(name: str) -> float | None:
            value = None if tier is None else getattr(tier, name)
            return getattr(self, name) if value is None else value

        input_rate = pick(INPUT_FIELD)
        output_rate = pick(OUTPUT_FIELD)
        read = pick(CACHE_READ_FIELD)
        write_5m = pick(CACHE_WRITE_FIELD)
        write_5m = input_rate if write_5m is None else write_5m
        write_1h = pick(CACHE_WRITE_1H_FIELD)
        reasoning = pick(REASONING_FIELD)
        return TokenRates(
            input=input_rate,
            output=output_rate,
            cache_read=input_rate if read is None else read,
            cache_write_5m=write_5m,
            cache_write_1h=write_5m if write_1h is None else write_1h,
            reasoning=output_rate if reasoning is None else reasoning,
        )

    def cost_usd(
        self,
        input_tokens: float,
        output_tokens: float,
        cached_input_tokens: float = 0,
        cache_write_tokens: float = 0,
        *,
        cache_write_1h_tokens: float = 0,
        reasoning_tokens: float = 0,
    ) -> float:
        """Cost of one call in USD, under the module's token convention.

        Parameters
        ----------
        input_tokens : float
            All prompt tokens, cache reads and cache writes included.
        output_tokens : float
            All completion tokens, reasoning tokens included.
        cached_input_tokens : float, default=0
            Prompt tokens read from the cache (part of ``input_tokens``).
        cache_write_tokens : float, default=0
            Prompt tokens written to the cache (part of ``input_tokens``), whatever
            their lifetime.
        cache_write_1h_tokens : float, default=0
            The part of ``cache_write_tokens`` written with a 1-hour lifetime; the rest
            was written for 5 minutes.
        reasoning_tokens : float, default=0
            The part of ``output_tokens`` that was reasoning (thinking).

        Raises
        ------
        ValueError
            If a count is negative or not finite, if cache reads plus cache writes
            exceed ``input_tokens`` (they are a part of it, not an addition to it), if
            1-hour writes exceed the cache writes, or reasoning tokens the output tokens.
        """
        _count(input_tokens, "input_tokens")
        _count(output_tokens, "output_tokens")
        _count(cached_input_tokens, "cached_input_tokens")
        _count(cache_write_tokens, "cache_write_tokens")
        _count(cache_write_1h_tokens, "cache_write_1h_tokens")
        _count(reasoning_tokens, "reasoning_tokens")
        if cached_input_tokens + cache_write_tokens > input_tokens:
            raise ValueError(
                "cached_input_tokens + cache_write_tokens must be <= input_tokens, because "
                "input_tokens counts all prompt tokens, cache reads and writes included; got "
                f"{cached_input_tokens} + {cache_write_tokens} > {input_tokens}."
            )
        if cache_write_1h_tokens > cache_write_tokens:
            raise ValueError(
                "cache_write_1h_tokens must be <= cache_write_tokens (the 1-hour writes are a "
                f"part of the cache writes); got {cache_write_1h_tokens} > {cache_write_tokens}."
            )
        if reasoning_tokens > output_tokens:
            raise ValueError(
                "reasoning_tokens must be <= output_tokens (output_tokens counts reasoning "
                f"tokens too, as OpenAI reports them); got {reasoning_tokens} > {output_tokens}."
            )
        r = self.rates(input_tokens)
        uncached = input_tokens - cached_input_tokens - cache_write_tokens
        return (
            uncached * r.input
            + cached_input_tokens * r.cache_read
            + (cache_write_tokens - cache_write_1h_tokens) * r.cache_write_5m
            + cache_write_1h_tokens * r.cache_write_1h
            + (output_tokens - reasoning_tokens) * r.output
            + reasoning_tokens * r.reasoning
        )


def _last_component(name: str) -> str:
    return name.rsplit("/", 1)[-1].lower()


class PriceCatalog:
    """Token prices by model name, read from a LiteLLM-format catalog.

    Parameters
    ----------
    prices : dict of str to ModelPrice
        Priced models, in catalog order (the order breaks case-insensitive ties).
    skipped : dict of str to str, optional
        Catalog keys that were not loaded, with the reason.

    Notes
    -----
    `get` resolves a name in this order, first hit wins:

    1. the exact key;
    2. the key compared case-insensitively;
    3. the name with leading provider prefixes removed one at a time
       (``openrouter/openai/gpt-oss-20b`` -> ``openai/gpt-oss-20b`` -> ``gpt-oss-20b``),
       each tried exactly, then case-insensitively;
    4. the last path component, case-insensitively, against the last path component of
       every key, if exactly one key matches. Several matches (the same model at several
       providers, as in LiteLLM's full file) resolve to nothing rather than to an
       arbitrary provider's price: pass the full key instead.
    """

    def __init__(
        self, prices: dict[str, ModelPrice], skipped: dict[str, str] | None = None
    ) -> None:
        self._prices = dict(prices)
        self.skipped = dict(skipped or {})
        self._by_lower: dict[str, str] = {}
        by_last: dict[str, list[str]] = {}
        for key in self._prices:
            self._by_lower.setdefault(key.lower(), key)
            by_last.setdefault(_last_component(key), []).append(key)
        self._by_last = {last: keys[0] for last, keys in by_last.items() if len(keys) == 1}

    @classmethod
    def load(cls, path: str | Path | None = None) -> PriceCatalog:
        """Read a catalog file; None reads the default catalog shipped with the package.

        Parameters
        ----------
        path : str or Path or None, default=None
            A LiteLLM-format JSON file, for example LiteLLM's own
            ``model_prices_and_context_window.json``.

        Raises
        ------
        ValueError
            If the file is not a JSON object of entries.
        """
        if path is None:
            text = (
                resources.files("features")
                .joinpath("data", DEFAULT_CATALOG)
                .read_text(encoding="utf-8")
            )
            where = f"features/data/{DEFAULT_CATALOG}"
        else:
            text = Path(path).read_text(encoding="utf-8")
            where = str(path)
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"Price catalog {where} is not valid JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise ValueError(
                f"Price catalog {where} must be a JSON object of model name -> entry "
                f"(LiteLLM's format), got {type(raw).__name__}."
            )
        return cls.from_entries(raw)

    @classmethod
    def from_entries(cls, entries: dict[str, Any]) -> PriceCatalog:
        """Build a catalog from already-parsed LiteLLM entries, skipping unpriced ones."""
        prices: dict[str, ModelPrice] = {}
        skipped: dict[str, str] = {}
        for key, entry in entries.items():
            if key in NON_MODEL_KEYS:
                continue
            if not isinstance(entry, dict):
                skipped[key] = "entry is not a JSON object"
                continue
            try:
                prices[key] = ModelPrice.from_dict(entry)
            except (TypeError, ValueError) as exc:
                skipped[key] = str(exc)
        return cls(prices, skipped)

    def resolve(self, model: str) -> str | None:
        """The catalog key that prices ``model``, or None (see the class Notes)."""
        if not isinstance(model, str) or not model:
            return None
        if model in self._prices:
            return model
        parts = model.split("/")
        for start in range(len(parts)):
            name = "/".join(parts[start:])
            if name in self._prices:
                return name
            key = self._by_lower.get(name.lower())
            if key is not None:
                return key
        return self._by_last.get(_last_component(model))

    def get(self, model: str) -> ModelPrice | None:
        """The price of ``model``, or None if the catalog does not know it."""
        key = self.resolve(model)
        return None if key is None else self._prices[key]

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.resolve(model) is not None

    def __len__(self) -> int:
        return len(self._prices)

    @property
    def models(self) -> tuple[str, ...]:
        """The priced catalog keys, in catalog order."""
        return tuple(self._prices)

    def cost_usd(
        self,
        model: str,
        input_tokens: float,
        output_tokens: float,
        cached_input_tokens: float = 0,
        cache_write_tokens: float = 0,
        *,
        cache_write_1h_tokens: float = 0,
        reasoning_tokens: float = 0,
    ) -> float | None:
        """Cost of one call of ``model`` in USD, or None if the model has no price.

        Token counts follow the module's convention; see `ModelPrice.cost_usd`.
        """
        price = self.get(model)
        if price is None:
            return None
        return price.cost_usd(
            input_tokens,
            output_tokens,
            cached_input_tokens,
            cache_write_tokens,
            cache_write_1h_tokens=cache_write_1h_tokens,
            reasoning_tokens=reasoning_tokens,
        )
