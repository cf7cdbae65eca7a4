"""Websocket throughput, latency and scale: the kernel against a bare aiohttp responder.

Both servers run as subprocesses, pinned to another CPU than this driver
(when there are two), on the same event loop kind (uvloop when installed).
The baseline is the least an aiohttp websocket server can do: one handler
per connection, ``orjson.loads`` each text frame and send
``{"id", "result"}`` back. The kernel serves ``echo/echo`` (example plugin,
async handler) through its full path, including the handshake per
connection.

Scenarios, each interleaved bare/kernel for ``--rounds`` rounds (median
shown):

* one connection, 1 and 32 requests in flight: requests/s, p50/p99;
* 100 and 1,000 concurrent connections, each sending a request, waiting for
  the answer, then pausing ``--think-ms`` (a closed loop, like editors that
  are mostly idle): p50/p99 latency and requests/s.

    python benchmarks/websocket.py
    python benchmarks/websocket.py --requests 50000 --rounds 5 --connections 100,1000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from _common import (
    AnnouncedServer,
    echo_window,
    median_rows,
    percentiles,
    pin_cpus,
    uvloop_available,
)

BARE = r"""
import sys, orjson
from aiohttp import web, WSMsgType

async def handle(request):
    ws = web.WebSocketResponse(max_msg_size=128 << 20, compress=False)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type is WSMsgType.TEXT:
            m = orjson.loads(msg.data)
            if "id" in m:
                await ws.send_frame(
                    orjson.dumps({"id": m["id"], "result": m.get("params")}), WSMsgType.TEXT
                )
    return ws

async def main():
    app = web.Application()
    app.router.add_get("/", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    port = runner.addresses[0][1]
    print(f"listening on ws://127.0.0.1:{port}", file=sys.stderr, flush=True)
    await asyncio.Event().wait()

import asyncio
if len(sys.argv) > 1 and sys.argv[1] == "uvloop":
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
"""

INIT = orjson.dumps(
    {"id": 0, "method": "initialize", "params": {"clientInfo": {"name": "bench", "version": "1"}}}
)
INITIALIZED = orjson.dumps({"method": "initialized"})
PARAMS = {"message": "hello world"}
SERVER_CPU: int | None = None


class Server(AnnouncedServer):
    """A server subprocess and the URL its banner announced."""

    def __init__(self, argv: list[str], env: dict[str, str], handshake: bool) -> None:
        super().__init__(argv, env, SERVER_CPU)
        self.handshake = handshake

    async def open(self, session: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
        ws = await session.ws_connect(self.url, max_msg_size=128 << 20)
        if self.handshake:
            await ws.send_frame(INIT, aiohttp.WSMsgType.TEXT)
            await ws.receive()
            await ws.send_frame(INITIALIZED, aiohttp.WSMsgType.TEXT)
        return ws


async def one_connection(server: Server, total: int, window: int) -> tuple[float, float, float]:
    """``total`` requests with ``window`` in flight on one connection."""
    async with aiohttp.ClientSession() as session:
        ws = await server.open(session)
        result = await echo_window(ws, total, window, PARAMS)
        await ws.close()
    return result


async def many_connections(
    server: Server, connections: int, per_connection: int, think: float
) -> tuple[float, float, float]:
    """``connections`` clients, each: request, await answer, pause ``think``."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        sockets = await asyncio.gather(*(server.open(session) for _ in range(connections)))
        latencies: list[float] = []

        async def client(ws: aiohttp.ClientWebSocketResponse, offset: float) -> None:
            await asyncio.sleep(offset)  # spread the first requests over one think time
            for i in range(per_connection):
                frame = orjson.dumps({"id": i + 1, "method": "echo/echo", "params": PARAMS})
                sent = time.perf_counter()
                await ws.send_frame(frame, aiohttp.WSMsgType.TEXT)
                msg = await ws.receive()
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"connection ended: {msg}")
                latencies.append(time.perf_counter() - sent)
                await asyncio.sleep(think)

        start = time.perf_counter()
        await asyncio.gather(*(client(ws, think * n / connections) for n, ws in enumerate(sockets)))
        elapsed = time.perf_counter() - start
        await asyncio.gather(*(ws.close() for ws in sockets))
    return (len(latencies) / elapsed, *percentiles(latencies))


def report(label: str, bare: tuple[float, ...], kernel: tuple[float, ...]) -> None:
    print(f"{label}")
    for name, row in (("bare  ", bare), ("kernel", kernel)):
        print(f"    {name} {row[0]:>8.0f} req/s  p50 {row[1]:>8.0f} us  p99 {row[2]:>8.0f} us")
    print(
        f"    ratio  {kernel[0] / bare[0]:>8.2f}x throughput, p50 x{kernel[1] / bare[1]:.2f}, "
        f"p99 x{kernel[2] / bare[2]:.2f} (latency: lower is better)"
    )


async def main() -> None:
    global SERVER_CPU
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000, help="per one-connection round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--windows", default="1,32")
    parser.add_argument("--connections", default="100,1000")
    parser.add_argument("--per-connection", type=int, default=20)
    parser.add_argument("--think-ms", type=float, default=100.0)
    parser.add_argument("--no-pin", action="store_true", help="let the scheduler place processes")
    args = parser.parse_args()
    placement = "not pinned (--no-pin)"
    if not args.no_pin:
        placement, SERVER_CPU = pin_cpus()
    use_uvloop = uvloop_available()
    home = tempfile.mkdtemp(prefix="kernel-bench-")
    env = {**os.environ, "KERNEL_HOME": home, "KERNEL_LOG": "info"}
    script = Path(home) / "bare_ws.py"
    script.write_text(BARE)
    bare = Server([sys.executable, str(script)] + (["uvloop"] if use_uvloop else []), env, False)
    kernel = Server(
        [
            sys.executable,
            *("-m", "kernel", "run"),
            *("--plugins", "echo"),
            *("--listen", "ws://127.0.0.1:0"),
        ],
        env,
        True,
    )
    print(
        f"event loop: {'uvloop' if use_uvloop else 'asyncio'} (both servers); {placement}; "
        f"{args.rounds} rounds, median shown"
    )
    for window in [int(w) for w in args.windows.split(",")]:
        rows: dict[str, list[tuple[float, float, float]]] = {"bare": [], "kernel": []}
        for _ in range(args.rounds):
            for name, server in (("bare", bare), ("kernel", kernel)):
                async with server:
                    rows[name].append(await one_connection(server, args.requests, window))
        report(
            f"one connection, {window} in flight ({args.requests} requests)",
            median_rows(rows["bare"]),
            median_rows(rows["kernel"]),
        )
    for count in [int(c) for c in args.connections.split(",")]:
        rows = {"bare": [], "kernel": []}
        for _ in range(args.rounds):
            for name, server in (("bare", bare), ("kernel", kernel)):
                async with server:
                    rows[name].append(
                        await many_connections(
                            server, count, args.per_connection, args.think_ms / 1000
                        )
                    )
        report(
            f"{count} connections, request/answer then {args.think_ms:g} ms pause, "
            f"{args.per_connection} each",
            median_rows(rows["bare"]),
            median_rows(rows["kernel"]),
        )


if __name__ == "__main__":
    if uvloop_available():
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
