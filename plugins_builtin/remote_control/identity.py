"""Who this server is to a relay: its installation id, host name and platform.

The installation id is a UUID kept in ``<home>/installation_id`` (as the
reference keeps it in ``CODEX_HOME``), created on first start and stable
afterwards; a file that does not hold a UUID is replaced, with a warning.
"""

from __future__ import annotations

import logging
import platform
import socket
import sys
import uuid
from pathlib import Path

import attrs

from kernel import atomic_write

__all__ = ["Identity", "load_installation_id", "platform_names", "server_name"]

log = logging.getLogger("plugins.remote_control.identity")

INSTALLATION_ID_FILE = "installation_id"
_OS_NAMES = {"darwin": "macos", "win32": "windows"}
_ARCH_NAMES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}


@attrs.frozen
class Identity:
    """What the enrollment request and the websocket headers say about this server."""

    installation_id: str
    server_name: str
    os: str
    arch: str
    version: str


def load_installation_id(home: Path) -> str:
    """The installation id, created in ``home`` when missing or unreadable (blocking)."""
    path = home / INSTALLATION_ID_FILE
    try:
        text = path.read_text(encoding="utf-8").strip()
        return str(uuid.UUID(text))
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        log.warning("%s is unusable (%s); writing a new installation id", path, exc)
    value = str(uuid.uuid4())
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, (value + "\n").encode())
    return value


def server_name() -> str:
    """This host's name, as the reference reports it (``serverName``)."""
    return socket.gethostname().strip() or "localhost"


def platform_names() -> tuple[str, str]:
    """``(os, arch)`` spelled as the reference spells them (``linux``, ``x86_64``)."""
    os_name = _OS_NAMES.get(sys.platform, sys.platform.rstrip("0123456789") or sys.platform)
    machine = platform.machine().lower()
    return os_name, _ARCH_NAMES.get(machine, machine or "unknown")
