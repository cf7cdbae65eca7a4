"""Installed plugin bundles as the agent sees them: skill roots and model context.

:class:`Installed` is an in-memory index of the installed bundles (read at
startup and after every install or uninstall), so the hooks below cost no
disk access:

* ``skills_roots`` (the skills family's hook): each installed bundle that
  config.toml enables contributes its skills directory, namespaced by the
  bundle's name (``alpha:greet``), with its ``pluginId``;
* ``threads_context`` (the threads family's hook): a ``developer`` message
  ``<plugins_instructions>`` listing the enabled bundles, and for each bundle
  the user names (a ``mention`` input item or a ``[$name](plugin://id)``
  link whose path is ``plugin://<plugin>@<marketplace>``) a ``developer``
  message joining the conversation with what that bundle brings (its skill
  prefix, MCP servers, apps).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

import attrs

from .detail import apps, mcp_servers
from .listing import enabled_in
from .manifest import load_manifest
from .store import Record, scan

__all__ = ["Bundle", "Installed", "capabilities_message", "mentioned_ids", "plugins_instructions"]

_LINK = re.compile(r"\[[$@]?[^\]]*\]\s*\(plugin://([^)\s]+)\)")


@attrs.frozen
class Bundle:
    """What the agent needs of one installed bundle."""

    record: Record
    skills_dir: str | None
    description: str | None
    mcp_servers: tuple[str, ...]
    apps: tuple[str, ...]
    hooks_file: str | None = None


class Installed:
    """The installed bundles of one home (refreshed by :meth:`refresh`, blocking)."""

    def __init__(self, home: str) -> None:
        self.home = home
        self.bundles: dict[str, Bundle] = {}

    def refresh(self) -> dict[str, Bundle]:
        """Re-read the cache directory; returns (and keeps) the new index."""
        bundles = {}
        for plugin_id, record in scan(self.home).items():
            manifest = load_manifest(record.root)
            if manifest is None:
                continue
            bundles[plugin_id] = Bundle(
                record,
                manifest.component("skills", "./skills/"),
                manifest.description,
                tuple(mcp_servers(manifest)),
                tuple(a["name"] for a in apps(manifest)),
                manifest.component("hooks", "./hooks/hooks.json"),
            )
        self.bundles = bundles
        return bundles

    def enabled(self, plugins_table: Any) -> list[Bundle]:
        """Installed bundles that ``[plugins."<id>"] enabled`` turns on, by id."""
        return [b for i, b in sorted(self.bundles.items()) if enabled_in(plugins_table, i)]

    def hook_files(self, plugins_table: Any, data_root: str) -> list[dict[str, Any]]:
        """``hooks_bundles`` entries (the hooks family's hook) of the enabled bundles."""
        found = []
        for bundle in self.enabled(plugins_table):
            path = bundle.hooks_file
            if path is None or not os.path.isfile(path):
                continue
            root = bundle.record.root
            found.append(
                {
                    "pluginId": bundle.record.id,
                    "root": root,
                    "hooksFile": path,
                    "relativePath": os.path.relpath(path, root),
                    "version": os.path.basename(root),
                    "dataDir": os.path.join(data_root, bundle.record.id),
                }
            )
        return found

    def skill_roots(self, plugins_table: Any) -> list[dict[str, Any]]:
        """``skills_roots`` entries of the enabled bundles."""
        return [
            {
                "path": b.skills_dir,
                "pluginId": b.record.id,
                "namespace": b.record.plugin,
                "pluginRoot": b.record.root,
            }
            for b in self.enabled(plugins_table)
            if b.skills_dir is not None
        ]


def mentioned_ids(user_input: Iterable[dict[str, Any]]) -> list[str]:
    """Bundle ids the user named with ``plugin://`` paths, in order, each once."""
    found: list[str] = []
    for item in user_input:
        paths: list[str] = []
        if item.get("type") == "mention" and isinstance(item.get("path"), str):
            paths.append(item["path"])
        elif item.get("type") == "text" and isinstance(item.get("text"), str):
            paths += [f"plugin://{m}" for m in _LINK.findall(item["text"])]
        for path in paths:
            if path.startswith("plugin://") and path[9:] and path[9:] not in found:
                found.append(path[9:])
    return found


def plugins_instructions(bundles: list[Bundle]) -> str | None:
    """The ``<plugins_instructions>`` text listing the enabled bundles."""
    if not bundles:
        return None
    lines = [
        "<plugins_instructions>",
        "## Plugins",
        "Plugins are bundles of skills, MCP servers and apps. These are enabled here:",
        "### Available plugins",
    ]
    for bundle in bundles:
        name = bundle.record.plugin
        lines.append(f"- `{name}`: {bundle.description}" if bundle.description else f"- `{name}`")
    lines += [
        "### How to use plugins",
        "- A plugin is not called itself: use its skills (named `<plugin>:<skill>`), MCP tools "
        "and apps.",
        "- When the user names a plugin, prefer what it brings for that turn; when a listed "
        "plugin fits the task, prefer it to similar standalone tools.",
        "- If the user names a plugin that is not listed, or it has nothing that fits, say so "
        "briefly and carry on as well as you can.",
        "</plugins_instructions>",
    ]
    return "\n".join(lines)


def capabilities_message(bundle: Bundle) -> dict[str, Any] | None:
    """The ``developer`` message for a bundle the user named (None if it brings nothing)."""
    name = bundle.record.plugin
    lines = [f"Capabilities from the `{name}` plugin:"]
    if bundle.skills_dir is not None:
        lines.append(f"- Its skills are listed with the prefix `{name}:`.")
    if bundle.mcp_servers:
        servers = ", ".join(f"`{s}`" for s in bundle.mcp_servers)
        lines.append(f"- Its MCP servers: {servers}.")
    if bundle.apps:
        lines.append(f"- Its apps: {', '.join(f'`{a}`' for a in bundle.apps)}.")
    if len(lines) == 1:
        return None
    text = "\n".join(lines)
    return {
        "type": "message",
        "role": "developer",
        "content": [{"type": "input_text", "text": text}],
    }
