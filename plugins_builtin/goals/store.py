"""Goals on disk: one row per thread in the home's ``state.sqlite`` (table ``thread_goals``).

The threads family keeps its own tables in the same file (WAL mode, so
readers and writers of both families do not block each other). Every call
here is blocking; the plugin runs them in the kernel's blocking pool.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from .model import Goal

__all__ = ["GoalStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS thread_goals (
    thread_id TEXT PRIMARY KEY,
    objective TEXT NOT NULL,
    status TEXT NOT NULL,
    token_budget INTEGER,
    tokens_used INTEGER NOT NULL DEFAULT 0,
    time_used_seconds INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
)
"""
_COLUMNS = (
    "thread_id, objective, status, token_budget, tokens_used, time_used_seconds, "
    "created_at, updated_at"
)


class GoalStore:
    """Reads and writes goals; one connection, serialized by a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            db.execute(_SCHEMA)
            db.commit()
            self._db = db
        return self._db

    def get(self, thread_id: str) -> Goal | None:
        """The thread's goal, or None."""
        with self._lock:
            row = (
                self._conn()
                .execute(f"SELECT {_COLUMNS} FROM thread_goals WHERE thread_id = ?", (thread_id,))
                .fetchone()
            )
        return None if row is None else Goal(*row)

    def put(self, goal: Goal) -> None:
        """Insert or replace the thread's goal."""
        with self._lock:
            db = self._conn()
            db.execute(
                f"INSERT OR REPLACE INTO thread_goals ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    goal.thread_id,
                    goal.objective,
                    goal.status,
                    goal.token_budget,
                    goal.tokens_used,
                    goal.time_used_seconds,
                    goal.created_at,
                    goal.updated_at,
                ),
            )
            db.commit()

    def delete(self, thread_id: str) -> bool:
        """Remove the thread's goal; False when it had none."""
        with self._lock:
            db = self._conn()
            cursor = db.execute("DELETE FROM thread_goals WHERE thread_id = ?", (thread_id,))
            db.commit()
            return cursor.rowcount > 0

    def close(self) -> None:
        """Close the connection (server shutdown)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
