"""Environments: one app-server's websocket and the client websockets multiplexed onto it.

Client → app-server. Each client websocket is a stream ``(client_id,
stream_id)``. Its JSON text frames become ``client_message`` envelopes
(chunked when large) with the stream's next ``seq_id`` and the next relay
``cursor``, queued for the app-server's websocket. At most ``backlog``
envelopes wait; beyond that the relay stops reading clients (TCP pushes
back on them), also while the app-server is away. Written envelopes are
kept (``replay_entries`` of them) so that an app-server that reconnects
with ``x-codex-subscribe-cursor: C`` receives again everything after ``C``.

App-server → client. ``server_message`` envelopes go to the stream's
writer, which writes each message as one text frame and then acknowledges
it (``ack``, coalesced per stream), so the app-server's per-stream window
follows what the client actually took. A replayed ``seq_id`` is
acknowledged and skipped. ``pong unknown`` means the app-server ended (or
never knew) the stream: its websocket is closed after what is queued. A
chunked message above ``max_message_bytes`` is not joined: its client is
closed (1009) instead of waiting for it forever.

Handshake, as a direct connection sees it: before a stream's first
``initialize`` is forwarded, the relay answers other requests ``-32600 Not
initialized`` itself; after its success, another ``initialize`` is answered
``Already initialized``. At most ``backlog`` of those answers of the relay's
own wait unwritten; a client that sends on and reads nothing is closed
(1008). (The app-server's messages are bounded by its per-stream window.)

When the app-server's websocket drops, clients stay connected for
``server_grace_seconds`` (the app-server reconnects and carries on); then
they are closed with 1013.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
from collections import OrderedDict, deque
from typing import Any

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from .protocol import (
    CHUNK_BYTES,
    SEGMENT_COUNT_MAX,
    ChunkJoiner,
    TooBig,
    ack_envelope,
    client_message_envelopes,
    closed_envelope,
    format_cursor,
    parse_server_envelope,
    ping_envelope,
    routing,
)
from .store import ServerRecord

__all__ = ["ACK_DELAY", "ClientStream", "Environment", "HubLimits"]

log = logging.getLogger("kernel_remote_relay.hub")

Key = tuple[str, str]
_FORWARD = "forward"
_DROP = "drop"
_TOLD_MAX = 1024
ACK_DELAY = 0.005
"""Seconds an acknowledgement waits for more to join it (window slots free a little later)."""


@dataclasses.dataclass(frozen=True)
class HubLimits:
    """Bounds of every environment (see the module docstring)."""

    max_message_bytes: int = CHUNK_BYTES * SEGMENT_COUNT_MAX  # the most an app-server may send
    backlog: int = 256
    replay_entries: int = 1024
    server_grace_seconds: float = 60.0
    heartbeat_seconds: float = 30.0
    ping_interval_seconds: float = 60.0


def _error(request_id: Any, code: int, message: str) -> bytes:
    return orjson.dumps({"id": request_id, "error": {"code": code, "message": message}})


class ClientStream:
    """One client websocket: what goes back to it, and its handshake state."""

    def __init__(self, environment: Environment, ws: web.WebSocketResponse) -> None:
        self.environment = environment
        self.ws = ws
        self.key: Key = ("cli_" + secrets.token_hex(8), "str_" + secrets.token_hex(8))
        self.route = routing(*self.key)
        self.next_seq = 1
        self.last_server_seq = 0
        self.joiner = ChunkJoiner(environment.limits.max_message_bytes)
        self.init_id: Any = None
        self.init_sent = False
        self.initialized = False
        self.closed = False
        self.server_ended = False
        self._out: deque[tuple[int, bytes]] = deque()
        self._answers = 0  # the relay's own answers in _out
        self._wake = asyncio.Event()
        self._finish: tuple[int, bytes] | None = None
        self._writer = asyncio.get_running_loop().create_task(self._write())

    def gate(self, message: Any) -> str | bytes:
        """Forward the client's ``message``, drop it, or answer it here (the bytes)."""
        if type(message) is dict and type(message.get("method")) is str:
            request_id = message.get("id")
            request = type(request_id) in (int, str)
            if message["method"] == "initialize" and request:
                if self.initialized:
                    return _error(request_id, -32600, "Already initialized")
                self.init_id, self.init_sent = request_id, True
                return _FORWARD
            if not self.init_sent:
                return _error(request_id, -32600, "Not initialized") if request else _DROP
            return _FORWARD
        return _FORWARD if self.init_sent else _DROP

    def deliver(self, seq: int, data: bytes, message: Any) -> None:
        """Queue one message from the app-server (acknowledged once written)."""
        if self.init_sent and not self.initialized:
            if message is None:
                with contextlib.suppress(orjson.JSONDecodeError):
                    message = orjson.loads(data)
            if type(message) is dict and message.get("id") == self.init_id and "result" in message:
                self.initialized = True
        self._out.append((seq, data))
        self._wake.set()

    def answer(self, data: bytes) -> bool:
        """Queue an answer the relay gives itself (never acknowledged to the app-server).

        False, and nothing queued, once ``backlog`` of them wait unwritten: the
        client keeps sending and reads nothing, and the caller drops it. (The
        app-server's messages need no such bound: its per-stream window holds
        them until this writer acknowledges them.)
        """
        if self._answers >= self.environment.limits.backlog:
            return False
        self._answers += 1
        self._out.append((0, data))
        self._wake.set()
        return True

    def finish(self, code: int, message: str) -> None:
        """Close the websocket once what is queued was written."""
        self._finish = (code, message.encode())
        self._wake.set()

    async def _write(self) -> None:
        ws, environment = self.ws, self.environment
        try:
            while True:
                while self._out:
                    seq, data = self._out.popleft()
                    if not seq:
                        self._answers -= 1
                    await ws.send_frame(data, WSMsgType.TEXT)
                    if seq:
                        environment.ack_later(self, seq)
                if self._finish is not None:
                    code, message = self._finish
                    await ws.close(code=code, message=message)
                    return
                self._wake.clear()
                await self._wake.wait()
        except (ConnectionError, RuntimeError) as exc:
            log.info("client %s/%s: write failed: %s", *self.key, exc)
            with contextlib.suppress(Exception):
                await ws.close()

    async def stop(self) -> None:
        """Stop the writer (the websocket ended)."""
        self.closed = True
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer


class Environment:
    """One enrolled app-server: its websocket (when connected) and its clients' streams."""

    def __init__(self, record: ServerRecord, limits: HubLimits) -> None:
        self.record = record
        self.limits = limits
        self.server: web.WebSocketResponse | None = None
        self.streams: dict[Key, ClientStream] = {}
        self._unsent: deque[tuple[int, bytes]] = deque()
        self._sent: deque[tuple[int, bytes]] = deque()
        self._control: deque[bytes] = deque()
        self._acks: dict[Key, tuple[bytes, int]] = {}
        self._told_closed: OrderedDict[Key, None] = OrderedDict()
        self._next_cursor = 1
        self._wake = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._grace: asyncio.TimerHandle | None = None
        self._ack_timer: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[bool]] = set()

    @property
    def online(self) -> bool:
        """Whether the app-server's websocket is connected."""
        return self.server is not None

    # -- the app-server's websocket --------------------------------------------------------

    async def serve_server(self, ws: web.WebSocketResponse, cursor: int | None) -> None:
        """Serve the app-server's websocket until it ends."""
        self._attach(ws, cursor)
        writer = asyncio.get_running_loop().create_task(self._write_server(ws))
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    self._on_server_frame(message.data)
                elif message.type is WSMsgType.BINARY:
                    log.warning(
                        "environment %s sent a binary frame; ignored", self.record.environment_id
                    )
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
                await writer
            self._detach(ws)

    def _attach(self, ws: web.WebSocketResponse, cursor: int | None) -> None:
        old = self.server
        if old is not None and not old.closed:
            task = asyncio.get_running_loop().create_task(
                old.close(code=4000, message=b"replaced by a newer connection of this app-server")
            )
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        self.server = ws
        if cursor is not None:
            # What the app-server may not have processed goes again, first.
            replay = [entry for entry in self._sent if entry[0] > cursor]
            self._unsent.extendleft(reversed(replay))
        self._sent.clear()
        self._control.clear()
        for stream in self.streams.values():
            self._control.append(ping_envelope(stream.route))  # which streams does it know?
        self._kick()

    def _detach(self, ws: web.WebSocketResponse) -> None:
        if self.server is not ws:
            return
        self.server = None
        log.info(
            "environment %s: app-server disconnected; %d clients wait up to %g s",
            self.record.environment_id,
            len(self.streams),
            self.limits.server_grace_seconds,
        )
        self._grace = asyncio.get_running_loop().call_later(
            self.limits.server_grace_seconds, self._grace_expired
        )

    def _grace_expired(self) -> None:
        self._grace = None
        if self.server is None:
            for stream in list(self.streams.values()):
                stream.finish(WSCloseCode.TRY_AGAIN_LATER, "the app-server went offline")

    async def _write_server(self, ws: web.WebSocketResponse) -> None:
        text = WSMsgType.TEXT
        while True:
            while self.server is ws:
                if self._acks and self._ack_timer is None:
                    self._control.extend(ack_envelope(r, s) for r, s in self._acks.values())
                    self._acks.clear()
                if self._control:
                    frame = self._control.popleft()
                elif self._unsent:
                    cursor, frame = self._unsent.popleft()
                    self._sent.append((cursor, frame))
                    while len(self._sent) > self.limits.replay_entries:
                        self._sent.popleft()
                    if len(self._unsent) < self.limits.backlog:
                        self._writable.set()
                else:
                    break
                await ws.send_frame(frame, text)
            self._wake.clear()
            await self._wake.wait()

    def _kick(self) -> None:
        self._wake.set()

    def ping_streams(self) -> None:
        """Ask the app-server about every stream (keeps them from idling out there)."""
        if self.server is not None and self.streams:
            self._control.extend(ping_envelope(s.route) for s in self.streams.values())
            self._kick()

    def _on_server_frame(self, text: str) -> None:
        envelope = parse_server_envelope(text)
        if isinstance(envelope, str):
            log.warning(
                "environment %s: unusable envelope: %s", self.record.environment_id, envelope
            )
            return
        key = (envelope.client_id, envelope.stream_id)
        stream = self.streams.get(key)
        kind = envelope.type
        if kind == "ack":
            return
        route = stream.route if stream is not None else routing(*key)
        if kind == "pong":
            self._ack(key, route, envelope.seq_id)
            if stream is not None and envelope.raw.get("status") == "unknown":
                log.info("client %s/%s: the app-server ended the connection", *key)
                stream.server_ended = True
                stream.finish(WSCloseCode.GOING_AWAY, "the app-server closed this connection")
            return
        if stream is None:
            # A stream that is gone here (or from before a relay restart): tell the app-server.
            self._ack(key, route, envelope.seq_id)
            if key not in self._told_closed:
                self._told_closed[key] = None
                while len(self._told_closed) > _TOLD_MAX:
                    self._told_closed.popitem(last=False)
                self._control.append(b'{"type":"client_closed",%s}' % route)
                self._kick()
            return
        if envelope.seq_id <= stream.last_server_seq:
            self._ack(key, route, envelope.seq_id)  # a replay: delivered before
            return
        if kind == "server_message":
            message = envelope.raw["message"]
            data = orjson.dumps(message)
        else:
            message, joined = None, stream.joiner.observe(envelope)
            if joined is None:
                return
            if isinstance(joined, TooBig):
                self._too_big(stream, envelope.seq_id, joined.size)
                return
            data = joined
        stream.last_server_seq = envelope.seq_id
        stream.deliver(envelope.seq_id, data, message)

    def _too_big(self, stream: ClientStream, seq: int, size: int) -> None:
        """The app-server sent ``stream`` a message above the limit: close the client (1009).

        Its client would otherwise wait for an answer that never comes. The
        message counts as delivered (its remaining chunks are acknowledged as
        replays), so the app-server's window does not stay full meanwhile.
        """
        limit = self.limits.max_message_bytes
        log.warning(
            "client %s/%s: the app-server sent a %d-byte message, above the limit of %d bytes; "
            "closing the client",
            *stream.key,
            size,
            limit,
        )
        stream.last_server_seq = seq
        self._ack(stream.key, stream.route, seq)
        stream.finish(WSCloseCode.MESSAGE_TOO_BIG, f"a {size}-byte message exceeds {limit} bytes")

    def _ack(self, key: Key, route: bytes, seq: int) -> None:
        # Coalesced: one ack per stream per ACK_DELAY covers every message before it.
        self._acks[key] = (route, seq)
        if self._ack_timer is None:
            self._ack_timer = asyncio.get_running_loop().call_later(ACK_DELAY, self._flush_acks)

    def _flush_acks(self) -> None:
        self._ack_timer = None
        self._kick()

    def ack_later(self, stream: ClientStream, seq: int) -> None:
        """``stream`` wrote the app-server's message ``seq``: acknowledge it (coalesced)."""
        self._ack(stream.key, stream.route, seq)

    # -- clients ---------------------------------------------------------------------------

    def open_stream(self, ws: web.WebSocketResponse) -> ClientStream:
        """A new stream for a client websocket that was just accepted."""
        stream = ClientStream(self, ws)
        self.streams[stream.key] = stream
        return stream

    async def forward(self, stream: ClientStream, data: bytes) -> None:
        """Queue the client's message for the app-server, waiting while the backlog is full."""
        while len(self._unsent) >= self.limits.backlog and not stream.closed:
            self._writable.clear()
            await self._writable.wait()
        if stream.closed:
            return
        seq, cursor = stream.next_seq, format_cursor(self._next_cursor)
        stream.next_seq += 1
        self._next_cursor += 1
        for frame in client_message_envelopes(stream.route, seq, cursor, data):
            self._unsent.append((self._next_cursor - 1, frame))
        self._kick()

    async def close_stream(self, stream: ClientStream) -> None:
        """The client's websocket ended: tell the app-server (unless it ended it)."""
        self.streams.pop(stream.key, None)
        self._acks.pop(stream.key, None)
        await stream.stop()
        if not stream.server_ended:
            cursor = self._next_cursor
            self._next_cursor += 1
            frame = closed_envelope(stream.route, stream.next_seq, format_cursor(cursor))
            self._unsent.append((cursor, frame))
            self._kick()
        self._writable.set()  # waiters of this stream see it closed

    async def close(self, code: int, message: str) -> None:
        """Close the app-server's websocket and every client's (relay shutdown, re-enrollment)."""
        if self._grace is not None:
            self._grace.cancel()
        if self._ack_timer is not None:
            self._ack_timer.cancel()
        for stream in list(self.streams.values()):
            with contextlib.suppress(Exception):
                await stream.ws.close(code=code, message=message.encode())
        if self.server is not None:
            with contextlib.suppress(Exception):
                await self.server.close(code=code, message=message.encode())
