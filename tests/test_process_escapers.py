"""Containment: descendants that leave their process group still die with their command.

A child that calls ``setsid()`` or double-forks into a daemon escapes a
process-group kill. With the sandbox plugin every command runs in its own
PID namespace (bubblewrap ``--unshare-pid --die-with-parent``), so every
exit path, including a server ``kill -9``, ends them. With the process
plugin alone the fallback (parent-death signal + an environment token swept
from /proc) covers every path but a server ``kill -9``: docs/process.md says
so, and the last test pins that limit down.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys

import pytest

from tests.conftest import subprocess_env
from tests.test_process_teardown import HELPER, gone, new_marker, running

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")

WITH_SANDBOX = ("process", "sandbox")
PROCESS_ONLY = ("process",)
BOTH = pytest.mark.parametrize(
    "plugins",
    [
        pytest.param(
            WITH_SANDBOX,
            id="pid-namespace",
            marks=pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap"),
        ),
        pytest.param(PROCESS_ONLY, id="fallback"),
    ],
)


def escapers(marker: str, *, stay: bool = True) -> list[str]:
    """A command whose children leave its process group: setsid, a daemon, a python setsid."""
    script = (
        f"setsid sleep {marker} & "
        f"(sleep {marker} &) ; "
        f"{sys.executable} -c 'import os, time; os.setsid(); os.fork() or time.sleep(600)' "
        f"{marker} & "
    )
    return ["sh", "-c", script + (f"sleep {marker}" if stay else "true")]


FULL = {"sandboxPolicy": {"type": "dangerFullAccess"}}


async def at_least(marker: str, count: int) -> None:
    async with asyncio.timeout(15):
        while len(running(marker)) < count:
            await asyncio.sleep(0.05)


@BOTH
async def test_escapers_die_when_their_command_exits(serve, plugins):
    marker = new_marker()
    async with serve(plugins=list(plugins)) as served:
        await served.client.initialize(experimental=True)
        request = {"command": escapers(marker, stay=False), "cwd": "/", **FULL}
        assert (await served.client.request("command/exec", request))["exitCode"] == 0
        assert await gone(marker) == []


@BOTH
async def test_escapers_die_on_terminate_and_timeout(serve, plugins):
    marker = new_marker()
    async with serve(plugins=list(plugins)) as served:
        client = served.client
        await client.initialize(experimental=True)
        running_exec = client.request_nowait(
            "command/exec",
            {"command": escapers(marker), "processId": "p", "disableTimeout": True, **FULL},
        )
        await at_least(marker, 4)
        await client.request("command/exec/terminate", {"processId": "p"})
        assert (await running_exec)["exitCode"] == 137
        assert await gone(marker) == []
        timed = {"command": escapers(marker), "timeoutMs": 500, **FULL}
        assert (await client.request("command/exec", timed))["exitCode"] == 124
        assert await gone(marker) == []


@BOTH
async def test_escapers_die_when_the_connection_closes(listen, plugins):
    marker = new_marker()
    async with listen(plugins=plugins) as server:
        client = await server.connect()
        await client.initialize(experimental=True)
        client.request_nowait(
            "command/exec", {"command": escapers(marker), "disableTimeout": True, **FULL}
        )
        await client.request(
            "process/spawn",
            {"command": escapers(marker), "cwd": "/", "processHandle": "s"},
        )
        await at_least(marker, 8)
        await client.close()
        assert await gone(marker) == []


@BOTH
async def test_escapers_die_when_the_client_is_killed(listen, plugins):
    marker = new_marker()
    async with listen(plugins=plugins) as server:
        helper = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HELPER),
            server.url(),
            "--escapers",
            marker,
            stdout=asyncio.subprocess.PIPE,
            env=subprocess_env(server.home),
        )
        assert helper.stdout is not None
        assert (await asyncio.wait_for(helper.stdout.readline(), 30)).strip() == b"ready"
        await at_least(marker, 4)
        helper.kill()
        await helper.wait()
        assert await gone(marker) == []


@BOTH
async def test_escapers_die_on_server_sigterm(serve, plugins):
    marker = new_marker()
    async with serve(plugins=list(plugins), close=False) as served:
        await served.client.initialize(experimental=True)
        await served.client.request(
            "process/spawn", {"command": escapers(marker), "cwd": "/", "processHandle": "s"}
        )
        await at_least(marker, 4)
        served.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(served.process.wait(), 30) == 0
        assert await gone(marker) == []


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
async def test_with_the_sandbox_nothing_survives_a_server_kill_9(serve):
    marker = new_marker()
    async with serve(plugins=list(WITH_SANDBOX), close=False) as served:
        client = served.client
        await client.initialize(experimental=True)
        await client.request(
            "process/spawn", {"command": escapers(marker), "cwd": "/", "processHandle": "s"}
        )
        client.request_nowait(
            "command/exec",
            {"command": escapers(marker), "processId": "p", "tty": True, "disableTimeout": True},
        )
        await at_least(marker, 8)
        served.process.kill()
        await served.process.wait()
        assert await gone(marker) == []


async def test_without_the_sandbox_a_server_kill_9_spares_only_detached_descendants(serve):
    """The documented limit of the fallback: the command itself dies, its escapers do not."""
    marker = new_marker()
    async with serve(plugins=list(PROCESS_ONLY), close=False) as served:
        await served.client.initialize(experimental=True)
        await served.client.request(
            "process/spawn",
            {"command": ["sleep", marker], "cwd": "/", "processHandle": "plain"},
        )
        await at_least(marker, 1)
        served.process.kill()
        await served.process.wait()
        assert await gone(marker) == []
