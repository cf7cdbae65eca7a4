"""One remote client as a kernel connection: its :class:`~kernel.connection.Link` and frame source.

A remote client is served like any other connection (same handshake,
dispatcher, bounds and close paths); only the transport differs, as with
:mod:`kernel.transports.memory`:

* :class:`RemoteLink` writes the connection's frames as ``server_message``
  envelopes through :class:`~.outbound.Outbound` (per-stream window);
* :class:`RemoteSource` hands the connection the messages the relay
  delivered for it. It is bounded: past ``soft_limit`` unread messages a
  request is answered ``-32001`` without being queued (every request still
  gets exactly one answer), and past ``hard_limit`` anything else drops the
  client, which then cannot grow the server's memory without bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from kernel.framing import NEED_MORE, NeedMore, Oversized

from .outbound import Key, Outbound

__all__ = ["RemoteLink", "RemoteSource"]


class RemoteLink:
    """:class:`~kernel.connection.Link` of one remote stream."""

    def __init__(
        self,
        key: Key,
        prefix: bytes,
        outbound: Outbound,
        on_end: Callable[[RemoteLink], None],
    ) -> None:
        self.key = key
        self.prefix = prefix
        self._outbound = outbound
        self._on_end = on_end
        self.on_abort: Callable[[], None] | None = None
        self.ended = False
        self._sending = False

    async def send(self, frames: list[bytes]) -> None:
        outbound, key = self._outbound, self.key
        self._sending = True  # write_now must not overtake this batch
        try:
            for frame in frames:
                # Checked after every wait: the stream may have ended, or passed
                # to a newer connection, meanwhile.
                while not self.ended and not outbound.offer(key, frame):
                    await outbound.wait_room(key)
                if self.ended:
                    return
        finally:
            self._sending = False

    def write_now(self, frame: bytes) -> bool:
        if self.ended:
            return True
        return not self._sending and self._outbound.offer(self.key, frame)

    def abort(self) -> None:
        if self.on_abort is not None:
            self.on_abort()
        self._end()

    async def close(self) -> None:
        self._end()

    def detach(self) -> None:
        """Hand the stream to a newer connection (the client sent ``initialize`` again).

        This connection's remaining output is dropped; the stream, its
        sequence numbers and its window carry on with the new one.
        """
        self.ended = True

    def _end(self) -> None:
        """Tell the relay this stream is over (``pong unknown``) and stop replaying it."""
        if self.ended:
            return
        self.ended = True
        self._outbound.pong(self.key, self.prefix, "unknown")
        self._outbound.forget(self.key)
        self._on_end(self)


class RemoteSource:
    """:class:`~kernel.framing.FrameSource` of the messages the relay delivered for one stream."""

    def __init__(self, limit: int, soft_limit: int) -> None:
        self.limit = limit
        self.soft_limit = soft_limit
        self.hard_limit = soft_limit * 4
        self.end_reason = "remote client closed"
        self._frames: deque[bytes | Oversized] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False

    @property
    def backlog(self) -> int:
        """Messages delivered but not read by the connection yet."""
        return len(self._frames)

    def push(self, frame: bytes | Oversized) -> None:
        """Deliver one message (or an oversized marker) to the connection."""
        if self._ended:
            return
        self._frames.append(frame)
        self._wake()

    def end(self, reason: str) -> None:
        """No more input: the connection sees end of input once it read what is queued."""
        if not self._ended:
            self._ended = True
            self.end_reason = reason
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def next_nowait(self) -> bytes | Oversized | NeedMore:
        if self._frames:
            return self._frames.popleft()
        return NEED_MORE

    async def fill(self) -> bool:
        while not self._frames:
            if self._ended:
                return False
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return True
