"""A stand-in for the Realtime API: websocket sessions and WebRTC calls, all recorded.

A real aiohttp server on 127.0.0.1 (a free port), for tests that drive the
kernel's ``realtime`` family without the network::

    async with RealtimeBackend() as backend:
        ...  # point a provider's base_url at backend.base_url
        conn = await backend.wait_connection()
        await conn.wait_for("session.update")
        await conn.send({"type": "response.output_text.delta", "delta": "Hi"})
        await conn.wait_closed()

Routes:

* ``GET /v1/realtime`` (websocket upgrade): one session, recorded as a
  :class:`BackendConnection` (path, query, headers, every text frame parsed,
  how it closed). A ``session.update`` is answered with ``session.updated``
  (``session.id`` is ``sess_<n>``), as the API does; everything else the test
  sends itself. ``backend.refuse = (status, body)`` refuses the next
  upgrades with that HTTP answer; ``backend.gate`` (an ``asyncio.Event``),
  when set to one, holds every upgrade until the event is set.
* ``POST /v1/realtime/calls``: a WebRTC call, recorded as a
  :class:`RecordedCall` (headers, query, the multipart ``sdp`` and
  ``session`` parts); answered ``201`` with ``backend.answer_sdp`` and
  ``Location: /v1/realtime/calls/rtc_<n>``, or ``backend.calls_status``
  with ``backend.calls_body`` when that is set.

``backend.frame_hook``, when set, is called with each parsed frame as it
arrives (benchmarks count frames without waiting on conditions);
``backend.raw_hook`` instead gets each frame's text, which is then neither
parsed nor recorded (the cheapest reader, for throughput figures).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import attrs
import orjson
from aiohttp import WSMsgType, web
from multidict import CIMultiDict

__all__ = ["BackendConnection", "RealtimeBackend", "RecordedCall"]

ANSWER_SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=stand-in answer\r\n"


@attrs.define
class RecordedCall:
    """One ``POST /v1/realtime/calls``."""

    headers: CIMultiDict[str]
    query: dict[str, str]
    sdp: str | None
    session: Any
    content_type: str


class BackendConnection:
    """One websocket session the kernel opened; the test reads and drives it."""

    def __init__(
        self, backend: RealtimeBackend, request: web.Request, ws: web.WebSocketResponse, n: int
    ) -> None:
        self.backend = backend
        self.n = n
        self.path = request.path
        self.query = dict(request.query)
        self.headers = CIMultiDict(request.headers)
        self.frames: list[dict[str, Any]] = []
        self.ws = ws
        self.closed = asyncio.Event()
        self.closed_by: str | None = None  # "kernel" or "backend"
        self.close_code: int | None = None

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        """The frames received so far with ``type`` ``kind``."""
        return [f for f in self.frames if f.get("type") == kind]

    def types(self) -> list[str]:
        """The ``type`` of every frame received so far, in order."""
        return [str(f.get("type")) for f in self.frames]

    async def send(self, event: dict[str, Any]) -> None:
        """Send one event to the kernel."""
        await self.ws.send_str(orjson.dumps(event).decode())

    async def close(self, code: int = 1000) -> None:
        """Close the session from the backend's side."""
        self.closed_by = self.closed_by or "backend"
        await self.ws.close(code=code)

    async def wait_frames(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Wait until ``count`` frames arrived; returns them all."""
        await self.backend._wait(lambda: len(self.frames) >= count, timeout)
        return self.frames

    async def wait_for(self, kind: str, count: int = 1, timeout: float = 20.0) -> dict[str, Any]:
        """Wait for the ``count``-th frame of type ``kind``; returns it."""
        await self.backend._wait(lambda: len(self.of_type(kind)) >= count, timeout)
        return self.of_type(kind)[count - 1]

    async def wait_closed(self, timeout: float = 20.0) -> None:
        """Wait until the websocket is closed (by either side)."""
        async with asyncio.timeout(timeout):
            await self.closed.wait()


class RealtimeBackend:
    """The stand-in; an async context manager (see the module docstring)."""

    def __init__(self) -> None:
        self.connections: list[BackendConnection] = []
        self.calls: list[RecordedCall] = []
        self.refuse: tuple[int, str] | None = None
        self.refused = 0
        self.gate: asyncio.Event | None = None
        self.held = 0
        self.calls_status: int | None = None
        self.calls_body = "no such route"
        self.answer_sdp = ANSWER_SDP
        self.frame_hook: Callable[[dict[str, Any]], None] | None = None
        self.raw_hook: Callable[[str], None] | None = None
        self.port = 0
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Condition()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: a provider's ``base_url``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root(self) -> str:
        """``ws://127.0.0.1:PORT``: an ``experimental_realtime_ws_base_url``."""
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> RealtimeBackend:
        app = web.Application()
        app.router.add_get("/v1/realtime", self._session)
        app.router.add_post("/v1/realtime/calls", self._call)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for conn in self.connections:
            if not conn.ws.closed:
                await conn.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _wait(self, predicate: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    async def wait_connection(self, index: int = 0, timeout: float = 20.0) -> BackendConnection:
        """The ``index``-th websocket session, once it is open."""
        await self._wait(lambda: len(self.connections) > index, timeout)
        return self.connections[index]

    async def wait_calls(self, count: int = 1, timeout: float = 20.0) -> list[RecordedCall]:
        """Wait until ``count`` WebRTC calls were made."""
        await self._wait(lambda: len(self.calls) >= count, timeout)
        return self.calls

    # -- handlers --------------------------------------------------------------------------

    async def _session(self, request: web.Request) -> web.StreamResponse:
        if self.refuse is not None:
            self.refused += 1
            await self._notify()
            status, body = self.refuse
            return web.Response(status=status, text=body)
        if self.gate is not None:
            self.held += 1
            await self._notify()
            await self.gate.wait()
        ws = web.WebSocketResponse(max_msg_size=64 << 20, autoping=True)
        await ws.prepare(request)
        conn = BackendConnection(self, request, ws, next(self._ids))
        self.connections.append(conn)
        await self._notify()
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                if self.raw_hook is not None:
                    self.raw_hook(message.data)
                    continue
                frame = orjson.loads(message.data)
                conn.frames.append(frame)
                if self.frame_hook is not None:
                    self.frame_hook(frame)
                else:
                    await self._notify()
                if frame.get("type") == "session.update":
                    session = frame.get("session") or {}
                    await conn.send(
                        {
                            "type": "session.updated",
                            "session": {
                                "id": f"sess_{conn.n}",
                                "instructions": session.get("instructions"),
                            },
                        }
                    )
        finally:
            conn.closed_by = conn.closed_by or "kernel"
            conn.close_code = ws.close_code
            conn.closed.set()
            await self._notify()
        return ws

    async def _call(self, request: web.Request) -> web.StreamResponse:
        sdp: str | None = None
        session: Any = None
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                text = await part.text()  # type: ignore[union-attr]
                if part.name == "sdp":  # type: ignore[union-attr]
                    sdp = text
                elif part.name == "session":  # type: ignore[union-attr]
                    session = orjson.loads(text)
        self.calls.append(
            RecordedCall(
                headers=CIMultiDict(request.headers),
                query=dict(request.query),
                sdp=sdp,
                session=session,
                content_type=request.content_type,
            )
        )
        await self._notify()
        if self.calls_status is not None:
            return web.Response(status=self.calls_status, text=self.calls_body)
        call_id = f"rtc_{next(self._ids)}"
        return web.Response(
            status=201,
            text=self.answer_sdp,
            content_type="application/sdp",
            headers={"Location": f"/v1/realtime/calls/{call_id}"},
        )
