"""The ``realtime`` plugin: ``thread/realtime/*``, voice sessions beside threads.

A client starts a session on a loaded thread; the server talks to the
Realtime API (v2) for it, over a websocket (or through a WebRTC call plus a
sideband websocket), relays the client's audio and text to the backend and
the backend's transcripts, audio and items back as ``thread/realtime/*``
notifications, and turns the voice model's handoffs into turns of the
thread. Configuration, behaviour and the differences from the reference are
in docs/realtime.md.
"""

from __future__ import annotations

from .config import RealtimeSettings
from .plugin import RealtimePlugin

__all__ = ["RealtimePlugin", "RealtimeSettings"]
