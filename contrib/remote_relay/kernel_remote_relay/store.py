"""The enrolled app-servers, kept in ``<state dir>/relay-state.json``.

One record per enrollment: ``server_id``, ``environment_id``, the
installation id and name the app-server gave, the SHA-256 of its current
server token and when that token expires. With a state directory the
records survive a restart of the relay, so app-servers reconnect with the
same environment ids and tokens; without one they live in memory and a
restart makes every app-server enroll again (new environment ids).

The file is replaced atomically (temporary file, fsync, rename), mode
0600, written off the event loop; writes are serialized.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["STATE_FILE", "RelayStore", "ServerRecord"]

log = logging.getLogger("kernel_remote_relay.store")

STATE_FILE = "relay-state.json"
_VERSION = 1


@dataclasses.dataclass
class ServerRecord:
    """One enrolled app-server and its environment."""

    server_id: str
    environment_id: str
    installation_id: str
    name: str
    token_sha256: str = dataclasses.field(repr=False)
    token_expires_at: float
    created_at: float


class RelayStore:
    """Records by server id and environment id; :meth:`save` persists them."""

    def __init__(self, state_dir: Path | None) -> None:
        self.path = state_dir / STATE_FILE if state_dir is not None else None
        self._by_server: dict[str, ServerRecord] = {}
        self._by_environment: dict[str, ServerRecord] = {}
        self._lock = asyncio.Lock()

    def load(self) -> int:
        """Read the state file, if any (blocking; at startup). Returns the record count."""
        if self.path is None:
            return 0
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"{self.path} is unreadable: {exc}") from None
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            raise RuntimeError(f"{self.path}: not a relay state file of version {_VERSION}")
        for item in data.get("servers", []):
            self._add(ServerRecord(**item))
        return len(self._by_server)

    def records(self) -> list[ServerRecord]:
        """Every record, oldest first."""
        return sorted(self._by_server.values(), key=lambda r: r.created_at)

    def by_server(self, server_id: str) -> ServerRecord | None:
        """The record of ``server_id``."""
        return self._by_server.get(server_id)

    def by_environment(self, environment_id: str) -> ServerRecord | None:
        """The record of ``environment_id``."""
        return self._by_environment.get(environment_id)

    def add(self, record: ServerRecord) -> list[ServerRecord]:
        """Add ``record``; earlier records of the same installation are removed and returned.

        An installation enrolls again only when it lost or was refused its
        enrollment, so its older environments are stale.
        """
        stale = [r for r in self._by_server.values() if r.installation_id == record.installation_id]
        for old in stale:
            del self._by_server[old.server_id]
            del self._by_environment[old.environment_id]
        self._add(record)
        return stale

    def _add(self, record: ServerRecord) -> None:
        self._by_server[record.server_id] = record
        self._by_environment[record.environment_id] = record

    async def save(self) -> None:
        """Persist every record (no-op without a state directory)."""
        if self.path is None:
            return
        snapshot = {
            "version": _VERSION,
            "servers": [dataclasses.asdict(r) for r in self.records()],
        }
        async with self._lock:
            await asyncio.to_thread(_write_atomic, self.path, snapshot)


def _write_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
