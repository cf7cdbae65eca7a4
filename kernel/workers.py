"""Per-connection workers: read frames and run handlers without a task per request.

One *reader role* exists per connection. The worker task holding it reads
the next frame and dispatches it. A synchronous handler answers on the spot.
An async handler runs right there, in the reader's task, until it first
waits; at that moment the role passes to an idle worker (or a new one) and
the handler finishes in the task it started in. So:

* a handler that answers without waiting costs no task and its answer
  leaves before the next frame is read (the client can overlap its work with
  ours);
* every handler runs from start to end in one task, so ``asyncio.timeout``,
  ``TaskGroup`` and ``current_task()`` mean what they say, and each handler
  runs in its own copy of the context, so context variables never leak from
  one request to the next;
* ``max_in_flight`` workers may wait inside handlers at once. When all do, the
  role is *parked*: nobody reads, the transport's buffers fill, and the
  client's writes block. If the role stays parked for ``overload_timeout``
  seconds, one extra reader takes it and answers async requests with
  ``-32001`` until a worker frees up; synchronous requests are still served.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any

from .framing import NEED_MORE, FrameSource, Oversized

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["Drive", "Workers"]

log = logging.getLogger("kernel.workers")


class Drive:
    """Await a coroutine step by step in ``context``, reporting its first suspension."""

    __slots__ = ("_context", "_coro", "_on_suspend")

    def __init__(
        self,
        coro: Coroutine[Any, Any, Any],
        context: contextvars.Context,
        on_suspend: Callable[[], None],
    ) -> None:
        self._coro = coro
        self._context = context
        self._on_suspend = on_suspend

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, run = self._coro, self._context.run
        try:
            yielded = run(coro.send, None)
        except StopIteration as stop:
            return stop.value
        self._on_suspend()
        while True:
            try:
                value = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # cancellation thrown into the task
                try:
                    yielded = run(coro.throw, exc)
                except StopIteration as stop:
                    return stop.value
                continue
            try:
                yielded = run(coro.send, value)
            except StopIteration as stop:
                return stop.value


class Workers:
    """The reader role and the worker tasks of one connection."""

    def __init__(
        self, conn: Connection, source: FrameSource, max_busy: int, overload_timeout: float
    ) -> None:
        self._conn = conn
        self._source = source
        self.max_busy = max_busy
        self._overload_timeout = overload_timeout
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy: set[asyncio.Task[None]] = set()
        self._idle: list[asyncio.Future[bool]] = []
        self._reader: asyncio.Task[None] | None = None
        self._reading = False  # the role holder is waiting in source.fill()
        self._parked = False
        self._park_timer: asyncio.TimerHandle | None = None
        self._stopping = False
        self.overloaded = False
        self.input_done: asyncio.Future[str] = self._loop.create_future()

    # -- public ---------------------------------------------------------------

    def start(self) -> None:
        """Start the first worker, holding the reader role."""
        self._spawn()

    @property
    def busy(self) -> int:
        """Workers waiting inside handlers."""
        return len(self._busy)

    @property
    def saturated(self) -> bool:
        """No worker is free to take the reader role from a waiting handler."""
        return len(self._busy) >= self.max_busy

    def stop_reading(self) -> None:
        """Read no further frames; running handlers are not touched."""
        self._stopping = True
        self._cancel_park_timer()
        if self._reader is not None and self._reading:
            self._reader.cancel()
        for waiter in self._idle:
            if not waiter.done():
                waiter.set_result(False)
        self._idle.clear()
        if self._parked or self._reader is None:
            self._finish_input("stopped")

    async def wait_busy(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for handlers to finish."""
        if self._busy and timeout > 0:
            await asyncio.wait(set(self._busy), timeout=timeout)

    def cancel_busy(self) -> int:
        """Cancel every handler still waiting (each still answers)."""
        busy = list(self._busy)
        for task in busy:
            task.cancel()
        return len(busy)

    async def join(self, timeout: float) -> None:
        """Wait for every worker to end; cancel those still running after ``timeout``.

        A worker can outlive :meth:`cancel_busy` only while it waits for room
        in the outbox of a client that stopped reading.
        """
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in list(self._tasks):
            task.cancel()
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    # -- the worker loop --------------------------------------------------------

    def _spawn(self) -> None:
        task = self._loop.create_task(self._work(), name=f"kernel-worker-{self._conn.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _work(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        try:
            while await self._read_and_dispatch(me):
                # We passed the role on while our handler waited; it is done now.
                self._busy.discard(me)
                if self.overloaded and not self.saturated:
                    self.overloaded = False
                if self._parked and not self._stopping:
                    self._take_parked_role()
                    continue
                if self._stopping:
                    return
                waiter: asyncio.Future[bool] = self._loop.create_future()
                self._idle.append(waiter)
                if not await waiter:
                    return
        except asyncio.CancelledError:
            if me is self._reader:
                self._finish_input("stopped" if self._stopping else "cancelled")
        except Exception:
            log.exception("connection %s: worker failed", self._conn.id)
            if me is self._reader:
                self._finish_input("error")
        finally:
            self._busy.discard(me)
            if self._reader is me:
                self._reader = None

    async def _read_and_dispatch(self, me: asyncio.Task[None]) -> bool:
        """Hold the role until input ends (False) or we hand it on (True)."""
        self._reader = me
        source, conn = self._source, self._conn
        dispatch = conn.kernel.dispatcher.dispatch
        while not self._stopping:
            frame = source.next_nowait()
            if frame is NEED_MORE:
                self._reading = True
                try:
                    more = await source.fill()
                finally:
                    self._reading = False
                if not more:
                    self._finish_input("eof")
                    return False
                continue
            if type(frame) is Oversized:
                outcome = conn.receive_oversized(frame.size, source.limit)
            else:
                outcome = dispatch(conn, frame)  # type: ignore[arg-type]
            if outcome is not None:
                # An async handler (it may pass the role on when it first
                # waits) or room in a full outbox (we keep the role: reading
                # stops, which is the point).
                await outcome
                if self._reader is not me:
                    return True
        self._finish_input("stopped")
        return False

    def pass_role(self) -> None:
        """The handler running in the role holder started waiting."""
        me = self._reader
        assert me is not None
        self._busy.add(me)
        self._reader = None
        if self._stopping:
            self._finish_input("stopped")
            return
        if self._idle:
            self._idle.pop().set_result(True)
        elif len(self._busy) < self.max_busy:
            self._spawn()
        else:
            self._park()

    def _park(self) -> None:
        self._parked = True
        self._conn.kernel.stats.backpressure_waits += 1
        self._park_timer = self._loop.call_later(self._overload_timeout, self._overload)

    def _take_parked_role(self) -> None:
        self._parked = False
        self._cancel_park_timer()

    def _cancel_park_timer(self) -> None:
        if self._park_timer is not None:
            self._park_timer.cancel()
            self._park_timer = None

    def _overload(self) -> None:
        self._park_timer = None
        if not self._parked or self._stopping:
            return
        log.warning(
            "connection %s: %d handlers busy for %.1fs; rejecting new requests until one ends",
            self._conn.id,
            len(self._busy),
            self._overload_timeout,
        )
        self.overloaded = True
        self._parked = False
        self._spawn()  # one reader beyond the limit, answering -32001 while saturated

    def _finish_input(self, reason: str) -> None:
        if not self.input_done.done():
            self.input_done.set_result(reason)
