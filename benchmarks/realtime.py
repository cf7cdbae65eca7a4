"""The realtime family: audio relayed client → backend, transcript deltas backend → client.

The kernel (``kernel run --listen ws://… --plugins threads,models,realtime``)
and a baseline run as subprocesses on another CPU than this driver (when
there are two); the Realtime API stand-in of
``tests/support/realtime_backend.py`` runs in this process. The baseline is
the least a websocket relay can do: one aiohttp handler per client that
opens the backend websocket, parses each client frame with orjson, forwards
an ``appendAudio`` as ``input_audio_buffer.append`` and answers ``{}``, and
turns each backend ``response.output_text.delta`` into one
``thread/realtime/transcript/delta`` notification.

Scenarios, each interleaved baseline/kernel for ``--rounds`` rounds (median
shown):

1. **Audio frames/s:** ``--frames`` appends of 20 ms of 24 kHz mono PCM16
   (1,280 base64 characters), ``--window`` requests in flight, timed until
   the backend received the last ``input_audio_buffer.append`` and the
   client the last answer.
2. **Delta latency:** ``--deltas`` transcript deltas, one at a time: the
   time from the backend sending ``response.output_text.delta`` to the
   client reading ``thread/realtime/transcript/delta`` (the kernel also
   sends the item's delta before it, as the reference does: both are in
   its figure). p50/p99, the ratio and the added microseconds.

    python benchmarks/realtime.py
    python benchmarks/realtime.py --frames 5000 --deltas 500 --rounds 1   # quick
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import AnnouncedServer, percentiles, pin_cpus, uvloop_available

from tests.support.realtime_backend import BackendConnection, RealtimeBackend
from tests.support.realtime_client import KEY, KEY_VARIABLE, realtime_args

RELAY = r"""
import sys, orjson, aiohttp
from aiohttp import web, WSMsgType

BACKEND = sys.argv[1]
APPEND = b'{"type":"input_audio_buffer.append","audio":'

async def handle(request):
    client = web.WebSocketResponse(max_msg_size=128 << 20, compress=False)
    await client.prepare(request)
    async with aiohttp.ClientSession() as http:
        backend = await http.ws_connect(BACKEND, max_msg_size=128 << 20)
        thread_id = "relay"

        async def down():
            async for msg in backend:
                if msg.type is WSMsgType.TEXT:
                    event = orjson.loads(msg.data)
                    if event.get("type") == "response.output_text.delta":
                        note = {"method": "thread/realtime/transcript/delta", "params":
                                {"threadId": thread_id, "role": "assistant",
                                 "delta": event["delta"]}}
                        await client.send_frame(orjson.dumps(note), WSMsgType.TEXT)

        pump = asyncio.get_running_loop().create_task(down())
        async for msg in client:
            if msg.type is WSMsgType.TEXT:
                m = orjson.loads(msg.data)
                if m.get("method") == "thread/realtime/appendAudio":
                    data = m["params"]["audio"]["data"]
                    await backend.send_frame(APPEND + orjson.dumps(data) + b"}", WSMsgType.TEXT)
                    await client.send_frame(
                        orjson.dumps({"id": m["id"], "result": {}}), WSMsgType.TEXT
                    )
        pump.cancel()
        await backend.close()
    return client

async def main():
    app = web.Application()
    app.router.add_get("/", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(f"listening on ws://127.0.0.1:{runner.addresses[0][1]}", file=sys.stderr, flush=True)
    await asyncio.Event().wait()

import asyncio
if len(sys.argv) > 2 and sys.argv[2] == "uvloop":
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
"""

SERVER_CPU: int | None = None
FRAME = base64.b64encode(bytes(960)).decode()  # 20 ms of 24 kHz mono PCM16 silence


class Server(AnnouncedServer):
    """A server subprocess, the URL its banner announced, and the client's socket."""

    def __init__(self, argv: list[str], env: dict[str, str], kernel: bool) -> None:
        super().__init__(argv, env, SERVER_CPU)
        self.kernel = kernel


class Session:
    """One client connected to a server with a realtime session open on the backend."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.conn: BackendConnection | None = None
        self.thread_id = "relay"
        self.ids = 100

    async def request(self, method: str, params: dict) -> dict:
        self.ids += 1
        frame = orjson.dumps({"id": self.ids, "method": method, "params": params})
        await self.ws.send_frame(frame, aiohttp.WSMsgType.TEXT)
        while True:
            msg = orjson.loads((await self.ws.receive()).data)
            if msg.get("id") == self.ids:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg["result"]


async def open_session(
    server: Server, http: aiohttp.ClientSession, backend: RealtimeBackend
) -> Session:
    """Connect a client; on the kernel, initialize, start a thread and its realtime session."""
    before = len(backend.connections)
    session = Session(await http.ws_connect(server.url, max_msg_size=128 << 20))
    if server.kernel:
        hello = {"clientInfo": {"name": "bench", "version": "1"},
                 "capabilities": {"experimentalApi": True}}  # fmt: skip
        await session.request("initialize", hello)
        await session.ws.send_frame(orjson.dumps({"method": "initialized"}), aiohttp.WSMsgType.TEXT)
        thread = await session.request("thread/start", {"cwd": "/tmp", "ephemeral": True})
        session.thread_id = thread["thread"]["id"]
        start = {"threadId": session.thread_id, "outputModality": "text"}
        await session.request("thread/realtime/start", start)
        while True:
            msg = orjson.loads((await session.ws.receive()).data)
            if msg.get("method") == "thread/realtime/started":
                break
    session.conn = await backend.wait_connection(before)
    if server.kernel:
        await session.conn.wait_for("session.update")
    return session


async def audio_rate(session: Session, backend: RealtimeBackend, frames: int, window: int) -> float:
    """Appends per second, first send to the backend's last frame and the last answer."""
    received = 0
    done = asyncio.Event()

    def count(frame: str) -> None:
        nonlocal received
        if frame.startswith('{"type":"input_audio_buffer.append"'):
            received += 1
            if received == frames:
                done.set()

    backend.raw_hook = count
    params = orjson.dumps(
        {"threadId": session.thread_id,
         "audio": {"data": FRAME, "sampleRate": 24000, "numChannels": 1}}
    )  # fmt: skip
    head = b'{"method":"thread/realtime/appendAudio","params":' + params + b',"id":'
    ws, sent, answered = session.ws, 0, 0

    async def send() -> None:
        nonlocal sent
        sent += 1
        await ws.send_frame(head + str(sent).encode() + b"}", aiohttp.WSMsgType.TEXT)

    start = time.perf_counter()
    for _ in range(min(window, frames)):
        await send()
    while answered < frames:
        data = (await ws.receive()).data
        if data.startswith('{"id"'):
            if '"error"' in data:
                raise RuntimeError(data)
            answered += 1
            if sent < frames:
                await send()
    await done.wait()
    elapsed = time.perf_counter() - start
    backend.raw_hook = None
    return frames / elapsed


async def delta_latency(session: Session, deltas: int) -> tuple[float, float]:
    """(p50, p99) microseconds from the backend's delta to the client's notification."""
    latencies = []
    conn = session.conn
    assert conn is not None
    for i in range(deltas):
        sent = time.perf_counter()
        await conn.send({"type": "response.output_text.delta", "delta": f"w{i} "})
        while True:
            msg = orjson.loads((await session.ws.receive()).data)
            if msg.get("method") == "thread/realtime/transcript/delta":
                break
        latencies.append(time.perf_counter() - sent)
    return percentiles(latencies)


async def main() -> None:
    global SERVER_CPU
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--deltas", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    placement, SERVER_CPU = pin_cpus()
    loop_kind = "uvloop" if uvloop_available() else "asyncio"
    print(f"realtime relay benchmark: {placement}; event loop {loop_kind}")
    print(f"{args.frames} audio frames (window {args.window}), {args.deltas} deltas, "
          f"{args.rounds} rounds, median shown\n")  # fmt: skip
    repo = Path(__file__).resolve().parent.parent
    async with RealtimeBackend() as backend, aiohttp.ClientSession() as http:
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "KERNEL_HOME": home, KEY_VARIABLE: KEY}
            env["PYTHONPATH"] = str(repo)
            kernel_argv = [
                sys.executable, "-m", "kernel", "run", "--listen", "ws://127.0.0.1:0",
                "--plugins", "threads,models,realtime", *realtime_args(backend),
            ]  # fmt: skip
            relay_argv = [sys.executable, "-c", RELAY, f"{backend.root}/v1/realtime", loop_kind]
            rates: dict[str, list[float]] = {"baseline": [], "kernel": []}
            lat: dict[str, list[tuple[float, float]]] = {"baseline": [], "kernel": []}
            for _ in range(args.rounds):
                for name, argv in (("baseline", relay_argv), ("kernel", kernel_argv)):
                    async with Server(argv, env, kernel=name == "kernel") as server:
                        session = await open_session(server, http, backend)
                        rates[name].append(
                            await audio_rate(session, backend, args.frames, args.window)
                        )
                        lat[name].append(await delta_latency(session, args.deltas))
                        await session.ws.close()
    base_rate, kern_rate = (statistics.median(rates[n]) for n in ("baseline", "kernel"))
    print("audio frames relayed client -> backend")
    print(f"    baseline {base_rate:>9.0f} frames/s")
    print(f"    kernel   {kern_rate:>9.0f} frames/s")
    print(f"    ratio    {kern_rate / base_rate:>9.2f}x (higher is better)\n")
    b50, b99 = (statistics.median(p[i] for p in lat["baseline"]) for i in (0, 1))
    k50, k99 = (statistics.median(p[i] for p in lat["kernel"]) for i in (0, 1))
    print("transcript delta latency backend -> client")
    print(f"    baseline p50 {b50:>8.0f} us  p99 {b99:>8.0f} us")
    print(f"    kernel   p50 {k50:>8.0f} us  p99 {k99:>8.0f} us")
    print(f"    ratio    p50 x{k50 / b50:.2f}, p99 x{k99 / b99:.2f}; "
          f"added p50 {k50 - b50:+.0f} us, p99 {k99 - b99:+.0f} us (lower is better)")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
