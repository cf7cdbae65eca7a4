"""What was imported, and when: this family's tables in ``<home>/state.sqlite``.

The database is shared with other families (threads, goals...): this one
owns only its three tables, created if missing (a database moved aside as
corrupt by another family simply starts them anew):

* ``external_agent_import_history``: one row per finished import
  (``importId``, ``providerId``, ``completedAtMs``, successes and
  failures as JSON) for ``externalAgentConfig/import/readHistories``;
* ``external_agent_session_imports``: ``(real path, sha256)`` of every
  session imported, and its thread, so detection skips what was imported;
* ``external_agent_imported_connectors``: the remote MCP connectors each
  imported session used (the ``connectors`` of ``readHistories``).

Every call runs in the kernel's blocking threads (never on the event loop),
serialized by a lock around one connection (WAL mode, ``busy_timeout`` so
another family's writer is waited for, not failed on).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from kernel import Kernel

__all__ = ["HistoryStore"]

T = TypeVar("T")
DB_NAME = "state.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS external_agent_import_history (
    import_id TEXT PRIMARY KEY NOT NULL,
    provider_id TEXT,
    completed_at_ms INTEGER NOT NULL,
    successes TEXT NOT NULL,
    failures TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS external_agent_import_history_by_time
    ON external_agent_import_history (completed_at_ms);
CREATE TABLE IF NOT EXISTS external_agent_session_imports (
    source_path TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    imported_at INTEGER NOT NULL,
    PRIMARY KEY (source_path, content_sha256)
);
CREATE TABLE IF NOT EXISTS external_agent_imported_connectors (
    thread_id TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (thread_id, name)
);
"""


class HistoryStore:
    """The family's rows in ``state.sqlite``; every method is a coroutine run off the loop."""

    def __init__(self, kernel: Kernel) -> None:
        """Bind to the kernel's home; the database opens on first use."""
        self.kernel = kernel
        self.path = Path(kernel.home) / DB_NAME
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.kernel.blocking.run(self, self._locked, fn, *args, timeout=60)

    def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)`` under the lock (in a blocking thread)."""
        with self._lock:
            return fn(self._connect(), *args)

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            os.makedirs(self.path.parent, mode=0o700, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
                os.close(os.open(self.path, flags, 0o600))
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA busy_timeout = 10000")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    async def open(self) -> None:
        """Create the tables now, so a broken database is reported at startup."""
        await self._run(lambda db: None)

    async def close(self) -> None:
        """Release the connection (at shutdown; waits for a call in progress)."""

        def close() -> None:
            with self._lock:
                if self._db is not None:
                    self._db.close()
                    self._db = None

        await self.kernel.blocking.run(self, close, timeout=30)

    # -- history -------------------------------------------------------------------------

    async def record(
        self,
        import_id: str,
        provider_id: str | None,
        successes: list[dict[str, Any]],
        failures: list[dict[str, Any]],
    ) -> int:
        """Store one finished import; returns its ``completedAtMs``."""
        completed = int(time.time() * 1000)
        row = (
            import_id,
            provider_id,
            completed,
            orjson.dumps(successes).decode(),
            orjson.dumps(failures).decode(),
        )

        def insert(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO external_agent_import_history VALUES (?, ?, ?, ?, ?)", row
            )

        await self._run(insert)
        return completed

    async def histories(self) -> list[dict[str, Any]]:
        """Every recorded import, newest first, as ``ExternalAgentConfigImportHistory``."""

        def select(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return db.execute(
                "SELECT import_id, provider_id, completed_at_ms, successes, failures "
                "FROM external_agent_import_history ORDER BY completed_at_ms DESC, import_id"
            ).fetchall()

        return [
            {
                "importId": import_id,
                "providerId": provider_id,
                "completedAtMs": completed,
                "successes": orjson.loads(successes),
                "failures": orjson.loads(failures),
            }
            for import_id, provider_id, completed, successes, failures in await self._run(select)
        ]

    # -- sessions ------------------------------------------------------------------------

    async def imported_sessions(self) -> set[tuple[str, str]]:
        """``(real path, sha256)`` of every session imported so far."""

        def select(db: sqlite3.Connection) -> set[tuple[str, str]]:
            rows = db.execute(
                "SELECT source_path, content_sha256 FROM external_agent_session_imports"
            )
            return {(path, sha) for path, sha in rows}

        return await self._run(select)

    async def record_sessions(
        self, sessions: Iterable[tuple[str, str, str]], connectors: dict[str, list[str]]
    ) -> None:
        """Remember imported sessions ``(real path, sha256, thread id)`` and their connectors."""
        now = int(time.time())
        rows = [(path, sha, thread_id, now) for path, sha, thread_id in sessions]
        links = [(thread_id, name) for thread_id, names in connectors.items() for name in names]

        def insert(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT OR IGNORE INTO external_agent_session_imports VALUES (?, ?, ?, ?)",
                    rows,
                )
                db.executemany(
                    "INSERT OR IGNORE INTO external_agent_imported_connectors VALUES (?, ?)",
                    links,
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

        if rows or links:
            await self._run(insert)

    async def imported_connectors(self) -> list[dict[str, Any]]:
        """Connectors of imported sessions: ``{name, sessionCount, source}``, by name."""

        def select(db: sqlite3.Connection) -> list[tuple[str, int]]:
            return db.execute(
                "SELECT min(name), count(DISTINCT thread_id) "
                "FROM external_agent_imported_connectors GROUP BY lower(name) ORDER BY lower(name)"
            ).fetchall()

        return [
            {"name": name, "sessionCount": count, "source": "remoteMcpServersConfig"}
            for name, count in await self._run(select)
        ]
