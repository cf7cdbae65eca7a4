"""The tools of a turn: the client's dynamic tools and the tools plugins offer.

Dynamic tools come from ``thread/start.dynamicTools`` (checked in
:mod:`.checks`) and are answered by the client through the ``item/tool/call``
server request, inside a ``dynamicToolCall`` item. Plugin tools come from
the ``threads_tools`` hook and run in the server; they report their own
items through the turn they are given.

Every call the model makes gets exactly one output back: a tool nobody
offers answers ``unsupported call: <name>``, a failing tool answers what
failed, so the model is never left waiting.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kernel import ConnectionClosed, RpcError, ServerRequestTimeout

if TYPE_CHECKING:
    from .engine import TurnRunner

__all__ = ["BUILTIN_TOOL_NAMES", "Call", "Toolbox", "dynamic_specs"]

log = logging.getLogger("plugins.threads.tools")

# Names the reference's built-in tools use; a dynamic tool may not take one
# (the reference accepts such a tool and silently drops it).
BUILTIN_TOOL_NAMES = frozenset(
    {
        "exec_command",
        "write_stdin",
        "shell",
        "apply_patch",
        "update_plan",
        "request_user_input",
        "request_permissions",
        "view_image",
        "get_goal",
        "create_goal",
        "update_goal",
        "tool_search",
        "web_search",
    }
)


class Call:
    """One tool call of the model: ``function_call`` or ``custom_tool_call``."""

    def __init__(self, item: Mapping[str, Any]) -> None:
        self.item = dict(item)
        self.kind = str(item.get("type", "function_call"))
        self.call_id = str(item.get("call_id") or item.get("id") or "")
        self.name = str(item.get("name", ""))
        self.namespace = item.get("namespace")
        raw = item.get("arguments") if self.kind == "function_call" else item.get("input")
        self.arguments = raw if isinstance(raw, str) else json.dumps(raw or {})

    def output_item(self, output: Any) -> dict[str, Any]:
        """The input item that carries ``output`` back to the model."""
        kind = (
            "custom_tool_call_output"
            if self.kind == "custom_tool_call"
            else ("function_call_output")
        )
        return {"type": kind, "call_id": self.call_id, "output": output}


def dynamic_specs(tools: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The model-facing definitions of the dynamic tools (deferred ones left out)."""
    specs: list[dict[str, Any]] = []
    for spec in tools:
        if spec.get("type") == "namespace":
            inner = [_function_spec(t) for t in spec["tools"] if not t.get("deferLoading")]
            if inner:
                specs.append(
                    {
                        "type": "namespace",
                        "name": spec["name"],
                        "description": spec.get("description", ""),
                        "tools": inner,
                    }
                )
        elif not spec.get("deferLoading"):
            specs.append(_function_spec(spec))
    return specs


def _function_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "name": spec["name"],
        "description": spec.get("description", ""),
        "strict": False,
        "parameters": spec["inputSchema"],
    }


def _find_dynamic(
    tools: list[Mapping[str, Any]], name: str, namespace: str | None
) -> Mapping[str, Any] | None:
    for spec in tools:
        if spec.get("type") == "namespace":
            if spec.get("name") == namespace:
                for tool in spec["tools"]:
                    if tool.get("name") == name:
                        return tool
        elif namespace is None and spec.get("name") == name:
            return spec
    return None


class Toolbox:
    """The tools offered to the model for one turn, and how each call is answered."""

    def __init__(
        self, dynamic: list[Mapping[str, Any]], plugin_tools: list[Mapping[str, Any]]
    ) -> None:
        self.dynamic = dynamic
        self.plugin_tools: dict[str, Mapping[str, Any]] = {}
        for tool in plugin_tools:
            spec = tool.get("spec") or {}
            name = str(spec.get("name", ""))
            if not name or not callable(tool.get("call")):
                log.error("a plugin offered a tool without spec.name or call; ignored: %r", spec)
                continue
            if name in self.plugin_tools:
                log.error("tool %s is offered twice; the first offer is kept", name)
                continue
            self.plugin_tools[name] = tool

    def specs(self) -> list[dict[str, Any]]:
        """What the model request's ``tools`` holds: plugin tools first, then dynamic ones."""
        return [dict(t["spec"]) for t in self.plugin_tools.values()] + dynamic_specs(self.dynamic)

    async def run(self, turn: TurnRunner, call: Call) -> Any:
        """Answer ``call``; returns the output sent back to the model."""
        dynamic = _find_dynamic(self.dynamic, call.name, call.namespace)
        if dynamic is not None and call.kind == "function_call":
            return await self._dynamic(turn, call)
        tool = self._plugin_tool(call)
        if tool is None:
            return f"unsupported call: {call.name}"
        invocation = _Invocation(call, turn)
        try:
            return await tool["call"](invocation)
        except Exception as exc:
            log.exception("tool %s failed in thread %s", call.name, turn.thread_id)
            return f"tool {call.name} failed: {type(exc).__name__}: {exc}"

    def _plugin_tool(self, call: Call) -> Mapping[str, Any] | None:
        """The plugin tool answering ``call``.

        A plugin may offer a whole namespace as one tool (``spec.type ==
        "namespace"``, as the mcp family does): a call of a tool inside it
        arrives with ``namespace`` set and the inner tool's ``name``, and goes
        to the namespace's ``call`` (the invocation carries both names).
        """
        if call.namespace:
            tool = self.plugin_tools.get(str(call.namespace))
            if tool is not None and tool["spec"].get("type") == "namespace":
                return tool
        return self.plugin_tools.get(call.name)

    async def _dynamic(self, turn: TurnRunner, call: Call) -> str:
        try:
            arguments = json.loads(call.arguments) if call.arguments else {}
        except json.JSONDecodeError:
            arguments = call.arguments
        item = {
            "type": "dynamicToolCall",
            "id": call.call_id,
            "namespace": call.namespace,
            "tool": call.name,
            "arguments": arguments,
            "status": "inProgress",
            "contentItems": None,
            "success": None,
            "durationMs": None,
        }
        started = time.monotonic()
        await turn.start_item(item)
        params = {
            "threadId": turn.thread_id,
            "turnId": turn.turn_id,
            "callId": call.call_id,
            "namespace": call.namespace,
            "tool": call.name,
            "arguments": arguments,
        }
        content: list[dict[str, Any]] | None = None
        success = False
        try:
            answer = await turn.request("item/tool/call", params)
            content = _content_items(answer)
            success = bool(answer.get("success")) if isinstance(answer, dict) else False
            output = "\n".join(c.get("text", "") for c in content if c.get("type") == "inputText")
        except (RpcError, ServerRequestTimeout, ConnectionClosed, LookupError) as exc:
            output = f"dynamic tool {call.name} failed: {exc}"
        item.update(
            status="completed" if success else "failed",
            contentItems=content,
            success=success,
            durationMs=int((time.monotonic() - started) * 1000),
        )
        await turn.complete_item(item)
        return output


def _content_items(answer: Any) -> list[dict[str, Any]]:
    if not isinstance(answer, dict) or not isinstance(answer.get("contentItems"), list):
        raise RpcError(-32602, "the client's item/tool/call answer has no contentItems")
    return [c for c in answer["contentItems"] if isinstance(c, dict)]


class _Invocation:
    """What a plugin tool's ``call`` receives (see threads_tools in hookspecs)."""

    def __init__(self, call: Call, turn: TurnRunner) -> None:
        self.call_id = call.call_id
        self.name = call.name
        self.namespace = call.namespace
        self.arguments = call.arguments
        self.kind = call.kind
        self.turn = turn
