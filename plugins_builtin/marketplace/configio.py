"""The marketplace family's writes to config.toml, in one place.

Everything goes through :meth:`kernel.Kernel.write_config`: read-modify-write
of the user layer under its lock, off the event loop, atomic replace,
untouched keys keeping their comments and layout; the result is checked
against the settings catalog, and every plugin hears ``kernel_config_changed``
(the skills family drops its cached lists when ``[plugins]`` changes), as
for a client's ``config/batchWrite``. Each function is a coroutine to await
on the loop.

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

from kernel import Kernel

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


async def set_enabled(kernel: Kernel, plugin_id: str, enabled: bool) -> None:
    """``[plugins."<id>"] enabled = <enabled>`` (other keys of the table kept)."""

    def change(user: dict[str, Any]) -> None:
        plugins = _table(user, "plugins")
        entry = plugins.get(plugin_id)
        entry = entry if isinstance(entry, dict) else {}
        entry["enabled"] = enabled
        plugins[plugin_id] = entry

    await kernel.write_config(change)


async def forget_plugin(kernel: Kernel, plugin_id: str) -> bool:
    """Remove ``[plugins."<id>"]``; False when it was not there."""

    def change(user: dict[str, Any]) -> bool:
        plugins = user.get("plugins")
        if not isinstance(plugins, dict) or plugin_id not in plugins:
            return False
        del plugins[plugin_id]
        if not plugins:
            del user["plugins"]
        return True

    return bool((await kernel.write_config(change)).result)


async def record_marketplace(kernel: Kernel, name: str, fields: dict[str, Any]) -> None:
    """Write ``[marketplaces.<name>]`` (replacing it); ``None`` values are left out."""

    def change(user: dict[str, Any]) -> None:
        _table(user, "marketplaces")[name] = {k: v for k, v in fields.items() if v is not None}

    await kernel.write_config(change)


async def forget_marketplace(kernel: Kernel, name: str) -> bool:
    """Remove ``[marketplaces.<name>]``; False when it was not there."""

    def change(user: dict[str, Any]) -> bool:
        table = user.get("marketplaces")
        if not isinstance(table, dict) or name not in table:
            return False
        del table[name]
        if not table:
            del user["marketplaces"]
        return True

    return bool((await kernel.write_config(change)).result)
