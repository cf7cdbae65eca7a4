"""Stdio MCP servers are child processes: none is left behind on any exit path.

Each server's command line carries a unique marker (``--marker``) so the
tests count its processes in /proc, as tests/test_process_teardown.py does.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys

import pytest

from kernel import RpcError
from tests.support.mcp_agent import SERVER_SCRIPT, config_toml, mcp_agent, mcp_call, stdio_server
from tests.support.model_server import text
from tests.test_mcp_tools import items
from tests.test_process_teardown import gone, new_marker, running

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")


async def started(agent, thread_id: str | None = None) -> None:
    params = {} if thread_id is None else {"threadId": thread_id}
    status = await agent.client.request("mcpServerStatus/list", params)
    assert all(s["runtimeStatus"] in ("connected", "disabled") for s in status["data"]), status


async def test_sigterm_reaps_every_server(serve, model_server):
    markers = [new_marker(), new_marker()]
    servers = {f"s{i}": stdio_server(f"s{i}", marker=m) for i, m in enumerate(markers)}
    async with mcp_agent(serve, model_server, servers, close=False) as agent:
        await started(agent)
        assert all(len(running(m)) == 1 for m in markers)
        agent.served.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(agent.served.process.wait(), 30) == 0
    for marker in markers:
        assert await gone(marker) == []


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
async def test_a_killed_kernel_takes_its_servers_along(serve, model_server):
    marker = new_marker()
    async with mcp_agent(
        serve, model_server, {"demo": stdio_server(marker=marker)}, close=False
    ) as agent:
        await started(agent)
        assert len(running(marker)) == 1
        agent.served.process.kill()
        await agent.served.process.wait()
    assert await gone(marker) == []


async def test_reload_stops_old_servers_after_their_calls(serve, model_server, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    old, new = new_marker(), new_marker()
    (home / "config.toml").write_text(config_toml({"demo": stdio_server(marker=old)}))
    arrived, release = asyncio.Event(), asyncio.Event()

    async def handler(params):
        arrived.set()
        await release.wait()
        return {"action": "accept", "content": {"name": "Ada"}}

    model_server.responses.extend([mcp_call("ask"), text("done")])
    async with mcp_agent(serve, model_server, {}, home=home) as agent:
        agent.client.on_request("mcpServer/elicitation/request", handler)
        thread_id = (await agent.start())["thread"]["id"]
        await agent.begin(thread_id)
        await asyncio.wait_for(arrived.wait(), 20)
        (home / "config.toml").write_text(config_toml({"fresh": stdio_server("fresh", marker=new)}))
        assert await agent.client.request("config/mcpServer/reload") == {}
        # The call in flight keeps its server until it ends.
        assert len(running(old)) == 1
        release.set()
        notes = await agent.until("turn/completed")
        assert items(notes)[0]["status"] == "completed"
        assert await gone(old) == []
        status = await agent.client.request("mcpServerStatus/list", {})
        assert [s["name"] for s in status["data"]] == ["fresh"]
        assert len(running(new)) == 1
        # An invalid configuration is refused; the servers keep running.
        (home / "config.toml").write_text('[mcp_servers.bad]\nurl = "ftp://x"\n')
        with pytest.raises(RpcError) as err:
            await agent.client.request("config/mcpServer/reload")
        assert err.value.code == -32600
        assert "mcp_servers.bad.url: must be an http:// or https:// URL" in err.value.message
        assert len(running(new)) == 1
    assert await gone(new) == []


async def test_a_crashed_server_is_started_again(serve, model_server):
    marker = new_marker()
    model_server.responses.extend([mcp_call("pid"), text("one")])
    async with mcp_agent(serve, model_server, {"demo": stdio_server(marker=marker)}) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        _, notes = await agent.turn(thread_id)
        pid = items(notes)[0]["result"]["structuredContent"]["result"]
        os.kill(pid, signal.SIGKILL)
        assert await gone(marker) == []
        model_server.responses.extend([mcp_call("read_echo", {"text": "x"}, "c2"), text("two")])
        _, notes = await agent.turn(thread_id)
        (failed,) = items(notes)
        assert failed["status"] == "failed" and failed["error"]["message"].startswith(
            "tool call error"
        )
        model_server.responses.extend([mcp_call("read_echo", {"text": "y"}, "c3"), text("three")])
        _, notes = await agent.turn(thread_id)
        statuses = [
            n.params["status"] for n in notes if n.method == "mcpServer/startupStatus/updated"
        ]
        assert statuses == ["starting", "ready"]
        assert items(notes)[0]["status"] == "completed"
        assert len(running(marker)) == 1
        assert json.dumps(items(notes)[0]["result"]["structuredContent"]) == '{"result": "read:y"}'


async def test_threads_share_one_server_process(serve, model_server):
    marker = new_marker()
    model_server.responses.extend(
        [mcp_call("pid"), text("one"), mcp_call("pid", None, "c2"), text("two")]
    )
    async with mcp_agent(serve, model_server, {"demo": stdio_server(marker=marker)}) as agent:
        first = (await agent.start())["thread"]["id"]
        _, one = await agent.turn(first)
        second = (await agent.start())["thread"]["id"]
        _, two = await agent.turn(second)
        assert len(running(marker)) == 1
    pids = [items(n)[0]["result"]["structuredContent"]["result"] for n in (one, two)]
    assert pids[0] == pids[1]
    # Each thread is told about the server once: the second finds it ready.
    announced = [
        [(n.params["threadId"], n.params["status"]) for n in notes if "startupStatus" in n.method]
        for notes in (one, two)
    ]
    assert announced == [[(first, "starting"), (first, "ready")], [(second, "ready")]]
    assert await gone(marker) == []


async def test_a_server_that_never_answers_times_out_and_is_reaped(serve, model_server):
    marker = new_marker()
    servers = {"mute": {"command": "sleep", "args": [marker], "startup_timeout_sec": 0.5}}
    async with mcp_agent(serve, model_server, servers) as agent:
        status = await agent.client.request("mcpServerStatus/list", {})
        (mute,) = status["data"]
        assert mute["runtimeStatus"] == "failed"
        assert mute["toolsError"] == "timed out after 0.5s (mcp_servers.mute.startup_timeout_sec)"
        assert await gone(marker) == []


def owner_tasks(name: str) -> list[asyncio.Task]:
    """The MCP client tasks of server ``name`` still running in this test's loop."""
    return [t for t in asyncio.all_tasks() if t.get_name() == f"mcp-{name}" and not t.done()]


async def test_a_crashed_servers_client_is_stopped_and_replaced():
    """The owner task of a server that died ends (client and transport closed) once a call
    finds the connection closed; the replacement is the only one, and close leaves nothing."""
    from mcp.shared.exceptions import MCPError

    from plugins_builtin.mcp.config import ServerSpec
    from plugins_builtin.mcp.manager import McpManager

    marker = new_marker()
    args = (str(SERVER_SCRIPT), "--name", "demo", "--marker", marker)
    spec = ServerSpec(name="demo", transport="stdio", command=sys.executable, args=args)

    async def notify(thread_id: str | None, params: dict) -> None:
        pass

    manager = McpManager({"demo": spec}, notify)
    try:
        old = await manager.ensure("demo", None)
        pid = (await old.call_tool("pid", None, timeout=10)).structured_content["result"]
        os.kill(pid, signal.SIGKILL)
        assert await gone(marker) == []
        with pytest.raises(MCPError):
            await old.call_tool("read_echo", {"text": "x"}, timeout=10)
        async with asyncio.timeout(10):
            while owner_tasks("demo"):
                await asyncio.sleep(0.05)
        new = await manager.ensure("demo", None)
        assert new is not old and new.ready and len(running(marker)) == 1
        assert len(owner_tasks("demo")) == 1
    finally:
        await manager.close()
    assert await gone(marker) == []
    assert [
        t for t in asyncio.all_tasks() if t.get_name().startswith("mcp-") and not t.done()
    ] == []
