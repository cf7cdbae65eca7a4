"""Handoffs: the voice model's ``background_agent`` calls become work on the thread.

The provider is the Responses stand-in (the thread's turns); the realtime
backend is reached through ``experimental_realtime_ws_base_url``.
"""

from __future__ import annotations

import orjson

from tests.support.model_server import stall, text
from tests.support.realtime_backend import RealtimeBackend
from tests.support.realtime_client import realtime, voice_server

USER_DELTA = "conversation.item.input_audio_transcription.delta"


def background_agent(call_id: str, arguments: dict | str, item_id: str | None = None) -> dict:
    """``conversation.item.done`` with the model's ``background_agent`` call."""
    if not isinstance(arguments, str):
        arguments = orjson.dumps(arguments).decode()
    item = {"type": "function_call", "name": "background_agent", "call_id": call_id}
    item.update(id=item_id or f"item_{call_id}", arguments=arguments)
    return {"type": "conversation.item.done", "item": item}


def model_text(request) -> str:
    """Every text part of a recorded Responses request's input."""
    parts = []
    for item in request.body["input"]:
        for part in item.get("content") or []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
    return "\n".join(parts)


async def test_a_handoff_starts_a_turn_and_answers_the_voice_model(serve, model_server):
    model_server.responses.append(text("All ", "42 tests pass."))
    async with (
        RealtimeBackend() as backend,
        voice_server(serve, backend, model_url=model_server.base_url) as voice,
    ):
        thread_id = await voice.thread()
        _, conn = await voice.session(thread_id)
        await conn.send({"type": USER_DELTA, "delta": "run the tests"})
        await conn.send({"type": "response.output_audio_transcript.delta", "delta": "On"})
        await conn.send({"type": "response.output_audio_transcript.done", "transcript": "On it."})
        await conn.send({"type": "response.created", "response": {"id": "resp_1"}})
        await conn.send(background_agent("call_1", {"prompt": "run the tests"}))
        notes = await voice.until("turn/completed")
        handoff = next(
            n.params["item"]
            for n in notes
            if n.method == "thread/realtime/itemAdded"
            and n.params["item"].get("type") == "handoff_request"
        )
        assert handoff == {
            "type": "handoff_request",
            "handoff_id": "call_1",
            "item_id": "item_call_1",
            "input_transcript": "run the tests",
            "active_transcript": [
                {"role": "user", "text": "run the tests"},
                {"role": "assistant", "text": "On it."},
            ],
        }
        methods = [n.method for n in notes]
        assert methods.index("thread/realtime/itemAdded") < methods.index("turn/started")
        assert notes[-1].params["turn"]["status"] == "completed"
        # The turn's model request carries the request and the transcript, wrapped.
        (request,) = model_server.requests
        assert (
            "<realtime_delegation>\n  <input>run the tests</input>\n"
            "  <transcript_delta>user: run the tests\nassistant: On it.</transcript_delta>\n"
            "</realtime_delegation>"
        ) in model_text(request)
        # The answer goes back as the call's output; the model speaks once its response ends.
        output = await conn.wait_for("conversation.item.create")
        assert output["item"] == {
            "type": "function_call_output",
            "call_id": "call_1",
            "output": "All 42 tests pass.",
        }
        assert conn.of_type("response.create") == []
        await conn.send({"type": "response.done", "response": {"id": "resp_1"}})
        await conn.wait_for("response.create")
        # The next handoff's transcript starts after this one.
        await conn.send({"type": USER_DELTA, "delta": "thanks"})
        model_server.responses.append(text("You're welcome."))
        await conn.send(background_agent("call_2", '{"input": "say thanks"}'))
        notes = await voice.until("turn/completed")
        second = [n.params["item"] for n in notes if n.method == "thread/realtime/itemAdded"]
        assert second[-1]["active_transcript"] == [{"role": "user", "text": "thanks"}]
        assert second[-1]["input_transcript"] == "say thanks"
        output = await conn.wait_for("conversation.item.create", count=2)
        assert output["item"]["output"] == "You're welcome."


async def test_a_handoff_while_a_turn_runs_steers_it(serve, model_server):
    model_server.responses.extend([stall(), text("Steered answer")])
    async with (
        RealtimeBackend() as backend,
        voice_server(serve, backend, model_url=model_server.base_url) as voice,
    ):
        thread_id = await voice.thread()
        _, conn = await voice.session(thread_id)
        await voice.begin(thread_id, "refactor the parser")
        await model_server.wait_requests(1)
        await conn.send(background_agent("call_s", {"prompt": "also fix the lexer"}))
        output = await conn.wait_for("conversation.item.create")
        assert output["item"]["call_id"] == "call_s"
        assert "guidance" in output["item"]["output"]
        await conn.wait_for("response.create")
        notes = await voice.until("turn/completed")
        assert notes[-1].params["turn"]["status"] == "completed"
        assert "also fix the lexer" in model_text(model_server.requests[-1])


async def test_client_managed_handoffs_start_no_turn(serve, model_server):
    async with (
        RealtimeBackend() as backend,
        voice_server(serve, backend, model_url=model_server.base_url) as voice,
    ):
        thread_id = await voice.thread()
        _, conn = await voice.session(thread_id, clientManagedHandoffs=True)
        await conn.send(background_agent("call_c", {"prompt": "do it yourself"}))
        (note,) = realtime(await voice.until("thread/realtime/itemAdded"))
        assert note.params["item"]["handoff_id"] == "call_c"
        assert [n.method for n in await voice.drain(0.5)] == []
        assert model_server.requests == []
        assert conn.types() == ["session.update"]


async def test_remain_silent_is_answered_without_a_response(serve):
    async with RealtimeBackend() as backend, voice_server(serve, backend) as voice:
        thread_id = await voice.thread()
        _, conn = await voice.session(thread_id)
        item = {"type": "function_call", "name": "remain_silent", "call_id": "call_q"}
        await conn.send({"type": "conversation.item.done", "item": {**item, "arguments": "{}"}})
        output = await conn.wait_for("conversation.item.create")
        assert output["item"] == {"type": "function_call_output", "call_id": "call_q", "output": ""}
        assert realtime(await voice.drain(0.3)) == []
        assert "response.create" not in conn.types()


async def test_an_empty_handoff_is_answered_at_once(serve, model_server):
    async with (
        RealtimeBackend() as backend,
        voice_server(serve, backend, model_url=model_server.base_url) as voice,
    ):
        thread_id = await voice.thread()
        _, conn = await voice.session(thread_id)
        await conn.send(background_agent("call_e", {"prompt": "  "}))
        output = await conn.wait_for("conversation.item.create")
        assert output["item"]["call_id"] == "call_e"
        assert "nothing to hand off" in output["item"]["output"]
        await conn.wait_for("response.create")
        assert model_server.requests == []


async def test_a_response_cancelled_then_done_ends_once(serve, model_server):
    """A backend may send both for one response: the second end must not let out a second
    ``response.create`` while the queued one runs (the backend's error would end the session)."""
    async with (
        RealtimeBackend() as backend,
        voice_server(serve, backend, model_url=model_server.base_url) as voice,
    ):
        thread_id = await voice.thread()
        _, conn = await voice.session(thread_id)
        await conn.send({"type": "response.created", "response": {"id": "resp_1"}})
        await conn.send(background_agent("call_a", {"prompt": " "}))
        await conn.wait_for("conversation.item.create")
        assert conn.of_type("response.create") == []
        await conn.send({"type": "response.cancelled", "response": {"id": "resp_1"}})
        await conn.wait_for("response.create")
        await conn.send({"type": "response.done", "response": {"id": "resp_1"}})
        # The queued response runs: the next answer's response.create waits for its end.
        await conn.send(background_agent("call_b", {"prompt": " "}))
        await conn.wait_for("conversation.item.create", count=2)
        await voice.drain(0.3)
        assert len(conn.of_type("response.create")) == 1
        await conn.send({"type": "response.created", "response": {"id": "resp_2"}})
        await conn.send({"type": "response.done", "response": {"id": "resp_2"}})
        await conn.wait_for("response.create", count=2)
        assert conn.closed_by is None
