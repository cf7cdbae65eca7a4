"""Threads survive the server: kill -9 mid-turn, restart, then list, read and resume."""

from __future__ import annotations

import signal

from tests.support.agent import agent_server
from tests.support.model_server import message_steps, stall, text


async def test_kill_9_mid_turn_then_resume(serve, model_server, tmp_path):
    home = tmp_path / "home"
    model_server.responses.extend([text("before"), stall(*message_steps(["half"])[:2])])
    async with agent_server(serve, model_server, home=home) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        await agent.turn(thread_id, "first")
        await agent.client.request(
            "turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": "second"}]}
        )
        await agent.until("item/agentMessage/delta")
        agent.served.process.send_signal(signal.SIGKILL)
        await agent.served.process.wait()
    model_server.responses.append(text("after"))
    async with agent_server(serve, model_server, home=home) as agent:
        listed = await agent.client.request("thread/list", {})
        assert [t["id"] for t in listed["data"]] == [thread_id]
        assert listed["data"][0]["preview"] == "first"
        read = await agent.client.request(
            "thread/read", {"threadId": thread_id, "includeTurns": True}
        )
        turns = read["thread"]["turns"]
        assert [t["status"] for t in turns] == ["completed", "interrupted"]
        assert [i["type"] for i in turns[1]["items"]] == ["userMessage"]
        await agent.client.request("thread/resume", {"threadId": thread_id, "excludeTurns": True})
        _, notes = await agent.turn(thread_id, "third")
        assert notes[-1].params["turn"]["status"] == "completed"
    inputs = model_server.requests[-1].body["input"][2:]
    texts = ["".join(p.get("text", "") for p in i.get("content", [])) for i in inputs]
    assert texts[:3] == ["first", "before", "second"]
    assert texts[3].startswith("<turn_aborted>") and texts[-1] == "third"


async def test_the_index_is_rebuilt_when_state_sqlite_is_lost(serve, model_server, tmp_path):
    home = tmp_path / "home"
    async with agent_server(serve, model_server, home=home) as agent:
        ids = {(await agent.start())["thread"]["id"] for _ in range(3)}
    for name in ("state.sqlite", "state.sqlite-wal", "state.sqlite-shm"):
        (home / name).unlink(missing_ok=True)
    async with agent_server(serve, model_server, home=home) as agent:
        listed = await agent.client.request("thread/list", {})
        assert {t["id"] for t in listed["data"]} == ids
