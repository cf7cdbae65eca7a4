"""aiohttp's HTTP protocol, one per accepted connection, with the kernel's limits.

The network listeners serve an aiohttp application but create the listening
server themselves, so every accepted connection passes through here:

* **Connection cap** (``kernel.max_connections``): a listener keeps at most
  this many connections open, counted from accept until the socket is
  closed. One more is closed at once, before a byte of it is read, and a
  warning naming the setting is logged at most once a minute: a flood of
  idle or slow sockets cannot use up the process's file descriptors and
  shut every other client out.
* **Request head deadline** (``kernel.http_header_timeout_seconds``): a
  connection must deliver a complete request head within this time after
  it was accepted or after its previous response, or it is closed. This is
  aiohttp's idle timeout (``keepalive_timeout``), which runs from accept
  too; a websocket is past it once upgraded.
* **Malformed requests are refused without being quoted.** aiohttp's parser
  errors quote the offending raw bytes (for a bad header line the whole
  line, an ``Authorization`` token included); aiohttp logs that text at
  ERROR and sends it back as the 400 body. Here the 400 has a generic body
  and the log line names only the peer and the error class.
* **Lingering close.** Closing a socket while the peer is still sending
  makes the operating system answer with a reset, and the peer may lose
  what we wrote last before it reads it (a websocket close frame saying
  1009, a 400). So a close reads and discards what the peer still sends
  until it closes too, for at most :data:`LINGER_SECONDS`. Our sending side
  is shut down (FIN) at once, except on a websocket whose peer has not yet
  answered our close frame: aiohttp closes at once after a read error (an
  oversized frame) without waiting for that answer, and a client that sees
  our FIN before it could answer reports the close as abnormal (1006)
  instead of our code.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Any, cast

from aiohttp import WSCloseCode, web
from aiohttp.http import HttpProcessingError

__all__ = [
    "LINGER_SECONDS",
    "ConnectionGate",
    "GuardedRequestHandler",
    "aiohttp_logger",
    "protocol_factory",
]

log = logging.getLogger("kernel.transports.http")
# The logger handed to aiohttp for what it logs itself (handler crashes).
aiohttp_logger = logging.getLogger("kernel.transports.http.aiohttp")

LINGER_SECONDS = 2.0
# The connection-cap warning is repeated at most this often.
_NOTICE_SECONDS = 60.0
MALFORMED_BODY = "malformed HTTP request"


class _NoParserText(logging.Filter):
    """Drop the quoted request bytes from any record about a parser error.

    :class:`GuardedRequestHandler` already answers parser errors without
    logging them through aiohttp; this catches any other path in aiohttp
    that logs one (its text may hold a header value, i.e. a secret).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = "malformed HTTP request (%s)"
            record.args = (type(exc).__name__,)
            record.exc_info = None
            record.exc_text = None
        return True


aiohttp_logger.addFilter(_NoParserText())


class ConnectionGate:
    """Counts one listener's open connections and refuses those over the cap."""

    def __init__(self, limit: int, where: str) -> None:
        self.limit = limit
        self.where = where
        self.open = 0
        self._refused = 0
        self._last_notice = -math.inf

    def admit(self, now: float) -> bool:
        """Take a slot for a just-accepted connection; False when none is free."""
        if self.open < self.limit:
            self.open += 1
            return True
        self._refused += 1
        if now - self._last_notice >= _NOTICE_SECONDS:
            log.warning(
                "connection limit reached on %s: %d connections open, new ones are closed "
                "at once (%d refused since the last notice; raise kernel.max_connections "
                "to allow more)",
                self.where,
                self.open,
                self._refused,
            )
            self._last_notice = now
            self._refused = 0
        return False

    def release(self) -> None:
        """A connection admitted by :meth:`admit` closed."""
        self.open -= 1


class _LingeringTransport:
    """The real transport, except that :meth:`close` lingers (see the module doc).

    aiohttp reaches the socket only through ``protocol.transport``, so
    handing it this object is enough to change how every close happens.
    """

    def __init__(self, inner: asyncio.Transport, begin_linger: Callable[[], bool]) -> None:
        self._inner = inner
        self._begin_linger = begin_linger
        self._closing = False
        self._timer: asyncio.TimerHandle | None = None
        # The hot paths skip a Python-level hop.
        self.write = inner.write
        self.writelines = inner.writelines
        self.get_extra_info = inner.get_extra_info
        self.get_write_buffer_size = inner.get_write_buffer_size
        self.get_write_buffer_limits = inner.get_write_buffer_limits
        self.set_write_buffer_limits = inner.set_write_buffer_limits
        self.resume_reading = inner.resume_reading

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def is_closing(self) -> bool:
        return self._closing or self._inner.is_closing()

    def pause_reading(self) -> None:
        if not self._closing:  # a lingering close must keep draining
            self._inner.pause_reading()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        inner = self._inner
        if inner.is_closing():
            return
        fin_now = self._begin_linger()
        try:
            if not inner.can_write_eof():
                raise NotImplementedError
            if fin_now:
                inner.write_eof()  # after what is buffered; our side is done
            inner.resume_reading()
        except (NotImplementedError, OSError, RuntimeError):
            inner.close()
            return
        # The peer's EOF closes the transport earlier (aiohttp's protocol
        # does not keep half-closed connections open).
        self._timer = asyncio.get_running_loop().call_later(LINGER_SECONDS, inner.close)

    def abort(self) -> None:
        self._closing = True
        self.released()
        self._inner.abort()

    def released(self) -> None:
        """The connection is gone: stop the linger timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class GuardedRequestHandler(web.RequestHandler):
    """aiohttp's protocol for one connection, admitted by a gate, closed lingering."""

    def __init__(
        self,
        manager: web.Server,
        gate: ConnectionGate,
        *,
        loop: asyncio.AbstractEventLoop,
        **kw: Any,
    ) -> None:
        super().__init__(manager, loop=loop, **kw)
        self._gate = gate
        self._clock = loop.time
        self._admitted = False
        self._discarding = False
        self._lingering: _LingeringTransport | None = None
        self._websocket: web.WebSocketResponse | None = None
        self._unanswered = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._gate.admit(self._clock()):
            self._discarding = True
            transport.close()
            return
        self._admitted = True
        self._lingering = _LingeringTransport(cast(asyncio.Transport, transport), self._linger)
        super().connection_made(cast(asyncio.Transport, self._lingering))

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._admitted:
            return  # refused by the gate; aiohttp never saw it
        self._admitted = False
        self._gate.release()
        if self._lingering is not None:
            self._lingering.released()
        super().connection_lost(exc)

    def watch_websocket(self, ws: web.WebSocketResponse) -> None:
        """``ws`` now owns the connection; see :meth:`_linger` for why it matters."""
        self._websocket = ws

    def close_unanswered(self) -> None:
        """The websocket is about to be closed without waiting for the peer's close frame."""
        self._unanswered = True

    def _linger(self) -> bool:
        """The transport is closing: discard input; True to send our FIN at once.

        Not at once on a websocket whose peer has not answered our close
        frame: after a read error aiohttp closes without waiting for the
        answer and reports 1006, and the peer must still read our close
        frame and answer it before it sees our FIN.
        """
        self._discarding = True
        ws = self._websocket
        if ws is None:
            return True
        return not (self._unanswered or ws.close_code == WSCloseCode.ABNORMAL_CLOSURE)

    def data_received(self, data: bytes) -> None:
        if not self._discarding:
            super().data_received(data)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Answer a request aiohttp could not parse with a generic 400.

        aiohttp's own version logs and returns the parser's message, which
        quotes the raw request (header values included). Other errors
        (a handler that crashed) keep aiohttp's handling.
        """
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        log.warning(
            "malformed HTTP request from %s (%s); answered %d",
            request.remote,
            type(exc).__name__,
            status,
        )
        response = web.Response(status=status, text=MALFORMED_BODY)
        response.force_close()
        return response


def protocol_factory(
    server: web.Server, gate: ConnectionGate, header_timeout: float
) -> Callable[[], asyncio.Protocol]:
    """The protocol factory for ``loop.create_server``: one handler per connection."""
    loop = asyncio.get_running_loop()
    options: dict[str, Any] = {
        "keepalive_timeout": header_timeout,
        "logger": aiohttp_logger,
        "access_log": None,
    }

    def make() -> asyncio.Protocol:
        return GuardedRequestHandler(server, gate, loop=loop, **options)

    return make
