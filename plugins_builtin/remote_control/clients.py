"""The remote clients multiplexed over the relay's websocket, each a kernel connection.

:class:`RemoteClients` reads the relay's envelopes and keeps one kernel
connection per stream ``(client_id, stream_id)``, as the reference does:

* an ``initialize`` request opens the stream's connection (again: a second
  ``initialize`` on a stream replaces its connection, which is how a client
  that lost its socket starts over);
* other messages go to the stream's connection, in order; a ``seq_id`` not
  above the last one delivered is a replay after a reconnect and is skipped
  (``initialize`` included, unlike the reference, so a replay never resets
  a connection);
  chunks are joined first (:class:`~.protocol.Reassembler`);
* a message for a stream without a connection is not served: the relay is
  told with ``pong unknown`` (so its client can start over);
* ``ping`` is answered ``pong active`` or ``unknown``; ``ack`` frees the
  stream's window (:mod:`.outbound`); ``client_closed`` ends the connection,
  which cancels its handlers and runs ``kernel_connection_closed`` (the
  process plugin kills what the client started);
* a stream silent for ``idle_timeout_seconds`` (no message, no ping) is
  closed the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from kernel.framing import Oversized
from kernel.rpc.codec import encode_error
from kernel.rpc.errors import overloaded

from .link import RemoteLink, RemoteSource
from .outbound import Key, Outbound
from .protocol import ClientEnvelope, Reassembler, stream_prefix

if TYPE_CHECKING:
    from kernel import Connection, Kernel

__all__ = ["TRANSPORT", "RemoteClients"]

log = logging.getLogger("plugins.remote_control.clients")

TRANSPORT = "remote_control"
"""The transport name of remote connections (``Connection.transport``)."""

_MIN_REFUSALS = 256
"""Refusals (``-32001``) that may wait above a connection's outbox bound, at the least.

Past the inbound backlog a request is refused at once, above the outbox's
bound, so that the relay's socket never waits for one client. A client that
pipelines a burst still gets every refusal; one that keeps sending and
reads nothing is dropped once ``max(hard_limit, _MIN_REFUSALS)`` of them
wait (:meth:`RemoteClients._push`).
"""


@attrs.define(eq=False)
class _Client:
    key: Key
    link: RemoteLink
    source: RemoteSource
    conn: Connection
    last_seq: int | None
    last_activity: float = attrs.Factory(time.monotonic)
    task: asyncio.Task[None] | None = None


def _is_request(message: Any) -> bool:
    return type(message) is dict and "method" in message and type(message.get("id")) in (int, str)


class RemoteClients:
    """Streams of the relay's websocket and their connections (see the module docstring)."""

    def __init__(
        self,
        kernel: Kernel,
        outbound: Outbound,
        *,
        max_clients: int,
        inbound_backlog: int,
        idle_timeout: float,
    ) -> None:
        self.kernel = kernel
        self.outbound = outbound
        self.max_clients = max_clients
        self.inbound_backlog = inbound_backlog
        self.idle_timeout = idle_timeout
        self.cursor: str | None = None
        """The relay's highest ``cursor`` seen (sent back on reconnect)."""
        self.accepting = True
        self._clients: dict[Key, _Client] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._reassembler = Reassembler(kernel.settings.max_message_bytes)

    # -- envelopes from the relay ----------------------------------------------------------

    async def handle(self, envelope: ClientEnvelope) -> None:
        """Act on one envelope the relay sent (see the module docstring)."""
        key = (envelope.client_id, envelope.stream_id)
        kind = envelope.type
        if kind == "ack":
            segment = envelope.raw.get("segment_id")
            if envelope.seq_id is not None:
                self.outbound.ack(key, envelope.seq_id, segment if type(segment) is int else None)
        elif kind == "ping":
            client = self._clients.get(key)
            if client is not None:
                client.last_activity = time.monotonic()
            status = "active" if client is not None else "unknown"
            self.outbound.pong(key, stream_prefix(*key), status)
        elif kind == "client_closed":
            self._reassembler.forget(key)
            client = self._clients.get(key)
            if client is not None:
                client.source.end("remote client closed")
        elif kind == "client_message_chunk":
            if not self._replayed(key, envelope):
                whole = self._reassembler.observe(envelope)
                if whole is not None:
                    await self._deliver(key, envelope, None, whole)
        else:
            message = envelope.raw["message"]
            encoded = orjson.dumps(message)
            if len(encoded) > self._reassembler.limit:
                await self._deliver(key, envelope, message, Oversized(len(encoded)))
            else:
                await self._deliver(key, envelope, message, encoded)
        if envelope.cursor is not None:
            self.cursor = envelope.cursor

    def _replayed(self, key: Key, envelope: ClientEnvelope) -> bool:
        client = self._clients.get(key)
        seq = envelope.seq_id
        return (
            client is not None
            and seq is not None
            and client.last_seq is not None
            and seq <= client.last_seq
        )

    async def _deliver(
        self, key: Key, envelope: ClientEnvelope, message: Any, frame: bytes | Oversized
    ) -> None:
        if message is None and isinstance(frame, bytes) and b'"initialize"' in frame:
            # A joined message is parsed here only when it may open the stream.
            try:
                message = orjson.loads(frame)
            except orjson.JSONDecodeError:
                message = None  # the connection answers the parse error
        if self._replayed(key, envelope):
            return  # already delivered before the relay's websocket was replaced
        initialize = _is_request(message) and message.get("method") == "initialize"
        client = self._clients.get(key)
        if client is not None and not initialize:
            if envelope.seq_id is not None:
                client.last_seq = envelope.seq_id
            client.last_activity = time.monotonic()
            self._push(client, message, frame)
            return
        if not initialize:
            log.warning(
                "remote client %s/%s sent a message before initialize; telling the relay "
                "the stream is unknown",
                *key,
            )
            self.outbound.pong(key, stream_prefix(*key), "unknown")
            return
        await self._open(key, envelope.seq_id, frame)

    def _push(self, client: _Client, message: Any, frame: bytes | Oversized) -> None:
        source = client.source
        backlog = source.backlog
        if backlog >= source.soft_limit:
            if message is None and isinstance(frame, bytes):
                with contextlib.suppress(orjson.JSONDecodeError):
                    message = orjson.loads(frame)
            if _is_request(message):
                # Not queued, still answered: the client may retry later. The answer
                # bypasses the outbox's bound, so a client that also reads nothing is
                # dropped once too many of them wait (they would pile up without end).
                outbox = client.conn.outbox
                waiting = len(outbox) - outbox.limit
                if waiting >= max(source.hard_limit, _MIN_REFUSALS):
                    log.warning(
                        "remote client %s/%s reads nothing back (%d refusals wait beyond "
                        "its outbound bound); dropping it",
                        *client.key,
                        waiting,
                    )
                    client.conn.abort(f"{waiting} unread answers beyond the outbound bound")
                    return
                self.kernel.stats.overloaded += 1
                client.conn.answer_now(encode_error(message["id"], overloaded()))
                return
            if backlog >= source.hard_limit:
                log.warning(
                    "remote client %s/%s has %d unread messages; dropping it",
                    *client.key,
                    backlog,
                )
                client.conn.abort(f"more than {source.hard_limit} unread messages")
                return
        source.push(frame)

    # -- connections -----------------------------------------------------------------------

    async def _open(self, key: Key, seq: int | None, first: bytes | Oversized) -> None:
        prefix = stream_prefix(*key)
        old = self._clients.get(key)
        # Refused before the old connection is touched: a detached link never
        # forgets its stream in Outbound, so only a stream that carries on may be detached.
        others = len(self._clients) - (old is not None)
        if not self.accepting or others >= self.max_clients:
            why = "not accepting" if not self.accepting else f"{self.max_clients} already open"
            log.warning("remote client %s/%s refused: %s", *key, why)
            if old is not None:
                # The client gave it up; its normal end tells the relay and forgets the stream.
                old.source.end(f"a new initialize was refused: {why}")
            else:
                self.outbound.pong(key, prefix, "unknown")
            return
        if old is not None:
            log.info("remote client %s/%s initialized again; replacing its connection", *key)
            del self._clients[key]
            old.link.detach()
            old.source.end("replaced by a new initialize")
        self.outbound.open(key, prefix)
        link = RemoteLink(key, prefix, self.outbound, self._ended)
        source = RemoteSource(self.kernel.settings.max_message_bytes, self.inbound_backlog)
        source.push(first)
        peer = f"relay {key[0]}/{key[1]}"
        try:
            conn = await self.kernel.open_connection(TRANSPORT, link, peer)
        except Exception:
            log.exception("opening a connection for remote client %s/%s failed", *key)
            link.abort()  # the relay hears the stream is unknown
            return
        link.on_abort = conn.stop_reading
        client = _Client(key, link, source, conn, seq)
        self._clients[key] = client
        client.task = asyncio.get_running_loop().create_task(
            self._serve(client), name=f"remote-control-client-{conn.id}"
        )
        self._tasks.add(client.task)
        client.task.add_done_callback(self._tasks.discard)
        log.info("remote connection %s opened for %s", conn.id, peer)

    async def _serve(self, client: _Client) -> None:
        """Run one connection until its input ends, then close it (every exit path)."""
        conn, source = client.conn, client.source
        settings = self.kernel.settings
        loop = asyncio.get_running_loop()
        deadline = loop.call_later(
            settings.handshake_timeout_seconds, self._handshake_expired, client
        )
        reason = "error"
        try:
            reason = await conn.run(source)
            if reason == "eof":
                reason = source.end_reason
            grace = settings.shutdown_grace_seconds if reason == "stopped" else 0.0
            await conn.close(grace, reason)
        finally:
            deadline.cancel()
            if not conn.closing:
                await conn.close(0.0, "remote connection ended")
            await conn.wait_closed()
            self._ended(client.link)
            log.info("remote connection %s (%s/%s) ended: %s", conn.id, *client.key, reason)

    def _handshake_expired(self, client: _Client) -> None:
        if not client.conn.initialized and not client.conn.closing:
            seconds = self.kernel.settings.handshake_timeout_seconds
            log.warning(
                "remote client %s/%s did not complete initialize within %g s; closing",
                *client.key,
                seconds,
            )
            client.source.end(f"no successful initialize within {seconds:g} s")

    def _ended(self, link: RemoteLink) -> None:
        client = self._clients.get(link.key)
        if client is not None and client.link is link:
            del self._clients[link.key]
            self._reassembler.forget(link.key)

    def sweep(self) -> int:
        """End the streams idle for longer than ``idle_timeout``; returns how many."""
        now = time.monotonic()
        idle = [c for c in self._clients.values() if now - c.last_activity > self.idle_timeout]
        for client in idle:
            log.info("remote client %s/%s idle; closing", *client.key)
            client.source.end(f"idle for more than {self.idle_timeout:g} s")
        return len(idle)

    async def close_all(self, reason: str, grace: float = 0.0) -> None:
        """Close every remote connection and wait until each finished closing."""
        clients = list(self._clients.values())
        if clients:
            await asyncio.gather(*(c.conn.close(grace, reason) for c in clients))
        tasks = list(self._tasks)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
