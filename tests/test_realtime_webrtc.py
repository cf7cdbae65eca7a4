"""WebRTC calls, joining existing calls, and the outbound-request hook on realtime requests.

The browser's SDP offer goes to the stand-in's calls endpoint; the answer
comes back as ``thread/realtime/sdp`` and the server joins the call's
sideband websocket. The attestation plugin decorates every realtime HTTP
attempt through ``kernel_outbound_request_headers``.
"""

from __future__ import annotations

import asyncio

from tests.support.attestation_setup import HEADER, TokenClient, attestation_args
from tests.support.realtime_backend import ANSWER_SDP, RealtimeBackend
from tests.support.realtime_client import KEY, methods_of, realtime, voice_server

# A provider authenticated like OpenAI's, so attestation's default scope covers it.
OPENAI_AUTH = {"env_key": None, "requires_openai_auth": True}
OFFER = "v=0\r\no=- 42 2 IN IP4 127.0.0.1\r\ns=browser offer\r\n"


async def test_a_webrtc_offer_gets_the_answer_sdp_and_a_sideband(serve):
    async with RealtimeBackend() as backend, voice_server(serve, backend) as voice:
        thread_id = await voice.thread()
        transport = {"type": "webrtc", "sdp": OFFER}
        assert await voice.realtime(thread_id, transport=transport, voice="ash") == {}
        notes = realtime(await voice.until("thread/realtime/sdp"))
        assert methods_of(notes) == [
            "thread/realtime/item/started",
            "thread/realtime/item/completed",
            "thread/realtime/started",
            "thread/realtime/sdp",
        ]
        assert notes[-1].params == {"threadId": thread_id, "sdp": ANSWER_SDP}
        (call,) = backend.calls
        assert call.content_type == "multipart/form-data"
        assert call.sdp == OFFER
        assert call.headers["Authorization"] == f"Bearer {KEY}"
        assert call.session["type"] == "realtime"
        assert call.session["model"] == "gpt-realtime-1.5"
        assert call.session["audio"]["output"]["voice"] == "ash"
        # The server joins the call's sideband websocket and configures the session there.
        conn = await backend.wait_connection()
        assert conn.query == {"call_id": "rtc_1"}
        assert conn.headers["Authorization"] == f"Bearer {KEY}"
        await conn.wait_for("session.update")
        await conn.send({"type": "response.output_audio_transcript.delta", "delta": "Hello"})
        (delta,) = realtime(await voice.until("thread/realtime/transcript/delta"))[-1:]
        assert delta.params["delta"] == "Hello"
        assert await voice.call("stop", threadId=thread_id) == {}
        notes = realtime(await voice.until("thread/realtime/closed"))
        assert notes[-1].params["reason"] == "requested"
        await conn.wait_closed()


async def test_a_refused_call_is_an_error_without_sdp(serve):
    async with RealtimeBackend() as backend, voice_server(serve, backend) as voice:
        backend.calls_status, backend.calls_body = 404, "no such route"
        thread_id = await voice.thread()
        transport = {"type": "webrtc", "sdp": OFFER}
        assert await voice.realtime(thread_id, transport=transport) == {}
        notes = realtime(await voice.until("thread/realtime/closed"))
        assert methods_of(notes) == ["thread/realtime/error", "thread/realtime/closed"]
        assert notes[0].params["message"] == (
            "unexpected status 404 Not Found: no such route, "
            f"url: http://127.0.0.1:{backend.port}/v1/realtime/calls"
        )
        assert backend.connections == []


async def test_an_existing_call_is_joined_by_its_id(serve):
    async with RealtimeBackend() as backend, voice_server(serve, backend) as voice:
        thread_id = await voice.thread()
        transport = {"type": "existingCall", "callId": "rtc_browser"}
        notes, conn = await voice.session(thread_id, transport=transport)
        assert notes[-1].method == "thread/realtime/started"
        assert conn.query == {"call_id": "rtc_browser"}
        assert backend.calls == []


async def test_realtime_requests_go_through_the_outbound_hook(serve):
    args = attestation_args(timeout_ms=30_000)
    async with (
        RealtimeBackend() as backend,
        voice_server(
            serve,
            backend,
            plugins=("threads", "models", "realtime", "attestation"),
            capabilities={"requestAttestation": True},
            args=args,
            key=False,
            env={"OPENAI_API_KEY": KEY},
            provider=OPENAI_AUTH,
        ) as voice,
    ):
        tokens = TokenClient(voice.client)
        thread_id = await voice.thread()
        _, conn = await voice.session(thread_id)
        assert conn.headers[HEADER] == '{"v":1,"s":0,"t":"tok-1"}'
        # WebRTC: the call's POST and the sideband upgrade are asked for separately.
        await voice.call("stop", threadId=thread_id)
        await voice.realtime(thread_id, transport={"type": "webrtc", "sdp": OFFER})
        sideband = await backend.wait_connection(1)
        assert backend.calls[0].headers[HEADER] == '{"v":1,"s":0,"t":"tok-2"}'
        assert sideband.headers[HEADER] == '{"v":1,"s":0,"t":"tok-3"}'
        assert tokens.asked == 3


async def test_a_refusing_outbound_plugin_stops_the_session(serve):
    settings = attestation_args(required=True, timeout_ms=300)
    async with (
        RealtimeBackend() as backend,
        voice_server(
            serve,
            backend,
            plugins=("threads", "models", "realtime", "attestation"),
            args=settings,
            key=False,
            env={"OPENAI_API_KEY": KEY},
            provider=OPENAI_AUTH,
        ) as voice,
    ):
        thread_id = await voice.thread()
        assert await voice.realtime(thread_id) == {}
        notes = realtime(await voice.until("thread/realtime/closed"))
        assert methods_of(notes) == ["thread/realtime/error", "thread/realtime/closed"]
        assert "attestation is required" in notes[0].params["message"]
        await asyncio.sleep(0.2)
        assert backend.connections == [] and backend.refused == 0
