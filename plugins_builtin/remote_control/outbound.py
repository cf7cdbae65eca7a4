"""Server → relay envelopes: sequence numbers, per-stream windows, replay after reconnect.

Every envelope of a stream gets the next ``seq_id`` and stays here until
the relay acknowledges it, so a dropped websocket loses nothing: after a
reconnect :meth:`Outbound.rewind` queues every unacknowledged envelope
again, in order, and the relay discards the ones it had already delivered.

Flow control is per stream (one remote connection): at most ``window``
messages may wait for their ack. A full window makes
:meth:`Outbound.offer` refuse until :meth:`Outbound.wait_room` returns, which stops
that connection's writer and, through the kernel's bounded outbox, its
handlers; other remote connections keep flowing. (The reference bounds all
streams together, so one client that stops reading stalls every other.)
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

import orjson

from kernel.rpc.codec import encode_error
from kernel.rpc.errors import RpcError, internal_error

from .protocol import CHUNK_BYTES, SEGMENT_COUNT_MAX, pong_envelope, server_message_envelopes

__all__ = ["Key", "Outbound"]

log = logging.getLogger("plugins.remote_control.outbound")

Key = tuple[str, str]
"""A stream: ``(client_id, stream_id)``."""

_MAX_CARRIED = CHUNK_BYTES * SEGMENT_COUNT_MAX


class _Entry:
    """One envelope waiting for its ack."""

    __slots__ = ("counts", "frame", "segment", "seq")

    def __init__(self, seq: int, segment: int, counts: bool, frame: bytes) -> None:
        self.seq = seq
        self.segment = segment
        self.counts = counts  # the last envelope of a message: frees a window slot when acked
        self.frame = frame


class _Stream:
    __slots__ = ("gone", "in_flight", "next_seq", "prefix", "room", "unacked")

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self.next_seq = 1
        self.unacked: deque[_Entry] = deque()
        self.in_flight = 0  # messages sent or queued, not yet acknowledged
        self.room = asyncio.Event()
        self.room.set()
        self.gone = False


def _too_large(message: bytes) -> bytes | None:
    """What replaces a message no number of chunks can carry: an error, if it was an answer."""
    try:
        decoded = orjson.loads(message)
    except orjson.JSONDecodeError:
        return None
    if type(decoded) is not dict or "id" not in decoded or "method" in decoded:
        return None
    return encode_error(
        decoded["id"],
        RpcError(
            internal_error().code,
            f"the answer ({len(message)} bytes) is larger than remote control can carry "
            f"({_MAX_CARRIED} bytes)",
        ),
    )


class Outbound:
    """Envelopes for the relay: what to write next and what awaits an ack."""

    def __init__(self, window: int) -> None:
        self.window = window
        self._streams: dict[Key, _Stream] = {}
        self._queue: deque[bytes] = deque()
        self._ready = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()

    # -- streams ---------------------------------------------------------------------------

    def open(self, key: Key, prefix: bytes) -> None:
        """Start sequencing ``key``; a stream taken over by a new connection carries on."""
        if key not in self._streams:
            self._streams[key] = _Stream(prefix)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is sequenced here (opened and not forgotten): what a stream holds."""
        return key in self._streams

    def forget(self, key: Key) -> None:
        """``key`` ended: stop replaying it and release anyone waiting for its window.

        Envelopes already queued are still written once; nothing of the
        stream is replayed after a reconnect.
        """
        stream = self._streams.pop(key, None)
        if stream is not None:
            stream.gone = True
            stream.room.set()

    # -- producing -------------------------------------------------------------------------

    def offer(self, key: Key, message: bytes) -> bool:
        """Queue ``message`` if the stream's window has room; False: :meth:`wait_room`, retry.

        A message for a stream that is gone is dropped (True): its peer left.
        """
        stream = self._streams.get(key)
        if stream is None:
            return True
        if stream.in_flight >= self.window:
            return False
        self._push(stream, message)
        return True

    async def wait_room(self, key: Key) -> None:
        """Return once the stream's window has room (or the stream is gone)."""
        stream = self._streams.get(key)
        while stream is not None and not stream.gone and stream.in_flight >= self.window:
            stream.room.clear()
            await stream.room.wait()

    def pong(self, key: Key, prefix: bytes, status: str) -> None:
        """Queue a ``pong``; it takes no window slot (the relay asked, or the stream ended)."""
        stream = self._streams.get(key)
        if stream is None:
            # Not a stream of ours: sequence it alone, it is never replayed.
            self._enqueue(pong_envelope(prefix, 1, status))
            return
        seq = stream.next_seq
        stream.next_seq += 1
        frame = pong_envelope(stream.prefix, seq, status)
        stream.unacked.append(_Entry(seq, 0, False, frame))
        self._enqueue(frame)

    def _push(self, stream: _Stream, message: bytes) -> None:
        seq = stream.next_seq
        stream.next_seq += 1
        frames = server_message_envelopes(stream.prefix, seq, message)
        if not frames:
            replacement = _too_large(message)
            log.warning(
                "a %d-byte message exceeds what remote control can carry; %s",
                len(message),
                "answered with an error instead" if replacement else "dropped",
            )
            if replacement is None:
                return
            frames = server_message_envelopes(stream.prefix, seq, replacement)
        last = len(frames) - 1
        for index, frame in enumerate(frames):
            stream.unacked.append(_Entry(seq, index, index == last, frame))
            self._enqueue(frame)
        stream.in_flight += 1

    def _enqueue(self, frame: bytes) -> None:
        self._queue.append(frame)
        self._empty.clear()
        self._ready.set()

    # -- the relay's side ------------------------------------------------------------------

    def ack(self, key: Key, seq_id: int, segment_id: int | None) -> None:
        """The relay delivered ``key``'s envelopes up to ``seq_id`` (and ``segment_id``)."""
        stream = self._streams.get(key)
        if stream is None:
            return
        upto = (seq_id, segment_id if segment_id is not None else SEGMENT_COUNT_MAX)
        unacked = stream.unacked
        while unacked and (unacked[0].seq, unacked[0].segment) <= upto:
            entry = unacked.popleft()
            if entry.counts:
                stream.in_flight -= 1
        if stream.in_flight < self.window:
            stream.room.set()

    def rewind(self) -> int:
        """After a reconnect: queue every unacknowledged envelope again; returns how many."""
        self._queue = deque(e.frame for s in self._streams.values() for e in s.unacked)
        if self._queue:
            self._empty.clear()
            self._ready.set()
        else:
            self._empty.set()
        return len(self._queue)

    # -- the writer ------------------------------------------------------------------------

    async def take(self, limit: int = 256) -> list[bytes]:
        """The next envelopes to write (at least one), oldest first."""
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        queue = self._queue
        batch = [queue.popleft() for _ in range(min(limit, len(queue)))]
        if not queue:
            self._empty.set()
        return batch

    async def wait_written(self, timeout: float) -> bool:
        """Wait until the writer took everything queued; False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                await self._empty.wait()
        except TimeoutError:
            return False
        return True
