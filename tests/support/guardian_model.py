"""The model stand-in, answering the guardian's reviewer requests from a queue of their own.

:class:`GuardianModelServer` is :class:`~tests.support.model_server.ModelServer`
with a router: a request carrying ``x-openai-subagent: guardian`` is
answered from ``server.reviews`` (an unscripted review gets a non-JSON
answer, so a test that forgot one sees a failed review), every other
request from ``server.responses`` as usual. Two more steps make ordering
deterministic without timing: ``{"until_requests": n}`` holds a stream
until ``n`` requests in all have arrived, ``{"until": name}`` until the
test sets ``server.events[name]``; ``{"mark": name}`` records when the
stream got there (``server.marks[name]``, ``time.monotonic()``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict, deque
from typing import Any

from tests.support.model_server import (
    ModelServer,
    RecordedRequest,
    Scripted,
    message_steps,
    stream,
    text,
)

__all__ = ["GuardianModelServer", "reviewer_says", "two_calls"]


def reviewer_says(
    outcome: str,
    risk: str | None = "low",
    authorization: str | None = "high",
    rationale: str | None = "looks fine",
    *before: Any,
) -> Scripted:
    """A reviewer answer (the JSON as assistant text), after the steps ``before``."""
    verdict = {"outcome": outcome}
    for key, value in (
        ("risk_level", risk),
        ("user_authorization", authorization),
        ("rationale", rationale),
    ):
        if value is not None:
            verdict[key] = value
    return stream(*before, *message_steps([json.dumps(verdict)]))


def two_calls(first: dict[str, Any], second: dict[str, Any]) -> Scripted:
    """One model answer with two ``function_call`` items (parallel tool calls)."""
    steps = []
    for index, call in enumerate((first, second)):
        item = {"id": f"fc_{call['call_id']}", "type": "function_call", "status": "completed"}
        item.update(call)
        steps.append({"type": "response.output_item.done", "output_index": index, "item": item})
    return stream(*steps)


class GuardianModelServer(ModelServer):
    """See the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.reviews: deque[Scripted] = deque()
        self.events: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.marks: dict[str, float] = {}
        self.router = self._route

    def _route(self, recorded: RecordedRequest) -> Scripted | None:
        if recorded.headers.get("x-openai-subagent") != "guardian":
            return None
        return self.reviews.popleft() if self.reviews else text("no review was scripted")

    def reviewer_requests(self) -> list[RecordedRequest]:
        """The reviewer requests received so far, in arrival order."""
        return [r for r in self.requests if r.headers.get("x-openai-subagent") == "guardian"]

    def agent_requests(self) -> list[RecordedRequest]:
        """The agent's own model requests, in arrival order."""
        return [r for r in self.requests if r.headers.get("x-openai-subagent") != "guardian"]

    async def _step(self, request: Any, response: Any, step: Any, chat: bool) -> str:
        if isinstance(step, dict) and "until_requests" in step:
            await self.wait_requests(step["until_requests"])
            return "ok"
        if isinstance(step, dict) and "until" in step:
            await self.events[step["until"]].wait()
            return "ok"
        if isinstance(step, dict) and "mark" in step:
            self.marks[step["mark"]] = time.monotonic()
            return "ok"
        return await super()._step(request, response, step, chat)
