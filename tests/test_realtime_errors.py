"""Realtime errors: gating, bad params, no session, no credentials, a backend that refuses.

Each request gets one clear answer naming the member at fault (the
reference's message where it has one), and nothing reaches the backend.
"""

from __future__ import annotations

import asyncio

import pytest

from kernel import RpcError
from tests.support.realtime_backend import RealtimeBackend
from tests.support.realtime_client import KEY_VARIABLE, PCM, methods_of, realtime, voice_server

METHODS = {
    "thread/realtime/start": {"outputModality": "audio"},
    "thread/realtime/appendAudio": {"audio": {"data": PCM, "sampleRate": 24000, "numChannels": 1}},
    "thread/realtime/appendText": {"text": "hi"},
    "thread/realtime/appendSpeech": {"text": "hi"},
    "thread/realtime/stop": {},
    "thread/realtime/listVoices": {},
}


async def _refused(coro, code: int) -> RpcError:
    with pytest.raises(RpcError) as caught:
        await coro
    assert caught.value.code == code, caught.value
    return caught.value


async def test_every_method_needs_the_experimental_capability(serve):
    async with (
        RealtimeBackend() as backend,
        voice_server(serve, backend, experimental=False) as voice,
    ):
        thread_id = str((await voice.start())["thread"]["id"])
        for method, params in METHODS.items():
            error = await _refused(
                voice.client.request(method, {"threadId": thread_id, **params}), -32600
            )
            assert error.message == f"{method} requires experimentalApi capability"
        assert backend.connections == []


async def test_an_unknown_thread(serve):
    async with RealtimeBackend() as backend, voice_server(serve, backend) as voice:
        missing = "00000000-0000-4000-8000-000000000000"
        for method, params in METHODS.items():
            if method.endswith("listVoices"):
                continue
            error = await _refused(
                voice.client.request(method, {"threadId": missing, **params}), -32600
            )
            assert error.message == f"thread not found: {missing}"
        assert backend.connections == []


@pytest.mark.parametrize(
    ("params", "code", "field", "message"),
    [
        ({"outputModality": None}, -32602, "outputModality", None),
        ({"outputModality": "video"}, -32602, "outputModality", None),
        ({"voice": "nobody"}, -32602, "voice", None),
        (
            {"voice": "cove"},
            -32600,
            "voice",
            "realtime voice `cove` is not supported for v2; supported voices: alloy, ash, "
            "ballad, coral, echo, sage, shimmer, verse, marin, cedar",
        ),
        ({"version": "v1"}, -32600, "version", None),
        ({"transport": {"type": "webrtc"}}, -32602, "transport.sdp", None),
        ({"transport": {"type": "carrier-pigeon"}}, -32602, "transport.type", None),
        ({"transport": {"type": "existingCall"}}, -32602, "transport.callId", None),
        ({"realtimeSessionId": " "}, -32602, "realtimeSessionId", None),
        ({"initialItems": [{"role": "user", "text": ""}]}, -32602, "initialItems[0].text", None),
    ],
)
async def test_bad_start_params_name_the_member(serve, params, code, field, message):
    async with RealtimeBackend() as backend, voice_server(serve, backend) as voice:
        thread_id = await voice.thread()
        request = {"threadId": thread_id, "outputModality": "audio", **params}
        request = {k: v for k, v in request.items() if v is not None}
        error = await _refused(voice.client.request("thread/realtime/start", request), code)
        assert field in error.message or (error.data or {}).get("field") == field
        if message is not None:
            assert error.message == message
        assert realtime(await voice.drain(0.2)) == []
        assert backend.connections == []


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("appendAudio", {"audio": {"data": "not base64!", "sampleRate": 24000, "numChannels": 1}},
         "audio.data"),
        ("appendAudio", {"audio": {"data": "", "sampleRate": 24000, "numChannels": 1}},
         "audio.data"),
        ("appendAudio", {"audio": {"data": PCM, "sampleRate": 16000, "numChannels": 1}},
         "audio.sampleRate"),
        ("appendAudio", {"audio": {"data": PCM, "sampleRate": 24000, "numChannels": 2}},
         "audio.numChannels"),
        ("appendAudio", {"audio": {"data": PCM, "numChannels": 1}}, "audio.sampleRate"),
        ("appendText", {"text": "   "}, "text"),
        ("appendText", {"text": "hi", "role": "system"}, "role"),
        ("appendSpeech", {"text": ""}, "text"),
    ],
)  # fmt: skip
async def test_bad_appends_name_the_member_and_send_nothing(serve, method, params, field):
    async with RealtimeBackend() as backend, voice_server(serve, backend) as voice:
        thread_id = await voice.thread()
        _, conn = await voice.session(thread_id)
        error = await _refused(voice.call(method, threadId=thread_id, **params), -32602)
        assert error.message.startswith(f"Invalid params: {field}")
        assert error.data["problems"][0]["path"] == field
        await voice.call("appendText", threadId=thread_id, text="marker")
        await conn.wait_for("conversation.item.create")
        assert conn.types() == ["session.update", "conversation.item.create"]


async def test_appends_without_a_session_are_refused(serve):
    async with RealtimeBackend() as backend, voice_server(serve, backend) as voice:
        thread_id = await voice.thread()
        for method, params in METHODS.items():
            if not method.split("/")[-1].startswith("append"):
                continue
            error = await _refused(
                voice.client.request(method, {"threadId": thread_id, **params}), -32600
            )
            assert error.message == "conversation is not running"
            assert error.data == {"field": "threadId"}


async def test_missing_credentials_are_a_clear_error(serve):
    async with RealtimeBackend() as backend, voice_server(serve, backend, key=False) as voice:
        thread_id = await voice.thread()
        error = await _refused(voice.realtime(thread_id), -32600)
        assert error.message.startswith("realtime conversation requires API key auth: ")
        assert KEY_VARIABLE in error.message  # says what to set
        assert realtime(await voice.drain(0.3)) == []
        assert backend.connections == [] and backend.refused == 0


async def test_a_backend_refusing_the_upgrade(serve):
    async with RealtimeBackend() as backend, voice_server(serve, backend) as voice:
        backend.refuse = (401, "invalid key")
        thread_id = await voice.thread()
        assert await voice.realtime(thread_id) == {}
        notes = realtime(await voice.until("thread/realtime/closed"))
        assert methods_of(notes) == ["thread/realtime/error", "thread/realtime/closed"]
        message = notes[0].params["message"]
        assert message.startswith("unexpected status 401 Unauthorized, url: ws://127.0.0.1:")
        assert "sk-" not in message
        assert notes[1].params == {"threadId": thread_id, "reason": "error"}
        assert backend.refused == 1
        # The thread can try again once the backend accepts.
        backend.refuse = None
        await voice.session(thread_id)


async def test_an_unreachable_backend(serve):
    async with RealtimeBackend() as backend:
        port = backend.port
    # The stand-in is gone: nothing listens on its port any more.
    nowhere = ["-c", f'experimental_realtime_ws_base_url="ws://127.0.0.1:{port}"']
    async with RealtimeBackend() as backend, voice_server(serve, backend, args=nowhere) as voice:
        thread_id = await voice.thread()
        assert await voice.realtime(thread_id) == {}
        notes = realtime(await voice.until("thread/realtime/closed"))
        message = notes[0].params["message"]
        assert "unreachable" in message
        assert message.endswith(f"url: ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime-1.5")
        assert notes[-1].params["reason"] == "error"


async def test_a_full_queue_refuses_appends_and_loses_none(serve):
    args = ["-c", "kernel_plugins.realtime.max_queued_frames=2"]
    async with RealtimeBackend() as backend, voice_server(serve, backend, args=args) as voice:
        backend.gate = gate = asyncio.Event()
        thread_id = await voice.thread()
        assert await voice.realtime(thread_id) == {}
        assert await voice.call("appendText", threadId=thread_id, text="one") == {}
        assert await voice.audio(thread_id) == {}
        error = await _refused(voice.call("appendText", threadId=thread_id, text="three"), -32001)
        assert error.message == "Server overloaded; retry later."
        assert "2 frames are waiting" in error.data["reason"]
        gate.set()
        conn = await backend.wait_connection()
        await conn.wait_frames(3)
        assert conn.types() == [
            "session.update",
            "conversation.item.create",
            "input_audio_buffer.append",
        ]
        # Drained: appends are taken again.
        await voice.until("thread/realtime/started")
        assert await voice.call("appendText", threadId=thread_id, text="three") == {}
        await conn.wait_frames(4)


async def test_a_bad_base_url_stops_startup_naming_the_key(serve):
    args = ["-c", 'experimental_realtime_ws_base_url="ftp://example.com"']
    async with RealtimeBackend() as backend:
        async with serve(
            plugins=["threads", "models", "realtime"], args=args, close=False
        ) as served:
            assert await asyncio.wait_for(served.process.wait(), 30) != 0
            assert "experimental_realtime_ws_base_url" in served.log()
        assert backend.connections == []
