"""The client side of the websocket transports (``ws://`` and ``unix://``).

:class:`WebSocketStream` is a :class:`kernel.client.ClientStream`: frames
queued with ``send_nowait`` leave in order through one writer task, so a
client can pipeline requests without awaiting each send.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Mapping
from pathlib import Path

import aiohttp

__all__ = ["WebSocketStream", "connect_websocket"]

_MAX_FRAME = 256 * 1024 * 1024


class WebSocketStream:
    """JSON-RPC frames over one websocket (TCP or unix socket)."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session = session
        self.ws = ws
        self._queue: collections.deque[bytes] = collections.deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._error: BaseException | None = None
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    def send_nowait(self, frame: bytes) -> None:
        if self._error is not None:
            raise ConnectionError(f"websocket send failed: {self._error}")
        self._queue.append(frame)
        self._drained.clear()
        self._wake.set()

    async def send(self, frame: bytes) -> None:
        self.send_nowait(frame)
        await self.drain()

    async def drain(self) -> None:
        await self._drained.wait()
        if self._error is not None:
            raise ConnectionError(f"websocket send failed: {self._error}")

    async def recv(self) -> bytes | None:
        message = await self.ws.receive()
        if message.type is aiohttp.WSMsgType.TEXT:
            return message.data.encode()
        if message.type is aiohttp.WSMsgType.BINARY:
            return bytes(message.data)
        return None

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.drain()
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        with contextlib.suppress(Exception):
            await self.ws.close()
        await self.session.close()

    async def _write_loop(self) -> None:
        queue, ws = self._queue, self.ws
        try:
            while True:
                while queue:
                    await ws.send_frame(queue[0], aiohttp.WSMsgType.TEXT)
                    queue.popleft()
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._error = exc
            queue.clear()
            self._drained.set()


async def connect_websocket(
    url: str,
    *,
    token: str | None = None,
    headers: Mapping[str, str] | None = None,
    heartbeat: float | None = None,
) -> WebSocketStream:
    """Open ``ws://HOST:PORT`` or ``unix://PATH`` and return the stream.

    ``token`` is sent as ``Authorization: Bearer <token>``. A refused
    upgrade raises :class:`aiohttp.WSServerHandshakeError` with the status.
    """
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    if url.startswith("unix://"):
        path = Path(url[len("unix://") :])
        if not path.is_absolute():
            raise ValueError(f"{url}: the socket path must be absolute")
        session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(path)))
        target = "http://localhost/"
    elif url.startswith(("ws://", "wss://")):
        session = aiohttp.ClientSession()
        target = url
    else:
        raise ValueError(f"{url}: expected ws://HOST:PORT or unix://PATH")
    try:
        ws = await session.ws_connect(
            target,
            headers=all_headers,
            max_msg_size=_MAX_FRAME,
            heartbeat=heartbeat,
            autoping=True,
        )
    except BaseException:
        await session.close()
        raise
    return WebSocketStream(session, ws)
