"""The decision pool on its own: results, errors, the timeout, the admission bound and
the cancellation of work whose caller has given up."""

from __future__ import annotations

import asyncio
import threading

import pytest

from serving.deadline import DecisionRunner, Overloaded


@pytest.fixture
def runner():
    pool = DecisionRunner(threads=1, max_pending=1)
    yield pool
    pool.close()


def test_result_and_errors_come_back(runner):
    assert asyncio.run(runner.run(lambda: "ok", timeout_s=10.0)) == "ok"

    def fail() -> None:
        raise KeyError("inside the decision")

    with pytest.raises(KeyError, match="inside the decision"):
        asyncio.run(runner.run(fail, timeout_s=10.0))


def test_the_caller_stops_waiting_at_the_timeout_and_queued_work_never_runs(runner):
    gate, ran = threading.Event(), []

    async def scenario() -> None:
        blocking = asyncio.ensure_future(runner.run(gate.wait, timeout_s=30.0))
        await asyncio.sleep(0)  # the first call holds the only thread
        with pytest.raises(TimeoutError, match=r"^$"):  # asyncio.timeout's, no message
            await runner.run(lambda: ran.append("queued"), timeout_s=0.05)
        assert not gate.is_set(), "the timeout waited for the running work"
        gate.set()
        assert await blocking is True

    asyncio.run(scenario())
    asyncio.run(runner.run(lambda: None, timeout_s=10.0))  # drains the pool
    assert ran == [], "work whose caller gave up while it was queued still ran"


def test_admission_is_bounded_and_slots_come_back(runner):
    gate = threading.Event()

    async def scenario() -> None:
        held = [asyncio.ensure_future(runner.run(gate.wait, timeout_s=30.0)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded, match="2 decisions are already in flight"):
            await runner.run(lambda: None, timeout_s=30.0)
        gate.set()
        await asyncio.gather(*held)
        # Both slots are free again.
        assert await asyncio.gather(*(runner.run(lambda: 1, 30.0) for _ in range(2))) == [1, 1]

    asyncio.run(scenario())


def test_a_closed_runner_refuses_work():
    runner = DecisionRunner(threads=1)
    runner.close()
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        asyncio.run(runner.run(lambda: None, timeout_s=1.0))
