"""Responses API stream events → protocol items, deltas, tool calls and usage.

One handler per model request. Items are started when the provider adds
them (``response.output_item.added``) and completed when it is done with
them (``response.output_item.done``); a provider that only sends the done
event still yields a started and a completed item. Tool calls are collected
and run once the response completes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .tools import Call

if TYPE_CHECKING:
    from .engine import TurnRunner

__all__ = ["ModelEventHandler", "failure_error", "usage_breakdown"]

_CALL_TYPES = frozenset({"function_call", "custom_tool_call"})


def usage_breakdown(usage: Mapping[str, Any]) -> dict[str, int]:
    """A ``TokenUsageBreakdown`` from a Responses API ``usage`` object."""
    input_tokens = int(usage.get("input_tokens") or 0)
    output_tokens = int(usage.get("output_tokens") or 0)
    cached = int((usage.get("input_tokens_details") or {}).get("cached_tokens") or 0)
    reasoning = int((usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0)
    total = int(usage.get("total_tokens") or input_tokens + output_tokens)
    return {
        "totalTokens": total,
        "inputTokens": input_tokens,
        "cachedInputTokens": cached,
        "cacheWriteInputTokens": 0,
        "outputTokens": output_tokens,
        "reasoningOutputTokens": reasoning,
    }


def failure_error(event: Mapping[str, Any]) -> dict[str, Any]:
    """A ``TurnError`` from ``response.failed``/``error``/``response.incomplete``."""
    response = event.get("response") or {}
    error = response.get("error") or event.get("error") or {}
    if not isinstance(error, Mapping):
        error = {"message": str(error)}
    message = str(error.get("message") or event.get("message") or "the model request failed")
    code = str(error.get("code") or event.get("code") or "")
    info: Any = "other"
    status = error.get("status") or error.get("http_status")
    if code in ("context_length_exceeded", "contextWindowExceeded"):
        info = "contextWindowExceeded"
    elif code in ("rate_limit_exceeded", "insufficient_quota"):
        info = "usageLimitExceeded"
    elif code in ("unauthorized", "invalid_api_key") or status == 401:
        info = "unauthorized"
    elif isinstance(status, int):
        info = {"httpConnectionFailed": {"httpStatusCode": status}}
    if event.get("type") == "response.incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason", "unknown")
        message = f"the model stopped before finishing its answer ({reason})"
    return {"message": message, "codexErrorInfo": info, "additionalDetails": code or None}


class ModelEventHandler:
    """Turns one model request's events into the turn's items and notifications."""

    def __init__(self, turn: TurnRunner) -> None:
        self.turn = turn
        self.items: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.history_items: list[dict[str, Any]] = []
        self.usage: dict[str, int] | None = None
        self.failure: dict[str, Any] | None = None
        self.completed = False

    async def handle(self, event: Mapping[str, Any]) -> None:
        """Apply one stream event."""
        kind = event.get("type")
        if kind == "response.output_item.added":
            await self._added(event.get("item") or {})
        elif kind == "response.output_item.done":
            await self._done(event.get("item") or {})
        elif kind == "response.output_text.delta":
            await self._text_delta(event)
        elif kind == "response.reasoning_summary_part.added":
            await self._summary_part(event)
        elif kind == "response.reasoning_summary_text.delta":
            await self._summary_delta(event)
        elif kind in ("response.reasoning_text.delta", "response.reasoning_content.delta"):
            await self._reasoning_delta(event)
        elif kind == "response.completed":
            self.completed = True
            usage = (event.get("response") or {}).get("usage")
            if isinstance(usage, Mapping):
                self.usage = usage_breakdown(usage)
        elif kind in ("response.failed", "error", "response.incomplete"):
            self.failure = failure_error(event)

    # -- items -------------------------------------------------------------------

    async def _added(self, raw: Mapping[str, Any]) -> None:
        kind = raw.get("type")
        item_id = str(raw.get("id") or uuid.uuid4())
        item: dict[str, Any]
        if kind == "message" and item_id not in self.items:
            item = {"type": "agentMessage", "id": item_id, "text": "", "phase": None}
        elif kind == "reasoning" and item_id not in self.items:
            item = {"type": "reasoning", "id": item_id, "summary": [], "content": []}
        else:
            return
        self.items[item_id] = item
        await self.turn.start_item(item)

    async def _done(self, raw: Mapping[str, Any]) -> None:
        kind = raw.get("type")
        if kind in _CALL_TYPES:
            self.history_items.append(dict(raw))
            self.calls.append(Call(raw))
            return
        if kind not in ("message", "reasoning"):
            if kind is not None:
                self.history_items.append(dict(raw))
            return
        item_id = str(raw.get("id") or "")
        item = self.items.get(item_id)
        if item is None:
            await self._added({**raw, "id": item_id or str(uuid.uuid4())})
            item = self.items[item_id] if item_id in self.items else list(self.items.values())[-1]
        if kind == "message":
            text = _message_text(raw)
            if text is not None:
                item["text"] = text
                item.pop("_textParts", None)
        else:
            summary = [
                s.get("text", "") for s in raw.get("summary") or [] if isinstance(s, Mapping)
            ]
            if summary:
                item["summary"] = summary
            content = [
                c.get("text", "") for c in raw.get("content") or [] if isinstance(c, Mapping)
            ]
            if content:
                item["content"] = content
        self.history_items.append(dict(raw))
        await self.turn.complete_item(item)

    async def _text_delta(self, event: Mapping[str, Any]) -> None:
        item = await self._item(event, "message")
        delta = str(event.get("delta") or "")
        item.setdefault("_textParts", []).append(delta)
        await self.turn.notify(
            "item/agentMessage/delta",
            {
                "threadId": self.turn.thread_id,
                "turnId": self.turn.turn_id,
                "itemId": item["id"],
                "delta": delta,
            },
        )

    async def _summary_part(self, event: Mapping[str, Any]) -> None:
        item = await self._item(event, "reasoning")
        index = int(event.get("summary_index") or 0)
        while len(item["summary"]) <= index:
            item["summary"].append("")
        await self.turn.notify(
            "item/reasoning/summaryPartAdded",
            {
                "threadId": self.turn.thread_id,
                "turnId": self.turn.turn_id,
                "itemId": item["id"],
                "summaryIndex": index,
            },
        )

    async def _summary_delta(self, event: Mapping[str, Any]) -> None:
        item = await self._item(event, "reasoning")
        index = int(event.get("summary_index") or 0)
        while len(item["summary"]) <= index:
            item["summary"].append("")
        delta = str(event.get("delta") or "")
        item["summary"][index] += delta
        await self.turn.notify(
            "item/reasoning/summaryTextDelta",
            {
                "threadId": self.turn.thread_id,
                "turnId": self.turn.turn_id,
                "itemId": item["id"],
                "summaryIndex": index,
                "delta": delta,
            },
        )

    async def _reasoning_delta(self, event: Mapping[str, Any]) -> None:
        item = await self._item(event, "reasoning")
        index = int(event.get("content_index") or 0)
        while len(item["content"]) <= index:
            item["content"].append("")
        delta = str(event.get("delta") or "")
        item["content"][index] += delta
        await self.turn.notify(
            "item/reasoning/textDelta",
            {
                "threadId": self.turn.thread_id,
                "turnId": self.turn.turn_id,
                "itemId": item["id"],
                "contentIndex": index,
                "delta": delta,
            },
        )

    async def _item(self, event: Mapping[str, Any], kind: str) -> dict[str, Any]:
        """The open item a delta belongs to, started now if the provider skipped ``added``."""
        item_id = str(event.get("item_id") or "")
        item = self.items.get(item_id)
        if item is None:
            await self._added({"type": kind, "id": item_id or str(uuid.uuid4())})
            item = self.items[item_id] if item_id in self.items else list(self.items.values())[-1]
        return item


def _message_text(raw: Mapping[str, Any]) -> str | None:
    parts = [
        str(part.get("text", ""))
        for part in raw.get("content") or []
        if isinstance(part, Mapping) and part.get("type") in ("output_text", "text")
    ]
    return "".join(parts) if parts else None
