"""The turn's lifecycle hooks: where other families may look at, stop or extend a turn.

The engine calls these at fixed points (docs/threads.md, "Lifecycle hooks");
the ``hooks`` family runs the user's hook commands through them. Each
function asks every plugin (``acall``: one plugin's exception is logged and
skipped, never hiding another's answer) and folds the answers:

* :func:`screen_input` — the user's input before the model sees it: any
  plugin may drop it, and all may add input items after it;
* :func:`before_tool` — a tool call before it runs: the first plugin that
  answers replaces the call's output (the call does not run);
* :func:`after_tool` — a tool's output: the first replacement wins, and all
  plugins may add items after the outputs of the round;
* :func:`stopping` — the model answered without tool calls: items any plugin
  returns are added and the model is asked again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import TurnRunner
    from .tools import Call

__all__ = ["after_tool", "before_tool", "screen_input", "stopping"]

log = logging.getLogger("plugins.threads.lifecycle")


def _items(name: str, hook: str, value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return list(value)
    log.error("plugin %s: %s returned items that are not a list of objects; ignored", name, hook)
    return []


async def screen_input(
    turn: TurnRunner, user_input: list[dict[str, Any]]
) -> tuple[bool, list[dict[str, Any]]]:
    """``(drop, items)`` for the user's input (``threads_user_input``)."""
    drop = False
    added: list[dict[str, Any]] = []
    for name, answer in await turn.kernel.plugins.acall(
        "threads_user_input", turn=turn, user_input=user_input
    ):
        if answer is None:
            continue
        if not isinstance(answer, Mapping):
            log.error("plugin %s: threads_user_input returned %r; ignored", name, type(answer))
            continue
        drop = drop or bool(answer.get("drop"))
        added.extend(_items(name, "threads_user_input", answer.get("items")))
    return drop, added


async def before_tool(turn: TurnRunner, call: Call) -> Any:
    """The output that replaces ``call`` (it does not run), or None to run it."""
    for _, answer in await turn.kernel.plugins.acall("threads_tool_call", turn=turn, call=call):
        if answer is not None:
            return answer
    return None


async def after_tool(turn: TurnRunner, call: Call, output: Any) -> tuple[Any, list[dict[str, Any]]]:
    """``(output, items)``: the output as plugins left it, and items to add after the round."""
    replaced = False
    added: list[dict[str, Any]] = []
    for name, answer in await turn.kernel.plugins.acall(
        "threads_tool_result", turn=turn, call=call, output=output
    ):
        if answer is None:
            continue
        if not isinstance(answer, Mapping):
            log.error("plugin %s: threads_tool_result returned %r; ignored", name, type(answer))
            continue
        if not replaced and answer.get("output") is not None:
            output, replaced = answer["output"], True
        added.extend(_items(name, "threads_tool_result", answer.get("items")))
    return output, added


async def stopping(turn: TurnRunner) -> list[dict[str, Any]]:
    """Items that continue the turn instead of ending it (``threads_turn_stopping``)."""
    added: list[dict[str, Any]] = []
    for name, answer in await turn.kernel.plugins.acall(
        "threads_turn_stopping", turn=turn, last_message=turn.last_agent_message
    ):
        added.extend(_items(name, "threads_turn_stopping", answer))
    return added
