"""Driving turns under automatic approval review (the guardian plugin) as a client does.

``guarded(serve, model_server, ...)`` is :func:`tests.support.tools.tools_server`
with the guardian loaded and every approval request the client gets
recorded (and declined): under auto review the client should be asked
nothing. The other helpers read the guardian's notifications.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from tests.support.agent import Agent
from tests.support.tools import TOOL_PLUGINS, exec_call, tools_server

__all__ = ["PLUGINS", "RISK_TAIL", "escalated", "guarded", "review_notes"]

PLUGINS = (*TOOL_PLUGINS, "guardian")
RISK_TAIL = (
    "The agent must not attempt to achieve the same outcome via workaround, indirect "
    "execution, or policy circumvention. Proceed only with a materially safer alternative, "
    "or if the user explicitly approves the action after being informed of the risk. "
    "Otherwise, stop and request user input."
)
_APPROVALS = (
    "item/commandExecution/requestApproval",
    "item/fileChange/requestApproval",
    "item/permissions/requestApproval",
)


def escalated(path: Any, call_id: str = "c1") -> Any:
    """The model asks to run ``touch path`` outside the sandbox (asks under on-request)."""
    return exec_call(
        f"touch {path}", call_id, sandbox_permissions="require_escalated", justification="needed"
    )


def review_notes(notes: Sequence[Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(method, params)`` of the guardian's notifications, in order."""
    wanted = (
        "item/autoApprovalReview/started",
        "item/autoApprovalReview/completed",
        "guardianWarning",
    )
    return [(n.method, n.params) for n in notes if n.method in wanted]


@contextlib.asynccontextmanager
async def guarded(
    serve: Any,
    model_server: Any,
    *,
    args: Sequence[str] = (),
    plugins: Sequence[str] = PLUGINS,
    **extra: Any,
) -> AsyncIterator[tuple[Agent, list[tuple[str, dict[str, Any]]]]]:
    """A kernel with the guardian; yields the agent and the approvals the client was asked."""
    asked: list[tuple[str, dict[str, Any]]] = []

    def refuse(method: str) -> Any:
        async def answer(params: dict[str, Any]) -> dict[str, Any]:
            asked.append((method, params))
            if method == "item/permissions/requestApproval":
                return {"permissions": {}, "scope": "turn"}
            return {"decision": "decline"}

        return answer

    async with tools_server(serve, model_server, args=args, plugins=plugins, **extra) as agent:
        for method in _APPROVALS:
            agent.client.on_request(method, refuse(method))
        yield agent, asked
