"""The unix:// listener and ``kernel proxy``, in real subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import sys

import pytest

from kernel.client import Client, ProcessStream
from kernel.transports.unix_socket import default_socket_path
from tests.conftest import CheckedStream, subprocess_env
from tests.support.rawhttp import UPGRADE, http_get
from tests.test_cli import kernel


async def test_default_socket_is_owner_only_and_serves_websocket(listen, short_tmp):
    home = short_tmp / "home"
    async with listen(listen=["unix://"], home=home) as server:
        path = default_socket_path(home)
        assert server.url("unix") == f"unix://{path}"
        mode = os.lstat(path).st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
        assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
        client = await server.connect(server.url("unix"))
        await client.initialize()
        assert await client.request("echo/echo", {"message": "unix"}) == {"message": "unix"}
        await client.close()
        assert (await http_get("", "/healthz", unix=str(path)))[0] == 200
        assert (await http_get("", "/readyz", unix=str(path)))[0] == 200
        origin = {"Origin": "null", **UPGRADE}
        assert (await http_get("", "/", origin, unix=str(path)))[0] == 403
    assert not path.exists()


async def test_explicit_socket_path(listen, short_tmp):
    path = short_tmp / "k.sock"
    async with listen(listen=[f"unix://{path}"]) as server:
        client = await server.connect(f"unix://{path}")
        await client.initialize()
        await client.close()
    assert not path.exists()


async def test_stale_socket_file_is_replaced(listen, short_tmp):
    path = short_tmp / "stale.sock"
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))
    dead.close()  # the file stays; nobody listens: a crashed server's leftover
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    async with listen(listen=[f"unix://{path}"]) as server:
        client = await server.connect(f"unix://{path}")
        await client.initialize()
        await client.close()
        assert "replacing stale socket" in server.log()


async def test_a_live_server_is_not_stolen(listen, short_tmp, tmp_path):
    path = short_tmp / "live.sock"
    async with listen(listen=[f"unix://{path}"]) as server:
        out = await asyncio.to_thread(
            kernel, tmp_path, "run", "--plugins", "echo", "--listen", f"unix://{path}"
        )
        assert out.returncode == 1
        assert "another server is already listening on this socket" in out.stderr
        client = await server.connect(f"unix://{path}")  # the first one still serves
        await client.initialize()
        await client.close()


def test_a_live_socket_without_lock_file_is_not_replaced(short_tmp, tmp_path):
    path = short_tmp / "other.sock"
    other = socket.socket(socket.AF_UNIX)
    other.bind(str(path))
    other.listen()
    try:
        out = kernel(tmp_path, "run", "--plugins", "echo", "--listen", f"unix://{path}")
        assert out.returncode == 1
        assert "a running server is accepting connections on this socket" in out.stderr
        assert path.exists()
    finally:
        other.close()


def test_a_path_that_is_not_a_socket_is_never_touched(short_tmp, tmp_path):
    path = short_tmp / "precious.txt"
    path.write_text("keep me")
    out = kernel(tmp_path, "run", "--plugins", "echo", "--listen", f"unix://{path}")
    assert out.returncode == 1
    assert "the path exists and is not a socket; refusing to replace it" in out.stderr
    assert path.read_text() == "keep me"


def test_socket_path_too_long_fails_before_serving(tmp_path):
    path = "/tmp/" + "d" * 120 + "/k.sock"
    out = kernel(tmp_path, "run", "--plugins", "echo", "--listen", f"unix://{path}")
    assert out.returncode == 1
    assert "longer than 103 bytes" in out.stderr


async def _proxy_process(home, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kernel",
        "proxy",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=subprocess_env(home),
    )


async def _spawn_proxy(home, checker, *args: str) -> tuple[Client, CheckedStream]:
    process = await _proxy_process(home, *args)
    stream = CheckedStream(ProcessStream(process), checker)
    return Client(stream), stream


async def test_proxy_bridges_stdio_to_the_shared_server(listen, short_tmp, checker):
    home = short_tmp / "home"
    async with listen(listen=["unix://"], home=home) as server:
        first, s1 = await _spawn_proxy(home, checker)
        second, s2 = await _spawn_proxy(home, checker, "--socket", str(default_socket_path(home)))
        for client in (first, second):
            await client.initialize()
        pids = {(await c.request("probe/state"))["pid"] for c in (first, second)}
        assert pids == {server.process.pid}
        # notifications and server→client requests cross the proxy too
        await first.request("probe/ticks", {"count": 2})
        assert (await first.next_notification("probe/tick")).params["index"] == 0
        second.on_request("probe/question", lambda p: {"answer": "via proxy"})
        assert await second.request("probe/ask", {"question": "?"}) == {"answer": "via proxy"}
        # stdin EOF with a request still running: the answer arrives first
        slow = first.request_nowait("probe/sleep", {"ms": 300, "label": "late"})
        await first.drain()
        assert await first.close() == 0
        assert slow.done() and slow.result() == {"label": "late"}
        assert await second.close() == 0
        assert server.process.returncode is None  # the shared server keeps running
    assert not (s1.violations or s2.violations)


async def test_proxy_delivers_the_answer_to_a_garbage_line_before_hanging_up(listen, short_tmp):
    home = short_tmp / "home"
    async with listen(listen=["unix://"], home=home):
        process = await _proxy_process(home)
        # Three lines that each call for an error answer with id null, then EOF.
        out, _ = await asyncio.wait_for(
            process.communicate(b'this is not json\n[1, 2]\n{"id": {}, "method": "x"}\n'), 30
        )
    answers = [json.loads(line) for line in out.splitlines()]
    assert [a["id"] for a in answers] == [None, None, None]
    assert answers[0]["error"]["code"] == -32700
    assert process.returncode == 0


def test_proxy_without_a_server_exits_1_with_a_hint(short_tmp):
    out = kernel(short_tmp, "proxy", "--home", str(short_tmp))
    assert out.returncode == 1
    assert "cannot connect to" in out.stderr and "kernel run --listen unix://" in out.stderr


@pytest.mark.parametrize("arg", ["relative.sock"])
def test_proxy_rejects_relative_socket_paths(tmp_path, arg):
    out = kernel(tmp_path, "proxy", "--socket", arg)
    assert out.returncode == 1
    assert "--socket relative.sock: the socket path must be absolute" in out.stderr
