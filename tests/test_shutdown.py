"""Graceful shutdown: SIGINT, SIGTERM, stdin EOF, lost stdout; always exit 0."""

from __future__ import annotations

import asyncio
import signal

import pytest

from kernel import RpcError


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_signal_finishes_in_flight_work_then_exits_0(serve, sig):
    async with serve(close=False) as s:
        c = s.client
        await c.initialize()
        slow = c.request_nowait("probe/sleep", {"ms": 400, "label": "in-flight"})
        await c.drain()
        await asyncio.sleep(0.1)
        s.process.send_signal(sig)
        assert await slow == {"label": "in-flight"}
        assert await asyncio.wait_for(s.process.wait(), 10) == 0
        events = s.events()
        assert events[0] == "startup"
        assert events.index("slept in-flight") < events.index("shutdown")
        assert events[-2:] == [events[-2], "shutdown"] and events[-2].startswith("closed")
        assert f"received {sig.name}" in s.log()


async def test_stdin_eof_answers_everything_then_exits_0(serve):
    async with serve(close=False) as s:
        c = s.client
        await c.initialize()
        pending = [c.request_nowait("probe/sleep", {"ms": 300, "label": f"r{i}"}) for i in range(5)]
        pending.append(c.request_nowait("echo/echo", {"message": "last"}))
        await c.drain()
        await c.stream.close()  # EOF on the server's stdin
        answers = await asyncio.gather(*pending)
        assert answers[:5] == [{"label": f"r{i}"} for i in range(5)]
        assert answers[5] == {"message": "last"}
        assert await asyncio.wait_for(s.process.wait(), 10) == 0
        assert s.events()[-1] == "shutdown"


async def test_work_beyond_grace_is_cancelled_and_still_answered(serve):
    args = ["-c", "kernel.shutdown_grace_seconds=0.3"]
    async with serve(args=args, close=False) as s:
        c = s.client
        await c.initialize()
        endless = c.request_nowait("probe/sleep", {"ms": 60_000, "label": "endless"})
        await c.drain()
        await asyncio.sleep(0.1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        s.process.send_signal(signal.SIGTERM)
        with pytest.raises(RpcError) as err:
            await endless
        assert (err.value.code, err.value.message) == (
            -32002,
            "Request cancelled: the connection is closing",
        )
        assert await asyncio.wait_for(s.process.wait(), 10) == 0
        assert loop.time() - started < 5
        assert "cancelled endless" in s.events()


async def test_second_signal_skips_the_grace_period(serve):
    async with serve(close=False) as s:
        c = s.client
        await c.initialize()
        endless = c.request_nowait("probe/sleep", {"ms": 60_000, "label": "endless"})
        await c.drain()
        await asyncio.sleep(0.1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        s.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        s.process.send_signal(signal.SIGTERM)
        with pytest.raises(RpcError, match="Request cancelled"):
            await endless
        assert await asyncio.wait_for(s.process.wait(), 10) == 0
        assert loop.time() - started < 4  # the default grace is 5 s
        assert "second SIGTERM" in s.log()
        assert s.events()[-1] == "shutdown"


async def test_lost_stdout_shuts_the_server_down(serve):
    async with serve(close=False) as s:
        c = s.client
        await c.initialize()
        slow = c.request_nowait("probe/sleep", {"ms": 200, "label": "orphan"})
        await c.drain()
        s.process.stdout._transport.close()  # the client goes away without closing stdin
        with pytest.raises(ConnectionError):
            await slow
        assert await asyncio.wait_for(s.process.wait(), 10) == 0
        assert s.events()[-1] == "shutdown"
