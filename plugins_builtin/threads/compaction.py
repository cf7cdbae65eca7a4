"""Compaction: replace a thread's model history with a summary, so long work fits the window.

A compaction is one model request (the history, then a request for a
hand-off summary, no tools) shown to clients as a ``contextCompaction``
item. Afterwards the model sees the recent user messages (the newest first,
up to :data:`KEEP_USER_TOKENS`) and the summary, as the reference does;
assistant messages, tool calls and their outputs are gone. The rollout
records ``{"type": "compacted", "turnId", "history": [...]}`` so a restart
reads back the compacted history.

It runs:

* on ``thread/compact/start``, as a turn of its own;
* inside a turn when the last request used ``model_auto_compact_token_limit``
  tokens (default: 90% of ``model_context_window``), before the next request;
* before the first turn of a fork whose model differs from its source's,
  with the source's model.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .prompt import request_body
from .state import ABORTED_MARKER
from .streaming import failure_error, usage_breakdown

if TYPE_CHECKING:
    from .engine import TurnRunner

__all__ = [
    "KEEP_USER_TOKENS",
    "SUMMARY_PREFIX",
    "SUMMARY_REQUEST",
    "compact",
    "compacted_history",
]

KEEP_USER_TOKENS = 20_000
_BYTES_PER_TOKEN = 4
SUMMARY_REQUEST = (
    "Stop and write a hand-off note for another model that will take over this task. "
    "Cover: what has been done and the decisions taken; the context, constraints and user "
    "preferences that matter; what is left to do, as concrete next steps; any data, paths "
    "or examples needed to go on. Keep it short and structured."
)
SUMMARY_PREFIX = (
    "Another model worked on this task before you and left the hand-off note below. The tools "
    "it used and their effects are still in place. Continue from it and do not redo what is "
    "done.\n\n"
)


def _text(item: Mapping[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return "".join(str(p.get("text", "")) for p in parts if isinstance(p, Mapping))


def _is_user_message(item: Mapping[str, Any]) -> bool:
    if item.get("type", "message") != "message" or item.get("role") != "user":
        return False
    text = _text(item)
    return not text.startswith(SUMMARY_PREFIX) and text != ABORTED_MARKER


def compacted_history(
    history: Sequence[Mapping[str, Any]], summary: str, keep_tokens: int = KEEP_USER_TOKENS
) -> list[dict[str, Any]]:
    """The recent user messages (newest first, within ``keep_tokens``) and the summary."""
    kept: list[dict[str, Any]] = []
    budget = keep_tokens * _BYTES_PER_TOKEN
    for item in reversed(history):
        if not _is_user_message(item):
            continue
        size = len(_text(item).encode("utf-8"))
        if size > budget:
            break
        budget -= size
        kept.append(dict(item))
    kept.reverse()
    note = {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": SUMMARY_PREFIX + summary}],
    }
    return [*kept, note]


async def compact(turn: TurnRunner, model: str | None = None) -> None:
    """Run one compaction inside ``turn`` (see the module docstring).

    ``model`` overrides the thread's model for the summary request (a fork
    summarises with its source's model). Raises the engine's ``TurnFailed``
    when the model request fails; the history is then left as it was.
    """
    from .engine import TurnFailed

    state = turn.thread.state
    item = {"type": "contextCompaction", "id": str(uuid.uuid4())}
    await turn.start_item(item)
    history = list(state.history)
    request = {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": SUMMARY_REQUEST}],
    }
    body = request_body(turn.thread_id, state.settings, [*history, request], [])
    if model:
        body["model"] = model
    stream = await turn.open_stream(body, purpose="compaction")
    parts: list[str] = []
    usage: dict[str, int] | None = None
    failure: dict[str, Any] | None = None
    completed = False
    try:
        async for event in stream:
            kind = event.get("type")
            if kind == "response.output_text.delta":
                parts.append(str(event.get("delta", "")))
            elif kind == "response.output_item.done" and not parts:
                done = event.get("item") or {}
                if done.get("type") == "message":
                    parts.append(_text({"content": done.get("content")}).strip())
            elif kind == "response.completed":
                completed = True
                raw = (event.get("response") or {}).get("usage")
                if isinstance(raw, Mapping):
                    usage = usage_breakdown(raw)
            elif kind in ("response.failed", "error", "response.incomplete"):
                failure = failure_error(event)
    finally:
        with contextlib.suppress(Exception):
            await stream.aclose()
    summary = "".join(parts).strip()
    if failure is not None or not completed or not summary:
        await turn.complete_item(item)
        raise TurnFailed(
            failure or {"message": "the model gave no summary: the history was not compacted"}
        )
    await turn.token_usage(usage)
    new_history = compacted_history(history, summary)
    state.history[:] = new_history
    state.last_request_tokens = 0
    state.compact_with_model = None
    await turn.persist([{"type": "compacted", "turnId": turn.turn_id, "history": new_history}])
    await turn.complete_item(item)
    await turn.notify("thread/compacted", {"threadId": turn.thread_id, "turnId": turn.turn_id})
