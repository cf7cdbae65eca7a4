"""One watchdog observer for the whole fs family, shared by every watch.

Both ``fs/watch`` (:mod:`.watch`) and the tree watches other families use
(:mod:`.tree`) observe *anchor* directories. watchdog keys what it observes
by ``(path, recursive)``: scheduling the same pair twice shares one entry,
and unscheduling it stops it for everyone. So the family never calls
watchdog directly; it subscribes here, and :class:`SharedObserver` keeps one
watchdog entry per ``(path, recursive)`` with the set of subscribers using
it. The entry is unscheduled when its last subscriber is released, and the
observer thread (plus one emitter thread per entry) runs while any entry
exists. Events cross to the event loop with ``call_soon_threadsafe`` and are
handed to every subscriber of the entry they came from.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Protocol

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

__all__ = ["SharedObserver", "Subscriber"]

log = logging.getLogger("plugins.fs.observer")
_CHANGES = frozenset({"created", "deleted", "modified", "moved"})

Key = tuple[str, bool]  # (directory, recursive): watchdog's own key for a watch


class Subscriber(Protocol):
    """Anything that wants the events of an anchor directory (a watch)."""

    closed: bool

    def observe(self, paths: list[str], kind: str) -> None:
        """Loop thread: ``kind`` happened to ``paths`` under the anchor."""


class _Handler(FileSystemEventHandler):
    """Watchdog thread: hands one entry's events to the loop."""

    def __init__(self, owner: SharedObserver, key: Key) -> None:
        self._owner = owner
        self._key = key

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _CHANGES:
            return  # opened / closed: reads are not changes
        paths = [os.fsdecode(event.src_path)]
        if event.dest_path:
            paths.append(os.fsdecode(event.dest_path))
        self._owner.loop.call_soon_threadsafe(
            self._owner.dispatch, self._key, paths, event.event_type
        )


class SharedObserver:
    """Reference-counted watchdog entries of one kernel; see the module docstring."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._observer: Any = None
        self._entries: dict[Key, tuple[ObservedWatch, set[Subscriber]]] = {}
        self._joins: set[asyncio.Future[Any]] = set()

    def subscribe(self, subscriber: Subscriber, path: str, recursive: bool) -> None:
        """Give ``subscriber`` the events of directory ``path`` (its whole tree if ``recursive``).

        Raises ``OSError`` when ``path`` cannot be watched (missing, not
        readable, inotify limits); nothing is left behind then.
        """
        key = (path, recursive)
        entry = self._entries.get(key)
        if entry is not None:
            entry[1].add(subscriber)
            return
        # inotify needs read permission, and watchdog silently skips a
        # directory it may not read: check first, so the caller hears of it.
        os.close(os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        if self._observer is None:
            self._observer = Observer()
            self._observer.daemon = True
            self._observer.start()
        try:
            observed = self._observer.schedule(_Handler(self, key), path, recursive=recursive)
        except BaseException:
            if not self._entries:
                self._stop_observer()
            raise
        self._entries[key] = (observed, {subscriber})

    def release(self, subscriber: Subscriber, path: str, recursive: bool) -> None:
        """``subscriber`` no longer wants ``path``; the last one out unschedules it.

        Releasing what was never subscribed does nothing.
        """
        key = (path, recursive)
        entry = self._entries.get(key)
        if entry is None or subscriber not in entry[1]:
            return
        observed, members = entry
        members.discard(subscriber)
        if members:
            return
        del self._entries[key]
        try:
            self._observer.unschedule(observed)
        except OSError as exc:  # the kernel dropped the watch already (directory gone)
            log.debug("unscheduling %s: %s", path, exc)
        if not self._entries:
            self._stop_observer()

    def subscribers(self, path: str, recursive: bool) -> int:
        """How many subscribers share the entry ``(path, recursive)`` (0: not observed)."""
        entry = self._entries.get((path, recursive))
        return len(entry[1]) if entry is not None else 0

    def dispatch(self, key: Key, paths: list[str], kind: str) -> None:
        """Loop thread: hand an entry's event to each of its open subscribers."""
        entry = self._entries.get(key)
        if entry is None:
            return
        for subscriber in list(entry[1]):
            if not subscriber.closed:
                subscriber.observe(paths, kind)

    def _stop_observer(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            # Joining can take up to the observer's 1 s poll: not on the loop.
            join = self.loop.run_in_executor(None, observer.join, 5.0)
            self._joins.add(join)
            join.add_done_callback(self._joins.discard)

    async def aclose(self) -> None:
        """Stop the observer and wait for its thread (plugin shutdown, after the watches).

        Entries still subscribed are dropped: the stopping observer unschedules them all.
        """
        self._entries.clear()
        self._stop_observer()
        if self._joins:
            await asyncio.gather(*self._joins)
