"""The relay protocol (version 3): envelopes between this server and a relay.

One websocket to the relay carries every remote client. Each text frame is
one JSON envelope with a ``type``, the ``client_id`` and ``stream_id`` of
the remote client it concerns (one client may open several streams; each
``(client_id, stream_id)`` is one connection here) and a per-stream
``seq_id``:

* relay → server: ``client_message {message}``, ``client_message_chunk``
  (a message too large for one frame, in base64 pieces), ``ack`` (the
  relay delivered every server envelope of the stream up to ``seq_id``,
  and ``segment_id`` of a chunked one), ``ping`` and ``client_closed``.
  The relay stamps a ``cursor`` on what it may replay; the server sends the
  highest one back in ``x-codex-subscribe-cursor`` when it reconnects.
* server → relay: ``server_message {message}``, ``server_message_chunk``
  and ``pong {status: "active" | "unknown"}``.

Frames stay under :data:`SEGMENT_MAX_BYTES`: a larger message is split into
chunks of :data:`CHUNK_BYTES` raw bytes, all with the message's ``seq_id``,
``segment_id`` 0..n-1, ``segment_count`` n and ``message_size_bytes``.
Envelopes are built by concatenating pre-encoded bytes: the message a
connection sends is already JSON, so it is never parsed again here.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections import OrderedDict
from typing import Any

import attrs
import orjson

from kernel.framing import Oversized

__all__ = [
    "CHUNK_BYTES",
    "PROTOCOL_VERSION",
    "SEGMENT_COUNT_MAX",
    "SEGMENT_MAX_BYTES",
    "ClientEnvelope",
    "Reassembler",
    "parse_client_envelope",
    "pong_envelope",
    "server_message_envelopes",
    "stream_prefix",
]

log = logging.getLogger("plugins.remote_control.protocol")

PROTOCOL_VERSION = "3"
SEGMENT_MAX_BYTES = 150 * 1024
"""The largest envelope either side sends in one frame."""
CHUNK_BYTES = 96 * 1024
"""Raw bytes per chunk: base64 makes 128 KiB, leaving room for the envelope."""
SEGMENT_COUNT_MAX = 1024
_ASSEMBLIES_MAX = 128

_CLIENT_TYPES = frozenset(
    {"client_message", "client_message_chunk", "ack", "ping", "client_closed"}
)


def stream_prefix(client_id: str, stream_id: str) -> bytes:
    """The routing members of one stream's server envelopes, encoded once."""
    return b'"client_id":%s,"stream_id":%s' % (orjson.dumps(client_id), orjson.dumps(stream_id))


def server_message_envelopes(prefix: bytes, seq_id: int, message: bytes) -> list[bytes]:
    """``message`` (encoded JSON) as one ``server_message``, or chunks when it is too large.

    Returns an empty list when even :data:`SEGMENT_COUNT_MAX` chunks cannot
    carry it; the caller answers that instead of sending nothing.
    """
    head = b'{"type":"server_message",%s,"seq_id":%d,"message":' % (prefix, seq_id)
    if len(head) + len(message) + 1 <= SEGMENT_MAX_BYTES:
        return [head + message + b"}"]
    size = len(message)
    count = -(-size // CHUNK_BYTES)
    if count > SEGMENT_COUNT_MAX:
        return []
    chunks = []
    for index in range(count):
        piece = base64.b64encode(message[index * CHUNK_BYTES : (index + 1) * CHUNK_BYTES])
        chunks.append(
            b'{"type":"server_message_chunk",%s,"seq_id":%d,"segment_id":%d,'
            b'"segment_count":%d,"message_size_bytes":%d,"message_chunk_base64":"%s"}'
            % (prefix, seq_id, index, count, size, piece)
        )
    return chunks


def pong_envelope(prefix: bytes, seq_id: int, status: str) -> bytes:
    """``pong`` with ``status`` ``active`` (the stream is served) or ``unknown``."""
    return b'{"type":"pong",%s,"seq_id":%d,"status":"%s"}' % (prefix, seq_id, status.encode())


@attrs.define
class ClientEnvelope:
    """One relay → server envelope, checked for the members its type needs."""

    type: str
    client_id: str
    stream_id: str
    seq_id: int | None
    cursor: str | None
    raw: dict[str, Any]


def parse_client_envelope(text: str | bytes) -> ClientEnvelope | str:
    """The envelope in ``text``, or why it is unusable (logged by the caller).

    A missing ``stream_id`` (older relays) means the client's single stream
    ``""``.
    """
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return f"not JSON: {exc}"
    if type(raw) is not dict:
        return "not a JSON object"
    kind, client_id = raw.get("type"), raw.get("client_id")
    if kind not in _CLIENT_TYPES:
        return f"unknown envelope type {kind!r}"
    if type(client_id) is not str or not client_id:
        return "client_id: expected a non-empty string"
    stream_id = raw.get("stream_id", "")
    if type(stream_id) is not str:
        return "stream_id: expected a string"
    seq_id = raw.get("seq_id")
    if seq_id is not None and (type(seq_id) is not int or seq_id < 0):
        return "seq_id: expected a non-negative integer"
    cursor = raw.get("cursor")
    if cursor is not None and type(cursor) is not str:
        return "cursor: expected a string"
    if kind == "client_message" and "message" not in raw:
        return "client_message without message"
    return ClientEnvelope(kind, client_id, stream_id, seq_id, cursor, raw)


@attrs.define
class _Assembly:
    seq_id: int
    count: int
    size: int
    limit: int
    next_segment: int = 0
    data: bytearray = attrs.Factory(bytearray)
    skipped: int = 0  # bytes counted but not kept (the message is over the limit)


class Reassembler:
    """Joins ``client_message_chunk`` envelopes back into whole messages.

    One message per stream is assembled at a time, in order; anything out
    of order, malformed or inconsistent drops the partial message with a
    warning (the relay's protocol has no way to ask again). At most 128
    partial messages, and twice ``limit`` bytes in all, are held; the least
    recently fed ones are dropped to make room. A message larger than
    ``limit`` is counted but not kept, and reported as
    :class:`kernel.framing.Oversized` so the connection answers the error
    it gives any oversized frame.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.max_buffered = 2 * limit
        self._assemblies: OrderedDict[tuple[str, str], _Assembly] = OrderedDict()

    @property
    def buffered(self) -> int:
        """Bytes held in partial messages."""
        return sum(len(a.data) for a in self._assemblies.values())

    def __len__(self) -> int:
        return len(self._assemblies)

    def forget(self, key: tuple[str, str]) -> None:
        """Drop the partial message of ``key`` (its stream ended)."""
        self._assemblies.pop(key, None)

    def _make_room(self, key: tuple[str, str], size: int) -> None:
        """Drop other partial messages, least recently fed first, until ``size`` more fit."""
        total = self.buffered
        for other in list(self._assemblies):
            if total + size <= self.max_buffered:
                return
            if other != key:
                log.warning("remote client %s/%s: dropping a partial message for room", *other)
                total -= len(self._assemblies.pop(other).data)

    def observe(self, envelope: ClientEnvelope) -> bytes | Oversized | None:
        """Feed one chunk; the whole message once its last chunk arrived, else None."""
        key = (envelope.client_id, envelope.stream_id)
        raw = envelope.raw
        segment, count = raw.get("segment_id"), raw.get("segment_count")
        size, piece = raw.get("message_size_bytes"), raw.get("message_chunk_base64")
        if (
            envelope.seq_id is None
            or type(segment) is not int
            or type(count) is not int
            or type(size) is not int
            or type(piece) is not str
            or not 0 < count <= SEGMENT_COUNT_MAX
            or not 0 <= segment < count
            or size <= 0
            or not piece
        ):
            log.warning("remote client %s/%s: dropping a malformed chunk", *key)
            self._assemblies.pop(key, None)
            return None
        assembly = self._assemblies.get(key)
        if assembly is None or segment == 0:
            if segment != 0:
                log.warning("remote client %s/%s: dropping a chunk without its start", *key)
                return None
            while len(self._assemblies) >= _ASSEMBLIES_MAX:
                self._assemblies.popitem(last=False)
            assembly = _Assembly(envelope.seq_id, count, size, self.limit)
            self._assemblies[key] = assembly
        if (assembly.seq_id, assembly.count, assembly.size) != (
            envelope.seq_id,
            count,
            size,
        ) or segment != assembly.next_segment:
            log.warning("remote client %s/%s: dropping an out-of-order chunk", *key)
            self._assemblies.pop(key, None)
            return None
        try:
            data = base64.b64decode(piece, validate=True)
        except (binascii.Error, ValueError):
            log.warning("remote client %s/%s: dropping a chunk with invalid base64", *key)
            self._assemblies.pop(key, None)
            return None
        received = len(assembly.data) + assembly.skipped + len(data)
        if received > size:
            log.warning("remote client %s/%s: dropping a chunk beyond the announced size", *key)
            self._assemblies.pop(key, None)
            return None
        if size > assembly.limit:
            assembly.skipped += len(data)
        else:
            self._make_room(key, len(data))
            assembly.data += data
        assembly.next_segment += 1
        self._assemblies.move_to_end(key)
        if assembly.next_segment < count:
            return None
        del self._assemblies[key]
        if received != size:
            log.warning("remote client %s/%s: dropping a message of the wrong size", *key)
            return None
        if size > assembly.limit:
            return Oversized(size)
        return bytes(assembly.data)
