"""MCP tools as the model's tools: one namespace per server, each call an ``mcpToolCall``.

Offered through the threads family's ``threads_tools`` hook: each running
server's exposed tools as the namespace ``mcp__<server>`` (see
:mod:`.naming`). A call:

1. ``item/started`` with the ``mcpToolCall`` item (``inProgress``);
2. the approval, when the tool needs one (:mod:`.approval`);
3. ``tools/call`` on the server, bounded by ``tool_timeout_sec``; the
   server's progress notifications become ``item/mcpToolCall/progress``;
   its elicitations are routed to this turn (:mod:`.manager`);
4. ``item/completed``: ``completed`` with the result, ``failed`` with the
   result when the server flagged an error, or ``failed`` with ``error``
   when the call could not be made (refused, timed out, the server died,
   the turn was interrupted).

The model gets what the reference sends: ``Wall time: <s> seconds`` and
``Output:``, then the structured content as compact JSON when the server
gave one, else the content blocks (text as text, images as images).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
from pydantic import BaseModel

from .approval import approve_call, needs_approval
from .connection import ServerConnection, StartupFailed, describe_error
from .manager import CallScope, McpManager
from .naming import model_schema, namespace_name

__all__ = ["McpTools", "content_for_model", "dump"]

log = logging.getLogger("plugins.mcp.tools")

PersistAlways = Callable[[str, str], Awaitable[None]]


def dump(value: Any) -> Any:
    """A pydantic model of the SDK as wire JSON (aliases, no unset members)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    return value


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def content_for_model(block: Any) -> dict[str, Any]:
    """One MCP content block as a Responses API input content item."""
    if isinstance(block, types.TextContent):
        return {"type": "input_text", "text": block.text}
    if isinstance(block, types.ImageContent):
        url = f"data:{block.mime_type};base64,{block.data}"
        return {"type": "input_image", "image_url": url, "detail": "high"}
    if isinstance(block, types.EmbeddedResource):
        resource = block.resource
        if isinstance(resource, types.TextResourceContents):
            return {"type": "input_text", "text": resource.text}
    return {"type": "input_text", "text": _compact(dump(block))}


class McpTools:
    """The tools of every running server for one turn, and how their calls run."""

    def __init__(self, manager: McpManager, persist_always: PersistAlways) -> None:
        self.manager = manager
        self.persist_always = persist_always

    async def offer(self, turn: Any) -> list[dict[str, Any]]:
        """Start the enabled servers (announcing them to the thread) and list their tools."""
        manager = self.manager
        names = manager.enabled()
        await manager.ensure_all(turn.thread_id, names)
        offered = []
        for name in names:
            conn = manager.connection(name)
            if conn is None or not conn.ready:
                continue
            await conn.refresh_tools()
            if conn.tools:
                call = functools.partial(self.call, name)
                offered.append({"spec": namespace_spec(conn), "call": call})
        return offered

    async def call(self, server: str, invocation: Any) -> Any:
        """Run one model call of a tool of ``server`` (see the module docstring)."""
        turn = invocation.turn
        try:
            arguments = _arguments(invocation.arguments)
        except ValueError as exc:
            return f"err: {exc}"
        try:
            conn = await self.manager.ensure(server, turn.thread_id)
        except (StartupFailed, KeyError) as exc:
            return f"MCP server {server} is not available: {exc}"
        raw = conn.model_names.get(invocation.name, invocation.name)
        tool = conn.tool(raw)
        if tool is None:
            return f"unsupported call: {invocation.name} (no such tool on MCP server {server})"
        annotations = tool.annotations
        item: dict[str, Any] = {
            "type": "mcpToolCall",
            "id": invocation.call_id,
            "server": server,
            "tool": raw,
            "status": "inProgress",
            "arguments": arguments,
            "appContext": None,
            "mcpAppUi": None,
            "pluginId": None,
            "readOnlyHint": None if annotations is None else annotations.read_only_hint,
            "result": None,
            "error": None,
            "durationMs": None,
        }
        started = time.monotonic()
        await turn.start_item(item)
        try:
            async with self.manager.scope(server, CallScope(turn.thread_id, turn=turn)):
                if needs_approval(conn.spec, tool, turn.settings):
                    refusal = await approve_call(
                        turn, conn.spec, tool, arguments, self.persist_always
                    )
                    if refusal is not None:
                        return await _failed(turn, item, started, refusal)
                result = await conn.call_tool(
                    raw,
                    arguments,
                    timeout=conn.spec.tool_timeout,
                    progress=_progress(turn, invocation.call_id),
                )
        except asyncio.CancelledError:
            await _failed(turn, item, started, "the turn was interrupted")
            raise
        except Exception as exc:
            return await _failed(turn, item, started, _call_error(conn, exc))
        return await _completed(turn, item, started, result)


def namespace_spec(conn: ServerConnection) -> dict[str, Any]:
    """The Responses API namespace of one server's exposed tools."""
    namespace = namespace_name(conn.name)
    by_raw = {raw: model for model, raw in conn.model_names.items()}
    tools = []
    for tool in sorted(conn.tools, key=lambda t: by_raw.get(t.name, t.name)):
        tools.append(
            {
                "type": "function",
                "name": by_raw.get(tool.name, tool.name),
                "description": tool.description or "",
                "strict": False,
                "parameters": model_schema(tool.input_schema),
            }
        )
    return {
        "type": "namespace",
        "name": namespace,
        "description": f"Tools in the {namespace} namespace.",
        "tools": tools,
    }


def _arguments(raw: str) -> dict[str, Any] | None:
    if not raw or not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(value, dict):
        raise ValueError("the arguments of an MCP tool must be a JSON object")
    return value


def _progress(turn: Any, item_id: str) -> Callable[[float, float | None, str | None], Any]:
    async def report(progress: float, total: float | None, message: str | None) -> None:
        text = message or (f"{progress:g}/{total:g}" if total else f"{progress:g}")
        params = {"threadId": turn.thread_id, "turnId": turn.turn_id, "itemId": item_id}
        await turn.notify("item/mcpToolCall/progress", {**params, "message": text})

    return report


def _call_error(conn: ServerConnection, exc: Exception) -> str:
    code = getattr(getattr(exc, "error", None), "code", None)
    if code == types.REQUEST_TIMEOUT or isinstance(exc, TimeoutError):
        return (
            f"tool call error: timed out after {conn.spec.tool_timeout:g}s "
            f"(mcp_servers.{conn.name}.tool_timeout_sec)"
        )
    log.info("MCP call on %s failed: %s", conn.name, exc, exc_info=exc)
    return f"tool call error: {describe_error(exc)}"


def _header(started: float) -> str:
    return f"Wall time: {time.monotonic() - started:.4f} seconds\nOutput:"


async def _failed(turn: Any, item: dict[str, Any], started: float, message: str) -> Any:
    header = _header(started)
    item.update(
        status="failed",
        error={"message": message},
        durationMs=int((time.monotonic() - started) * 1000),
    )
    await turn.complete_item(item)
    return [{"type": "input_text", "text": header}, {"type": "input_text", "text": message}]


async def _completed(
    turn: Any, item: dict[str, Any], started: float, result: types.CallToolResult
) -> Any:
    header = _header(started)
    structured = result.structured_content
    item.update(
        status="failed" if result.is_error else "completed",
        result={
            "content": [dump(block) for block in result.content],
            "structuredContent": structured,
            "_meta": result.meta,
        },
        durationMs=int((time.monotonic() - started) * 1000),
    )
    await turn.complete_item(item)
    if structured is not None:
        return f"{header}\n{_compact(structured)}"
    return [{"type": "input_text", "text": header}, *map(content_for_model, result.content)]
