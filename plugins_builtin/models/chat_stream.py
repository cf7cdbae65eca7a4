"""Chat Completions stream chunks as Responses API events.

The consumer of ``threads_model_stream`` only understands Responses events,
so a chat stream is re-told in them:

* the first chunk: ``response.created``;
* reasoning deltas (``delta.reasoning_content`` or ``delta.reasoning``, as
  vLLM, Ollama and LM Studio send them): a ``reasoning`` item
  (``response.output_item.added``) and ``response.reasoning_text.delta``;
* content deltas: an assistant ``message`` item and one
  ``response.output_text.delta`` per chunk;
* ``delta.tool_calls`` fragments are accumulated by ``index`` (a new ``id``
  at a used index starts another call, for servers that number every call
  0); at the end each becomes a ``function_call`` item (added and done)
  with its ``call_id``, name and joined arguments (``"{}"`` when empty);
* at ``[DONE]`` (or the end of the body after a ``finish_reason``): the open
  items are done, then ``response.completed`` with ``usage`` mapped to
  ``input_tokens``/``output_tokens``/``total_tokens`` (and the cached and
  reasoning token details), or ``response.incomplete`` when the model
  stopped at its length limit (``finish_reason: "length"``) or a content
  filter;
* a chunk carrying ``error``: one ``response.failed``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from .errors import failed_event
from .sse import SseEvent

__all__ = ["ChatTranslator", "usage_from_chat"]

log = logging.getLogger("plugins.models")


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_from_chat(usage: Mapping[str, Any]) -> dict[str, Any]:
    """A Responses ``usage`` object from a Chat Completions one."""
    prompt = _int(usage.get("prompt_tokens"))
    completion = _int(usage.get("completion_tokens"))
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": _int(prompt_details.get("cached_tokens"))},
        "output_tokens": completion,
        "output_tokens_details": {
            "reasoning_tokens": _int(completion_details.get("reasoning_tokens"))
        },
        "total_tokens": _int(usage.get("total_tokens")) or prompt + completion,
    }


def _text(value: Any) -> str:
    """Text of a content or reasoning delta: a string, parts, or ``{"text"|"content"}``."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return _text(value.get("text") or value.get("content"))
    if isinstance(value, list):
        return "".join(_text(part) for part in value)
    return ""


class _Item:
    """An output item being streamed: its id, output index and text so far."""

    def __init__(self, kind: str, index: int) -> None:
        self.id = _id("rs" if kind == "reasoning" else "msg")
        self.kind = kind
        self.index = index
        self.text = ""


class _Call:
    def __init__(self, call_id: str | None) -> None:
        self.call_id = call_id
        self.name = ""
        self.arguments = ""


class ChatTranslator:
    """Chat Completions chunks → Responses events, for one HTTP response."""

    def __init__(self, model: str | None) -> None:
        self.model = model
        self.done = False
        self.response_id = _id("resp")
        self._created = False
        self._next_index = 0
        self._reasoning: _Item | None = None
        self._message: _Item | None = None
        self._closed: list[_Item] = []
        self._calls: list[_Call] = []
        self._call_at: dict[int, int] = {}
        self._finish_reason: str | None = None
        self._usage: dict[str, Any] | None = None

    # -- Translator --------------------------------------------------------------------

    def feed(self, event: SseEvent) -> list[dict[str, Any]]:
        data = event.data.strip()
        if data == "[DONE]":
            return self._finish()
        if not data:
            return []
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            log.debug("skipping a chat chunk that is not JSON (%d bytes)", len(data))
            return []
        if not isinstance(chunk, dict):
            return []
        out: list[dict[str, Any]] = []
        if not self._created:
            self._created = True
            if isinstance(chunk.get("id"), str) and chunk["id"]:
                self.response_id = chunk["id"]
            self.model = chunk.get("model") or self.model
            out.append({"type": "response.created", "response": self._response("in_progress")})
        error = chunk.get("error")
        if error:
            self.done = True
            error = error if isinstance(error, Mapping) else {"message": str(error)}
            code = error.get("code") or error.get("type") or "server_error"
            message = error.get("message") or "the model provider reported an error"
            out.append(failed_event(str(code), str(message)))
            return out
        for choice in chunk.get("choices") or []:
            if isinstance(choice, Mapping) and _int(choice.get("index")) == 0:
                self._choice(choice, out)
        if isinstance(chunk.get("usage"), Mapping):
            self._usage = usage_from_chat(chunk["usage"])
        return out

    def at_eof(self) -> list[dict[str, Any]] | None:
        if self.done:
            return []
        if self._finish_reason is None:
            return None
        return self._finish()

    # -- chunks ------------------------------------------------------------------------

    def _choice(self, choice: Mapping[str, Any], out: list[dict[str, Any]]) -> None:
        delta = choice.get("delta") or choice.get("message") or {}
        if isinstance(delta, Mapping):
            reasoning = _text(delta.get("reasoning_content") or delta.get("reasoning"))
            if reasoning:
                self._delta("reasoning", reasoning, out)
            content = _text(delta.get("content"))
            if content:
                self._close_reasoning(out)
                self._delta("message", content, out)
            for fragment in delta.get("tool_calls") or []:
                if isinstance(fragment, Mapping):
                    self._close_reasoning(out)
                    self._tool_fragment(fragment)
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason:
            self._finish_reason = reason

    def _delta(self, kind: str, text: str, out: list[dict[str, Any]]) -> None:
        item = self._reasoning if kind == "reasoning" else self._message
        if item is None:
            item = _Item(kind, self._next_index)
            self._next_index += 1
            if kind == "reasoning":
                self._reasoning = item
                raw: dict[str, Any] = {"type": "reasoning", "summary": [], "content": []}
            else:
                self._message = item
                raw = {"type": "message", "role": "assistant", "status": "in_progress"}
                raw["content"] = []
            out.append(
                {
                    "type": "response.output_item.added",
                    "output_index": item.index,
                    "item": {"id": item.id, **raw},
                }
            )
        item.text += text
        kind_delta = (
            "response.reasoning_text.delta" if kind == "reasoning" else "response.output_text.delta"
        )
        out.append(
            {
                "type": kind_delta,
                "item_id": item.id,
                "output_index": item.index,
                "content_index": 0,
                "delta": text,
            }
        )

    def _tool_fragment(self, fragment: Mapping[str, Any]) -> None:
        index = fragment.get("index")
        call_id = fragment.get("id") if isinstance(fragment.get("id"), str) else None
        position = self._call_at.get(index) if isinstance(index, int) else None
        if position is None and not isinstance(index, int) and call_id is None and self._calls:
            position = len(self._calls) - 1  # a continuation without index or id
        if position is not None:
            known = self._calls[position].call_id
            if call_id and known and call_id != known:
                position = None  # another call reusing the index
        if position is None:
            self._calls.append(_Call(call_id))
            position = len(self._calls) - 1
            if isinstance(index, int):
                self._call_at[index] = position
        call = self._calls[position]
        call.call_id = call.call_id or call_id
        function = fragment.get("function") or {}
        if isinstance(function, Mapping):
            name = function.get("name")
            if isinstance(name, str) and name and not call.name:
                call.name = name
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                call.arguments += arguments
            elif isinstance(arguments, Mapping):
                call.arguments += orjson.dumps(arguments).decode()

    # -- the end -----------------------------------------------------------------------

    def _close_reasoning(self, out: list[dict[str, Any]]) -> None:
        item = self._reasoning
        if item is not None:
            self._reasoning = None
            out.append(self._item_done(item))

    def _item_done(self, item: _Item) -> dict[str, Any]:
        if item.kind == "reasoning":
            raw: dict[str, Any] = {
                "type": "reasoning",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": item.text}],
            }
        else:
            raw = {
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": item.text, "annotations": []}],
            }
        return {
            "type": "response.output_item.done",
            "output_index": item.index,
            "item": {"id": item.id, **raw},
        }

    def _finish(self) -> list[dict[str, Any]]:
        self.done = True
        out: list[dict[str, Any]] = []
        if not self._created:
            out.append({"type": "response.created", "response": self._response("in_progress")})
        self._close_reasoning(out)
        if self._message is not None:
            out.append(self._item_done(self._message))
            self._message = None
        for call in self._calls:
            if not call.name:
                log.debug("chat stream: leaving out a tool call without a name")
                continue
            item = {
                "type": "function_call",
                "id": _id("fc"),
                "call_id": call.call_id or _id("call"),
                "name": call.name,
                "arguments": call.arguments or "{}",
                "status": "completed",
            }
            index = self._next_index
            self._next_index += 1
            added = {**item, "arguments": "", "status": "in_progress"}
            out.append({"type": "response.output_item.added", "output_index": index, "item": added})
            out.append({"type": "response.output_item.done", "output_index": index, "item": item})
        reason = self._finish_reason
        if reason in ("length", "content_filter"):
            response = self._response("incomplete")
            why = "max_output_tokens" if reason == "length" else "content_filter"
            response["incomplete_details"] = {"reason": why}
            out.append({"type": "response.incomplete", "response": response})
        else:
            out.append({"type": "response.completed", "response": self._response("completed")})
        return out

    def _response(self, status: str) -> dict[str, Any]:
        response: dict[str, Any] = {
            "id": self.response_id,
            "object": "response",
            "status": status,
            "model": self.model,
        }
        if status != "in_progress" and self._usage is not None:
            response["usage"] = self._usage
        return response
