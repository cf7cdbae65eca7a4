"""Limits of the envelope layer that end-to-end tests cannot reach cheaply.

An answer larger than 1024 chunks (96 MiB) would need a 100 MiB message
through a live server; the partial-message cap needs many streams at once;
an ``initialize`` arriving while remote control is being disabled needs a
race. They are exercised here on the family's own objects, unpatched.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import orjson

from kernel.bootstrap import build_kernel
from kernel.framing import Oversized
from plugins_builtin.remote_control.outbound import Outbound
from plugins_builtin.remote_control.protocol import (
    CHUNK_BYTES,
    SEGMENT_COUNT_MAX,
    ClientEnvelope,
    Reassembler,
    parse_client_envelope,
    stream_prefix,
)

KEY = ("cli", "str")


async def test_an_answer_too_large_for_the_protocol_becomes_an_error() -> None:
    outbound = Outbound(window=4)
    outbound.open(KEY, stream_prefix(*KEY))
    payload = b"a" * (CHUNK_BYTES * SEGMENT_COUNT_MAX)
    assert outbound.offer(KEY, b'{"id":7,"result":"' + payload + b'"}')
    (frame,) = await outbound.take()
    envelope = orjson.loads(frame)
    assert (envelope["type"], envelope["seq_id"]) == ("server_message", 1)
    error = envelope["message"]["error"]
    assert envelope["message"]["id"] == 7 and error["code"] == -32603
    assert "larger than remote control can carry (100663296 bytes)" in error["message"]
    # A notification that large cannot be answered for: it is dropped, in order.
    assert outbound.offer(KEY, b'{"method":"x","params":"' + payload + b'"}')
    assert outbound.offer(KEY, b'{"method":"small"}')
    (frame,) = await outbound.take()
    assert orjson.loads(frame)["seq_id"] == 3 and orjson.loads(frame)["message"] == {
        "method": "small"
    }


def chunk(
    key: tuple[str, str], seq: int, index: int, count: int, size: int, data: bytes
) -> ClientEnvelope:
    envelope = {
        "type": "client_message_chunk",
        "client_id": key[0],
        "stream_id": key[1],
        "seq_id": seq,
        "segment_id": index,
        "segment_count": count,
        "message_size_bytes": size,
        "message_chunk_base64": base64.b64encode(data).decode(),
    }
    parsed = parse_client_envelope(orjson.dumps(envelope))
    assert not isinstance(parsed, str)
    return parsed


def test_partial_messages_are_bounded_in_bytes(caplog) -> None:
    caplog.set_level(logging.WARNING)
    joiner = Reassembler(limit=1000)  # holds at most 2000 bytes of partial messages
    for n in range(3):
        assert joiner.observe(chunk((f"c{n}", "s"), 1, 0, 2, 1000, b"x" * 900)) is None
    assert len(joiner) == 2 and joiner.buffered <= 2000
    assert "dropping a partial message for room" in caplog.text
    # The newest one completes; the oldest was dropped and its rest is refused.
    assert joiner.observe(chunk(("c2", "s"), 1, 1, 2, 1000, b"y" * 100)) == b"x" * 900 + b"y" * 100
    assert joiner.observe(chunk(("c0", "s"), 1, 1, 2, 1000, b"y" * 100)) is None
    # Over the limit: counted, not kept, reported as oversized.
    assert joiner.observe(chunk(("big", "s"), 1, 0, 2, 1500, b"z" * 800)) is None
    assert joiner.buffered <= 2000
    marker = joiner.observe(chunk(("big", "s"), 1, 1, 2, 1500, b"z" * 700))
    assert isinstance(marker, Oversized) and marker.size == 1500


def message(key: tuple[str, str], seq: int, body: dict[str, Any]) -> ClientEnvelope:
    envelope = {
        "type": "client_message",
        "client_id": key[0],
        "stream_id": key[1],
        "seq_id": seq,
        "message": body,
    }
    parsed = parse_client_envelope(orjson.dumps(envelope))
    assert not isinstance(parsed, str)
    return parsed


async def test_a_refused_initialize_again_forgets_the_stream(tmp_path) -> None:
    # While disabling, a second initialize on a stream is refused; the connection it
    # would have replaced still ends normally, so its stream is not kept forever.
    kernel = build_kernel(home=tmp_path / "home", plugins=["remote_control"])
    await kernel.start()
    try:
        clients = kernel.plugins.records["remote_control"].plugin.control.clients
        init = {
            "id": 1,
            "method": "initialize",
            "params": {"clientInfo": {"name": "c", "version": "1"}},
        }
        await clients.handle(message(KEY, 1, init))
        assert KEY in clients.outbound
        clients.accepting = False
        await clients.handle(message(KEY, 2, {**init, "id": 2}))
        sent: list[dict[str, Any]] = []
        async with asyncio.timeout(10):
            while not any(e["type"] == "pong" for e in sent):
                sent += [orjson.loads(frame) for frame in await clients.outbound.take()]
        assert [(e["type"], e.get("status")) for e in sent][-1] == ("pong", "unknown")
        assert KEY not in clients.outbound
    finally:
        await kernel.stop()
