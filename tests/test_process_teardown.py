"""No orphans: every exit path kills the process groups a connection started.

Each test starts children whose command line carries a unique marker (a
``sleep`` duration nobody else uses) and counts them in /proc afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.conftest import subprocess_env
from tests.support.processes import live_processes

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")

_markers = itertools.count(1)
HELPER = Path(__file__).parent / "support" / "proc_client.py"


def new_marker() -> str:
    return f"{4000 + os.getpid() % 1000}.{next(_markers):04d}"


def running(marker: str) -> list[int]:
    return live_processes(marker)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    ppid = int(handle.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
            if ppid == pid:
                found.append(int(entry))
    return found


async def gone(marker: str, timeout: float = 10.0) -> list[int]:
    """Wait until no live process carries ``marker``; returns the survivors."""
    async with asyncio.timeout(timeout):
        while survivors := running(marker):
            await asyncio.sleep(0.05)
    return survivors


def family(marker: str) -> list[str]:
    return ["sh", "-c", f"sleep {marker} & sleep {marker}"]


@pytest.fixture
async def proc(serve):
    async with serve(plugins=["process"]) as served:
        await served.client.initialize(experimental=True)
        yield served.client


async def test_terminate_kills_the_whole_group(proc):
    marker = new_marker()
    run = asyncio.ensure_future(
        proc.request("command/exec", {"command": family(marker), "processId": "t"})
    )
    async with asyncio.timeout(10):
        while len(running(marker)) < 2:
            await asyncio.sleep(0.05)
    await proc.request("command/exec/terminate", {"processId": "t"})
    assert (await run)["exitCode"] == 137
    assert await gone(marker) == []


async def test_kill_timeout_and_normal_exit_leave_nothing(proc):
    killed, timed, background = new_marker(), new_marker(), new_marker()
    spawn = {"command": family(killed), "cwd": "/", "processHandle": "k"}
    await proc.request("process/spawn", spawn)
    async with asyncio.timeout(10):
        while len(running(killed)) < 2:
            await asyncio.sleep(0.05)
    await proc.request("process/kill", {"processHandle": "k"})
    assert (await proc.next_notification("process/exited")).params["exitCode"] == 137
    assert await gone(killed) == []
    result = await proc.request("command/exec", {"command": family(timed), "timeoutMs": 300})
    assert result["exitCode"] == 124
    assert await gone(timed) == []
    # A command that leaves a background child: the child goes with it.
    script = ["sh", "-c", f"sleep {background} & echo started"]
    assert (await proc.request("command/exec", {"command": script}))["stdout"] == "started\n"
    assert await gone(background, timeout=3) == []


async def test_closing_the_connection_kills_its_processes(listen):
    marker = new_marker()
    async with listen(plugins=("process",)) as server:
        client = await server.connect()
        await client.initialize(experimental=True)
        client.request_nowait("command/exec", {"command": family(marker), "disableTimeout": True})
        tty = {"command": family(marker), "processId": "tty", "tty": True, "disableTimeout": True}
        client.request_nowait("command/exec", tty)
        await client.request(
            "process/spawn", {"command": family(marker), "cwd": "/", "processHandle": "s"}
        )
        async with asyncio.timeout(10):
            while len(running(marker)) < 6:
                await asyncio.sleep(0.05)
        await client.close()
        assert await gone(marker) == []
        assert server.process.returncode is None  # the server itself keeps serving


async def test_client_killed_with_sigkill_over_websocket(listen):
    marker = new_marker()
    async with listen(plugins=("process",)) as server:
        helper = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HELPER),
            server.url(),
            marker,
            stdout=asyncio.subprocess.PIPE,
            env=subprocess_env(server.home),
        )
        assert helper.stdout is not None
        assert (await asyncio.wait_for(helper.stdout.readline(), 30)).strip() == b"ready"
        async with asyncio.timeout(10):
            while len(running(marker)) < 6:
                await asyncio.sleep(0.05)
        helper.kill()
        await helper.wait()
        assert await gone(marker) == []


async def test_client_killed_with_sigkill_over_stdio(tmp_path):
    """The stdio client dies: the server sees EOF, kills everything, and exits."""
    marker = new_marker()
    home = tmp_path / "home"
    helper = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HELPER),
        "stdio",
        str(home),
        marker,
        stdout=asyncio.subprocess.PIPE,
        env=subprocess_env(home),
    )
    assert helper.stdout is not None
    assert (await asyncio.wait_for(helper.stdout.readline(), 30)).strip() == b"ready"
    async with asyncio.timeout(10):
        while len(running(marker)) < 6:
            await asyncio.sleep(0.05)
    servers = children_of(helper.pid)
    assert servers, "the helper's kernel subprocess was not found"
    helper.kill()
    await helper.wait()
    assert await gone(marker) == []
    for pid in servers:  # the orphaned server noticed stdin EOF and exited
        with pytest.raises(ProcessLookupError):
            for _ in range(100):
                os.kill(pid, 0)
                await asyncio.sleep(0.05)


async def test_server_shutdown_kills_processes(serve):
    marker = new_marker()
    async with serve(plugins=["process"], close=False) as served:
        client = served.client
        await client.initialize(experimental=True)
        await client.request(
            "process/spawn", {"command": family(marker), "cwd": "/", "processHandle": "s"}
        )
        async with asyncio.timeout(10):
            while len(running(marker)) < 2:
                await asyncio.sleep(0.05)
        served.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(served.process.wait(), 30) == 0
        assert await gone(marker) == []
