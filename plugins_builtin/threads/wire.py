"""The protocol's JSON for threads, turns and settings, built from the state.

Payloads are built as plain dicts in the reference's exact shapes (checked
against its schema by the tests); fields the reference gates behind
``experimentalApi`` are left out entirely, so every client gets the same
payload. The thread's ``sessionId`` equals its id, as in the reference.
"""

from __future__ import annotations

from typing import Any

from kernel import __version__

from .state import Settings, ThreadState, TurnState

__all__ = [
    "SUMMARY_ITEM_TYPES",
    "approval_policy_payload",
    "sandbox_policy",
    "settings_payload",
    "status_payload",
    "thread_payload",
    "turn_payload",
]

# The summary view of a turn shows what the agent said, as the reference does.
SUMMARY_ITEM_TYPES = frozenset({"agentMessage"})
_TURNS_SUMMARY_ITEM_TYPES = frozenset({"userMessage", "agentMessage"})


def sandbox_policy(mode: str, cwd: str) -> dict[str, Any]:
    """The ``SandboxPolicy`` object of a sandbox mode."""
    if mode == "danger-full-access":
        return {"type": "dangerFullAccess"}
    if mode == "workspace-write":
        return {
            "type": "workspaceWrite",
            "writableRoots": [cwd],
            "networkAccess": False,
            "excludeTmpdirEnvVar": False,
            "excludeSlashTmp": False,
        }
    return {"type": "readOnly", "networkAccess": False}


def status_payload(loaded: bool, active: bool, flags: list[str] | None = None) -> dict[str, Any]:
    """A ``ThreadStatus``."""
    if not loaded:
        return {"type": "notLoaded"}
    if active:
        return {"type": "active", "activeFlags": list(flags or [])}
    return {"type": "idle"}


def turn_payload(turn: TurnState, view: str = "full") -> dict[str, Any]:
    """A ``Turn`` with its items in ``view``: full, summary or notLoaded."""
    if view == "notLoaded":
        items: list[dict[str, Any]] = []
    elif view == "summary":
        items = [i for i in turn.items if i.get("type") in SUMMARY_ITEM_TYPES]
    elif view == "turnsSummary":
        items = [i for i in turn.items if i.get("type") in _TURNS_SUMMARY_ITEM_TYPES]
        view = "summary"
    else:
        items = list(turn.items)
    return {
        "id": turn.id,
        "rootTurnId": turn.root_turn_id,
        "items": items,
        "itemsView": view,
        "status": turn.status,
        "error": turn.error,
        "startedAt": turn.started_at,
        "completedAt": turn.completed_at,
        "durationMs": turn.duration_ms,
    }


def thread_payload(
    meta: Any,
    status: dict[str, Any],
    state: ThreadState | None = None,
    include_turns: bool = False,
    *,
    ephemeral: bool = False,
) -> dict[str, Any]:
    """A ``Thread`` from stored metadata (``meta``) and, when loaded, its state."""
    settings = state.settings if state is not None else None
    turns = [turn_payload(t) for t in state.turns] if (include_turns and state) else []
    return {
        "id": meta.id,
        "sessionId": meta.id,
        "forkedFromId": meta.forked_from_id,
        "parentThreadId": meta.parent_thread_id,
        "preview": meta.preview,
        "ephemeral": ephemeral,
        "modelProvider": settings.model_provider if settings else meta.model_provider,
        "model": settings.model if settings else meta.model,
        "reasoningEffort": settings.reasoning_effort if settings else meta.reasoning_effort,
        "createdAt": meta.created_at,
        "updatedAt": meta.updated_at,
        "status": status,
        "path": None if ephemeral else meta.path,
        "cwd": settings.cwd if settings else meta.cwd,
        "cliVersion": meta.cli_version or __version__,
        "source": meta.source,
        "threadSource": meta.thread_source,
        "originator": meta.originator,
        "agentNickname": meta.agent_nickname,
        "agentRole": meta.agent_role,
        "gitInfo": meta.git_info,
        "name": meta.name,
        "projectId": meta.project_id,
        "recencyAt": meta.recency_at,
        "historyMode": "paginated",
        "turns": turns,
    }


def approval_policy_payload(policy: Any) -> Any:
    """The policy as the v2 schema can carry it.

    ``on-failure`` is accepted (config and requests, as older clients send
    it) but the v2 ``AskForApproval`` has no such value: it is reported as
    ``on-request``, whose wire meaning it extends (docs/agent_tools.md).
    """
    return "on-request" if policy == "on-failure" else policy


def settings_payload(settings: Settings) -> dict[str, Any]:
    """The settings members of thread/start, resume and fork results."""
    return {
        "model": settings.model,
        "modelProvider": settings.model_provider,
        "cwd": settings.cwd,
        "approvalPolicy": approval_policy_payload(settings.approval_policy),
        "approvalsReviewer": settings.approvals_reviewer,
        "sandbox": settings.sandbox_policy or sandbox_policy(settings.sandbox, settings.cwd),
        "reasoningEffort": settings.reasoning_effort,
        "serviceTier": None,
        "instructionSources": [],
        "disabledPluginIds": [],
        "runtimeWorkspaceRoots": [],
    }
