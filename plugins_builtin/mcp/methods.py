"""The client's MCP methods: status, reload, a direct tool call, a resource read.

* ``mcpServerStatus/list``: every configured server (sorted by name, paged
  with ``cursor``/``limit``), started if it was not, with its tools (as
  exposed to the model), resources and templates (``detail: "full"``, the
  default), ``authStatus``, and ``runtimeStatus``: the state of the shared
  connection (the reference only knows it per thread).
* ``config/mcpServer/reload``: re-read config.toml; running servers stop
  once their calls in flight finish, and start again from the new
  configuration when next used. An invalid configuration is refused with
  ``-32600`` naming the key, and the servers keep running.
* ``mcpServer/tool/call``: a client's own call of a tool of a loaded
  thread's server (no approval: the user asked for it). Elicitations during
  the call are asked of that client directly.
* ``mcpServer/resource/read``: ``resources/read`` on a server.
"""

from __future__ import annotations

import logging
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from kernel import RpcError, invalid_field
from kernel.rpc.errors import INTERNAL_ERROR, INVALID_REQUEST

from .config import ServerSpec, http_origin
from .connection import ServerConnection, StartupFailed
from .manager import CallScope, McpManager
from .params import ListMcpServerStatusParams, McpResourceReadParams, McpServerToolCallParams
from .toolcalls import dump

__all__ = [
    "read_resource",
    "status_page",
    "tool_call",
]

log = logging.getLogger("plugins.mcp")

_TOOL_FIELDS = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")


def _rpc_error(exc: Exception, what: str, spec: ServerSpec) -> RpcError:
    """An MCP failure as an answer: the server's own JSON-RPC error code when it has one."""
    if isinstance(exc, MCPError):
        if exc.error.code == types.REQUEST_TIMEOUT:
            exc = TimeoutError()
        else:
            code = exc.error.code if -32700 <= exc.error.code <= -32600 else INTERNAL_ERROR
            return RpcError(code, exc.error.message)
    if isinstance(exc, TimeoutError):
        return RpcError(
            INTERNAL_ERROR,
            f"{what} timed out after {spec.tool_timeout:g}s "
            f"(mcp_servers.{spec.name}.tool_timeout_sec)",
        )
    return RpcError(INTERNAL_ERROR, f"{what} failed: {exc}")


def server_spec(manager: McpManager, name: str) -> ServerSpec:
    """The enabled server ``name``; ``-32600`` naming ``server`` otherwise."""
    spec = manager.specs.get(name)
    if spec is None:
        raise RpcError(INVALID_REQUEST, f"unknown MCP server: {name}", {"field": "server"})
    if not spec.enabled:
        raise RpcError(
            INVALID_REQUEST,
            f"MCP server {name} is disabled (mcp_servers.{name}.enabled)",
            {"field": "server"},
        )
    return spec


async def _started(manager: McpManager, name: str, thread_id: str | None) -> ServerConnection:
    try:
        return await manager.ensure(name, thread_id)
    except StartupFailed as exc:
        raise RpcError(INTERNAL_ERROR, f"MCP server {name} failed to start: {exc}") from None


async def status_page(manager: McpManager, params: ListMcpServerStatusParams) -> dict[str, Any]:
    """The ``mcpServerStatus/list`` result."""
    names = sorted(manager.specs)
    if params.server_name is not None:
        names = [n for n in names if n == params.server_name]
    start = 0
    if params.cursor is not None:
        if not params.cursor.isdigit():
            raise invalid_field("cursor", "not a cursor this server returned")
        start = int(params.cursor)
    if params.limit is not None and params.limit < 1:
        raise invalid_field("limit", "must be at least 1")
    limit = params.limit or max(1, len(names))
    page = names[start : start + limit]
    await manager.ensure_all(params.thread_id, [n for n in page if manager.specs[n].enabled])
    full = params.detail != "toolsAndAuthOnly"
    data = [await _status(manager, name, full) for name in page]
    end = start + len(page)
    return {"data": data, "nextCursor": str(end) if end < len(names) else None}


async def _status(manager: McpManager, name: str, full: bool) -> dict[str, Any]:
    spec = manager.specs[name]
    conn = manager.connection(name)
    status: dict[str, Any] = {
        "name": name,
        "runtimeStatus": "disabled" if not spec.enabled else (conn.state if conn else "notStarted"),
        "pluginId": None,
        "httpOrigin": http_origin(spec.url) if spec.transport == "http" else None,
        "serverInfo": None,
        "serverCapabilities": None,
        "toolListMeta": None,
        "tools": {},
        "toolsError": None,
        "resources": [],
        "resourceTemplates": [],
        "authStatus": spec.auth_status,
    }
    if not spec.enabled or conn is None:
        return status
    if not conn.ready:
        status["toolsError"] = conn.error
        return status
    status.update(
        serverInfo=conn.server_info,
        serverCapabilities=conn.capabilities,
        toolListMeta=dump(conn.tools_meta),
        tools={tool.name: _tool(tool) for tool in conn.tools},
    )
    if full and conn.has_capability("resources"):
        try:
            status["resources"] = [dump(r) for r in await conn.list_all("resources")]
            status["resourceTemplates"] = [dump(t) for t in await conn.list_all("templates")]
        except Exception as exc:  # resources that cannot be listed are left out
            log.warning("MCP server %s: listing resources failed: %s", name, exc)
    return status


def _tool(tool: types.Tool) -> dict[str, Any]:
    wire = dump(tool)
    out = {k: wire[k] for k in _TOOL_FIELDS if k in wire}
    for extra in ("icons", "_meta"):
        if extra in wire:
            out[extra] = wire[extra]
    return out


async def tool_call(
    manager: McpManager, params: McpServerToolCallParams, connection: Any
) -> dict[str, Any]:
    """The ``mcpServer/tool/call`` result."""
    spec = server_spec(manager, params.server)
    if params.arguments is not None and not isinstance(params.arguments, dict):
        raise invalid_field("arguments", "must be an object")
    if params.meta is not None and not isinstance(params.meta, dict):
        raise invalid_field("_meta", "must be an object")
    if not spec.exposes(params.tool):
        raise RpcError(
            INVALID_REQUEST,
            f"tool {params.tool} of MCP server {spec.name} is disabled "
            f"(mcp_servers.{spec.name}.enabled_tools / disabled_tools)",
            {"field": "tool"},
        )
    conn = await _started(manager, spec.name, params.thread_id)
    scope = CallScope(params.thread_id, connection=connection)
    try:
        async with manager.scope(spec.name, scope):
            result = await conn.call_tool(
                params.tool, params.arguments, timeout=spec.tool_timeout, meta=params.meta
            )
    except Exception as exc:
        raise _rpc_error(exc, "tool call", spec) from None
    answer: dict[str, Any] = {"content": [dump(block) for block in result.content]}
    if result.structured_content is not None:
        answer["structuredContent"] = result.structured_content
    answer["isError"] = bool(result.is_error)
    if result.meta is not None:
        answer["_meta"] = result.meta
    return answer


async def read_resource(manager: McpManager, params: McpResourceReadParams) -> dict[str, Any]:
    """The ``mcpServer/resource/read`` result."""
    spec = server_spec(manager, params.server)
    if params.meta is not None and not isinstance(params.meta, dict):
        raise invalid_field("_meta", "must be an object")
    conn = await _started(manager, spec.name, params.thread_id)
    try:
        result = await conn.read_resource(params.uri, params.meta)
    except Exception as exc:
        raise _rpc_error(exc, "resource read", spec) from None
    return {"contents": [dump(c) for c in result.contents], "originCallId": None}
