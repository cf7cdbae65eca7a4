"""The local thread store: JSONL rollouts under the home, indexed in ``state.sqlite``.

The rollouts are the truth (format and crash rules in :mod:`.rollout`); the
SQLite index (:mod:`.index`) is derived from them and can always be rebuilt.
It is rebuilt on ``open()`` when the database is missing, unusable or has an
older schema, and kept honest by *reconcile* before each listing (unless
``use_state_db_only``): rollout files the index does not know (a crash
between writing a file and indexing it, files copied in) are indexed, and
rows whose file vanished are dropped. Reconcile re-lists only directories
whose mtime changed (:mod:`.scanner`) and parses only unknown files.

Every blocking call runs on one dedicated daemon thread per store
(:class:`.worker.SerialExecutor`), in submission order: appends to a thread
land in the order ``append()`` was called, and SQLite stays on one thread.

Durability:

* Process crash (``kill -9`` at any moment): every ``append``/``update`` that
  returned is in the rollout. One in flight may be present in part, as a
  prefix of its records in order, and at most the very last line is torn;
  ``read`` ignores a torn line and the next append truncates it. What reads
  back is always a prefix of what was appended.
* Power loss: with ``durable=True``, ``sync(thread_id)`` fsyncs the rollout
  (and, the first time, the directories its creation added), so everything
  appended before a ``sync`` that returned survives; archive and unarchive
  fsync both directories. With ``durable=False`` (or between syncs) the
  operating system decides; the prefix property still holds on ext4/XFS,
  and a damaged middle line is skipped with a warning.
* The index may lag the rollouts after a power loss; reconcile restores the
  set of threads, ``rebuild()`` everything.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, TypeVar

import attrs

from .api import (
    UPDATABLE_FIELDS,
    AlreadyArchived,
    ListPage,
    ListQuery,
    NotArchived,
    StoreClosed,
    StoredThread,
    ThreadExists,
    ThreadMeta,
    ThreadNotFound,
    ThreadStoreError,
    check_changes,
)
from .cursor import Cursor
from .index import Index
from .rollout import (
    ARCHIVED_DIR,
    SESSIONS_DIR,
    AppendHandle,
    create_rollout,
    dated_dir,
    encode_records,
    ensure_dir,
    fsync_dir,
    meta_line,
    name_date_dir,
    read_records,
    rollout_name,
    scan_rollout,
    update_line,
)
from .scanner import Scanner
from .worker import SerialExecutor

__all__ = ["LocalThreadStore", "ReconcileReport"]

log = logging.getLogger("plugins.threads.store")
T = TypeVar("T")

DB_NAME = "state.sqlite"


@attrs.frozen
class ReconcileReport:
    """What the last reconcile did and how long it took (for diagnostics and benchmarks)."""

    seconds: float
    indexed: int
    dropped: int


class LocalThreadStore:
    """:class:`.api.ThreadStore` on the local disk under ``home``.

    ``durable``: ``sync()`` fsyncs (see the module docstring). ``blocking``:
    the executor every blocking call runs on; it must run one call at a time
    in submission order (default: a private daemon thread, shut down by
    ``close()``; one passed in is left running). ``max_open_files``: rollouts
    kept open for appending.
    """

    def __init__(
        self,
        home: Path | str,
        *,
        durable: bool = False,
        blocking: Executor | None = None,
        max_open_files: int = 64,
    ) -> None:
        self.home = Path(home).absolute()
        self.durable = durable
        self.max_open_files = max(1, max_open_files)
        self.last_reconcile: ReconcileReport | None = None
        self._executor = blocking if blocking is not None else SerialExecutor()
        self._owns_executor = blocking is None
        self._state = "new"
        self._closing: asyncio.Future[None] | None = None
        # Everything below is touched only on the executor's thread.
        self._index = Index(self.home / DB_NAME, self.home)
        self._scanner = Scanner(self.home, {SESSIONS_DIR: 3, ARCHIVED_DIR: 0})
        self._known: dict[str, str] | None = None  # relative path → id, once reconciled
        self._handles: OrderedDict[str, AppendHandle] = OrderedDict()
        self._unsynced_dirs: dict[str, list[Path]] = {}

    # -- plumbing --------------------------------------------------------------------------

    def _submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        if self._state != "open":
            raise StoreClosed(
                "the thread store is closed" if self._state != "new" else "open() the store first"
            )
        return asyncio.wrap_future(self._executor.submit(fn, *args))

    def _rel(self, meta: ThreadMeta) -> str:
        assert meta.path is not None
        return meta.path[len(self._index.prefix) :]

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        if self._state != "new":
            raise StoreClosed("the thread store was already opened")
        self._state = "open"
        try:
            await self._submit(self._open)
        except BaseException:
            self._state = "closed"
            if self._owns_executor:
                self._executor.shutdown(wait=False)
            raise
        # The first scan of the sessions folders (tens of ms for thousands of
        # rollouts) runs now, in the background, not inside the first thread/list.
        self._submit(self._reconcile).add_done_callback(_log_failure)

    def _open(self) -> None:
        os.makedirs(self.home, mode=0o700, exist_ok=True)
        if self._index.open():
            started = time.perf_counter()
            count = self._rebuild()
            log.info(
                "thread index rebuilt from %d rollouts in %.0f ms",
                count,
                (time.perf_counter() - started) * 1000,
            )

    async def close(self) -> None:
        if self._closing is not None:  # closing already: wait for the same end
            await asyncio.shield(self._closing)
            return
        if self._state != "open":
            self._state = "closed"
            return
        self._closing = self._submit(self._close)  # after every call submitted so far
        self._state = "closing"
        try:
            await asyncio.shield(self._closing)
        finally:
            self._state = "closed"
            if self._owns_executor:
                self._executor.shutdown(wait=False)

    def _close(self) -> None:
        try:
            if self.durable:
                for thread_id in list(self._handles):
                    self._sync(thread_id)
        finally:
            self._close_handles()
            self._index.close()

    def _close_handles(self, thread_id: str | None = None) -> None:
        if thread_id is None:
            while self._handles:
                self._handles.popitem()[1].close()
        elif (handle := self._handles.pop(thread_id, None)) is not None:
            handle.close()

    # -- create / append / update ------------------------------------------------------------

    async def create(self, meta: ThreadMeta) -> ThreadMeta:
        try:
            canonical = str(uuid.UUID(meta.id)) == meta.id
        except (ValueError, TypeError, AttributeError):
            canonical = False
        if not canonical:
            raise ValueError(f"thread id must be a lowercase UUID string: {meta.id!r}")
        check_changes({k: getattr(meta, k) for k in UPDATABLE_FIELDS})
        if not isinstance(meta.created_at, int) or isinstance(meta.created_at, bool):
            raise TypeError(f"created_at must be int, got {meta.created_at!r}")
        meta = meta.evolve(archived=False, path=None)
        return await self._submit(self._create, meta, meta_line(meta.to_record()))

    def _create(self, meta: ThreadMeta, line: bytes) -> ThreadMeta:
        if self._index.location(meta.id) is not None:
            raise ThreadExists(meta.id)
        rel_dir = dated_dir(meta.created_at)
        rel = f"{rel_dir}/{rollout_name(meta.id, meta.created_at)}"
        created = ensure_dir(self.home, rel_dir)
        try:
            create_rollout(self.home / rel, line)
        except FileExistsError:
            raise ThreadExists(meta.id) from None
        meta = meta.evolve(path=str(self.home / rel))
        self._index.put(meta, rel)
        if self._known is not None:
            self._known[rel] = meta.id
        if self.durable:
            self._unsynced_dirs[meta.id] = [self.home / rel_dir, *(d.parent for d in created)]
        return meta

    async def append(self, thread_id: str, records: Sequence[Mapping[str, Any]]) -> None:
        if not records:
            return
        # Encoded here, before the first await: a snapshot of the records, errors
        # raised to the caller, and submission in call order.
        await self._submit(self._append, thread_id, encode_records(records))

    def _append(self, thread_id: str, data: bytes) -> None:
        handle = self._handle(thread_id)
        handle.write(data)
        updated_at = max(handle.updated_at, handle.mtime())
        if updated_at != handle.updated_at:
            self._index.set_updated_at(thread_id, updated_at)
            handle.updated_at = updated_at

    def _handle(self, thread_id: str) -> AppendHandle:
        handle = self._handles.get(thread_id)
        if handle is not None:
            self._handles.move_to_end(thread_id)
            return handle
        location = self._index.location(thread_id)
        if location is None:
            raise ThreadNotFound(thread_id)
        rel, updated_at = location
        try:
            handle = AppendHandle(self.home / rel, updated_at)
        except FileNotFoundError:
            self._drop(thread_id, rel)
            raise ThreadNotFound(thread_id) from None
        self._handles[thread_id] = handle
        if len(self._handles) > self.max_open_files:
            self._handles.popitem(last=False)[1].close()
        return handle

    async def sync(self, thread_id: str) -> None:
        if self.durable:
            await self._submit(self._sync, thread_id)

    def _sync(self, thread_id: str) -> None:
        self._handle(thread_id).sync()
        for directory in self._unsynced_dirs.pop(thread_id, ()):
            fsync_dir(directory)

    async def update(self, thread_id: str, **changes: Any) -> ThreadMeta:
        check_changes(changes)
        return await self._submit(self._update, thread_id, changes)

    def _update(self, thread_id: str, changes: dict[str, Any]) -> ThreadMeta:
        meta = self._index.get(thread_id)
        if meta is None:
            raise ThreadNotFound(thread_id)
        if not changes:
            return meta
        new = meta.evolve(**changes)
        handle = self._handle(thread_id)
        handle.write(update_line({**changes, "updated_at": new.updated_at}))
        handle.updated_at = new.updated_at
        self._index.put(new, self._rel(new))
        return new

    # -- reading -------------------------------------------------------------------------------

    async def get(self, thread_id: str) -> ThreadMeta | None:
        return await self._submit(self._get, thread_id)

    def _get(self, thread_id: str) -> ThreadMeta | None:
        meta = self._index.get(thread_id)
        if meta is None and len(thread_id) == 36:  # maybe a file the index has not seen yet
            self._reconcile()
            meta = self._index.get(thread_id)
        return meta

    async def read(self, thread_id: str) -> StoredThread:
        return await self._submit(self._read, thread_id)

    def _read(self, thread_id: str) -> StoredThread:
        for attempt in (1, 2):
            meta = self._get(thread_id)
            if meta is None:
                break
            try:
                return StoredThread(meta, read_records(Path(meta.path or "")))
            except FileNotFoundError:
                if attempt == 1:
                    self._reconcile()  # moved behind our back? find it again
                else:
                    self._drop(thread_id, self._rel(meta))
        raise ThreadNotFound(thread_id)

    async def version(self, thread_id: str) -> str | None:
        return await self._submit(self._version, thread_id)

    def _version(self, thread_id: str) -> str | None:
        meta = self._index.get(thread_id)
        if meta is None or not meta.path:
            return None
        try:
            st = os.stat(meta.path)
        except OSError:
            return None
        # Size and mtime: appends grow the file, rewrites change the time.
        return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"

    async def list(self, query: ListQuery) -> ListPage:
        query.check()
        cursor = None
        if query.cursor is not None:
            cursor = Cursor.decode(query.cursor, query.order_key, query.sort_direction)
        return await self._submit(self._list, query, cursor)

    def _list(self, query: ListQuery, cursor: Cursor | None) -> ListPage:
        # Later pages continue the listing whose first page rescanned the folders.
        if not query.use_state_db_only and cursor is None:
            self._reconcile()
        return self._index.page(query, cursor)

    # -- archive ---------------------------------------------------------------------------

    async def archive(self, thread_id: str) -> ThreadMeta:
        return await self._submit(self._archive, thread_id, True)

    async def unarchive(self, thread_id: str) -> ThreadMeta:
        return await self._submit(self._archive, thread_id, False)

    def _archive(self, thread_id: str, archive: bool) -> ThreadMeta:
        meta = self._get(thread_id)
        if meta is None:
            raise ThreadNotFound(thread_id)
        if meta.archived == archive:
            raise AlreadyArchived(thread_id) if archive else NotArchived(thread_id)
        src = self._rel(meta)
        name = src.rsplit("/", 1)[-1]
        if archive:
            dst_dir = ARCHIVED_DIR
        else:
            dst_dir = name_date_dir(name) or dated_dir(meta.created_at)
        dst = f"{dst_dir}/{name}"
        self._close_handles(thread_id)
        created = ensure_dir(self.home, dst_dir)
        if os.path.lexists(self.home / dst):
            raise ThreadStoreError(f"cannot move the rollout of {thread_id}: {dst} exists")
        try:
            os.rename(self.home / src, self.home / dst)
        except FileNotFoundError:
            self._drop(thread_id, src)
            raise ThreadNotFound(thread_id) from None
        if self.durable:
            for directory in {(self.home / src).parent, self.home / dst_dir}:
                fsync_dir(directory)
            for directory in created:
                fsync_dir(directory.parent)
        self._index.set_location(thread_id, dst, archive)
        if self._known is not None:
            self._known.pop(src, None)
            self._known[dst] = thread_id
        return meta.evolve(archived=archive, path=str(self.home / dst))

    # -- index maintenance -------------------------------------------------------------------

    async def rebuild(self) -> int:
        return await self._submit(self._rebuild)

    def _rebuild(self) -> int:
        self._close_handles()
        self._scanner.reset()
        added, _ = self._scanner.scan()
        # Active rollouts first: if an id is both active and archived, the active one wins.
        added.sort(key=lambda rel: (rel.startswith(ARCHIVED_DIR + "/"), rel))
        rows: dict[str, tuple[ThreadMeta, str]] = {}
        for rel in added:
            meta = self._meta_from_file(rel)
            if meta is None:
                continue
            if meta.id in rows:
                log.warning("%s: thread %s also at %s; ignored", rel, meta.id, rows[meta.id][1])
                continue
            rows[meta.id] = (meta, rel)
        self._index.replace_all(rows.values())
        self._known = {rel: meta.id for meta, rel in rows.values()}
        return len(rows)

    def _meta_from_file(self, rel: str) -> ThreadMeta | None:
        record = scan_rollout(self.home / rel)
        if record is None:
            return None
        try:
            meta = ThreadMeta.from_record(
                record, archived=rel.startswith(ARCHIVED_DIR + "/"), path=str(self.home / rel)
            )
            check_changes({k: getattr(meta, k) for k in UPDATABLE_FIELDS})
            if not isinstance(meta.created_at, int):
                raise TypeError("created_at must be int")
        except TypeError as exc:
            log.warning("%s: unusable session_meta (%s); skipped", rel, exc)
            return None
        return meta

    def _reconcile(self) -> None:
        """Index rollouts the index lacks and drop rows whose rollout vanished."""
        started = time.perf_counter()
        first = self._known is None
        if self._known is None:
            self._known = self._index.paths()
        known = self._known
        added, removed = self._scanner.scan()
        if first:  # the first scan reports every file as added and nothing as removed
            removed = [rel for rel in known if rel not in self._scanner.files]
        drop: list[str] = []
        for rel in removed:
            thread_id = known.pop(rel, None)
            if thread_id is not None:
                drop.append(thread_id)
                self._close_handles(thread_id)
        if drop:
            self._index.delete(drop)
        found: list[tuple[ThreadMeta, str]] = []
        for rel in added:
            if rel in known:
                continue
            meta = self._meta_from_file(rel)
            if meta is None:
                continue
            location = self._index.location(meta.id)
            if location is not None and location[0] in self._scanner.files:
                log.warning("%s: thread %s is already at %s; ignored", rel, meta.id, location[0])
                continue
            if location is not None:
                known.pop(location[0], None)
                self._close_handles(meta.id)
            known[rel] = meta.id
            found.append((meta, rel))
        if found:
            self._index.put_many(found)
        self.last_reconcile = ReconcileReport(time.perf_counter() - started, len(found), len(drop))
        if found or drop:
            log.info("thread index reconciled: %d indexed, %d dropped", len(found), len(drop))

    def _drop(self, thread_id: str, rel: str) -> None:
        """Forget a thread whose rollout is gone."""
        log.warning("rollout of thread %s vanished (%s); dropped from the index", thread_id, rel)
        self._close_handles(thread_id)
        self._index.delete([thread_id])
        if self._known is not None:
            self._known.pop(rel, None)

    def __repr__(self) -> str:
        return f"<LocalThreadStore {self.home} {self._state}>"


def _log_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("background scan of the thread store failed", exc_info=future.exception())
