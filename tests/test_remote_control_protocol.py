"""The relay protocol, envelope by envelope, against a scripted relay stand-in.

The test plays the relay: it accepts the server's websocket and sends
``client_message`` (and chunk, ping, ack, client_closed) envelopes itself,
so sequence numbers, acknowledgements, replay after a reconnect, per-stream
windows, chunking and the refusals can be checked exactly. Every message
the server sends inside an envelope is checked against the reference schema.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from tests.protocol.checker import ProtocolChecker
from tests.support.remote_backend import Answer, Backend, ServerSocket
from tests.support.remote_relay import server_args, server_env, wait_status

CHUNK = 96 * 1024
STATUS = "remoteControl/status/changed"


class Stream:
    """One remote client, spoken for by the test: envelopes out, checked messages in."""

    cursors = itertools.count(1)

    def __init__(self, sock: ServerSocket, checker: ProtocolChecker, name: str) -> None:
        self.sock = sock
        self.checker = checker
        self.key = (f"cli-{name}", f"str-{name}")
        self.seq = 0
        self.cursor = ""
        self.pending: dict[Any, str] = {}
        self.ids = itertools.count(1)

    def envelope(self, kind: str, seq: int | None = None, **members: Any) -> dict[str, Any]:
        self.cursor = f"{next(self.cursors):020d}"
        if seq is None:
            self.seq += 1
            seq = self.seq
        return {
            "type": kind,
            "client_id": self.key[0],
            "stream_id": self.key[1],
            "seq_id": seq,
            "cursor": self.cursor,
            **members,
        }

    async def send(self, message: dict[str, Any], seq: int | None = None) -> None:
        if "method" in message and "id" in message:
            self.pending[message["id"]] = message["method"]
        await self.sock.send(**self.envelope("client_message", seq, message=message))

    async def request(self, method: str, params: Any = None, seq: int | None = None) -> int:
        request_id = next(self.ids)
        message: dict[str, Any] = {"id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(message, seq)
        return request_id

    async def initialize(self) -> dict[str, Any]:
        request_id = await self.request(
            "initialize",
            {
                "clientInfo": {"name": "relay-test", "version": "1"},
                "capabilities": {"experimentalApi": True, "optOutNotificationMethods": [STATUS]},
            },
        )
        answer = await self.recv()
        assert answer["message"]["id"] == request_id and "result" in answer["message"]
        await self.send({"method": "initialized"})
        return answer

    async def ack(self, seq: int, segment: int | None = None) -> None:
        members = {} if segment is None else {"segment_id": segment}
        await self.sock.send(
            type="ack", client_id=self.key[0], stream_id=self.key[1], seq_id=seq, **members
        )

    async def control(self, kind: str) -> None:
        await self.sock.send(type=kind, client_id=self.key[0], stream_id=self.key[1])

    def check(self, message: Any) -> None:
        self.checker.check_server_frame(message, self.pending)

    async def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        """The stream's next envelope; a message inside is checked against the schema."""
        envelope = await self.sock.recv_for(self.key, timeout)
        if envelope["type"] == "server_message":
            self.check(envelope["message"])
        return envelope


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    async with Backend() as stand_in:
        yield stand_in


@contextlib.asynccontextmanager
async def remote_server(serve, backend, *overrides: str, plugins=("remote_control", "fs")):
    """A server connected to the stand-in; yields (served, first socket)."""
    args = [*server_args(backend.url, *overrides), "--remote-control"]
    async with serve(plugins=plugins, args=args, env=server_env()) as served:
        await served.client.initialize(experimental=True)
        sock = await backend.socket()
        yield served, sock


async def test_acknowledged_envelopes_are_not_replayed_and_the_rest_are(serve, backend, checker):
    async with remote_server(serve, backend) as (_served, sock):
        stream = Stream(sock, checker, "a")
        first = await stream.initialize()
        assert (first["type"], first["seq_id"]) == ("server_message", 1)
        await stream.request("fs/getMetadata", {"path": "/"})
        second = await stream.recv()
        assert second["seq_id"] == 2 and second["message"]["result"]["isDirectory"] is True
        await sock.close()  # the relay goes away without acknowledging anything
        sock = await backend.socket()
        assert sock.headers["x-codex-subscribe-cursor"] == stream.cursor
        stream.sock = sock
        replayed = [await stream.recv(), await stream.recv()]
        assert [(e["seq_id"], e["message"]) for e in replayed] == [
            (1, first["message"]),
            (2, second["message"]),
        ]
        await stream.ack(2)
        await stream.request("fs/getMetadata", {"path": "/tmp"})
        third = await stream.recv()
        assert third["seq_id"] == 3
        await sock.close()
        sock = await backend.socket()
        stream.sock = sock
        assert (await stream.recv())["seq_id"] == 3  # only what was not acknowledged
        assert await sock.nothing_for(0.5) == []


async def test_replayed_client_messages_are_skipped(serve, backend, checker):
    async with remote_server(serve, backend) as (_served, sock):
        stream = Stream(sock, checker, "a")
        await stream.initialize()
        await stream.request("fs/getMetadata", {"path": "/"}, seq=5)
        await stream.request("fs/getMetadata", {"path": "/"}, seq=5)  # a replay
        await stream.request("fs/getMetadata", {"path": "/"}, seq=4)  # older still
        await stream.request("fs/getMetadata", {"path": "/"}, seq=6)
        answers = [(await stream.recv())["message"]["id"] for _ in range(2)]
        assert answers == [1 + 1, 1 + 4]
        assert await sock.nothing_for(0.5) == []


async def test_pings_unknown_streams_and_client_closed(serve, backend, checker):
    async with remote_server(serve, backend) as (served, sock):
        ghost = Stream(sock, checker, "ghost")
        await ghost.control("ping")
        pong = await ghost.recv()
        assert (pong["type"], pong["status"]) == ("pong", "unknown")
        await ghost.request("fs/getMetadata", {"path": "/"})  # never initialized
        assert (await ghost.recv())["status"] == "unknown"
        stream = Stream(sock, checker, "a")
        await stream.initialize()
        await stream.control("ping")
        pong = await stream.recv()
        assert (pong["type"], pong["status"], pong["seq_id"]) == ("pong", "active", 2)
        await sock.send(**stream.envelope("client_closed"))
        closed = await stream.recv()
        assert (closed["type"], closed["status"]) == ("pong", "unknown")
        async with asyncio.timeout(10):
            while "ended: remote client closed" not in served.log():
                await asyncio.sleep(0.05)
        await stream.control("ping")
        assert (await stream.recv())["status"] == "unknown"
        # Garbage from the relay is logged and skipped; the socket stays usable.
        for junk in (
            "not json",
            "[1]",
            '{"type": "teleport", "client_id": "x"}',
            '{"type": "ping"}',
        ):
            await sock.send_raw(junk)
        await ghost.control("ping")
        assert (await ghost.recv())["status"] == "unknown"
        assert "dropping an unusable envelope from the relay" in served.log()


def chunks(stream: Stream, message: bytes, seq: int | None = None) -> list[dict[str, Any]]:
    if seq is None:
        stream.seq += 1
        seq = stream.seq
    count = -(-len(message) // CHUNK)
    return [
        stream.envelope(
            "client_message_chunk",
            seq,
            segment_id=index,
            segment_count=count,
            message_size_bytes=len(message),
            message_chunk_base64=base64.b64encode(
                message[index * CHUNK : (index + 1) * CHUNK]
            ).decode(),
        )
        for index in range(count)
    ]


async def test_large_messages_are_chunked_both_ways(serve, backend, checker, tmp_path):
    async with remote_server(serve, backend) as (served, sock):
        stream = Stream(sock, checker, "a")
        await stream.initialize()
        data = os.urandom(300_000)
        path = tmp_path / "big"
        write = {
            "id": 50,
            "method": "fs/writeFile",
            "params": {"path": str(path), "dataBase64": base64.b64encode(data).decode()},
        }
        stream.pending[50] = "fs/writeFile"
        pieces = chunks(stream, orjson.dumps(write))
        assert len(pieces) == 5
        # Out of order: the partial message is dropped, nothing is answered.
        await sock.send(**pieces[1])
        for piece in pieces:
            await sock.send(**piece)
        answer = await stream.recv()
        assert answer["message"] == {"id": 50, "result": {}}
        assert path.read_bytes() == data
        read_id = await stream.request("fs/readFile", {"path": str(path)})
        first = await stream.recv()
        assert first["type"] == "server_message_chunk" and first["segment_id"] == 0
        joined = [first] + [await stream.recv() for _ in range(first["segment_count"] - 1)]
        assert [p["segment_id"] for p in joined] == list(range(first["segment_count"]))
        assert {p["seq_id"] for p in joined} == {first["seq_id"]}
        raw = b"".join(base64.b64decode(p["message_chunk_base64"]) for p in joined)
        assert len(raw) == first["message_size_bytes"]
        message = orjson.loads(raw)
        stream.check(message)
        assert message["id"] == read_id
        assert base64.b64decode(message["result"]["dataBase64"]) == data
        assert all(len(orjson.dumps(p)) <= 150 * 1024 for p in joined)
        assert "dropping a chunk without its start" in served.log()


async def test_an_oversized_chunked_message_is_answered(serve, backend, checker):
    async with remote_server(
        serve, backend, "kernel.max_message_bytes=200000", plugins=("remote_control",)
    ) as (_served, sock):
        stream = Stream(sock, checker, "a")
        await stream.initialize()
        padding = "A" * 250_000
        big = orjson.dumps({"id": 9, "method": "remoteControl/status/read", "params": padding})
        for piece in chunks(stream, big):
            await sock.send(**piece)
        error = (await stream.recv())["message"]["error"]
        assert error["code"] == -32600
        assert error["message"] == (
            f"Invalid request: message of {len(big)} bytes exceeds the limit of 200000 bytes"
        )


async def test_windows_are_per_stream(serve, backend, checker):
    async with remote_server(
        serve, backend, "kernel_plugins.remote_control.unacked_messages_per_client=3"
    ) as (_served, sock):
        slow, fast = Stream(sock, checker, "slow"), Stream(sock, checker, "fast")
        await slow.initialize()  # seq 1
        ids = [await slow.request("fs/getMetadata", {"path": "/"}) for _ in range(6)]
        got = [await slow.recv(), await slow.recv()]  # seq 2 and 3 fill the window
        assert [e["seq_id"] for e in got] == [2, 3]
        await fast.initialize()
        for _ in range(5):
            await fast.request("fs/getMetadata", {"path": "/"})
            (await fast.recv())  # the fast stream acknowledges and keeps flowing
            await fast.ack(fast.seq)
        assert [e for e in await sock.nothing_for(0.5) if e["client_id"] == slow.key[0]] == []
        await slow.ack(3)
        got += [await slow.recv() for _ in range(3)]
        await slow.ack(6)
        got += [await slow.recv() for _ in range(1)]
        assert [e["seq_id"] for e in got] == [2, 3, 4, 5, 6, 7]
        # Answers leave in completion order (handlers run concurrently), each once.
        assert sorted(e["message"]["id"] for e in got) == ids


async def test_an_overloaded_remote_connection_answers_every_request(serve, backend, checker):
    settings = (
        "kernel_plugins.remote_control.unacked_messages_per_client=1",
        "kernel_plugins.remote_control.inbound_backlog=2",
        "kernel.max_outbound_messages=1",
        "kernel.max_in_flight=1",
        "kernel.overload_timeout_seconds=30",
    )
    async with remote_server(serve, backend, *settings) as (_served, sock):
        stream = Stream(sock, checker, "a")
        await stream.initialize()
        await stream.ack(1)
        ids = [await stream.request("fs/getMetadata", {"path": "/"}) for _ in range(30)]
        answers: dict[int, dict[str, Any]] = {}
        async with asyncio.timeout(30):
            while len(answers) < len(ids):
                envelope = await stream.recv()
                message = envelope["message"]
                assert message["id"] not in answers, "answered twice"
                answers[message["id"]] = message
                await stream.ack(envelope["seq_id"])
        assert sorted(answers) == ids
        refused = [m for m in answers.values() if "error" in m]
        assert refused and all(m["error"]["code"] == -32001 for m in refused)
        assert any("result" in m for m in answers.values())


async def test_a_refused_token_is_refreshed(serve, backend):
    backend.upgrade_refusals.append(Answer(401, "expired"))
    args = [*server_args(backend.url), "--remote-control"]
    async with serve(plugins=("remote_control",), args=args, env=server_env()) as served:
        await served.client.initialize(experimental=True)
        sock = await backend.socket()
        status = await wait_status(served.client, "connected")
        _, environment_id, token = backend.enrolled[-1]
        assert status["environmentId"] == environment_id
        assert sock.headers["Authorization"] == f"Bearer {token}" and "refreshed" in token
        assert backend.paths() == [
            "/wham/remote/control/server/enroll",
            "/wham/remote/control/server",
            "/wham/remote/control/server/refresh",
            "/wham/remote/control/server",
        ]
        assert "websocket auth failed with HTTP 401" in served.log()


async def test_only_the_relays_word_starts_a_new_enrollment(serve, backend):
    backend.upgrade_refusals.append(Answer(404, "nothing here"))
    backend.upgrade_refusals.append(Answer(404, {"detail": "Remote app server not found"}))
    args = [*server_args(backend.url), "--remote-control"]
    async with serve(plugins=("remote_control",), args=args, env=server_env()) as served:
        await served.client.initialize(experimental=True)
        await backend.socket()
        seen = []
        async with asyncio.timeout(30):
            while not seen or seen[-1] != "connected":
                note = await served.client.next_notification(STATUS)
                seen.append(note.params["status"])
                if note.params["status"] == "connected":
                    final = note.params["environmentId"]
        first, second = backend.enrolled[0][1], backend.enrolled[-1][1]
        assert first != second and final == second
        # The plain 404 kept the enrollment; the explicit one replaced it.
        assert backend.paths().count("/wham/remote/control/server/enroll") == 2
        assert "errored" in seen


async def test_idle_streams_and_unfinished_handshakes_are_closed(serve, backend, checker):
    settings = (
        # Longer than the handshake timeout: the stuck stream must end by the
        # handshake rule, not by the idle sweep.
        "kernel_plugins.remote_control.idle_timeout_seconds=2",
        "kernel.handshake_timeout_seconds=1",
    )
    async with remote_server(serve, backend, *settings) as (served, sock):
        idle = Stream(sock, checker, "idle")
        await idle.initialize()
        pong = await idle.recv(timeout=10)
        assert (pong["type"], pong["status"]) == ("pong", "unknown")
        stuck = Stream(sock, checker, "stuck")
        await stuck.request("initialize", {"clientInfo": "not an object"})
        error = await stuck.recv()
        assert error["message"]["error"]["code"] == -32602
        pong = await stuck.recv(timeout=10)
        assert (pong["type"], pong["status"]) == ("pong", "unknown")
        assert "did not complete initialize within 1 s" in served.log()


async def test_max_clients_refuses_extra_streams(serve, backend, checker):
    async with remote_server(serve, backend, "kernel_plugins.remote_control.max_clients=1") as (
        served,
        sock,
    ):
        await Stream(sock, checker, "one").initialize()
        extra = Stream(sock, checker, "two")
        await extra.request("initialize", {"clientInfo": {"name": "x", "version": "1"}})
        pong = await extra.recv()
        assert (pong["type"], pong["status"]) == ("pong", "unknown")
        assert "1 already open" in served.log()


async def test_initialize_again_replaces_the_connection(serve, backend, checker):
    async with remote_server(serve, backend) as (served, sock):
        stream = Stream(sock, checker, "a")
        await stream.initialize()
        again = await stream.initialize()  # a fresh connection on the same stream
        assert again["seq_id"] == 2  # the stream's sequence carries on
        await stream.request("fs/getMetadata", {"path": "/"})
        answer = await stream.recv()
        assert answer["seq_id"] == 3 and answer["message"]["result"]["isDirectory"]
        async with asyncio.timeout(10):
            while "ended: replaced by a new initialize" not in served.log():
                await asyncio.sleep(0.05)
        assert await sock.nothing_for(0.3) == []  # the old connection's end says nothing


async def test_a_client_flooding_notifications_is_dropped(serve, backend, checker):
    settings = (
        "kernel_plugins.remote_control.unacked_messages_per_client=1",
        "kernel_plugins.remote_control.inbound_backlog=2",
        "kernel.max_outbound_messages=1",
        "kernel.max_in_flight=1",
        "kernel.overload_timeout_seconds=30",
    )
    async with remote_server(serve, backend, *settings) as (served, sock):
        stream = Stream(sock, checker, "a")
        await stream.initialize()  # its answer holds the only window slot: nothing is read
        for _ in range(6):
            await stream.request("fs/getMetadata", {"path": "/"})
        for _ in range(20):
            await stream.send({"method": "initialized"})
        async with asyncio.timeout(10):
            while True:
                envelope = await stream.recv()
                if envelope["type"] == "pong":
                    break
        assert envelope["status"] == "unknown"
        assert "unread messages; dropping it" in served.log()


async def test_a_client_flooding_requests_it_never_reads_is_dropped(serve, backend, checker):
    # Past the inbound backlog requests are refused above the outbox's bound; a
    # client that reads none of them must not grow the server's memory without end.
    settings = (
        "kernel_plugins.remote_control.unacked_messages_per_client=1",
        "kernel_plugins.remote_control.inbound_backlog=2",
        "kernel.max_outbound_messages=1",
        "kernel.max_in_flight=1",
        "kernel.overload_timeout_seconds=30",
    )
    async with remote_server(serve, backend, *settings) as (served, sock):
        stream = Stream(sock, checker, "a")
        await stream.initialize()  # its answer holds the only window slot: nothing is read
        # At most 257 refusals wait in the outbox, and its writer holds one batch of no
        # more (taken whenever it first ran): 800 requests are well past both.
        for _ in range(800):
            await stream.request("fs/getMetadata", {"path": "/"})
        async with asyncio.timeout(10):
            while True:
                envelope = await stream.recv()
                if envelope["type"] == "pong":
                    break
        assert envelope["status"] == "unknown"
        assert "reads nothing back" in served.log()
