"""Server ↔ relay ↔ client on loopback, with the real relay package in a subprocess.

The server is ``kernel run`` over stdio (its local client watches the
status); remote clients connect to the relay's environment endpoint with a
client token. Every frame any client receives is checked against the
reference schema.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kernel import RpcError
from tests.support.processes import live_processes
from tests.support.remote_relay import (
    CLIENT_SECRET,
    ENROLLMENT_SECRET,
    running_relay,
    server_args,
    server_env,
    wait_status,
)

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")

PLUGINS = ("remote_control", "fs", "process")
_markers = itertools.count(1)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
async def relay(tmp_path, checker):
    async with running_relay(tmp_path, checker) as started:
        yield started


@contextlib.asynccontextmanager
async def connected_server(
    serve, relay, home: Path | None = None, *extra: str, timeout: float = 30.0
) -> AsyncIterator[tuple[Any, str]]:
    """A served kernel with --remote-control, once connected: (served, environment id).

    A context manager, so that the server is stopped on every exit, a failed
    setup (never connected within ``timeout``) included.
    """
    async with serve(
        plugins=PLUGINS,
        home=home,
        args=[*server_args(relay.url, *extra), "--remote-control"],
        env=server_env(),
    ) as served:
        await served.client.initialize(experimental=True)
        status = await wait_status(served.client, "connected", timeout)
        yield served, status["environmentId"]


async def test_fs_and_command_exec_through_the_relay(serve, relay, tmp_path):
    async with connected_server(serve, relay) as (served, environment_id):
        remote = await relay.connect(environment_id)
        with pytest.raises(RpcError) as early:
            await remote.request("fs/readFile", {"path": "/etc/hostname"})
        assert (early.value.code, early.value.message) == (-32600, "Not initialized")
        init = await remote.initialize("remote-tester", experimental=True)
        assert init["codexHome"] == str(served.home)
        status = (await remote.next_notification("remoteControl/status/changed")).params
        assert (status["status"], status["environmentId"]) == ("connected", environment_id)
        with pytest.raises(RpcError) as again:
            await remote.request("initialize", {"clientInfo": {"name": "x", "version": "1"}})
        assert again.value.message == "Already initialized"

        work = tmp_path / "work"
        await remote.request("fs/createDirectory", {"path": str(work)})
        await remote.request("fs/writeFile", {"path": f"{work}/a.txt", "dataBase64": b64(b"hello")})
        assert (await remote.request("fs/readFile", {"path": f"{work}/a.txt"}))[
            "dataBase64"
        ] == b64(b"hello")
        listing = await remote.request("fs/readDirectory", {"path": str(work)})
        assert [e["fileName"] for e in listing["entries"]] == ["a.txt"]
        with pytest.raises(RpcError) as relative:
            await remote.request("fs/readFile", {"path": "a.txt"})
        assert relative.value.code in (-32600, -32602)

        # Larger than one relay frame, both ways: chunked and joined on each side.
        big = os.urandom(700_000)
        await remote.request("fs/writeFile", {"path": f"{work}/big", "dataBase64": b64(big)})
        assert (work / "big").read_bytes() == big
        back = await remote.request("fs/readFile", {"path": f"{work}/big"})
        assert base64.b64decode(back["dataBase64"]) == big

        result = await remote.request(
            "command/exec", {"command": ["sh", "-c", "echo out; echo err >&2"]}
        )
        assert (result["exitCode"], result["stdout"], result["stderr"]) == (0, "out\n", "err\n")
        streamed = remote.request_nowait(
            "command/exec",
            {
                "command": ["sh", "-c", "echo ready; read line; echo got:$line"],
                "processId": "p1",
                "streamStdin": True,
                "streamStdoutStderr": True,
            },
        )
        ready = await remote.next_notification("command/exec/outputDelta")
        assert base64.b64decode(ready.params["deltaBase64"]) == b"ready\n"
        await remote.request(
            "command/exec/write", {"processId": "p1", "deltaBase64": b64(b"ping\n")}
        )
        delta = await remote.next_notification("command/exec/outputDelta")
        assert base64.b64decode(delta.params["deltaBase64"]) == b"got:ping\n"
        assert (await streamed)["exitCode"] == 0
        await remote.close()


async def test_the_relay_refuses_unauthenticated_enrollment_and_clients(serve, relay):
    async with connected_server(serve, relay) as (_, environment_id):
        base = f"{relay.url}/wham/remote/control"
        body = {"name": "intruder", "installation_id": "x"}
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"Authorization": "Bearer wrong-secret-0123456789"}):
                for path in ("server/enroll", "server/refresh"):
                    async with http.post(f"{base}/{path}", json=body, headers=headers) as answer:
                        assert answer.status == 401
            bearer = {"Authorization": f"Bearer {ENROLLMENT_SECRET}"}
            async with http.post(
                f"{base}/server/enroll", json={"name": "x"}, headers=bearer
            ) as answer:
                assert answer.status == 400  # installation_id is required
            version = {"x-codex-protocol-version": "3", "x-codex-server-id": "srv_nope"}
            async with http.get(f"{base}/server", headers=version) as answer:
                assert answer.status == 404
                assert (await answer.json())["detail"] == "Remote app server not found"
            connect = relay.client_url(environment_id)
            other = relay.token("env_other")
            for token in (None, "rcc_wrong", other, CLIENT_SECRET):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await http.ws_connect(
                        connect, headers={"Authorization": f"Bearer {token}"} if token else {}
                    )
                assert refused.value.status == 401
            with pytest.raises(aiohttp.WSServerHandshakeError) as unknown:
                await http.ws_connect(
                    relay.client_url("env_unknown"),
                    headers={"Authorization": f"Bearer {relay.token('env_unknown')}"},
                )
            assert unknown.value.status == 404
            with pytest.raises(aiohttp.WSServerHandshakeError) as cross_site:
                await http.ws_connect(
                    connect,
                    headers={
                        "Authorization": f"Bearer {relay.token(environment_id)}",
                        "Origin": "https://evil.example",
                    },
                )
            assert cross_site.value.status == 403
        assert ENROLLMENT_SECRET not in relay.log() and CLIENT_SECRET not in relay.log()


async def test_several_remote_clients_at_once(serve, relay, tmp_path):
    async with connected_server(serve, relay) as (served, environment_id):
        remotes = [await relay.connect(environment_id) for _ in range(4)]
        await asyncio.gather(
            *(r.initialize(f"remote-{i}", experimental=True) for i, r in enumerate(remotes))
        )

        async def session(index: int, remote) -> None:
            path = tmp_path / f"file-{index}"
            for round_ in range(10):
                data = f"{index}:{round_}".encode()
                pending = [
                    remote.request_nowait(
                        "fs/writeFile", {"path": str(path), "dataBase64": b64(data)}
                    ),
                    remote.request_nowait(
                        "command/exec", {"command": ["echo", f"client-{index}-{round_}"]}
                    ),
                ]
                await remote.drain()
                _, run = await asyncio.gather(*pending)
                assert run["stdout"] == f"client-{index}-{round_}\n"
                read = await remote.request("fs/readFile", {"path": str(path)})
                assert base64.b64decode(read["dataBase64"]) == data

        local = served.client.request("fs/readDirectory", {"path": str(tmp_path)})
        await asyncio.gather(*(session(i, r) for i, r in enumerate(remotes)), local)
        for remote in remotes:
            await remote.close()


async def test_a_remote_client_that_leaves_has_its_processes_reaped(serve, relay):
    async with connected_server(serve, relay) as (served, environment_id):
        marker = f"{5000 + os.getpid() % 1000}.{next(_markers):04d}"
        remote = await relay.connect(environment_id)
        await remote.initialize(experimental=True)
        family = ["sh", "-c", f"sleep {marker} & sleep {marker}"]
        running = remote.request_nowait("command/exec", {"command": family, "disableTimeout": True})
        await remote.request("process/spawn", {"command": family, "cwd": "/", "processHandle": "h"})
        async with asyncio.timeout(10):
            while len(live_processes(marker)) < 4:
                await asyncio.sleep(0.05)
        await remote.close()  # the websocket to the relay goes away
        with pytest.raises(ConnectionError):
            await running
        async with asyncio.timeout(10):
            while live_processes(marker):
                await asyncio.sleep(0.05)
            while "ended: remote client closed" not in served.log():
                await asyncio.sleep(0.05)
        # The server is still serving other remote clients.
        other = await relay.connect(environment_id)
        await other.initialize(experimental=True)
        assert (await other.request("command/exec", {"command": ["true"]}))["exitCode"] == 0
        await other.close()


async def test_relay_restart_reconnects_with_the_same_environment(serve, relay):
    async with connected_server(serve, relay) as (served, environment_id):
        remote = await relay.connect(environment_id)
        await remote.initialize(experimental=True)
        await relay.restart()
        await asyncio.wait_for(remote.wait_closed(), 10)
        statuses = []
        async with asyncio.timeout(30):
            while True:
                note = await served.client.next_notification("remoteControl/status/changed")
                statuses.append((note.params["status"], note.params["environmentId"]))
                if note.params["status"] == "connected":
                    break
        # A temporary disconnect is not an identity change.
        assert {env for _, env in statuses} == {environment_id}
        assert statuses[-1] == ("connected", environment_id)
        again = await relay.connect(environment_id)
        await again.initialize(experimental=True)
        assert (await again.request("command/exec", {"command": ["echo", "back"]}))[
            "stdout"
        ] == "back\n"
        await again.close()
        assert relay.log().count(" as environment ") == 1


async def test_a_relay_that_lost_its_state_gets_a_new_enrollment(serve, tmp_path, checker):
    async with running_relay(tmp_path, checker, persistent=False) as relay:
        async with connected_server(serve, relay) as (served, first):
            await relay.restart()
            status = await wait_status(served.client, "connected")
            assert status["environmentId"] not in (None, first)
            assert "does not know this server" in served.log()
            remote = await relay.connect(status["environmentId"])
            await remote.initialize(experimental=True)
            await remote.close()
            with pytest.raises(aiohttp.WSServerHandshakeError) as gone:
                await relay.connect(first)
            assert gone.value.status == 404


async def test_a_restarted_server_keeps_its_environment(serve, relay, tmp_path):
    home = tmp_path / "server-home"
    async with connected_server(serve, relay, home) as (_, environment_id):
        pass
    async with connected_server(serve, relay, home) as (_, again):
        assert again == environment_id
        assert "refreshed the token of environment" in relay.log()
        remote = await relay.connect(environment_id)
        await remote.initialize(experimental=True)
        await remote.close()


async def test_disable_and_shutdown_close_remote_clients(serve, relay):
    async with connected_server(serve, relay) as (served, environment_id):
        remote = await relay.connect(environment_id)
        await remote.initialize(experimental=True)
        answer = await served.client.request("remoteControl/disable", {})
        assert answer["status"] == "disabled"
        await asyncio.wait_for(remote.wait_closed(), 10)
        with pytest.raises(aiohttp.WSServerHandshakeError) as offline:
            await relay.connect(environment_id)
        assert offline.value.status == 503
        await served.client.request("remoteControl/enable", {})
        await wait_status(served.client, "connected")
        remote = await relay.connect(environment_id)
        await remote.initialize(experimental=True)
    await asyncio.wait_for(remote.wait_closed(), 10)


async def test_a_failed_setup_still_stops_the_server(serve, relay):
    # Never connected (no enrollment secret): the setup times out, and the server,
    # found by a marker in its command line, is gone by then.
    marker = f"{5000 + os.getpid() % 1000}.{next(_markers):04d}"
    extra = (
        'kernel_plugins.remote_control.enrollment_secret_env="KERNEL_TEST_NO_SUCH_SECRET"',
        f"kernel_plugins.remote_control.request_timeout_seconds={marker}",
    )
    with pytest.raises(TimeoutError):
        async with connected_server(serve, relay, None, *extra, timeout=2.0):
            pass
    assert live_processes(marker) == []
