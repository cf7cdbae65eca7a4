"""``apply_patch`` as a tool: verify, ask when needed, write, report items and the turn diff.

A patch is verified in full before anything is asked or written (a
verification failure goes back to the model as text, with no item). Then a
``fileChange`` item starts; the patch asks for approval unless every path
it touches is writable in the turn's sandbox (or was approved for the
session); the files are written; the item completes and
``turn/diff/updated`` carries the turn's cumulative diff.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from .approval_rules import needs_patch_approval
from .context import ToolContext, ToolUnavailable
from .patch import PatchError, apply_plan, failure_output, plan_patch, success_output
from .patch_tool import FREEFORM_SPEC, patch_text_from_function_arguments

__all__ = ["PatchTool"]

DECLINED_TEXT = "patch rejected by user"
_DECISIONS = ("accept", "acceptForSession", "decline", "cancel")


class PatchTool:
    """The ``apply_patch`` tool of the family (both the custom and the function form)."""

    def __init__(self, context: ToolContext) -> None:
        self.context = context

    def tools(self) -> list[dict[str, Any]]:
        return [{"spec": FREEFORM_SPEC, "call": self.call}]

    async def call(self, invocation: Any) -> str:
        text = invocation.arguments
        if invocation.kind == "function_call":
            try:
                text = patch_text_from_function_arguments(invocation.arguments)
            except PatchError as exc:
                return exc.message
        return await self.apply(invocation.turn, invocation.call_id, text)

    async def apply(self, turn: Any, call_id: str, text: str) -> str:
        """Run one patch for ``turn``; returns the model's output."""
        started = time.monotonic()
        try:
            place = self.context.placement(turn)
        except ToolUnavailable as exc:
            return f"apply_patch failed: {exc}"
        cwd, files = place.cwd, place.files
        try:
            plan = await asyncio.to_thread(plan_patch, text, cwd, files)
        except PatchError as exc:
            return exc.message
        except (OSError, ConnectionError, TimeoutError) as exc:
            return f"apply_patch failed: the environment is unreachable: {exc}"
        state = self.context.of(turn.thread_id)
        paths = plan.paths() if place.remote else [os.path.realpath(p) for p in plan.paths()]
        item = {
            "type": "fileChange",
            "id": call_id,
            "changes": plan.changes(),
            "status": "inProgress",
        }
        await turn.start_item(item)
        ask = needs_patch_approval(
            turn.settings.get("approval_policy"),
            paths=paths,
            writable=self.context.writable_roots(turn, cwd),
            remembered=state.memory.remembers_patch(paths),
        )
        if ask is None:
            item["status"] = "declined"
            await turn.complete_item(item)
            return (
                "patch rejected: writing outside the sandbox's writable roots needs approval, "
                "and the approval policy is never"
            )
        if ask:
            params = {
                "threadId": turn.thread_id,
                "turnId": turn.turn_id,
                "itemId": call_id,
                "startedAtMs": int(time.time() * 1000),
                "reason": None,
                "grantRoot": None,
            }
            answer = await turn.ask_approval(
                "fileChange", "item/fileChange/requestApproval", params, _DECISIONS
            )
            decision = answer.get("decision")
            if decision in ("decline", "cancel"):
                item["status"] = "declined"
                await turn.complete_item(item)
                if decision == "cancel":
                    turn.end_as_interrupted()
                reason = answer.get("reason")  # a reviewer's rationale, as the reference words it
                return reason if isinstance(reason, str) and reason else DECLINED_TEXT
            if decision == "acceptForSession":
                state.memory.remember_patch(paths)
        tracker = state.diff(turn.turn_id, cwd, files)
        try:
            await asyncio.to_thread(tracker.before, plan)
            await asyncio.to_thread(apply_plan, plan, files)
        except PatchError as exc:
            item["status"] = "failed"
            await turn.complete_item(item)
            await self._diff(turn, tracker)
            return failure_output(exc, time.monotonic() - started)
        item["status"] = "completed"
        await turn.complete_item(item)
        await self._diff(turn, tracker)
        return success_output(plan, time.monotonic() - started)

    @staticmethod
    async def _diff(turn: Any, tracker: Any) -> None:
        diff = await asyncio.to_thread(tracker.unified_diff)
        if diff:
            await turn.notify(
                "turn/diff/updated",
                {"threadId": turn.thread_id, "turnId": turn.turn_id, "diff": diff},
            )
