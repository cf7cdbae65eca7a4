"""What remote control remembers in ``<home>/state.sqlite``: enrollments and the enabled choice.

Two tables of this family's own, next to the threads family's:

* ``remote_control_enrollment``: per relay websocket URL, the ``server_id``,
  ``environment_id`` and server name the relay gave this server. The relay's
  server token is not stored: it is short-lived, and a restarted server asks
  the relay for a fresh one (``/refresh``) with its enrollment secret;
* ``remote_control_state``: ``enabled``, the choice of the last
  non-ephemeral ``remoteControl/enable`` or ``disable``.

Every method blocks (sqlite3); callers run them with ``asyncio.to_thread``.
Each opens its own short-lived connection, so no connection crosses threads.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import attrs

__all__ = ["DB_NAME", "EnrollmentStore", "StoredEnrollment"]

DB_NAME = "state.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS remote_control_enrollment (
    websocket_url TEXT PRIMARY KEY,
    server_id TEXT NOT NULL,
    environment_id TEXT NOT NULL,
    server_name TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS remote_control_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@attrs.frozen
class StoredEnrollment:
    """One relay's enrollment of this server."""

    server_id: str
    environment_id: str
    server_name: str


class EnrollmentStore:
    """The remote-control tables of one home's ``state.sqlite``."""

    def __init__(self, home: Path) -> None:
        self.path = home / DB_NAME
        self._ready = False

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with contextlib.suppress(FileExistsError):
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
                os.close(os.open(self.path, flags, 0o600))
        db = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
        try:
            if not self._ready:
                db.execute("PRAGMA journal_mode = WAL")
                db.executescript(_SCHEMA)
                self._ready = True
            yield db
        finally:
            db.close()

    def load(self, websocket_url: str) -> StoredEnrollment | None:
        """The enrollment recorded for the relay at ``websocket_url``, if any."""
        with self._db() as db:
            row = db.execute(
                "SELECT server_id, environment_id, server_name FROM remote_control_enrollment "
                "WHERE websocket_url = ?",
                (websocket_url,),
            ).fetchone()
        return None if row is None else StoredEnrollment(*row)

    def save(self, websocket_url: str, enrollment: StoredEnrollment) -> None:
        """Record (or replace) the enrollment for ``websocket_url``."""
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO remote_control_enrollment VALUES (?, ?, ?, ?, ?)",
                (
                    websocket_url,
                    enrollment.server_id,
                    enrollment.environment_id,
                    enrollment.server_name,
                    int(time.time()),
                ),
            )

    def clear(self, websocket_url: str) -> bool:
        """Forget the enrollment for ``websocket_url``; False if there was none."""
        with self._db() as db:
            cursor = db.execute(
                "DELETE FROM remote_control_enrollment WHERE websocket_url = ?", (websocket_url,)
            )
            return cursor.rowcount > 0

    def enabled(self) -> bool | None:
        """The remembered enable/disable choice, or None if none was made."""
        with self._db() as db:
            row = db.execute(
                "SELECT value FROM remote_control_state WHERE key = 'enabled'"
            ).fetchone()
        return None if row is None else row[0] == "true"

    def set_enabled(self, enabled: bool) -> None:
        """Remember the enable/disable choice."""
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO remote_control_state VALUES ('enabled', ?)",
                ("true" if enabled else "false",),
            )
