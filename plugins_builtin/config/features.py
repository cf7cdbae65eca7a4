"""``experimentalFeature/list`` and ``experimentalFeature/enablement/set`` over ``[features]``.

The flags come from the plugins that read them (the ``config_features``
hook); a flag is enabled when ``[features] <name>`` says so in any layer,
else by its default. Enabling writes ``features.<name>`` to config.toml
through the kernel's writer (so the owning plugin sees it at once).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kernel import RpcError
from kernel.rpc.errors import INVALID_REQUEST

__all__ = ["STAGES", "feature_list", "known_features", "page"]

log = logging.getLogger("plugins.config")

STAGES = ("beta", "underDevelopment", "stable", "deprecated", "removed")


async def known_features(kernel: Any) -> dict[str, dict[str, Any]]:
    """Every flag the loaded plugins declared, by name (first declaration wins)."""
    found: dict[str, dict[str, Any]] = {}
    for plugin, listed in await kernel.plugins.acall("config_features"):
        for raw in listed or []:
            name = raw.get("name") if isinstance(raw, Mapping) else None
            stage = raw.get("stage") if isinstance(raw, Mapping) else None
            if not isinstance(name, str) or stage not in STAGES:
                log.error("plugin %s: config_features returned a malformed entry", plugin)
                continue
            found.setdefault(
                name,
                {
                    "name": name,
                    "stage": stage,
                    "displayName": raw.get("displayName"),
                    "announcement": raw.get("announcement"),
                    "defaultEnabled": bool(raw.get("defaultEnabled", False)),
                },
            )
    return found


def feature_list(kernel: Any, features: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """``ExperimentalFeature`` entries, sorted by name, with their current state."""
    table = kernel.config.get("features")
    table = table if isinstance(table, Mapping) else {}
    entries = []
    for name in sorted(features):
        entry = dict(features[name])
        value = table.get(name)
        entry["enabled"] = value if isinstance(value, bool) else entry["defaultEnabled"]
        entries.append(entry)
    return entries


def page(entries: list[dict[str, Any]], cursor: str | None, limit: int | None) -> dict[str, Any]:
    """An offset page (the cursor is the offset as text, as the reference)."""
    start = 0
    if cursor is not None:
        if not cursor.isdigit():
            raise RpcError(INVALID_REQUEST, f"invalid cursor: {cursor}")
        start = int(cursor)
    size = len(entries) if not limit else limit
    chunk = entries[start : start + size]
    end = start + len(chunk)
    return {"data": chunk, "nextCursor": str(end) if end < len(entries) else None}
