"""The marketplace family's writes to config.toml, in one place.

Everything goes through the kernel's writer,
:meth:`kernel.config.Config.update_user`: read-modify-write of the user
layer under its lock, atomic replace, every other key kept (comments and
layout are not: the file is written back by tomli-w). Should a shared
config writer be published later (``kernel.services["config"]``), this is
the only module to change. All functions block; run them in the kernel's
blocking threads.

Keys written (the reference's):

* ``[plugins."<plugin>@<marketplace>"] enabled = true`` on install; the
  table is removed on uninstall;
* ``[marketplaces.<name>] source_type = "local"|"git"``, ``source``,
  ``ref``, ``sparse_paths``, ``last_updated`` (RFC 3339, UTC) and
  ``last_revision`` (git) on ``marketplace/add`` and ``marketplace/upgrade``;
  removed by ``marketplace/remove``.
"""

from __future__ import annotations

import datetime
from typing import Any

__all__ = [
    "forget_marketplace",
    "forget_plugin",
    "now_rfc3339",
    "record_marketplace",
    "set_enabled",
]


def now_rfc3339() -> str:
    """The current UTC time as ``2026-04-10T00:00:00Z``."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _table(user: dict[str, Any], key: str) -> dict[str, Any]:
    table = user.get(key)
    if not isinstance(table, dict):
        table = user[key] = {}
    return table


def set_enabled(config: Any, plugin_id: str, enabled: bool) -> None:
    """``[plugins."<id>"] enabled = <enabled>`` (other keys of the table kept)."""

    def change(user: dict[str, Any]) -> None:
        plugins = _table(user, "plugins")
        entry = plugins.get(plugin_id)
        entry = entry if isinstance(entry, dict) else {}
        entry["enabled"] = enabled
        plugins[plugin_id] = entry

    config.update_user(change)


def forget_plugin(config: Any, plugin_id: str) -> bool:
    """Remove ``[plugins."<id>"]``; False when it was not there."""

    def change(user: dict[str, Any]) -> bool:
        plugins = user.get("plugins")
        if not isinstance(plugins, dict) or plugin_id not in plugins:
            return False
        del plugins[plugin_id]
        if not plugins:
            del user["plugins"]
        return True

    return bool(config.update_user(change))


def record_marketplace(config: Any, name: str, fields: dict[str, Any]) -> None:
    """Write ``[marketplaces.<name>]`` (replacing it); ``None`` values are left out."""

    def change(user: dict[str, Any]) -> None:
        _table(user, "marketplaces")[name] = {k: v for k, v in fields.items() if v is not None}

    config.update_user(change)


def forget_marketplace(config: Any, name: str) -> bool:
    """Remove ``[marketplaces.<name>]``; False when it was not there."""

    def change(user: dict[str, Any]) -> bool:
        table = user.get("marketplaces")
        if not isinstance(table, dict) or name not in table:
            return False
        del table[name]
        if not table:
            del user["marketplaces"]
        return True

    return bool(config.update_user(change))
