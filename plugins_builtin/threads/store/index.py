"""The SQLite index of thread metadata in ``<home>/state.sqlite``: listing and lookups.

Derived data: every row can be recomputed from the rollouts (``rebuild``), so
the index trades durability for speed (WAL, ``synchronous=NORMAL``: a
committed row survives a process crash; a power loss may lose the last
commits, which reconcile or ``rebuild`` restores from the files).

The database is shared with other families (goals, remote control), so the
store owns only its tables: ``threads`` and ``thread_store_meta`` (which
holds the schema version). A missing or older schema means "rebuild";
SQLite's ``user_version`` is left to others.

Listing runs as one keyset query per page (``LIMIT n + 1`` tells whether more
follow) over indexes on ``(archived, sort key, id)``; filters are bound as
JSON arrays (``json_each``) so any number of cwds or ids is one parameter.
Rows become :class:`.api.ThreadMeta` with the absolute path joined in SQL.
Only the store's writer thread uses an :class:`Index`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import orjson

from .api import (
    INTERACTIVE_SOURCE_KINDS,
    ListPage,
    ListQuery,
    ThreadMeta,
    kind_filter,
    source_kind_of,
)
from .cursor import Cursor, Side

__all__ = ["SCHEMA_VERSION", "Index"]

log = logging.getLogger("plugins.threads.store")

SCHEMA_VERSION = 1

_FIELDS = tuple(f.name for f in attrs.fields(ThreadMeta))
_SOURCE_AT = _FIELDS.index("source")
_GIT_AT = _FIELDS.index("git_info")
_ARCHIVED_AT = _FIELDS.index("archived")
_STORED = (*_FIELDS, "source_kind", "subagent_kind")
_SELECT = ", ".join("(? || path)" if name == "path" else name for name in _FIELDS)
_INSERT = (
    f"INSERT OR REPLACE INTO threads ({', '.join(_STORED)}) "
    f"VALUES ({', '.join('?' for _ in _STORED)})"
)
_SORT_COLUMNS = {
    "created_at": "created_at",
    "updated_at": "updated_at",
    "recency_at": "recency_key",
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS thread_store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
DROP TABLE IF EXISTS threads;
CREATE TABLE threads (
    id TEXT PRIMARY KEY NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    cwd TEXT NOT NULL,
    model_provider TEXT NOT NULL,
    model TEXT,
    reasoning_effort TEXT,
    name TEXT,
    preview TEXT NOT NULL,
    source TEXT NOT NULL,
    thread_source TEXT,
    forked_from_id TEXT,
    parent_thread_id TEXT,
    git_info TEXT,
    cli_version TEXT NOT NULL,
    originator TEXT,
    agent_nickname TEXT,
    agent_role TEXT,
    project_id TEXT,
    archived INTEGER NOT NULL,
    path TEXT NOT NULL,
    recency_at INTEGER,
    source_kind TEXT NOT NULL,
    subagent_kind TEXT,
    recency_key INTEGER GENERATED ALWAYS AS (coalesce(recency_at, updated_at)) VIRTUAL
);
CREATE INDEX threads_by_created ON threads (archived, created_at, id);
CREATE INDEX threads_by_updated ON threads (archived, updated_at, id);
CREATE INDEX threads_by_recency ON threads (archived, recency_key, id);
CREATE INDEX threads_by_cwd ON threads (cwd, archived);
CREATE INDEX threads_by_provider ON threads (model_provider, archived);
"""


def _row_values(meta: ThreadMeta, rel: str) -> tuple[Any, ...]:
    values = list(attrs.astuple(meta, recurse=False))
    values[_SOURCE_AT] = orjson.dumps(meta.source).decode()
    values[_GIT_AT] = None if meta.git_info is None else orjson.dumps(meta.git_info).decode()
    values[_ARCHIVED_AT] = int(meta.archived)
    values[_FIELDS.index("path")] = rel
    return (*values, *source_kind_of(meta.source))


def _meta(row: tuple[Any, ...]) -> ThreadMeta:
    values = list(row)
    values[_SOURCE_AT] = orjson.loads(values[_SOURCE_AT])
    if values[_GIT_AT] is not None:
        values[_GIT_AT] = orjson.loads(values[_GIT_AT])
    values[_ARCHIVED_AT] = bool(values[_ARCHIVED_AT])
    return ThreadMeta(*values)


class Index:
    """The ``threads`` table of one home's ``state.sqlite``."""

    def __init__(self, path: Path, home: Path) -> None:
        self.path = path
        self.prefix = str(home) + os.sep
        self._db: sqlite3.Connection | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def open(self) -> bool:
        """Connect (creating the file 0600); True when the rows must be rebuilt."""
        try:
            return self._open()
        except sqlite3.DatabaseError as exc:  # not a database, or damaged beyond use
            self.close()
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            log.error("%s is unusable (%s); moved to %s and rebuilt", self.path, exc, aside.name)
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
            return self._open()

    def _open(self) -> bool:
        with contextlib.suppress(FileExistsError):
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        db = self._db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA busy_timeout = 5000")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        version = None
        with contextlib.suppress(sqlite3.OperationalError):  # no such table
            row = db.execute(
                "SELECT value FROM thread_store_meta WHERE key = 'schema_version'"
            ).fetchone()
            version = int(row[0]) if row else None
        has_table = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'threads'"
        ).fetchone()
        if version == SCHEMA_VERSION and has_table:
            return False
        if version is not None and version > SCHEMA_VERSION:
            log.warning("thread index schema %s is newer than ours; rebuilding", version)
        db.executescript(
            f"BEGIN IMMEDIATE; {_SCHEMA} INSERT OR REPLACE INTO thread_store_meta "
            f"VALUES ('schema_version', '{SCHEMA_VERSION}'); COMMIT;"
        )
        return True

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA optimize")
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "index not open"
        return self._db

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- rows ----------------------------------------------------------------------------

    def get(self, thread_id: str) -> ThreadMeta | None:
        row = self.db.execute(
            f"SELECT {_SELECT} FROM threads WHERE id = ?", (self.prefix, thread_id)
        ).fetchone()
        return None if row is None else _meta(row)

    def location(self, thread_id: str) -> tuple[str, int] | None:
        """``(relative path, updated_at)`` of a thread."""
        row = self.db.execute(
            "SELECT path, updated_at FROM threads WHERE id = ?", (thread_id,)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def put(self, meta: ThreadMeta, rel: str) -> None:
        """Insert or replace a thread's row."""
        self.db.execute(_INSERT, _row_values(meta, rel))

    def put_many(self, rows: Iterable[tuple[ThreadMeta, str]]) -> None:
        with self._tx():
            self.db.executemany(_INSERT, (_row_values(meta, rel) for meta, rel in rows))

    def delete(self, thread_ids: Iterable[str]) -> None:
        with self._tx():
            self.db.executemany("DELETE FROM threads WHERE id = ?", ((i,) for i in thread_ids))

    def set_updated_at(self, thread_id: str, updated_at: int) -> None:
        self.db.execute("UPDATE threads SET updated_at = ? WHERE id = ?", (updated_at, thread_id))

    def set_location(self, thread_id: str, rel: str, archived: bool) -> None:
        self.db.execute(
            "UPDATE threads SET path = ?, archived = ? WHERE id = ?",
            (rel, int(archived), thread_id),
        )

    def paths(self) -> dict[str, str]:
        """Every row's ``relative path → id``."""
        return dict(self.db.execute("SELECT path, id FROM threads"))

    def replace_all(self, rows: Iterable[tuple[ThreadMeta, str]]) -> None:
        """Make the table hold exactly ``rows`` (one transaction)."""
        with self._tx():
            self.db.execute("DELETE FROM threads")
            self.db.executemany(_INSERT, (_row_values(meta, rel) for meta, rel in rows))
        self.db.execute("PRAGMA optimize")

    # -- listing -------------------------------------------------------------------------

    def page(self, query: ListQuery, cursor: Cursor | None) -> ListPage:
        """One page for a checked ``query``, starting at ``cursor`` (``None``: the start)."""
        key = _SORT_COLUMNS[query.order_key]
        where, params = self._filters(query)
        if where is None:
            return ListPage([])
        direction = query.sort_direction
        limit = query.page_size
        gap = cursor or Cursor(query.order_key, direction, None, "")
        op = gap.operator()
        sql = f"SELECT {_SELECT}, {key} FROM threads WHERE {where}"
        args: list[Any] = [self.prefix, *params]
        if op is not None:
            sql += f" AND ({key}, id) {op} (?, ?)"
            args += [gap.value, gap.id]
        if gap.backward:  # read the gap's neighbourhood in reverse, then flip
            direction = "asc" if direction == "desc" else "desc"
        sql += f" ORDER BY {key} {direction}, id {direction} LIMIT ?"
        rows = self.db.execute(sql, (*args, limit + 1)).fetchall()
        more = len(rows) > limit
        del rows[limit:]
        if gap.backward:
            rows.reverse()
        items = [_meta(row[:-1]) for row in rows]

        def at(row: tuple[Any, ...], side: Side, backward: bool) -> Cursor:
            return attrs.evolve(gap, value=row[-1], id=row[0], side=side, backward=backward)

        after = at(rows[-1], "after", False) if rows else attrs.evolve(gap, backward=False)
        before = at(rows[0], "before", True) if rows else attrs.evolve(gap, backward=True)
        if gap.backward:
            has_next = self._exists(key, where, params, after)
            has_back = more
        else:
            has_next = more
            has_back = gap.value is not None and self._exists(key, where, params, before)
        return ListPage(
            items,
            after.encode() if has_next else None,
            before.encode() if has_back else None,
        )

    def _exists(self, key: str, where: str, params: list[Any], gap: Cursor) -> bool:
        op = gap.operator()
        if op is None:
            return False
        sql = f"SELECT 1 FROM threads WHERE {where} AND ({key}, id) {op} (?, ?) LIMIT 1"
        return self.db.execute(sql, (*params, gap.value, gap.id)).fetchone() is not None

    @staticmethod
    def _filters(query: ListQuery) -> tuple[str | None, list[Any]]:
        """SQL conditions and their parameters; ``None`` when nothing can match."""
        where = ["archived = ?"]
        params: list[Any] = [int(query.archived)]
        if query.cwds is not None:
            if not query.cwds:
                return None, []
            where.append("cwd IN (SELECT value FROM json_each(?))")
            params.append(orjson.dumps(list(query.cwds)).decode())
        if query.model_providers:
            where.append("model_provider IN (SELECT value FROM json_each(?))")
            params.append(orjson.dumps(list(query.model_providers)).decode())
        kinds = query.source_kinds or INTERACTIVE_SOURCE_KINDS
        plain = sorted({k for k, v in map(kind_filter, kinds) if v is None})
        variants = sorted({v for k, v in map(kind_filter, kinds) if v is not None})
        alternatives = []
        if plain:
            alternatives.append(f"source_kind IN ({', '.join('?' for _ in plain)})")
            params += plain
        if variants:
            marks = ", ".join("?" for _ in variants)
            alternatives.append(f"(source_kind = 'subAgent' AND subagent_kind IN ({marks}))")
            params += variants
        where.append(f"({' OR '.join(alternatives)})")
        if query.search_term:
            where.append("instr(coalesce(nullif(name, ''), preview), ?) > 0")
            params.append(query.search_term)
        if query.excluded_ids:
            where.append("id NOT IN (SELECT value FROM json_each(?))")
            params.append(orjson.dumps(list(query.excluded_ids)).decode())
        return " AND ".join(where), params
