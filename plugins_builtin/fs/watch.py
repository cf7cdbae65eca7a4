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

Anchors are observed through the family's :class:`.observer.SharedObserver`
(one watchdog observer for these watches and the tree watches of
:mod:`.tree`, an anchor shared by several watches counted, not scheduled
twice); it stops its threads when the last anchor is released.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

from .observer import SharedObserver
from .types import FsChangedNotification

if TYPE_CHECKING:
    from kernel import Connection

__all__ = ["Watch", "WatchService"]

log = logging.getLogger("plugins.fs.watch")


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


class WatchService:
    """Every watch of one kernel, keyed by (connection id, watch id)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, window: float, observer: SharedObserver
    ) -> None:
        self.loop = loop
        self.window = window
        self.observer = observer
        self.watches: dict[tuple[int, str], Watch] = {}
        self._deliveries: set[asyncio.Task[Any]] = set()

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

    def close_all(self) -> None:
        """Stop every watch (plugin shutdown; the shared observer is stopped after)."""
        for watch in list(self.watches.values()):
            self.remove(watch.conn, watch.watch_id)

    # -- anchors ----------------------------------------------------------------

    def rearm(self, watch: Watch) -> None:
        """Move ``watch`` to the anchor its target needs now.

        The new anchor is subscribed before the old one is released, so an
        anchor shared with other watches never drops out in between.
        """
        for _ in range(8):  # the tree may change under us; settle within a few tries
            anchor = watch.desired_anchor()
            if anchor == watch.anchor:
                return
            try:
                self.observer.subscribe(watch, anchor, False)
            except FileNotFoundError:
                continue
            self._release(watch)
            watch.anchor = anchor
            return

    def _release(self, watch: Watch) -> None:
        if watch.anchor:
            self.observer.release(watch, watch.anchor, False)

    def deliver(self, watch: Watch, note: FsChangedNotification) -> None:
        """Send ``fs/changed`` to the watch's own connection only."""
        task = self.loop.create_task(watch.conn.notify("fs/changed", note))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)
