"""The realtime voices: the protocol's names, the lists per version, the defaults.

The lists and defaults are the reference's (``RealtimeVoicesList::builtin``).
This server speaks the Realtime API v2 only, so ``thread/realtime/listVoices``
answers an empty ``v3`` list and a session accepts v2 voices alone.
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = [
    "DEFAULT_V1",
    "DEFAULT_V2",
    "V1_VOICES",
    "V2_VOICES",
    "Voice",
    "unsupported_voice",
    "voices_list",
]

# Every name the protocol's RealtimeVoice enum has (what a client may send).
Voice = Literal[
    "alloy", "arbor", "ash", "aube", "ballad", "breeze", "bubbie", "cedar", "coral", "cove",
    "echo", "ember", "haetsal", "hanul", "himari", "juniper", "leher", "maple", "marin", "miko",
    "neer", "porto", "rindo", "rio", "rivage", "sage", "selva", "shimmer", "sol", "sonna",
    "spruce", "tinta", "vale", "verse", "viola",
]  # fmt: skip

V1_VOICES = ("juniper", "maple", "spruce", "ember", "vale", "breeze", "arbor", "sol", "cove")
V2_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar",
)  # fmt: skip
DEFAULT_V1 = "cove"
DEFAULT_V2 = "marin"


def voices_list() -> dict[str, Any]:
    """The ``RealtimeVoicesList`` payload of ``thread/realtime/listVoices``."""
    return {
        "v1": list(V1_VOICES),
        "v2": list(V2_VOICES),
        "v3": [],
        "defaultV1": DEFAULT_V1,
        "defaultV2": DEFAULT_V2,
    }


def unsupported_voice(voice: str) -> str | None:
    """The reference's message when ``voice`` is not a v2 voice, else None."""
    if voice in V2_VOICES:
        return None
    return (
        f"realtime voice `{voice}` is not supported for v2; "
        f"supported voices: {', '.join(V2_VOICES)}"
    )
