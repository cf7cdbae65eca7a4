"""The action under review, in two shapes: for clients and for the reviewer model.

Clients get the protocol's ``GuardianApprovalReviewAction`` in
``item/autoApprovalReview/*`` (``command``, ``applyPatch``,
``requestPermissions``, ``mcpToolCall``). The reviewer model gets a fuller
"planned action" JSON: the command with its justification, the patch's
changes with their diffs, the permissions asked for, the MCP tool with its
description and arguments; long strings cut in the middle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["KINDS", "planned_action", "truncate", "wire_action"]

KINDS = ("command", "fileChange", "permissions", "mcpToolCall")
_MAX_STRING = 16_000  # characters of one string in the planned action


def wire_action(
    kind: str, params: Mapping[str, Any], item: Mapping[str, Any] | None, cwd: str
) -> dict[str, Any] | None:
    """The ``GuardianApprovalReviewAction`` of an approval; None for a kind not reviewed."""
    if kind == "command":
        return {
            "type": "command",
            "source": "unifiedExec",
            "command": str(params.get("command") or ""),
            "cwd": str(params.get("cwd") or cwd),
        }
    if kind == "fileChange":
        return {"type": "applyPatch", "cwd": cwd, "files": [c["path"] for c in _changes(item)]}
    if kind == "permissions":
        return {
            "type": "requestPermissions",
            "reason": params.get("reason") if isinstance(params.get("reason"), str) else None,
            "permissions": dict(params.get("permissions") or {}),
        }
    if kind == "mcpToolCall":
        meta = _meta(params)
        return {
            "type": "mcpToolCall",
            "server": str(params.get("serverName") or ""),
            "toolName": str(meta.get("tool_name") or ""),
            "connectorId": None,
            "connectorName": None,
            "toolTitle": meta.get("tool_title")
            if isinstance(meta.get("tool_title"), str)
            else None,
        }
    return None


def planned_action(
    kind: str, params: Mapping[str, Any], item: Mapping[str, Any] | None, cwd: str
) -> dict[str, Any]:
    """What the reviewer model is asked to judge (members that are unknown are left out)."""
    if kind == "command":
        action: dict[str, Any] = {
            "tool": "exec_command",
            "command": params.get("command"),
            "cwd": params.get("cwd") or cwd,
            "justification": params.get("reason"),
            "proposed_prefix_rule": params.get("proposedExecpolicyAmendment"),
        }
    elif kind == "fileChange":
        action = {
            "tool": "apply_patch",
            "cwd": cwd,
            "reason": params.get("reason"),
            "grant_root": params.get("grantRoot"),
            "changes": [
                {
                    "path": change.get("path"),
                    "kind": (change.get("kind") or {}).get("type"),
                    "move_path": (change.get("kind") or {}).get("move_path"),
                    "diff": change.get("diff"),
                }
                for change in _changes(item)
            ],
        }
    elif kind == "mcpToolCall":
        meta = _meta(params)
        action = {
            "tool": "mcp_tool_call",
            "server": params.get("serverName"),
            "tool_name": meta.get("tool_name"),
            "tool_title": meta.get("tool_title"),
            "tool_description": meta.get("tool_description"),
            "arguments": meta.get("tool_params"),
        }
    else:
        action = {
            "tool": "request_permissions",
            "cwd": params.get("cwd") or cwd,
            "reason": params.get("reason"),
            "permissions": params.get("permissions"),
        }
    return _cut(_pruned(action))


def _meta(params: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``_meta`` of an MCP tool call approval (tool name, title, arguments)."""
    meta = params.get("_meta")
    return meta if isinstance(meta, Mapping) else {}


def _changes(item: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    changes = (item or {}).get("changes")
    if not isinstance(changes, list):
        return []
    return [c for c in changes if isinstance(c, dict) and isinstance(c.get("path"), str)]


def _pruned(value: Any) -> Any:
    """``value`` without None members (they say nothing to the reviewer)."""
    if isinstance(value, dict):
        return {k: _pruned(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _cut(value: Any) -> Any:
    if isinstance(value, str):
        return truncate(value, _MAX_STRING)
    if isinstance(value, dict):
        return {k: _cut(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v) for v in value]
    return value


def truncate(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its head and tail around a marker.

    The marker says how much was left out, so the reviewer knows the middle
    is unknown rather than empty.
    """
    if len(text) <= limit:
        return text
    widest = f'<truncated omitted_chars="{len(text)}" />'
    keep = max(0, limit - len(widest))
    head = keep // 2
    marker = f'<truncated omitted_chars="{len(text) - keep}" />'
    return text[:head] + marker + text[len(text) - (keep - head) :]
