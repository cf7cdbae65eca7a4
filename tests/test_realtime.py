"""Realtime sessions over real stdio against the Realtime API stand-in.

What the backend receives (handshake, headers, frames) and what clients get
for each backend event. Every frame the server sends is validated against
the reference schema by the ``serve`` fixture.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from kernel import RpcError
from tests.support.realtime_backend import RealtimeBackend
from tests.support.realtime_client import KEY, PCM, methods_of, realtime, voice_server


async def test_start_announces_the_session_and_opens_the_backend(serve):
    async with RealtimeBackend() as backend, voice_server(serve, backend) as voice:
        thread_id = await voice.thread()
        notes, conn = await voice.session(thread_id)
        assert methods_of(notes) == [
            "thread/realtime/item/started",
            "thread/realtime/item/completed",
            "thread/realtime/started",
        ]
        started, completed, announced = (n.params for n in notes)
        assert started == completed
        item = started["item"]
        assert item["type"] == "realtimeSessionStarted" and item["realtimeSessionId"] == thread_id
        assert uuid.UUID(item["id"]).version == 7
        assert announced == {"threadId": thread_id, "realtimeSessionId": thread_id, "version": "v2"}
        # The handshake: the provider's base URL as ws, the reference's model and headers.
        assert conn.path == "/v1/realtime" and conn.query == {"model": "gpt-realtime-1.5"}
        assert conn.headers["Authorization"] == f"Bearer {KEY}"
        assert conn.headers["originator"] == "kernel-client"
        for header in ("thread-id", "session-id", "x-session-id"):
            assert conn.headers[header] == thread_id
        update = conn.frames[0]
        assert update["type"] == "session.update"
        session = update["session"]
        assert session["type"] == "realtime" and session["output_modalities"] == ["audio"]
        assert session["audio"]["output"]["voice"] == "marin"
        assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert [t["name"] for t in session["tools"]] == ["background_agent", "remain_silent"]
        assert "background_agent" in session["instructions"]
        # The answer came before the first notification.
        frames = voice.served.stream.received
        answer = next(i for i, f in enumerate(frames) if f.get("result") == {})
        first = next(
            i for i, f in enumerate(frames) if f.get("method", "").startswith("thread/rea")
        )
        assert answer < first


async def test_the_realtime_keys_of_config_toml(serve):
    async with RealtimeBackend() as backend:
        args = [
            "-c", f'experimental_realtime_ws_base_url="http://127.0.0.1:{backend.port}/v1/"',
            "-c", 'experimental_realtime_ws_model="configured-model"',
            "-c", 'experimental_realtime_ws_backend_prompt="Configured prompt."',
        ]  # fmt: skip
        # The provider points elsewhere: the configured realtime URL wins.
        nowhere = {"base_url": "http://127.0.0.1:9/v1"}
        async with voice_server(serve, backend, args=args, provider=nowhere) as voice:
            thread_id = await voice.thread()
            _, conn = await voice.session(thread_id)
            assert conn.path == "/v1/realtime" and conn.query == {"model": "configured-model"}
            assert conn.frames[0]["session"]["instructions"] == "Configured prompt."


async def test_start_params_reach_the_backend(serve):
    async with RealtimeBackend() as backend, voice_server(serve, backend) as voice:
        thread_id = await voice.thread()
        notes, conn = await voice.session(
            thread_id,
            realtimeSessionId="rs_probe",
            outputModality="text",
            voice="cedar",
            model="realtime-test-model",
            prompt="Be terse.",
            initialItems=[{"role": "developer", "text": "The user is on a train."}],
        )
        assert notes[-1].params["realtimeSessionId"] == "rs_probe"
        assert notes[0].params["item"]["realtimeSessionId"] == "rs_probe"
        assert conn.query == {"model": "realtime-test-model"}
        assert conn.headers["x-session-id"] == "rs_probe"
        assert conn.headers["thread-id"] == thread_id
        session = conn.frames[0]["session"]
        assert session["output_modalities"] == ["text"]
        assert session["audio"]["output"]["voice"] == "cedar"
        assert session["instructions"] == "Be terse."
        initial = await conn.wait_for("conversation.item.create")
        assert initial["item"]["role"] == "developer"
        assert initial["item"]["content"] == [
            {"type": "input_text", "text": "The user is on a train."}
        ]


async def test_text_audio_and_speech_reach_the_backend_in_order(serve):
    async with RealtimeBackend() as backend, voice_server(serve, backend) as voice:
        thread_id = await voice.thread()
        # Appends right after the answer, before the backend even answered: kept, in order.
        backend.gate = gate = asyncio.Event()
        assert await voice.realtime(thread_id) == {}
        assert await voice.call("appendText", threadId=thread_id, text="hello") == {}
        assert await voice.audio(thread_id) == {}
        gate.set()
        await voice.until("thread/realtime/started")
        conn = await backend.wait_connection()
        for role in ("developer", "assistant"):
            await voice.call("appendText", threadId=thread_id, text=f"as {role}", role=role)
        assert await voice.call("appendSpeech", threadId=thread_id, text="Build passed") == {}
        frames = await conn.wait_frames(7)
        assert [f["type"] for f in frames] == [
            "session.update",
            "conversation.item.create",
            "input_audio_buffer.append",
            "conversation.item.create",
            "conversation.item.create",
            "conversation.item.create",
            "response.create",
        ]
        items = [f["item"] for f in frames if f["type"] == "conversation.item.create"]
        assert [(i["role"], i["content"][0]) for i in items] == [
            ("user", {"type": "input_text", "text": "[USER] hello"}),
            ("developer", {"type": "input_text", "text": "as developer"}),
            ("assistant", {"type": "output_text", "text": "as assistant"}),
            ("user", {"type": "input_text", "text": "[BACKEND] Build passed"}),
        ]
        assert frames[2]["audio"] == PCM


async def test_transcripts_of_both_roles(serve):
    async with RealtimeBackend() as backend, voice_server(serve, backend) as voice:
        thread_id = await voice.thread()
        _, conn = await voice.session(thread_id)
        user = "conversation.item.input_audio_transcription"
        for event in (
            {"type": f"{user}.delta", "delta": "hel"},
            {"type": f"{user}.delta", "delta": "lo"},
            {"type": f"{user}.completed", "transcript": "Hello."},
            {"type": "response.output_audio_transcript.delta", "delta": "Hi "},
            {"type": "response.output_audio_transcript.delta", "delta": "there"},
            {"type": "response.output_audio_transcript.done", "transcript": "Hi there!"},
            # The same answer's text final repeats it: not announced twice.
            {"type": "response.output_text.done", "text": "Hi there!"},
            {"type": "response.output_text.done", "text": "Next"},
        ):
            await conn.send(event)
        notes = realtime(await voice.drain(0.5))
        deltas = [n.params for n in notes if n.method == "thread/realtime/transcript/delta"]
        assert [(p["role"], p["delta"]) for p in deltas] == [
            ("user", "hel"),
            ("user", "lo"),
            ("assistant", "Hi "),
            ("assistant", "there"),
        ]
        done = [n.params for n in notes if n.method == "thread/realtime/transcript/done"]
        assert [(p["role"], p["text"]) for p in done] == [
            ("user", "Hello."),
            ("assistant", "Hi there!"),
            ("assistant", "Next"),
        ]
        started = [n.params["item"] for n in notes if n.method.endswith("item/started")]
        completed = [n.params["item"] for n in notes if n.method.endswith("item/completed")]
        assert [i["id"] for i in started] == [i["id"] for i in completed]
        assert all(i["text"] == "" and i["type"] == "transcriptSegment" for i in started)
        # Better than the reference: the item's final text is transcript/done's.
        assert [(i["role"], i["text"]) for i in completed] == [
            ("user", "Hello."),
            ("assistant", "Hi there!"),
            ("assistant", "Next"),
        ]
        item_deltas = [n.params for n in notes if n.method.endswith("item/transcript/delta")]
        assert [d["itemId"] for d in item_deltas[:2]] == [started[0]["id"]] * 2
        assert item_deltas[-1] == {
            "threadId": thread_id,
            "itemId": started[2]["id"],
            "delta": "Next",
        }


async def test_output_audio_and_raw_items(serve):
    async with RealtimeBackend() as backend, voice_server(serve, backend) as voice:
        thread_id = await voice.thread()
        _, conn = await voice.session(thread_id)
        message = {"type": "message", "role": "assistant", "content": [{"type": "text"}]}
        for event in (
            {
                "type": "response.output_audio.delta",
                "delta": "AQID",
                "sample_rate": 16000,
                "channels": 2,
                "samples_per_channel": 512,
                "item_id": "item_a",
            },
            {"type": "response.audio.delta", "delta": "BAUG"},
            {"type": "conversation.item.added", "item": message},
            {"type": "input_audio_buffer.speech_started", "item_id": "item_u"},
            {"type": "response.cancelled", "response": {"id": "resp_1"}},
            {"type": "rate_limits.updated", "rate_limits": []},
            {"type": "session.created"},
        ):
            await conn.send(event)
        await conn.send({"type": "conversation.item.added", "item": {"type": "marker"}})
        notes = await voice.until("thread/realtime/itemAdded")
        notes += await voice.until("thread/realtime/itemAdded")
        notes += await voice.until("thread/realtime/itemAdded")
        notes += await voice.until("thread/realtime/itemAdded")
        audio = [n.params["audio"] for n in notes if n.method.endswith("outputAudio/delta")]
        assert audio == [
            {
                "data": "AQID",
                "sampleRate": 16000,
                "numChannels": 2,
                "samplesPerChannel": 512,
                "itemId": "item_a",
            },
            {
                "data": "BAUG",
                "sampleRate": 24000,
                "numChannels": 1,
                "samplesPerChannel": None,
                "itemId": None,
            },
        ]
        added = [n.params["item"] for n in notes if n.method == "thread/realtime/itemAdded"]
        assert added == [
            message,
            {"type": "input_audio_buffer.speech_started", "item_id": "item_u"},
            {"type": "response.cancelled", "response_id": "resp_1"},
            {"type": "marker"},
        ]


async def test_a_backend_error_ends_the_session(serve):
    async with RealtimeBackend() as backend, voice_server(serve, backend) as voice:
        thread_id = await voice.thread()
        _, conn = await voice.session(thread_id)
        await conn.send(
            {"type": "conversation.item.input_audio_transcription.delta", "delta": "wa"}
        )
        await conn.send({"type": "error", "error": {"type": "server_error", "message": "boom"}})
        notes = realtime(await voice.until("thread/realtime/closed"))
        assert methods_of(notes)[-6:] == [
            "thread/realtime/transcript/delta",
            "thread/realtime/error",
            "thread/realtime/item/completed",  # the open user segment, completed
            "thread/realtime/item/started",
            "thread/realtime/item/completed",
            "thread/realtime/closed",
        ]
        assert notes[-5].params == {"threadId": thread_id, "message": "boom"}
        assert notes[-4].params["item"]["text"] == "wa"
        assert notes[-2].params["item"]["type"] == "realtimeSessionClosed"
        assert notes[-2].params["item"]["outcome"] == "failed"
        assert notes[-1].params == {"threadId": thread_id, "reason": "error"}
        await conn.wait_closed()
        assert conn.closed_by == "kernel"
        with pytest.raises(RpcError) as refused:
            await voice.call("appendText", threadId=thread_id, text="still there?")
        assert (refused.value.code, refused.value.message) == (
            -32600,
            "conversation is not running",
        )


async def test_stop_ends_once_and_stop_when_idle_announces_nothing(serve):
    async with RealtimeBackend() as backend, voice_server(serve, backend) as voice:
        thread_id = await voice.thread()
        # Idle: answered, and no closed for a session that never was.
        assert await voice.call("stop", threadId=thread_id) == {}
        assert realtime(await voice.drain(0.3)) == []
        _, conn = await voice.session(thread_id)
        assert await voice.call("stop", threadId=thread_id) == {}
        notes = realtime(await voice.drain(0.3))
        assert methods_of(notes) == [
            "thread/realtime/item/started",
            "thread/realtime/item/completed",
            "thread/realtime/closed",
        ]
        assert notes[0].params["item"]["outcome"] == "ended"
        assert notes[-1].params == {"threadId": thread_id, "reason": "requested"}
        await conn.wait_closed()
        assert conn.closed_by == "kernel"
        # Better than the reference: a second stop does not announce closed again.
        assert await voice.call("stop", threadId=thread_id) == {}
        assert realtime(await voice.drain(0.3)) == []


async def test_the_backend_closing_ends_the_session(serve):
    async with RealtimeBackend() as backend, voice_server(serve, backend) as voice:
        thread_id = await voice.thread()
        _, conn = await voice.session(thread_id)
        await conn.close()
        notes = realtime(await voice.until("thread/realtime/closed"))
        assert notes[-2].params["item"]["outcome"] == "ended"
        assert notes[-1].params == {"threadId": thread_id, "reason": "transport_closed"}


async def test_a_second_start_replaces_the_session(serve):
    async with RealtimeBackend() as backend, voice_server(serve, backend) as voice:
        thread_id = await voice.thread()
        _, first = await voice.session(thread_id)
        notes, second = await voice.session(thread_id, index=1, realtimeSessionId="again")
        assert methods_of(notes) == [
            "thread/realtime/item/started",
            "thread/realtime/item/completed",
            "thread/realtime/closed",
            "thread/realtime/item/started",
            "thread/realtime/item/completed",
            "thread/realtime/started",
        ]
        assert notes[2].params == {"threadId": thread_id, "reason": "replaced"}
        assert notes[-1].params["realtimeSessionId"] == "again"
        await first.wait_closed()
        assert not second.closed.is_set()
        await voice.call("appendText", threadId=thread_id, text="to the new one")
        assert (await second.wait_for("conversation.item.create"))["item"]["role"] == "user"


async def test_list_voices(serve):
    async with RealtimeBackend() as backend, voice_server(serve, backend) as voice:
        voices = (await voice.call("listVoices"))["voices"]
        assert voices["defaultV1"] == "cove" and voices["defaultV2"] == "marin"
        assert voices["v2"] == [
            "alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar",
        ]  # fmt: skip
        assert voices["v1"][-1] == "cove" and len(voices["v1"]) == 9
        assert voices["v3"] == []
