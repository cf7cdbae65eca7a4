"""Loaded threads, their subscribers, and the notifications that reach them.

A connection subscribes to a thread by starting, resuming or forking it, and
receives that thread's notifications only. A loaded thread stays loaded
after its last subscriber leaves; it is unloaded (``thread/status/changed``
to ``notLoaded``, then ``thread/closed``) once it has had no subscribers and
no running turn for ``idle_unload_seconds``, as the reference does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .state import ThreadState
from .wire import status_payload, thread_payload

if TYPE_CHECKING:
    from kernel import Connection

__all__ = ["Hub", "LoadedThread"]

log = logging.getLogger("plugins.threads")


class LoadedThread:
    """A thread in memory: its metadata, state, subscribers and running turn."""

    def __init__(
        self, meta: Any, state: ThreadState, *, ephemeral: bool, dynamic_tools: list[Any]
    ) -> None:
        self.meta = meta
        self.state = state
        self.ephemeral = ephemeral
        self.dynamic_tools = dynamic_tools
        self.subscribers: dict[int, Connection] = {}
        self.runner: Any = None  # the running TurnRunner, if any
        self.flags: list[str] = []
        self.session: dict[str, Any] = {}
        # turn/start calls that arrived during a compaction, started in order after it.
        self.queued_turns: list[Any] = []
        """Scratch space tools keep for the life of the loaded thread (session grants)."""
        self.lock = asyncio.Lock()
        self._unload_timer: asyncio.TimerHandle | None = None

    @property
    def id(self) -> str:
        return str(self.meta.id)

    @property
    def active(self) -> bool:
        return self.runner is not None or bool(self.queued_turns)

    def status(self) -> dict[str, Any]:
        """The thread's ``ThreadStatus`` now."""
        return status_payload(True, self.active, self.flags)

    def payload(self, include_turns: bool = False) -> dict[str, Any]:
        """The ``Thread`` of this loaded thread."""
        return thread_payload(
            self.meta, self.status(), self.state, include_turns, ephemeral=self.ephemeral
        )

    async def emit(self, method: str, params: dict[str, Any]) -> None:
        """Send a notification to every subscriber of this thread."""
        for conn in list(self.subscribers.values()):
            try:
                await conn.notify(method, params)
            except Exception:  # one broken connection must not stop the others
                log.exception(
                    "thread %s: sending %s to connection %s failed", self.id, method, conn.id
                )

    async def set_flags(self, flags: list[str]) -> None:
        """Change the active flags and tell subscribers (``thread/status/changed``)."""
        if flags != self.flags:
            self.flags = list(flags)
            await self.emit("thread/status/changed", {"threadId": self.id, "status": self.status()})


class Hub:
    """Every loaded thread of the kernel, by id."""

    def __init__(
        self,
        idle_unload_seconds: float,
        on_unload: Callable[[LoadedThread], Any],
        on_released: Callable[[LoadedThread], None] = lambda thread: None,
    ) -> None:
        self.threads: dict[str, LoadedThread] = {}
        self.idle_unload_seconds = idle_unload_seconds
        self._on_unload = on_unload
        # Called when a thread's last subscriber leaves, and when it is unloaded.
        self._on_released = on_released

    def get(self, thread_id: str) -> LoadedThread | None:
        """The loaded thread ``thread_id``, if loaded."""
        return self.threads.get(thread_id)

    def add(self, thread: LoadedThread) -> None:
        """Load ``thread`` (its id must not be loaded yet)."""
        self.threads[thread.id] = thread

    def subscribe(self, thread: LoadedThread, conn: Connection) -> None:
        """``conn`` receives ``thread``'s notifications from now on."""
        thread.subscribers[conn.id] = conn
        self._cancel_unload(thread)

    def unsubscribe(self, thread: LoadedThread, conn: Connection) -> bool:
        """``conn`` stops receiving them; False if it was not subscribed."""
        removed = thread.subscribers.pop(conn.id, None) is not None
        if removed:
            if not thread.subscribers:
                self._on_released(thread)
            self.maybe_schedule_unload(thread)
        return removed

    def drop_connection(self, conn: Connection) -> None:
        """A connection closed: it leaves every thread it was subscribed to."""
        for thread in list(self.threads.values()):
            self.unsubscribe(thread, conn)

    def maybe_schedule_unload(self, thread: LoadedThread) -> None:
        """Start the idle timer once nobody listens and no turn runs."""
        if thread.subscribers or thread.active or thread._unload_timer is not None:
            return
        loop = asyncio.get_running_loop()
        thread._unload_timer = loop.call_later(
            self.idle_unload_seconds, lambda: loop.create_task(self._unload(thread))
        )

    def _cancel_unload(self, thread: LoadedThread) -> None:
        if thread._unload_timer is not None:
            thread._unload_timer.cancel()
            thread._unload_timer = None

    async def _unload(self, thread: LoadedThread) -> None:
        thread._unload_timer = None
        if thread.subscribers or thread.active or self.threads.get(thread.id) is not thread:
            return
        del self.threads[thread.id]
        self._on_released(thread)
        await self._on_unload(thread)

    def remove(self, thread: LoadedThread) -> None:
        """Unload ``thread`` now (archive), without the idle notifications."""
        self._cancel_unload(thread)
        if self.threads.pop(thread.id, None) is not None:
            self._on_released(thread)
