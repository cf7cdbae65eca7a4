"""``thread/approveGuardianDeniedAction``: the user overrides a denial.

What approving means (as in the reference): nothing runs. The denied
action is not replayed by the server, because the state it was judged in
may have changed since and replaying it would skip the agent's own
judgement of that. Instead the approval becomes a ``developer`` message in
the thread's model history saying the user approved exactly that action;
the agent's model may then try the action again, and the new attempt is
still reviewed, by a reviewer that sees the approval in the transcript and
scores it as authorized by the user.

When the message joins the history: at the end of the running turn (its
tool calls are all answered then; a message between a tool call and its
output would break providers that need them adjacent), or at the start of
the next turn when the thread is idle, after that turn's user message. The
reference adds it to the running turn's next model request instead. An
approval still waiting when its thread is unloaded is dropped.

The event is the denial the client was shown: the
``item/autoApprovalReview/completed`` params (camelCase, what v2 clients
hold) or the reference's snake_case ``GuardianAssessmentEvent``. A denial
this server made is recognised by its review id and the action it recorded
is the one approved, whatever the event says.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from kernel import RpcError
from kernel.rpc.errors import INVALID_REQUEST

from .prompt import APPROVAL_PREFIX
from .review import Review

__all__ = ["Overrides", "approval_message", "parse_denial"]

_KEPT_DENIALS = 1000  # denials remembered, newest kept
_PENDING_PER_THREAD = 20


def _invalid(problem: str) -> RpcError:
    return RpcError(INVALID_REQUEST, f"invalid Guardian denial event: {problem}")


def parse_denial(event: Any) -> tuple[str, Any]:
    """The review id and action of a denial event; -32600 naming what is wrong."""
    if not isinstance(event, Mapping):
        raise _invalid("expected an object")
    if "reviewId" in event:  # the v2 notification's params
        review_id, review = event.get("reviewId"), event.get("review")
        status = review.get("status") if isinstance(review, Mapping) else None
        id_field, status_field = "reviewId", "review.status"
    else:  # the reference's core event
        review_id, status = event.get("id"), event.get("status")
        id_field, status_field = "id", "status"
    if not isinstance(review_id, str) or not review_id:
        raise _invalid(f"missing field `{id_field}`")
    if not isinstance(status, str):
        raise _invalid(f"missing field `{status_field}`")
    if status != "denied":
        raise RpcError(
            INVALID_REQUEST,
            f"review {review_id} was not denied (status {status}): only a denial can be approved",
        )
    return review_id, event.get("action")


def approval_message(action: Any) -> dict[str, Any]:
    """The developer message telling the model (and later reviews) what the user approved."""
    approved = json.dumps({"action": action, "outcome": "allowed"}, indent=2, ensure_ascii=False)
    text = (
        f"{APPROVAL_PREFIX}\n\n"
        "The approval covers exactly this action, in the context where the agent asked for "
        "it; it does not cover similar actions with other arguments. Trying it again still "
        "goes through automatic review, which sees this approval.\n\n"
        f"Approved action:\n{approved}"
    )
    return {
        "type": "message",
        "role": "developer",
        "content": [{"type": "input_text", "text": text}],
    }


class Overrides:
    """Denials this server made, and approvals waiting to join a thread's history."""

    def __init__(self) -> None:
        self.denials: OrderedDict[str, Review] = OrderedDict()
        self.pending: dict[str, list[dict[str, Any]]] = {}  # thread id -> messages

    def denied(self, review: Review) -> None:
        """Remember a denial (bounded: the oldest are forgotten)."""
        self.denials[review.review_id] = review
        while len(self.denials) > _KEPT_DENIALS:
            self.denials.popitem(last=False)

    async def flush(self, turn: Any) -> None:
        """Add the approvals waiting for ``turn``'s thread to its history.

        Called when a turn is about to ask its model, and when a turn ended:
        no tool call of the turn is waiting for its output then.
        """
        waiting = self.pending.pop(turn.thread_id, None)
        if waiting:
            await turn.add_to_history(waiting)

    def forget(self, thread_id: str) -> None:
        """Drop the approvals waiting for ``thread_id`` (it was unloaded)."""
        self.pending.pop(thread_id, None)

    def approve(self, thread_id: str, event: Any) -> None:
        """Record the user's approval of a denial (see the module docstring)."""
        review_id, action = parse_denial(event)
        known = self.denials.get(review_id)
        if known is not None:
            if known.thread_id != thread_id:
                raise RpcError(
                    INVALID_REQUEST,
                    f"review {review_id} belongs to another thread, not {thread_id}",
                )
            action = known.action
        elif not isinstance(action, Mapping) or not isinstance(action.get("type"), str):
            raise _invalid("missing field `action`")
        waiting = self.pending.setdefault(thread_id, [])
        waiting.append(approval_message(action))
        del waiting[:-_PENDING_PER_THREAD]
