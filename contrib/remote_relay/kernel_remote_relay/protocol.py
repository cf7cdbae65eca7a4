"""The relay side of the remote-control protocol (version 3): envelopes and chunks.

Relay → app-server envelopes (one JSON object per text frame):
``client_message {message}`` or, for a message whose envelope would exceed
:data:`SEGMENT_MAX_BYTES`, ``client_message_chunk`` pieces (base64 of
:data:`CHUNK_BYTES` raw bytes each); ``client_closed``; ``ping``; ``ack``
(every server envelope of the stream up to ``seq_id`` was delivered).
Each names its ``client_id`` and ``stream_id``. Messages and closes carry a
per-stream ``seq_id`` and a relay-wide ``cursor`` (20 digits, so that text
order is numeric order) that the app-server echoes in
``x-codex-subscribe-cursor`` when it reconnects.

App-server → relay: ``server_message {message}``, ``server_message_chunk``,
``pong {status}``, each with ``client_id``, ``stream_id`` and ``seq_id``.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

import orjson

__all__ = [
    "CHUNK_BYTES",
    "MISSING_SERVER",
    "PROTOCOL_VERSION",
    "SEGMENT_COUNT_MAX",
    "SEGMENT_MAX_BYTES",
    "ChunkJoiner",
    "ServerEnvelope",
    "TooBig",
    "ack_envelope",
    "client_message_envelopes",
    "closed_envelope",
    "format_cursor",
    "parse_cursor",
    "parse_server_envelope",
    "ping_envelope",
    "routing",
]

log = logging.getLogger("kernel_remote_relay.protocol")

PROTOCOL_VERSION = "3"
SEGMENT_MAX_BYTES = 150 * 1024
CHUNK_BYTES = 96 * 1024
SEGMENT_COUNT_MAX = 1024
MISSING_SERVER = "Remote app server not found"
"""The ``detail`` of a 404 that tells an app-server to enroll again."""

_SERVER_TYPES = frozenset({"server_message", "server_message_chunk", "pong", "ack"})


def routing(client_id: str, stream_id: str) -> bytes:
    """The ``client_id``/``stream_id`` members of a stream's envelopes, encoded once."""
    return b'"client_id":%s,"stream_id":%s' % (orjson.dumps(client_id), orjson.dumps(stream_id))


def format_cursor(cursor: int) -> str:
    """A cursor as sent: 20 zero-padded digits."""
    return f"{cursor:020d}"


def parse_cursor(text: str | None) -> int | None:
    """The cursor an app-server echoed, or None when absent or not a number."""
    if text is None:
        return None
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return value if value >= 0 else None


def client_message_envelopes(route: bytes, seq: int, cursor: str, message: bytes) -> list[bytes]:
    """``message`` (JSON text) as one ``client_message``, or as chunks when too large."""
    head = b'{"type":"client_message",%s,"seq_id":%d,"cursor":"%s","message":' % (
        route,
        seq,
        cursor.encode(),
    )
    if len(head) + len(message) + 1 <= SEGMENT_MAX_BYTES:
        return [head + message + b"}"]
    size = len(message)
    count = -(-size // CHUNK_BYTES)
    return [
        b'{"type":"client_message_chunk",%s,"seq_id":%d,"cursor":"%s","segment_id":%d,'
        b'"segment_count":%d,"message_size_bytes":%d,"message_chunk_base64":"%s"}'
        % (
            route,
            seq,
            cursor.encode(),
            index,
            count,
            size,
            base64.b64encode(message[index * CHUNK_BYTES : (index + 1) * CHUNK_BYTES]),
        )
        for index in range(count)
    ]


def closed_envelope(route: bytes, seq: int, cursor: str) -> bytes:
    """``client_closed``: the client's websocket ended."""
    return b'{"type":"client_closed",%s,"seq_id":%d,"cursor":"%s"}' % (route, seq, cursor.encode())


def ping_envelope(route: bytes) -> bytes:
    """``ping``: is this stream still served? (answered by ``pong``)."""
    return b'{"type":"ping",%s}' % route


def ack_envelope(route: bytes, seq: int) -> bytes:
    """``ack``: every server envelope of the stream up to ``seq`` was delivered."""
    return b'{"type":"ack",%s,"seq_id":%d}' % (route, seq)


class ServerEnvelope:
    """One app-server → relay envelope with its routing members checked."""

    __slots__ = ("client_id", "raw", "seq_id", "stream_id", "type")

    def __init__(
        self, kind: str, client_id: str, stream_id: str, seq_id: int, raw: dict[str, Any]
    ) -> None:
        self.type = kind
        self.client_id = client_id
        self.stream_id = stream_id
        self.seq_id = seq_id
        self.raw = raw


def parse_server_envelope(text: str | bytes) -> ServerEnvelope | str:
    """The envelope in ``text``, or why it is unusable."""
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return f"not JSON: {exc}"
    if type(raw) is not dict:
        return "not a JSON object"
    kind = raw.get("type")
    client_id, stream_id, seq_id = raw.get("client_id"), raw.get("stream_id"), raw.get("seq_id")
    if kind not in _SERVER_TYPES:
        return f"unknown envelope type {kind!r}"
    if type(client_id) is not str or type(stream_id) is not str:
        return "client_id and stream_id must be strings"
    if type(seq_id) is not int or seq_id < 0:
        return "seq_id: expected a non-negative integer"
    if kind == "server_message" and "message" not in raw:
        return "server_message without message"
    return ServerEnvelope(kind, client_id, stream_id, seq_id, raw)


class TooBig:
    """What :meth:`ChunkJoiner.observe` returns for a message larger than its limit."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size


class ChunkJoiner:
    """Joins one stream's ``server_message_chunk`` envelopes, in order.

    Anything inconsistent drops the partial message (logged); a new
    segment 0 starts over, which is what a replay after a reconnect sends.
    A message that declares more than ``limit`` bytes is not joined:
    :class:`TooBig` tells the caller, who must not leave its client waiting.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seq: int | None = None
        self._next = 0
        self._count = 0
        self._size = 0
        self._data = bytearray()

    def _reset(self) -> None:
        self._seq, self._next, self._data = None, 0, bytearray()

    def observe(self, envelope: ServerEnvelope) -> bytes | TooBig | None:
        """The whole message once its last chunk arrived, :class:`TooBig`, else None."""
        raw = envelope.raw
        segment, count = raw.get("segment_id"), raw.get("segment_count")
        size, piece = raw.get("message_size_bytes"), raw.get("message_chunk_base64")
        if (
            type(segment) is not int
            or type(count) is not int
            or type(size) is not int
            or type(piece) is not str
            or not 0 < count <= SEGMENT_COUNT_MAX
            or not 0 <= segment < count
            or size <= 0
        ):
            log.warning("dropping a malformed server chunk")
            self._reset()
            return None
        if size > self.limit:
            self._reset()
            return TooBig(size)
        if segment == 0:
            self._seq, self._next, self._count, self._size = envelope.seq_id, 0, count, size
            self._data = bytearray()
        if (self._seq, self._count, self._size, self._next) != (
            envelope.seq_id,
            count,
            size,
            segment,
        ):
            log.warning("dropping an out-of-order server chunk")
            self._reset()
            return None
        try:
            self._data += base64.b64decode(piece, validate=True)
        except (binascii.Error, ValueError):
            log.warning("dropping a server chunk with invalid base64")
            self._reset()
            return None
        self._next += 1
        if len(self._data) > size or (self._next == count and len(self._data) != size):
            log.warning("dropping a server message of the wrong size")
            self._reset()
            return None
        if self._next < count:
            return None
        data = bytes(self._data)
        self._reset()
        return data
