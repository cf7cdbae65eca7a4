"""The params of ``externalAgentConfig/*``, named as the reference names them.

Paths are checked by :mod:`.checks` rather than typed ``AbsolutePath``: an
item's ``cwd`` may be ``""`` (the reference's "home scope"), and the errors
name the member inside the list (``migrationItems[2].cwd``).
"""

from __future__ import annotations

from typing import Literal

import attrs

__all__ = [
    "CommandMigration",
    "ExternalAgentConfigDetectParams",
    "ExternalAgentConfigImportHistoryRecordParams",
    "ExternalAgentConfigImportHistoryRecordSuccessParams",
    "ExternalAgentConfigImportHistoryRecordTypeResultParams",
    "ExternalAgentConfigImportItemTypeFailure",
    "ExternalAgentConfigImportParams",
    "ExternalAgentConfigMigrationItem",
    "HookMigration",
    "ItemType",
    "McpServerMigration",
    "MigrationDetails",
    "PluginsMigration",
    "SessionMigration",
    "SkillMigration",
    "SubagentMigration",
]

ItemType = Literal[
    "AGENTS_MD",
    "CONFIG",
    "SKILLS",
    "PLUGINS",
    "MCP_SERVER_CONFIG",
    "SUBAGENTS",
    "HOOKS",
    "COMMANDS",
    "MEMORY",
    "SESSIONS",
]


@attrs.frozen
class ExternalAgentConfigDetectParams:
    """``externalAgentConfig/detect``."""

    include_home: bool = False
    cwds: list[str] | None = None
    max_sessions: int | None = None
    max_session_age_days: int | None = None
    migration_source: str | None = None
    source: str | None = None  # the client's label for where the request came from


@attrs.frozen
class PluginsMigration:
    """One marketplace's plugins to install."""

    marketplace_name: str
    plugin_names: list[str]


@attrs.frozen
class SessionMigration:
    """One session of the other agent."""

    path: str
    cwd: str
    title: str | None = None


@attrs.frozen
class SkillMigration:
    """A skill directory, by name."""

    name: str


@attrs.frozen
class McpServerMigration:
    """An MCP server, by name."""

    name: str


@attrs.frozen
class HookMigration:
    """A hook event (``PreToolUse``...)."""

    name: str


@attrs.frozen
class SubagentMigration:
    """A subagent, by the name in its frontmatter."""

    name: str


@attrs.frozen
class CommandMigration:
    """A command, by the name of the skill it becomes."""

    name: str


@attrs.frozen
class MigrationDetails:
    """What exactly an item covers (sessions and memories are imported as listed)."""

    plugins: list[PluginsMigration] = attrs.Factory(list)
    skills: list[SkillMigration] = attrs.Factory(list)
    sessions: list[SessionMigration] = attrs.Factory(list)
    mcp_servers: list[McpServerMigration] = attrs.Factory(list)
    hooks: list[HookMigration] = attrs.Factory(list)
    subagents: list[SubagentMigration] = attrs.Factory(list)
    commands: list[CommandMigration] = attrs.Factory(list)
    memory: list[str] = attrs.Factory(list)


@attrs.frozen
class ExternalAgentConfigMigrationItem:
    """One thing to import; ``cwd`` null or empty means the home scope."""

    item_type: ItemType
    description: str
    cwd: str | None = None
    details: MigrationDetails | None = None


@attrs.frozen
class ExternalAgentConfigImportParams:
    """``externalAgentConfig/import``."""

    migration_items: list[ExternalAgentConfigMigrationItem]
    migration_source: str | None = None
    provider_id: str | None = None
    source: str | None = None


@attrs.frozen
class ExternalAgentConfigImportHistoryRecordSuccessParams:
    """One thing the client imported."""

    item_type: ItemType
    cwd: str | None = None
    source: str | None = None
    target: str | None = None
    title: str | None = None


@attrs.frozen
class ExternalAgentConfigImportItemTypeFailure:
    """One thing the client could not import, and why."""

    item_type: ItemType
    failure_stage: str
    message: str
    cwd: str | None = None
    source: str | None = None
    error_type: str | None = None
    sub_error_type: str | None = None


@attrs.frozen
class ExternalAgentConfigImportHistoryRecordTypeResultParams:
    """The successes and failures of one item type."""

    item_type: ItemType
    successes: list[ExternalAgentConfigImportHistoryRecordSuccessParams]
    failures: list[ExternalAgentConfigImportItemTypeFailure]


@attrs.frozen
class ExternalAgentConfigImportHistoryRecordParams:
    """``externalAgentConfig/import/recordHistory``: an import the client made elsewhere."""

    provider_id: str
    item_type_results: list[ExternalAgentConfigImportHistoryRecordTypeResultParams]
