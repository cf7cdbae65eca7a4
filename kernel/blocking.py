"""Blocking calls in worker threads that can never hold the server hostage.

``asyncio.to_thread`` is the wrong tool for calls that may block for good (a
read from a device-like file, a hung network mount): its threads are shared
by everything, unbounded per caller, and joined at exit, so eight stuck
calls starve every connection and the server cannot shut down.
:class:`BlockingPool` fixes all three:

* **Per-owner limit.** Each owner (normally a connection) has at most
  ``per_owner`` calls in threads at once; more wait their turn without a
  thread. A call that overran its deadline still counts until its thread is
  really free, so one client cannot pile up stuck threads.
* **Deadline and cancellation.** :meth:`BlockingPool.run` gives up after
  ``timeout`` seconds or when its awaiting task is cancelled (the connection
  closed, the server shuts down) and frees the caller at once. A call that
  had not started yet never runs; one that is running finishes in its
  thread, unobserved.
* **Daemon threads.** Threads never delay process exit; shutdown takes its
  grace period and not a second more.

The pool is created by the kernel (``kernel.blocking``) and shared by
families; its size is ``kernel.blocking_threads`` and the per-owner share
``kernel.blocking_threads_per_connection``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["BlockingPool", "BlockingTimeout"]

log = logging.getLogger("kernel.blocking")
T = TypeVar("T")

# A thread with nothing to do for this long exits; the pool regrows on demand.
_IDLE_SECONDS = 30.0


class BlockingTimeout(TimeoutError):
    """The call did not finish within its deadline; it may still be running."""

    def __init__(self, timeout: float, started: bool) -> None:
        where = "still running in its thread" if started else "never started (no free thread)"
        super().__init__(f"did not finish within {timeout:g} s ({where})")
        self.timeout = timeout
        self.started = started


class _Call:
    """One submitted call and its fate; ``started``/``abandoned`` change under the pool lock."""

    __slots__ = ("abandoned", "args", "fn", "future", "key", "loop", "started")

    def __init__(
        self,
        key: int,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.key = key
        self.fn = fn
        self.args = args
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.started = False
        self.abandoned = False


class _Owner:
    """How many calls of one owner hold a thread, and who waits for a turn."""

    __slots__ = ("busy", "waiters")

    def __init__(self) -> None:
        self.busy = 0
        self.waiters: list[asyncio.Future[None]] = []


class BlockingPool:
    """Daemon worker threads with a per-owner share and per-call deadlines."""

    def __init__(
        self, name: str = "kernel-blocking", threads: int = 64, per_owner: int = 8
    ) -> None:
        if threads < 1 or per_owner < 1:
            raise ValueError("threads and per_owner must be at least 1")
        self.name = name
        self.threads = threads
        self.per_owner = per_owner
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._workers = 0
        self._idle = 0
        self._pending = 0
        self._running: set[_Call] = set()
        self._owners: dict[int, _Owner] = {}
        self._closed = False

    @property
    def stuck(self) -> int:
        """Calls still running in a thread although their caller gave up."""
        with self._lock:
            return sum(1 for call in self._running if call.abandoned)

    @property
    def busy(self) -> int:
        """Calls running in a thread now."""
        with self._lock:
            return len(self._running)

    # -- calling ------------------------------------------------------------------

    async def run(
        self, owner: object, fn: Callable[..., T], *args: Any, timeout: float | None = None
    ) -> T:
        """Run ``fn(*args)`` in a worker thread on behalf of ``owner``.

        Raises :class:`BlockingTimeout` after ``timeout`` seconds (counted
        from the call, waiting included), whatever ``fn`` raised, or
        ``CancelledError`` when the awaiting task is cancelled.
        """
        if self._closed:
            raise RuntimeError(f"{self.name} is closed")
        key = id(owner)
        call: _Call | None = None
        try:
            async with asyncio.timeout(timeout):
                await self._acquire(key)
                call = _Call(key, fn, args, asyncio.get_running_loop())
                self._submit(call)
                return await asyncio.shield(call.future)  # type: ignore[no-any-return]
        except TimeoutError:
            assert timeout is not None
            raise BlockingTimeout(timeout, call is not None and call.started) from None
        finally:
            if call is not None and not call.future.done():
                # The caller gave up: a queued call is skipped, a running one
                # keeps its thread (and its owner's share) until it returns.
                with self._lock:
                    call.abandoned = True

    async def _acquire(self, key: int) -> None:
        state = self._owners.get(key)
        if state is None:
            state = self._owners[key] = _Owner()
        while state.busy >= self.per_owner:
            waiter = asyncio.get_running_loop().create_future()
            state.waiters.append(waiter)
            try:
                await waiter
            finally:
                with contextlib.suppress(ValueError):
                    state.waiters.remove(waiter)
        state.busy += 1

    def _release(self, key: int) -> None:
        # On the loop thread, once a worker is done with one of key's calls.
        state = self._owners.get(key)
        if state is None:
            return
        state.busy -= 1
        for waiter in state.waiters:  # each re-checks; a cancelled one loses nothing
            if not waiter.done():
                waiter.set_result(None)
        if state.busy == 0 and not state.waiters:
            del self._owners[key]

    def _submit(self, call: _Call) -> None:
        with self._lock:
            self._pending += 1
            spawn = self._pending > self._idle and self._workers < self.threads
            if spawn:
                self._workers += 1
        if spawn:
            threading.Thread(target=self._work, name=self.name, daemon=True).start()
        self._queue.put(call)

    # -- worker threads --------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            try:
                call = self._queue.get(timeout=_IDLE_SECONDS)
            except queue.Empty:
                call = None
            with self._lock:
                self._idle -= 1
                if call is None:
                    self._workers -= 1
                    return
                self._pending -= 1
            self._execute(call)

    def _execute(self, call: _Call) -> None:
        with self._lock:
            skip = call.abandoned  # its caller gave up before a thread was free
            if not skip:
                call.started = True
                self._running.add(call)
        if skip:
            self._post(call, lambda: self._release(call.key))
            return
        try:
            value, ok = call.fn(*call.args), True
        except BaseException as exc:
            value, ok = exc, False
        with self._lock:
            self._running.discard(call)

        def finish() -> None:
            future = call.future
            if not call.abandoned and not future.done():
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
            self._release(call.key)

        self._post(call, finish)

    @staticmethod
    def _post(call: _Call, callback: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            call.loop.call_soon_threadsafe(callback)

    # -- closing ---------------------------------------------------------------------

    def close(self) -> None:
        """Refuse new calls and let idle threads exit; busy ones are abandoned."""
        self._closed = True
        with self._lock:
            workers = self._workers
        for _ in range(workers):
            self._queue.put(None)
        stuck = self.stuck
        if stuck:
            log.warning(
                "%s: %d call(s) still blocked in their threads at close; they are abandoned",
                self.name,
                stuck,
            )
