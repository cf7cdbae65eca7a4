"""One automatic approval review, from ``item/autoApprovalReview/started`` to the answer.

A review announces itself (``item/autoApprovalReview/started``), asks the
reviewer model through the threads family's ``threads_model_stream`` hook
(same provider as the turn, the ``x-openai-subagent: guardian`` header, no
tools, a JSON-schema answer), then reports (``guardianWarning``,
``item/autoApprovalReview/completed``) and answers the approval.

It fails closed: no provider, a provider error, a stream that ends early,
an unreadable answer or the timeout all refuse the action, and the agent's
model is told why. A review cut short by the turn's end reports
``aborted`` and lets the cancellation through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kernel import PluginCallError

from .actions import planned_action, wire_action
from .assessment import (
    AssessmentError,
    Verdict,
    aborted,
    failed,
    parse_assessment,
    timed_out,
    verdict,
)
from .prompt import request_body, review_input

__all__ = ["Review", "Reviewer", "ReviewerError"]

log = logging.getLogger("plugins.guardian")


class ReviewerError(Exception):
    """The reviewer model could not answer (the message says why, for the user)."""


class Review:
    """What one review was about and how it ended (for the denial records)."""

    def __init__(self, review_id: str, thread_id: str, action: dict[str, Any]) -> None:
        self.review_id = review_id
        self.thread_id = thread_id
        self.action = action
        self.verdict: Verdict | None = None


class _RequestContext:
    """Who the reviewer request is made for (``threads_model_stream``'s ``context``)."""

    purpose = "guardian"

    def __init__(self, connection: Any, thread_id: str, turn_id: str) -> None:
        self.connection = connection
        self.thread_id = thread_id
        self.turn_id = turn_id


class Reviewer:
    """Runs reviews for one kernel; ``on_denied`` hears of every refusal."""

    def __init__(
        self,
        kernel: Any,
        *,
        model: str | None,
        reasoning_effort: str | None,
        timeout: float,
        on_denied: Callable[[Review], None],
    ) -> None:
        self.kernel = kernel
        self.model = model
        self.reasoning_effort = reasoning_effort
        self.timeout = timeout
        self.on_denied = on_denied

    async def review(
        self,
        turn: Any,
        kind: str,
        params: Mapping[str, Any],
        item: Mapping[str, Any] | None,
        history: Sequence[Mapping[str, Any]],
    ) -> dict[str, Any] | None:
        """Review one approval; the answer for the tool, or None for a kind not reviewed."""
        action = wire_action(kind, params, item, turn.cwd)
        if action is None:
            return None
        review = Review(str(uuid.uuid4()), turn.thread_id, action)
        target = params.get("itemId")
        head = {
            "threadId": turn.thread_id,
            "turnId": turn.turn_id,
            "startedAtMs": _now_ms(),
            "reviewId": review.review_id,
            "targetItemId": target if isinstance(target, str) else None,
        }
        pending = {
            "status": "inProgress",
            "riskLevel": None,
            "userAuthorization": None,
            "rationale": None,
        }
        await turn.notify(
            "item/autoApprovalReview/started", {**head, "review": pending, "action": action}
        )
        try:
            outcome = await self._assess(turn, kind, params, item, history)
        except asyncio.CancelledError:
            # The turn ended (interrupt): the review still completes, as aborted.
            with contextlib.suppress(Exception):
                await self._completed(turn, head, aborted(), action)
            raise
        review.verdict = outcome
        if outcome.warning:
            await turn.notify(
                "guardianWarning", {"threadId": turn.thread_id, "message": outcome.warning}
            )
        await self._completed(turn, head, outcome, action)
        if not outcome.approved:
            self.on_denied(review)
        return _answer(kind, params, outcome)

    @staticmethod
    async def _completed(
        turn: Any, head: dict[str, Any], outcome: Verdict, action: dict[str, Any]
    ) -> None:
        params = {
            **head,
            "completedAtMs": _now_ms(),
            "decisionSource": "agent",
            "review": outcome.review(),
            "action": action,
        }
        await turn.notify("item/autoApprovalReview/completed", params)

    async def _assess(
        self,
        turn: Any,
        kind: str,
        params: Mapping[str, Any],
        item: Mapping[str, Any] | None,
        history: Sequence[Mapping[str, Any]],
    ) -> Verdict:
        settings = turn.settings
        planned = planned_action(kind, params, item, turn.cwd)
        body = request_body(
            self.model or str(settings.get("model")),
            self.reasoning_effort,
            turn.thread_id,
            review_input(turn.thread_id, settings, history, planned),
        )
        try:
            async with asyncio.timeout(self.timeout):
                text = await self._ask(turn, str(settings.get("model_provider")), body)
        except TimeoutError:
            log.warning("review of %s in thread %s timed out", kind, turn.thread_id)
            return timed_out()
        except ReviewerError as exc:
            log.warning("review of %s in thread %s failed: %s", kind, turn.thread_id, exc)
            return failed(str(exc))
        try:
            return verdict(parse_assessment(text))
        except AssessmentError as exc:
            log.warning("review of %s in thread %s unreadable: %s", kind, turn.thread_id, exc)
            return failed(str(exc))

    async def _ask(self, turn: Any, provider: str, body: dict[str, Any]) -> str | None:
        """Stream one reviewer request; the answer's text (None when it had none)."""
        headers = _headers(turn)
        context = _RequestContext(turn.connection, turn.thread_id, turn.turn_id)
        try:
            found = await self.kernel.plugins.first(
                "threads_model_stream",
                provider_id=provider,
                body=body,
                headers=headers,
                context=context,
            )
        except PluginCallError as exc:
            log.error("the reviewer's model stream failed to open", exc_info=exc.__cause__)
            raise ReviewerError("the model provider plugin failed (see the server log)") from None
        if found is None:
            raise ReviewerError(f"no plugin serves model provider {provider!r}")
        stream = found[1]
        try:
            return await _read_answer(stream)
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()


async def _read_answer(stream: Any) -> str | None:
    """The text of a Responses API event stream; raises :class:`ReviewerError` on failure."""
    deltas: list[str] = []
    final: str | None = None
    async for event in stream:
        kind = event.get("type")
        if kind == "response.output_text.delta":
            deltas.append(str(event.get("delta") or ""))
        elif kind == "response.output_item.done":
            done = event.get("item") or {}
            if done.get("type") == "message":
                texts = [
                    str(part.get("text") or "")
                    for part in done.get("content") or []
                    if isinstance(part, Mapping) and part.get("type") == "output_text"
                ]
                final = "".join(texts)
        elif kind == "response.completed":
            return final if final is not None else ("".join(deltas) or None)
        elif kind in ("response.failed", "response.incomplete", "error"):
            raise ReviewerError(f"the reviewer returned an error: {_error_message(event)}")
    raise ReviewerError("the reviewer's answer ended before it was complete")


def _error_message(event: Mapping[str, Any]) -> str:
    response = event.get("response") or {}
    error = response.get("error") or event.get("error") or {}
    if isinstance(error, Mapping) and error.get("message"):
        return str(error["message"])
    details = response.get("incomplete_details") or {}
    if isinstance(details, Mapping) and details.get("reason"):
        return f"incomplete: {details['reason']}"
    return str(event.get("message") or "unknown error")


def _answer(kind: str, params: Mapping[str, Any], outcome: Verdict) -> dict[str, Any]:
    """What the tool gets: the client's answer shape, with the reason for a refusal."""
    if kind == "permissions":
        granted = dict(params.get("permissions") or {}) if outcome.approved else {}
        return {"permissions": granted, "scope": "turn"}
    if outcome.approved:
        return {"decision": "accept"}
    return {"decision": "decline", "reason": outcome.model_text}


def _headers(turn: Any) -> dict[str, str]:
    from kernel import __version__
    from kernel.handshake import user_agent

    connection = turn.connection
    info = getattr(connection, "client_info", None)
    return {
        "x-openai-subagent": "guardian",
        "x-codex-parent-thread-id": turn.thread_id,
        "session-id": turn.thread_id,
        "thread-id": turn.thread_id,
        "x-client-request-id": turn.thread_id,
        "originator": info.name if info is not None else "kernel",
        "User-Agent": user_agent(info) if info is not None else f"kernel/{__version__}",
    }


def _now_ms() -> int:
    return int(time.time() * 1000)
