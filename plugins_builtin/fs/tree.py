"""Whole-tree watches for other families: ``kernel.services["fs"].watch_tree``.

``fs/watch`` reports one directory's entries to one connection. Other
families (``skills`` watches its skill roots) need something else: every
change anywhere under a directory, delivered to a callback, including a
directory that does not exist yet. A :class:`TreeWatch` does that:

* an existing directory is watched recursively (watchdog);
* a missing one is anchored on its nearest existing ancestor, watched
  non-recursively; when the missing part appears the watch moves down to it
  (and reports it), and when the directory goes away it moves back up.

Changes are coalesced: the first one opens a window of ``window`` seconds,
after which ``on_change(paths)`` runs once, on the event loop, with every
path that changed in it (sorted, each once). One watchdog observer serves
every tree watch of the kernel and stops with the last one.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

__all__ = ["FsService", "TreeWatch"]

log = logging.getLogger("plugins.fs.tree")
_CHANGES = frozenset({"created", "deleted", "modified", "moved"})


class TreeWatch:
    """Changes under one directory, reported to a callback; :meth:`close` stops it."""

    def __init__(
        self, service: FsService, root: str, on_change: Callable[[list[str]], Any], window: float
    ) -> None:
        self.service = service
        self.root = root
        self.on_change = on_change
        self.window = window
        self.anchor = ""
        self.recursive = False
        self.closed = False
        self._observed: Any = None
        self._pending: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        """Watch the root itself when it is a directory, else its nearest existing ancestor."""
        path = self.root
        while not os.path.isdir(path):
            parent = os.path.dirname(path)
            if parent == path:
                break
            path = parent
        recursive = path == self.root
        if (path, recursive) == (self.anchor, self.recursive) and self._observed is not None:
            return
        self._disarm()
        # watchdog skips a directory it may not read without a word: check first.
        os.close(os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        handler = _Handler(self)
        self._observed = self.service.schedule(handler, path, recursive)
        self.anchor, self.recursive = path, recursive

    def _disarm(self) -> None:
        if self._observed is not None:
            self.service.unschedule(self._observed)
            self._observed = None

    def observe(self, paths: list[str], kind: str) -> None:
        """Loop thread: an event in the watched directory."""
        if self.closed:
            return
        root = self.root
        prefix = root.rstrip(os.sep) + os.sep
        changed = {p for p in paths if p == root or p.startswith(prefix)}
        if kind != "modified" and any(p == root or root.startswith(p + os.sep) for p in paths):
            try:  # the root or one of its ancestors appeared, vanished or moved
                self._arm()
            except OSError as exc:
                log.warning("tree watch on %s: cannot follow: %s", root, exc)
            changed.add(root)
        if changed:
            self._pending |= changed
            if self._timer is None:
                self._timer = self.service.loop.call_later(self.window, self._flush)

    def _flush(self) -> None:
        self._timer = None
        if self.closed or not self._pending:
            return
        paths, self._pending = sorted(self._pending), set()
        try:
            self.on_change(paths)
        except Exception:
            log.exception("tree watch on %s: the callback failed", self.root)

    def close(self) -> None:
        """Stop watching; pending changes are dropped. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._disarm()
        self.service.forget(self)


class _Handler(FileSystemEventHandler):
    """Watchdog thread: hands one watch's events to the loop."""

    def __init__(self, watch: TreeWatch) -> None:
        self._watch = watch

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _CHANGES:
            return
        paths = [os.fsdecode(event.src_path)]
        if event.dest_path:
            paths.append(os.fsdecode(event.dest_path))
        self._watch.service.loop.call_soon_threadsafe(self._watch.observe, paths, event.event_type)


class FsService:
    """What the fs family offers other families (published as ``kernel.services["fs"]``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, window: float) -> None:
        self.loop = loop
        self.window = window
        self._observer: Any = None
        self._watches: set[TreeWatch] = set()
        self._joins: set[asyncio.Future[Any]] = set()

    def watch_tree(
        self, root: str, on_change: Callable[[list[str]], Any], *, window: float | None = None
    ) -> TreeWatch:
        """Report changes under directory ``root`` (absolute; it may not exist yet).

        ``on_change(paths)`` runs on the event loop after each coalescing
        window (``window`` seconds, default the fs plugin's
        ``watch_coalesce_ms``). Raises ``OSError`` when nothing on the way to
        ``root`` can be watched (permissions, inotify limits); nothing is
        left behind then. Call ``close()`` on the result to stop.
        """
        if not os.path.isabs(root):
            raise ValueError(f"watch_tree needs an absolute path, not {root!r}")
        watch = TreeWatch(self, os.path.normpath(root), on_change, window or self.window)
        self._watches.add(watch)
        try:
            watch._arm()
        except BaseException:
            watch.close()
            raise
        return watch

    def schedule(self, handler: _Handler, path: str, recursive: bool) -> Any:
        """Watchdog: observe ``path`` (starting the observer if needed)."""
        if self._observer is None:
            self._observer = Observer()
            self._observer.daemon = True
            self._observer.start()
        return self._observer.schedule(handler, path, recursive=recursive)

    def unschedule(self, observed: Any) -> None:
        """Watchdog: stop observing one path."""
        if self._observer is not None:
            try:
                self._observer.unschedule(observed)
            except (KeyError, OSError):
                pass  # the directory is already gone

    def forget(self, watch: TreeWatch) -> None:
        """A watch closed; stop the observer with the last one."""
        self._watches.discard(watch)
        if not self._watches:
            self._stop_observer()

    def _stop_observer(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            join = self.loop.run_in_executor(None, observer.join, 5.0)
            self._joins.add(join)
            join.add_done_callback(self._joins.discard)

    async def aclose(self) -> None:
        """Close every tree watch and wait for the observer thread (plugin shutdown)."""
        for watch in list(self._watches):
            watch.close()
        self._stop_observer()
        if self._joins:
            await asyncio.gather(*self._joins)
