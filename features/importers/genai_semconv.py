"""The OpenTelemetry GenAI semantic conventions that ``outcome-router import otel``
reads: attribute and event names, and the few rules of ours around them.

From open-telemetry/semantic-conventions at commit 7b0c0fe1e, the last before the GenAI
conventions moved to the semantic-conventions-genai repository: ``docs/gen-ai/
gen-ai-spans.md`` (inference span attributes, ``gen_ai.operation.name`` values),
``gen-ai-events.md`` (``gen_ai.evaluation.result``,
``gen_ai.client.inference.operation.details``), ``anthropic.md`` (cache counts are added
into ``gen_ai.usage.input_tokens``) and ``model/gen-ai/deprecated/registry-deprecated.yaml``
(``gen_ai.usage.prompt_tokens``, ``gen_ai.system``). Standard library only, so that the
command line is built without loading the importer.
"""

from __future__ import annotations

__all__ = [
    "CACHE_TOKEN_MODES",
    "DETAILS_EVENT",
    "EVALUATION_EVENT",
    "INFERENCE_OPERATIONS",
    "LABEL_SCORES",
    "LITELLM_COST",
    "LITELLM_USAGE_OBJECT",
    "SESSION_KEYS",
    "TEAM_KEYS",
    "TOKEN_KEYS",
    "USER_KEYS",
]

#: ``gen_ai.operation.name`` values of a model call (the inference span); the others
#: (``execute_tool``, ``invoke_agent``, ``create_agent``, ``embeddings``, ``retrieval``,
#: ``invoke_workflow``) are counted and skipped.
INFERENCE_OPERATIONS = ("chat", "text_completion", "generate_content")
EVALUATION_EVENT = "gen_ai.evaluation.result"
DETAILS_EVENT = "gen_ai.client.inference.operation.details"
#: Who asked: OpenTelemetry's ``user.id`` (and the deprecated ``enduser.id`` it
#: replaced), then LiteLLM's OpenTelemetry callback, which sets ``metadata.<key>``
#: for every key of its logging metadata (the API key's user), and ``llm.user`` (the
#: request's ``user``): the order of ``import litellm-spend``'s ``user``, ``end_user``.
USER_KEYS = ("user.id", "enduser.id", "metadata.user_api_key_user_id", "llm.user")
#: The team: no semantic convention names one; ``team.id``/``team.name`` are read as
#: an application would set them, then LiteLLM's key team.
TEAM_KEYS = ("team.id", "team.name", "metadata.user_api_key_team_id")
#: The session: the convention's conversation id, else the general ``session.id``.
SESSION_KEYS = ("gen_ai.conversation.id", "session.id")
#: Call-log token column -> span attributes, the current name first, then deprecated
#: (``prompt_tokens``) and instrumentation-specific (OpenLLMetry's ``cache_read_input_tokens``)
#: spellings.
TOKEN_KEYS = {
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
    "cached_input_tokens": (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
    ),
    "cache_write_tokens": (
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
    ),
    "reasoning_tokens": ("gen_ai.usage.reasoning.output_tokens",),
}
#: Whether ``gen_ai.usage.input_tokens`` counts cache reads and writes: ``auto`` takes a
#: span whose reads + writes exceed it as excluding them (Anthropic's own count).
CACHE_TOKEN_MODES = ("auto", "included", "excluded")
#: Labels read as a score when an evaluation has no ``score.value`` (the examples of
#: ``gen_ai.evaluation.score.label`` in the convention, and their plain synonyms).
LABEL_SCORES = {
    "pass": 1.0,
    "passed": 1.0,
    "correct": 1.0,
    "relevant": 1.0,
    "true": 1.0,
    "yes": 1.0,
    "fail": 0.0,
    "failed": 0.0,
    "incorrect": 0.0,
    "not_relevant": 0.0,
    "false": 0.0,
    "no": 0.0,
}

#: LiteLLM's OpenTelemetry callback (BerriAI/litellm ``litellm/integrations/
#: opentelemetry.py``, ``set_attributes``) writes the deprecated token names and no
#: cache counts, but its logging metadata's usage object (``metadata.usage_object``, a
#: dict as text) holds them: read with `features.importers.litellm_usage`, as
#: ``import litellm-spend`` reads the same object.
LITELLM_USAGE_OBJECT = "metadata.usage_object"
#: LiteLLM's own cost of the call (``cost_breakdown.total_cost``, its ``response_cost``),
#: written by the same callback as ``gen_ai.cost.<key>``: kept as ``source_cost_usd``.
LITELLM_COST = "gen_ai.cost.total_cost"
