"""One client connection: handshake state, flow control, and the way out.

A transport creates the connection with a :class:`Link` (the way out) and
calls :meth:`Connection.run` with a :class:`~kernel.framing.FrameSource`
(the way in). Two bounds keep memory flat under any load:

* at most ``kernel.max_in_flight`` handlers wait at once per connection;
  beyond that the connection stops reading, and after
  ``kernel.overload_timeout_seconds`` answers ``-32001 Server overloaded;
  retry later.`` until a handler ends (details in :mod:`kernel.workers`);
* at most ``kernel.max_outbound_messages`` encoded frames wait for the
  writer. Producers wait while it is full, which stops the reader: a client
  that does not read stops being read.

Nothing is dropped on the way: every request gets exactly one answer.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol

from .framing import FrameSource
from .handshake import ClientInfo, InitializeCapabilities
from .outbox import Outbox, OutboxClosed
from .rpc.codec import Response, encode_error, encode_notification, encode_request
from .rpc.declare import Notification, ServerRequest
from .rpc.errors import INVALID_REQUEST, RpcError
from .workers import Workers

if TYPE_CHECKING:
    from .runtime import Kernel

__all__ = ["Connection", "ConnectionClosed", "Link", "ServerRequestTimeout"]

log = logging.getLogger("kernel.connection")
_ids = itertools.count(1)
# Once the grace period is over, cancelled handlers, the writer's flush and
# the closed hooks share this much time: shutdown never waits for a client
# that stopped reading, nor for output nobody will read.
TEARDOWN_SECONDS = 1.0
# The least time a transport gets to say goodbye (a websocket close frame).
_CLOSE_FRAME_SECONDS = 0.1


class Link(Protocol):
    """The transport side of a connection: how frames leave, how it ends."""

    async def send(self, frames: list[bytes]) -> None:
        """Write ``frames`` in order, one message each; raise if the peer is gone."""

    def write_now(self, frame: bytes) -> bool:
        """Hand one frame to the transport without waiting, if it can take it.

        False when the transport is applying backpressure (or is gone); the
        frame then goes through the outbox and the writer task. Frames are
        only written this way while the outbox is empty, so order holds.
        """

    def abort(self) -> None:
        """Drop the transport now (the peer is gone or must be dropped)."""

    async def close(self) -> None:
        """Close after everything sent so far has been written."""


class ConnectionClosed(Exception):
    """The connection closed before a server→client request was answered."""


class ServerRequestTimeout(TimeoutError):
    """The client did not answer a server→client request in time."""


class Connection:
    """State and I/O of one client connection."""

    def __init__(self, kernel: Kernel, transport: str, link: Link, peer: str = "") -> None:
        settings = kernel.settings
        self.kernel = kernel
        self.id = next(_ids)
        self.transport = transport
        self.peer = peer
        self.link = link
        self.outbox = Outbox(settings.max_outbound_messages)
        # Handshake state, set by kernel.handshake.
        self.initialized = False
        self.client_info: ClientInfo | None = None
        self.capabilities = InitializeCapabilities()
        self.experimental = False
        self.opted_out: frozenset[str] = frozenset()
        self.state: dict[str, Any] = {}
        """Per-plugin scratch space; key it by your plugin name."""
        self._workers: Workers | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._server_ids = itertools.count()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = asyncio.Event()
        self._write_now = link.write_now
        self._stats = kernel.stats

    def __repr__(self) -> str:
        return f"<Connection {self.id} {self.transport} {self.peer}>"

    # -- lifecycle ------------------------------------------------------

    def start(self) -> None:
        """Start the writer; the kernel calls this when the connection opens."""
        self._writer = asyncio.get_running_loop().create_task(
            self._write_loop(), name=f"kernel-writer-{self.id}"
        )

    async def run(self, source: FrameSource) -> str:
        """Serve frames from ``source`` until input ends; returns why it ended.

        ``"eof"`` (the client closed its side), ``"stopped"`` (the server
        stopped reading) or ``"cancelled"``/``"error"``. The caller then
        closes the connection.
        """
        settings = self.kernel.settings
        self._workers = Workers(
            self, source, settings.max_in_flight, settings.overload_timeout_seconds
        )
        self._workers.start()
        return await asyncio.shield(self._workers.input_done)

    def on_handler_wait(self) -> None:
        """An async handler of this connection started waiting (see :mod:`kernel.workers`)."""
        if self._workers is not None:
            self._workers.pass_role()

    def stop_reading(self) -> None:
        """Read no more frames; handlers already running continue."""
        if self._workers is not None:
            self._workers.stop_reading()

    @property
    def closing(self) -> bool:
        """True once the connection stopped accepting work."""
        return self._closing

    async def wait_closed(self) -> None:
        """Return when :meth:`close` has completed."""
        await self._closed.wait()

    def accept_initialize(self, client: ClientInfo, caps: InitializeCapabilities) -> None:
        """Record a successful ``initialize`` (called by the handshake)."""
        self.client_info = client
        self.capabilities = caps
        self.experimental = caps.experimental_api
        self.opted_out = frozenset(caps.opt_out_notification_methods or ())
        self.initialized = True

    async def close(self, grace: float = 0.0, reason: str = "closed") -> None:
        """Finish or cancel in-flight work, flush answers, and release everything.

        Running handlers get ``grace`` seconds to finish; the rest are
        cancelled and answered with a cancellation error. After the grace
        period nothing waits for the client any more (notifications that do
        not fit are dropped), and cancelled handlers plus the final flush
        get :data:`TEARDOWN_SECONDS` beyond what is left of the grace. Safe
        to call more than once and from any exit path.
        """
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        log.debug("connection %s closing: %s", self.id, reason)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace + TEARDOWN_SECONDS
        try:
            try:
                self.stop_reading()
                # The client can no longer answer: fail its pending server
                # requests first so the handlers awaiting them finish now.
                for future in self._pending.values():
                    if not future.done():
                        future.set_exception(ConnectionClosed(f"connection {self.id} {reason}"))
                self._pending.clear()
                if self._workers is not None:
                    await self._workers.wait_busy(grace)
                self.outbox.shed()
                deadline = max(deadline, loop.time() + TEARDOWN_SECONDS)
                if self._workers is not None:
                    self._workers.cancel_busy()
                    await self._workers.join(timeout=max(deadline - loop.time(), 0.0))
                self.outbox.close()
            finally:
                # Handlers are done: plugins release what the connection held
                # (processes, watches) while the writer flushes what is queued.
                await self.kernel.connection_closed(self)
            if self._writer is not None:
                done, _ = await asyncio.wait(
                    {self._writer}, timeout=max(deadline - loop.time(), 0.0)
                )
                if not done:
                    self._writer.cancel()
                    self.link.abort()
            try:
                async with asyncio.timeout(max(deadline - loop.time(), _CLOSE_FRAME_SECONDS)):
                    await self.link.close()
            except TimeoutError:
                self.link.abort()
        finally:
            self._closed.set()

    def cancel_running(self) -> int:
        """Cancel every waiting handler now (each still answers); returns how many."""
        return self._workers.cancel_busy() if self._workers is not None else 0

    def abort(self, reason: str) -> None:
        """The peer is gone: drop queued output and close without grace."""
        if not self._closing:
            dropped = self.outbox.discard()
            log.info("connection %s lost (%s); %d queued frames dropped", self.id, reason, dropped)
            self.link.abort()
            asyncio.get_running_loop().create_task(self.close(0.0, reason))

    # -- inbound --------------------------------------------------------

    def receive_oversized(self, size: int, limit: int) -> Awaitable[None] | None:
        """A frame exceeded the size limit and was skipped; tell the client."""
        error = RpcError(
            INVALID_REQUEST,
            f"Invalid request: message of {size} bytes exceeds the limit of {limit} bytes",
        )
        return self.send(encode_error(None, error))

    @property
    def in_flight(self) -> int:
        """Handlers of this connection currently waiting on something."""
        return self._workers.busy if self._workers is not None else 0

    @property
    def rejecting(self) -> bool:
        """True while async requests are answered ``-32001`` (see :mod:`kernel.workers`)."""
        workers = self._workers
        return workers is not None and workers.overloaded and workers.saturated

    def resolve(self, response: Response) -> None:
        """Deliver a client's answer to a pending server→client request."""
        future = self._pending.pop(response.id, None) if type(response.id) is int else None
        if future is None:
            log.warning(
                "connection %s: answer to unknown server request id %r ignored",
                self.id,
                response.id,
            )
            return
        if future.done():
            return
        if response.error is not None:
            err = response.error
            future.set_exception(
                RpcError(err.get("code", -32603), str(err.get("message", "")), err.get("data"))
            )
        else:
            future.set_result(response.result)

    # -- outbound -------------------------------------------------------

    def send(self, frame: bytes) -> Awaitable[None] | None:
        """Send an encoded frame; returns an awaitable only if the outbox is full.

        With nothing queued the frame is written through at once (lowest
        latency, and the client can work while we do); otherwise it joins
        the outbox behind the frames already waiting.
        """
        outbox = self.outbox
        if not outbox.frames and not outbox.closed and self._write_now(frame):
            self._stats.frames_out += 1
            return None
        if outbox.offer_nowait(frame):
            return None
        return self.send_later(frame)

    async def send_later(self, frame: bytes) -> None:
        """Queue an encoded frame, waiting for room; dropped if the connection closed."""
        try:
            await self.outbox.put(frame)
        except OutboxClosed:
            pass

    def answer_now(self, frame: bytes) -> None:
        """Queue a final answer above the bound (cancellation during close)."""
        try:
            self.outbox.force(frame)
        except OutboxClosed:
            pass

    def wants(self, method: str) -> bool:
        """Whether this connection should receive notification ``method``."""
        return self.initialized and method not in self.opted_out

    async def notify(
        self, method: str | Notification, params: Any = None, /, **fields: Any
    ) -> bool:
        """Send the declared notification ``method`` (name or declaration); False if undelivered.

        Give the params object, or its fields as keywords
        (``notify(self.changed, key="a")`` builds the declared params type).
        Not delivered means: not initialized yet, the client opted out, the
        notification is experimental and the client did not opt in, or the
        connection is closed. Waits while the outbound queue is full.
        """
        if not isinstance(method, str):
            method = method.name
        entry = self.kernel.registry.get("notification", method)
        if entry is None:
            raise LookupError(f"notification {method!r} is not declared by any plugin")
        if not self.wants(method) or (entry.experimental and not self.experimental):
            return False
        if fields:
            if params is not None or entry.params is None:
                raise TypeError(f"notify({method!r}): give params or fields, not both")
            params = entry.params(**fields)
        payload = None
        if params is not None:
            encode = entry.unstructure_full if self.experimental else entry.unstructure_stable
            payload = encode(params)
        outbox = self.outbox
        if outbox.closed:
            return False
        frame = encode_notification(method, payload)
        if outbox.shedding and len(outbox) >= outbox.limit:
            return False  # tearing down: never wait for a client that stopped reading
        pending = self.send(frame)
        if pending is not None:
            await pending
        self.kernel.stats.notifications += 1
        return True

    def next_server_request_id(self) -> int:
        """Reserve the id of a server→client request (to name it before it is sent)."""
        return next(self._server_ids)

    async def request(
        self,
        method: str | ServerRequest,
        params: Any = None,
        *,
        timeout: float | None = -1,
        request_id: int | None = None,
    ) -> Any:
        """Send the declared server→client request ``method`` (a name or its declaration).

        Returns the client's result structured as the declared result type.
        ``request_id`` is one reserved with :meth:`next_server_request_id`
        (for callers that announce it, e.g. in ``serverRequest/resolved``).
        Raises :class:`kernel.RpcError` if the client answered an error,
        :class:`ServerRequestTimeout` after ``timeout`` seconds (default: the
        ``kernel.server_request_timeout_seconds`` setting; None waits
        forever), and :class:`ConnectionClosed` if the connection ends first.
        """
        if not isinstance(method, str):
            method = method.name
        entry = self.kernel.registry.get("server_request", method)
        if entry is None:
            raise LookupError(f"server request {method!r} is not declared by any plugin")
        if self._closing:
            raise ConnectionClosed(f"connection {self.id} is closing")
        if not self.initialized:
            raise ConnectionClosed(f"connection {self.id} is not initialized")
        if entry.experimental and not self.experimental:
            raise LookupError(f"{method} requires the client's experimentalApi capability")
        if timeout == -1:
            timeout = self.kernel.settings.server_request_timeout_seconds or None
        payload = None
        if params is not None:
            encode = entry.unstructure_full if self.experimental else entry.unstructure_stable
            payload = encode(params)
        if request_id is None:
            request_id = next(self._server_ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            if self.outbox.closed:
                raise ConnectionClosed(f"connection {self.id} closed")
            pending = self.send(encode_request(request_id, method, payload))
            if pending is not None:
                await pending
            async with asyncio.timeout(timeout):
                result = await future
        except TimeoutError:
            raise ServerRequestTimeout(
                f"client did not answer {method} within {timeout}s"
            ) from None
        finally:
            self._pending.pop(request_id, None)
        if entry.result is None:
            return result
        decode = entry.result_full if self.experimental else entry.result_stable
        return decode(result)

    async def _write_loop(self) -> None:
        outbox, link, stats = self.outbox, self.link, self.kernel.stats
        try:
            while True:
                batch = await outbox.take()
                if not batch:
                    return
                await link.send(batch)
                stats.frames_out += len(batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the peer went away mid-write
            self.abort(f"write failed: {exc.__class__.__name__}: {exc}")
