"""An in-process transport: whole frames over asyncio queues.

Used by :mod:`kernel.testing` to drive a kernel from the same event loop
without pipes. The server side behaves exactly like any other connection
(same dispatcher, bounds and close paths); frames are not line-framed.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..framing import NEED_MORE, NeedMore

if TYPE_CHECKING:
    from ..connection import Connection
    from ..runtime import Kernel

__all__ = ["MemoryClientEnd", "open_memory_connection"]


class _MemoryLink:
    def __init__(self, to_client: asyncio.Queue[bytes | None]) -> None:
        self._to_client = to_client
        self.on_abort: Any = None
        self.task: asyncio.Task[None] | None = None

    async def send(self, frames: list[bytes]) -> None:
        for frame in frames:
            self._to_client.put_nowait(frame)

    def write_now(self, frame: bytes) -> bool:
        self._to_client.put_nowait(frame)
        return True

    def abort(self) -> None:
        if self.on_abort is not None:
            self.on_abort()
        self._to_client.put_nowait(None)

    async def close(self) -> None:
        self._to_client.put_nowait(None)


class MemoryClientEnd:
    """The client's end (a :class:`kernel.client.ClientStream`): frames in and out."""

    def __init__(
        self, to_server: asyncio.Queue[bytes | None], to_client: asyncio.Queue[bytes | None]
    ) -> None:
        self._to_server = to_server
        self._to_client = to_client

    def send_nowait(self, frame: bytes) -> None:
        self._to_server.put_nowait(frame)

    async def send(self, frame: bytes) -> None:
        self._to_server.put_nowait(frame)

    async def drain(self) -> None:
        await asyncio.sleep(0)

    async def recv(self) -> bytes | None:
        return await self._to_client.get()

    async def close(self) -> None:
        self._to_server.put_nowait(None)


class _QueueSource:
    """Whole frames from a queue; None marks the end of input."""

    def __init__(self, queue: asyncio.Queue[bytes | None], limit: int) -> None:
        self.limit = limit
        self._queue = queue
        self._held: bytes | None = None  # taken by fill(), handed out next
        self._ended = False

    def next_nowait(self) -> bytes | NeedMore:
        held = self._held
        if held is not None:
            self._held = None
            return held
        if self._ended:
            return NEED_MORE
        try:
            frame = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return NEED_MORE
        if frame is None:
            self._ended = True
            return NEED_MORE
        return frame

    async def fill(self) -> bool:
        if self._ended:
            return False
        frame = await self._queue.get()
        if frame is None:
            self._ended = True
            return False
        self._held = frame
        return True


async def open_memory_connection(kernel: Kernel) -> tuple[Connection, MemoryClientEnd]:
    """Open a connection on ``kernel`` and return it with the client's end."""
    to_server: asyncio.Queue[bytes | None] = asyncio.Queue()
    to_client: asyncio.Queue[bytes | None] = asyncio.Queue()
    link = _MemoryLink(to_client)
    conn = await kernel.open_connection("memory", link, "in-process")
    link.on_abort = conn.stop_reading
    source = _QueueSource(to_server, kernel.settings.max_message_bytes)

    async def serve() -> None:
        reason = await conn.run(source)
        if reason == "eof":
            await conn.close(kernel.settings.shutdown_grace_seconds, "client closed")

    link.task = asyncio.get_running_loop().create_task(serve())
    return conn, MemoryClientEnd(to_server, to_client)
