"""What a plugin bundle holds: hooks, MCP servers and apps, for ``plugin/read`` and the model.

Read from the bundle's manifest (paths are ``./``-relative inside the bundle):

* ``hooks`` (default ``./hooks/hooks.json``): ``{"hooks": {"PreToolUse":
  [{"matcher", "hooks": [handler...]}]}}``; each handler becomes a
  ``PluginHookSummary`` ``{key: "<id>:<file>:<snake_event>:<group>:<handler>",
  eventName}``, events in the reference's canonical order;
* ``mcpServers`` (default ``./.mcp.json``): ``{"mcpServers": {name: ...}}``
  gives the server names;
* ``apps`` (default ``./.app.json``): ``{"apps": {key: {"id", "name",
  "description", "installUrl", "category"}}}`` gives ``AppSummary`` entries.

A component file that is missing or unreadable contributes nothing. All
blocking (small JSON reads).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from .manifest import Manifest

__all__ = ["EVENTS", "apps", "hook_summaries", "mcp_servers"]

EVENTS = (
    "PreModelRequest", "PostModelRequest", "PreToolUse", "PermissionRequest", "PostToolUse",
    "PreCompact", "PostCompact", "SessionStart", "SessionEnd", "UserPromptSubmit",
    "SubagentStart", "SubagentStop", "Stop", "Interrupt",
)  # fmt: skip


def _json(path: str | None) -> Any:
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read(8 << 20))
    except (OSError, ValueError, UnicodeError):
        return None


def _snake(event: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", event).lower()


def _camel(event: str) -> str:
    return event[:1].lower() + event[1:]


def hook_summaries(manifest: Manifest, plugin_id: str) -> list[dict[str, str]]:
    """``PluginHookSummary`` entries of the bundle's hooks file."""
    path = manifest.component("hooks", "./hooks/hooks.json")
    data = _json(path)
    table = data.get("hooks") if isinstance(data, dict) else None
    if not isinstance(table, dict) or path is None:
        return []
    relative = os.path.relpath(path, manifest.root)
    out = []
    for event in EVENTS:
        groups = table.get(event)
        for g, group in enumerate(groups if isinstance(groups, list) else []):
            handlers = group.get("hooks") if isinstance(group, dict) else None
            for h, _handler in enumerate(handlers if isinstance(handlers, list) else []):
                key = f"{plugin_id}:{relative}:{_snake(event)}:{g}:{h}"
                out.append({"key": key, "eventName": _camel(event)})
    return out


def mcp_servers(manifest: Manifest) -> list[str]:
    """Names of the bundle's MCP servers."""
    data = _json(manifest.component("mcpServers", "./.mcp.json"))
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    return [str(name) for name in servers] if isinstance(servers, dict) else []


def apps(manifest: Manifest) -> list[dict[str, Any]]:
    """``AppSummary`` entries of the bundle's apps file."""
    data = _json(manifest.component("apps", "./.app.json"))
    table = data.get("apps") if isinstance(data, dict) else None
    out = []
    for key, app in table.items() if isinstance(table, dict) else ():
        if not isinstance(app, dict):
            continue
        app_id = app.get("id")

        def text(name: str, app: dict[str, Any] = app) -> str | None:
            value = app.get(name)
            return value if isinstance(value, str) and value else None

        out.append(
            {
                "id": app_id if isinstance(app_id, str) and app_id else str(key),
                "name": text("name") or str(key),
                "description": text("description"),
                "installUrl": text("installUrl"),
                "category": text("category"),
            }
        )
    return out
