"""Frame sources: how a transport's input becomes whole messages.

A :class:`FrameSource` is read by whichever worker currently holds a
connection's reader role (see :mod:`kernel.workers`), so its state lives in
the object, not in a coroutine. ``next_nowait()`` returns the next frame
already buffered, :data:`NEED_MORE`, or an :class:`Oversized` marker;
``fill()`` waits for more input and returns False at end of input.

:class:`LineSource` implements JSON lines: one message per ``\\n``-terminated
line, blank lines skipped, a last line without newline still served. A line
longer than the limit is discarded up to its newline and reported as
:class:`Oversized`, so one huge message is answered with an error instead of
being buffered or killing the connection.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

__all__ = ["NEED_MORE", "FrameSource", "LineSource", "NeedMore", "Oversized"]


class NeedMore:
    """Type of :data:`NEED_MORE`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_MORE"


NEED_MORE = NeedMore()
"""Returned by ``next_nowait()`` when nothing complete is buffered."""


class Oversized:
    """A frame of ``size`` bytes exceeded the limit and was skipped."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size


class FrameSource(Protocol):
    """Whole inbound frames of one connection."""

    limit: int

    def next_nowait(self) -> bytes | Oversized | NeedMore:
        """The next buffered frame, an :class:`Oversized` marker, or NEED_MORE."""

    async def fill(self) -> bool:
        """Wait for more input; False once the input has ended."""


class LineSource:
    """JSON-lines frames from a byte stream read in chunks."""

    def __init__(self, read: Callable[[], Awaitable[bytes]], limit: int) -> None:
        self.limit = limit
        self._read = read
        self._chunk = b""
        self._pos = 0
        self._partial = bytearray()
        self._skipping = 0  # > 0 while discarding an oversized line
        self._eof = False

    def next_nowait(self) -> bytes | Oversized | NeedMore:
        chunk, limit = self._chunk, self.limit
        while True:
            start = self._pos
            end = chunk.find(b"\n", start)
            if end < 0:
                self._keep_tail(chunk, start)
                self._chunk, self._pos = b"", 0
                if self._eof:
                    return self._final()
                return NEED_MORE
            self._pos = end + 1
            if self._skipping:
                size, self._skipping = self._skipping + end - start, 0
                return Oversized(size)
            if self._partial:
                self._partial += chunk[start:end]
                line = bytes(self._partial)
                self._partial.clear()
            else:
                line = chunk[start:end]
            if len(line) > limit:
                return Oversized(len(line))
            if line and not line.isspace():
                return line

    def _keep_tail(self, chunk: bytes, start: int) -> None:
        rest = len(chunk) - start
        if rest <= 0:
            return
        if self._skipping:
            self._skipping += rest
        elif len(self._partial) + rest > self.limit:
            self._skipping = len(self._partial) + rest
            self._partial.clear()
        else:
            self._partial += chunk[start:]

    def _final(self) -> bytes | Oversized | NeedMore:
        # End of input: a partial last line is still a message.
        if self._skipping:
            size, self._skipping = self._skipping, 0
            return Oversized(size)
        if self._partial.strip():
            line = bytes(self._partial)
            self._partial.clear()
            return line
        self._partial.clear()
        return NEED_MORE

    async def fill(self) -> bool:
        if self._eof:
            return False
        chunk = await self._read()
        if not chunk:
            self._eof = True
            return bool(self._skipping or self._partial.strip())
        self._chunk, self._pos = chunk, 0
        return True
