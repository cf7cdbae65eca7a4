"""The ws:// listener over real sockets: probes, Origin, framing, keepalive, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import aiohttp
import orjson
import pytest

from kernel import RpcError
from kernel.client import Client, ProcessStream
from tests.conftest import CheckedStream, subprocess_env
from tests.support.network import start_listening
from tests.support.rawhttp import UPGRADE, http_get

INIT = {"id": 1, "method": "initialize", "params": {"clientInfo": {"name": "t", "version": "1"}}}


async def initialized(ws, checker) -> dict:
    """Send INIT on a raw websocket; the answer is checked against the reference schema."""
    await ws.send_str(orjson.dumps(INIT).decode())
    answer = (await ws.receive()).json()
    checker.check_server_frame(answer, {1: "initialize"})
    assert answer["id"] == 1 and "result" in answer
    return answer


async def test_health_probes_and_routes(listen):
    async with listen() as server:
        assert (await http_get(server.url(), "/healthz"))[0] == 200
        status, _, body = await http_get(server.url(), "/readyz")
        assert (status, body) == (200, "ready")
        assert (await http_get(server.url(), "/nope"))[0] == 404
        status, _, body = await http_get(server.url(), "/")
        assert (status, body) == (400, "expected a websocket upgrade request")
        assert (await http_get(server.url(), "/", UPGRADE))[0] == 101


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/", "/nope"])
async def test_any_request_with_an_origin_header_gets_403(listen, path):
    async with listen() as server:
        headers = {"Origin": "https://evil.example", **(UPGRADE if path == "/" else {})}
        status, _, _ = await http_get(server.url(), path, headers)
        assert status == 403
        assert "Origin header 'https://evil.example'" in server.log()


async def test_origin_is_refused_by_the_client_library_too(listen):
    async with listen() as server:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await server.connect(headers={"Origin": "http://localhost"})
        assert refused.value.status == 403


async def test_websocket_follows_the_same_protocol_rules_as_stdio(listen):
    async with listen() as server:
        client = await server.connect()
        with pytest.raises(RpcError) as early:
            await client.request("echo/echo", {"message": "x"})
        assert (early.value.code, early.value.message) == (-32600, "Not initialized")
        await client.initialize()
        assert await client.request("echo/echo", {"message": "hi"}) == {"message": "hi"}
        with pytest.raises(RpcError) as bad:
            await client.request("echo/echo", {"message": 5})
        assert bad.value.code == -32602 and "message: expected a string" in bad.value.message
        with pytest.raises(RpcError) as unknown:
            await client.request("nope/nope")
        assert unknown.value.code == -32601
        await client.send_raw("{not json")
        assert (await client.next_orphan())["error"]["code"] == -32700
        await client.send_raw('[{"id": 9, "method": "echo/echo"}]')
        assert (await client.next_orphan())["error"]["code"] == -32600
        # notifications and server→client requests travel the same way
        await client.request("probe/ticks", {"count": 3})
        ticks = [await client.next_notification("probe/tick") for _ in range(3)]
        assert [t.params["index"] for t in ticks] == [0, 1, 2]
        client.on_request("probe/question", lambda params: {"answer": params["question"] + "!"})
        assert await client.request("probe/ask", {"question": "ws"}) == {"answer": "ws!"}
        await client.close()
        await asyncio.sleep(0.2)
        assert any(e.startswith("closed ") for e in server.events())


async def test_pipelined_requests_each_get_one_answer(listen):
    async with listen() as server:
        client = await server.connect()
        await client.initialize()
        futures = [client.request_nowait("echo/echo", {"message": str(i)}) for i in range(20_000)]
        await client.drain()
        results = await asyncio.wait_for(asyncio.gather(*futures), 120)
        assert [r["message"] for r in results] == [str(i) for i in range(20_000)]
        await client.close()


async def test_binary_frame_closes_with_1003(listen, checker):
    async with listen() as server, aiohttp.ClientSession() as session:
        async with session.ws_connect(server.url()) as ws:
            await initialized(ws, checker)
            await ws.send_bytes(b'{"id": 2, "method": "echo/echo"}')
            closing = await ws.receive()
            assert closing.type is aiohttp.WSMsgType.CLOSE
            assert closing.data == aiohttp.WSCloseCode.UNSUPPORTED_DATA
            assert "binary frames are not supported" in closing.extra
        await asyncio.sleep(0.2)
        assert "sent a binary frame (32 bytes); closing with 1003" in server.log()


def echo_of_size(request_id: int, size: int) -> str:
    """An echo/echo request whose JSON text is exactly ``size`` bytes."""
    head = f'{{"id":{request_id},"method":"echo/echo","params":{{"message":"'
    text = head + "x" * (size - len(head) - 3) + '"}}'
    assert len(text.encode()) == size
    return text


async def test_a_message_of_exactly_the_size_limit_is_served_one_byte_more_closes_1009(
    listen, checker
):
    async with listen(args=["-c", "kernel.max_message_bytes=1000"]) as server:
        async with aiohttp.ClientSession() as session, session.ws_connect(server.url()) as ws:
            await initialized(ws, checker)
            exact = echo_of_size(2, 1000)  # stdio accepts this size too
            await ws.send_str(exact)
            answer = await ws.receive(timeout=30)
            assert answer.type is aiohttp.WSMsgType.TEXT, answer
            checker.check_server_frame(answer.json(), {2: "echo/echo"})
            assert answer.json()["result"] == orjson.loads(exact)["params"]
            await ws.send_str(echo_of_size(3, 1001))
            closing = await ws.receive(timeout=30)
            assert closing.type is aiohttp.WSMsgType.CLOSE
            assert closing.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
            assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
        await asyncio.sleep(0.2)
        reason = "closed with 1009: a message exceeded kernel.max_message_bytes (1000 bytes)"
        assert reason in server.log()


async def test_a_frame_far_over_the_limit_closes_with_1009_not_1006(listen, checker):
    # The client is still sending the frame when the server refuses it: the
    # close frame must reach it before the connection goes down.
    async with listen(args=["-c", "kernel.max_message_bytes=1000"]) as server:
        async with aiohttp.ClientSession() as session:
            for attempt in range(3):
                async with session.ws_connect(server.url()) as ws:
                    await initialized(ws, checker)
                    with contextlib.suppress(ConnectionError):
                        await ws.send_str(echo_of_size(2, 16 * 1024 * 1024))
                    closing = await ws.receive(timeout=30)
                    assert closing.type is aiohttp.WSMsgType.CLOSE, (attempt, closing)
                    assert closing.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
                    assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG, attempt
        # The server is unharmed.
        client = await server.connect()
        await client.initialize()
        assert await client.request("echo/echo", {"message": "ok"}) == {"message": "ok"}
        await client.close()


async def test_ping_is_answered_and_server_heartbeat_pings(listen):
    args = ["-c", "kernel.websocket_heartbeat_seconds=0.3"]
    async with listen(args=args) as server, aiohttp.ClientSession() as session:
        async with session.ws_connect(server.url(), autoping=False) as ws:
            await ws.ping(b"are you there")
            pong = await ws.receive(timeout=5)
            assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"are you there")
            ping = await ws.receive(timeout=5)
            assert ping.type is aiohttp.WSMsgType.PING
            # We never answer: the server gives up on us.
            while (msg := await ws.receive(timeout=5)).type is aiohttp.WSMsgType.PING:
                pass
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_a_client_that_stops_reading_is_dropped_after_send_timeout(listen, checker):
    args = ["-c", "kernel.send_timeout_seconds=1", "-c", "kernel.max_outbound_messages=8"]
    async with listen(args=args) as server, aiohttp.ClientSession() as session:
        ws = await session.ws_connect(server.url(), max_msg_size=0)
        await initialized(ws, checker)
        big = "y" * 65536
        for i in range(2000):  # ~130 MB of answers we never read
            try:
                await asyncio.wait_for(
                    ws.send_str(
                        orjson.dumps(
                            {"id": i + 2, "method": "echo/echo", "params": {"message": big}}
                        ).decode()
                    ),
                    2,
                )
            except (TimeoutError, ConnectionError):
                break
        async with asyncio.timeout(20):
            while "write failed: TimeoutError" not in server.log():
                await asyncio.sleep(0.1)
        await ws.close()
        # The server is unharmed: a new client is served.
        client = await server.connect()
        await client.initialize()
        assert await client.request("echo/echo", {"message": "still here"})
        await client.close()


async def test_shutdown_answers_in_flight_then_readyz_is_503(listen):
    async with listen(args=["-c", "kernel.shutdown_grace_seconds=5"]) as server:
        client = await server.connect()
        await client.initialize()
        slow = client.request_nowait("probe/sleep", {"ms": 1000, "label": "slow"})
        await client.drain()
        await asyncio.sleep(0.2)
        server.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.2)
        assert (await http_get(server.url(), "/readyz"))[0] == 503
        assert (await http_get(server.url(), "/healthz"))[0] == 200
        assert (await http_get(server.url(), "/", UPGRADE))[0] == 503
        assert await slow == {"label": "slow"}
        await client.wait_closed()
        await client.close()
        assert await asyncio.wait_for(server.process.wait(), 30) == 0


async def test_stdio_websocket_and_unix_listeners_in_one_process(tmp_path, short_tmp, checker):
    home = short_tmp / "home"
    argv = ["--listen", "stdio://", "--listen", "ws://127.0.0.1:0", "--listen", "unix://"]
    argv += ["--plugins", "probe,echo"]
    server = await start_listening(
        argv,
        subprocess_env(home),
        home,
        tmp_path / "multi.log",
        checker,
        stdin=asyncio.subprocess.PIPE,
    )
    await server.wait_listening(2)
    stdio = Client(CheckedStream(ProcessStream(server.process), checker))
    ws = await server.connect(server.url("ws"))
    unix = await server.connect(server.url("unix"))
    pids = set()
    for client in (stdio, ws, unix):
        await client.initialize()
        pids.add((await client.request("probe/state"))["pid"])
    assert pids == {server.process.pid}
    socket_path = server.url("unix")[len("unix://") :]
    assert os.path.exists(socket_path)
    # stdin EOF ends the stdio session and, as on stdio alone, the server.
    await ws.close()
    await unix.close()
    assert await stdio.close() == 0
    assert not os.path.exists(socket_path)
    assert not [v for s in server.streams for v in s.violations]  # type: ignore[attr-defined]


def test_non_loopback_listener_without_auth_refuses_to_start(tmp_path):
    from tests.test_cli import kernel

    out = kernel(tmp_path, "run", "--plugins", "echo,ws_auth", "--listen", "ws://0.0.0.0:0")
    assert out.returncode == 1
    assert "refusing to listen on non-loopback address 0.0.0.0:0 without authentication" in (
        out.stderr
    )
    assert "--ws-auth capability-token" in out.stderr  # the hint of the loaded auth plugin
    # Without an auth plugin the kernel names no plugin's flags.
    out = kernel(tmp_path, "run", "--plugins", "echo", "--listen", "ws://0.0.0.0:0")
    assert out.returncode == 1
    assert "no loaded plugin provides websocket authentication" in out.stderr
    assert "--ws-" not in out.stderr


def test_a_port_in_use_fails_startup_with_the_reason(tmp_path):
    import socket

    from tests.test_cli import kernel

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        out = kernel(tmp_path, "run", "--plugins", "echo", "--listen", f"ws://127.0.0.1:{port}")
    finally:
        taken.close()
    assert out.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: " in out.stderr
    assert "Traceback" not in out.stderr
