"""Serving settings: one typed, validated place for every knob of the /route service.

Values come from ``OUTCOME_ROUTER_*`` environment variables (or keyword arguments,
which win). Nothing is read at import: `get_settings` builds the object on first
use and caches it, and tests replace it through ``app.dependency_overrides`` or by
passing a `Settings` to `serving.app.create_app`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving.session_cache import (
    DEFAULT_CHARS_PER_TOKEN,
    DEFAULT_MAX_SESSIONS,
    DEFAULT_MIN_TOKENS,
    DEFAULT_TTL_SECONDS,
    CacheRules,
)

ENV_PREFIX = "OUTCOME_ROUTER_"


class Settings(BaseSettings):
    """Settings of the /route service.

    Parameters
    ----------
    bundle : str
        Bundle folder written by ``outcome-router train --out`` (env
        ``OUTCOME_ROUTER_BUNDLE``).
    fallback_model : str or None
        Model answered when scoring fails or misses the time budget. None uses the
        bundle manifest's ``policy.fallback_model``. It must be a bundle candidate,
        so a typo is refused at start-up instead of surfacing during an outage.
    time_budget_ms : float
        Time a decision may take before the fallback model is answered instead
        (default 250).
        The budget is preemptive: the fallback is answered as soon as it runs out
        (see `serving.deadline`).
    decision_threads : int or None
        Threads that score and decide (`serving.deadline.DecisionRunner`); None
        uses one per core.
    decision_queue : int
        Decisions admitted beyond the busy threads; further requests get the
        fallback at once (``cause="overload"``) instead of queueing without bound.
    decision_log : path or None
        JSONL file that receives one line per decision; None turns the log off.
        See `serving.decision_log` for the flush policy.
    decision_log_max_bytes : int
        Rotate the decision log before it grows past this size; 0 never rotates.
    decision_log_backups : int
        Rotated decision-log files kept (the oldest are deleted); 0 keeps all.
    decision_log_fsync_s : float
        Seconds between fsyncs of the decision log, the window of decisions a power
        loss can take (a killed process loses none); 0 fsyncs every decision.
    log_prompts : bool
        Also write the routing text to the decision log (its sha256 is always
        written). Off by default: prompts can hold personal or secret data.
    max_body_bytes : int
        Largest accepted request body (default 4 MiB); larger bodies get a 413
        before parsing, the only size refusal. Any prompt that fits is routed: the
        encoder cuts the text to its head and tail before tokenizing
        (`features.encoder`), so a long prompt costs little more than a short one.
    api_keys : secret str or None
        Comma-separated API keys (``OUTCOME_ROUTER_API_KEYS``); when set, ``/route``
        needs one in ``Authorization: Bearer KEY`` or ``X-API-Key``. ``/health`` and
        ``/metrics`` stay open for probes and scrapers.
    intra_op_threads : int
        onnxruntime threads per inference session. 1 suits a server that handles
        requests concurrently on a few cores.
    admin_keys : secret str or None
        Comma-separated admin keys (``OUTCOME_ROUTER_ADMIN_KEYS``) for ``/admin/*``
        (``POST /admin/reload``), sent like API keys. None: the admin endpoints
        answer 403, so a bundle swap is never open by accident. A key may not also
        be an API key: every gateway holds those.
    bundle_source : str or None
        What ``POST /admin/reload`` re-reads when its body names no bundle: a folder
        or ``models:/NAME@ALIAS``. ``serve --bundle models:/...`` sets it to the URI
        (while ``bundle`` is the downloaded folder), so promote-then-reload serves
        the new champion. None: ``bundle``.
    mlruns : str
        MLflow store folder that ``models:/`` reloads download from (a child process
        does it; ``$MLFLOW_TRACKING_URI`` overrides the store there).
    explore : {"none", "epsilon", "softmax"}
        Exploration among near-best candidates (`serving.policy.Exploration`);
        the chosen model's exact probability is answered as ``propensity``.
    explore_epsilon : float
        Probability of a uniform draw among near-best candidates (``epsilon``).
    explore_temperature : float
        Softmax temperature, in USD of utility (``softmax``).
    explore_margin_usd : float or None
        Near-best: utility within this many USD of the best. None: any feasible.
    explore_top_k : int or None
        Near-best: among the top k feasible candidates by utility. None: all.
    explore_seed : int or None
        Seed of the exploration draws (tests, replays); None draws a fresh seed.
    cache_sessions : int
        Sessions whose last model, time and prompt tokens are remembered for
        cache-aware routing (`serving.session_cache`; 280 to 560 bytes each, the least
        recently routed evicted beyond it). 0 turns session-aware costs off.
    cache_ttl_seconds : float
        Seconds a provider keeps a prompt-cache prefix after its last use (default
        300: Anthropic's default, the low end of OpenAI's 5 to 10 minutes).
    cache_ttl_overrides : dict of str to float
        Per model, as JSON (``OUTCOME_ROUTER_CACHE_TTL_OVERRIDES='{"claude-": 3600}'``
        for Anthropic's 1-hour cache): a key is a candidate name or a prefix of names;
        the longest matching key wins.
    cache_min_tokens : int
        Shortest prompt a provider caches, in tokens (default 1024: OpenAI, Claude
        Sonnet); shorter prefixes are neither read nor written.
    cache_min_tokens_overrides : dict of str to int
        Per model, like ``cache_ttl_overrides`` (e.g. ``{"claude-haiku-4-5": 4096}``).
    cache_chars_per_token : float
        Characters per token when a session's request is measured (default 4, OpenAI's
        rule of thumb for English; code and CJK text run denser).

    Examples
    --------
    >>> Settings(bundle="out/bundle", time_budget_ms=20).time_budget_ms
    20.0
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="ignore", validate_default=True
    )

    bundle: str = Field(min_length=1)
    fallback_model: str | None = None
    time_budget_ms: float = Field(default=250.0, gt=0, allow_inf_nan=False)
    decision_log: Path | None = None
    log_prompts: bool = False
    max_body_bytes: int = Field(default=4 << 20, gt=0)
    intra_op_threads: int = Field(default=1, ge=1)
    api_keys: SecretStr | None = None
    admin_keys: SecretStr | None = None
    bundle_source: str | None = Field(default=None, min_length=1)
    mlruns: str = Field(default="mlruns", min_length=1)
    decision_threads: int | None = Field(default=None, ge=1)
    decision_queue: int = Field(default=64, ge=0)
    decision_log_max_bytes: int = Field(default=128 << 20, ge=0)
    decision_log_backups: int = Field(default=0, ge=0)
    decision_log_fsync_s: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    explore: Literal["none", "epsilon", "softmax"] = "none"
    explore_epsilon: float = Field(default=0.05, gt=0, le=1)
    explore_temperature: float = Field(default=0.05, gt=0, allow_inf_nan=False)
    explore_margin_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    explore_top_k: int | None = Field(default=None, ge=1)
    explore_seed: int | None = None
    cache_sessions: int = Field(default=DEFAULT_MAX_SESSIONS, ge=0)
    cache_ttl_seconds: float = Field(default=DEFAULT_TTL_SECONDS, gt=0, allow_inf_nan=False)
    cache_ttl_overrides: dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = {}
    cache_min_tokens: int = Field(default=DEFAULT_MIN_TOKENS, ge=0)
    cache_min_tokens_overrides: dict[str, Annotated[int, Field(ge=0)]] = {}
    cache_chars_per_token: float = Field(default=DEFAULT_CHARS_PER_TOKEN, gt=0, allow_inf_nan=False)

    @property
    def cache_rules(self) -> CacheRules:
        """The providers' cache TTL and minimum prompt per model, from these settings."""
        return CacheRules(
            ttl_s=self.cache_ttl_seconds,
            min_tokens=self.cache_min_tokens,
            ttl_overrides=dict(self.cache_ttl_overrides),
            min_tokens_overrides=dict(self.cache_min_tokens_overrides),
            chars_per_token=self.cache_chars_per_token,
        )

    @property
    def api_key_list(self) -> tuple[str, ...]:
        """Accepted keys: ``OUTCOME_ROUTER_API_KEYS`` split on commas (empty: no auth)."""
        return _split_keys(self.api_keys)

    @property
    def admin_key_list(self) -> tuple[str, ...]:
        """Admin keys: ``OUTCOME_ROUTER_ADMIN_KEYS`` split on commas (empty: admin off)."""
        return _split_keys(self.admin_keys)

    @model_validator(mode="after")
    def _admin_keys_are_not_api_keys(self) -> Settings:
        # A gateway's API key that also reloads bundles would put every gateway one
        # typo away from swapping the router: refuse the overlap at start-up.
        if set(self.admin_key_list) & set(self.api_key_list):
            raise ValueError(
                "OUTCOME_ROUTER_ADMIN_KEYS shares a key with OUTCOME_ROUTER_API_KEYS; "
                "give admins keys of their own."
            )
        return self


def _split_keys(keys: SecretStr | None) -> tuple[str, ...]:
    if keys is None:
        return ()
    return tuple(k.strip() for k in keys.get_secret_value().split(",") if k.strip())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once.

    A FastAPI dependency: override it in tests with
    ``app.dependency_overrides[get_settings] = lambda: Settings(...)``.
    """
    return Settings()
