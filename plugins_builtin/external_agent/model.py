"""What one migration item is, and what importing it did, in the protocol's terms.

An :class:`ItemResult` collects the successes and failures of one migration
item; it becomes one ``ExternalAgentConfigImportTypeResult`` in an
``externalAgentConfig/import/progress`` notification, and the results of a
whole import are merged per item type (in :data:`TYPE_ORDER`) for
``externalAgentConfig/import/completed`` and the import history.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = [
    "AGENTS_MD",
    "COMMANDS",
    "CONFIG",
    "HOOKS",
    "MCP_SERVER_CONFIG",
    "MEMORY",
    "PLUGINS",
    "SESSIONS",
    "SKILLS",
    "SUBAGENTS",
    "TYPE_ORDER",
    "ItemResult",
    "detected_item",
    "merge_results",
]

AGENTS_MD = "AGENTS_MD"
CONFIG = "CONFIG"
SKILLS = "SKILLS"
PLUGINS = "PLUGINS"
MCP_SERVER_CONFIG = "MCP_SERVER_CONFIG"
SUBAGENTS = "SUBAGENTS"
HOOKS = "HOOKS"
COMMANDS = "COMMANDS"
MEMORY = "MEMORY"
SESSIONS = "SESSIONS"

#: The order of ``itemTypeResults`` in the completion notification (the reference's).
TYPE_ORDER = (
    CONFIG,
    SKILLS,
    AGENTS_MD,
    PLUGINS,
    MCP_SERVER_CONFIG,
    SUBAGENTS,
    HOOKS,
    COMMANDS,
    MEMORY,
    SESSIONS,
)


@attrs.define
class ItemResult:
    """What importing one migration item did: successes and failures, wire-shaped."""

    item_type: str
    cwd: str | None = None
    successes: list[dict[str, Any]] = attrs.Factory(list)
    failures: list[dict[str, Any]] = attrs.Factory(list)

    def success(
        self,
        source: str | None,
        target: str | None,
        *,
        title: str | None = None,
        cwd: str | None = None,
    ) -> None:
        """Record one thing imported (``cwd`` defaults to the item's)."""
        self.successes.append(
            {
                "itemType": self.item_type,
                "cwd": cwd if cwd is not None else self.cwd,
                "source": source,
                "target": target,
                "title": title,
            }
        )

    def failure(
        self,
        stage: str,
        message: str,
        *,
        source: str | None = None,
        error_type: str | None = None,
        sub_error_type: str | None = None,
    ) -> None:
        """Record one thing that could not be imported, and why (``failureStage``)."""
        self.failures.append(
            {
                "itemType": self.item_type,
                "failureStage": stage,
                "message": message,
                "cwd": self.cwd,
                "source": source,
                "errorType": error_type,
                "subErrorType": sub_error_type,
            }
        )

    def payload(self) -> dict[str, Any]:
        """This result as one ``ExternalAgentConfigImportTypeResult``."""
        return {
            "itemType": self.item_type,
            "successes": list(self.successes),
            "failures": list(self.failures),
        }


def merge_results(results: list[ItemResult]) -> list[dict[str, Any]]:
    """Per-type results of a whole import, merged and in :data:`TYPE_ORDER`."""
    merged: dict[str, dict[str, Any]] = {}
    for result in results:
        entry = merged.setdefault(
            result.item_type, {"itemType": result.item_type, "successes": [], "failures": []}
        )
        entry["successes"].extend(result.successes)
        entry["failures"].extend(result.failures)
    return [merged[kind] for kind in TYPE_ORDER if kind in merged]


def detected_item(
    item_type: str,
    description: str,
    cwd: str | None,
    **details: list[Any],
) -> dict[str, Any]:
    """One ``ExternalAgentConfigMigrationItem`` of a detect answer."""
    payload: dict[str, Any] = {"itemType": item_type, "description": description, "cwd": cwd}
    if details:
        payload["details"] = {
            "plugins": [],
            "skills": [],
            "sessions": [],
            "mcpServers": [],
            "hooks": [],
            "subagents": [],
            "commands": [],
            **details,
        }
    else:
        payload["details"] = None
    return payload
