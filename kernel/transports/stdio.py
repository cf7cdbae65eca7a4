"""The stdio transport: JSON lines on stdin and stdout, one connection.

While it runs, ``sys.stdout`` is pointed at stderr so a stray ``print`` in a
plugin cannot corrupt the protocol stream. Pipes, sockets and terminals are
driven by the event loop; what cannot be polled (a regular file, /dev/null:
``kernel run < requests.jsonl > out``) falls back to a reader thread and
blocking writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import selectors
import sys
import threading
from typing import TYPE_CHECKING, Any

from ..framing import LineSource
from ..pipes import loop_pipe

if TYPE_CHECKING:
    from ..connection import Connection
    from ..runtime import Kernel

__all__ = ["StdioListener", "StdoutLink", "open_stdin"]

log = logging.getLogger("kernel.transports.stdio")
CHUNK_SIZE = 1 << 16
_PIPE_BYTES = 1 << 20
# Frames at least this large are written without first copying in the newline.
_COPY_LIMIT = 1 << 16


class _WriteProtocol(asyncio.Protocol):
    """Write-side flow control for a pipe transport."""

    def __init__(self) -> None:
        self.paused = False
        self._waiter: asyncio.Future[None] | None = None
        self.lost: BaseException | None = None
        self.on_lost: Any = None

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._wake(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        # Both loops report the reader closing its end at once, even while
        # nothing is being written: the server stops then, not at its next write.
        self.lost = exc or BrokenPipeError("stdout closed")
        self._wake(self.lost)
        if self.on_lost is not None:
            self.on_lost()

    def _wake(self, exc: BaseException | None) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)

    async def drain(self) -> None:
        if self.lost is not None:
            raise self.lost
        if self.paused:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter


class StdoutLink:
    """:class:`~kernel.connection.Link` over the process's stdout.

    :meth:`write_now` hands each frame to the pipe transport at once: the
    client sees the first answer while later ones are still being computed
    (on two cores that overlap is worth more than saved syscalls; measured
    in benchmarks/stdio.py). Under pressure the transport buffers, which
    coalesces writes by itself, and once it pauses frames go through the
    outbox instead.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._transport: asyncio.WriteTransport | None = None
        self._protocol: _WriteProtocol | None = None
        self.on_abort: Any = None
        self.on_lost: Any = None
        """Called once if the reader of stdout goes away."""

    async def open(self) -> None:
        _widen_pipe(self._fd)
        if not _pollable(self._fd, selectors.EVENT_WRITE):
            log.debug("stdout cannot be polled; writing it with blocking writes")
            return
        loop = asyncio.get_running_loop()
        pipe = loop_pipe(os.dup(self._fd), "wb", loop)
        try:
            transport, protocol = await loop.connect_write_pipe(_WriteProtocol, pipe)
        except (ValueError, OSError):
            pipe.close()
            log.debug("stdout is not a pipe; writing it with blocking writes")
            return
        self._transport, self._protocol = transport, protocol
        protocol.on_lost = self._lost

    def _lost(self) -> None:
        if self.on_lost is not None:
            self.on_lost()

    async def send(self, frames: list[bytes]) -> None:
        if self._transport is None:
            data = b"\n".join(frames) + b"\n"
            await asyncio.get_running_loop().run_in_executor(None, _write_all, self._fd, data)
            return
        assert self._protocol is not None
        if self._protocol.lost is not None:
            raise self._protocol.lost
        if max(map(len, frames)) < _COPY_LIMIT:
            self._transport.write(b"\n".join(frames) + b"\n")
        else:  # large frames: hand them over as they are, no joined copy
            self._transport.writelines([part for f in frames for part in (f, b"\n")])
        await self._protocol.drain()

    def write_now(self, frame: bytes) -> bool:
        protocol = self._protocol
        if protocol is None or protocol.paused or protocol.lost:
            return False
        if len(frame) < _COPY_LIMIT:
            self._transport.write(frame + b"\n")  # type: ignore[union-attr]
        else:  # a large answer (fs/readFile): no concatenated copy
            self._transport.writelines((frame, b"\n"))  # type: ignore[union-attr]
        return True

    def abort(self) -> None:
        if self.on_abort is not None:
            self.on_abort()
        # Aborting a transport that is already closing would report its loss twice.
        if self._transport is not None and not self._transport.is_closing():
            self._transport.abort()

    async def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()


def _widen_pipe(fd: int) -> None:
    """Ask Linux for a 1 MiB pipe (default 64 KiB): large answers cross in fewer steps."""
    try:
        import fcntl  # POSIX only
    except ImportError:
        return
    size_flag = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
    if size_flag is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, size_flag, _PIPE_BYTES)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _pollable(fd: int, events: int) -> bool:
    """Whether the event loop can watch ``fd`` (pipes, sockets, terminals).

    Regular files and ``/dev/null`` cannot be polled, and uvloop aborts the
    process instead of raising when handed one, so ask a selector first.
    """
    selector = selectors.DefaultSelector()
    try:
        selector.register(fd, events)
    except (OSError, ValueError):
        return False
    finally:
        selector.close()
    return True


async def open_stdin(fd: int, limit: int) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit)
    if _pollable(fd, selectors.EVENT_READ):
        pipe = loop_pipe(os.dup(fd), "rb", loop)
        try:
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
            return reader
        except (ValueError, OSError):
            pipe.close()
    log.debug("stdin is not a pipe; reading it from a thread")
    threading.Thread(
        target=_feed_from_thread, args=(fd, reader, loop), name="kernel-stdin", daemon=True
    ).start()
    return reader


def _feed_from_thread(
    fd: int, reader: asyncio.StreamReader, loop: asyncio.AbstractEventLoop
) -> None:
    # Regular files never block for long; a thread keeps the loop free anyway.
    try:
        while chunk := os.read(fd, CHUNK_SIZE):
            loop.call_soon_threadsafe(reader.feed_data, chunk)
    except OSError as exc:
        log.warning("reading stdin failed: %s", exc)
    finally:
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(reader.feed_eof)


class StdioListener:
    """Serves one connection over stdin/stdout until EOF, error or shutdown."""

    url = "stdio://"

    def __init__(self, kernel: Kernel, stdin_fd: int = 0, stdout_fd: int = 1) -> None:
        self.kernel = kernel
        self._stdin_fd = stdin_fd
        self._stdout_fd = stdout_fd
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._saved_stdout: Any = None
        self.connection: Connection | None = None

    async def start(self) -> None:
        """Attach to stdin/stdout and start serving in the background."""
        self._saved_stdout, sys.stdout = sys.stdout, sys.stderr
        reader = await open_stdin(self._stdin_fd, CHUNK_SIZE * 4)
        link = StdoutLink(self._stdout_fd)
        await link.open()
        conn = await self.kernel.open_connection("stdio", link, "stdio")
        self.connection = conn
        link.on_abort = conn.stop_reading
        link.on_lost = lambda: conn.abort("stdout closed")
        source = LineSource(lambda: reader.read(CHUNK_SIZE), self.kernel.settings.max_message_bytes)
        self._task = asyncio.get_running_loop().create_task(
            self._serve(conn, source), name="kernel-stdio"
        )

    async def _serve(self, conn: Connection, source: LineSource) -> None:
        reason = await conn.run(source)
        if self._stopping:
            return  # the server is shutting down and closes the connection itself
        if reason == "eof":
            await conn.close(self.kernel.settings.shutdown_grace_seconds, "stdin closed")
            self.kernel.request_stop("stdin closed")
        else:
            # stdout went away (or reading failed): nobody is left to serve.
            await conn.close(0.0, f"input ended: {reason}")
            self.kernel.request_stop("stdout closed" if conn.outbox.closed else f"stdin {reason}")

    async def stop(self) -> None:
        """Stop reading; in-flight work is finished by the kernel's shutdown."""
        self._stopping = True
        if self.connection is not None:
            self.connection.stop_reading()
        if self._task is not None and not self._task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def close(self) -> None:
        """Give ``sys.stdout`` back (after the connection closed)."""
        if self._saved_stdout is not None:
            sys.stdout = self._saved_stdout
            self._saved_stdout = None
