"""Approvals on behalf of tools: who decides, waiting state, fail-closed answers.

A tool calls ``await turn.ask_approval(kind, method, params, allowed)``:

1. the ``threads_review_approval`` hook is asked first (the guardian plugin
   answers under ``approvals_reviewer = "auto_review"``);
2. otherwise the client is asked with the server request ``method``
   (``item/commandExecution/requestApproval``...), the thread's status
   carrying the ``waitingOnApproval`` flag meanwhile, and
   ``serverRequest/resolved`` follows the answer (also when the turn is
   interrupted while waiting).

The answer is returned as ``{"decision": ...}`` (``allowed=None``: any
object, for answers without a decision such as granted permissions). A
reviewer's ``decline`` may carry ``reason``, the text the tool gives the
model instead of its own rejection text (the guardian's rationale).
The reviewer hook also gets the item the approval is about (wire form, or
None) and a snapshot of the model's history, so it can judge in context.
Anything else fails closed: a client that errs, times out, disconnects or answers a decision
that is not in ``allowed`` gets ``decline`` (logged), never a run.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from kernel import ConnectionClosed, PluginCallError, RpcError, ServerRequestTimeout

if TYPE_CHECKING:
    from .turn_api import TurnApi

__all__ = ["DECLINED", "ask_approval", "decision_name"]

log = logging.getLogger("plugins.threads.approvals")

DECLINED: dict[str, Any] = {"decision": "decline"}


def decision_name(answer: Mapping[str, Any]) -> str:
    """``"accept"``, ``"acceptWithExecpolicyAmendment"``... of an answer (object forms too)."""
    decision = answer.get("decision")
    if isinstance(decision, str):
        return decision
    if isinstance(decision, Mapping) and len(decision) == 1:
        return str(next(iter(decision)))
    return ""


async def ask_approval(
    turn: TurnApi,
    kind: str,
    method: str,
    params: dict[str, Any],
    allowed: Collection[str] | None,
) -> dict[str, Any]:
    """Ask for an approval (see the module docstring); returns ``{"decision": ...}``."""
    item = turn.open_items.get(str(params.get("itemId")))
    try:
        found = await turn.kernel.plugins.first(
            "threads_review_approval",
            turn=turn,
            kind=kind,
            params=params,
            item=None if item is None else {k: v for k, v in item.items() if k[:1] != "_"},
            history=tuple(turn.thread.state.history),
        )
    except PluginCallError as exc:
        log.error("approval review by %s failed; declined", exc.plugin, exc_info=exc.__cause__)
        return dict(DECLINED)
    if found is not None:
        return _checked(found[1], allowed, f"reviewer {found[0]}")
    thread = turn.thread
    flags = [f for f in thread.flags if f != "waitingOnApproval"] + ["waitingOnApproval"]
    await thread.set_flags(flags)
    try:
        answer = await turn.request(method, params)
    except (RpcError, ServerRequestTimeout, ConnectionClosed, LookupError) as exc:
        log.info("approval %s of thread %s not given (%s); declined", method, turn.thread_id, exc)
        return dict(DECLINED)
    finally:
        if thread.runner is turn:
            await thread.set_flags([f for f in thread.flags if f != "waitingOnApproval"])
    return _checked(answer, allowed, "the client")


def _checked(answer: Any, allowed: Collection[str] | None, who: str) -> dict[str, Any]:
    if isinstance(answer, Mapping) and (allowed is None or decision_name(answer) in allowed):
        return dict(answer)
    log.warning("%s answered an approval with %r; declined", who, answer)
    return dict(DECLINED)
