"""Importing one migration item (all types but SESSIONS), with its successes and failures.

File work runs in the kernel's blocking threads. The home's config.toml is
written through the kernel (:meth:`kernel.Kernel.write_config` where the
kernel has it: locked, atomic, checked against every family's settings
types and announced to them with ``kernel_config_changed``; else
:meth:`kernel.config.Config.update_user`). Each MCP server is its own
write, so one the MCP family refuses fails alone. A repository's
``.codex/config.toml`` is written here (read, missing keys added, replaced
atomically). Only missing keys are ever added.

When a detected item's ``details`` name things (``skills``, ``commands``,
``subagents``, ``mcpServers``, ``hooks``), only those are imported; with
none named, everything the scope holds is. PLUGINS go through the
marketplace family (:mod:`.plugin_import`); their git marketplaces are
handed back to the caller to import after the answer.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kernel import ConfigError, Kernel, atomic_write
from kernel.tomledit import edit_document

from .configs import config_from_settings, mcp_servers_from_sources, merge_missing
from .detect import mcp_settings, read_toml
from .documents import import_agents_md, import_commands, import_skills, import_subagents
from .hooks import hook_groups, write_hooks
from .memory import import_memory
from .model import (
    AGENTS_MD,
    COMMANDS,
    CONFIG,
    HOOKS,
    MCP_SERVER_CONFIG,
    MEMORY,
    PLUGINS,
    SKILLS,
    SUBAGENTS,
    ItemResult,
)
from .params import ExternalAgentConfigMigrationItem
from .plugin_import import DeferredPlugins, PluginImporter
from .source import Scope, SourceError, effective_settings, is_missing_or_empty

__all__ = ["ItemImporter"]

log = logging.getLogger("plugins.external_agent")


def _selected(names: list[Any] | None) -> set[str] | None:
    """The names an item's details pick (None: everything)."""
    chosen = {n.name for n in names or ()}
    return chosen or None


class ItemImporter:
    """Imports items for one kernel; ``owner`` is whom blocking calls are charged to."""

    def __init__(self, kernel: Kernel, owner: object) -> None:
        """Keep the kernel (blocking threads, config writer, services) and the owner."""
        self.kernel = kernel
        self.owner = owner
        self.plugins = PluginImporter(kernel, owner, self._blocking)

    async def _blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in the kernel's blocking threads."""
        return await self.kernel.blocking.run(self.owner, fn, *args, timeout=120)

    async def _write_user(self, change: Callable[[dict[str, Any]], Any]) -> Any:
        """Change the home's config.toml through the kernel; returns ``change``'s result."""
        writer = getattr(self.kernel, "write_config", None)
        if writer is not None:
            return (await writer(change)).result
        return await self._blocking(self.kernel.config.update_user, change)

    async def run(
        self,
        item: ExternalAgentConfigMigrationItem,
        scope: Scope,
        deferred: list[DeferredPlugins],
    ) -> ItemResult:
        """Import ``item`` in ``scope``; errors become failures of the result, never raise.

        Work left for after the answer (PLUGINS from git marketplaces) is
        appended to ``deferred``.
        """
        result = ItemResult(item.item_type, scope.cwd)
        details = item.details
        try:
            later = await self._dispatch(item, scope, result, details)
            if later is not None:
                deferred.append(later)
        except (SourceError, ConfigError, OSError, UnicodeDecodeError) as exc:
            message = str(exc)
            kind = "invalid_existing_config" if "invalid existing config.toml" in message else None
            result.failure(
                "import_request_failed",
                message,
                error_type=kind or "external_agent_config_import_error",
            )
        except Exception:
            log.exception("importing %s (%s) failed", item.item_type, scope.cwd or "home")
            result.failure(
                "import_request_failed",
                "internal error while importing (see the server log)",
                error_type="external_agent_config_import_error",
            )
        return result

    async def _dispatch(
        self, item: ExternalAgentConfigMigrationItem, scope: Scope, result: ItemResult, details: Any
    ) -> DeferredPlugins | None:
        """Run the importer of the item's type; PLUGINS may leave work for later."""
        kind = item.item_type
        if kind == CONFIG:
            await self._config(scope, result)
        elif kind == MCP_SERVER_CONFIG:
            await self._mcp(scope, result, _selected(details and details.mcp_servers))
        elif kind == HOOKS:
            await self._blocking(_import_hooks, scope, result, _selected(details and details.hooks))
        elif kind == SKILLS:
            selected = _selected(details and details.skills)
            if await self._blocking(import_skills, scope, result, selected):
                self._skills_changed("skills imported from the other agent")
        elif kind == COMMANDS:
            selected = _selected(details and details.commands)
            if await self._blocking(import_commands, scope, result, selected):
                self._skills_changed("commands imported from the other agent as skills")
        elif kind == SUBAGENTS:
            selected = _selected(details and details.subagents)
            await self._blocking(import_subagents, scope, result, selected)
        elif kind == AGENTS_MD:
            await self._blocking(import_agents_md, scope, result)
        elif kind == MEMORY:
            await self._blocking(import_memory, scope, list(details.memory), result)
        elif kind == PLUGINS:
            return await self.plugins.run(scope, details, result)
        return None

    def _skills_changed(self, reason: str) -> None:
        """Tell the skills family its folders changed (when it is loaded)."""
        skills = self.kernel.services.get("skills")
        if skills is not None:
            skills.invalidate(reason)

    # -- config.toml ---------------------------------------------------------------------

    async def _config(self, scope: Scope, result: ItemResult) -> None:
        """CONFIG: the settings' keys the target lacks, added."""
        settings = await self._blocking(effective_settings, scope.settings)
        migrated = config_from_settings(settings or {})
        if not migrated:
            return
        if scope.repo is None:
            await self._blocking(read_toml, scope.target_config)  # says "invalid existing"
            added = await self._write_user(lambda user: merge_missing(user, migrated))
        else:
            added = await self._blocking(_merge_file, scope.target_config, migrated)
        if added:
            result.success(str(scope.settings), str(scope.target_config))

    async def _mcp(self, scope: Scope, result: ItemResult, selected: set[str] | None) -> None:
        """MCP_SERVER_CONFIG: each server the target lacks, added on its own."""
        settings = await self._blocking(mcp_settings, scope)
        servers, skipped = await self._blocking(mcp_servers_from_sources, scope, settings)
        if servers and scope.repo is None:
            await self._blocking(read_toml, scope.target_config)  # says "invalid existing"
        for name, why in skipped.items():
            if selected is None or name in selected:
                result.failure(
                    "mcp_server_unsupported",
                    f"MCP server {name} was not migrated: {why}",
                    source=name,
                    error_type="unsupported_mcp_server",
                )
        for name, table in servers.items():
            if selected is not None and name not in selected:
                continue
            addition = {"mcp_servers": {name: table}}
            try:
                if scope.repo is None:
                    added = await self._write_user(_adder(addition))
                else:
                    added = await self._blocking(_merge_file, scope.target_config, addition)
            except ConfigError as exc:
                result.failure("mcp_server_config", str(exc), source=name)
                continue
            if added:
                result.success(name, name)


def _adder(addition: dict[str, Any]) -> Callable[[dict[str, Any]], list[str]]:
    """A config.toml change adding what the file lacks of ``addition``."""
    return lambda user: merge_missing(user, addition)


def _merge_file(path: Path, incoming: dict[str, Any]) -> list[str]:
    """Add what ``path`` (a TOML file) lacks of ``incoming``; returns the keys added."""
    tree = read_toml(path)
    before = copy.deepcopy(tree)
    added = merge_missing(tree, incoming)
    if added:
        # Only the added keys are written: the file's comments and layout stay.
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, edit_document(text, before, tree).encode("utf-8"), mode=0o600)
    return added


def _import_hooks(scope: Scope, result: ItemResult, selected: set[str] | None) -> None:
    """Write the scope's hooks unless its hooks.json already holds some."""
    groups = hook_groups(scope)
    if selected is not None:
        groups = {event: g for event, g in groups.items() if event in selected}
    if not groups:
        return
    if not is_missing_or_empty(scope.target_hooks):
        result.failure(
            "hooks_target_exists",
            f"{scope.target_hooks} already holds hooks; it was left as it is",
            error_type="target_exists",
        )
        return
    write_hooks(scope, groups)
    for event in groups:
        result.success(event, event)
