"""Token counts of one LiteLLM ``Usage`` object, in the call log's convention.

LiteLLM normalises every provider's usage to OpenAI's shape (``prompt_tokens``,
``completion_tokens``, ``prompt_tokens_details``, ``completion_tokens_details``) and
keeps Anthropic's own fields beside it (``cache_read_input_tokens``,
``cache_creation_input_tokens``). The proxy stores that object in the spend log's
``metadata.usage_object`` (``litellm/proxy/spend_tracking/spend_tracking_utils.py``,
``get_logging_payload``), and a copy of the extra fields in
``metadata.additional_usage_values``. Which field holds a count depends on the provider,
the LiteLLM version and whether the call was streamed, so every place is read:

- cache reads: the largest of ``prompt_tokens_details.cached_tokens``,
  ``cache_read_input_tokens`` (both objects). A streamed Anthropic call logged its reads
  only in ``cache_read_input_tokens`` with ``cached_tokens`` 0 (BerriAI/litellm#11789),
  and LiteLLM then priced them as ordinary input.
- cache writes: the largest of ``prompt_tokens_details.cache_creation_tokens`` /
  ``cache_write_tokens`` and ``cache_creation_input_tokens``; the 1-hour part from
  ``prompt_tokens_details.cache_creation_token_details.ephemeral_1h_input_tokens`` (or
  Anthropic's raw ``cache_creation.ephemeral_1h_input_tokens``), absent when the source
  does not split writes by lifetime (they are then 5-minute writes, Anthropic's default).
- reasoning: ``completion_tokens_details.reasoning_tokens`` (part of ``completion_tokens``).
- prompt tokens: LiteLLM's ``prompt_tokens`` counts every prompt token, cache reads and
  writes included, for Anthropic too (``AnthropicConfig.calculate_usage`` adds them to
  Anthropic's ``input_tokens``). A log where reads plus writes exceed ``prompt_tokens``
  (a source that kept Anthropic's own convention) gets them added back. (Not
  ``prompt_tokens_details.text_tokens``: some providers, xAI among them, report it equal
  to ``prompt_tokens`` with the cached tokens inside; LiteLLM's ``generic_cost_per_token``
  notes the same.)

Standard library only: serving's LiteLLM hook may read usage the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["UsageTokens", "usage_tokens"]


@dataclass(frozen=True)
class UsageTokens:
    """Token counts of one call under the call log's convention (docs/call-log.md).

    Attributes
    ----------
    input_tokens : int
        Every prompt token, cache reads and writes included.
    cached_input_tokens, cache_write_tokens : int
        Parts of ``input_tokens`` read from and written to the provider's cache.
    cache_write_1h_tokens : int or None
        The part of ``cache_write_tokens`` written for an hour; None when the source does
        not say.
    output_tokens : int
        Every completion token, reasoning included.
    reasoning_tokens : int or None
        The part of ``output_tokens`` that was reasoning; None when the source does not say.
    """

    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    cache_write_1h_tokens: int | None
    output_tokens: int
    reasoning_tokens: int | None

    def to_dict(self) -> dict[str, int | None]:
        return {
            "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cache_write_1h_tokens": self.cache_write_1h_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else None


def _count(value: Any, name: str) -> int | None:
    """A token count, or None when absent; a negative, fractional or non-numeric value
    raises ValueError naming the field."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{name} must be a whole number of tokens, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number of tokens, got {value!r}") from None
    if not math.isfinite(number) or number < 0 or number != int(number):
        raise ValueError(f"{name} must be a whole number of tokens >= 0, got {value!r}")
    return int(number)


def _largest(*values: int | None) -> int:
    return max((v for v in values if v is not None), default=0)


def usage_tokens(
    usage: Mapping[str, Any] | None,
    *,
    prompt_tokens: Any = None,
    completion_tokens: Any = None,
    additional_usage_values: Mapping[str, Any] | None = None,
) -> UsageTokens:
    """Read one LiteLLM usage object (see the module docstring for the rules).

    Parameters
    ----------
    usage : mapping or None
        ``metadata.usage_object`` of a spend-log row (a ``litellm.Usage`` as a dict).
    prompt_tokens, completion_tokens : int, optional
        The row's own columns, used where the usage object lacks them.
    additional_usage_values : mapping, optional
        ``metadata.additional_usage_values`` of the row, read for cache counts too.

    Raises
    ------
    ValueError
        If a count is negative, fractional or not a number, or reasoning tokens exceed
        the completion tokens.
    """
    usage = usage if isinstance(usage, Mapping) else {}
    extra = additional_usage_values if isinstance(additional_usage_values, Mapping) else {}
    details = _get(usage, "prompt_tokens_details") or _get(extra, "prompt_tokens_details") or {}
    out_details = (
        _get(usage, "completion_tokens_details") or _get(extra, "completion_tokens_details") or {}
    )

    prompt = _count(usage.get("prompt_tokens"), "usage_object.prompt_tokens")
    if prompt is None:
        prompt = _count(prompt_tokens, "prompt_tokens")
    completion = _count(usage.get("completion_tokens"), "usage_object.completion_tokens")
    if completion is None:
        completion = _count(completion_tokens, "completion_tokens")
    prompt, completion = prompt or 0, completion or 0

    reads = _largest(
        _count(_get(details, "cached_tokens"), "prompt_tokens_details.cached_tokens"),
        _count(usage.get("cache_read_input_tokens"), "usage_object.cache_read_input_tokens"),
        _count(extra.get("cache_read_input_tokens"), "cache_read_input_tokens"),
    )
    writes = _largest(
        _count(
            _get(details, "cache_creation_tokens"), "prompt_tokens_details.cache_creation_tokens"
        ),
        _count(_get(details, "cache_write_tokens"), "prompt_tokens_details.cache_write_tokens"),
        _count(
            usage.get("cache_creation_input_tokens"), "usage_object.cache_creation_input_tokens"
        ),
        _count(extra.get("cache_creation_input_tokens"), "cache_creation_input_tokens"),
    )
    by_ttl = _get(details, "cache_creation_token_details") or usage.get("cache_creation")
    writes_1h = _count(_get(by_ttl, "ephemeral_1h_input_tokens"), "ephemeral_1h_input_tokens")
    if writes_1h is not None:
        writes_5m = _count(_get(by_ttl, "ephemeral_5m_input_tokens"), "ephemeral_5m_input_tokens")
        writes = max(writes, writes_1h + (writes_5m or 0))

    if reads + writes > prompt:
        prompt += reads + writes  # the source kept Anthropic's convention (uncached only)

    reasoning = _count(
        _get(out_details, "reasoning_tokens"), "completion_tokens_details.reasoning_tokens"
    )
    if reasoning is not None and reasoning > completion:
        raise ValueError(
            f"completion_tokens_details.reasoning_tokens ({reasoning}) exceed completion_tokens "
            f"({completion}), which count them"
        )
    return UsageTokens(
        input_tokens=prompt,
        cached_input_tokens=reads,
        cache_write_tokens=writes,
        cache_write_1h_tokens=writes_1h,
        output_tokens=completion,
        reasoning_tokens=reasoning,
    )
