"""Threads and turns in memory, and how they are rebuilt from a rollout.

Items are kept in their wire form (the protocol's ``ThreadItem`` JSON) from
the moment they complete: that is what clients read, what the rollout
stores, and what ``thread/turns/list`` and ``thread/items/list`` page
through. The model's view of the conversation (Responses API input items)
is kept beside them, because it is not the same thing: reasoning carries
encrypted content clients never see, and an abandoned partial answer is
shown to clients but never sent back to the model.

Rollout records (one JSON object per line, written by :mod:`.engine` and
:mod:`.plugin`, read back by :func:`replay`):

* ``{"type": "settings", "settings": {...}}``: the thread's settings changed;
* ``{"type": "turn_started", "turnId", "startedAt", "rootTurnId"}``;
* ``{"type": "item", "turnId", "item", "startedAtMs", "completedAtMs"}``;
* ``{"type": "model", "turnId", "items": [...]}``: model input items;
* ``{"type": "turn_completed", "turnId", "status", "completedAt",
  "durationMs", "error"}``;
* ``{"type": "token_usage", "total", "last"}``;
* ``{"type": "read_state", "readState"}``;
* ``{"type": "compacted", "turnId", "history": [...]}``: the model history
  was replaced by a summary (:mod:`.compaction`);
* ``{"type": "compact_pending", "model"}``: compact with ``model`` before the
  next turn (a fork that changed model).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = [
    "ABORTED_MARKER",
    "Settings",
    "ThreadState",
    "TurnState",
    "item_record",
    "now_ms",
    "now_s",
    "replay",
    "turn_completed_record",
    "turn_started_record",
    "user_text_item",
    "zero_usage",
]

ABORTED_MARKER = (
    "<turn_aborted>\nThe user interrupted the previous turn on purpose. Anything the assistant "
    "started in it may be unfinished; do not assume it was done, and ask before redoing it.\n"
    "</turn_aborted>"
)


def now_s() -> int:
    """Seconds since the epoch (the protocol's createdAt/updatedAt/startedAt unit)."""
    return int(time.time())


def now_ms() -> int:
    """Milliseconds since the epoch (startedAtMs/completedAtMs)."""
    return int(time.time() * 1000)


def zero_usage() -> dict[str, int]:
    """A ``TokenUsageBreakdown`` of zeros."""
    return {
        "totalTokens": 0,
        "inputTokens": 0,
        "cachedInputTokens": 0,
        "cacheWriteInputTokens": 0,
        "outputTokens": 0,
        "reasoningOutputTokens": 0,
    }


@attrs.define
class Settings:
    """What a turn runs with; ``turn/start`` overrides persist for later turns."""

    model: str
    model_provider: str
    cwd: str
    approval_policy: Any = "on-request"
    approvals_reviewer: str = "user"
    sandbox: str = "read-only"
    sandbox_policy: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    reasoning_summary: str | None = None
    personality: str | None = None
    base_instructions: str | None = None
    developer_instructions: str | None = None
    collaboration_mode: str = "default"  # "plan" or "default" (turn/start collaborationMode)
    # The selected environments (TurnEnvironmentParams); None: the default (local).
    environments: list[dict[str, Any]] | None = None

    def to_record(self) -> dict[str, Any]:
        """JSON for the rollout."""
        return attrs.asdict(self)

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Settings:
        """Settings from a rollout record (unknown keys ignored)."""
        names = {a.name for a in attrs.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@attrs.define(eq=False)
class TurnState:
    """One turn: its status, timing and items (wire form, completion order)."""

    id: str
    root_turn_id: str | None = None
    status: str = "inProgress"
    started_at: int | None = None
    completed_at: int | None = None
    duration_ms: int | None = None
    error: dict[str, Any] | None = None
    items: list[dict[str, Any]] = attrs.Factory(list)
    times: dict[str, tuple[int | None, int | None]] = attrs.Factory(dict)
    started_ms: int = 0

    @property
    def done(self) -> bool:
        return self.status != "inProgress"

    def add_item(
        self, item: dict[str, Any], started_ms: int | None, completed_ms: int | None
    ) -> None:
        """Record a completed item (replacing one with the same id)."""
        item_id = item["id"]
        for index, existing in enumerate(self.items):
            if existing.get("id") == item_id:
                self.items[index] = item
                break
        else:
            self.items.append(item)
        self.times[item_id] = (started_ms, completed_ms)


@attrs.define(eq=False)
class ThreadState:
    """A thread's history and settings, loaded or being built from its rollout."""

    id: str
    settings: Settings
    turns: list[TurnState] = attrs.Factory(list)
    history: list[dict[str, Any]] = attrs.Factory(list)
    token_total: dict[str, int] = attrs.Factory(zero_usage)
    token_last: dict[str, int] = attrs.Factory(zero_usage)
    read_state: dict[str, Any] = attrs.Factory(
        lambda: {"firstUnread": None, "revision": str(uuid.uuid4())}
    )
    # Tokens the last model request used: auto-compaction compares it to the limit.
    last_request_tokens: int = 0
    # Compact with this model before the next turn (a fork that changed model).
    compact_with_model: str | None = None

    def turn(self, turn_id: str) -> TurnState | None:
        """The turn with ``turn_id``, if this thread has it."""
        for turn in reversed(self.turns):
            if turn.id == turn_id:
                return turn
        return None


def replay(thread: ThreadState, records: Iterable[Mapping[str, Any]]) -> ThreadState:
    """Apply rollout ``records`` to ``thread`` (see the module docstring).

    A turn that was still running when the server stopped (kill -9, power
    loss) is closed as ``interrupted``, with the interruption marker in the
    model's history, exactly as if ``turn/interrupt`` had ended it.
    """
    for record in records:
        kind = record.get("type")
        if kind == "settings":
            merged = {**thread.settings.to_record(), **record.get("settings", {})}
            thread.settings = Settings.from_record(merged)
        elif kind == "turn_started":
            thread.turns.append(
                TurnState(
                    id=record["turnId"],
                    root_turn_id=record.get("rootTurnId"),
                    started_at=record.get("startedAt"),
                )
            )
        elif kind == "item":
            turn = thread.turn(record.get("turnId", ""))
            if turn is not None:
                turn.add_item(
                    record["item"], record.get("startedAtMs"), record.get("completedAtMs")
                )
        elif kind == "model":
            thread.history.extend(record.get("items", []))
        elif kind == "turn_completed":
            turn = thread.turn(record.get("turnId", ""))
            if turn is not None:
                turn.status = record.get("status", "completed")
                turn.completed_at = record.get("completedAt")
                turn.duration_ms = record.get("durationMs")
                turn.error = record.get("error")
        elif kind == "token_usage":
            thread.token_total = record.get("total", thread.token_total)
            thread.token_last = record.get("last", thread.token_last)
        elif kind == "read_state":
            thread.read_state = record.get("readState", thread.read_state)
        elif kind == "compacted":
            thread.history = list(record.get("history", []))
            thread.compact_with_model = None
        elif kind == "compact_pending":
            thread.compact_with_model = record.get("model")
    for turn in thread.turns:
        if not turn.done:
            turn.status = "interrupted"
            thread.history.append(user_text_item(ABORTED_MARKER))
    return thread


def turn_started_record(turn: TurnState) -> dict[str, Any]:
    """The rollout record of a turn's start."""
    return {
        "type": "turn_started",
        "turnId": turn.id,
        "startedAt": turn.started_at,
        "rootTurnId": turn.root_turn_id,
    }


def item_record(
    turn_id: str, item: dict[str, Any], started_ms: int | None, completed_ms: int | None
) -> dict[str, Any]:
    """The rollout record of a completed item."""
    return {
        "type": "item",
        "turnId": turn_id,
        "item": item,
        "startedAtMs": started_ms,
        "completedAtMs": completed_ms,
    }


def turn_completed_record(turn: TurnState) -> dict[str, Any]:
    """The rollout record of a turn's end."""
    return {
        "type": "turn_completed",
        "turnId": turn.id,
        "status": turn.status,
        "completedAt": turn.completed_at,
        "durationMs": turn.duration_ms,
        "error": turn.error,
    }


def user_text_item(text: str) -> dict[str, Any]:
    """A Responses API user message with one text part."""
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
