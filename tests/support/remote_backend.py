"""A scripted stand-in for a relay: enrollment answers on demand, raw websocket envelopes.

:class:`Backend` is a real aiohttp server on loopback. It records every
request (method, path, headers, JSON body), answers ``/enroll`` and
``/refresh`` from scripted queues (a fresh enrollment by default), can
refuse the websocket upgrade with a status and JSON body, and otherwise
hands each accepted server websocket to the test as a :class:`ServerSocket`
to speak envelopes with directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from typing import Any

import attrs
import orjson
from aiohttp import WSMsgType, web

__all__ = ["Answer", "Backend", "Recorded", "ServerSocket"]

_ids = itertools.count(1)


@attrs.frozen
class Recorded:
    """One request the backend received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@attrs.frozen
class Answer:
    """A scripted HTTP answer."""

    status: int
    body: Any = None
    headers: dict[str, str] = attrs.Factory(dict)

    def response(self) -> web.Response:
        text = self.body if isinstance(self.body, str) else orjson.dumps(self.body).decode()
        return web.Response(status=self.status, text=text, headers=self.headers)


def token_answer(server_id: str, environment_id: str, token: str) -> Answer:
    """A successful enroll/refresh answer."""
    return Answer(
        200,
        {
            "server_id": server_id,
            "environment_id": environment_id,
            "remote_control_token": token,
            "expires_at": "3026-01-01T00:00:00Z",
        },
    )


class ServerSocket:
    """An app-server's websocket, as the backend sees it."""

    def __init__(self, ws: web.WebSocketResponse, headers: dict[str, str]) -> None:
        self.ws = ws
        self.headers = headers
        self.frames: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.held: list[dict[str, Any]] = []
        self.closed = asyncio.Event()

    async def send(self, **envelope: Any) -> None:
        await self.ws.send_str(orjson.dumps(envelope).decode())

    async def send_raw(self, text: str) -> None:
        await self.ws.send_str(text)

    async def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next envelope the server sent; ConnectionError once it closed."""
        async with asyncio.timeout(timeout):
            frame = await self.frames.get()
        if frame is None:
            self.frames.put_nowait(None)
            raise ConnectionError("the server closed the websocket")
        return frame

    async def recv_for(self, stream: tuple[str, str], timeout: float = 10.0) -> dict[str, Any]:
        """The next envelope of ``stream``; others are kept for their own ``recv_for``."""
        for index, frame in enumerate(self.held):
            if (frame["client_id"], frame["stream_id"]) == stream:
                del self.held[index]
                return frame
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                if (frame["client_id"], frame["stream_id"]) == stream:
                    return frame
                self.held.append(frame)

    async def nothing_for(self, seconds: float) -> list[dict[str, Any]]:
        """Every envelope held or arriving within ``seconds`` (expected: none)."""
        got, self.held = self.held, []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    got.append(await self.recv(seconds))
        return got

    async def close(self) -> None:
        await self.ws.close()
        await self.closed.wait()


class Backend:
    """The stand-in (see the module docstring)."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.enroll_answers: deque[Answer] = deque()
        self.refresh_answers: deque[Answer] = deque()
        self.upgrade_refusals: deque[Answer] = deque()
        self.sockets: asyncio.Queue[ServerSocket] = asyncio.Queue()
        self.enrolled: list[tuple[str, str, str]] = []  # server id, environment id, token
        self._followup: Answer | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    async def __aenter__(self) -> Backend:
        app = web.Application()
        app.router.add_post("/wham/remote/control/server/enroll", self._enroll)
        app.router.add_post("/wham/remote/control/server/refresh", self._refresh)
        app.router.add_get("/wham/remote/control/server", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _record(self, request: web.Request) -> Recorded:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw.decode(errors="replace")
        recorded = Recorded(request.method, request.path, dict(request.headers), body)
        self.requests.append(recorded)
        return recorded

    def fresh(self) -> Answer:
        """A new enrollment with unique ids."""
        n = next(_ids)
        ids = (f"srv_test{n}", f"env_test{n}", f"rcs-token-{n}-secretvalue")
        self.enrolled.append(ids)
        return token_answer(*ids)

    async def _enroll(self, request: web.Request) -> web.Response:
        await self._record(request)
        answer = self.enroll_answers.popleft() if self.enroll_answers else self.fresh()
        return answer.response()

    async def _refresh(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        if self.refresh_answers:
            return self.refresh_answers.popleft().response()
        server_id = recorded.body.get("server_id") if isinstance(recorded.body, dict) else None
        for known, environment, _ in self.enrolled:
            if known == server_id:
                n = next(_ids)
                token = f"rcs-token-{n}-refreshed"
                self.enrolled.append((known, environment, token))
                return token_answer(known, environment, token).response()
        return Answer(404, {"detail": "Remote app server not found"}).response()

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            # The server reads the body of a refused upgrade with a plain GET.
            followup, self._followup = self._followup, None
            return (followup or Answer(400, "expected a websocket upgrade")).response()
        if self.upgrade_refusals:
            answer = self.upgrade_refusals.popleft()
            self._followup = answer
            return answer.response()
        ws = web.WebSocketResponse(max_msg_size=1 << 28)
        await ws.prepare(request)
        sock = ServerSocket(ws, dict(request.headers))
        self.sockets.put_nowait(sock)
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    sock.frames.put_nowait(orjson.loads(message.data))
        finally:
            sock.frames.put_nowait(None)
            sock.closed.set()
        return ws

    async def socket(self, timeout: float = 30.0) -> ServerSocket:
        """The next server websocket accepted."""
        async with asyncio.timeout(timeout):
            return await self.sockets.get()
