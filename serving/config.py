"""Serving settings: one typed, validated place for every knob of the /route service.

Values come from ``OUTCOME_ROUTER_*`` environment variables (or keyword arguments,
which win). Nothing is read at import: `get_settings` builds the object on first
use and caches it, and tests replace it through ``app.dependency_overrides`` or by
passing a `Settings` to `serving.app.create_app`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

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
        Time a decision may take before the fallback model is answered instead.
        The check is post-hoc (see `serving.api.routes.route`).
    decision_log : path or None
        JSONL file that receives one line per decision; None turns the log off.
    log_prompts : bool
        Also write the routing text to the decision log (its sha256 is always
        written). Off by default: prompts can hold personal or secret data.
    max_body_bytes : int
        Largest accepted request body; larger bodies get a 413 before parsing.
    max_messages : int
        Most chat messages accepted in one request (413 above).
    max_text_chars : int
        Most characters of prompt and message text in one request (413 above).
    api_keys : secret str or None
        Comma-separated API keys (``OUTCOME_ROUTER_API_KEYS``); when set, ``/route``
        needs one in ``Authorization: Bearer KEY`` or ``X-API-Key``. ``/health`` and
        ``/metrics`` stay open for probes and scrapers.
    intra_op_threads : int
        onnxruntime threads per inference session. 1 suits a server that handles
        requests concurrently on a few cores.

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
    max_body_bytes: int = Field(default=1 << 20, gt=0)
    max_messages: int = Field(default=256, gt=0)
    max_text_chars: int = Field(default=200_000, gt=0)
    intra_op_threads: int = Field(default=1, ge=1)
    api_keys: SecretStr | None = None

    @property
    def api_key_list(self) -> tuple[str, ...]:
        """Accepted keys: ``OUTCOME_ROUTER_API_KEYS`` split on commas (empty: no auth)."""
        if self.api_keys is None:
            return ()
        return tuple(k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once.

    A FastAPI dependency: override it in tests with
    ``app.dependency_overrides[get_settings] = lambda: Settings(...)``.
    """
    return Settings()
