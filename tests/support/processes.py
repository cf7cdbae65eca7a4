"""Finding the processes a test started, by a marker in their command line."""

from __future__ import annotations

import os

__all__ = ["live_processes"]


def live_processes(marker: str) -> list[int]:
    """Live (not zombie) processes with an argument that ends with ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
            with open(f"/proc/{entry}/stat", "rb") as handle:
                state = handle.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state != b"Z" and any(arg.endswith(marker.encode()) for arg in argv):
            found.append(int(entry))
    return found
