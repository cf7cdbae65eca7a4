"""One JSON-RPC connection over a websocket: text frames in, text frames out.

Each text frame carries one message. A binary frame closes the connection
with 1003 (unsupported data); a frame over ``kernel.max_message_bytes``
closes it with 1009 (message too big); both reasons are logged. aiohttp
answers pings and, with ``kernel.websocket_heartbeat_seconds``, sends its
own and drops a peer that stops answering them.

Backpressure is the same as on stdio: while the connection cannot take more
work nobody calls ``receive()``, aiohttp stops reading the socket, and the
client's sends block in TCP. Outbound, a peer that leaves the server's
answers unread for ``kernel.send_timeout_seconds`` is dropped, so a stuck
client cannot hold a connection's memory forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode, WSMsgType, web

from ..framing import NEED_MORE, NeedMore, Oversized

if TYPE_CHECKING:
    from ..runtime import Kernel

__all__ = ["WebSocketLink", "WebSocketSource", "serve_websocket"]

log = logging.getLogger("kernel.transports.websocket")
# How long a close handshake waits for the peer's close frame.
_CLOSE_TIMEOUT = 2.0


class _Resume:
    """Finish, in a task, a coroutine that suspended on its first step."""

    __slots__ = ("_coro", "_yielded")

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self._coro = coro
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self._coro, self._yielded
        while True:
            try:
                value = yield yielded
            except BaseException as exc:
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
                continue
            try:
                yielded = coro.send(value)
            except StopIteration as stop:
                return stop.value


class WebSocketLink:
    """:class:`~kernel.connection.Link` over an aiohttp websocket response.

    :meth:`write_now` writes a frame synchronously while the socket's write
    buffer is below its low-water mark (aiohttp's uncompressed send then
    completes without waiting); otherwise the frame goes through the
    connection's outbox and :meth:`send`, which waits for the buffer.
    """

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, timeout: float) -> None:
        self._ws = ws
        self._transport = request.transport
        self._timeout = timeout or None
        self._low = self._transport.get_write_buffer_limits()[0] if self._transport else 0
        self._tail: asyncio.Task[Any] | None = None
        self._sending = False
        self.on_abort: Any = None

    async def send(self, frames: list[bytes]) -> None:
        ws = self._ws
        self._sending = True  # write_now must not overtake this batch
        try:
            async with asyncio.timeout(self._timeout):
                if self._tail is not None:
                    await self._tail
                for frame in frames:
                    await ws.send_frame(frame, WSMsgType.TEXT)
        finally:
            self._sending = False

    def write_now(self, frame: bytes) -> bool:
        transport = self._transport
        if (
            transport is None
            or self._sending
            or transport.is_closing()
            or self._ws.closed
            or transport.get_write_buffer_size() > self._low
            or (self._tail is not None and not self._tail.done())
        ):
            return False
        coro = self._ws.send_frame(frame, WSMsgType.TEXT)
        try:
            yielded = coro.send(None)
        except StopIteration:
            return True
        except Exception as exc:  # the peer is gone; the writer path reports it
            log.debug("websocket write failed: %s", exc)
            return True
        # Unexpected suspension (flow control kicked in): the frame is out,
        # finish the send in a task so the next write waits behind it.
        self._tail = asyncio.get_running_loop().create_task(_finish(coro, yielded))
        return True

    def abort(self) -> None:
        if self.on_abort is not None:
            self.on_abort()
        if self._transport is not None:
            self._transport.abort()

    async def close(self) -> None:
        if not self._ws.closed:
            try:
                await self._ws.close(code=WSCloseCode.GOING_AWAY, message=b"server closing")
            except (ConnectionError, RuntimeError) as exc:
                log.debug("websocket close failed: %s", exc)


async def _finish(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    return await _Resume(coro, yielded)


class WebSocketSource:
    """:class:`~kernel.framing.FrameSource` of a websocket's text frames."""

    def __init__(self, ws: web.WebSocketResponse, limit: int, peer: str) -> None:
        self.limit = limit
        self._ws = ws
        self._peer = peer
        self._frame: str | None = None
        self.end_reason = "client closed"

    def next_nowait(self) -> bytes | Oversized | NeedMore:
        frame = self._frame
        if frame is None:
            return NEED_MORE
        self._frame = None
        return frame  # type: ignore[return-value]  # str: orjson decodes both

    async def fill(self) -> bool:
        ws = self._ws
        message = await ws.receive()
        kind = message.type
        if kind is WSMsgType.TEXT:
            self._frame = message.data
            return True
        if kind is WSMsgType.BINARY:
            self.end_reason = "binary frame"
            log.warning(
                "websocket %s sent a binary frame (%d bytes); closing with 1003",
                self._peer,
                len(message.data),
            )
            await ws.close(
                code=WSCloseCode.UNSUPPORTED_DATA,
                message=b"binary frames are not supported; send JSON text frames",
            )
            return False
        if kind is WSMsgType.ERROR:
            code = getattr(message.data, "code", WSCloseCode.ABNORMAL_CLOSURE)
            self.end_reason = f"closed with {int(code)}: {message.data}"
            log.warning("websocket %s closed with %d: %s", self._peer, code, message.data)
            return False
        return False  # CLOSE, CLOSING, CLOSED


async def serve_websocket(
    kernel: Kernel, request: web.Request, transport: str, subject: str
) -> web.StreamResponse:
    """Upgrade ``request`` and serve one connection on it until either side ends."""
    settings = kernel.settings
    ws = web.WebSocketResponse(
        timeout=_CLOSE_TIMEOUT,
        heartbeat=settings.websocket_heartbeat_seconds or None,
        max_msg_size=settings.max_message_bytes,
        compress=False,
    )
    if not ws.can_prepare(request).ok:
        return web.Response(status=400, text="expected a websocket upgrade request")
    await ws.prepare(request)
    peer = _peer_name(request, transport)
    link = WebSocketLink(ws, request, settings.send_timeout_seconds)
    conn = await kernel.open_connection(transport, link, peer)
    link.on_abort = conn.stop_reading
    log.info("connection %s opened from %s (%s)", conn.id, peer, subject)
    source = WebSocketSource(ws, settings.max_message_bytes, peer)
    try:
        reason = await conn.run(source)
        if reason == "eof":
            reason = source.end_reason
        # The client is gone or the server is stopping: in-flight answers
        # cannot reach a closed socket, so only shutdown gets a grace period.
        await conn.close(0.0 if reason != "stopped" else settings.shutdown_grace_seconds, reason)
    finally:
        if not conn.closing:
            await conn.close(0.0, "handler ended")
        await conn.wait_closed()
    log.info("connection %s from %s ended: %s", conn.id, peer, reason)
    return ws


def _peer_name(request: web.Request, transport: str) -> str:
    if transport == "unix":
        return "unix socket"
    return request.remote or "?"
