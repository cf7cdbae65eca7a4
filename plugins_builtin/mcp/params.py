"""The params of the client's MCP methods (no SDK import: the plugin declares them at load)."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from kernel import field

__all__ = [
    "ListMcpServerStatusParams",
    "McpResourceReadParams",
    "McpResourceReadTarget",
    "McpServerToolCallParams",
]


@attrs.frozen
class ListMcpServerStatusParams:
    """``mcpServerStatus/list``."""

    cursor: str | None = None
    limit: int | None = None
    detail: Literal["full", "toolsAndAuthOnly"] | None = None
    thread_id: str | None = None
    server_name: str | None = None


@attrs.frozen
class McpServerToolCallParams:
    """``mcpServer/tool/call``."""

    thread_id: str
    server: str
    tool: str
    arguments: Any = None
    meta: Any = field(default=None, wire="_meta")


@attrs.frozen
class McpResourceReadTarget:
    """A hosted app's account (no hosted apps here; accepted and ignored)."""

    connector_id: str
    link_id: str | None = None


@attrs.frozen
class McpResourceReadParams:
    """``mcpServer/resource/read``."""

    server: str
    uri: str
    thread_id: str | None = None
    origin_call_id: str | None = None
    connector_id: str | None = None
    target: McpResourceReadTarget | None = None
    meta: Any = field(default=None, wire="_meta")
