"""``mcpServerStatus/list``, ``mcpServer/tool/call``, ``mcpServer/resource/read``."""

from __future__ import annotations

import pytest

from kernel import RpcError
from tests.support.mcp_agent import mcp_agent, stdio_server


async def test_status_list_full_and_brief(serve, model_server):
    servers = {
        "broken": {"command": "/nonexistent/mcp-server"},
        "demo": stdio_server(disabled_tools=["echo"]),
        "off": stdio_server("off", enabled=False),
        "web": {
            "url": "https://user:pw@mcp.example.com:8443/mcp?x=1",
            "bearer_token_env_var": "NO_SUCH_TOKEN_VAR",
        },
    }
    async with mcp_agent(serve, model_server, servers) as agent:
        full = await agent.client.request("mcpServerStatus/list", {})
        notes = await agent.drain()
        brief = await agent.client.request(
            "mcpServerStatus/list", {"detail": "toolsAndAuthOnly", "serverName": "demo"}
        )
    assert full["nextCursor"] is None
    by_name = {s["name"]: s for s in full["data"]}
    assert list(by_name) == ["broken", "demo", "off", "web"]
    demo = by_name["demo"]
    assert demo["runtimeStatus"] == "connected" and demo["authStatus"] == "unsupported"
    assert demo["serverInfo"]["name"] == "demo" and demo["httpOrigin"] is None
    assert demo["serverCapabilities"]["tools"] is not None
    assert "echo" not in demo["tools"] and demo["tools"]["read_echo"]["name"] == "read_echo"
    assert demo["tools"]["read_echo"]["annotations"]["readOnlyHint"] is True
    assert "inputSchema" in demo["tools"]["read_echo"] and demo["toolsError"] is None
    assert [r["uri"] for r in demo["resources"]] == ["res://hello"]
    assert [t["uriTemplate"] for t in demo["resourceTemplates"]] == ["res://greet/{name}"]
    assert by_name["off"] == {
        "name": "off",
        "runtimeStatus": "disabled",
        "pluginId": None,
        "httpOrigin": None,
        "serverInfo": None,
        "serverCapabilities": None,
        "toolListMeta": None,
        "tools": {},
        "toolsError": None,
        "resources": [],
        "resourceTemplates": [],
        "authStatus": "unsupported",
    }
    broken = by_name["broken"]
    assert broken["runtimeStatus"] == "failed" and broken["tools"] == {}
    assert broken["toolsError"] == "MCP startup failed: No such file or directory (os error 2)"
    web = by_name["web"]
    assert (
        web["httpOrigin"] == "https://mcp.example.com:8443" and web["authStatus"] == "bearerToken"
    )
    assert web["toolsError"] == (
        "MCP startup failed: Environment variable NO_SUCH_TOKEN_VAR for MCP server 'web' is not set"
    )
    # Starts made for no thread are announced to every client with threadId null.
    announced = {
        (n.params["name"], n.params["status"])
        for n in notes
        if n.method == "mcpServer/startupStatus/updated"
    }
    assert ("demo", "ready") in announced and ("broken", "failed") in announced
    assert all(
        n.params["threadId"] is None for n in notes if n.method == "mcpServer/startupStatus/updated"
    )
    (only,) = brief["data"]
    assert only["name"] == "demo" and only["resources"] == [] and only["tools"]


async def test_status_list_pages(serve, model_server):
    servers = {name: stdio_server(name, enabled=False) for name in ("a", "b", "c")}
    async with mcp_agent(serve, model_server, servers) as agent:
        first = await agent.client.request("mcpServerStatus/list", {"limit": 2})
        second = await agent.client.request(
            "mcpServerStatus/list", {"limit": 2, "cursor": first["nextCursor"]}
        )
        with pytest.raises(RpcError) as bad:
            await agent.client.request("mcpServerStatus/list", {"cursor": "x"})
        with pytest.raises(RpcError) as thread:
            await agent.client.request("mcpServerStatus/list", {"threadId": "nope"})
    assert [s["name"] for s in first["data"]] == ["a", "b"] and first["nextCursor"] == "2"
    assert [s["name"] for s in second["data"]] == ["c"] and second["nextCursor"] is None
    assert bad.value.code == -32602 and "cursor" in bad.value.message
    assert thread.value.code == -32600 and "thread not found: nope" in thread.value.message


async def test_direct_tool_call(serve, model_server):
    servers = {
        "demo": stdio_server(disabled_tools=["echo"]),
        "off": stdio_server("off", enabled=False),
    }
    async with mcp_agent(serve, model_server, servers) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        call = {"threadId": thread_id, "server": "demo"}
        echoed = await agent.client.request(
            "mcpServer/tool/call", {**call, "tool": "read_echo", "arguments": {"text": "x"}}
        )
        plain = await agent.client.request(
            "mcpServer/tool/call",
            {**call, "tool": "plain", "arguments": {"text": "y"}, "_meta": {"k": 1}},
        )
        unknown_tool = await agent.client.request("mcpServer/tool/call", {**call, "tool": "nosuch"})
        errors = {}
        for name, params in {
            "server": {**call, "server": "zzz", "tool": "echo"},
            "disabled": {**call, "server": "off", "tool": "echo"},
            "hidden": {**call, "tool": "echo"},
            "thread": {"threadId": "nope", "server": "demo", "tool": "echo"},
            "arguments": {**call, "tool": "read_echo", "arguments": [1]},
        }.items():
            with pytest.raises(RpcError) as err:
                await agent.client.request("mcpServer/tool/call", params)
            errors[name] = err.value
    assert echoed == {
        "content": [{"type": "text", "text": "read:x"}],
        "structuredContent": {"result": "read:x"},
        "isError": False,
    }
    assert plain == {"content": [{"type": "text", "text": "plain:y"}], "isError": False}
    assert unknown_tool["isError"] is True and "nosuch" in unknown_tool["content"][0]["text"]
    assert (errors["server"].code, errors["server"].message) == (-32600, "unknown MCP server: zzz")
    assert errors["server"].data == {"field": "server"}
    assert (
        errors["disabled"].code == -32600
        and "mcp_servers.off.enabled" in errors["disabled"].message
    )
    assert errors["hidden"].code == -32600 and "disabled_tools" in errors["hidden"].message
    assert errors["thread"].code == -32600 and "thread not found: nope" in errors["thread"].message
    assert errors["arguments"].code == -32602 and "arguments" in errors["arguments"].message


async def test_resource_read(serve, model_server):
    async with mcp_agent(serve, model_server, {"demo": stdio_server()}) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        read = await agent.client.request(
            "mcpServer/resource/read",
            {"threadId": thread_id, "server": "demo", "uri": "res://hello"},
        )
        templated = await agent.client.request(
            "mcpServer/resource/read", {"server": "demo", "uri": "res://greet/ada"}
        )
        with pytest.raises(RpcError) as missing:
            await agent.client.request(
                "mcpServer/resource/read", {"server": "demo", "uri": "res://nope"}
            )
    assert read == {
        "contents": [{"uri": "res://hello", "mimeType": "text/plain", "text": "hello world"}],
        "originCallId": None,
    }
    assert templated["contents"][0]["text"] == "hello ada"
    assert missing.value.code == -32602 and "res://nope" in missing.value.message
