"""MCP tools reach the model as a namespace; each call is an ``mcpToolCall`` item.

A real stdio MCP server (tests/support/mcp_server.py, written with the
official SDK) behind the kernel; the model is the Responses API stand-in.
"""

from __future__ import annotations

import json

from tests.support.agent import methods
from tests.support.mcp_agent import mcp_agent, mcp_call, stdio_server
from tests.support.model_server import function_call, text
from tests.support.tools import item_notes, output_of


def items(notes, kind: str = "mcpToolCall") -> list[dict]:
    return [
        n.params["item"]
        for n in notes
        if n.method == "item/completed" and n.params["item"]["type"] == kind
    ]


async def test_tools_go_to_the_model_as_a_namespace_and_a_call_is_an_item(serve, model_server):
    model_server.responses.extend([mcp_call("read_echo", {"text": "hi"}), text("done")])
    async with mcp_agent(serve, model_server, {"demo": stdio_server()}) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        _, notes = await agent.turn(thread_id)
    tools = model_server.requests[0].body["tools"]
    (namespace,) = [t for t in tools if t.get("type") == "namespace"]
    assert namespace["name"] == "mcp__demo"
    assert namespace["description"] == "Tools in the mcp__demo namespace."
    by_name = {t["name"]: t for t in namespace["tools"]}
    assert by_name["echo"] == {
        "type": "function",
        "name": "echo",
        "description": "Echo the text back.",
        "strict": False,
        # Titles are left out, as the reference does.
        "parameters": {
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
            "type": "object",
        },
    }
    assert list(by_name) == sorted(by_name)
    assert {"list_mcp_resources", "list_mcp_resource_templates", "read_mcp_resource"} <= {
        t.get("name") for t in tools
    }
    # Startup is announced to the thread, then the item's lifecycle.
    statuses = [n.params for n in notes if n.method == "mcpServer/startupStatus/updated"]
    assert [(s["name"], s["status"], s["threadId"]) for s in statuses] == [
        ("demo", "starting", thread_id),
        ("demo", "ready", thread_id),
    ]
    order = methods(notes)
    assert (
        order.index("mcpServer/startupStatus/updated")
        < order.index("item/started[mcpToolCall]")
        < order.index("item/completed[mcpToolCall]")
    )
    started = next(p for m, p in item_notes(notes, "c1") if m == "item/started")["item"]
    assert started["status"] == "inProgress" and started["result"] is None
    (item,) = items(notes)
    assert item["server"] == "demo" and item["tool"] == "read_echo"
    assert item["status"] == "completed" and item["readOnlyHint"] is True
    assert item["arguments"] == {"text": "hi"} and item["error"] is None
    assert item["result"] == {
        "content": [{"type": "text", "text": "read:hi"}],
        "structuredContent": {"result": "read:hi"},
        "_meta": None,
    }
    assert isinstance(item["durationMs"], int)
    output = output_of(model_server, "c1")
    assert output.startswith("Wall time: ") and output.endswith(
        ' seconds\nOutput:\n{"result":"read:hi"}'
    )


async def test_text_images_and_error_results_go_back_to_the_model(serve, model_server):
    model_server.responses.extend(
        [
            mcp_call("plain", {"text": "x"}, "c1"),
            mcp_call("picture", {}, "c2"),
            mcp_call("fail", None, "c3"),
            text("done"),
        ]
    )
    async with mcp_agent(serve, model_server, {"demo": stdio_server()}) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        _, notes = await agent.turn(thread_id)
    plain, picture, failed = items(notes)
    assert plain["status"] == "completed" and plain["result"]["structuredContent"] is None
    header, body = output_of(model_server, "c1")
    assert header["type"] == "input_text" and header["text"].endswith(" seconds\nOutput:")
    assert body == {"type": "input_text", "text": "plain:x"}
    _, caption, image = output_of(model_server, "c2")
    assert caption == {"type": "input_text", "text": "a pixel:"}
    assert image["type"] == "input_image" and image["detail"] == "high"
    assert image["image_url"].startswith("data:image/png;base64,iVBOR")
    assert picture["result"]["content"][1]["type"] == "image"
    # The server's error result: the item fails and keeps the result.
    assert failed["status"] == "failed" and failed["error"] is None
    assert "Error executing tool fail" in json.dumps(failed["result"])
    assert output_of(model_server, "c3")[1]["text"] == "Error executing tool fail"


async def test_progress_becomes_item_progress_notifications(serve, model_server):
    model_server.responses.extend([mcp_call("slow", {"seconds": 0}), text("done")])
    async with mcp_agent(serve, model_server, {"demo": stdio_server()}) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        result, notes = await agent.turn(thread_id)
    progress = [n.params for n in notes if n.method == "item/mcpToolCall/progress"]
    assert progress == [
        {
            "threadId": thread_id,
            "turnId": result["turn"]["id"],
            "itemId": "c1",
            "message": "halfway",
        }
    ]
    order = methods(notes)
    assert (
        order.index("item/started[mcpToolCall]")
        < order.index("item/mcpToolCall/progress")
        < order.index("item/completed[mcpToolCall]")
    )


async def test_tool_filters_timeouts_and_the_environment(serve, model_server, monkeypatch):
    monkeypatch.setenv("MCP_PASSED_THROUGH", "from-the-kernel")
    monkeypatch.setenv("MCP_NOT_PASSED", "secret")
    server = stdio_server(
        enabled_tools=["env", "slow", "echo", "read_echo"],
        disabled_tools=["echo"],
        tool_timeout_sec=0.5,
        env={"MCP_SET_HERE": "configured"},
        env_vars=["MCP_PASSED_THROUGH"],
    )
    model_server.responses.extend(
        [
            mcp_call("env", {"variable": "MCP_SET_HERE"}, "c1"),
            mcp_call("env", {"variable": "MCP_PASSED_THROUGH"}, "c2"),
            mcp_call("env", {"variable": "MCP_NOT_PASSED"}, "c3"),
            mcp_call("echo", {"text": "hidden"}, "c4"),
            mcp_call("slow", {"seconds": 30}, "c5"),
            function_call("nope", "{}", call_id="c6", namespace="mcp__other"),
            text("done"),
        ]
    )
    async with mcp_agent(serve, model_server, {"demo": server}) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        _, notes = await agent.turn(thread_id, timeout=60)
    namespace = next(t for t in model_server.requests[0].body["tools"] if t["name"] == "mcp__demo")
    assert sorted(t["name"] for t in namespace["tools"]) == ["env", "read_echo", "slow"]
    assert output_of(model_server, "c1").endswith('{"result":"configured"}')
    assert output_of(model_server, "c2").endswith('{"result":"from-the-kernel"}')
    assert output_of(model_server, "c3").endswith('{"result":"<unset>"}')
    assert output_of(model_server, "c4").startswith("unsupported call: echo")
    assert output_of(model_server, "c6") == "unsupported call: nope"
    timed_out = next(i for i in items(notes) if i["id"] == "c5")
    assert timed_out["status"] == "failed" and timed_out["result"] is None
    assert timed_out["error"] == {
        "message": "tool call error: timed out after 0.5s (mcp_servers.demo.tool_timeout_sec)"
    }
    assert output_of(model_server, "c5")[1]["text"] == timed_out["error"]["message"]


async def test_a_server_that_cannot_start_is_announced_and_the_turn_goes_on(serve, model_server):
    servers = {
        "broken": {"command": "/nonexistent/mcp-server"},
        "demo": stdio_server(),
        "off": stdio_server(enabled=False),
    }
    model_server.responses.extend([mcp_call("read_echo", {"text": "still"}), text("done")])
    async with mcp_agent(serve, model_server, servers) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        _, notes = await agent.turn(thread_id)
        _, again = await agent.turn(thread_id)
    statuses = {
        (n.params["name"], n.params["status"]): n.params
        for n in notes
        if n.method == "mcpServer/startupStatus/updated"
    }
    assert set(statuses) == {
        ("broken", "starting"),
        ("broken", "failed"),
        ("demo", "starting"),
        ("demo", "ready"),
    }
    assert statuses[("broken", "failed")]["error"] == (
        "MCP client for `broken` failed to start: "
        "MCP startup failed: No such file or directory (os error 2)"
    )
    # Nothing changed since: the second turn announces nothing.
    assert not [n for n in again if n.method == "mcpServer/startupStatus/updated"]
    names = {t.get("name") for t in model_server.requests[0].body["tools"]}
    assert "mcp__demo" in names and "mcp__broken" not in names and "mcp__off" not in names
    assert output_of(model_server, "c1").endswith('{"result":"read:still"}')


async def test_without_servers_nothing_is_offered(serve, model_server):
    model_server.responses.append(text("done"))
    async with mcp_agent(serve, model_server, {}) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        await agent.turn(thread_id)
    names = {t.get("name") for t in model_server.requests[0].body.get("tools", [])}
    assert not any(n and "mcp" in n for n in names)


async def test_resource_tools(serve, model_server):
    model_server.responses.extend(
        [
            function_call("list_mcp_resources", "{}", call_id="c1"),
            function_call("list_mcp_resource_templates", '{"server": "demo"}', call_id="c2"),
            function_call("read_mcp_resource", '{"server": "demo", "uri": "res://hello"}', "c3"),
            function_call("read_mcp_resource", '{"server": "demo", "uri": "res://nope"}', "c4"),
            function_call("read_mcp_resource", '{"server": "zzz", "uri": "res://x"}', "c5"),
            text("done"),
        ]
    )
    async with mcp_agent(serve, model_server, {"demo": stdio_server()}) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        _, notes = await agent.turn(thread_id)
    listed = json.loads(output_of(model_server, "c1"))
    assert [(r["server"], r["uri"]) for r in listed["resources"]] == [("demo", "res://hello")]
    templates = json.loads(output_of(model_server, "c2"))
    assert templates["server"] == "demo"
    assert [t["uriTemplate"] for t in templates["resourceTemplates"]] == ["res://greet/{name}"]
    assert json.loads(output_of(model_server, "c3")) == {
        "server": "demo",
        "uri": "res://hello",
        "contents": [{"uri": "res://hello", "mimeType": "text/plain", "text": "hello world"}],
    }
    assert output_of(model_server, "c4").startswith("read_mcp_resource failed: ")
    assert output_of(model_server, "c5") == "unknown MCP server 'zzz'"
    listing, template, read, missing = items(notes)  # c5 has no item
    assert (listing["server"], listing["tool"], listing["status"]) == (
        "codex",
        "list_mcp_resources",
        "completed",
    )
    assert listing["result"]["content"][0]["text"] == output_of(model_server, "c1")
    assert template["server"] == "demo" and read["status"] == "completed"
    assert missing["status"] == "failed" and "res://nope" in missing["error"]["message"]
