"""Preemptive time budget: run a decision on a small pool and stop waiting at the budget.

A thread cannot be stopped from outside, but a request can stop *waiting* for it.
`DecisionRunner.run` hands the decision to a dedicated pool and awaits it with a
timeout on the event loop; when the budget runs out the caller answers the fallback
at once while the abandoned decision finishes in the background (its result is
dropped). Three things keep slow decisions from piling up work:

- the pool has few threads (about one per core: the work is CPU-bound);
- at most ``threads + max_pending`` decisions are admitted at a time; a request
  beyond that is refused at once (`Overloaded`) and answered with the fallback,
  rather than queueing behind work that will miss its budget anyway;
- a decision still queued when its caller gives up is cancelled, so it never
  runs.

The hand-off is one thread hop, the same that FastAPI makes for a ``def`` endpoint,
so an ``async`` endpoint that awaits this pays nothing extra for the budget
(``benchmarks/route_overheads.py`` times it).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class Overloaded(RuntimeError):
    """More decisions are in flight than the runner admits."""


class DecisionRunner:
    """A bounded thread pool that callers on the event loop await with a deadline.

    Parameters
    ----------
    threads : int or None, default=None
        Worker threads; None uses one per core.
    max_pending : int, default=64
        Decisions admitted beyond the busy threads (waiting for one); more are
        refused with `Overloaded`.

    Examples
    --------
    >>> runner = DecisionRunner(threads=1)
    >>> asyncio.run(runner.run(lambda: 6 * 7, timeout_s=5.0))
    42
    >>> runner.close()
    """

    def __init__(self, *, threads: int | None = None, max_pending: int = 64) -> None:
        self.threads = threads or os.cpu_count() or 1
        self.max_pending = max_pending
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="decide")
        self._slots = threading.BoundedSemaphore(self.threads + max_pending)

    async def run(self, fn: Callable[[], T], timeout_s: float) -> T:
        """Run ``fn()`` on the pool; give up waiting after ``timeout_s`` seconds.

        Raises
        ------
        TimeoutError
            When the budget runs out first (a queued ``fn`` is then cancelled; a
            running one finishes unobserved).
        Overloaded
            When ``threads + max_pending`` decisions are already in flight.
        Exception
            Whatever ``fn`` raised.
        """
        if not self._slots.acquire(blocking=False):
            raise Overloaded(
                f"{self.threads + self.max_pending} decisions are already in flight "
                f"({self.threads} threads, {self.max_pending} pending)."
            )
        try:
            future: Future[T] = self._pool.submit(fn)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(self._release)
        # On timeout the task is cancelled, which cancels the awaited wrapper, which
        # cancels `future` if it is still queued. `asyncio.timeout` is one timer
        # handle; `asyncio.wait_for` (3.11) costs an extra future and loop round.
        async with asyncio.timeout(timeout_s):
            return await asyncio.wrap_future(future)

    def _release(self, _: Future[object]) -> None:
        self._slots.release()

    def close(self) -> None:
        """Stop taking work; queued decisions are cancelled, running ones finish."""
        self._pool.shutdown(wait=False, cancel_futures=True)
