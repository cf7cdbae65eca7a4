"""The Realtime API (v2) frames this server sends, and what it reads from the backend's events.

Frames are encoded once, as text, by the functions here; the session sends
them as they are. Event helpers read the members the reference reads and
default the rest the same way (24 kHz mono output audio).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

__all__ = [
    "BACKGROUND_AGENT",
    "REMAIN_SILENT",
    "USER_TEXT_PREFIX",
    "audio_append",
    "function_output",
    "handoff_input",
    "output_audio",
    "response_create",
    "session_body",
    "session_update",
    "speech",
    "text_message",
]

BACKGROUND_AGENT = "background_agent"
REMAIN_SILENT = "remain_silent"
# Typed user text is marked so the voice model tells it from speech (the reference's prefix).
USER_TEXT_PREFIX = "[USER] "
# Text the client wants spoken arrives as the backend's words.
BACKEND_TEXT_PREFIX = "[BACKEND] "
TRANSCRIPTION_MODEL = "gpt-4o-mini-transcribe"
SAMPLE_RATE = 24_000
_ARGUMENT_KEYS = ("input_transcript", "input", "text", "prompt", "query")

_TOOLS = [
    {
        "type": "function",
        "name": BACKGROUND_AGENT,
        "description": (
            "Hand the user's request to the coding agent working in this thread. Pass the "
            "user's own words. If the agent is busy, the request steers its current task; "
            "its answer comes back as this call's output."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "prompt": {
                    "type": "string",
                    "description": "The user's request, in the user's words.",
                }
            },
            "required": ["prompt"],
            "additionalProperties": False,
        },
    },
    {
        "type": "function",
        "name": REMAIN_SILENT,
        "description": "Say nothing this time (after control messages, or when silence is best).",
        "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
    },
]


def _frame(value: Mapping[str, Any]) -> str:
    return orjson.dumps(value).decode()


def session_body(
    instructions: str, modality: str, voice: str, model: str | None = None
) -> dict[str, Any]:
    """The ``session`` object: output modality, 24 kHz PCM in and out, voice, tools."""
    pcm = {"type": "audio/pcm", "rate": SAMPLE_RATE}
    body: dict[str, Any] = {"type": "realtime"}
    if model is not None:
        body["model"] = model
    body.update(
        instructions=instructions,
        output_modalities=[modality],
        audio={
            "input": {
                "format": pcm,
                "noise_reduction": {"type": "near_field"},
                "transcription": {"model": TRANSCRIPTION_MODEL},
                "turn_detection": {
                    "type": "server_vad",
                    "interrupt_response": True,
                    "create_response": True,
                    "silence_duration_ms": 500,
                },
            },
            "output": {"format": pcm, "voice": voice},
        },
        tools=_TOOLS,
        tool_choice="auto",
    )
    return body


def session_update(instructions: str, modality: str, voice: str) -> str:
    """``session.update`` sent first on every backend websocket."""
    return _frame(
        {"type": "session.update", "session": session_body(instructions, modality, voice)}
    )


def text_message(text: str, role: str) -> str:
    """``conversation.item.create`` with a message (user text gets the ``[USER] `` mark)."""
    if role == "user" and not text.startswith(USER_TEXT_PREFIX):
        text = USER_TEXT_PREFIX + text
    kind = "output_text" if role == "assistant" else "input_text"
    item = {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}
    return _frame({"type": "conversation.item.create", "item": item})


def speech(text: str) -> str:
    """Text the model should say: a ``[BACKEND] `` message (a ``response.create`` follows)."""
    content = [{"type": "input_text", "text": BACKEND_TEXT_PREFIX + text}]
    item = {"type": "message", "role": "user", "content": content}
    return _frame({"type": "conversation.item.create", "item": item})


def audio_append(data: str) -> str:
    """``input_audio_buffer.append`` with the client's base64 audio."""
    return '{"type":"input_audio_buffer.append","audio":' + orjson.dumps(data).decode() + "}"


def function_output(call_id: str, output: str) -> str:
    """The answer to the model's function call ``call_id``."""
    item = {"type": "function_call_output", "call_id": call_id, "output": output}
    return _frame({"type": "conversation.item.create", "item": item})


def response_create() -> str:
    """Ask the model to respond now."""
    return '{"type":"response.create"}'


def handoff_input(arguments: Any) -> str:
    """What the user asked for in a ``background_agent`` call's arguments.

    The first non-blank of ``input_transcript``, ``input``, ``text``,
    ``prompt``, ``query`` when the arguments are a JSON object (blank when
    none is set; the reference then hands off the raw JSON), else the raw
    arguments.
    """
    if not isinstance(arguments, str) or not arguments:
        return ""
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(parsed, dict):
        for key in _ARGUMENT_KEYS:
            value = parsed.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return ""  # an object without a request: nothing was asked
    return parsed.strip() if isinstance(parsed, str) else arguments


def output_audio(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``ThreadRealtimeAudioChunk`` of an output audio delta, or None without data."""
    data = event.get("delta")
    if not isinstance(data, str):
        return None
    rate = event.get("sample_rate")
    channels = event.get("channels", event.get("num_channels"))
    samples = event.get("samples_per_channel")
    item_id = event.get("item_id")
    return {
        "data": data,
        "sampleRate": rate if _u32(rate) else SAMPLE_RATE,
        "numChannels": channels if _u32(channels) and channels < 65536 else 1,
        "samplesPerChannel": samples if _u32(samples) else None,
        "itemId": item_id if isinstance(item_id, str) else None,
    }


def _u32(value: Any) -> bool:
    return type(value) is int and 0 <= value < 1 << 32
