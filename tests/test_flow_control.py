"""Bounded queues: every request gets exactly one answer, under any load."""

from __future__ import annotations

import asyncio
import sys

import orjson
import pytest

from kernel import RpcError
from tests.conftest import subprocess_env

INIT = (
    b'{"id":"init","method":"initialize","params":{"clientInfo":'
    b'{"name":"flood","version":"1"}}}\n{"method":"initialized"}\n'
)


async def _spawn(tmp_path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kernel",
        "run",
        "--plugins",
        "echo,probe",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=subprocess_env(tmp_path / "home", {"KERNEL_LOG": "warning"}),
        limit=1 << 24,
    )


async def test_100k_pipelined_requests_get_100k_answers(tmp_path, checker):
    total = 100_000
    proc = await _spawn(tmp_path)
    assert proc.stdin and proc.stdout

    async def write_all() -> None:
        proc.stdin.write(INIT)
        batch = []
        for i in range(total):
            batch.append(b'{"id":%d,"method":"echo/echo","params":{"message":"m%d"}}' % (i, i))
            if len(batch) == 1000:
                proc.stdin.write(b"\n".join(batch) + b"\n")
                batch.clear()
                await proc.stdin.drain()
        proc.stdin.close()

    writer = asyncio.ensure_future(write_all())
    seen = bytearray(total)
    results = errors = 0
    init_answer = None
    async with asyncio.timeout(240):
        while line := await proc.stdout.readline():
            msg = orjson.loads(line)
            if msg["id"] == "init":
                init_answer = msg
                continue
            if msg["id"] % 100 == 0:  # envelopes of a sample; echo/* has no reference shape
                checker.check_server_frame(msg, {})
            seen[msg["id"]] += 1
            if "result" in msg:
                assert msg["result"] == {"message": f"m{msg['id']}"}
                results += 1
            else:
                errors += 1
    await writer
    assert await proc.wait() == 0
    checker.check_server_frame(init_answer, {"init": "initialize"})
    assert results + errors == total
    assert seen.count(1) == total  # each id answered exactly once
    assert errors == 0, f"{errors} requests were rejected"


async def test_full_handler_slots_answer_overloaded_then_recover(serve):
    args = ["-c", "kernel.max_in_flight=2", "-c", "kernel.overload_timeout_seconds=0.3"]
    async with serve(args=args) as s:
        c = s.client
        await c.initialize()
        slow = [c.request_nowait("probe/sleep", {"ms": 1500, "label": f"s{i}"}) for i in range(2)]
        await c.drain()
        await asyncio.sleep(0.2)
        # Both slots are busy: the next async request waits, then is rejected.
        with pytest.raises(RpcError) as first:
            await c.request("probe/sleep", {"ms": 1, "label": "x"})
        assert (first.value.code, first.value.message) == (
            -32001,
            "Server overloaded; retry later.",
        )
        # While still saturated, rejection is immediate.
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(RpcError, match="Server overloaded"):
            await c.request("echo/echo", {"message": "y"})
        assert loop.time() - started < 0.3
        # Synchronous handlers hold no slot and are still served.
        assert (await c.request("probe/state"))["state"] == {"opened": True}
        assert [await f for f in slow] == [{"label": "s0"}, {"label": "s1"}]
        assert await c.request("echo/echo", {"message": "z"}) == {"message": "z"}


async def test_client_that_stops_reading_stops_being_read(tmp_path, checker):
    """The server stops reading (flow control) instead of dropping or buffering without bound."""
    proc = await _spawn(tmp_path, "-c", "kernel.max_outbound_messages=64")
    assert proc.stdin and proc.stdout
    count, size = 3000, 20_000  # 60 MB of answers: far beyond every buffer
    payload = "x" * size

    async def write_all() -> None:
        proc.stdin.write(INIT)
        for i in range(count):
            proc.stdin.write(
                orjson.dumps({"id": i, "method": "echo/echo", "params": {"message": payload}})
                + b"\n"
            )
            await proc.stdin.drain()

    writer = asyncio.ensure_future(write_all())
    await asyncio.sleep(2.0)
    # Nobody reads stdout, so the server must have stopped reading stdin.
    assert not writer.done(), "server kept reading although its answers could not be written"
    answered = 0
    async with asyncio.timeout(120):
        while answered < count + 1:
            line = await proc.stdout.readline()
            assert line, "server closed before answering everything"
            msg = orjson.loads(line)
            assert "result" in msg, msg
            checker.check_server_frame(msg, {"init": "initialize"})
            answered += 1
    await writer
    proc.stdin.close()
    assert await proc.wait() == 0
