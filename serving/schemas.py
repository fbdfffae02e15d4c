"""Request and response models of the /route service.

Constraints sit on the fields, so nonsense (a negative ``value_usd``, a
``min_success`` of 2, duplicate candidates) is refused with a 422 before any model
runs. `RouteRequest` ignores unknown fields, so a gateway can post a whole
chat-completions body as-is and add the routing knobs next to it.

The only size limit is the body's (``OUTCOME_ROUTER_MAX_BODY_BYTES``, checked by
`serving.app` before parsing): a long prompt is routed on its head and tail.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from features.routing_text import message_text

# Strict numbers: JSON ``true`` or ``"0.5"`` is not silently read as a price.
_STRICT = {"strict": True, "allow_inf_nan": False}


class ChatMessage(BaseModel):
    """One OpenAI chat message; fields other than role and content are kept as-is.

    Examples
    --------
    >>> ChatMessage(role="user", content="hi").content
    'hi'
    """

    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None


class CacheHintIn(BaseModel):
    """Prompt tokens the gateway expects ``model`` to serve from its prompt cache.

    A hint for a model outside the bundle is accepted (the gateway may know models
    the router does not); the answer's ``cache_hint`` then says it changed nothing.
    """

    model: str
    cached_tokens: int = Field(ge=0, strict=True)


class RouteRequest(BaseModel):
    """Body of ``POST /route``: what is asked, and the knobs of this one decision.

    Parameters
    ----------
    messages : list of ChatMessage, optional
        OpenAI chat messages; the routing text is taken from them when ``prompt``
        is absent or empty.
    prompt : str, optional
        A plain prompt.
    candidates : list of str, optional
        Subset of the bundle's candidates the router may pick from (unique).
    value_usd : float, optional
        What one good outcome is worth (>= 0); default: the bundle's policy.
    min_success : float in [0, 1], optional
        Floor on the success probability; default: the bundle's policy.
    max_cost_usd : float > 0, optional
        Budget on the expected cost; default: the bundle's policy.
    user, team, task, session_id : str, optional
        Attribution, written to the decision log. A ``session_id`` also makes the
        costs cache-aware: the session's last model is priced with its warm prompt
        cache (`serving.session_cache`).
    cache : CacheHintIn, optional
        Prompt-cache hint that lowers one candidate's expected cost; it overrides the
        session state.

    Examples
    --------
    >>> RouteRequest.model_validate({"model": "gpt-4o", "prompt": "hi"}).prompt
    'hi'
    """

    model_config = ConfigDict(extra="ignore")

    messages: list[ChatMessage] | None = None
    prompt: str | None = None
    candidates: list[str] | None = Field(default=None, min_length=1)
    value_usd: float | None = Field(default=None, ge=0, **_STRICT)
    min_success: float | None = Field(default=None, ge=0, le=1, **_STRICT)
    max_cost_usd: float | None = Field(default=None, gt=0, **_STRICT)
    user: str | None = None
    team: str | None = None
    task: str | None = None
    session_id: str | None = None
    cache: CacheHintIn | None = None

    @field_validator("candidates")
    @classmethod
    def _unique_candidates(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            repeated = sorted({c for c in value if value.count(c) > 1})
            raise ValueError(f"candidates must be unique; repeated: {repeated}")
        return value

    @model_validator(mode="after")
    def _has_text(self) -> RouteRequest:
        if not self.prompt and not self.messages:
            raise ValueError(
                "a request needs a non-empty `prompt` or a non-empty `messages` list "
                "(OpenAI chat format)"
            )
        # JSON allows "\ud800" escapes that are not text; the tokenizer and the
        # decision log cannot take them, so refuse them here as bad input.
        labels = [(f, getattr(self, f)) for f in ("user", "team", "task", "session_id")]
        for where, text in [*self._texts(), *((f, v) for f, v in labels if v)]:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(
                    f"{where} holds an unpaired UTF-16 surrogate at character {exc.start}; "
                    "send valid Unicode text"
                ) from None
        return self

    def _texts(self) -> list[tuple[str, str]]:
        texts = [("prompt", self.prompt)] if self.prompt else []
        for i, message in enumerate(self.messages or ()):
            texts.append((f"messages[{i}].content", message_text(message.content)))
        return texts

    def routing_input(self) -> tuple[str | None, list[dict[str, Any]] | None]:
        """``(prompt, messages)`` as the scorer takes them.

        An empty ``prompt`` next to ``messages`` is treated as absent, so the
        messages are routed rather than an empty string.
        """
        messages = [m.model_dump() for m in self.messages] if self.messages else None
        return (self.prompt or None), messages


class ScoreOut(BaseModel):
    """One candidate's scores; ``utility = value_usd * p_success - expected_cost_usd``."""

    model: str
    p_success: float
    expected_cost_usd: float
    utility: float


class CacheHintOut(BaseModel):
    """What the request's cache hint did to the hinted model's expected cost."""

    model: str
    applied: bool = Field(description="Whether the hint lowered the model's expected cost.")
    cached_tokens: float = Field(
        description="Prompt tokens priced at the cache-read price: the hint's count capped "
        "at the prompt tokens predicted for the model (output is never discounted); 0 when "
        "not applied."
    )
    discount_usd: float = Field(description="How much the hint lowered expected_cost_usd.")
    reason: str | None = Field(
        default=None, description="Why the hint changed nothing, when not applied."
    )


class CacheAssumedOut(BaseModel):
    """What the expected costs assume about prompt caches (`serving.session_cache`)."""

    source: Literal["session", "request"] = Field(
        description="`session`: the router's own state of the request's session_id; "
        "`request`: the request's `cache` field (which overrides the session state)."
    )
    model: str | None = Field(
        description="The model assumed to hold a warm prefix: the hinted model, or the "
        "session's last model (null for a session not seen before)."
    )
    cached_tokens: float = Field(
        description="Prompt tokens priced at the model's cache-read price (0: none)."
    )
    age_s: float | None = Field(
        default=None, description="Seconds since the session's last decision."
    )
    discount_usd: float = Field(
        description="How much the cached prefixes lowered the costs (all warm models)."
    )
    write_premium_usd: dict[str, float] = Field(
        default_factory=dict,
        description="Per candidate, the cache-write premium added to its expected cost "
        "(providers that charge for writing the cache, such as Anthropic).",
    )
    reason: str | None = Field(
        default=None, description="Why no prefix was priced as cached, when none was."
    )
    warm_prefixes: dict[str, float] = Field(
        default_factory=dict,
        description="Every model priced with a warm prefix and its cached tokens: the "
        "session's last model and earlier ones still within their cache TTL.",
    )
    request_tokens: float | None = Field(
        default=None,
        description="The request's whole prompt, measured (characters / "
        "OUTCOME_ROUTER_CACHE_CHARS_PER_TOKEN): in a session, the floor of every candidate's "
        "prompt tokens.",
    )


class RouteResponse(BaseModel):
    """The decision.

    ``propensity`` is the probability the policy gave the chosen model (1.0 for the
    deterministic policy and for fallbacks; below 1 when exploration is on); with
    ``decision_id`` and ``router_version`` it lets the logged calls be evaluated
    off-policy later. ``reason`` is ``"max_utility"``, ``"explore"`` (exploration
    drew another than the best candidate), ``"no_candidate_met_constraints"`` or
    ``"fallback"``. ``scores`` lists every allowed candidate, and is empty when
    ``reason`` is ``"fallback"``. ``cache_hint`` answers a request's ``cache`` hint
    (null without one): whether it lowered the hinted model's cost, or why not.
    ``cache_assumed`` says what the costs assume about prompt caches, from the hint
    or from the router's state of the request's ``session_id`` (null: nothing).
    """

    model: str
    decision_id: str
    propensity: float
    router_version: str
    reason: str
    scores: list[ScoreOut]
    cache_hint: CacheHintOut | None = None
    cache_assumed: CacheAssumedOut | None = None


class HealthResponse(BaseModel):
    """Liveness and identity of the loaded bundle."""

    status: Literal["ok"]
    router_version: str
    candidates: list[str]
    fallback_model: str


class ReloadRequest(BaseModel):
    """Body of ``POST /admin/reload``; send none (or ``{}``) to re-read the configured bundle.

    Unknown fields are refused: on an admin call a typo (``"bundel"``) should fail,
    not silently reload the configured bundle.

    Examples
    --------
    >>> ReloadRequest(bundle="models:/outcome-router@champion").bundle
    'models:/outcome-router@champion'
    """

    model_config = ConfigDict(extra="forbid")

    bundle: str | None = Field(
        default=None,
        min_length=1,
        description="A bundle folder on the server, or models:/NAME@ALIAS or "
        "models:/NAME/VERSION. Default: the configured bundle "
        "(OUTCOME_ROUTER_BUNDLE_SOURCE, else OUTCOME_ROUTER_BUNDLE), re-read.",
    )


class ReloadResponse(BaseModel):
    """A completed swap: what served before, what serves now, and how long it took."""

    previous_router_version: str
    router_version: str
    changed: bool = Field(description="False when the new bundle is the same version.")
    source: str = Field(description="The bundle as asked for (folder or models:/ URI).")
    bundle: str = Field(description="The local folder now serving.")
    candidates: list[str]
    fallback_model: str
    load_ms: float = Field(description="Fetch, verification, session building and warm-up.")
