"""Driving the agent's tools end to end: threads, models, agent_tools, process and sandbox.

``tools_server(serve, model_server, ...)`` is :func:`tests.support.agent.agent_server`
with the tool families loaded; the helpers read what the model was sent back.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from tests.support.agent import Agent, agent_server
from tests.support.model_server import custom_tool_call, function_call

__all__ = [
    "TOOL_PLUGINS",
    "exec_call",
    "item_notes",
    "output_of",
    "patch_call",
    "tools_server",
]

TOOL_PLUGINS = ("threads", "models", "agent_tools", "process", "sandbox")


@contextlib.asynccontextmanager
async def tools_server(
    serve: Any,
    model_server: Any,
    *,
    args: Sequence[str] = (),
    plugins: Sequence[str] = TOOL_PLUGINS,
    **extra: Any,
) -> AsyncIterator[Agent]:
    """A kernel serving the agent's tools against ``model_server``."""
    async with agent_server(serve, model_server, args=args, plugins=plugins, **extra) as agent:
        yield agent


def exec_call(cmd: str, call_id: str, login: bool | None = False, **fields: Any) -> Any:
    """The model asks for ``exec_command`` (no login shell by default: profiles print noise)."""
    if login is not None:
        fields["login"] = login
    return function_call("exec_command", json.dumps({"cmd": cmd, **fields}), call_id=call_id)


def patch_call(patch: str, call_id: str) -> Any:
    """The model sends a freeform ``apply_patch``."""
    return custom_tool_call("apply_patch", patch, call_id=call_id)


def output_of(model_server: Any, call_id: str) -> Any:
    """The output the model got for ``call_id`` (from the latest request that has it)."""
    for request in reversed(model_server.requests):
        for item in request.body.get("input", []):
            if item.get("type", "").endswith("_output") and item.get("call_id") == call_id:
                return item["output"]
    raise AssertionError(f"no output for {call_id} was sent to the model")


def item_notes(notes: Sequence[Any], item_id: str) -> list[tuple[str, dict[str, Any]]]:
    """``(method, params)`` of every notification about item ``item_id``, in order."""
    found = []
    for note in notes:
        params = note.params or {}
        if params.get("itemId") == item_id or (params.get("item") or {}).get("id") == item_id:
            found.append((note.method, params))
    return found
