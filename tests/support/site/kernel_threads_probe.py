"""``threads_probe``: a test plugin offering tools through the threads family's hook.

``probe_add`` (a function tool) adds two numbers and reports a ``plan`` item
through the turn it is given; ``probe_echo`` (a custom tool) echoes its raw
input. Like any plugin it never imports the threads family: the hook is
matched by name and the turn is used through its documented methods.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from kernel import hookimpl


class ThreadsProbePlugin:
    @hookimpl
    def threads_tools(self, turn: Any) -> list[dict[str, Any]]:
        return [
            {
                "spec": {
                    "type": "function",
                    "name": "probe_add",
                    "description": "Add two numbers",
                    "strict": False,
                    "parameters": {
                        "type": "object",
                        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                    },
                },
                "call": self.add,
            },
            {
                "spec": {"type": "custom", "name": "probe_echo", "description": "Echo the input"},
                "call": self.echo,
            },
        ]

    async def add(self, invocation: Any) -> str:
        args = json.loads(invocation.arguments)
        item = {"type": "plan", "id": str(uuid.uuid4()), "text": "adding"}
        await invocation.turn.start_item(item)
        await invocation.turn.complete_item({**item, "text": "added"})
        return str(args["a"] + args["b"])

    async def echo(self, invocation: Any) -> str:
        return f"echo: {invocation.arguments}"


class ReviewProbePlugin:
    """``review_probe``: decides approvals under ``approvalsReviewer: "auto_review"``.

    The decision comes from ``KERNEL_PROBE_REVIEW`` (``accept``, ``decline``...);
    ``raise`` makes the reviewer fail, which must decline (fail closed).
    """

    @hookimpl
    def threads_review_approval(self, turn: Any, kind: str, params: Any) -> Any:
        import os

        if turn.settings.get("approvals_reviewer") != "auto_review":
            return None
        decision = os.environ.get("KERNEL_PROBE_REVIEW", "accept")
        if decision == "raise":
            raise RuntimeError("the reviewer broke")
        return {"decision": decision}
