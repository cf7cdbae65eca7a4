"""Every way a session ends closes its backend websocket and leaves no task behind.

The owner's connection closing (over a real websocket listener), the thread
being released, server shutdown, and, in process, the tasks left after each
kind of end.
"""

from __future__ import annotations

import asyncio

from kernel.client import Client, Notification
from tests.support.realtime_backend import RealtimeBackend
from tests.support.realtime_client import KEY, KEY_VARIABLE, PLUGINS, realtime, realtime_args


async def _until(client: Client, method: str, timeout: float = 20) -> list[Notification]:
    seen: list[Notification] = []
    async with asyncio.timeout(timeout):
        while True:
            note = await client.next_notification(timeout=timeout)
            seen.append(note)
            if note.method == method:
                return seen


async def _voice_session(client: Client, backend: RealtimeBackend) -> str:
    thread_id = str((await client.request("thread/start", {"cwd": "/tmp"}))["thread"]["id"])
    start = {"threadId": thread_id, "outputModality": "audio"}
    assert await client.request("thread/realtime/start", start) == {}
    await _until(client, "thread/realtime/started")
    return thread_id


async def test_the_owner_leaving_closes_the_backend_and_tells_the_others(listen):
    async with RealtimeBackend() as backend:
        async with listen(
            plugins=PLUGINS, args=realtime_args(backend), env={KEY_VARIABLE: KEY}
        ) as server:
            owner = await server.connect()
            await owner.initialize(experimental=True)
            thread_id = await _voice_session(owner, backend)
            conn = await backend.wait_connection()
            other = await server.connect()
            await other.initialize(experimental=True)
            await other.request("thread/resume", {"threadId": thread_id})
            await owner.close()
            notes = realtime(await _until(other, "thread/realtime/closed"))
            assert notes[-1].params == {"threadId": thread_id, "reason": "connection_closed"}
            assert notes[-2].params["item"]["type"] == "realtimeSessionClosed"
            await conn.wait_closed()
            assert conn.closed_by == "kernel"
            # The server goes on: the remaining client starts its own session.
            assert (
                await other.request(
                    "thread/realtime/start", {"threadId": thread_id, "outputModality": "text"}
                )
                == {}
            )
            await _until(other, "thread/realtime/started")
            await backend.wait_connection(1)
            await other.close()
            await backend.connections[1].wait_closed()
        assert "Traceback" not in server.log()


async def test_releasing_the_thread_ends_its_session(serve):
    async with RealtimeBackend() as backend:
        async with serve(
            plugins=PLUGINS, args=realtime_args(backend), env={KEY_VARIABLE: KEY}
        ) as served:
            client = served.client
            await client.initialize(experimental=True)
            thread_id = await _voice_session(client, backend)
            conn = await backend.wait_connection()
            assert await client.request("thread/unsubscribe", {"threadId": thread_id})
            # The owner, though unsubscribed, is told its session ended.
            notes = realtime(await _until(client, "thread/realtime/closed"))
            assert notes[-1].params == {"threadId": thread_id, "reason": "thread_released"}
            await conn.wait_closed()
            assert conn.closed_by == "kernel"


async def test_shutdown_closes_every_backend_cleanly(listen):
    async with RealtimeBackend() as backend:
        async with listen(
            plugins=PLUGINS, args=realtime_args(backend), env={KEY_VARIABLE: KEY}
        ) as server:
            clients = []
            for _ in range(2):
                client = await server.connect()
                await client.initialize(experimental=True)
                await _voice_session(client, backend)
                clients.append(client)
            await backend.wait_connection(1)
            assert await server.stop() == 0
            for conn in backend.connections:
                await conn.wait_closed()
                assert conn.closed_by == "kernel"
            for client in clients:
                await client.close()
            log = server.log()
            for problem in ("Traceback", "Task was destroyed", "Unclosed", "never awaited"):
                assert problem not in log, log


def _overrides(backend: RealtimeBackend) -> list[str]:
    provider = (
        f'{{name = "mock", base_url = "{backend.base_url}", experimental_bearer_token = "{KEY}"}}'
    )
    return ['model_provider="mock"', f"model_providers.mock={provider}"]


def _realtime_tasks() -> list[str]:
    return sorted(t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("realtime-"))


async def test_no_task_outlives_its_session(inproc):
    async with (
        RealtimeBackend() as backend,
        inproc(plugins=list(PLUGINS), overrides=_overrides(backend)) as client,
    ):
        await client.initialize(experimental=True)
        ends = 0

        async def session() -> tuple[str, object]:
            nonlocal ends
            thread_id = await _voice_session(client, backend)
            conn = await backend.wait_connection(ends)
            ends += 1
            assert f"realtime-{thread_id}" in _realtime_tasks()
            return thread_id, conn

        async def settled(conn) -> None:
            await _until(client, "thread/realtime/closed")
            await conn.wait_closed()
            async with asyncio.timeout(5):
                while _realtime_tasks():
                    await asyncio.sleep(0.01)

        thread_id, conn = await session()  # stopped
        await client.request("thread/realtime/stop", {"threadId": thread_id})
        await settled(conn)
        thread_id, conn = await session()  # a backend error
        await conn.send({"type": "error", "message": "boom"})
        await settled(conn)
        thread_id, conn = await session()  # the backend closing
        await conn.close()
        await settled(conn)
        thread_id, conn = await session()  # replaced by a second start
        start = {"threadId": thread_id, "outputModality": "audio"}
        await client.request("thread/realtime/start", start)
        await _until(client, "thread/realtime/started")
        await conn.wait_closed()
        second = await backend.wait_connection(ends)
        await client.request("thread/realtime/stop", {"threadId": thread_id})
        await settled(second)
        assert client.kernel is not None
        assert client.kernel.plugins.records["realtime"].plugin.sessions == {}
