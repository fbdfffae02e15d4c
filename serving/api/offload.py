"""Where a plain-``def`` endpoint runs: on the event loop or in the thread pool.

FastAPI runs a ``def`` endpoint in its thread pool, and then validates its return
value in the thread pool again: two thread hand-offs per request, each a wake-up of
another thread that costs tens of microseconds on an idle machine and milliseconds on
a loaded one (measured: README "Speed"). That buys parallelism only when the work
releases the GIL for long: onnxruntime running MiniLM does (milliseconds per call,
two calls in parallel on two cores); the static encoder does not (a tokenizer call
and a numpy mean, about a millisecond, mostly under the GIL).

`offload_when_slow` wraps such an endpoint in an ``async def`` that calls it in the
thread pool only when the loaded scorer says it is worth it (``scorer.offload``),
and inline otherwise; either way the response is validated on the loop.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool


def offload_when_slow(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a ``def`` endpoint whose ``service`` argument holds the scorer.

    Coroutine functions are returned unchanged. The signature FastAPI reads is the
    endpoint's own (``functools.wraps``).
    """
    if inspect.iscoroutinefunction(endpoint):
        return endpoint

    @functools.wraps(endpoint)
    async def run(*args: Any, **kwargs: Any) -> Any:
        service = kwargs.get("service")
        scorer = getattr(service, "scorer", None)
        if scorer is not None and getattr(scorer, "offload", True) is False:
            return endpoint(*args, **kwargs)
        return await run_in_threadpool(endpoint, *args, **kwargs)

    return run
