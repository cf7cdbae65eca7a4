"""Approval of the model's MCP tool calls, as the reference 0.169 asks for it.

A tool without annotations (``echo``) asks through ``mcpServer/elicitation/request``
with ``_meta.codex_approval_kind = "mcp_tool_call"``; a read-only one does not.
"""

from __future__ import annotations

import tomllib

import pytest

from tests.support.mcp_agent import config_toml, mcp_agent, mcp_call, stdio_server
from tests.support.model_server import text
from tests.support.tools import output_of
from tests.test_mcp_tools import items


def answering(*answers):
    asked = []
    queue = list(answers)

    async def handler(params):
        asked.append(params)
        return queue.pop(0)

    return asked, handler


async def test_accept_runs_the_call_and_the_request_is_the_references(serve, model_server):
    model_server.responses.extend([mcp_call("echo", {"text": "hey"}), text("done")])
    asked, handler = answering({"action": "accept", "content": None, "_meta": None})
    async with mcp_agent(serve, model_server, {"demo": stdio_server()}) as agent:
        agent.client.on_request("mcpServer/elicitation/request", handler)
        thread_id = (await agent.start())["thread"]["id"]
        result, notes = await agent.turn(thread_id)
    (params,) = asked
    assert params == {
        "threadId": thread_id,
        "turnId": result["turn"]["id"],
        "serverName": "demo",
        "mode": "form",
        "_meta": {
            "codex_approval_kind": "mcp_tool_call",
            "persist": ["session", "always"],
            "tool_name": "echo",
            "tool_description": "Echo the text back.",
            "tool_params": {"text": "hey"},
            "tool_params_display": [{"name": "text", "value": "hey", "display_name": "text"}],
        },
        "message": 'Allow the demo MCP server to run tool "echo"?',
        "requestedSchema": {"type": "object", "properties": {}},
    }
    order = [n.method for n in notes]
    resolved = order.index("serverRequest/resolved")
    assert order.index("item/started") < resolved < order.index("item/completed", resolved)
    flags = [
        n.params["status"].get("activeFlags") for n in notes if n.method == "thread/status/changed"
    ]
    assert ["waitingOnApproval"] in flags
    (item,) = items(notes)
    assert item["status"] == "completed" and item["result"]["structuredContent"] == {
        "result": "hey"
    }


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"action": "decline", "content": None}, "user rejected MCP tool call"),
        ({"action": "cancel", "content": None}, "user cancelled MCP tool call"),
        ({"action": "maybe"}, "user rejected MCP tool call"),  # garbage fails closed
    ],
)
async def test_decline_cancel_and_garbage_skip_the_call(serve, model_server, answer, message):
    model_server.responses.extend([mcp_call("echo", {"text": "hey"}), text("done")])
    asked, handler = answering(answer)
    async with mcp_agent(serve, model_server, {"demo": stdio_server()}) as agent:
        agent.client.on_request("mcpServer/elicitation/request", handler)
        thread_id = (await agent.start())["thread"]["id"]
        _, notes = await agent.turn(thread_id)
    assert len(asked) == 1
    (item,) = items(notes)
    assert item["status"] == "failed" and item["error"] == {"message": message}
    assert item["result"] is None
    assert output_of(model_server, "c1")[1] == {"type": "input_text", "text": message}


async def test_never_policy_fails_and_approve_mode_runs_without_asking(serve, model_server):
    servers = {
        "demo": stdio_server(),
        "trusted": stdio_server("trusted", default_tools_approval_mode="approve"),
        "picky": stdio_server("picky", tools={"read_echo": {"approval_mode": "prompt"}}),
    }
    model_server.responses.extend(
        [
            mcp_call("echo", {"text": "a"}, "c1"),
            mcp_call("echo", {"text": "b"}, "c2", server="trusted"),
            mcp_call("read_echo", {"text": "c"}, "c3", server="picky"),
            text("done"),
        ]
    )
    asked, handler = answering()
    async with mcp_agent(serve, model_server, servers) as agent:
        agent.client.on_request("mcpServer/elicitation/request", handler)
        thread_id = (await agent.start(approvalPolicy="never"))["thread"]["id"]
        _, notes = await agent.turn(thread_id)
    assert asked == []  # nothing was asked: never means never
    never, trusted, picky = items(notes)
    message = "MCP tool call requires approval, but approval policy is never"
    assert never["error"] == {"message": message} and never["status"] == "failed"
    assert trusted["status"] == "completed"
    assert picky["error"] == {"message": message}


async def test_full_access_needs_no_approval(serve, model_server):
    model_server.responses.extend([mcp_call("echo", {"text": "a"}), text("done")])
    async with mcp_agent(serve, model_server, {"demo": stdio_server()}) as agent:
        thread_id = (await agent.start(approvalPolicy="never", sandbox="danger-full-access"))[
            "thread"
        ]["id"]
        _, notes = await agent.turn(thread_id)
    (item,) = items(notes)
    assert item["status"] == "completed"


async def test_session_and_always_approvals_are_remembered(serve, model_server, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(config_toml({"demo": stdio_server()}))
    model_server.responses.extend(
        [
            mcp_call("echo", {"text": "a"}, "c1"),
            mcp_call("echo", {"text": "b"}, "c2"),
            mcp_call("read_echo", {"text": "c"}, "c3"),
            text("done"),
        ]
    )
    session = {"action": "accept", "content": {}, "_meta": {"persist": "session"}}
    asked, handler = answering(session)
    async with mcp_agent(serve, model_server, {}, home=home) as agent:
        agent.client.on_request("mcpServer/elicitation/request", handler)
        thread_id = (await agent.start())["thread"]["id"]
        _, notes = await agent.turn(thread_id)
        assert len(asked) == 1  # the second call of the same tool did not ask
        assert [i["status"] for i in items(notes)] == ["completed"] * 3
        # "always" writes the choice to config.toml; other threads follow it too.
        always = {"action": "accept", "content": {}, "_meta": {"persist": "always"}}
        asked2, handler2 = answering(always)
        agent.client.on_request("mcpServer/elicitation/request", handler2)
        model_server.responses.extend(
            [mcp_call("echo", {"text": "d"}, "c4", server="demo"), text("done")]
        )
        other = (await agent.start())["thread"]["id"]
        await agent.turn(other)
        assert len(asked2) == 1
        model_server.responses.extend([mcp_call("echo", {"text": "e"}, "c5"), text("done")])
        third = (await agent.start())["thread"]["id"]
        _, notes = await agent.turn(third)
        assert len(asked2) == 1
        assert items(notes)[0]["status"] == "completed"
    written = tomllib.loads((home / "config.toml").read_text())
    assert written["mcp_servers"]["demo"]["tools"] == {"echo": {"approval_mode": "approve"}}
    assert written["mcp_servers"]["demo"]["command"]  # the rest of the table is kept
