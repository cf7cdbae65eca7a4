"""Tools in turns: the client's dynamic tools and tools offered by plugins."""

from __future__ import annotations

import json

import pytest

from kernel import RpcError
from tests.support.agent import agent_server, methods
from tests.support.calls import fails
from tests.support.model_server import custom_tool_call, function_call, text

WEATHER = {
    "name": "weather",
    "description": "The weather in a city",
    "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def _tool(name: str, **extra) -> dict:
    return {"name": name, "description": "d", "inputSchema": {"type": "object"}, **extra}


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        (
            [_tool("bad name")],
            "dynamic tool name must match ^[a-zA-Z0-9_-]+$ to match Responses API: bad name",
        ),
        (
            [_tool("a.b")],
            "dynamic tool name must match ^[a-zA-Z0-9_-]+$ to match Responses API: a.b",
        ),
        (
            [_tool("wetter_ä")],
            "dynamic tool name must match ^[a-zA-Z0-9_-]+$ to match Responses API: wetter_\\u{e4}",
        ),
        (
            [_tool("a" * 129)],
            "dynamic tool name must be at most 128 characters to match Responses API: " + "a" * 129,
        ),
        ([_tool("")], "dynamic tool name must not be empty"),
        ([_tool("dup"), _tool("dup")], "duplicate dynamic tool name: dup"),
        (
            [{"type": "namespace", "name": "functions", "description": "d", "tools": [_tool("t")]}],
            "dynamic tool namespace collides with a reserved Responses API namespace: functions",
        ),
        (
            [
                {
                    "type": "namespace",
                    "name": "multi_tool_use",
                    "description": "d",
                    "tools": [_tool("t")],
                }
            ],
            "dynamic tool namespace collides with a reserved Responses API namespace: "
            "multi_tool_use",
        ),
        (
            [{"type": "namespace", "name": "bad ns", "description": "d", "tools": [_tool("t")]}],
            "dynamic tool namespace must match ^[a-zA-Z0-9_-]+$ to match Responses API: bad ns",
        ),
        (
            [{"type": "namespace", "name": "emptyns", "description": "d", "tools": []}],
            "dynamic tool namespace must contain at least one tool: emptyns",
        ),
        (
            [
                {
                    "type": "namespace",
                    "name": "ns1",
                    "description": "d",
                    "tools": [_tool("t"), _tool("t")],
                }
            ],
            "duplicate dynamic tool name in namespace ns1: t",
        ),
        (
            [_tool("deferred_top", deferLoading=True)],
            "deferred dynamic tool must include a namespace: deferred_top",
        ),
        ([{"name": "x", "description": "d"}], "Invalid request: missing field `inputSchema`"),
        ([{"name": "x", "inputSchema": {}}], "Invalid request: missing field `description`"),
        (
            [_tool("strschema", inputSchema="nope")],
            "dynamic tool input schema is not supported for strschema: "
            'invalid type: string "nope", expected struct JsonSchema',
        ),
        ([_tool("exec_command")], "dynamic tool name collides with a built-in tool: exec_command"),
    ],
)
async def test_dynamic_tools_are_checked_with_the_reference_messages(
    serve, model_server, tools, message
):
    async with agent_server(serve, model_server) as agent:
        error = await fails(agent.client, "thread/start", {"cwd": "/tmp", "dynamicTools": tools})
    assert (error.code, error.message) == (-32600, message)
    assert error.data["field"].startswith("dynamicTools[")


async def test_accepted_dynamic_tools_and_what_the_model_sees(serve, model_server):
    tools = [
        _tool("a-b"),
        _tool("stringy", inputSchema={"type": "string"}),
        {"name": "legacy", "description": "no type member", "inputSchema": {"type": "object"}},
        _tool("acme"),
        {
            "type": "namespace",
            "name": "acme",
            "description": "Acme tools",
            "tools": [_tool("visible"), _tool("later", deferLoading=True)],
        },
    ]
    async with agent_server(serve, model_server) as agent:
        thread_id = (await agent.start(dynamicTools=tools))["thread"]["id"]
        await agent.turn(thread_id)
    sent = model_server.requests[-1].body["tools"]
    assert [t.get("name") for t in sent] == ["a-b", "stringy", "legacy", "acme", "acme"]
    assert sent[0] == {
        "type": "function",
        "name": "a-b",
        "description": "d",
        "strict": False,
        "parameters": {"type": "object"},
    }
    namespace = sent[-1]
    assert namespace["type"] == "namespace" and [t["name"] for t in namespace["tools"]] == [
        "visible"
    ]


async def test_dynamic_tools_need_the_experimental_capability(serve, model_server):
    async with agent_server(serve, model_server, experimental=False) as agent:
        error = await fails(agent.client, "thread/start", {"dynamicTools": [WEATHER]})
    assert "requires experimentalApi capability" in error.message


async def test_a_dynamic_tool_call_round_trip(serve, model_server):
    model_server.responses.extend(
        [function_call("weather", json.dumps({"city": "Paris"}), call_id="call_w"), text("done")]
    )
    asked = []

    async def answer(params):
        asked.append(params)
        return {"contentItems": [{"type": "inputText", "text": "sunny in Paris"}], "success": True}

    async with agent_server(serve, model_server) as agent:
        agent.client.on_request("item/tool/call", answer)
        thread_id = (await agent.start(dynamicTools=[WEATHER]))["thread"]["id"]
        result, notes = await agent.turn(thread_id)
    assert asked == [
        {
            "threadId": thread_id,
            "turnId": result["turn"]["id"],
            "callId": "call_w",
            "namespace": None,
            "tool": "weather",
            "arguments": {"city": "Paris"},
        }
    ]
    names = methods(notes)
    start = names.index("item/started[dynamicToolCall]")
    assert names[start + 1] == "serverRequest/resolved"
    assert names[start + 2] == "item/completed[dynamicToolCall]"
    done = notes[start + 2].params["item"]
    assert done["status"] == "completed" and done["success"] is True
    assert done["contentItems"] == [{"type": "inputText", "text": "sunny in Paris"}]
    assert isinstance(done["durationMs"], int)
    outputs = [
        i
        for i in model_server.requests[-1].body["input"]
        if i.get("type") == "function_call_output"
    ]
    assert outputs == [
        {"type": "function_call_output", "call_id": "call_w", "output": "sunny in Paris"}
    ]


async def test_a_namespaced_call_and_a_failing_client(serve, model_server):
    tools = [{"type": "namespace", "name": "acme", "description": "d", "tools": [_tool("lookup")]}]
    model_server.responses.extend(
        [function_call("lookup", "{}", call_id="call_n", namespace="acme"), text("ok")]
    )

    def refuse(params):
        raise RpcError(-32000, "the user closed the dialog")

    async with agent_server(serve, model_server) as agent:
        agent.client.on_request("item/tool/call", refuse)
        thread_id = (await agent.start(dynamicTools=tools))["thread"]["id"]
        _, notes = await agent.turn(thread_id)
    done = next(
        n.params["item"]
        for n in notes
        if n.method == "item/completed" and n.params["item"]["type"] == "dynamicToolCall"
    )
    assert done["namespace"] == "acme" and done["status"] == "failed" and done["success"] is False
    output = next(
        i
        for i in model_server.requests[-1].body["input"]
        if i.get("type") == "function_call_output"
    )
    assert "the user closed the dialog" in output["output"]
    assert notes[-1].params["turn"]["status"] == "completed"


async def test_a_call_to_an_unknown_tool_is_answered_to_the_model(serve, model_server):
    model_server.responses.extend([function_call("no_such_tool", "{}", call_id="c1"), text("ok")])
    async with agent_server(serve, model_server) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        _, notes = await agent.turn(thread_id)
    assert "item/started[dynamicToolCall]" not in methods(notes)
    output = next(
        i
        for i in model_server.requests[-1].body["input"]
        if i.get("type") == "function_call_output"
    )
    assert output == {
        "type": "function_call_output",
        "call_id": "c1",
        "output": "unsupported call: no_such_tool",
    }


async def test_plugin_tools_from_the_published_hook(serve, model_server):
    model_server.responses.extend(
        [
            function_call("probe_add", json.dumps({"a": 2, "b": 3}), call_id="call_add"),
            custom_tool_call("probe_echo", "raw input", call_id="call_echo"),
            text("done"),
        ]
    )
    plugins = ("threads", "models", "threads_probe")
    async with agent_server(serve, model_server, plugins=plugins) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        _, notes = await agent.turn(thread_id)
    sent = model_server.requests[0].body["tools"]
    assert {t["name"] for t in sent} == {"probe_add", "probe_echo"}
    inputs = model_server.requests[-1].body["input"]
    outputs = {i["call_id"]: i["output"] for i in inputs if i.get("type", "").endswith("_output")}
    assert outputs == {"call_add": "5", "call_echo": "echo: raw input"}
    custom = next(i for i in inputs if i.get("type") == "custom_tool_call_output")
    assert custom["call_id"] == "call_echo"
    # The probe's tool reported its own item through the turn.
    assert "item/completed[plan]" in methods(notes)
