"""``externalAgentConfig/detect``: what could be imported now, per scope and item type.

An item is listed only when importing it would change something: a config
key or MCP server the target lacks, a hooks.json still missing, a skill,
command or subagent with no namesake yet, an ``AGENTS.md`` missing or
empty, an enabled plugin this server does not have (only with the
marketplace family's view, :mod:`.marketplaces`), sessions not imported in
their current content. Nothing is written.

A file of the other agent that cannot be read (invalid JSON in
``settings.json``, an unreadable ``.mcp.json``) leaves out what depends on
it, with a warning in the log, instead of failing the whole answer: the
rest of the scope is still worth showing. (The reference answers -32603.)
Everything here blocks.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .configs import config_from_settings, mcp_servers_from_sources, missing_part
from .documents import command_sources, missing_skills, subagent_sources
from .hooks import hook_groups
from .marketplaces import PluginView, plugins_item
from .memory import missing_notes
from .model import (
    AGENTS_MD,
    COMMANDS,
    CONFIG,
    HOOKS,
    MCP_SERVER_CONFIG,
    MEMORY,
    SKILLS,
    SUBAGENTS,
    detected_item,
)
from .source import Scope, SourceError, effective_settings, is_missing_or_empty

__all__ = ["detect_scope", "read_toml"]

log = logging.getLogger("plugins.external_agent")


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a table ({} when missing); :class:`SourceError` when unusable."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SourceError(f"invalid existing config.toml {path}: {exc}") from None


def _guarded(what: str, scope: Scope, detect: Callable[[], list[dict[str, Any]]]) -> list[Any]:
    """``detect()``, or nothing (logged) when the other agent's files are unusable."""
    try:
        return detect()
    except (SourceError, OSError, UnicodeDecodeError) as exc:
        where = scope.cwd or "home"
        log.warning("external agent %s detection skipped for %s: %s", what, where, exc)
        return []


def detect_scope(
    scope: Scope, *, memory: bool, plugins: PluginView | None = None
) -> list[dict[str, Any]]:
    """The migration items of one scope (home or repository), in the reference's order.

    ``plugins`` is what the marketplace family has (None: PLUGINS not offered).
    """
    items: list[dict[str, Any]] = []
    items += _guarded("config", scope, lambda: _config(scope))
    items += _guarded("MCP server", scope, lambda: _mcp(scope))
    items += _guarded("hooks", scope, lambda: _hooks(scope))
    items += _guarded("skills", scope, lambda: _skills(scope))
    items += _guarded("commands", scope, lambda: _commands(scope))
    items += _guarded("subagents", scope, lambda: _subagents(scope))
    items += _guarded("AGENTS.md", scope, lambda: _agents_md(scope))
    if plugins is not None:
        items += _guarded("plugins", scope, lambda: plugins_item(scope, plugins))
    if memory and scope.repo is None:
        items += _guarded("memory", scope, lambda: _memory(scope))
    return items


def _config(scope: Scope) -> list[dict[str, Any]]:
    """CONFIG when the settings map to keys the target config lacks."""
    settings = effective_settings(scope.settings)
    if not settings:
        return []
    migrated = config_from_settings(settings)
    if not migrated or not missing_part(read_toml(scope.target_config), migrated):
        return []
    description = f"Migrate {scope.settings} into {scope.target_config}"
    return [detected_item(CONFIG, description, scope.cwd)]


def mcp_settings(scope: Scope) -> dict[str, Any] | None:
    """Settings that filter MCP servers: the scope's, else (repository) the home's."""
    settings = effective_settings(scope.settings)
    if settings is None and scope.repo is not None:
        try:
            settings = effective_settings(scope.claude_home / "settings.json")
        except SourceError:
            settings = None
    return settings


def _mcp(scope: Scope) -> list[dict[str, Any]]:
    """MCP_SERVER_CONFIG naming the servers the target config lacks."""
    servers, _ = mcp_servers_from_sources(scope, mcp_settings(scope))
    existing = read_toml(scope.target_config).get("mcp_servers")
    existing = existing if isinstance(existing, dict) else {}
    names = [name for name in servers if name not in existing]
    if not names:
        return []
    description = f"Migrate MCP servers from {scope.mcp_root} into {scope.target_config}"
    return [
        detected_item(
            MCP_SERVER_CONFIG, description, scope.cwd, mcpServers=[{"name": n} for n in names]
        )
    ]


def _hooks(scope: Scope) -> list[dict[str, Any]]:
    """HOOKS naming the events to migrate, while the target hooks.json is empty."""
    groups = hook_groups(scope)
    if not groups or not is_missing_or_empty(scope.target_hooks):
        return []
    description = f"Migrate hooks from {scope.source_dir} to {scope.target_hooks}"
    return [
        detected_item(HOOKS, description, scope.cwd, hooks=[{"name": event} for event in groups])
    ]


def _skills(scope: Scope) -> list[dict[str, Any]]:
    """SKILLS naming the valid skills the target lacks."""
    names = missing_skills(scope)
    if not names:
        return []
    description = f"Migrate skills from {scope.source_dir / 'skills'} to {scope.target_skills}"
    return [detected_item(SKILLS, description, scope.cwd, skills=[{"name": n} for n in names])]


def _commands(scope: Scope) -> list[dict[str, Any]]:
    """COMMANDS naming the skills the supported commands would become."""
    sources, _ = command_sources(scope)
    names = [name for name in sorted(sources) if not (scope.target_skills / name).exists()]
    if not names:
        return []
    source = scope.source_dir / "commands"
    description = f"Migrate commands from {source} to {scope.target_skills}"
    return [detected_item(COMMANDS, description, scope.cwd, commands=[{"name": n} for n in names])]


def _subagents(scope: Scope) -> list[dict[str, Any]]:
    """SUBAGENTS naming the usable subagents the target lacks."""
    usable, _ = subagent_sources(scope)
    names = [
        front["name"]
        for stem, (_, front, _) in sorted(usable.items())
        if not (scope.target_agents / f"{stem}.toml").exists()
    ]
    if not names:
        return []
    source = scope.source_dir / "agents"
    description = f"Migrate subagents from {source} to {scope.target_agents}"
    return [
        detected_item(SUBAGENTS, description, scope.cwd, subagents=[{"name": n} for n in names])
    ]


def _agents_md(scope: Scope) -> list[dict[str, Any]]:
    """AGENTS_MD when there are instructions and no (or an empty) AGENTS.md."""
    source = scope.agents_md_source()
    if source is None or not is_missing_or_empty(scope.target_agents_md):
        return []
    description = f"Migrate {source} to {scope.target_agents_md}"
    return [detected_item(AGENTS_MD, description, scope.cwd)]


def _memory(scope: Scope) -> list[dict[str, Any]]:
    """MEMORY naming the notes not copied yet."""
    notes = missing_notes(scope)
    if not notes:
        return []
    target = scope.server_home / "memories" / "claude"
    description = f"Copy memory notes from {scope.claude_home / 'projects'} to {target}"
    return [detected_item(MEMORY, description, scope.cwd, memory=notes)]
