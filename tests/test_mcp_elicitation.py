"""An MCP server's ``elicitation/create`` becomes ``mcpServer/elicitation/request``.

The stdio test server records what it got back in ``MCP_TEST_LOG``, so each
test checks both sides: what the client was asked and what the MCP server
received.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.support.agent import agent_server, methods
from tests.support.mcp_agent import mcp_agent, mcp_call, server_args, stdio_server
from tests.support.model_server import text
from tests.support.tools import output_of
from tests.test_mcp_tools import items


def logged(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def server(tmp_path, **fields) -> dict:
    return stdio_server(env={"MCP_TEST_LOG": str(tmp_path / "mcp.log")}, **fields)


@pytest.mark.parametrize(
    ("answer", "action", "content", "output"),
    [
        (
            {"action": "accept", "content": {"name": "Ada", "age": 36}},
            "accept",
            {"name": "Ada", "age": 36},
            "accept:Ada",
        ),
        ({"action": "decline", "content": None}, "decline", None, "decline:"),
        ({"action": "cancel", "content": None, "_meta": None}, "cancel", None, "cancel:"),
    ],
)
async def test_form_elicitation_round_trip(
    serve, model_server, tmp_path, answer, action, content, output
):
    model_server.responses.extend([mcp_call("ask"), text("done")])
    asked = []

    async def handler(params):
        asked.append(params)
        return answer

    async with mcp_agent(serve, model_server, {"demo": server(tmp_path)}) as agent:
        agent.client.on_request("mcpServer/elicitation/request", handler)
        thread_id = (await agent.start())["thread"]["id"]
        result, notes = await agent.turn(thread_id)
    (params,) = asked
    assert params == {
        "threadId": thread_id,
        "turnId": result["turn"]["id"],
        "serverName": "demo",
        "mode": "form",
        "_meta": None,
        "message": "Who are you?",
        # The SDK's schema carries a top-level title the protocol has no room for.
        "requestedSchema": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "title": "Name"},
                "age": {"type": "integer", "title": "Age", "default": 0},
            },
            "required": ["name"],
        },
    }
    assert logged(tmp_path / "mcp.log") == [
        {"event": "elicited", "tool": "ask", "action": action, "content": content}
    ]
    assert output_of(model_server, "c1").endswith(
        json.dumps({"result": output}, separators=(",", ":"))
    )
    order = methods(notes)
    assert (
        order.index("item/started[mcpToolCall]")
        < order.index("serverRequest/resolved")
        < order.index("item/completed[mcpToolCall]")
    )
    assert (
        next(n for n in notes if n.method == "serverRequest/resolved").params["threadId"]
        == thread_id
    )
    flags = [
        n.params["status"].get("activeFlags") for n in notes if n.method == "thread/status/changed"
    ]
    assert ["waitingOnApproval"] in flags


async def test_url_elicitation_and_an_unshowable_form(serve, model_server, tmp_path):
    model_server.responses.extend(
        [mcp_call("ask_url", None, "c1"), mcp_call("ask_nested", None, "c2"), text("done")]
    )
    asked = []

    async def handler(params):
        asked.append(params)
        return {"action": "accept", "content": None}

    async with mcp_agent(serve, model_server, {"demo": server(tmp_path)}) as agent:
        agent.client.on_request("mcpServer/elicitation/request", handler)
        thread_id = (await agent.start())["thread"]["id"]
        result, _ = await agent.turn(thread_id)
    (params,) = asked  # the nested form was never shown
    assert params == {
        "threadId": thread_id,
        "turnId": result["turn"]["id"],
        "serverName": "demo",
        "mode": "url",
        "_meta": None,
        "message": "Sign in, please",
        "url": "https://example.com/login",
        "elicitationId": "login-1",
    }
    assert logged(tmp_path / "mcp.log") == [
        {"event": "elicited", "tool": "ask_url", "action": "accept", "content": None},
        {"event": "elicited", "tool": "ask_nested", "action": "cancel", "content": None},
    ]


async def test_interrupt_while_an_elicitation_is_pending(serve, model_server, tmp_path):
    model_server.responses.append(mcp_call("ask"))
    arrived = asyncio.Event()
    release = asyncio.Event()

    async def handler(params):
        arrived.set()
        await release.wait()
        return {"action": "accept", "content": {"name": "late"}}

    async with mcp_agent(serve, model_server, {"demo": server(tmp_path)}) as agent:
        agent.client.on_request("mcpServer/elicitation/request", handler)
        thread_id = (await agent.start())["thread"]["id"]
        turn_id = await agent.begin(thread_id)
        await asyncio.wait_for(arrived.wait(), 20)
        await agent.client.request("turn/interrupt", {"threadId": thread_id, "turnId": turn_id})
        notes = await agent.until("turn/completed")
        release.set()
        # The thread stays usable: the next turn uses the same server.
        model_server.responses.extend([mcp_call("read_echo", {"text": "again"}, "c2"), text("ok")])
        _, later = await agent.turn(thread_id)
    order = methods(notes)
    assert (
        order.index("serverRequest/resolved")
        < order.index("item/completed[mcpToolCall]")
        < order.index("turn/completed")
    )
    (item,) = items(notes)
    assert item["status"] == "failed" and item["error"] == {"message": "the turn was interrupted"}
    assert notes[-1].params["turn"]["status"] == "interrupted"
    last_status = [n for n in notes if n.method == "thread/status/changed"][-1]
    assert last_status.params["status"] == {"type": "idle"}
    # The MCP server saw its request end: cancelled by us, or its call withdrawn.
    async with asyncio.timeout(10):
        while not logged(tmp_path / "mcp.log"):
            await asyncio.sleep(0.05)
    (event,) = logged(tmp_path / "mcp.log")
    assert event == {"event": "interrupted", "tool": "ask"} or event["action"] == "cancel"
    assert items(later)[0]["status"] == "completed"


async def test_never_policy_declines_without_asking(serve, model_server, tmp_path):
    model_server.responses.extend([mcp_call("ask"), text("done")])
    asked = []
    async with mcp_agent(serve, model_server, {"demo": server(tmp_path)}) as agent:
        agent.client.on_request("mcpServer/elicitation/request", lambda p: asked.append(p))
        thread_id = (await agent.start(approvalPolicy="never"))["thread"]["id"]
        await agent.turn(thread_id)
        granular = {
            "granular": {
                "sandbox_approval": True,
                "rules": True,
                "skill_approval": True,
                "request_permissions": True,
                "mcp_elicitations": False,
            }
        }
        model_server.responses.extend([mcp_call("ask", None, "c2"), text("done")])
        other = (await agent.start(approvalPolicy=granular))["thread"]["id"]
        await agent.turn(other)
    assert asked == []
    assert [e["action"] for e in logged(tmp_path / "mcp.log")] == ["decline", "decline"]


@pytest.mark.parametrize(
    ("decision", "tool_output", "ask_action"),
    [("accept", "hey", "decline"), ("decline", None, "decline")],
)
async def test_the_reviewer_hook_decides_first(
    serve, model_server, tmp_path, decision, tool_output, ask_action
):
    """review_probe answers approvals with ``{"decision": ...}`` under auto_review."""
    model_server.responses.extend(
        [mcp_call("echo", {"text": "hey"}, "c1"), mcp_call("ask", None, "c2"), text("done")]
    )
    asked = []
    args = server_args({"demo": server(tmp_path)})
    plugins = ("threads", "models", "mcp", "review_probe")
    env = {"KERNEL_PROBE_REVIEW": decision}
    async with agent_server(serve, model_server, args=args, plugins=plugins, env=env) as agent:
        agent.client.on_request("mcpServer/elicitation/request", lambda p: asked.append(p))
        thread_id = (await agent.start(approvalsReviewer="auto_review"))["thread"]["id"]
        _, notes = await agent.turn(thread_id)
    assert asked == []  # the reviewer answered both; the client was never asked
    echo, ask = items(notes)
    if tool_output is None:
        assert echo["error"] == {"message": "user rejected MCP tool call"}
    else:
        assert echo["result"]["structuredContent"] == {"result": tool_output}
    # A decision cannot fill in a form: an elicitation with fields is declined.
    assert [e["action"] for e in logged(tmp_path / "mcp.log")] == [ask_action]
    assert ask["status"] == "completed"


async def test_a_direct_tool_call_asks_its_own_client(serve, model_server, tmp_path):
    asked = []

    async def handler(params):
        asked.append(params)
        return {"action": "accept", "content": {"name": "Bob"}}

    async with mcp_agent(serve, model_server, {"demo": server(tmp_path)}) as agent:
        agent.client.on_request("mcpServer/elicitation/request", handler)
        thread_id = (await agent.start())["thread"]["id"]
        result = await agent.client.request(
            "mcpServer/tool/call", {"threadId": thread_id, "server": "demo", "tool": "ask"}
        )
        notes = await agent.drain()
    assert result["structuredContent"] == {"result": "accept:Bob"}
    (params,) = asked
    assert params["turnId"] is None and params["threadId"] == thread_id
    assert [n.params["threadId"] for n in notes if n.method == "serverRequest/resolved"] == [
        thread_id
    ]
