"""The relay package on its own: its side of the protocol, its credentials, its command.

The relay app runs in the test's loop; the test plays the app-server
(:class:`tests.support.remote_fake_server.FakeAppServer`) and the clients
(plain websockets), so each envelope the relay sends is seen exactly. Every
JSON-RPC frame a client reads, including the answers the relay makes itself,
is checked against the reference schema (:class:`CheckedClient`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import subprocess
import sys

import aiohttp
import orjson
import pytest
from kernel_remote_relay.credentials import client_token

from tests.protocol.checker import ProtocolChecker, ProtocolViolation
from tests.support.remote_fake_server import FakeAppServer, relay_app
from tests.support.remote_relay import CLIENT_SECRET, ENROLLMENT_SECRET

INIT = {"id": 1, "method": "initialize", "params": {"clientInfo": {"name": "c", "version": "1"}}}


@pytest.fixture
async def relay(tmp_path):
    async with relay_app(tmp_path / "state", server_grace_seconds=1.0) as url:
        yield url


@pytest.fixture
async def fake(relay):
    server = FakeAppServer(relay)
    await server.enroll()
    await server.connect()
    yield server
    await server.close()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


class CheckedClient:
    """A client websocket whose every text frame read is checked against the reference schema.

    Requests sent through :meth:`send` are remembered by id, so that an
    answer is checked as the result of its method; a violation raises
    (:class:`~tests.protocol.checker.ProtocolViolation`) and fails the test.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, checker: ProtocolChecker) -> None:
        self.ws = ws
        self.checker = checker
        self.pending: dict[object, str] = {}

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    @property
    def closed(self) -> bool:
        return self.ws.closed

    async def send(self, message: dict | str) -> None:
        """Send ``message`` (an object, or text sent as is: malformed on purpose)."""
        text = message if isinstance(message, str) else orjson.dumps(message).decode()
        with contextlib.suppress(orjson.JSONDecodeError):
            decoded = orjson.loads(text)
            if isinstance(decoded, dict) and "method" in decoded and "id" in decoded:
                self.pending[decoded["id"]] = decoded["method"]
        await self.ws.send_str(text)

    async def receive(self, timeout: float = 10.0) -> aiohttp.WSMessage:
        """The next websocket message; a text frame is checked first."""
        async with asyncio.timeout(timeout):
            message = await self.ws.receive()
        if message.type is aiohttp.WSMsgType.TEXT:
            self.checker.check_server_frame(orjson.loads(message.data), self.pending)
        return message

    async def recv(self, timeout: float = 10.0) -> dict:
        """The next JSON-RPC message (checked)."""
        message = await self.receive(timeout)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        return orjson.loads(message.data)

    async def close(self) -> None:
        await self.ws.close()


async def open_client(
    http: aiohttp.ClientSession, fake: FakeAppServer, checker: ProtocolChecker
) -> CheckedClient:
    token = client_token(CLIENT_SECRET.encode(), fake.ids["environment_id"])
    ws = await http.ws_connect(fake.client_url(), headers={"Authorization": f"Bearer {token}"})
    return CheckedClient(ws, checker)


async def test_client_messages_become_envelopes_replayed_after_the_cursor(fake, http, checker):
    client = await open_client(http, fake, checker)
    sent = []
    for message in (INIT, {"id": 2, "method": "a/b"}, {"id": 3, "method": "a/c"}):
        await client.send(message)
        envelope = await fake.recv()
        assert envelope["type"] == "client_message" and envelope["message"] == message
        sent.append(envelope)
    assert [e["seq_id"] for e in sent] == [1, 2, 3]
    assert len({e["client_id"] for e in sent} | {e["stream_id"] for e in sent}) == 2
    assert [int(e["cursor"]) for e in sent] == sorted(int(e["cursor"]) for e in sent)
    await fake.ws.close()
    await fake.connect(cursor=sent[0]["cursor"])  # it had processed only the first
    replayed = [await fake.recv(), await fake.recv()]
    assert replayed == sent[1:]
    await fake.ws.close()
    await fake.connect()  # a new process: nothing to replay
    with pytest.raises(TimeoutError):
        await fake.recv(timeout=0.5)


async def test_server_messages_are_delivered_once_and_acknowledged(fake, http, checker):
    client = await open_client(http, fake, checker)
    # Before initialize the relay answers as a direct connection would.
    await client.send('{"id": 7, "method": "fs/readFile", "params": {}}')
    assert await client.recv() == {
        "id": 7,
        "error": {"code": -32600, "message": "Not initialized"},
    }
    await client.send('{"method": "initialized"}')  # dropped
    await client.send("{not json")
    parse = await client.recv()
    assert parse["id"] is None and parse["error"]["code"] == -32700
    await client.send(INIT)
    init = await fake.recv()
    route = {"client_id": init["client_id"], "stream_id": init["stream_id"]}
    answer = {
        "id": 1,
        "result": {
            "codexHome": "/home/fake/.codex",
            "platformFamily": "unix",
            "platformOs": "linux",
            "userAgent": "x",
        },
    }
    await fake.send(type="server_message", seq_id=1, message=answer, **route)
    assert await client.recv() == answer
    assert await fake.recv() == {"type": "ack", "seq_id": 1, **route}
    await fake.send(type="server_message", seq_id=1, message=answer, **route)  # a replay
    assert await fake.recv() == {"type": "ack", "seq_id": 1, **route}
    with pytest.raises(TimeoutError):
        await client.recv(timeout=0.3)
    await client.send(INIT)
    assert (await client.recv())["error"]["message"] == "Already initialized"
    await fake.send(type="pong", seq_id=2, status="active", **route)
    assert await fake.recv() == {"type": "ack", "seq_id": 2, **route}


async def test_large_messages_are_chunked_both_ways(fake, http, checker):
    client = await open_client(http, fake, checker)
    await client.send(INIT)
    route = {k: v for k, v in (await fake.recv()).items() if k in ("client_id", "stream_id")}
    big = orjson.dumps({"id": 2, "method": "x/y", "params": {"blob": "z" * 400_000}})
    await client.send(big.decode())
    pieces = [await fake.recv()]
    while len(pieces) < pieces[0]["segment_count"]:
        pieces.append(await fake.recv())
    assert {p["type"] for p in pieces} == {"client_message_chunk"}
    assert [p["segment_id"] for p in pieces] == list(range(len(pieces)))
    assert all(len(orjson.dumps(p)) <= 150 * 1024 for p in pieces)
    assert b"".join(base64.b64decode(p["message_chunk_base64"]) for p in pieces) == big
    reply = orjson.dumps({"id": 2, "result": {"blob": "q" * 300_000}})
    size, step = len(reply), 96 * 1024
    count = -(-size // step)
    for index in range(count):
        await fake.send(
            type="server_message_chunk",
            seq_id=1,
            segment_id=index,
            segment_count=count,
            message_size_bytes=size,
            message_chunk_base64=base64.b64encode(
                reply[index * step : (index + 1) * step]
            ).decode(),
            **route,
        )
    assert orjson.dumps(await client.recv()) == reply
    assert await fake.recv() == {"type": "ack", "seq_id": 1, **route}


async def test_stream_ends_in_both_directions(fake, http, checker):
    leaving = await open_client(http, fake, checker)
    await leaving.send(INIT)
    route = {k: v for k, v in (await fake.recv()).items() if k in ("client_id", "stream_id")}
    await leaving.close()
    closed = await fake.recv()
    assert closed["type"] == "client_closed" and closed["seq_id"] == 2 and "cursor" in closed
    ended = await open_client(http, fake, checker)
    await ended.send(INIT)
    route = {k: v for k, v in (await fake.recv()).items() if k in ("client_id", "stream_id")}
    await fake.send(type="pong", seq_id=1, status="unknown", **route)
    async with asyncio.timeout(10):
        message = await ended.receive()
    assert message.type is aiohttp.WSMsgType.CLOSE and ended.close_code == 1001
    with pytest.raises(TimeoutError):  # the app-server ended it: no client_closed
        await fake.recv(timeout=0.3, skip=("ping", "ack"))
    ghost = {"client_id": "cli_gone", "stream_id": "str_gone"}
    await fake.send(type="server_message", seq_id=4, message={"id": 1, "result": {}}, **ghost)
    got = [await fake.recv(), await fake.recv()]
    assert {"type": "ack", "seq_id": 4, **ghost} in got
    assert {"type": "client_closed", **ghost} in got


async def test_clients_wait_for_a_returning_server_then_give_up(fake, http, checker):
    client = await open_client(http, fake, checker)
    await fake.ws.close()
    async with asyncio.timeout(10):
        message = await client.receive()
    assert message.type is aiohttp.WSMsgType.CLOSE and client.close_code == 1013
    with pytest.raises(aiohttp.WSServerHandshakeError) as offline:
        await open_client(http, fake, checker)
    assert offline.value.status == 503


async def test_bad_frames_from_a_client(tmp_path, http, checker):
    async with relay_app(None, max_message_bytes=1000) as url:
        fake = FakeAppServer(url)
        await fake.enroll()
        await fake.connect()
        try:
            binary = await open_client(http, fake, checker)
            await binary.ws.send_bytes(b"{}")
            assert (await binary.receive()).type is aiohttp.WSMsgType.CLOSE
            assert binary.close_code == 1003
            huge = await open_client(http, fake, checker)
            await huge.send("[" + "1," * 1000 + "1]")
            assert (await huge.receive()).type is aiohttp.WSMsgType.CLOSE
            assert huge.close_code == 1009
        finally:
            await fake.close()


async def test_server_credentials_are_checked(relay, http):
    fake = FakeAppServer(relay)
    try:
        ids = await fake.enroll()
        url = relay.replace("http", "ws", 1) + "/wham/remote/control/server"
        cases = [
            (fake.headers(**{"x-codex-protocol-version": "2"}), 400),
            (fake.headers(Authorization="Bearer rcs_wrong"), 401),
            (fake.headers(**{"x-codex-installation-id": "someone-else"}), 401),
            (fake.headers(**{"x-codex-server-id": "srv_unknown"}), 404),
            ({**fake.headers(), "Origin": "https://evil.example"}, 403),
        ]
        for headers, status in cases:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(url, headers=headers)
            assert refused.value.status == status
        async with http.get(
            url, headers=fake.headers(**{"x-codex-server-id": "srv_unknown"})
        ) as answer:
            assert await answer.json() == {"detail": "Remote app server not found"}
        refresh = f"{relay}/wham/remote/control/server/refresh"
        bearer = {"Authorization": f"Bearer {ENROLLMENT_SECRET}"}
        body = {"server_id": "srv_unknown", "installation_id": fake.installation_id}
        async with http.post(refresh, json=body, headers=bearer) as answer:
            assert answer.status == 404
        body["server_id"] = ids["server_id"]
        async with http.post(refresh, json=body, headers=bearer) as answer:
            fresh = await answer.json()
        assert fresh["environment_id"] == ids["environment_id"]
        old_token = ids["remote_control_token"]
        with pytest.raises(aiohttp.WSServerHandshakeError) as stale:
            await http.ws_connect(url, headers=fake.headers())  # still the old token
        assert stale.value.status == 401
        fake.ids = fresh
        first = await fake.connect()
        second = await http.ws_connect(url, headers=fake.headers())
        assert (await first.receive()).type is aiohttp.WSMsgType.CLOSE and first.close_code == 4000
        await second.close()
        # Enrolling the same installation again retires the old environment.
        await fake.enroll()
        assert fake.ids["environment_id"] != ids["environment_id"]
        old = FakeAppServer(relay)
        old.ids = {**fresh, "remote_control_token": old_token}
        with pytest.raises(aiohttp.WSServerHandshakeError) as retired:
            await old.connect()
        assert retired.value.status == 404
        await old.close()
    finally:
        await fake.close()


async def test_expired_server_tokens_are_refused(tmp_path, http):
    async with relay_app(None, token_ttl_seconds=0.2) as url:
        fake = FakeAppServer(url)
        await fake.enroll()
        await asyncio.sleep(0.4)
        with pytest.raises(aiohttp.WSServerHandshakeError) as expired:
            await fake.connect()
        assert expired.value.status == 401
        await fake.close()


async def test_enrollments_survive_a_relay_restart_and_the_command(tmp_path):
    state = tmp_path / "state"
    async with relay_app(state) as url:
        fake = FakeAppServer(url)
        ids = await fake.enroll()
        await fake.close()
    async with relay_app(state) as url:
        fake = FakeAppServer(url)
        fake.ids = ids
        await fake.connect()  # same token, same environment after a restart
        await fake.close()
    assert oct((state / "relay-state.json").stat().st_mode & 0o777) == "0o600"
    assert ids["remote_control_token"] not in (state / "relay-state.json").read_text()
    env = {**os.environ, "KERNEL_RELAY_CLIENT_SECRET": CLIENT_SECRET}
    command = [sys.executable, "-m", "kernel_remote_relay"]
    listed = subprocess.run(
        [*command, "environments", "--state-dir", str(state)], capture_output=True, text=True
    )
    assert listed.returncode == 0 and ids["environment_id"] in listed.stdout
    printed = subprocess.run(
        [*command, "client-token", ids["environment_id"]], capture_output=True, text=True, env=env
    )
    assert printed.stdout.strip() == client_token(CLIENT_SECRET.encode(), ids["environment_id"])


@pytest.mark.parametrize(
    ("enrollment", "client", "problem"),
    [
        (
            None,
            CLIENT_SECRET,
            "no enrollment secret: $KERNEL_RELAY_ENROLLMENT_SECRET is empty or unset",
        ),
        (
            ENROLLMENT_SECRET,
            None,
            "no client secret: $KERNEL_RELAY_CLIENT_SECRET is empty or unset",
        ),
        ("short", CLIENT_SECRET, "is shorter than 16 bytes"),
        (CLIENT_SECRET, CLIENT_SECRET, "the enrollment secret and the client secret must differ"),
    ],
)
def test_the_relay_refuses_to_start_without_proper_secrets(enrollment, client, problem):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERNEL_RELAY_")}
    if enrollment is not None:
        env["KERNEL_RELAY_ENROLLMENT_SECRET"] = enrollment
    if client is not None:
        env["KERNEL_RELAY_CLIENT_SECRET"] = client
    done = subprocess.run(
        [sys.executable, "-m", "kernel_remote_relay", "serve", "--listen", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert done.returncode == 2
    assert problem in done.stderr
    for secret in (enrollment, client):
        assert secret is None or secret == "short" or secret not in done.stderr


async def test_client_frames_are_checked_against_the_schema(fake, http, checker):
    client = await open_client(http, fake, checker)
    await client.send(INIT)
    route = {k: v for k, v in (await fake.recv()).items() if k in ("client_id", "stream_id")}
    # An initialize result without codexHome, platformFamily and platformOs.
    bad = {"id": 1, "result": {"userAgent": "x"}}
    await fake.send(type="server_message", seq_id=1, message=bad, **route)
    with pytest.raises(ProtocolViolation, match="result of initialize"):
        await client.recv()


async def test_a_server_message_above_the_limit_closes_its_client(tmp_path, http, checker):
    async with relay_app(None, max_message_bytes=200_000) as url:
        fake = FakeAppServer(url)
        await fake.enroll()
        await fake.connect()
        try:
            client = await open_client(http, fake, checker)
            await client.send(INIT)
            init = await fake.recv()
            route = {"client_id": init["client_id"], "stream_id": init["stream_id"]}
            reply = orjson.dumps({"id": 1, "result": {"blob": "q" * 300_000}})
            size, step = len(reply), 96 * 1024
            count = -(-size // step)
            for index in range(count):
                piece = reply[index * step : (index + 1) * step]
                await fake.send(
                    type="server_message_chunk",
                    seq_id=1,
                    segment_id=index,
                    segment_count=count,
                    message_size_bytes=size,
                    message_chunk_base64=base64.b64encode(piece).decode(),
                    **route,
                )
            # The client is not left waiting for an answer that never comes.
            assert (await client.receive()).type is aiohttp.WSMsgType.CLOSE
            assert client.close_code == 1009
            # ... and the app-server hears that the client left.
            while (envelope := await fake.recv(skip=("ping", "ack")))["type"] != "client_closed":
                pass
            assert {k: envelope[k] for k in route} == route
        finally:
            await fake.close()


async def test_a_client_that_floods_and_never_reads_is_closed(tmp_path, http, checker, caplog):
    # Requests before initialize are answered by the relay itself; answers with
    # 100 KB ids fill the socket's buffers soon, then the relay's own queue.
    caplog.set_level(logging.WARNING, "kernel_remote_relay")
    async with relay_app(None, backlog=4) as url:
        fake = FakeAppServer(url)
        await fake.enroll()
        await fake.connect()
        try:
            client = await open_client(http, fake, checker)
            padding = "x" * 100_000
            with contextlib.suppress(ConnectionError):
                for index in range(1000):
                    # (The relay runs in this loop.) Sending on after it gave up would
                    # have the client reset rather than closed.
                    if "answers wait unread; closing it" in caplog.text:
                        break
                    await client.send({"id": f"{index}-{padding}", "method": "a/b"})
            async with asyncio.timeout(10):
                while (message := await client.receive()).type is aiohttp.WSMsgType.TEXT:
                    pass
            assert message.type is aiohttp.WSMsgType.CLOSE and client.close_code == 1008
        finally:
            await fake.close()


def test_the_default_limit_takes_the_largest_message_an_app_server_sends():
    from kernel_remote_relay.hub import HubLimits

    from plugins_builtin.remote_control.protocol import CHUNK_BYTES, SEGMENT_COUNT_MAX

    assert HubLimits().max_message_bytes >= CHUNK_BYTES * SEGMENT_COUNT_MAX
