"""Network listeners under hostile clients, over real sockets.

Malformed request heads must not echo or log header values (a bearer token
is one); unfinished heads, silent websockets and connection floods must not
hold the server's descriptors; only GET upgrades.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import pytest

from tests.support.rawhttp import UPGRADE, http_get, open_raw, read_until_closed

TOKEN = "capability-token-SECRET-4f9a1c"
PLUGINS = ("ws_auth", "probe", "echo")
UPGRADE_LINES = "".join(f"{name}: {value}\r\n" for name, value in UPGRADE.items())
AUTH = f"Authorization: Bearer {TOKEN}"

# Request heads aiohttp's parsers refuse; each carries the token in a
# header, and the parser's error message quotes the offending bytes.
MALFORMED = {
    "bare LF line endings": (
        "GET / HTTP/1.1\nHost: x\n" + UPGRADE_LINES.replace("\r\n", "\n") + AUTH + "\n\n"
    ),
    "NUL in the token": f"GET / HTTP/1.1\r\nHost: x\r\n{UPGRADE_LINES}{AUTH}\x00\r\n\r\n",
    "obs-fold continuation": (
        f"GET / HTTP/1.1\r\nHost: x\r\n{UPGRADE_LINES}Authorization: Bearer\r\n {TOKEN}\r\n\r\n"
    ),
    "bare LF after the token": f"GET / HTTP/1.1\r\nHost: x\r\n{AUTH}\nX-Next: y\r\n\r\n",
    "control character in a name": f"GET / HTTP/1.1\r\nHost: x\r\nX\x01{AUTH}\r\n\r\n",
    "header line too long": f"GET / HTTP/1.1\r\nHost: x\r\n{AUTH}{'p' * 9000}\r\n\r\n",
}


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


def _split(response: bytes) -> tuple[int, bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.parametrize("parser", ["c", "python"])
async def test_malformed_request_heads_neither_echo_nor_log_header_values(
    listen, token_file, parser
):
    args = ["--ws-auth", "capability-token", "--ws-token-file", str(token_file)]
    env = {"AIOHTTP_NO_EXTENSIONS": "1"} if parser == "python" else None
    async with listen(plugins=PLUGINS, args=args, env=env) as server:
        answers = {}
        for name, head in MALFORMED.items():
            reader, writer, _ = await open_raw(server.url())
            writer.write(head.encode("latin-1"))
            answers[name] = await read_until_closed(reader)
            writer.close()
        await asyncio.sleep(0.2)
        leaked = {name: answer for name, answer in answers.items() if TOKEN.encode() in answer}
        logged = [line for line in server.log().splitlines() if TOKEN in line]
        assert (leaked, logged) == ({}, [])
        refused = {name: _split(answer) for name, answer in answers.items() if answer}
        assert refused == dict.fromkeys(MALFORMED, (400, b"malformed HTTP request")), answers
        # A well-formed upgrade with the same token still works.
        client = await server.connect(token=TOKEN)
        await client.initialize()
        await client.close()
        log = server.log()
        assert TOKEN not in log
        assert "Traceback" not in log
        assert log.count("malformed HTTP request from 127.0.0.1") == len(MALFORMED)


async def test_an_unfinished_request_head_is_closed_at_the_deadline(listen, short_tmp):
    args = ["-c", "kernel.http_header_timeout_seconds=1"]
    listeners = ("ws://127.0.0.1:0", "unix://")
    async with listen(listen=listeners, args=args, home=short_tmp / "home") as server:
        silent, silent_w, _ = await open_raw(server.url())
        silent_w.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upg")
        unix_path = server.url("unix")[len("unix://") :]
        on_unix, unix_w, _ = await open_raw("", unix=unix_path)
        unix_w.write(b"GET /healthz HTTP/1.1\r\n")
        dripping, drip_w, _ = await open_raw(server.url())

        async def drip() -> None:
            # A slowloris: one byte of a never-ending head every 100 ms.
            drip_w.write(b"GET / HTTP/1.1\r\nX-Pad: ")
            with contextlib.suppress(ConnectionError):
                while not drip_w.is_closing():
                    drip_w.write(b"a")
                    await drip_w.drain()
                    await asyncio.sleep(0.1)

        dripper = asyncio.create_task(drip())
        try:
            # Closed without an answer (None would mean: still open after 30 s).
            assert await read_until_closed(silent) == b""
            assert await read_until_closed(on_unix) == b""
            assert await read_until_closed(dripping) == b""
        finally:
            dripper.cancel()
            for writer in (silent_w, unix_w, drip_w):
                writer.close()
        # Whole requests are served as before.
        assert (await http_get(server.url(), "/healthz"))[0] == 200
        assert (await http_get("", "/healthz", unix=unix_path))[0] == 200


async def test_a_websocket_without_initialize_is_closed_at_the_deadline(listen):
    async with listen(args=["-c", "kernel.handshake_timeout_seconds=1"]) as server:
        speaker = await server.connect()
        await speaker.initialize()
        async with aiohttp.ClientSession() as session, session.ws_connect(server.url()) as silent:
            closing = await silent.receive(timeout=30)
            assert closing.type is aiohttp.WSMsgType.CLOSE
            assert closing.data == aiohttp.WSCloseCode.POLICY_VIOLATION
            assert closing.extra == "no initialize request within the handshake timeout"
            assert silent.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION
        # Connected before the silent one, so past its own deadline: still served.
        assert await speaker.request("echo/echo", {"message": "on"}) == {"message": "on"}
        await speaker.close()
        await asyncio.sleep(0.2)
        log = server.log()
        assert "sent no successful initialize within 1 s (kernel.handshake_timeout_seconds)" in log
        assert "ended: no initialize within 1 s" in log


async def _connect_once_admitted(server, deadline: float = 30.0):
    """Connect, retrying while the server has not yet noticed a slot became free."""
    async with asyncio.timeout(deadline):
        while True:
            try:
                return await server.connect()
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)


async def test_connections_over_max_connections_are_closed_at_accept(listen):
    args = ["-c", "kernel.max_connections=3", "-c", "kernel.http_header_timeout_seconds=120"]
    async with listen(args=args) as server:
        first = await server.connect()
        await first.initialize()
        second = await server.connect()
        await second.initialize()
        _idle, idle_w, _ = await open_raw(server.url())  # the third: says nothing
        for _ in range(3):
            reader, writer, _ = await open_raw(server.url())
            # Closed at once, before a request (None: still open after 30 s).
            assert await read_until_closed(reader) == b""
            writer.close()
        with pytest.raises(aiohttp.ClientError):
            await server.connect()
        assert await first.request("echo/echo", {"message": "1"}) == {"message": "1"}
        assert await second.request("echo/echo", {"message": "2"}) == {"message": "2"}
        log = server.log()
        assert log.count("connection limit reached on ws://127.0.0.1:") == 1  # rate-limited
        assert "3 connections open" in log
        assert "raise kernel.max_connections to allow more" in log
        # Once one leaves, a new client gets in.
        idle_w.close()
        third = await _connect_once_admitted(server)
        await third.initialize()
        assert await third.request("echo/echo", {"message": "3"}) == {"message": "3"}
        for client in (first, second, third):
            await client.close()


async def test_only_get_upgrades(listen):
    async with listen() as server:
        for method in ("HEAD", "POST", "PUT", "DELETE"):
            status, headers, _ = await http_get(server.url(), "/", UPGRADE, method=method)
            assert (method, status) == (method, 405)
            assert headers["allow"] == "GET"
        assert (await http_get(server.url(), "/", UPGRADE))[0] == 101
        assert (await http_get(server.url(), "/healthz", method="HEAD"))[0] == 200


async def test_head_is_authenticated_before_it_is_refused(listen, token_file):
    args = ["--ws-auth", "capability-token", "--ws-token-file", str(token_file)]
    async with listen(plugins=PLUGINS, args=args) as server:
        status, _, _ = await http_get(server.url(), "/", UPGRADE, method="HEAD")
        assert status == 401
        headers = dict(UPGRADE, Authorization=f"Bearer {TOKEN}")
        status, _, _ = await http_get(server.url(), "/", headers, method="HEAD")
        assert status == 405
