"""Compaction: by request, by window, before a fork's first turn; input queued meanwhile."""

from __future__ import annotations

import asyncio
import json

from plugins_builtin.threads.compaction import SUMMARY_PREFIX, SUMMARY_REQUEST
from tests.support.agent import agent_server, methods
from tests.support.calls import fails
from tests.support.model_server import (
    function_call,
    http_error,
    message_steps,
    sleep,
    stream,
    text,
    usage,
)


def texts(request) -> list[str]:
    """The text of every message the model was sent, in order."""
    out = []
    for item in request.body["input"]:
        for part in item.get("content") or []:
            if isinstance(part, dict) and "text" in part:
                out.append(part["text"])
    return out


def is_summary_request(request) -> bool:
    return bool(request.body and texts(request) and texts(request)[-1] == SUMMARY_REQUEST)


async def test_thread_compact_start_replaces_the_history_with_a_summary(serve, model_server):
    model_server.responses.extend([text("first answer"), text("THE SUMMARY"), text("later")])
    async with agent_server(serve, model_server) as agent:
        client = agent.client
        thread_id = (await agent.start())["thread"]["id"]
        await agent.turn(thread_id, "hello")
        assert await client.request("thread/compact/start", {"threadId": thread_id}) == {}
        notes = await agent.until("turn/completed")
        names = [n for n in methods(notes) if n != "thread/readState/changed"]
        assert names == [
            "thread/status/changed",
            "turn/started",
            "item/started[contextCompaction]",
            "thread/tokenUsage/updated",
            "item/completed[contextCompaction]",
            "thread/compacted",
            "thread/status/changed",
            "turn/completed",
        ]
        assert notes[-1].params["turn"]["status"] == "completed"
        compacted = next(n for n in notes if n.method == "thread/compacted")
        assert compacted.params == {
            "threadId": thread_id,
            "turnId": notes[-1].params["turn"]["id"],
        }
        await agent.turn(thread_id, "after")
    summary_request, later = model_server.requests[1], model_server.requests[2]
    assert is_summary_request(summary_request) and summary_request.body["tools"] == []
    seen = texts(later)
    assert "hello" in seen and "after" in seen and "first answer" not in seen
    assert SUMMARY_PREFIX + "THE SUMMARY" in seen
    assert seen.index("hello") < seen.index(SUMMARY_PREFIX + "THE SUMMARY") < seen.index("after")


async def test_input_during_a_compaction_is_queued_and_steer_is_refused(serve, model_server):
    slow_summary = stream(sleep(1.0), *message_steps(["SUMMARY"]))
    model_server.responses.extend(
        [text("one"), slow_summary, text("queued one"), text("queued two")]
    )
    async with agent_server(serve, model_server) as agent:
        client = agent.client
        thread_id = (await agent.start())["thread"]["id"]
        await agent.turn(thread_id, "hello")
        await client.request("thread/compact/start", {"threadId": thread_id})
        await agent.until("item/started")
        first = await client.request(
            "turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": "q1"}]}
        )
        second = await client.request(
            "turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": "q2"}]}
        )
        steer = {
            "threadId": thread_id,
            "input": [{"type": "text", "text": "s"}],
            "expectedTurnId": first["turn"]["id"],
        }
        error = await fails(client, "turn/steer", steer)
        assert error.code == -32600 and "compacting" in error.message
        error = await fails(client, "thread/compact/start", {"threadId": thread_id})
        assert error.code == -32600
        started = []
        async with asyncio.timeout(30):
            while len(started) < 3:
                note = await client.next_notification("turn/completed")
                started.append(note.params["turn"]["id"])
    assert started[1:] == [first["turn"]["id"], second["turn"]["id"]]
    assert texts(model_server.requests[2])[-1] == "q1"
    assert texts(model_server.requests[3])[-1] == "q2"


async def test_a_nearly_full_window_compacts_before_the_next_request(serve, model_server):
    big = usage(input_tokens=900, output_tokens=100)
    model_server.responses.extend(
        [
            function_call("probe_add", json.dumps({"a": 1, "b": 2}), call_id="c1", usage=big),
            text("SUMMARY"),
            text("done"),
        ]
    )
    args = ["-c", "model_auto_compact_token_limit=500"]
    plugins = ("threads", "models", "threads_probe")
    async with agent_server(serve, model_server, args=args, plugins=plugins) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        _, notes = await agent.turn(thread_id, "add please")
    assert "item/completed[contextCompaction]" in methods(notes)
    assert is_summary_request(model_server.requests[1])
    final = texts(model_server.requests[2])
    assert "add please" in final and SUMMARY_PREFIX + "SUMMARY" in final


async def test_history_stays_compacted_after_a_restart(serve, model_server, tmp_path):
    home = tmp_path / "home"
    model_server.responses.extend([text("a1"), text("SUMMARY"), text("b1")])
    async with agent_server(serve, model_server, home=home) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        await agent.turn(thread_id, "first")
        await agent.client.request("thread/compact/start", {"threadId": thread_id})
        await agent.until("turn/completed")
    async with agent_server(serve, model_server, home=home) as agent:
        await agent.client.request("thread/resume", {"threadId": thread_id, "excludeTurns": True})
        await agent.turn(thread_id, "second")
    seen = texts(model_server.requests[-1])
    assert "a1" not in seen and SUMMARY_PREFIX + "SUMMARY" in seen and "first" in seen


async def test_a_fork_with_another_model_compacts_with_the_source_model(serve, model_server):
    model_server.responses.extend([text("a1"), text("SUMMARY"), text("forked answer")])
    async with agent_server(serve, model_server) as agent:
        client = agent.client
        source = (await agent.start(model="model-a"))["thread"]["id"]
        await agent.turn(source, "first")
        fork = await client.request("thread/fork", {"threadId": source, "model": "model-b"})
        fork_id = fork["thread"]["id"]
        _, notes = await agent.turn(fork_id, "on the fork")
    assert "item/completed[contextCompaction]" in methods(notes)
    summary, answer = model_server.requests[1], model_server.requests[2]
    assert is_summary_request(summary) and summary.body["model"] == "model-a"
    assert answer.body["model"] == "model-b" and "a1" not in texts(answer)


async def test_the_window_from_model_metadata_triggers_compaction(serve, model_server):
    # The provider's /models states a 1,000-token window: compaction at 900.
    model_server.models = ["local-small"]
    model_server.windows = {"local-small": 1000}
    model_server.responses.extend(
        [
            text("big answer", usage=usage(900, 50)),
            text("THE SUMMARY"),
            text("after the summary"),
        ]
    )
    async with agent_server(serve, model_server, args=["-c", 'model="local-small"']) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        _, notes = await agent.turn(thread_id, "first")
        usage_note = next(n for n in notes if n.method == "thread/tokenUsage/updated")
        assert usage_note.params["tokenUsage"]["modelContextWindow"] == 1000
        _, notes = await agent.turn(thread_id, "second")
    assert "thread/compacted" in methods(notes)
    assert is_summary_request(model_server.requests[1])
    assert [r.path for r in model_server.other_requests] == ["/v1/models"]  # asked once


async def test_a_fork_whose_summary_fails_warns_once_and_goes_on(serve, model_server):
    model_server.responses.extend(
        [text("a1"), http_error(400, {"error": {"message": "no such model"}}), text("b1")]
    )
    model_server.responses.append(text("b2"))
    async with agent_server(serve, model_server) as agent:
        client = agent.client
        source = (await agent.start(model="model-a"))["thread"]["id"]
        await agent.turn(source, "first")
        fork = await client.request("thread/fork", {"threadId": source, "model": "model-b"})
        fork_id = fork["thread"]["id"]
        _, notes = await agent.turn(fork_id, "on the fork")
        warning = next(n for n in notes if n.method == "warning")
        assert "could not be summarized with model `model-a`" in warning.params["message"]
        assert notes[-1].params["turn"]["status"] == "completed"
        _, notes = await agent.turn(fork_id, "again")  # no second attempt
        assert "item/started[contextCompaction]" not in methods(notes)
    answer, again = model_server.requests[2], model_server.requests[3]
    assert answer.body["model"] == "model-b" and "a1" in texts(answer)
    assert not is_summary_request(again)
