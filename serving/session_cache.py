"""Per-session prompt-cache state of ``/route``: which model holds a warm prefix.

A warm prompt cache changes which model is cheapest. The next turn of a conversation
resends the whole previous prompt plus a little more; on the model that answered the
previous turn that prefix is read from the provider's cache at a fraction of the
input price, on any other model it is paid in full (and, at providers that charge for
writing the cache, paid with a premium). A gateway rarely tells the router what is
cached, but most send a ``session_id``: from it the router remembers, per session, the
models it routed to last, when, and how many prompt tokens those requests had
(`SessionEntry`), and `serving.scoring.BundleScorer` prices the next turn with them.

Cost model assumed (the module `serving.scoring` applies it)
-------------------------------------------------------------
- **Prefix.** A conversation only grows: turn *t*'s prompt starts with turn *t-1*'s
  prompt. The model that answered turn *t-1* therefore holds
  ``min(previous prompt tokens, this prompt's tokens)`` tokens of this prompt in its
  cache, for the provider's cache TTL after its last use (each read refreshes it:
  Anthropic's "5 minutes from last use"; OpenAI keeps prefixes for 5 to 10 minutes of
  inactivity). Those tokens cost the cache-read price (``cache_read_input_token_cost``),
  the rest the input price.
- **Prompt size is measured, not predicted.** In a session, every candidate's prompt
  tokens are at least the request's whole prompt measured (its characters, every
  message, over ``cache_chars_per_token``, default 4): the routing text (the last user
  turn) does not see the conversation, and a cost model fit on single prompts does not
  extrapolate to a long one (on RouteProfile it predicted 365 tokens for a 20-turn,
  1,400-token context). The cost model's prediction is kept where it is larger (it
  knows each model's tokenizer and chat template). This size is also what the session
  remembers of the chosen model.
- **Every recent model of the session holds its own prefix.** A model the session left
  still holds the prompt of its last turn there, a shorter prefix of this one, until
  its TTL runs out; up to ``models_per_session`` (4) models are remembered per session,
  the most recent first, and each still within its TTL is priced as warm.
- **Minimum cacheable prompt.** Providers cache nothing below a minimum prompt length:
  1,024 tokens at OpenAI (then in 128-token blocks) and for most Claude models, 4,096
  for Claude Haiku 4.5 and Opus 4.5, 1,024 to 4,096 for Gemini's implicit cache.
  ``cache_min_tokens`` (default 1,024) and a per-model override map set it; a prefix or
  prompt below it is neither read nor written.
- **Write premium.** Anthropic charges ``cache_creation_input_token_cost`` (1.25x the
  input price for the 5-minute cache) for tokens written to the cache; the
  conversation continues, so every candidate writes what it does not read: a cold
  candidate its whole predicted prompt, the warm one the part beyond its prefix. Where
  the catalog has no write price, or one no higher than the input price (OpenAI's,
  Gemini's implicit and DeepSeek's automatic caching: no fee), there is no premium.
- **The request's ``cache`` field wins.** A gateway that knows what is cached says so
  in ``cache``; the session state is then neither read nor priced (the hint alone is,
  as before), but the decision still updates it.

What is assumed is answered as ``cache_assumed`` (``source``: ``"session"`` or
``"request"``) and written to the decision log.

Memory and concurrency
----------------------
`SessionCache` is an ``OrderedDict`` from session id to a tuple of slotted
`SessionEntry` (model name shared with the bundle's candidate names, two floats):
about 280 bytes per session routed to one model, with a 36-character session id, and
about 90 more per further model, 560 at the cap of 4 (``tests/serving/
test_session_cache.py`` measures it with ``tracemalloc``). The default bound of 100,000
sessions therefore holds 28 to 56 MB. Beyond the bound the least recently routed
session is evicted.

No lock is taken. ``/route`` reads and writes the state on the event loop (before the
decision is handed to a thread and after it returns), so requests of one server never
touch it from two threads at once. The class is still safe from many threads, as the
batch and benchmark paths may use it: every operation is one C-level method of
``OrderedDict`` (``get``, ``__setitem__``, ``move_to_end``, ``popitem``) on ``str``
keys, which CPython runs whole under the GIL; two of them in a row may interleave with
another thread's, which can only make eviction approximate (the size may pass the bound
by the number of threads writing at that instant, and a just-evicted session is simply
new again, and two decisions of one session at the same instant may keep one model
of the two), never raise or corrupt the mapping. Each uvicorn worker process keeps its
own state: run one worker, or have the gateway pin a session to a worker, to use it.

References
----------
Anthropic, "Prompt caching" (platform.claude.com/docs/en/build-with-claude/prompt-caching):
5-minute TTL refreshed on use, 1.25x write price, minimum cacheable lengths. OpenAI,
"Prompt caching" (platform.openai.com/docs/guides/prompt-caching): automatic, no write
fee, prompts of 1,024 tokens or more, 5 to 10 minutes of inactivity. LiteLLM's
``model_prices_and_context_window.json`` carries the read and write prices.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from features.routing_text import message_text

#: Default cache TTL in seconds: Anthropic's default (5 minutes from last use) and the
#: low end of OpenAI's 5 to 10 minutes of inactivity.
DEFAULT_TTL_SECONDS = 300.0
#: Default shortest cacheable prompt, in tokens (OpenAI; Claude Sonnet and Opus 4.1).
DEFAULT_MIN_TOKENS = 1024
#: Characters per token of a measured prompt: OpenAI's rule of thumb for English.
DEFAULT_CHARS_PER_TOKEN = 4.0
#: Models remembered per session, the most recent first.
DEFAULT_MODELS_PER_SESSION = 4
#: Default bound on remembered sessions (28 to 56 MB).
DEFAULT_MAX_SESSIONS = 100_000


def _override(name: str, overrides: Mapping[str, float], default: float) -> float:
    """The override of ``name``: its exact key, else the longest key it starts with
    (``"claude-"`` covers every Claude model), else ``default``."""
    if name in overrides:
        return float(overrides[name])
    prefixes = [key for key in overrides if name.startswith(key)]
    return float(overrides[max(prefixes, key=len)]) if prefixes else default


@dataclass(frozen=True)
class CacheRules:
    """The providers' cache rules per model: TTL and shortest cacheable prompt.

    Parameters
    ----------
    ttl_s : float, default=300
        Seconds a cached prefix lives after its last use.
    min_tokens : float, default=1024
        Shortest prompt a provider caches, in tokens.
    ttl_overrides, min_tokens_overrides : mapping of str to float
        Per model: a key is a model name, or a prefix of names (``"claude-"``); the
        longest matching key wins.
    chars_per_token : float, default=4.0
        Characters per prompt token, to measure a request's whole prompt (OpenAI's
        rule of thumb for English text).

    Examples
    --------
    >>> rules = CacheRules(ttl_overrides={"claude-": 3600})
    >>> rules.ttl_for("claude-haiku-4-5"), rules.ttl_for("gpt-4o")
    (3600.0, 300.0)
    """

    ttl_s: float = DEFAULT_TTL_SECONDS
    min_tokens: float = DEFAULT_MIN_TOKENS
    ttl_overrides: Mapping[str, float] = field(default_factory=dict)
    min_tokens_overrides: Mapping[str, float] = field(default_factory=dict)
    chars_per_token: float = DEFAULT_CHARS_PER_TOKEN

    def ttl_for(self, model: str) -> float:
        """Seconds ``model``'s provider keeps a prefix after its last use."""
        return _override(model, self.ttl_overrides, self.ttl_s)

    def min_tokens_for(self, model: str) -> float:
        """Shortest prompt ``model``'s provider caches, in tokens."""
        return _override(model, self.min_tokens_overrides, self.min_tokens)


@dataclass(frozen=True, slots=True)
class SessionEntry:
    """What one decision of a session left in its model's cache.

    Attributes
    ----------
    model : str
        The model routed to.
    at : float
        When, on the cache's clock (seconds).
    prompt_tokens : float
        That request's prompt tokens on ``model`` (the prefix a later turn can read):
        the measured size, or the cost model's prediction where larger; 0 when its
        cost is not token-based.
    """

    model: str
    at: float
    prompt_tokens: float


@dataclass(frozen=True)
class SessionPrefix:
    """A session's cache state as one request sees it (`SessionCache.lookup`).

    Attributes
    ----------
    model : str or None
        The session's last model (None: a session the router has not seen).
    prompt_tokens : float
        The last request's prompt tokens on ``model``.
    age_s : float or None
        Seconds since that decision.
    warm : bool
        Whether ``model`` still holds its prefix (a candidate of this router, within
        its TTL).
    reason : str or None
        Why the last model's prefix is not warm.
    request_tokens : float or None
        This request's whole prompt, measured: its characters (every message) over
        `CacheRules.chars_per_token`. None: not measured.
    prefixes : dict of str to (float, float)
        Every candidate of the session that still holds a prefix, the last model
        first: ``model -> (prompt tokens, age in seconds)``. All are priced as warm.
    """

    model: str | None
    prompt_tokens: float = 0.0
    age_s: float | None = None
    warm: bool = False
    reason: str | None = None
    request_tokens: float | None = None
    prefixes: Mapping[str, tuple[float, float]] = field(default_factory=dict)


class SessionCache:
    """Per-``session_id`` models, times and prompt tokens, bounded, lock-free.

    See the module docstring for the cost model, the memory bound and why no lock is
    needed.

    Parameters
    ----------
    max_sessions : int, default=100000
        Sessions remembered; beyond it the least recently routed one is evicted.
    rules : CacheRules, optional
        TTL and minimum prompt per model.
    clock : callable returning float, default=time.monotonic
        Seconds; tests and `benchmarks/cache.py` pass a simulated clock.
    models_per_session : int, default=4
        Models remembered per session, the most recently routed first: an earlier
        model of the session still holds the (shorter) prefix of its last turn.

    Examples
    --------
    >>> now = [0.0]
    >>> cache = SessionCache(max_sessions=2, clock=lambda: now[0])
    >>> cache.remember("s1", "gpt-4o", 2000.0)
    >>> now[0] = 60.0
    >>> cache.lookup("s1", ["gpt-4o", "gpt-4o-mini"]).warm
    True
    >>> now[0] = 400.0
    >>> cache.lookup("s1", ["gpt-4o"]).reason
    'the cache of gpt-4o expired: 400 s since its last use, TTL 300 s'
    """

    def __init__(
        self,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        *,
        rules: CacheRules | None = None,
        clock: Callable[[], float] = time.monotonic,
        models_per_session: int = DEFAULT_MODELS_PER_SESSION,
    ) -> None:
        if max_sessions < 1 or models_per_session < 1:
            raise ValueError(
                f"max_sessions and models_per_session must be >= 1, got {max_sessions} and "
                f"{models_per_session}; to turn session-aware routing off, build no "
                "SessionCache (OUTCOME_ROUTER_CACHE_SESSIONS=0)."
            )
        self.max_sessions = max_sessions
        self.models_per_session = models_per_session
        self.rules = rules if rules is not None else CacheRules()
        self.clock = clock
        self._entries: OrderedDict[str, tuple[SessionEntry, ...]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, session_id: str) -> SessionEntry | None:
        """The session's last decision, or None (never seen, or evicted)."""
        entries = self._entries.get(session_id)
        return entries[0] if entries else None

    def entries(self, session_id: str) -> tuple[SessionEntry, ...]:
        """Every remembered model of the session, the most recently routed first."""
        return self._entries.get(session_id, ())

    def lookup(
        self, session_id: str, candidates: Sequence[str], prompt_chars: int | None = None
    ) -> SessionPrefix:
        """The session's prefixes as a request with these ``candidates`` and a whole
        prompt of ``prompt_chars`` characters (`prompt_chars`) sees them."""
        measured = None if prompt_chars is None else prompt_chars / self.rules.chars_per_token
        entries = self._entries.get(session_id)
        if not entries:
            return SessionPrefix(
                model=None, reason="no earlier decision of this session", request_tokens=measured
            )
        now = self.clock()
        prefixes: dict[str, tuple[float, float]] = {}
        reason = None
        for n, entry in enumerate(entries):
            age = max(now - entry.at, 0.0)
            ttl = self.rules.ttl_for(entry.model)
            if entry.model in candidates and age <= ttl:
                prefixes[entry.model] = (entry.prompt_tokens, age)
            elif n == 0 and entry.model not in candidates:
                reason = f"the session's last model {entry.model} is not a candidate of this router"
            elif n == 0:
                reason = (
                    f"the cache of {entry.model} expired: {age:.0f} s since its last use, "
                    f"TTL {ttl:.0f} s"
                )
        last = entries[0]
        return SessionPrefix(
            model=last.model,
            prompt_tokens=last.prompt_tokens,
            age_s=max(now - last.at, 0.0),
            warm=reason is None,
            reason=reason,
            request_tokens=measured,
            prefixes=prefixes,
        )

    def remember(self, session_id: str, model: str, prompt_tokens: float) -> None:
        """Record a session's decision: ``model`` now holds a ``prompt_tokens`` prefix."""
        entries = self._entries
        earlier = entries.get(session_id, ())
        kept = tuple(e for e in earlier if e.model != model)[: self.models_per_session - 1]
        entries[session_id] = (SessionEntry(model, self.clock(), float(prompt_tokens)), *kept)
        # KeyError: evicted by another thread in between; it is simply new again.
        with contextlib.suppress(KeyError):
            entries.move_to_end(session_id)
        while len(entries) > self.max_sessions:
            try:
                entries.popitem(last=False)
            except KeyError:  # emptied by other threads meanwhile
                break

    def forget(self, session_id: str) -> None:
        """Drop a session's entries (a no-op if it has none)."""
        self._entries.pop(session_id, None)


def prompt_chars(
    prompt: str | None = None, messages: Sequence[Mapping[str, Any]] | None = None
) -> int:
    """Characters of a request's whole prompt: ``prompt``, else every message's text.

    Examples
    --------
    >>> prompt_chars(messages=[{"role": "system", "content": "Be brief."},
    ...                        {"role": "user", "content": "hi"}])
    11
    """
    if prompt:
        return len(prompt)
    return sum(len(message_text(m.get("content"))) for m in messages or ())
