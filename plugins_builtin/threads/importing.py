"""Stored threads made from a conversation held elsewhere: ``ThreadsAccess.import_thread``.

The ``external_agent`` family turns another agent's sessions into threads.
It hands over plain data (no types of this package): the thread's cwd,
name, preview and times, and its turns, each a list of user and agent
messages with their times. This module writes them through the family's
own store and record format (:mod:`.state`), so an imported thread lists,
reads, resumes and continues like one that ran here:

* one ``settings`` record (config.toml defaults with the given cwd);
* per turn: ``turn_started``, for each message an ``item`` record
  (``userMessage`` or ``agentMessage``) and a ``model`` record (the
  Responses API message the model sees on resume), then ``turn_completed``
  (``completed``).

All records go to the store in one ``append``, so a crash leaves either
the thread's first line alone or the whole conversation (the store's
prefix rule). A caller-chosen ``thread_id`` makes an import idempotent:
when a thread with that id is already stored nothing is written and the
answer says so.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from kernel import __version__

from .state import item_record, now_s, user_text_item
from .store.api import ThreadExists, ThreadMeta

if TYPE_CHECKING:
    from .service import ThreadService

__all__ = ["import_thread"]

_ROLES = {"userMessage", "agentMessage"}


def _check(cwd: str, turns: Sequence[Mapping[str, Any]]) -> None:
    """Raise ``ValueError`` naming the member the caller got wrong."""
    if not isinstance(cwd, str) or not os.path.isabs(cwd):
        raise ValueError(f"cwd must be an absolute path, got {cwd!r}")
    for t, turn in enumerate(turns):
        items = turn.get("items") if isinstance(turn, Mapping) else None
        if not isinstance(items, list) or not items:
            raise ValueError(f"turns[{t}].items must be a non-empty list")
        for i, item in enumerate(items):
            if not isinstance(item, Mapping) or item.get("type") not in _ROLES:
                raise ValueError(f"turns[{t}].items[{i}].type must be userMessage or agentMessage")
            if not isinstance(item.get("text"), str):
                raise ValueError(f"turns[{t}].items[{i}].text must be a string")
        for key in ("startedAt", "completedAt"):
            value = turn.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ValueError(f"turns[{t}].{key} must be whole seconds or None")


def _message_records(turn_id: str, item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``item`` and ``model`` records of one message."""
    text = item["text"]
    at_ms = item.get("atMs")
    at_ms = at_ms if isinstance(at_ms, int) and not isinstance(at_ms, bool) else None
    if item["type"] == "userMessage":
        wire = {
            "type": "userMessage",
            "id": str(uuid.uuid4()),
            "clientId": None,
            "content": [{"type": "text", "text": text, "text_elements": []}],
        }
        model = user_text_item(text)
    else:
        wire = {"type": "agentMessage", "id": str(uuid.uuid4()), "text": text, "phase": None}
        model = {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text}],
        }
    return [
        item_record(turn_id, wire, at_ms, at_ms),
        {"type": "model", "turnId": turn_id, "items": [model]},
    ]


def _turn_records(turn: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The records of one finished turn, in the order the engine writes them."""
    turn_id = str(uuid.uuid4())
    started = turn.get("startedAt")
    completed = turn.get("completedAt")
    if started is not None and completed is not None and completed < started:
        completed = started
    records: list[dict[str, Any]] = [
        {"type": "turn_started", "turnId": turn_id, "startedAt": started, "rootTurnId": None}
    ]
    for item in turn["items"]:
        records.extend(_message_records(turn_id, item))
    duration = (
        (completed - started) * 1000 if started is not None and completed is not None else None
    )
    records.append(
        {
            "type": "turn_completed",
            "turnId": turn_id,
            "status": "completed",
            "completedAt": completed,
            "durationMs": duration,
            "error": None,
        }
    )
    return records


async def import_thread(
    service: ThreadService,
    *,
    cwd: str,
    turns: Sequence[Mapping[str, Any]],
    name: str | None = None,
    preview: str | None = None,
    created_at: int | None = None,
    updated_at: int | None = None,
    thread_id: str | None = None,
) -> tuple[str, bool]:
    """Store a finished conversation as a thread; returns ``(thread id, created)``.

    ``turns``: ``[{"startedAt", "completedAt", "items": [{"type":
    "userMessage" | "agentMessage", "text", "atMs"}]}]`` (times in seconds,
    ``atMs`` in milliseconds, each optional). ``preview`` defaults to the
    first user message. ``created_at``/``updated_at`` (seconds) default to
    now and are kept as given, so the thread sorts by when the conversation
    happened. ``thread_id`` (a lowercase UUID) makes the call idempotent:
    ``created`` is False when that thread is already stored, and nothing is
    written. Raises ``ValueError`` for malformed input and the store's own
    errors (``StoreClosed``...) as they come.
    """
    _check(cwd, turns)
    now = now_s()
    created = created_at if isinstance(created_at, int) else now
    updated = max(updated_at if isinstance(updated_at, int) else created, created)
    if preview is None:
        preview = next(
            (
                item["text"]
                for turn in turns
                for item in turn["items"]
                if item["type"] == "userMessage"
            ),
            "",
        )
    settings = service.resolve(SimpleNamespace(cwd=cwd))
    meta = ThreadMeta(
        id=thread_id or str(uuid.uuid4()),
        created_at=created,
        updated_at=updated,
        cwd=cwd,
        model=settings.model,
        model_provider=settings.model_provider,
        reasoning_effort=settings.reasoning_effort,
        name=name,
        preview=preview,
        source="vscode",
        cli_version=__version__,
    )
    records: list[dict[str, Any]] = [{"type": "settings", "settings": settings.to_record()}]
    for turn in turns:
        records.extend(_turn_records(turn))
    store = service.store
    try:
        meta = await store.create(meta)
    except ThreadExists:
        return meta.id, False
    await store.append(meta.id, records)
    # Appending stamps the thread with the time of writing; keep the conversation's.
    await store.update(meta.id, updated_at=updated)
    return meta.id, True
