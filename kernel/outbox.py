"""A bounded queue of encoded frames between handlers and a connection's writer.

Producers ``await put()`` and wait while the queue is full, so a client that
stops reading slows the handlers serving it instead of growing memory without
bound. The writer takes everything queued in one go and hands the batch to
the transport as a single write.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Outbox", "OutboxClosed"]


class OutboxClosed(Exception):
    """The connection is gone; nothing more will be written."""


class Outbox:
    """Bounded FIFO of frames with batch takes for a single writer."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.frames: deque[bytes] = deque()
        """The queued frames; read-only for callers (cheap emptiness checks)."""
        self.closed = False
        """True once :meth:`close` was called."""
        self.shedding = False
        """True once :meth:`shed` was called: producers no longer wait for room."""
        self._writer_waiting: asyncio.Future[None] | None = None
        self._space = asyncio.Event()
        self._space.set()

    def __len__(self) -> int:
        return len(self.frames)

    def offer_nowait(self, frame: bytes) -> bool:
        """Queue ``frame`` if there is room; False means full (use :meth:`put`).

        A closed outbox swallows the frame and returns True: the peer is gone
        and there is nothing to wait for.
        """
        frames = self.frames
        if len(frames) >= self.limit:
            return self.closed
        if not self.closed:
            frames.append(frame)
            waiter = self._writer_waiting
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        return True

    async def put(self, frame: bytes) -> None:
        """Queue ``frame``, waiting while the queue is at its limit (unless shedding)."""
        while len(self.frames) >= self.limit:
            if self.closed:
                raise OutboxClosed
            if self.shedding:
                break
            self._space.clear()
            await self._space.wait()
        self.force(frame)

    def shed(self) -> None:
        """Stop making producers wait: the connection is being torn down.

        Producers already waiting queue their frame above the limit and go
        on; the connection drops further notifications that find the queue
        full (:meth:`kernel.Connection.notify`), so teardown never waits for
        a client that stopped reading.
        """
        self.shedding = True
        self._space.set()

    def force(self, frame: bytes) -> None:
        """Queue ``frame`` even above the limit (final answers at shutdown)."""
        if self.closed:
            raise OutboxClosed
        self.frames.append(frame)
        waiter = self._writer_waiting
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def take(self, max_frames: int = 4096) -> list[bytes]:
        """Everything queued (up to ``max_frames``); empty list once closed and drained."""
        while not self.frames:
            if self.closed:
                return []
            self._writer_waiting = asyncio.get_running_loop().create_future()
            try:
                await self._writer_waiting
            finally:
                self._writer_waiting = None
        frames = self.frames
        if len(frames) <= max_frames:
            batch = list(frames)
            frames.clear()
        else:
            batch = [frames.popleft() for _ in range(max_frames)]
        self._space.set()
        return batch

    def close(self) -> None:
        """Refuse new frames; the writer drains what is queued, then stops."""
        self.closed = True
        self._space.set()
        waiter = self._writer_waiting
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def discard(self) -> int:
        """Close and drop whatever is queued (the peer is gone); returns the count."""
        dropped = len(self.frames)
        self.frames.clear()
        self.close()
        return dropped
