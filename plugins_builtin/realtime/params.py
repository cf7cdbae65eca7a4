"""Params of the ``thread/realtime/*`` methods, named and shaped as the reference's types.

The kernel structures them strictly (a wrong type or an unknown enum value is
``-32602`` naming the member). Rules a type cannot say (the transport's
variants, a v2-only voice, base64 audio, non-empty text) are checked by
:func:`start_options`, :func:`audio_frame` and :func:`non_empty` with the
same ``-32602`` shape, or ``-32600`` with the reference's message where it
has one.
"""

from __future__ import annotations

import binascii
from typing import Any, Literal

import attrs

from kernel import RpcError, invalid_field

from .voices import Voice, unsupported_voice

__all__ = [
    "INPUT_CHANNELS",
    "INPUT_SAMPLE_RATE",
    "StartOptions",
    "ThreadRealtimeAppendAudioParams",
    "ThreadRealtimeAppendSpeechParams",
    "ThreadRealtimeAppendTextParams",
    "ThreadRealtimeAudioChunk",
    "ThreadRealtimeInitialItem",
    "ThreadRealtimeListVoicesParams",
    "ThreadRealtimeStartParams",
    "ThreadRealtimeStopParams",
    "audio_frame",
    "non_empty",
    "start_options",
]

INVALID_REQUEST = -32600
# The session's input format, declared in session.update: 24 kHz mono PCM16.
INPUT_SAMPLE_RATE = 24_000
INPUT_CHANNELS = 1

TextRole = Literal["user", "developer", "assistant"]


@attrs.frozen
class ThreadRealtimeInitialItem:
    """A message put into the realtime conversation right after it opens."""

    role: TextRole
    text: str


@attrs.frozen
class ThreadRealtimeStartParams:
    """``thread/realtime/start``; members this server does not act on are accepted."""

    thread_id: str
    output_modality: Literal["text", "audio"]
    realtime_session_id: str | None = None
    # {type: "websocket"} | {type: "webrtc", sdp} | {type: "existingCall", callId}
    transport: dict[str, Any] | None = None
    voice: Voice | None = None
    version: Literal["v1", "v2", "v3"] | None = None
    model: str | None = None
    prompt: str | None = None
    initial_items: list[ThreadRealtimeInitialItem] | None = None
    client_managed_handoffs: bool | None = None
    include_startup_context: bool | None = None
    backend_reasoning_status: bool | None = None
    codex_response_handoff_channel_prefixes: dict[str, list[str]] | None = None
    codex_response_handoff_mode: Literal["thinking", "commentary", "bemTags"] | None = None
    codex_response_item_prefix: str | None = None
    codex_responses_as_items: bool | None = None
    delegation_ack_filler: bool | None = None
    flush_transcript_tail_on_session_end: bool | None = None
    realtime_start_instructions: str | None = None
    realtime_end_instructions: str | None = None
    voice_session_id: str | None = None


@attrs.frozen
class ThreadRealtimeAudioChunk:
    """One chunk of base64 PCM16 audio."""

    data: str
    sample_rate: int
    num_channels: int
    samples_per_channel: int | None = None
    item_id: str | None = None


@attrs.frozen
class ThreadRealtimeAppendAudioParams:
    """``thread/realtime/appendAudio``."""

    thread_id: str
    audio: ThreadRealtimeAudioChunk


@attrs.frozen
class ThreadRealtimeAppendTextParams:
    """``thread/realtime/appendText``: ``role`` defaults to ``user``."""

    thread_id: str
    text: str
    role: TextRole = "user"


@attrs.frozen
class ThreadRealtimeAppendSpeechParams:
    """``thread/realtime/appendSpeech``: text for the model to say."""

    thread_id: str
    text: str


@attrs.frozen
class ThreadRealtimeStopParams:
    """``thread/realtime/stop``."""

    thread_id: str


@attrs.frozen
class ThreadRealtimeListVoicesParams:
    """``thread/realtime/listVoices`` takes no members."""


@attrs.frozen
class StartOptions:
    """What a start asks for, checked: the transport and its data, the voice."""

    transport: Literal["websocket", "webrtc", "existingCall"]
    sdp: str | None
    call_id: str | None
    voice: str | None


def _transport(value: dict[str, Any] | None) -> tuple[Any, str | None, str | None]:
    if value is None:
        return "websocket", None, None
    kind = value.get("type")
    if kind == "websocket":
        return kind, None, None
    if kind == "webrtc":
        sdp = value.get("sdp")
        if not isinstance(sdp, str) or not sdp.strip():
            raise invalid_field("transport.sdp", "expected the browser's SDP offer (a string)")
        return kind, sdp, None
    if kind == "existingCall":
        call_id = value.get("callId")
        if not isinstance(call_id, str) or not call_id.strip():
            raise invalid_field("transport.callId", "expected the call id (a string)")
        return kind, None, call_id
    raise invalid_field("transport.type", "expected one of websocket, webrtc, existingCall")


def start_options(params: ThreadRealtimeStartParams) -> StartOptions:
    """Check what the types cannot; raises ``-32602``/``-32600`` naming the member."""
    if params.version not in (None, "v2"):
        raise RpcError(
            INVALID_REQUEST,
            f"realtime version {params.version} is not supported by this server; use v2",
            {"field": "version"},
        )
    if params.voice is not None:
        problem = unsupported_voice(params.voice)
        if problem is not None:
            raise RpcError(INVALID_REQUEST, problem, {"field": "voice"})
    if params.realtime_session_id is not None and not params.realtime_session_id.strip():
        raise invalid_field("realtimeSessionId", "must not be empty")
    for index, item in enumerate(params.initial_items or ()):
        non_empty(item.text, f"initialItems[{index}].text")
    kind, sdp, call_id = _transport(params.transport)
    return StartOptions(kind, sdp, call_id, params.voice)


def non_empty(text: str, field: str = "text") -> str:
    """``text`` unless it is blank (``-32602`` naming ``field``)."""
    if not text.strip():
        raise invalid_field(field, "must not be empty")
    return text


def audio_frame(chunk: ThreadRealtimeAudioChunk) -> str:
    """The chunk's base64 data, checked: valid base64 of 24 kHz mono PCM16."""
    if chunk.sample_rate != INPUT_SAMPLE_RATE:
        raise invalid_field(
            "audio.sampleRate",
            f"must be {INPUT_SAMPLE_RATE} (the session's input is 24 kHz mono PCM16)",
        )
    if chunk.num_channels != INPUT_CHANNELS:
        raise invalid_field("audio.numChannels", "must be 1 (the session's input is mono)")
    data = chunk.data
    try:
        decoded = binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError):
        raise invalid_field("audio.data", "expected base64-encoded PCM16 audio") from None
    if not decoded:
        raise invalid_field("audio.data", "must not be empty")
    return data
