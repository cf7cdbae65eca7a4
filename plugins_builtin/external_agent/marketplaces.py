"""PLUGINS: which plugins the other agent enables, and where their marketplaces come from.

Claude Code names a plugin ``<plugin>@<marketplace>``. Read (all blocking):

* ``enabledPlugins`` of the scope's effective settings (``settings.json``
  with ``settings.local.json`` over it): ``{"<plugin>@<marketplace>":
  true}``; entries that are not ``true`` or not a valid id are ignored.
* The marketplaces' sources, first found wins: ``extraKnownMarketplaces``
  of the same settings (the reference), then ``~/.claude/plugins/
  known_marketplaces.json`` (where Claude Code records the marketplaces
  added with ``/plugin marketplace add``; the reference does not read
  it), then ``claude-plugins-official`` → GitHub's
  ``anthropics/claude-plugins-official`` when one of its plugins is
  enabled. An entry is ``{"source": {"source": "github", "repo":
  "owner/repo"}}``, ``{"source": {"source": "git", "url": ...}}``,
  ``{"source": {"source": "directory", "path": ...}}`` (or those fields
  directly, or ``"source": "<text>"``), with an optional ``ref``. A path
  starting with ``./`` or ``../`` is relative to the scope's root (the
  repository, or ``~/.claude``); ``~/`` is the user's home.

Detection (:func:`plugins_item`) offers, grouped by marketplace (sorted,
names sorted), the enabled plugins this server does not have yet
(installed or named in ``[plugins]``): for a marketplace this server
already sees, only its installable entries; for another, only when its
source is one ``marketplace/add`` accepts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from .model import PLUGINS, detected_item
from .source import Scope, SourceError, effective_settings, read_json

__all__ = [
    "MarketplaceSource",
    "PluginView",
    "enabled_plugins",
    "marketplace_sources",
    "plugin_view",
    "plugins_item",
    "split_id",
]

log = logging.getLogger("plugins.external_agent")

OFFICIAL_MARKETPLACE = "claude-plugins-official"
OFFICIAL_SOURCE = "anthropics/claude-plugins-official"
KNOWN_MARKETPLACES = Path("plugins") / "known_marketplaces.json"
_FORBIDDEN = frozenset("@/\\\0")


@attrs.frozen
class MarketplaceSource:
    """Where one marketplace comes from: a ``marketplace/add`` source and its git ref."""

    source: str
    ref_name: str | None = None


@attrs.frozen
class PluginView:
    """What this server has, for detection (taken from ``kernel.services["marketplace"]``).

    ``installable``: marketplace name → entries that can be installed;
    ``present``: plugin ids installed or configured; ``source_kind``:
    ``"local"``/``"git"``/None for a source.
    """

    installable: Mapping[str, frozenset[str]]
    present: frozenset[str]
    source_kind: Callable[[str], str | None]


async def plugin_view(market: Any, owner: object) -> PluginView | None:
    """The marketplace service's view, or None (no service, feature off, or it failed)."""
    if market is None or not market.enabled:
        return None
    try:
        installable = await market.installable(owner)
    except Exception:
        log.exception("listing this server's marketplaces for plugin detection failed")
        return None
    return PluginView(installable, market.present_plugin_ids(), market.source_kind)


def split_id(plugin_id: str) -> tuple[str, str] | None:
    """``(plugin, marketplace)`` of ``<plugin>@<marketplace>``; None when malformed."""
    plugin, at, market = plugin_id.strip().rpartition("@")
    if not at or not _segment(plugin) or not _segment(market):
        return None
    return plugin, market


def _segment(name: str) -> bool:
    """A plugin or marketplace name: one plain path segment."""
    return bool(name) and name not in (".", "..") and not _FORBIDDEN & set(name)


def enabled_plugins(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(plugin, marketplace)`` of every ``enabledPlugins`` entry set to ``true``, once each."""
    table = settings.get("enabledPlugins")
    found: list[tuple[str, str]] = []
    for key, on in table.items() if isinstance(table, dict) else ():
        parsed = split_id(key) if isinstance(key, str) and on is True else None
        if parsed is not None and parsed not in found:
            found.append(parsed)
    return found


def _source_of(value: Any, root: Path, user_home: Path) -> MarketplaceSource | None:
    """One ``extraKnownMarketplaces``/``known_marketplaces.json`` entry as a source."""
    if not isinstance(value, dict):
        return None
    nested = value.get("source")
    fields = nested if isinstance(nested, dict) else value
    candidates = (fields.get("repo"), fields.get("url"), fields.get("path"), nested)
    text = next((c.strip() for c in candidates if isinstance(c, str) and c.strip()), None)
    if text is None:
        return None
    if text.startswith(("./", "../")) or text in (".", ".."):
        text = os.path.normpath(root / text)
    elif text == "~" or text.startswith("~/"):
        text = os.path.normpath(user_home / text[2:])
    ref = fields.get("ref", value.get("ref"))
    ref = ref.strip() if isinstance(ref, str) and ref.strip() else None
    return MarketplaceSource(text, ref)


def _entries(table: Any, root: Path, user_home: Path) -> dict[str, MarketplaceSource]:
    """The usable entries of a ``{name: entry}`` table."""
    found: dict[str, MarketplaceSource] = {}
    for name, value in table.items() if isinstance(table, dict) else ():
        source = _source_of(value, root, user_home) if isinstance(name, str) else None
        if source is not None:
            found[name] = source
    return found


def marketplace_sources(
    scope: Scope, settings: Mapping[str, Any] | None
) -> dict[str, MarketplaceSource]:
    """Every marketplace source the other agent knows for ``scope`` (module docstring)."""
    root = scope.repo if scope.repo is not None else scope.claude_home
    sources: dict[str, MarketplaceSource] = {}
    known_file = scope.claude_home / KNOWN_MARKETPLACES
    try:
        known = read_json(known_file)
    except SourceError as exc:
        log.warning("external agent marketplaces file ignored: %s", exc)
        known = None
    sources.update(_entries(known, scope.claude_home, scope.user_home))
    extra = settings.get("extraKnownMarketplaces") if settings else None
    sources.update(_entries(extra, root, scope.user_home))  # the scope's settings win
    enabled = enabled_plugins(settings or {})
    if OFFICIAL_MARKETPLACE not in sources and any(m == OFFICIAL_MARKETPLACE for _, m in enabled):
        sources[OFFICIAL_MARKETPLACE] = MarketplaceSource(OFFICIAL_SOURCE)
    return sources


def plugins_item(scope: Scope, view: PluginView) -> list[dict[str, Any]]:
    """PLUGINS naming, per marketplace, the enabled plugins this server could install."""
    settings = effective_settings(scope.settings)
    if not settings:
        return []
    sources = marketplace_sources(scope, settings)
    groups: dict[str, list[str]] = {}
    for plugin, market in enabled_plugins(settings):
        if f"{plugin}@{market}" in view.present:
            continue
        if market in view.installable:
            if plugin not in view.installable[market]:
                continue
        elif market not in sources or view.source_kind(sources[market].source) is None:
            continue
        groups.setdefault(market, []).append(plugin)
    if not groups:
        return []
    plugins = [{"marketplaceName": m, "pluginNames": sorted(groups[m])} for m in sorted(groups)]
    description = f"Migrate enabled plugins from {scope.settings}"
    return [detected_item(PLUGINS, description, scope.cwd, plugins=plugins)]
