"""``fs/watch``: change notifications for files and directories, via watchdog.

A watch never observes its target's inode directly, because an atomic
replace (write a temp file, rename it over the target) swaps the inode and
a direct watch would go silent. Instead each watch is *anchored* on a
directory, watched non-recursively:

* a directory target is its own anchor; changes of its direct entries (and
  of the directory itself: deleted, moved) are reported;
* a file target, or a target that does not exist yet, is anchored on the
  nearest existing ancestor; events naming the target are reported, and
  when a missing directory on the way is created the anchor moves down.

Anchors are re-computed after every event that touches the target or one
of its ancestors, so deletion and re-creation, and a directory replaced by
a file, keep being reported.

Changes are coalesced: the first change of a watch opens a window of
``window`` seconds; when it closes, one ``fs/changed`` carries every path
that changed in it (sorted, each once). Only the connection that created
the watch receives it.

Threads: one watchdog observer (plus one emitter thread per anchor
directory) runs while any watch exists and is stopped when the last one
goes. Events cross to the event loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

from .types import FsChangedNotification

if TYPE_CHECKING:
    from kernel import Connection

__all__ = ["Watch", "WatchService"]

log = logging.getLogger("plugins.fs.watch")
_CHANGES = frozenset({"created", "deleted", "modified", "moved"})


class Watch:
    """One client watch: its target, its anchor and its pending changes."""

    def __init__(self, service: WatchService, conn: Connection, watch_id: str, target: str) -> None:
        self.service = service
        self.conn = conn
        self.watch_id = watch_id
        self.target = target
        self.anchor = ""
        self._pending: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False

    def desired_anchor(self) -> str:
        """The target if it is a directory, else its nearest existing ancestor."""
        path = self.target
        if os.path.isdir(path):
            return path
        while True:
            parent = os.path.dirname(path)
            if parent == path or os.path.isdir(parent):
                return parent
            path = parent

    def observe(self, paths: list[str], kind: str) -> None:
        """Loop thread: an event with ``paths`` happened in our anchor directory."""
        target = self.target
        dir_mode = self.anchor == target
        changed = set()
        on_chain = False
        for path in paths:
            if path == target:
                on_chain = True
                if not dir_mode or kind != "modified":  # a dir's own mtime is noise
                    changed.add(path)
            elif dir_mode and os.path.dirname(path) == target:
                changed.add(path)
            elif target.startswith(path.rstrip(os.sep) + os.sep):
                on_chain = True  # an ancestor appeared, vanished or moved
        if on_chain and kind != "modified":
            before = self.anchor
            try:
                self.service.rearm(self)
            except OSError as exc:  # e.g. the new anchor is not readable
                log.warning("watch %s on %s: cannot follow: %s", self.watch_id, self.target, exc)
            if self.anchor != before and os.path.lexists(target):
                changed.add(target)
        if changed:
            self._pending |= changed
            if self._timer is None:
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(self.service.window, self._flush)

    def _flush(self) -> None:
        self._timer = None
        if self.closed or not self._pending:
            return
        paths, self._pending = sorted(self._pending), set()
        self.service.deliver(self, FsChangedNotification(self.watch_id, paths))  # type: ignore[arg-type]

    def close(self) -> None:
        """Stop reporting (pending changes are dropped)."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending.clear()


class _AnchorHandler(FileSystemEventHandler):
    """Watchdog thread: forwards one anchor directory's events to the loop."""

    def __init__(self, service: WatchService, anchor: str) -> None:
        self._service = service
        self._anchor = anchor

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _CHANGES:
            return  # opened / closed: reads are not changes
        paths = [os.fsdecode(event.src_path)]
        if event.dest_path:
            paths.append(os.fsdecode(event.dest_path))
        self._service.loop.call_soon_threadsafe(
            self._service.dispatch, self._anchor, paths, event.event_type
        )


class WatchService:
    """Every watch of one kernel, keyed by (connection id, watch id)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, window: float) -> None:
        self.loop = loop
        self.window = window
        self.watches: dict[tuple[int, str], Watch] = {}
        self._observer: Any = None
        self._anchors: dict[str, tuple[ObservedWatch, set[Watch]]] = {}
        self._deliveries: set[asyncio.Task[Any]] = set()
        self._joins: set[asyncio.Future[Any]] = set()

    # -- watches --------------------------------------------------------------

    def add(self, conn: Connection, watch_id: str, target: str) -> Watch:
        """Start a watch (the caller checked the id is free on ``conn``).

        Raises OSError when the anchor directory cannot be watched (no
        permission, inotify limits); nothing is left behind then.
        """
        watch = Watch(self, conn, watch_id, target)
        try:
            self.rearm(watch)
        except OSError:
            self._release(watch)
            if not self._anchors:
                self._stop_observer()
            raise
        self.watches[(conn.id, watch_id)] = watch
        return watch

    def count(self, conn: Connection) -> int:
        """How many watches ``conn`` has."""
        return sum(1 for cid, _ in self.watches if cid == conn.id)

    def remove(self, conn: Connection, watch_id: str) -> bool:
        """Stop a watch; False if ``conn`` has no watch of that id."""
        watch = self.watches.pop((conn.id, watch_id), None)
        if watch is None:
            return False
        watch.close()
        self._release(watch)
        return True

    def remove_connection(self, conn: Connection) -> int:
        """Stop every watch of ``conn``; returns how many."""
        ids = [wid for (cid, wid) in self.watches if cid == conn.id]
        for watch_id in ids:
            self.remove(conn, watch_id)
        return len(ids)

    async def aclose(self) -> None:
        """Stop everything and wait for the observer threads (plugin shutdown)."""
        for watch in list(self.watches.values()):
            self.remove(watch.conn, watch.watch_id)
        self._stop_observer()
        if self._joins:
            await asyncio.gather(*self._joins)

    # -- anchors ----------------------------------------------------------------

    def rearm(self, watch: Watch) -> None:
        """Move ``watch`` to the anchor its target needs now."""
        for _ in range(8):  # the tree may change under us; settle within a few tries
            anchor = watch.desired_anchor()
            if anchor == watch.anchor:
                return
            try:
                self._subscribe(watch, anchor)
            except FileNotFoundError:
                continue
            self._release(watch)
            watch.anchor = anchor
            return

    def _subscribe(self, watch: Watch, anchor: str) -> None:
        if anchor in self._anchors:
            self._anchors[anchor][1].add(watch)
            return
        # inotify needs read permission, and watchdog silently skips a
        # directory it may not read: check first, so the client hears of it.
        os.close(os.open(anchor, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        if self._observer is None:
            self._observer = Observer()
            self._observer.daemon = True
            self._observer.start()
        observed = self._observer.schedule(_AnchorHandler(self, anchor), anchor, recursive=False)
        self._anchors[anchor] = (observed, {watch})

    def _release(self, watch: Watch) -> None:
        entry = self._anchors.get(watch.anchor)
        if entry is None:
            return
        observed, members = entry
        members.discard(watch)
        if not members:
            del self._anchors[watch.anchor]
            self._observer.unschedule(observed)
        if not self._anchors:
            self._stop_observer()

    def _stop_observer(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            # Joining can take up to the observer's 1 s poll: not on the loop.
            join = self.loop.run_in_executor(None, observer.join, 5.0)
            self._joins.add(join)
            join.add_done_callback(self._joins.discard)

    # -- events -----------------------------------------------------------------

    def dispatch(self, anchor: str, paths: list[str], kind: str) -> None:
        """Loop thread: hand an anchor's event to the watches anchored there."""
        entry = self._anchors.get(anchor)
        if entry is None:
            return
        for watch in list(entry[1]):
            if not watch.closed:
                watch.observe(paths, kind)

    def deliver(self, watch: Watch, note: FsChangedNotification) -> None:
        """Send ``fs/changed`` to the watch's own connection only."""
        task = self.loop.create_task(watch.conn.notify("fs/changed", note))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)
