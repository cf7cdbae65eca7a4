"""What handlers may rely on when the worker pool runs them without a task each."""

from __future__ import annotations

import asyncio


async def test_handler_keeps_its_own_task_and_context(serve):
    """asyncio.timeout, TaskGroup and contextvars behave as in a task of its own.

    Regression: a handler's timeout once cancelled the connection's reader,
    because the handler had started inside the reader's task.
    """
    async with serve() as s:
        await s.client.initialize()
        calls = [s.client.request_nowait("probe/taskSemantics") for _ in range(5)]
        await s.client.drain()
        results = await asyncio.gather(*calls)
        for request_id, result in zip(range(2, 7), results, strict=True):
            assert result == {
                "tagSeenAtStart": None,
                "timedOut": True,
                "child": "child done",
                "sameTask": True,
                "tagAtEnd": f"request {request_id}",
            }
        # The connection is intact afterwards.
        assert await s.client.request("echo/echo", {"message": "alive"}) == {"message": "alive"}
        assert s.process.returncode is None


async def test_many_waiting_handlers_and_quick_ones_interleave(serve):
    async with serve() as s:
        await s.client.initialize()
        slow = [
            s.client.request_nowait("probe/sleep", {"ms": 300, "label": f"s{i}"})
            for i in range(100)
        ]
        quick = [s.client.request_nowait("echo/echo", {"message": str(i)}) for i in range(100)]
        await s.client.drain()
        assert await asyncio.gather(*quick) == [{"message": str(i)} for i in range(100)]
        assert not any(f.done() for f in slow)
        assert await asyncio.gather(*slow) == [{"label": f"s{i}"} for i in range(100)]


async def test_in_flight_limit_stops_reading_without_rejecting(serve):
    """With the default overload timeout, saturation delays requests; none is refused."""
    async with serve(args=["-c", "kernel.max_in_flight=4"]) as s:
        await s.client.initialize()
        calls = [
            s.client.request_nowait("probe/sleep", {"ms": 100, "label": str(i)}) for i in range(40)
        ]
        await s.client.drain()
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await asyncio.gather(*calls) == [{"label": str(i)} for i in range(40)]
        # 40 requests, 4 at a time, 100 ms each: at least ten rounds.
        assert loop.time() - started >= 0.9
