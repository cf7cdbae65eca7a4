"""Responses API streams: server-sent events in, Responses event dicts out.

A Responses stream already speaks the contract's language, so this mostly
checks and passes events through: each ``data:`` payload is a JSON object
whose ``type`` names the event (the ``event:`` line fills it in when the
payload lacks one). A server ``error`` event becomes the contract's single
``response.failed`` (its ``code`` and ``message`` kept). The stream is over
at ``response.completed``, ``response.failed``, ``response.incomplete`` or
``[DONE]``; anything else that ends it is a disconnect the caller handles.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

import orjson

from .errors import failed_event
from .sse import SseEvent

__all__ = [
    "PRELUDE_TYPES",
    "TERMINAL_TYPES",
    "ResponsesTranslator",
    "Translator",
    "events_from_response_object",
    "is_output",
]

log = logging.getLogger("plugins.models")

TERMINAL_TYPES = frozenset({"response.completed", "response.failed", "response.incomplete"})
# Events that carry no output: a stream that broke after only these can be
# retried without the consumer noticing.
PRELUDE_TYPES = frozenset({"response.created", "response.in_progress", "response.queued"})


def is_output(event: Mapping[str, Any]) -> bool:
    """Whether the consumer may have acted on ``event`` (then a retry is no longer invisible)."""
    return event.get("type") not in PRELUDE_TYPES


class Translator(Protocol):
    """Turns one HTTP response's server-sent events into Responses events."""

    done: bool
    """A terminal event was produced: stop reading."""

    def feed(self, event: SseEvent) -> list[dict[str, Any]]:
        """The Responses events ``event`` produces (often one, sometimes none)."""
        ...

    def at_eof(self) -> list[dict[str, Any]] | None:
        """Closing events if the stream may end here; None if it was cut short."""
        ...


class ResponsesTranslator:
    """The Responses wire API: pass events through, normalizing ``error``."""

    def __init__(self) -> None:
        self.done = False

    def feed(self, event: SseEvent) -> list[dict[str, Any]]:
        data = event.data.strip()
        if data == "[DONE]":
            self.done = True
            return []
        if not data:
            return [] if event.event == "message" else self._checked({"type": event.event})
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            log.debug("skipping an event whose data is not JSON (%d bytes)", len(data))
            return []
        if not isinstance(value, dict):
            log.debug("skipping an event whose data is not a JSON object")
            return []
        if not isinstance(value.get("type"), str):
            if event.event == "message":
                log.debug("skipping an event without a type")
                return []
            value["type"] = event.event
        return self._checked(value)

    def _checked(self, value: dict[str, Any]) -> list[dict[str, Any]]:
        kind = value["type"]
        if kind == "error":
            self.done = True
            nested = value.get("error")
            error: Mapping[str, Any] = nested if isinstance(nested, Mapping) else value
            kind_of_error = error.get("type") if error is not value else None
            code = error.get("code") or kind_of_error or "server_error"
            message = error.get("message") or "the model provider reported an error"
            return [failed_event(str(code), str(message))]
        if kind == "response.failed":
            response = value.get("response")
            if not isinstance(response, dict):
                response = value["response"] = {}
            if not isinstance(response.get("error"), Mapping):
                response["error"] = {
                    "code": "server_error",
                    "message": "the model provider reported that the response failed",
                }
        if kind in TERMINAL_TYPES:
            self.done = True
        return [value]

    def at_eof(self) -> list[dict[str, Any]] | None:
        return [] if self.done else None


def events_from_response_object(value: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The events a whole (non-streamed) Responses API answer stands for.

    For servers that ignore ``stream: true`` and answer ``application/json``.
    """
    if isinstance(value.get("error"), Mapping) and not value.get("output"):
        error = value["error"]
        code = error.get("code") or error.get("type") or "server_error"
        return [failed_event(str(code), str(error.get("message") or "the request failed"))]
    response = {k: v for k, v in value.items() if k != "output"}
    events: list[dict[str, Any]] = [{"type": "response.created", "response": response}]
    for index, item in enumerate(value.get("output") or []):
        if isinstance(item, Mapping):
            events.append(
                {"type": "response.output_item.done", "output_index": index, "item": dict(item)}
            )
    status = value.get("status")
    kind = {"failed": "response.failed", "incomplete": "response.incomplete"}.get(
        str(status), "response.completed"
    )
    events.append({"type": kind, "response": dict(value)})
    return events
