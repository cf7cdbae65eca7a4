"""One realtime session: its backend connection, its frames, its end.

A session lives in one task (``realtime-<thread id>``): open the backend
(websocket, or WebRTC call then its sideband websocket), send
``session.update`` and the initial items, announce the start, then pump —
a writer task drains the client's frames to the backend while the task reads
the backend's events (:mod:`.events`). Whatever ends it (``stop``, the
backend closing or failing, an ``error`` event, the owner leaving, the
thread being released, shutdown), the same task ends it once: open
transcript segments are completed, the ``realtimeSessionClosed`` item is
started and completed (when the start was announced), and
``thread/realtime/closed`` names the reason. :meth:`RealtimeSession.stop`
only asks for that and waits for it, so every path cleans up the same way
and the end is announced exactly once.

Client frames wait in a bounded queue while the backend connects or is
slow; a full queue refuses the append (``-32001``) instead of dropping it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

import aiohttp
import attrs

from . import protocol
from .backend import Backend, BackendFailure, BackendTarget
from .events import ITEM_COMPLETED, ITEM_STARTED, BackendEvents, SessionError
from .items import session_item
from .transcript import Note, Transcript

if TYPE_CHECKING:
    from kernel import Connection

__all__ = ["FrameQueue", "RealtimeSession", "SessionHost", "SessionSpec"]

log = logging.getLogger("plugins.realtime")

STARTED = "thread/realtime/started"
SDP = "thread/realtime/sdp"
ERROR = "thread/realtime/error"
CLOSED = "thread/realtime/closed"
_CLOSE_SECONDS = 2.0


class _StopRequested(Exception):
    """A stop arrived while the session was in a section that must not be cut."""


@attrs.frozen
class SessionSpec:
    """What one ``thread/realtime/start`` asked for, resolved and checked."""

    thread_id: str
    session_id: str
    modality: str
    voice: str
    model: str
    instructions: str
    transport: str  # websocket, webrtc or existingCall
    sdp: str | None
    call_id: str | None
    initial_items: tuple[tuple[str, str], ...]
    client_managed_handoffs: bool
    max_queued_frames: int


class SessionHost(Protocol):
    """What a session needs from the plugin that owns it."""

    def recipients(self, session: RealtimeSession) -> list[Connection]:
        """The connections that get the session's notifications now."""

    async def handoff(
        self, session: RealtimeSession, handoff_id: str, request: str, active: list[dict[str, str]]
    ) -> None:
        """The model handed work to the agent (unless the client manages handoffs)."""

    def ended(self, session: RealtimeSession) -> None:
        """The session is over: forget it (before its end is announced; may repeat)."""


class FrameQueue:
    """Text frames for the backend, in order; client frames are bounded, ours are not."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._frames: collections.deque[str] = collections.deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._frames)

    def offer(self, frame: str) -> bool:
        """Queue a client's frame; False (nothing queued) when ``limit`` frames wait."""
        if len(self._frames) >= self.limit:
            return False
        self._frames.append(frame)
        self._ready.set()
        return True

    def force(self, frame: str) -> None:
        """Queue a frame of the server's own (an answer to a function call)."""
        self._frames.append(frame)
        self._ready.set()

    async def take(self) -> list[str]:
        """Every waiting frame, once there is at least one."""
        while not self._frames:
            self._ready.clear()
            await self._ready.wait()
        frames = list(self._frames)
        self._frames.clear()
        return frames


class RealtimeSession:
    """One thread's realtime session; see the module docstring."""

    def __init__(
        self, spec: SessionSpec, target: BackendTarget, backend: Backend, host: SessionHost
    ) -> None:
        self.spec = spec
        self.target = target
        self.owner = target.connection
        self.backend = backend
        self.host = host
        self.queue = FrameQueue(spec.max_queued_frames)
        self.transcript = Transcript(spec.thread_id, spec.session_id)
        self.events = BackendEvents(self)
        self.announced = False  # the realtimeSessionStarted item was sent
        self._task: asyncio.Task[None] | None = None
        self._stop_reason: str | None = None
        self._critical = 0
        self._finishing = False
        self._write_error: str | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._response_active = False  # a response runs, or response.create was sent
        self._response_wanted = False
        self._response_id: str | None = None  # the running response's, once created
        self._ended: collections.deque[str] = collections.deque(maxlen=16)  # recent ids

    @property
    def thread_id(self) -> str:
        return self.spec.thread_id

    @property
    def accepting(self) -> bool:
        """Whether client input is still taken (no end requested or under way)."""
        return self._stop_reason is None and not self._finishing

    def start(self) -> None:
        """Run the session in its own task."""
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"realtime-{self.spec.thread_id}"
        )

    async def stop(self, reason: str) -> None:
        """End the session with ``reason`` (unless it is already ending) and wait for the end."""
        task = self._task
        if task is None:
            return
        if self.accepting:
            self._stop_reason = reason
            if not self._critical:
                task.cancel()
        if task is not asyncio.current_task():
            await asyncio.wait({task})

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        """A section a stop must not cut (announcements, starting a turn).

        A stop asked meanwhile takes effect when the section ends.
        """
        self._critical += 1
        try:
            yield
        finally:
            self._critical -= 1
        if not self._critical and self._stop_reason is not None and not self._finishing:
            raise _StopRequested

    # -- what the client and the server send ----------------------------------------------

    def append(self, frame: str) -> bool:
        """A client's frame for the backend; False when the queue is full."""
        return self.queue.offer(frame)

    def answer_call(self, call_id: str, output: str) -> None:
        """Answer the model's function call, then let it respond."""
        self.queue.force(protocol.function_output(call_id, output))
        self.request_response()

    def request_response(self) -> None:
        """``response.create`` now, or when the response in progress is done."""
        if self._response_active:
            self._response_wanted = True
        else:
            self._response_active = True
            self.queue.force(protocol.response_create())

    def response_started(self, response_id: str | None = None) -> None:
        """The backend created a response (``response.created``)."""
        self._response_active = True
        self._response_id = response_id

    def response_ended(self, response_id: str | None = None) -> None:
        """A response ended (``response.done``, ``response.cancelled``): send a wanted one.

        A backend may send both events for one response. Only the first end
        of a response counts, and an end naming another response than the
        running one is ignored: ending twice would send a second
        ``response.create`` while one runs, and the backend's error would
        end the session.
        """
        if response_id is not None:
            if response_id in self._ended or self._response_id not in (None, response_id):
                log.debug("realtime response %s already ended or not running", response_id)
                return
            self._ended.append(response_id)
        self._response_active = False
        self._response_id = None
        if self._response_wanted:
            self._response_wanted = False
            self.request_response()

    async def notify(self, notes: list[Note]) -> None:
        """Send ``notes`` in order to every recipient (slow clients slow only this session)."""
        if not notes:
            return
        for connection in self.host.recipients(self):
            for method, params in notes:
                await connection.notify(method, params)

    # -- the session's task ------------------------------------------------------------------

    async def _run(self) -> None:
        reason, error = "transport_closed", None
        try:
            try:
                await self._open()
                await self._pump()
            except asyncio.CancelledError:
                if self._stop_reason is None:  # not a stop: the loop is going away
                    self._finishing = True
                    await self._close_ws()
                    raise
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
            except _StopRequested:
                pass
            except (BackendFailure, SessionError) as exc:
                reason, error = "error", exc.message
            except Exception:
                log.exception("realtime session on thread %s failed", self.spec.thread_id)
                reason, error = "error", "the realtime session failed (see the server log)"
            self._finishing = True  # from here on, stop() waits instead of cancelling
            if self._stop_reason is not None and error is None:
                reason = self._stop_reason
            await self._close_ws()
            await self._finish(reason, error)
        finally:
            self._finishing = True
            self.host.ended(self)

    async def _open(self) -> None:
        spec, endpoints = self.spec, self.target.endpoints
        if spec.transport == "webrtc":
            assert spec.sdp is not None
            session = protocol.session_body(
                spec.instructions, spec.modality, spec.voice, spec.model
            )
            answer, call_id = await self.backend.create_call(self.target, spec.sdp, session)
            with self.critical():
                await self._announce_start()
                await self.notify([(SDP, {"threadId": spec.thread_id, "sdp": answer})])
            url = endpoints.sideband(call_id)
        elif spec.transport == "existingCall":
            assert spec.call_id is not None
            url = endpoints.sideband(spec.call_id)
        else:
            url = endpoints.websocket
        ws = await self.backend.open_websocket(self.target, url)
        self._ws = ws
        try:
            await ws.send_str(protocol.session_update(spec.instructions, spec.modality, spec.voice))
            for role, text in spec.initial_items:
                await ws.send_str(protocol.text_message(text, role))
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise BackendFailure(f"sending to the realtime backend failed: {exc}") from None
        if not self.announced:
            await self._announce_start()

    async def _announce_start(self) -> None:
        spec = self.spec
        item = session_item(spec.session_id, "realtimeSessionStarted")
        self.announced = True
        with self.critical():
            await self.notify(
                [
                    (ITEM_STARTED, {"threadId": spec.thread_id, "item": item}),
                    (ITEM_COMPLETED, {"threadId": spec.thread_id, "item": item}),
                    (
                        STARTED,
                        {
                            "threadId": spec.thread_id,
                            "realtimeSessionId": spec.session_id,
                            "version": "v2",
                        },
                    ),
                ]
            )

    async def _pump(self) -> None:
        ws = self._ws
        assert ws is not None
        writer = asyncio.get_running_loop().create_task(
            self._write(ws), name=f"realtime-writer-{self.spec.thread_id}"
        )
        try:
            async for message in ws:
                if message.type is aiohttp.WSMsgType.TEXT:
                    await self.events.handle(message.data)
                elif message.type is aiohttp.WSMsgType.ERROR:
                    raise BackendFailure(f"the realtime connection failed: {ws.exception()}")
        finally:
            writer.cancel()
            await asyncio.wait({writer})
        if self._write_error is not None:
            raise BackendFailure(self._write_error)
        log.info("realtime backend closed the session on thread %s", self.spec.thread_id)

    async def _write(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            while True:
                for frame in await self.queue.take():
                    await ws.send_str(frame)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._write_error = f"sending to the realtime backend failed: {exc}"
            await self._close_ws()

    async def _close_ws(self) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            return
        try:
            async with asyncio.timeout(_CLOSE_SECONDS):
                await ws.close()
        except (TimeoutError, aiohttp.ClientError, ConnectionError):
            log.debug("closing the realtime websocket of thread %s did not finish cleanly",
                      self.spec.thread_id)  # fmt: skip

    async def _finish(self, reason: str, error: str | None) -> None:
        spec = self.spec
        self.host.ended(self)  # a client told "closed" may start again at once
        notes: list[Note] = []
        if error is not None:
            log.warning("realtime session on thread %s ended: %s", spec.thread_id, error)
            notes.append((ERROR, {"threadId": spec.thread_id, "message": error}))
        notes += self.transcript.seal()
        if self.announced:
            outcome = "failed" if reason == "error" else "ended"
            item = session_item(spec.session_id, "realtimeSessionClosed", outcome)
            notes.append((ITEM_STARTED, {"threadId": spec.thread_id, "item": item}))
            notes.append((ITEM_COMPLETED, {"threadId": spec.thread_id, "item": item}))
        notes.append((CLOSED, {"threadId": spec.thread_id, "reason": reason}))
        await self.notify(notes)
