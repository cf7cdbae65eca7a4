"""One JSON-RPC connection over a websocket: text frames in, text frames out.

Only ``GET`` upgrades. Each text frame carries one message. A binary frame
closes the connection with 1003 (unsupported data); a message of more than
``kernel.max_message_bytes`` bytes closes it with 1009 (message too big),
one of exactly that size is served, as on stdio; both refusals are logged.
A client whose ``initialize`` has not succeeded within
``kernel.handshake_timeout_seconds`` of the upgrade is closed with 1008
(policy violation), so an idle socket cannot hold a connection slot. aiohttp
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
import struct
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode, WSMsgType, web

from ..framing import NEED_MORE, NeedMore, Oversized
from .http_protocol import GuardedRequestHandler

if TYPE_CHECKING:
    from ..connection import Connection
    from ..runtime import Kernel

__all__ = ["WebSocketLink", "WebSocketSource", "serve_websocket", "text_frame"]

log = logging.getLogger("kernel.transports.websocket")
# How long a close handshake waits for the peer's close frame.
_CLOSE_TIMEOUT = 2.0
# Collected fast-path frames are written at once beyond this many bytes.
_BATCH_BYTES = 16384


def text_frame(payload: bytes) -> list[bytes]:
    """An unmasked, uncompressed, final RFC 6455 text frame: [header, payload]."""
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 65536:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return [header, payload]


class WebSocketLink:
    """:class:`~kernel.connection.Link` over an aiohttp websocket response.

    Fast path (:meth:`write_now`): while the socket's write buffer is below
    its high-water mark, answers are framed here (the server side sends
    unmasked frames and compression is off, so a frame is a small header and
    the payload) and collected until the current loop iteration ends, then
    written with one ``writelines``. Answers to requests that arrived in one
    TCP read thus leave in one syscall, with no added latency: the flush runs
    as soon as the reader has nothing more to do at once.

    Slow path (:meth:`send`, from the connection's writer task): aiohttp's
    ``send_frame``, which waits while the transport is paused. Whole frames
    are written in order either way, so aiohttp's own control frames (pong,
    close) never split one of ours.
    """

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, timeout: float) -> None:
        self._ws = ws
        self._transport = request.transport
        self._timeout = timeout or None
        # Below the high-water mark the transport is not paused, so a write
        # cannot get ahead of a waiting send().
        self._high = self._transport.get_write_buffer_limits()[1] if self._transport else 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._flush_scheduled = False
        self._sending = False
        self._loop = asyncio.get_running_loop()
        self.on_abort: Any = None

    async def send(self, frames: list[bytes]) -> None:
        self._flush()
        ws = self._ws
        self._sending = True  # write_now must not overtake this batch
        try:
            async with asyncio.timeout(self._timeout):
                for frame in frames:
                    await ws.send_frame(frame, WSMsgType.TEXT)
        finally:
            self._sending = False

    def write_now(self, frame: bytes) -> bool:
        transport = self._transport
        if (
            transport is None
            or self._sending
            or self._ws.closed
            or transport.is_closing()
            or transport.get_write_buffer_size() + self._pending_bytes >= self._high
        ):
            return False
        self._pending += text_frame(frame)
        self._pending_bytes += len(frame)
        if self._pending_bytes >= _BATCH_BYTES:
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return True

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._pending:
            return
        data, self._pending, self._pending_bytes = self._pending, [], 0
        transport = self._transport
        # A peer that went away meanwhile: aiohttp's reader reports it.
        if transport is not None and not transport.is_closing() and not self._ws.closed:
            transport.writelines(data)

    def abort(self) -> None:
        if self.on_abort is not None:
            self.on_abort()
        if self._transport is not None:
            self._transport.abort()

    async def close(self) -> None:
        self._flush()
        if not self._ws.closed:
            try:
                await self._ws.close(code=WSCloseCode.GOING_AWAY, message=b"server closing")
            except (ConnectionError, RuntimeError) as exc:
                log.debug("websocket close failed: %s", exc)


class WebSocketSource:
    """:class:`~kernel.framing.FrameSource` of a websocket's text frames."""

    def __init__(self, ws: web.WebSocketResponse, limit: int, peer: str) -> None:
        # aiohttp enforces the limit before buffering a frame (see serve_websocket).
        self.limit = limit
        self.peer = peer
        self._ws = ws
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
                self.peer,
                len(message.data),
            )
            await ws.close(
                code=WSCloseCode.UNSUPPORTED_DATA,
                message=b"binary frames are not supported; send JSON text frames",
            )
            return False
        if kind is WSMsgType.ERROR:
            code = getattr(message.data, "code", WSCloseCode.ABNORMAL_CLOSURE)
            if code == WSCloseCode.MESSAGE_TOO_BIG:
                # aiohttp's text quotes its own limit, which is ours + 1.
                self.end_reason = (
                    f"closed with 1009: a message exceeded kernel.max_message_bytes "
                    f"({self.limit} bytes)"
                )
                log.warning("websocket %s %s", self.peer, self.end_reason)
                return False
            self.end_reason = f"closed with {int(code)}: {message.data}"
            log.warning("websocket %s closed with %d: %s", self.peer, code, message.data)
            return False
        return False  # CLOSE, CLOSING, CLOSED


async def serve_websocket(
    kernel: Kernel, request: web.Request, transport: str, subject: str
) -> web.StreamResponse:
    """Upgrade ``request`` and serve one connection on it until either side ends."""
    settings = kernel.settings
    if request.method != "GET":
        # aiohttp would upgrade any method; RFC 6455 upgrades only GET.
        return web.Response(status=405, text="websocket upgrades use GET", headers={"Allow": "GET"})
    ws = web.WebSocketResponse(
        timeout=_CLOSE_TIMEOUT,
        heartbeat=settings.websocket_heartbeat_seconds or None,
        # aiohttp refuses a frame whose length is >= max_msg_size; ours is
        # the largest accepted size, as on stdio.
        max_msg_size=settings.max_message_bytes + 1,
        compress=False,
    )
    if not ws.can_prepare(request).ok:
        return web.Response(status=400, text="expected a websocket upgrade request")
    await ws.prepare(request)
    guard = request.protocol if isinstance(request.protocol, GuardedRequestHandler) else None
    if guard is not None:
        guard.watch_websocket(ws)
    peer = _peer_name(request, transport)
    link = WebSocketLink(ws, request, settings.send_timeout_seconds)
    conn = await kernel.open_connection(transport, link, peer)
    link.on_abort = conn.stop_reading
    log.info("connection %s opened from %s (%s)", conn.id, peer, subject)
    source = WebSocketSource(ws, settings.max_message_bytes, peer)
    deadline = asyncio.get_running_loop().create_task(
        _require_initialize(ws, conn, source, guard, settings.handshake_timeout_seconds),
        name=f"kernel-handshake-deadline-{conn.id}",
    )
    try:
        reason = await conn.run(source)
        if reason == "eof":
            reason = source.end_reason
        # The client is gone or the server is stopping: in-flight answers
        # cannot reach a closed socket, so only shutdown gets a grace period.
        await conn.close(0.0 if reason != "stopped" else settings.shutdown_grace_seconds, reason)
    finally:
        deadline.cancel()
        if not conn.closing:
            await conn.close(0.0, "handler ended")
        await conn.wait_closed()
    log.info("connection %s from %s ended: %s", conn.id, peer, reason)
    return ws


async def _require_initialize(
    ws: web.WebSocketResponse,
    conn: Connection,
    source: WebSocketSource,
    guard: GuardedRequestHandler | None,
    seconds: float,
) -> None:
    """Close the websocket if ``initialize`` has not succeeded ``seconds`` after the upgrade.

    Without this, a client could open websockets and never speak, each one
    holding a connection slot and a file descriptor for as long as it likes.
    """
    await asyncio.sleep(seconds)
    if conn.initialized or conn.closing or ws.closed:
        return
    source.end_reason = f"no initialize within {seconds:g} s"
    log.warning(
        "websocket %s (connection %s) sent no successful initialize within %g s "
        "(kernel.handshake_timeout_seconds); closing with 1008",
        source.peer,
        conn.id,
        seconds,
    )
    if guard is not None:
        # The reader is waiting in receive(): aiohttp then closes without
        # waiting for the peer's close frame.
        guard.close_unanswered()
    await ws.close(
        code=WSCloseCode.POLICY_VIOLATION,
        message=b"no initialize request within the handshake timeout",
    )


def _peer_name(request: web.Request, transport: str) -> str:
    if transport == "unix":
        return "unix socket"
    return request.remote or "?"
