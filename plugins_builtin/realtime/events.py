"""The backend's Realtime API (v2) events, as the notifications clients get.

* ``response.output_audio.delta`` (or ``response.audio.delta``):
  ``thread/realtime/outputAudio/delta``;
* ``conversation.item.input_audio_transcription.delta`` / ``.completed``:
  the user's transcript delta / done (:mod:`.transcript`);
* ``response.output_text.delta``, ``response.output_audio_transcript.delta``
  / their ``.done``: the assistant's transcript delta / done;
* ``conversation.item.added``: ``thread/realtime/itemAdded {item: <raw>}``;
* ``input_audio_buffer.speech_started``: ``itemAdded {type:
  "input_audio_buffer.speech_started", item_id}``;
* ``response.cancelled``: ``itemAdded {type: "response.cancelled", response_id}``;
* ``conversation.item.done`` with a ``background_agent`` call: ``itemAdded
  {type: "handoff_request", handoff_id, item_id, input_transcript,
  active_transcript}``, then the handoff (:mod:`.handoff`); with a
  ``remain_silent`` call: answered with an empty output, nothing sent;
* ``error``: the session ends (``thread/realtime/error``, then closed).

``response.created``, ``response.done`` and ``response.cancelled`` are
tracked by response id so the server never asks for a response while one
is in progress (the backend refuses that): a response ends once, even when
the backend sends both ``cancelled`` and ``done`` for it.
Anything else is ignored (logged at debug level), as the reference does.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from . import protocol

if TYPE_CHECKING:
    from .session import RealtimeSession

__all__ = ["ITEM_ADDED", "ITEM_COMPLETED", "ITEM_STARTED", "BackendEvents", "SessionError"]

log = logging.getLogger("plugins.realtime")

ITEM_STARTED = "thread/realtime/item/started"
ITEM_COMPLETED = "thread/realtime/item/completed"
ITEM_ADDED = "thread/realtime/itemAdded"
OUTPUT_AUDIO = "thread/realtime/outputAudio/delta"

Handler = Callable[[Mapping[str, Any]], Awaitable[None]]


class SessionError(Exception):
    """The backend sent ``error``: the session ends; ``message`` is the backend's."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _error_message(event: Mapping[str, Any]) -> str:
    message = event.get("message")
    if isinstance(message, str):
        return message
    error = event.get("error")
    if isinstance(error, Mapping) and isinstance(error.get("message"), str):
        return str(error["message"])
    if error is not None:
        return orjson.dumps(error).decode()
    return "the realtime backend reported an error"


class BackendEvents:
    """Reads one session's backend events; see the module docstring."""

    def __init__(self, session: RealtimeSession) -> None:
        self.session = session
        self.thread_id = session.spec.thread_id
        self._handlers: dict[str, Handler] = {
            "response.output_audio.delta": self._audio,
            "response.audio.delta": self._audio,
            "conversation.item.input_audio_transcription.delta": self._user_delta,
            "conversation.item.input_audio_transcription.completed": self._user_done,
            "response.output_text.delta": self._assistant_delta,
            "response.output_audio_transcript.delta": self._assistant_delta,
            "response.output_text.done": self._assistant_text_done,
            "response.output_audio_transcript.done": self._assistant_transcript_done,
            "conversation.item.added": self._item_added,
            "input_audio_buffer.speech_started": self._speech_started,
            "conversation.item.done": self._item_done,
            "response.created": self._response_created,
            "response.done": self._response_done,
            "response.cancelled": self._response_cancelled,
            "error": self._error,
        }

    async def handle(self, raw: str) -> None:
        """One text frame from the backend."""
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            log.debug("realtime backend sent a frame that is not JSON; ignored")
            return
        kind = event.get("type") if isinstance(event, dict) else None
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            log.debug("realtime backend event %r ignored", kind)
            return
        await handler(event)

    # -- audio and transcripts -------------------------------------------------------------

    async def _audio(self, event: Mapping[str, Any]) -> None:
        chunk = protocol.output_audio(event)
        if chunk is not None:
            await self.session.notify(
                [(OUTPUT_AUDIO, {"threadId": self.thread_id, "audio": chunk})]
            )

    async def _delta(self, role: str, event: Mapping[str, Any]) -> None:
        delta = event.get("delta")
        if isinstance(delta, str):
            await self.session.notify(self.session.transcript.delta(role, delta))

    async def _done(self, role: str, event: Mapping[str, Any], member: str) -> None:
        text = event.get(member)
        if isinstance(text, str):
            await self.session.notify(self.session.transcript.done(role, text))

    async def _user_delta(self, event: Mapping[str, Any]) -> None:
        await self._delta("user", event)

    async def _user_done(self, event: Mapping[str, Any]) -> None:
        await self._done("user", event, "transcript")

    async def _assistant_delta(self, event: Mapping[str, Any]) -> None:
        await self._delta("assistant", event)

    async def _assistant_text_done(self, event: Mapping[str, Any]) -> None:
        await self._done("assistant", event, "text")

    async def _assistant_transcript_done(self, event: Mapping[str, Any]) -> None:
        await self._done("assistant", event, "transcript")

    # -- raw items ---------------------------------------------------------------------------

    async def _added(self, item: Any) -> None:
        await self.session.notify([(ITEM_ADDED, {"threadId": self.thread_id, "item": item})])

    async def _item_added(self, event: Mapping[str, Any]) -> None:
        item = event.get("item")
        if item is not None:
            await self._added(item)

    async def _speech_started(self, event: Mapping[str, Any]) -> None:
        item_id = event.get("item_id")
        await self._added(
            {
                "type": "input_audio_buffer.speech_started",
                "item_id": item_id if isinstance(item_id, str) else None,
            }
        )

    async def _item_done(self, event: Mapping[str, Any]) -> None:
        item = event.get("item")
        if not isinstance(item, Mapping) or item.get("type") != "function_call":
            return
        name = item.get("name")
        call_id = item.get("call_id") or item.get("id")
        if not isinstance(call_id, str) or not call_id:
            return
        if name == protocol.REMAIN_SILENT:
            self.session.queue.force(protocol.function_output(call_id, ""))
        elif name == protocol.BACKGROUND_AGENT:
            await self._handoff(item, call_id)
        else:
            log.debug("realtime model called unknown function %r; ignored", name)

    async def _handoff(self, item: Mapping[str, Any], handoff_id: str) -> None:
        session = self.session
        item_id = item.get("id")
        request = protocol.handoff_input(item.get("arguments"))
        active = session.transcript.take_active()
        payload = {
            "type": "handoff_request",
            "handoff_id": handoff_id,
            "item_id": item_id if isinstance(item_id, str) and item_id else handoff_id,
            "input_transcript": request,
            "active_transcript": active,
        }
        with session.critical():
            await self._added(payload)
            if not session.spec.client_managed_handoffs:
                await session.host.handoff(session, handoff_id, request, active)

    # -- responses and errors ----------------------------------------------------------------

    async def _response_created(self, event: Mapping[str, Any]) -> None:
        self.session.response_started(_response_id(event))

    async def _response_done(self, event: Mapping[str, Any]) -> None:
        self.session.response_ended(_response_id(event))

    async def _response_cancelled(self, event: Mapping[str, Any]) -> None:
        response_id = _response_id(event)
        self.session.response_ended(response_id)
        await self._added({"type": "response.cancelled", "response_id": response_id})

    async def _error(self, event: Mapping[str, Any]) -> None:
        raise SessionError(_error_message(event))


def _response_id(event: Mapping[str, Any]) -> str | None:
    """The id of the response an event is about (``response.id``, else ``response_id``)."""
    response = event.get("response")
    response_id = response.get("id") if isinstance(response, Mapping) else None
    if not isinstance(response_id, str):
        response_id = event.get("response_id")
    return response_id if isinstance(response_id, str) else None
