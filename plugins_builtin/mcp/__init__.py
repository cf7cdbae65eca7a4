"""The ``mcp`` plugin: MCP servers as the agent's tools, through the official MCP SDK.

``[mcp_servers.<name>]`` (stdio or streamable HTTP) as in the reference;
each server's tools reach the model as the namespace ``mcp__<name>``, every
call is an ``mcpToolCall`` item; elicitations become
``mcpServer/elicitation/request``; ``mcpServerStatus/list``,
``config/mcpServer/reload``, ``mcpServer/tool/call``,
``mcpServer/resource/read``. See docs/mcp.md.
"""

from __future__ import annotations

from .plugin import McpPlugin

__all__ = ["McpPlugin"]
