"""``kernel plugins``: every installed plugin, its status and what it serves.

Status follows the real selection rules. To show what a plugin *would*
serve, every plugin not forbidden by requirements.toml is loaded and
registered in a separate probe (never started), so a disabled plugin still
lists its methods and a broken one shows its error.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .bootstrap import add_plugin_options
from .config import Config
from .plugins import PluginHost
from .runtime import Kernel

__all__ = ["describe_plugins", "format_plugins"]


def describe_plugins(
    home: Path, overrides: Sequence[str], plugins: Sequence[str] | None, disable: Sequence[str]
) -> list[dict[str, Any]]:
    """One dict per installed plugin (see the module docstring)."""
    config = Config(home, overrides)

    real = PluginHost()
    real.discover()
    real.select(plugins, disable, config.plugin_enabled, config.managed_enabled)

    probe = PluginHost()
    probe.discover()
    probe.select(None, (), lambda name: None, config.managed_enabled)
    probe.prioritize(real.order)
    probe.load()
    parser = argparse.ArgumentParser(add_help=False)
    add_plugin_options(probe, parser)
    options, _ = parser.parse_known_args([])
    kernel = Kernel(config, probe, options)
    kernel.configure_and_register(strict=False)

    rows = []
    for name in sorted(real.records):
        record, probed = real.records[name], probe.records[name]
        entries = kernel.registry.owned_by(name)
        rows.append(
            {
                "name": name,
                "distribution": record.distribution,
                "version": record.version,
                "source": record.source,
                "enabled": record.selected and probed.error is None,
                "disabledReason": record.disabled_reason,
                "error": probed.error and f"{probed.stage}: {probed.error}",
                "methods": [_entry(e) for e in entries if e.kind == "method"],
                "notifications": [_entry(e) for e in entries if e.kind == "notification"],
                "serverRequests": [_entry(e) for e in entries if e.kind == "server_request"],
                "clientNotifications": [
                    _entry(e) for e in entries if e.kind == "client_notification"
                ],
            }
        )
    return rows


def _entry(entry: Any) -> dict[str, Any]:
    return {"name": entry.name, "experimental": entry.experimental}


def _entry_text(entry: dict[str, Any]) -> str:
    return f"{entry['name']} (experimental)" if entry["experimental"] else entry["name"]


def format_plugins(rows: list[dict[str, Any]]) -> str:
    """Human-readable listing of :func:`describe_plugins` rows."""
    if not rows:
        return "no plugins installed (entry-point group kernel.plugins)"
    lines = []
    for row in rows:
        dist = f"{row['distribution']} {row['version']}" if row["distribution"] else row["source"]
        status = "enabled" if row["enabled"] else f"disabled ({row['disabledReason'] or 'failed'})"
        lines.append(f"{row['name']}  [{status}]  from {dist}")
        if row["error"]:
            lines.append(f"    error: {row['error']}")
        for label, key in (
            ("methods", "methods"),
            ("notifications", "notifications"),
            ("server requests", "serverRequests"),
            ("client notifications", "clientNotifications"),
        ):
            if row[key]:
                lines.append(f"    {label}: {', '.join(_entry_text(e) for e in row[key])}")
    return "\n".join(lines)
