"""Shutdown and lost peers are bounded, whatever is in flight.

Shutdown gives handlers ``kernel.shutdown_grace_seconds``; after that,
cancelled work, the final flush and plugin cleanup get one more second
(``kernel.connection.TEARDOWN_SECONDS``), even when clients stopped reading,
processes are streaming output, or blocking calls hang in their threads.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys

import aiohttp
import pytest

from kernel.connection import TEARDOWN_SECONDS
from tests.conftest import subprocess_env
from tests.test_process_teardown import gone, new_marker, running

# Scheduling noise on a loaded CI machine, on top of the documented bound.
SLACK = 1.5


async def _initialize_raw(ws: aiohttp.ClientWebSocketResponse) -> None:
    await ws.send_str(
        json.dumps(
            {
                "id": 0,
                "method": "initialize",
                "params": {
                    "clientInfo": {"name": "silent", "version": "1"},
                    "capabilities": {"experimentalApi": True},
                },
            }
        )
    )
    await ws.receive()
    await ws.send_str(json.dumps({"method": "initialized"}))


async def test_sigterm_with_streaming_processes_and_silent_clients_respects_grace(listen):
    grace = 2.0
    marker = new_marker()
    script = f"sleep {marker} & yes"
    args = ["-c", f"kernel.shutdown_grace_seconds={grace}"]
    async with listen(plugins=["process"], args=args) as server:
        async with aiohttp.ClientSession() as session:
            sockets = []
            for _ in range(4):
                ws = await session.ws_connect(server.url())
                await _initialize_raw(ws)
                for i in range(7):  # 28 processes; these clients never read again
                    if i % 2:
                        method, params = "process/spawn", {"processHandle": f"h{i}", "cwd": "/"}
                    else:
                        method, params = "command/exec", {"processId": f"p{i}"}
                    params |= {
                        "command": ["sh", "-c", script],
                        "streamStdoutStderr": True,
                        **({"disableTimeout": True} if method == "command/exec" else {}),
                    }
                    await ws.send_str(json.dumps({"id": i + 1, "method": method, "params": params}))
                sockets.append(ws)
            async with asyncio.timeout(20):
                while len(running(marker)) < 28:
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # let output pile up against the silent clients
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert await server.stop() == 0
            took = loop.time() - started
    assert took < grace + TEARDOWN_SECONDS + SLACK, f"shutdown took {took:.1f} s"
    assert not await gone(marker, timeout=5)


async def test_lost_stdout_during_a_silent_command_stops_the_server_at_once(tmp_path):
    marker = new_marker()
    home = tmp_path / "home"
    server = subprocess.Popen(
        [sys.executable, "-m", "kernel", "run", "--plugins", "process"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "server.log").open("wb"),
        env=subprocess_env(home),
    )
    assert server.stdin is not None and server.stdout is not None
    hello = {
        "id": 1,
        "method": "initialize",
        "params": {"clientInfo": {"name": "x", "version": "1"}},
    }
    run = {
        "id": 2,
        "method": "command/exec",
        "params": {"command": ["sleep", marker], "disableTimeout": True},
    }
    server.stdin.write(json.dumps(hello).encode() + b"\n")
    server.stdin.flush()
    server.stdout.readline()
    server.stdin.write(b'{"method":"initialized"}\n' + json.dumps(run).encode() + b"\n")
    server.stdin.flush()
    async with asyncio.timeout(20):
        while not running(marker):
            await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    server.stdout.close()  # the client goes away; stdin stays open, nothing is written
    try:
        code = await asyncio.to_thread(server.wait, 15)
    finally:
        if server.poll() is None:
            server.kill()
    took = loop.time() - started
    assert code == 0
    assert took < TEARDOWN_SECONDS + SLACK, f"noticed the lost stdout after {took:.1f} s"
    assert not await gone(marker, timeout=5)
    assert "stdout closed" in (tmp_path / "server.log").read_text()


async def test_hung_blocking_calls_take_only_their_connections_share(listen):
    args = ["-c", "kernel.blocking_threads_per_connection=2", "-c", "kernel.blocking_threads=4"]
    async with listen(plugins=["probe", "fs"], args=args) as server:
        hog = await server.connect()
        other = await server.connect()
        await hog.initialize()
        await other.initialize()
        # Five calls that would hang far longer than the test: two take the
        # hog's threads, three wait without one and give up at their deadline.
        stuck = [
            hog.request_nowait("probe/block", {"seconds": 3600, "timeoutS": 1.0}) for _ in range(5)
        ]
        await hog.drain()
        async with asyncio.timeout(10):
            for _ in range(20):  # the other client's disk calls still run
                assert (await other.request("fs/getMetadata", {"path": "/"}))["isDirectory"]
        answers = await asyncio.wait_for(asyncio.gather(*stuck), 20)
        assert sorted(a["started"] for a in answers) == [False, False, False, True, True]
        assert all(a["timedOut"] for a in answers)
        # The stuck threads still count against the hog: its next call cannot start.
        late = await hog.request("probe/block", {"seconds": 0, "timeoutS": 0.5})
        assert late == {"timedOut": True, "started": False}
        assert (await other.request("probe/block", {"seconds": 0})) == {"timedOut": False}
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await server.stop(signal.SIGTERM) == 0
        took = loop.time() - started
        await hog.close()
        await other.close()
    grace = 5.0  # the default; nothing is in flight, so it is not even needed
    assert took < grace + TEARDOWN_SECONDS + SLACK, f"shutdown took {took:.1f} s"
    assert "still blocked in their threads" in server.log()


@pytest.mark.parametrize("grace", [0.5])
async def test_sigterm_with_calls_hung_in_threads_respects_grace(listen, grace):
    args = ["-c", f"kernel.shutdown_grace_seconds={grace}"]
    async with listen(plugins=["probe"], args=args) as server:
        client = await server.connect()
        await client.initialize()
        hung = [client.request_nowait("probe/block", {"seconds": 3600}) for _ in range(8)]
        await client.drain()
        await asyncio.sleep(0.3)
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await server.stop() == 0
        took = loop.time() - started
        results = await asyncio.gather(*hung, return_exceptions=True)
        await client.close()
    assert took < grace + TEARDOWN_SECONDS + SLACK, f"shutdown took {took:.1f} s"
    assert all(getattr(r, "code", None) == -32002 for r in results), results
