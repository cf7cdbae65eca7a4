"""Whether a model's MCP tool call needs approval, and asking for it.

As the reference 0.169 does:

* under full access (approval policy ``never`` and a ``danger-full-access``
  or external sandbox) nothing asks;
* ``approval_mode = "approve"`` (per tool, or the server's
  ``default_tools_approval_mode``) runs without asking, ``"prompt"`` always
  asks, ``"auto"`` (the default) asks unless the tool's annotations say it
  is read-only (a destructive hint always asks; no annotations count as
  destructive and open-world);
* a tool approved for the session runs without asking again;
* the approval policy ``never`` (or a granular one without
  ``mcp_elicitations``) cannot ask, so the call fails;
* otherwise the ``threads_review_approval`` hook (kind ``mcpToolCall``) or
  the client decides, through an ``mcpServer/elicitation/request`` form with
  no fields whose ``_meta`` carries ``codex_approval_kind: "mcp_tool_call"``
  and the tool's description and arguments. Accepting with
  ``_meta.persist = "session"`` remembers the tool for the thread;
  ``"always"`` also writes ``tools.<tool>.approval_mode = "approve"`` to the
  server's table in config.toml. A decline, a cancel and every failure
  (fail closed) skip the call.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .elicitation import METHOD, full_access

__all__ = ["approve_call", "needs_approval"]

log = logging.getLogger("plugins.mcp.approval")

_SESSION_KEY = "mcp.approved_tools"
_PERSIST = ["session", "always"]


def _requires_approval(annotations: Any) -> bool:
    destructive = getattr(annotations, "destructive_hint", None)
    if destructive is True:
        return True
    if getattr(annotations, "read_only_hint", None) is True:
        return False
    open_world = getattr(annotations, "open_world_hint", None)
    return destructive is not False or open_world is not False


def needs_approval(spec: Any, tool: Any, settings: Mapping[str, Any]) -> bool:
    """Whether calling ``tool`` of server ``spec`` asks first (see the module docstring)."""
    if settings.get("approval_policy") == "never" and full_access(settings):
        return False
    mode = spec.approval_mode(tool.name)
    if mode == "approve":
        return False
    if mode == "prompt":
        return True
    return _requires_approval(tool.annotations)


def _request(turn: Any, server: str, tool: Any, arguments: Any, persist: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {"codex_approval_kind": "mcp_tool_call"}
    if persist:
        meta["persist"] = list(_PERSIST)
    meta["tool_name"] = tool.name
    if tool.title:
        meta["tool_title"] = tool.title
    if tool.description:
        meta["tool_description"] = tool.description
    if arguments is not None:
        meta["tool_params"] = arguments
    if isinstance(arguments, Mapping):
        meta["tool_params_display"] = [
            {"name": name, "value": arguments[name], "display_name": name}
            for name in sorted(arguments)
        ]
    return {
        "threadId": turn.thread_id,
        "turnId": turn.turn_id,
        "serverName": server,
        "mode": "form",
        "_meta": meta,
        "message": f'Allow the {server} MCP server to run tool "{tool.name}"?',
        "requestedSchema": {"type": "object", "properties": {}},
    }


def _decision(answer: Any) -> tuple[str, str | None]:
    """``(action, persist)`` of an answer: an elicitation answer, or a reviewer's decision."""
    if not isinstance(answer, Mapping):
        return "decline", None
    action = answer.get("action")
    if action in ("accept", "decline", "cancel"):
        meta = answer.get("_meta")
        persist = meta.get("persist") if isinstance(meta, Mapping) else None
        return action, persist if persist in _PERSIST else None
    decision = answer.get("decision")
    if decision == "accept":
        return "accept", None
    if decision == "acceptForSession":
        return "accept", "session"
    if decision == "cancel":
        return "cancel", None
    return "decline", None


async def approve_call(
    turn: Any, spec: Any, tool: Any, arguments: Any, persist_always: Any
) -> str | None:
    """Ask for approval of one call; None when it may run, else why not (for the model).

    ``persist_always(server, tool)`` writes the "always" choice to config.toml
    (and may refuse by raising).
    """
    remembered = turn.session.setdefault(_SESSION_KEY, set())
    key = (spec.name, tool.name)
    if key in remembered:
        return None
    policy = turn.settings.get("approval_policy")
    granular = policy.get("granular") if isinstance(policy, Mapping) else None
    if policy == "never":
        return "MCP tool call requires approval, but approval policy is never"
    if isinstance(granular, Mapping) and not granular.get("mcp_elicitations", True):
        return "MCP tool call requires approval, but the approval policy does not allow it"
    auto = spec.approval_mode(tool.name) == "auto"
    params = _request(turn, spec.name, tool, arguments, persist=auto)
    answer = await turn.ask_approval("mcpToolCall", METHOD, params, None)
    action, persist = _decision(answer)
    if action == "decline":
        return "user rejected MCP tool call"
    if action == "cancel":
        return "user cancelled MCP tool call"
    if auto and persist is not None:
        remembered.add(key)
        if persist == "always":
            try:
                await persist_always(spec.name, tool.name)
            except Exception as exc:
                log.warning(
                    "MCP tool %s/%s approved for the session only: %s", spec.name, tool.name, exc
                )
    return None
