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
path that changed in it (sorted, each once). Directories are observed
through the family's :class:`.observer.SharedObserver`, like ``fs/watch``'s
anchors: two watches anchored on one directory (``<d>/.codex/skills`` and
``<d>/.agents/skills`` while both are missing) share its entry, and one
moving away or closing leaves the other observed.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

from .observer import SharedObserver

__all__ = ["FsService", "TreeWatch"]

log = logging.getLogger("plugins.fs.tree")


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
        self._armed = False
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
        if (path, recursive) == (self.anchor, self.recursive) and self._armed:
            return
        # The new anchor first: when it cannot be watched, the old one stays.
        self.service.observer.subscribe(self, path, recursive)
        self._disarm()
        self.anchor, self.recursive, self._armed = path, recursive, True

    def _disarm(self) -> None:
        if self._armed:
            self.service.observer.release(self, self.anchor, self.recursive)
            self._armed = False

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


class FsService:
    """What the fs family offers other families (published as ``kernel.services["fs"]``)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, window: float, observer: SharedObserver
    ) -> None:
        self.loop = loop
        self.window = window
        self.observer = observer
        self._watches: set[TreeWatch] = set()

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

    def forget(self, watch: TreeWatch) -> None:
        """A watch closed (its anchor is released already)."""
        self._watches.discard(watch)

    def close_all(self) -> None:
        """Close every tree watch (plugin shutdown; the shared observer is stopped after)."""
        for watch in list(self._watches):
            watch.close()
