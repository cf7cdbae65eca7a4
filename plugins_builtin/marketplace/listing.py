"""``plugin/list`` and ``plugin/installed`` answers for local marketplaces (blocking).

One pass: discover the marketplace files (:mod:`.discovery`), read the
installed bundles once (:mod:`.store`), then build one ``PluginSummary``
per entry, reading each local bundle's manifest through the stat-validated
cache of :mod:`.manifest`. Bundles installed from a marketplace the request
does not see (another project's, a removed one) are still listed, under
their marketplace's name, from the installed copy: what is installed is
always visible. ``installed_only`` keeps installed bundles (and the
``installSuggestionPluginNames`` present locally).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from .discovery import discover
from .manifest import Entry, Marketplace, MarketplaceError, load_manifest, load_marketplace
from .store import Record, scan
from .summary import marketplace_entry, summary

__all__ = ["enabled_in", "local_listing"]


def enabled_in(plugins_table: Any, plugin_id: str) -> bool:
    """What ``[plugins."<id>"] enabled`` says (an entry without the key counts as enabled)."""
    entry = plugins_table.get(plugin_id) if isinstance(plugins_table, dict) else None
    return isinstance(entry, dict) and entry.get("enabled", True) is True


def local_listing(
    home: str,
    user_home: str | None,
    cwds: Iterable[str],
    configured: Any,
    plugins_table: Any,
    *,
    installed_only: bool = False,
    suggestions: Iterable[str] = (),
) -> dict[str, Any]:
    """``{marketplaces, marketplaceLoadErrors}`` for the local marketplaces."""
    found = discover(cwds, home, user_home, configured)
    records = scan(home)
    wanted = set(suggestions)
    out: list[dict[str, Any]] = []
    covered: set[str] = set()
    for market in found.marketplaces:
        plugins = []
        for entry in market.entries:
            plugin_id = f"{entry.name}@{market.name}"
            record = records.get(plugin_id)
            covered.add(plugin_id)
            if installed_only and record is None and entry.name not in wanted:
                continue
            bundle = entry.source.get("path") if entry.source["type"] == "local" else None
            manifest = load_manifest(bundle) if bundle else None
            if manifest is None and record is not None:
                manifest = load_manifest(record.root)
            enabled = enabled_in(plugins_table, plugin_id)
            plugins.append(summary(market, entry, manifest, record, enabled))
        if plugins or not installed_only:
            out.append(marketplace_entry(market.name, market.path, market.display_name, plugins))
    names = {m.name for m in found.marketplaces}
    orphans: dict[str, list[Record]] = {}
    for record in records.values():
        if record.id not in covered and record.remote_plugin_id is None:
            orphans.setdefault(record.marketplace, []).append(record)
    for market_name in sorted(orphans):
        if market_name in names:
            continue  # the same name seen from another file: listed there already
        group = sorted(orphans[market_name], key=lambda r: r.plugin)
        path, known = _market_of(group[0])
        plugins = [_orphan(r, known, plugins_table) for r in group]
        display = known.display_name if known is not None else group[0].display_name
        out.append(marketplace_entry(market_name, path, display, plugins))
    return {"marketplaces": out, "marketplaceLoadErrors": list(found.errors)}


def _market_of(record: Record) -> tuple[str | None, Marketplace | None]:
    path = record.marketplace_path
    if path is None or not os.path.isfile(path):
        return None, None
    try:
        market = load_marketplace(path)
    except MarketplaceError:
        return path, None
    return (path, market) if market.name == record.marketplace else (None, None)


def _orphan(record: Record, market: Marketplace | None, plugins_table: Any) -> dict[str, Any]:
    """The summary of an installed bundle its marketplace no longer lists here."""
    entry = market.entry(record.plugin) if market is not None else None
    if entry is None:
        source = (
            record.source if record.source is not None else {"type": "local", "path": record.root}
        )
        entry = Entry(record.plugin, dict(source))
    stand_in = market or Marketplace(record.marketplace, "", "", None, ())
    manifest = load_manifest(record.root)
    result = summary(stand_in, entry, manifest, record, enabled_in(plugins_table, record.id))
    if entry.source["type"] == "local" and not os.path.isdir(str(entry.source.get("path"))):
        result["source"] = {"type": "local", "path": record.root}
    return result
