"""LiteLLM proxy hook: ask ``POST /route`` which model answers, then log the call.

The LiteLLM proxy loads `proxy_handler_instance` from its config.yaml::

    litellm_settings:
      callbacks: serving.gateways.litellm_hook.proxy_handler_instance

and calls two of its methods around every chat or text completion:

- `OutcomeRouterHook.async_pre_call_hook` (before the proxy picks a deployment) posts
  the request's messages to ``/route`` and sets ``data["model"]`` to the chosen model.
  The decision id, propensity and router version go into the request's
  ``metadata`` (``outcome_router_*`` keys), which LiteLLM carries to the success
  callback. If ``/route`` is down, slow, refuses the request or answers anything
  unusable, the request keeps the model it asked for: the router is never the
  reason a request fails.
- `OutcomeRouterHook.async_log_success_event` appends one call-log row (DESIGN.md
  section 2) per answered call to a JSONL file that `features.call_log` reads as
  is: ``request_id``, the model that answered, ``messages``, ``timestamp``,
  attribution, tokens (``input_tokens`` counts cached tokens too), ``cost_usd``,
  ``latency_ms`` and the ``decision_id`` that joins the row to the router's
  decision log.

This module runs in the gateway's process and imports litellm and httpx; the
/route server never imports it. Settings come from ``OUTCOME_ROUTER_HOOK_*``
environment variables (`HookSettings`), read on first use, not at import.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import threading
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from litellm.integrations.custom_logger import CustomLogger
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from litellm.caching.dual_cache import DualCache
    from litellm.types.proxy.auth.user_api_key_auth import UserAPIKeyAuth

logger = logging.getLogger(__name__)

HOOK_ENV_PREFIX = "OUTCOME_ROUTER_HOOK_"
#: Call types whose body has ``messages`` (chat) or ``prompt`` (text completion).
ROUTED_CALL_TYPES = frozenset({"completion", "acompletion", "text_completion", "atext_completion"})
#: Keys the hook writes into the request's metadata.
META_DECISION_ID = "outcome_router_decision_id"
META_PROPENSITY = "outcome_router_propensity"
META_ROUTER_VERSION = "outcome_router_version"
META_REQUESTED_MODEL = "outcome_router_requested_model"
META_REASON = "outcome_router_reason"
#: The attribution sent to /route ({user, team, task, session_id}), reused by the
#: call-log row so both logs attribute a call alike.
META_ATTRIBUTION = "outcome_router_attribution"


class HookSettings(BaseSettings):
    """Settings of the LiteLLM hook, from ``OUTCOME_ROUTER_HOOK_*`` variables.

    Parameters
    ----------
    url : str
        Base URL of the router service; the hook posts to ``{url}/route``.
    api_key : secret str or None
        Sent as ``Authorization: Bearer KEY`` when the server has
        ``OUTCOME_ROUTER_API_KEYS`` set.
    timeout_ms : float
        Whole time the hook waits for ``/route`` (connect, send, answer). Past it
        the request keeps its model. Keep it a little above the server's
        ``OUTCOME_ROUTER_TIME_BUDGET_MS``, since the server answers its fallback
        model once that budget is spent.
    call_log : path or None
        JSONL file that receives one call-log row per answered call (created with
        its folder); None writes no rows.
    route_models : str
        Comma-separated requested model names that are routed (e.g. ``auto``);
        empty routes every chat and text completion. A name here should also be a
        ``model_name`` of the proxy, so a request still has a deployment when
        ``/route`` cannot answer.
    candidates : str
        Comma-separated models ``/route`` may choose from (sent as ``candidates``);
        empty allows every candidate of the bundle. List the bundle candidates
        that the proxy serves under the same ``model_name``.

    Examples
    --------
    >>> HookSettings(url="http://router:8000/", timeout_ms=100).route_url
    'http://router:8000/route'
    """

    model_config = SettingsConfigDict(
        env_prefix=HOOK_ENV_PREFIX, env_ignore_empty=True, extra="ignore", validate_default=True
    )

    url: str = Field(default="http://127.0.0.1:8000", min_length=1)
    api_key: SecretStr | None = None
    timeout_ms: float = Field(default=300.0, gt=0, allow_inf_nan=False)
    call_log: Path | None = None
    route_models: str = ""
    candidates: str = ""

    @property
    def route_url(self) -> str:
        """``{url}/route``."""
        return self.url.rstrip("/") + "/route"

    @property
    def route_model_set(self) -> frozenset[str]:
        """`route_models` split on commas (empty: every model is routed)."""
        return frozenset(_split(self.route_models))

    @property
    def candidate_list(self) -> list[str]:
        """`candidates` split on commas, order kept (empty: the bundle's)."""
        return _split(self.candidates)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _get(obj: Any, name: str) -> Any:
    """``obj[name]`` or ``obj.name``: LiteLLM hands usage over as objects or dicts."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _count(value: Any) -> int | None:
    """A token count as int, or None for anything that is not a whole number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0 or value != int(value):
        return None
    return int(value)


def _prompt_fields(request: Mapping[str, Any]) -> dict[str, Any]:
    """A request's ``messages`` (chat) or else its ``prompt`` (completion), as the
    /route body and the call log both name them; empty when it has neither."""
    messages = request.get("messages")
    prompt = request.get("prompt")
    if isinstance(messages, list) and messages:
        return {"messages": messages}
    if isinstance(prompt, str) and prompt:
        return {"prompt": prompt}
    return {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class CallLogWriter:
    """Append JSON lines to a file, one ``os.write`` per row.

    The file is opened with ``O_APPEND`` and each row is written by a single
    ``write`` call, so rows from several proxy workers (processes) appending to the
    same file do not interleave. Nothing is opened until the first row.

    Parameters
    ----------
    path : path
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._lock = threading.Lock()

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one row (a JSON object on one line)."""
        line = (json.dumps(row, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        with self._lock:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(self._fd, line)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class OutcomeRouterHook(CustomLogger):
    """LiteLLM proxy callback that routes requests with ``/route`` and logs calls.

    Parameters
    ----------
    settings : HookSettings, optional
        Read from the environment on first use when None (the proxy builds the
        instance at import, before its environment is final).

    Notes
    -----
    The LiteLLM proxy calls ``async_pre_call_hook(user_api_key_dict, cache, data,
    call_type)`` before it routes a request, and ``async_log_success_event(kwargs,
    response_obj, start_time, end_time)`` after a call succeeds (for every
    callback in ``litellm.callbacks``). The pre-call hook is proxy-only: a bare
    ``litellm.Router`` does not call it.
    """

    def __init__(self, settings: HookSettings | None = None) -> None:
        super().__init__()
        self._settings = settings
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    @cached_property
    def settings(self) -> HookSettings:
        """The settings given, else `HookSettings` from the environment (once)."""
        return self._settings if self._settings is not None else HookSettings()

    @cached_property
    def call_log(self) -> CallLogWriter | None:
        """Writer of call-log rows, or None when ``call_log`` is not set."""
        path = self.settings.call_log
        return CallLogWriter(path) if path is not None else None

    # ---------------------------------------------------------------- pre-call

    def _client(self) -> httpx.AsyncClient:
        """One pooled client per event loop (an httpx client is bound to its loop)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            headers = {"content-type": "application/json"}
            if self.settings.api_key is not None:
                headers["authorization"] = f"Bearer {self.settings.api_key.get_secret_value()}"
            client = httpx.AsyncClient(headers=headers, trust_env=False)
            self._clients[loop] = client
        return client

    @staticmethod
    def attribution(data: Mapping[str, Any], user_api_key_dict: Any = None) -> dict[str, str]:
        """``user``, ``team``, ``task`` and ``session_id`` of a request, where known.

        ``user`` is the request's ``user`` (the end user) or else the proxy key's
        user; ``team`` is the key's team; ``task`` and ``session_id`` come from the
        request's ``metadata``.
        """
        metadata = _metadata(data)
        found = {
            "user": _text(data.get("user")) or _text(_get(user_api_key_dict, "user_id")),
            "team": _text(_get(user_api_key_dict, "team_id")),
            "task": _text(metadata.get("task")),
            "session_id": _text(metadata.get("session_id")),
        }
        return {k: v for k, v in found.items() if v is not None}

    def route_body(self, data: Mapping[str, Any], user_api_key_dict: Any = None) -> dict | None:
        """The ``/route`` body for a request, or None when there is nothing to route on."""
        body = _prompt_fields(data)
        if not body:
            return None
        body.update(self.attribution(data, user_api_key_dict))
        if self.settings.candidate_list:
            body["candidates"] = self.settings.candidate_list
        return body

    async def ask_route(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """POST ``body`` to ``/route``; the decision, or None on any failure.

        Every failure (refused connection, timeout, non-200, malformed answer) is
        logged at warning level and answered with None, never raised.
        """
        timeout = self.settings.timeout_ms / 1000.0
        try:
            response = await asyncio.wait_for(
                self._client().post(self.settings.route_url, json=body, timeout=timeout),
                timeout=timeout,
            )
        except (TimeoutError, httpx.HTTPError, OSError) as exc:
            logger.warning("outcome-router /route failed (%s); keeping the requested model.", exc)
            return None
        if response.status_code != 200:
            logger.warning(
                "outcome-router /route answered %s: %s; keeping the requested model.",
                response.status_code,
                response.text[:300],
            )
            return None
        try:
            decision = response.json()
        except ValueError:
            decision = None
        if (
            not isinstance(decision, dict)
            or not _text(decision.get("model"))
            or not _text(decision.get("decision_id"))
        ):
            logger.warning("outcome-router /route answered no model; keeping the requested model.")
            return None
        return decision

    async def async_pre_call_hook(
        self,
        user_api_key_dict: UserAPIKeyAuth,
        cache: DualCache,
        data: dict,
        call_type: str,
    ) -> dict:
        """Set ``data["model"]`` to the model ``/route`` chooses; never raise.

        Returns the (modified) ``data``, as LiteLLM expects from a pre-call hook
        that does not reject the request.
        """
        try:
            if call_type not in ROUTED_CALL_TYPES:
                return data
            _metadata(data, create=True)[META_ATTRIBUTION] = self.attribution(
                data, user_api_key_dict
            )
            requested = data.get("model")
            routed = self.settings.route_model_set
            if routed and requested not in routed:
                return data
            body = self.route_body(data, user_api_key_dict)
            if body is None:
                return data
            decision = await self.ask_route(body)
            if decision is None:
                return data
            metadata = _metadata(data, create=True)
            metadata[META_DECISION_ID] = decision["decision_id"]
            metadata[META_PROPENSITY] = decision.get("propensity")
            metadata[META_ROUTER_VERSION] = decision.get("router_version")
            metadata[META_REASON] = decision.get("reason")
            metadata[META_REQUESTED_MODEL] = requested
            data["model"] = decision["model"]
        except Exception:
            logger.exception("outcome-router hook failed; keeping the requested model.")
        return data

    # ---------------------------------------------------------------- call log

    def call_log_row(
        self, kwargs: Mapping[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> dict[str, Any] | None:
        """One call-log row (DESIGN.md section 2) from a LiteLLM success event.

        None for calls that are not chat or text completions (embeddings, ...),
        which have no prompt to learn from.

        Token counts follow the call-log contract: ``input_tokens`` counts every
        prompt token, cached reads and cache writes included. LiteLLM's
        ``prompt_tokens`` already does (it adds Anthropic's cache reads and writes
        to the provider's uncached count); where a provider's count evidently
        leaves them out (reads + writes exceed it), they are added.
        """
        slo = kwargs.get("standard_logging_object") or {}
        call_type = str(kwargs.get("call_type") or slo.get("call_type") or "")
        if call_type and call_type not in ROUTED_CALL_TYPES:
            return None
        litellm_params = kwargs.get("litellm_params") or {}
        metadata: dict[str, Any] = {}
        for key in ("litellm_metadata", "metadata"):
            value = litellm_params.get(key)
            if isinstance(value, Mapping):
                metadata.update(value)
        slo_meta = slo.get("metadata") or {}

        row: dict[str, Any] = {
            "request_id": _text(kwargs.get("litellm_call_id"))
            or _text(slo.get("litellm_call_id"))
            or _text(slo.get("id"))
            or _text(_get(response_obj, "id")),
            "model": _text(slo.get("model_group"))
            or _text(metadata.get("model_group"))
            or _text(kwargs.get("model")),
        }
        row.update(_prompt_fields(kwargs))
        row["timestamp"] = _iso(start_time)
        attribution = metadata.get(META_ATTRIBUTION)
        if isinstance(attribution, Mapping):  # what the pre-call hook sent to /route
            for field in ("user", "team", "task", "session_id"):
                row[field] = _text(attribution.get(field))
        else:  # a call the pre-call hook did not see (e.g. the library without the proxy)
            row["user"] = (
                _text(kwargs.get("user"))
                or _text(slo.get("end_user"))
                or _text(slo_meta.get("user_api_key_user_id"))
            )
            row["team"] = _text(slo_meta.get("user_api_key_team_id"))
            row["task"] = _text(metadata.get("task"))
            row["session_id"] = _text(metadata.get("session_id"))

        usage = _get(response_obj, "usage") or slo_meta.get("usage_object")
        prompt_tokens = _count(_get(usage, "prompt_tokens"))
        details = _get(usage, "prompt_tokens_details")
        # A streamed Anthropic call reports its cache reads only in cache_read_input_tokens,
        # with cached_tokens 0 (BerriAI/litellm#11789): the larger count is the reads.
        cached = max(
            _count(_get(details, "cached_tokens")) or 0,
            _count(_get(usage, "cache_read_input_tokens")) or 0,
        )
        written = (
            _count(_get(details, "cache_write_tokens"))
            or _count(_get(details, "cache_creation_tokens"))
            or _count(_get(usage, "cache_creation_input_tokens"))
            or 0
        )
        written_1h = _count(
            _get(_get(details, "cache_creation_token_details"), "ephemeral_1h_input_tokens")
        )
        if prompt_tokens is not None:
            if cached + written > prompt_tokens:
                prompt_tokens += cached + written
            row["input_tokens"] = prompt_tokens
            row["cached_input_tokens"] = cached
            row["cache_write_tokens"] = written
            if written_1h is not None:  # Anthropic's 1-hour writes (the rest are 5-minute)
                row["cache_write_1h_tokens"] = min(written_1h, written)
        output_tokens = _count(_get(usage, "completion_tokens"))
        if output_tokens is not None:
            row["output_tokens"] = output_tokens
            reasoning = _count(_get(_get(usage, "completion_tokens_details"), "reasoning_tokens"))
            if reasoning is not None:
                row["reasoning_tokens"] = min(reasoning, output_tokens)

        cost = slo.get("response_cost", kwargs.get("response_cost"))
        if (
            isinstance(cost, int | float)
            and not isinstance(cost, bool)
            and math.isfinite(cost)
            and cost >= 0
            and slo.get("response_cost_failure_debug_info") is None
        ):
            row["cost_usd"] = float(cost)
        latency = _latency_ms(start_time, end_time)
        if latency is not None:
            row["latency_ms"] = latency

        decision_id = _text(metadata.get(META_DECISION_ID))
        if decision_id is not None:
            row["decision_id"] = decision_id
            propensity = metadata.get(META_PROPENSITY)
            if isinstance(propensity, int | float) and 0 < propensity <= 1:
                row["propensity"] = float(propensity)
            row["router_version"] = metadata.get(META_ROUTER_VERSION)
        requested = _text(metadata.get(META_REQUESTED_MODEL))
        if requested is not None:
            row["requested_model"] = requested
        if row["request_id"] is None or row["model"] is None:
            return None
        return {k: v for k, v in row.items() if v is not None}

    async def async_log_success_event(
        self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        """Append the call's row to the call log; a logging failure never propagates."""
        writer = self.call_log
        if writer is None:
            return
        try:
            row = self.call_log_row(kwargs, response_obj, start_time, end_time)
            if row is not None:
                writer.write(row)
        except Exception:
            logger.exception("outcome-router hook could not write a call-log row.")

    async def aclose(self) -> None:
        """Close this event loop's HTTP client and the call log (tests; the proxy
        never calls it)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
        if self.call_log is not None:
            self.call_log.close()


def _metadata(data: dict | Mapping[str, Any], *, create: bool = False) -> dict[str, Any]:
    """The request's metadata dict: ``litellm_metadata`` on the proxy routes that use
    it (assistants, threads, ...), ``metadata`` otherwise."""
    for key in ("litellm_metadata", "metadata"):
        value = data.get(key)
        if isinstance(value, dict):
            return value
    if create and isinstance(data, dict):
        data["metadata"] = {}
        return data["metadata"]
    return {}


def _iso(moment: Any) -> str | None:
    """ISO 8601 in UTC; LiteLLM passes naive local datetimes (or epoch seconds)."""
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).isoformat(timespec="milliseconds")
    if isinstance(moment, int | float) and math.isfinite(moment):
        return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")
    return None


def _latency_ms(start: Any, end: Any) -> float | None:
    if isinstance(start, datetime) and isinstance(end, datetime):
        elapsed = (end - start).total_seconds()
    elif isinstance(start, int | float) and isinstance(end, int | float):
        elapsed = float(end) - float(start)
    else:
        return None
    return round(elapsed * 1000.0, 3) if elapsed >= 0 else None


#: The instance a LiteLLM proxy config names: ``callbacks:
#: serving.gateways.litellm_hook.proxy_handler_instance``. Building it reads nothing;
#: settings are read from the environment on the first request.
proxy_handler_instance = OutcomeRouterHook()
