"""Turns over real stdio against the model stand-in: order, payloads, requests, failures.

Every frame the server sends is checked against the reference schema by the
``serve`` fixture; these tests check order, content and what reached the
model.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.support.agent import agent_server, methods
from tests.support.calls import fails
from tests.support.model_server import (
    http_error,
    reasoning,
    stall,
    text,
    usage,
)

BASIC_ORDER = [
    "thread/status/changed",
    "turn/started",
    "item/started[userMessage]",
    "item/completed[userMessage]",
    "item/started[agentMessage]",
    "item/agentMessage/delta",
    "item/agentMessage/delta",
    "item/completed[agentMessage]",
    "thread/tokenUsage/updated",
    "thread/readState/changed",
    "thread/status/changed",
    "turn/completed",
]


async def test_a_basic_turn_streams_in_the_reference_order(serve, model_server):
    model_server.responses.append(text("Hel", "lo", usage=usage(10, 2)))
    async with agent_server(serve, model_server) as agent:
        started = await agent.start(cwd="/tmp")
        thread = started["thread"]
        assert thread["sessionId"] == thread["id"] and thread["status"] == {"type": "idle"}
        assert started["model"] == "gpt-5.5" and started["modelProvider"] == "mock"
        assert started["sandbox"] == {"type": "readOnly", "networkAccess": False}
        assert started["approvalPolicy"] == "on-request" and started["approvalsReviewer"] == "user"
        (note,) = await agent.until("thread/started")
        assert note.params["thread"]["id"] == thread["id"]
        result, notes = await agent.turn(thread["id"], "hi")
        assert result["turn"]["status"] == "inProgress" and result["turn"]["items"] == []
        assert methods(notes) == BASIC_ORDER
        deltas = [n.params["delta"] for n in notes if n.method == "item/agentMessage/delta"]
        assert deltas == ["Hel", "lo"]
        completed = notes[-1].params["turn"]
        assert completed["status"] == "completed" and completed["itemsView"] == "summary"
        assert [i["type"] for i in completed["items"]] == ["agentMessage"]
        assert completed["items"][0]["text"] == "Hello"
        usage_note = next(n for n in notes if n.method == "thread/tokenUsage/updated")
        assert usage_note.params["tokenUsage"]["last"]["totalTokens"] == 12
        assert notes[0].params["status"] == {"type": "active", "activeFlags": []}
        assert notes[-2].params["status"] == {"type": "idle"}


async def test_the_model_request_carries_history_instructions_and_headers(serve, model_server):
    model_server.responses.extend([text("first answer"), text("second answer")])
    async with agent_server(serve, model_server) as agent:
        thread_id = (await agent.start(cwd="/tmp"))["thread"]["id"]
        await agent.turn(thread_id, "question one")
        await agent.turn(thread_id, "question two")
    first, second = model_server.requests[-2:]
    assert first.path == "/v1/responses"
    body = second.body
    assert body["model"] == "gpt-5.5" and body["stream"] is True and body["store"] is False
    assert body["prompt_cache_key"] == thread_id and "instructions" not in body
    assert body["tool_choice"] == "auto" and body["parallel_tool_calls"] is True
    roles = [(i.get("type"), i.get("role")) for i in body["input"]]
    assert roles[0] == ("message", "developer")  # base instructions come first
    assert roles[1] == ("message", "user")
    assert "<environment_context>" in body["input"][1]["content"][0]["text"]
    texts = [_text(i) for i in body["input"][2:]]
    assert texts == ["question one", "first answer", "question two"]
    headers = second.headers
    assert headers["session-id"] == thread_id and headers["thread-id"] == thread_id
    assert headers["originator"] == "kernel-client"
    assert headers["User-Agent"].startswith("kernel/")
    assert "Authorization" not in headers


def _text(item: dict) -> str:
    return "".join(part.get("text", "") for part in item.get("content", []))


async def test_reasoning_items_stream_their_summaries(serve, model_server):
    model_server.responses.append(reasoning(summary=["Thinking ", "hard"], content=["raw"]))
    async with agent_server(serve, model_server) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        _, notes = await agent.turn(thread_id)
    names = methods(notes)
    assert "item/started[reasoning]" in names and "item/completed[reasoning]" in names
    assert "item/reasoning/summaryTextDelta" in names and "item/reasoning/textDelta" in names
    assert "item/reasoning/summaryPartAdded" in names
    done = next(
        n for n in notes if n.method == "item/completed" and n.params["item"]["type"] == "reasoning"
    )
    assert done.params["item"]["summary"] == ["Thinking hard"]
    assert done.params["item"]["content"] == ["raw"]
    # Reasoning is not in the summary view of the turn.
    assert all(i["type"] == "agentMessage" for i in notes[-1].params["turn"]["items"])


@pytest.mark.parametrize(
    ("scripted", "expected"),
    [
        (http_error(401, {"error": {"message": "bad key"}}), "401"),
        (http_error(500, {"error": {"message": "boom"}}), "500"),
    ],
)
async def test_a_model_failure_fails_the_turn_and_the_server_stays_up(
    serve, model_server, scripted, expected
):
    model_server.responses.extend([scripted, text("recovered")])
    async with agent_server(serve, model_server) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        _, notes = await agent.turn(thread_id)
        error = next(n for n in notes if n.method == "error")
        assert error.params["willRetry"] is False and error.params["turnId"]
        assert expected in error.params["error"]["message"]
        turn = notes[-1].params["turn"]
        assert turn["status"] == "failed" and turn["error"]["message"]
        # The thread stays usable.
        _, notes = await agent.turn(thread_id)
        assert notes[-1].params["turn"]["status"] == "completed"


async def test_an_unreachable_provider_says_what_to_configure(serve, model_server):
    args = ["-c", 'model_providers.mock.base_url="http://127.0.0.1:9/v1"']
    async with agent_server(serve, model_server, args=args) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        _, notes = await agent.turn(thread_id)
    message = next(n for n in notes if n.method == "error").params["error"]["message"]
    assert "127.0.0.1:9" in message
    assert notes[-1].params["turn"]["status"] == "failed"


async def test_unknown_provider_is_refused_at_thread_start(serve, model_server):
    async with agent_server(serve, model_server) as agent:
        error = await fails(agent.client, "thread/start", {"modelProvider": "nowhere"})
    assert error.code == -32600
    assert "unknown model provider: nowhere" in error.message
    assert "[model_providers.nowhere]" in error.message


async def test_interrupt_completes_the_partial_message_and_marks_the_history(serve, model_server):
    model_server.responses.extend([stall(*_partial("par")), text("after")])
    async with agent_server(serve, model_server) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        turn_id = await agent.begin(thread_id, "go")
        await agent.until("item/agentMessage/delta")
        assert (
            await agent.client.request("turn/interrupt", {"threadId": thread_id, "turnId": turn_id})
            == {}
        )
        notes = await agent.until("turn/completed")
        completed = [n.params["item"] for n in notes if n.method == "item/completed"]
        # Better than the reference: the started agent message is completed.
        assert completed and completed[0]["type"] == "agentMessage"
        assert completed[0]["text"] == "par"
        assert notes[-1].params["turn"]["status"] == "interrupted"
        assert notes[-2].params["status"] == {"type": "idle"}
        await model_server.wait_disconnect()
        await agent.turn(thread_id, "again")
    last = model_server.requests[-1].body["input"]
    texts = [_text(i) for i in last]
    assert any(t.startswith("<turn_aborted>") for t in texts)
    assert "par" not in texts  # a partial answer never goes back to the model


def _partial(delta: str) -> list[dict]:
    from tests.support.model_server import message_steps

    return message_steps([delta], item_id="msg_partial")[:2]


async def test_steer_abandons_the_request_and_asks_again_with_the_input(serve, model_server):
    model_server.responses.extend([stall(*_partial("draft")), text("steered answer")])
    async with agent_server(serve, model_server) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        turn_id = await agent.begin(thread_id, "go")
        await agent.until("item/agentMessage/delta")
        answer = await agent.client.request(
            "turn/steer",
            {
                "threadId": thread_id,
                "expectedTurnId": turn_id,
                "input": [{"type": "text", "text": "focus on tests"}],
            },
        )
        assert answer == {"turnId": turn_id}
        notes = await agent.until("turn/completed")
    names = methods(notes)
    assert names.count("item/completed[userMessage]") == 1  # the steer input
    agent_texts = [
        n.params["item"]["text"]
        for n in notes
        if n.method == "item/completed" and n.params["item"]["type"] == "agentMessage"
    ]
    assert agent_texts == ["draft", "steered answer"]  # nothing left dangling
    assert notes[-1].params["turn"]["status"] == "completed"
    second = model_server.requests[-1].body["input"]
    texts = [_text(i) for i in second]
    assert texts[-2:] == ["go", "focus on tests"]


async def test_steer_and_interrupt_errors_use_the_reference_wording(serve, model_server):
    async with agent_server(serve, model_server) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        error = await fails(
            agent.client,
            "turn/interrupt",
            {"threadId": thread_id, "turnId": "t"},
        )
        assert (error.code, error.message) == (-32600, "no active turn to interrupt")
        steer = {"threadId": thread_id, "expectedTurnId": "t", "input": []}
        error = await fails(agent.client, "turn/steer", steer)
        assert (error.code, error.message) == (-32600, "no active turn to steer")
        model_server.responses.append(stall())
        turn_id = await agent.begin(thread_id, "x")
        error = await fails(
            agent.client, "turn/interrupt", {"threadId": thread_id, "turnId": "wrong"}
        )
        assert error.message == f"expected active turn id wrong but found {turn_id}"
        error = await fails(agent.client, "turn/steer", {**steer, "expectedTurnId": "wrong"})
        assert error.message == f"expected active turn id `wrong` but found `{turn_id}`"
        again = await fails(
            agent.client,
            "turn/start",
            {"threadId": thread_id, "input": [{"type": "text", "text": "y"}]},
        )
        assert again.code == -32600 and turn_id in again.message
        await agent.client.request("turn/interrupt", {"threadId": thread_id, "turnId": turn_id})
        await agent.until("turn/completed")


async def test_turn_overrides_persist_and_are_announced_first(serve, model_server):
    model_server.responses.extend([text("a"), text("b")])
    async with agent_server(serve, model_server) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        await agent.drain()
        await agent.client.request(
            "turn/start",
            {
                "threadId": thread_id,
                "input": [{"type": "text", "text": "x"}],
                "model": "other-model",
                "effort": "high",
                "approvalPolicy": "never",
            },
        )
        notes = await agent.until("turn/completed")
        settings = notes[0]
        assert settings.method == "thread/settings/updated"
        assert settings.params["threadSettings"]["model"] == "other-model"
        assert settings.params["threadSettings"]["approvalPolicy"] == "never"
        await agent.turn(thread_id)
    first, second = model_server.requests[-2:]
    assert first.body["model"] == second.body["model"] == "other-model"
    assert second.body["reasoning"] == {"effort": "high"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"threadId": "nope", "input": []}, "invalid thread id: invalid character"),
        (
            {"threadId": "6f1c2d4e-0000-4000-8000-000000000000", "input": []},
            "thread not loaded: 6f1c2d4e-0000-4000-8000-000000000000",
        ),
    ],
)
async def test_turn_start_on_a_bad_thread(serve, model_server, params, message):
    async with agent_server(serve, model_server) as agent:
        error = await fails(agent.client, "turn/start", params)
    assert error.code == -32600 and message in error.message
    assert error.data["field"] == "threadId"


async def test_bad_input_items_are_refused_naming_the_field(serve, model_server):
    async with agent_server(serve, model_server) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        error = await fails(
            agent.client, "turn/start", {"threadId": thread_id, "input": [{"type": "text"}]}
        )
        assert error.code == -32602 and "input[0].text" in error.message


async def test_many_turns_in_parallel_threads_keep_their_own_streams(serve, model_server):
    async with agent_server(serve, model_server) as agent:
        ids = [(await agent.start())["thread"]["id"] for _ in range(3)]
        await agent.drain()
        for thread_id in ids:
            await agent.client.request(
                "turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": "x"}]}
            )
        done = set()
        async with asyncio.timeout(20):
            while len(done) < 3:
                note = await agent.client.next_notification()
                if note.method == "turn/completed":
                    done.add(note.params["threadId"])
    assert done == set(ids)


async def test_a_chat_completions_provider_runs_turns_and_tools(serve, model_server):
    from tests.support.model_chat import chat_text, chat_tool_call

    model_server.chat.extend(
        [
            chat_tool_call("weather", '{"city": "Oslo"}', call_id="call_c"),
            chat_text("Rainy", " today"),
        ]
    )
    tool = {"name": "weather", "description": "d", "inputSchema": {"type": "object"}}

    async def answer(params):
        return {"contentItems": [{"type": "inputText", "text": "rain"}], "success": True}

    async with agent_server(serve, model_server, wire_api="chat") as agent:
        agent.client.on_request("item/tool/call", answer)
        thread_id = (await agent.start(dynamicTools=[tool]))["thread"]["id"]
        _, notes = await agent.turn(thread_id, "weather in Oslo?")
    texts = [
        n.params["item"]["text"]
        for n in notes
        if n.method == "item/completed" and n.params["item"]["type"] == "agentMessage"
    ]
    assert texts == ["Rainy today"]
    assert notes[-1].params["turn"]["status"] == "completed"
    last = model_server.requests[-1]
    assert last.path == "/v1/chat/completions"
    roles = [m["role"] for m in last.body["messages"]]
    assert "tool" in roles and roles[-1] == "tool"


async def test_images_reach_the_model(serve, model_server, tmp_path):
    png = tmp_path / "shot.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    model_server.responses.append(text("seen"))
    async with agent_server(serve, model_server) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        await agent.client.request(
            "turn/start",
            {
                "threadId": thread_id,
                "input": [
                    {"type": "text", "text": "look"},
                    {"type": "localImage", "path": str(png)},
                    {"type": "image", "url": "https://example.com/a.png"},
                    {"type": "localImage", "path": str(tmp_path / "missing.png")},
                ],
            },
        )
        notes = await agent.until("turn/completed")
    user = next(n.params["item"] for n in notes if n.method == "item/completed")
    assert [c["type"] for c in user["content"]] == ["text", "localImage", "image", "localImage"]
    parts = model_server.requests[-1].body["input"][-1]["content"]
    assert parts[1]["type"] == "input_image"
    assert parts[1]["image_url"].startswith("data:image/png;base64,iVBORw0KGgo")
    assert parts[2] == {"type": "input_image", "image_url": "https://example.com/a.png"}
    assert parts[3]["type"] == "input_text" and "unreadable" in parts[3]["text"]
