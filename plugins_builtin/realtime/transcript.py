"""Transcript segments of one realtime session, as items and flat transcript notifications.

Each role (``user``: the input transcription, ``assistant``: the model's
text or audio transcript) has at most one open segment. Its first delta
starts a ``transcriptSegment`` item (``thread/realtime/item/started``, empty
text); every delta is sent twice, on the item
(``thread/realtime/item/transcript/delta``) and flat
(``thread/realtime/transcript/delta {role, delta}``); the backend's final
text completes it (``thread/realtime/item/completed`` then
``thread/realtime/transcript/done``).

**Better than the reference:** the completed item carries the same final
text as ``transcript/done`` (the reference completes the user's item with
the concatenated deltas, which the transcription model often revises), and
a final text repeated by a second ``…done`` event (text and audio
transcript of one answer) is not announced twice.

The entries since the last handoff are kept for the handoff's
``active_transcript`` (``[{role, text}]``, in order of first speech).
"""

from __future__ import annotations

from typing import Any

from .items import new_item_id

__all__ = ["Note", "Transcript"]

Note = tuple[str, dict[str, Any]]

ITEM_STARTED = "thread/realtime/item/started"
ITEM_COMPLETED = "thread/realtime/item/completed"
ITEM_DELTA = "thread/realtime/item/transcript/delta"
FLAT_DELTA = "thread/realtime/transcript/delta"
FLAT_DONE = "thread/realtime/transcript/done"


class _Segment:
    __slots__ = ("entry", "id", "text")

    def __init__(self, segment_id: str, entry: list[str] | None) -> None:
        self.id = segment_id
        self.text = ""
        self.entry = entry


class Transcript:
    """The open segments and recent entries of one session; methods return the notes to send."""

    def __init__(self, thread_id: str, session_id: str) -> None:
        self.thread_id = thread_id
        self.session_id = session_id
        self._open: dict[str, _Segment] = {}
        self._entries: list[list[str]] = []
        self._last_final: dict[str, str] = {}

    def _item(self, segment: _Segment, role: str, text: str) -> dict[str, Any]:
        return {
            "threadId": self.thread_id,
            "item": {
                "id": segment.id,
                "realtimeSessionId": self.session_id,
                "type": "transcriptSegment",
                "role": role,
                "text": text,
            },
        }

    def _open_segment(self, role: str, notes: list[Note]) -> _Segment:
        segment = self._open.get(role)
        if segment is None:
            segment = _Segment(new_item_id(), None)
            self._open[role] = segment
            notes.append((ITEM_STARTED, self._item(segment, role, "")))
        if segment.entry is None:
            segment.entry = [role, ""]
            self._entries.append(segment.entry)
        return segment

    def delta(self, role: str, delta: str) -> list[Note]:
        """A piece of ``role``'s current segment."""
        notes: list[Note] = []
        segment = self._open_segment(role, notes)
        segment.text += delta
        assert segment.entry is not None
        segment.entry[1] += delta
        notes.append(
            (ITEM_DELTA, {"threadId": self.thread_id, "itemId": segment.id, "delta": delta})
        )
        notes.append((FLAT_DELTA, {"threadId": self.thread_id, "role": role, "delta": delta}))
        return notes

    def done(self, role: str, text: str) -> list[Note]:
        """The final text of ``role``'s current segment (the deltas' text when blank)."""
        notes: list[Note] = []
        segment = self._open.get(role)
        if segment is None:
            if not text or self._last_final.get(role) == text:
                return notes  # nothing said, or the same final announced again
            segment = self._open_segment(role, notes)
            segment.text = text
            notes.append(
                (ITEM_DELTA, {"threadId": self.thread_id, "itemId": segment.id, "delta": text})
            )
        final = text or segment.text
        if segment.entry is not None:
            segment.entry[1] = final
        del self._open[role]
        self._last_final[role] = final
        notes.append((ITEM_COMPLETED, self._item(segment, role, final)))
        notes.append((FLAT_DONE, {"threadId": self.thread_id, "role": role, "text": final}))
        return notes

    def take_active(self) -> list[dict[str, str]]:
        """The entries since the last handoff (``[{role, text}]``), forgotten afterwards."""
        taken = [{"role": role, "text": text} for role, text in self._entries if text]
        self._entries = []
        for segment in self._open.values():
            segment.entry = None
        return taken

    def seal(self) -> list[Note]:
        """Complete the open segments with what was said (the session is ending)."""
        notes = [
            (ITEM_COMPLETED, self._item(segment, role, segment.text))
            for role, segment in self._open.items()
        ]
        self._open.clear()
        return notes
