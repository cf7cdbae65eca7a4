"""The model's resource tools: ``list_mcp_resources``, ``list_mcp_resource_templates``,
``read_mcp_resource`` (offered, as by the reference, whenever a server is enabled).

Each call is an ``mcpToolCall`` item (server ``codex`` when no server is
named) whose result is one text block holding the JSON the model gets:
``{"resources": [{"server": ..., <resource>}...]}`` (with ``"server"`` first
when one was named), ``{"resourceTemplates": [...]}`` alike, and
``{"server", "uri", "contents"}``. Every page is fetched at once, so unlike
the reference there is no ``cursor`` argument. A server nobody configured
is answered without an item.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .connection import StartupFailed, describe_error
from .manager import McpManager
from .toolcalls import dump

__all__ = ["ResourceTools"]

_SERVER = {"type": "string", "description": "MCP server name. Omit to list from every server."}


def _spec(name: str, description: str, properties: dict[str, Any], required: list[str]) -> Any:
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        parameters["required"] = required
    return {
        "type": "function",
        "name": name,
        "description": description,
        "strict": False,
        "parameters": parameters,
    }


LIST_RESOURCES = _spec(
    "list_mcp_resources",
    "Lists resources provided by MCP servers: data that gives context, such as files, "
    "database schemas or application-specific information.",
    {"server": _SERVER},
    [],
)
LIST_TEMPLATES = _spec(
    "list_mcp_resource_templates",
    "Lists parameterized resource templates provided by MCP servers.",
    {"server": _SERVER},
    [],
)
READ_RESOURCE = _spec(
    "read_mcp_resource",
    "Read a resource from an MCP server given the server name and the resource URI.",
    {
        "server": {"type": "string", "description": "The MCP server name, as configured."},
        "uri": {"type": "string", "description": "The resource URI, from list_mcp_resources."},
    },
    ["server", "uri"],
)


class ResourceTools:
    """The three tools, bound to the manager."""

    def __init__(self, manager: McpManager) -> None:
        self.manager = manager

    def tools(self) -> list[dict[str, Any]]:
        return [
            {"spec": LIST_RESOURCES, "call": self.list_resources},
            {"spec": LIST_TEMPLATES, "call": self.list_templates},
            {"spec": READ_RESOURCE, "call": self.read_resource},
        ]

    async def list_resources(self, invocation: Any) -> Any:
        return await self._run(invocation, "resources")

    async def list_templates(self, invocation: Any) -> Any:
        return await self._run(invocation, "resourceTemplates")

    async def read_resource(self, invocation: Any) -> Any:
        return await self._run(invocation, "read")

    async def _run(self, invocation: Any, what: str) -> Any:
        try:
            args = json.loads(invocation.arguments or "{}")
        except json.JSONDecodeError as exc:
            return f"failed to parse function arguments: {exc}"
        if not isinstance(args, dict):
            return "failed to parse function arguments: expected an object"
        server = args.get("server")
        if server is not None and (not isinstance(server, str) or server not in self.manager.specs):
            return f"unknown MCP server '{server}'"
        if what == "read" and (server is None or not isinstance(args.get("uri"), str)):
            return "read_mcp_resource needs server and uri"
        turn = invocation.turn
        item: dict[str, Any] = {
            "type": "mcpToolCall",
            "id": invocation.call_id,
            "server": server or "codex",
            "tool": invocation.name,
            "status": "inProgress",
            "arguments": args,
            "appContext": None,
            "mcpAppUi": None,
            "pluginId": None,
            "readOnlyHint": None,
            "result": None,
            "error": None,
            "durationMs": None,
        }
        started = time.monotonic()
        await turn.start_item(item)
        try:
            if what == "read":
                assert server is not None
                payload = await self._read(turn, server, args["uri"])
            else:
                payload = await self._list(turn, what, server)
        except Exception as exc:
            message = f"{invocation.name} failed: {describe_error(exc)}"
            item.update(status="failed", error={"message": message})
            item["durationMs"] = int((time.monotonic() - started) * 1000)
            await turn.complete_item(item)
            return message
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        result = {"content": [{"type": "text", "text": text}], "structuredContent": None}
        item.update(status="completed", result={**result, "_meta": None})
        item["durationMs"] = int((time.monotonic() - started) * 1000)
        await turn.complete_item(item)
        return text

    async def _read(self, turn: Any, server: str, uri: str) -> dict[str, Any]:
        conn = await self.manager.ensure(server, turn.thread_id)
        result = await conn.read_resource(uri)
        return {"server": server, "uri": uri, "contents": [dump(c) for c in result.contents]}

    async def _list(self, turn: Any, what: str, server: str | None) -> dict[str, Any]:
        kind = "resources" if what == "resources" else "templates"
        if server is not None:
            conn = await self.manager.ensure(server, turn.thread_id)
            entries = await conn.list_all(kind) if conn.has_capability("resources") else []
            found = [{"server": server, **dump(e)} for e in entries]
            return {"server": server, what: found}
        found = []
        for name in self.manager.enabled():
            try:
                conn = await self.manager.ensure(name, turn.thread_id)
                if conn.has_capability("resources"):
                    found += [{"server": name, **dump(e)} for e in await conn.list_all(kind)]
            except StartupFailed:
                continue
        return {what: found}
