"""Model prices in LiteLLM's catalog format, and the cost of one call.

The catalog is LiteLLM's ``model_prices_and_context_window.json``: a JSON object from
model name to an entry. Four fields of an entry are read, all in USD per token:
``input_cost_per_token``, ``output_cost_per_token``, ``cache_read_input_token_cost``
and ``cache_creation_input_token_cost``; every other field is ignored. LiteLLM's whole
file loads as-is: its ``sample_spec`` key is skipped, and so is every entry without
both token prices (image, audio, search and rerank models priced per image, second or
query). Skipped entries are kept in `PriceCatalog.skipped` with the reason, so a caller
can say what was left out instead of pricing it at zero.

Token convention (OpenAI's and LiteLLM's usage convention)
----------------------------------------------------------
``input_tokens`` counts *all* prompt tokens, including the ones read from the prompt
cache (``cached_input_tokens``) and the ones written to it (``cache_write_tokens``).
The cost of a call is therefore::

    uncached = input_tokens - cached_input_tokens - cache_write_tokens
    cost = uncached            * input_cost_per_token
         + cached_input_tokens * cache_read_input_token_cost      (else input price)
         + cache_write_tokens  * cache_creation_input_token_cost  (else input price)
         + output_tokens       * output_cost_per_token

A model without a cache price is charged its input price for those tokens: it is the
price the provider charges when it offers no discount, and it never under-states cost.

This module is imported by serving at run time, so it uses the standard library only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

INPUT_FIELD = "input_cost_per_token"
OUTPUT_FIELD = "output_cost_per_token"
CACHE_READ_FIELD = "cache_read_input_token_cost"
CACHE_WRITE_FIELD = "cache_creation_input_token_cost"
PRICE_FIELDS = (INPUT_FIELD, OUTPUT_FIELD, CACHE_READ_FIELD, CACHE_WRITE_FIELD)

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


@dataclass(frozen=True)
class ModelPrice:
    """The token prices of one model, in USD per token.

    Parameters
    ----------
    input_cost_per_token : float
        Price of an uncached prompt token.
    output_cost_per_token : float
        Price of a completion token (reasoning tokens included, as providers bill them).
    cache_read_input_token_cost : float or None, default=None
        Price of a prompt token read from the provider's cache; None means the
        provider lists no discount, and cached tokens cost the input price.
    cache_creation_input_token_cost : float or None, default=None
        Price of a prompt token written to the cache; None means the input price.

    Field names are LiteLLM's, so `to_dict` output is itself a valid catalog entry.
    """

    input_cost_per_token: float
    output_cost_per_token: float
    cache_read_input_token_cost: float | None = None
    cache_creation_input_token_cost: float | None = None

    def __post_init__(self) -> None:
        for field in PRICE_FIELDS:
            value = getattr(self, field)
            if value is None and field in (CACHE_READ_FIELD, CACHE_WRITE_FIELD):
                continue
            object.__setattr__(self, field, _price(value, field))

    def to_dict(self) -> dict[str, float]:
        """LiteLLM-named fields (cache prices only when known), for a bundle manifest."""
        return {f: getattr(self, f) for f in PRICE_FIELDS if getattr(self, f) is not None}

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
        return cls(**{f: d.get(f) for f in PRICE_FIELDS})

    def cost_usd(
        self,
        input_tokens: float,
        output_tokens: float,
        cached_input_tokens: float = 0,
        cache_write_tokens: float = 0,
    ) -> float:
        """Cost of one call in USD, under the module's token convention.

        Parameters
        ----------
        input_tokens : float
            All prompt tokens, cache reads and cache writes included.
        output_tokens : float
            Completion tokens.
        cached_input_tokens : float, default=0
            Prompt tokens read from the cache (part of ``input_tokens``).
        cache_write_tokens : float, default=0
            Prompt tokens written to the cache (part of ``input_tokens``).

        Raises
        ------
        ValueError
            If a count is negative or not finite, or if cache reads plus cache writes
            exceed ``input_tokens`` (they are a part of it, not an addition to it).
        """
        _count(input_tokens, "input_tokens")
        _count(output_tokens, "output_tokens")
        _count(cached_input_tokens, "cached_input_tokens")
        _count(cache_write_tokens, "cache_write_tokens")
        if cached_input_tokens + cache_write_tokens > input_tokens:
            raise ValueError(
                "cached_input_tokens + cache_write_tokens must be <= input_tokens, because "
                "input_tokens counts all prompt tokens, cache reads and writes included; got "
                f"{cached_input_tokens} + {cache_write_tokens} > {input_tokens}."
            )
        read_price = self.cache_read_input_token_cost
        write_price = self.cache_creation_input_token_cost
        uncached = input_tokens - cached_input_tokens - cache_write_tokens
        return (
            uncached * self.input_cost_per_token
            + cached_input_tokens
            * (self.input_cost_per_token if read_price is None else read_price)
            + cache_write_tokens
            * (self.input_cost_per_token if write_price is None else write_price)
            + output_tokens * self.output_cost_per_token
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
    ) -> float | None:
        """Cost of one call of ``model`` in USD, or None if the model has no price.

        Token counts follow the module's convention; see `ModelPrice.cost_usd`.
        """
        price = self.get(model)
        if price is None:
            return None
        return price.cost_usd(input_tokens, output_tokens, cached_input_tokens, cache_write_tokens)
