"""Realtime items: their ids (UUID v7, as the reference's) and the session boundary items."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

__all__ = ["new_item_id", "session_item"]


def new_item_id() -> str:
    """A UUID v7: 48 bits of milliseconds, then random bits (sortable by creation)."""
    millis = time.time_ns() // 1_000_000
    value = int.from_bytes((millis & ((1 << 48) - 1)).to_bytes(6, "big") + os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))


def session_item(session_id: str, kind: str, outcome: str | None = None) -> dict[str, Any]:
    """A ``realtimeSessionStarted`` or ``realtimeSessionClosed`` (with ``outcome``) item."""
    item: dict[str, Any] = {"id": new_item_id(), "realtimeSessionId": session_id, "type": kind}
    if outcome is not None:
        item["outcome"] = outcome
    return item
