"""Request round trips through the remote-control relay against a direct websocket, same server.

One kernel subprocess serves ``echo/echo`` on a loopback websocket and, with
``--remote-control``, through the self-hostable relay (``contrib/remote_relay``,
another subprocess). The driver opens one direct websocket client and one
remote client (relay websocket, client token) to that same kernel, and
runs each scenario on both, interleaved, for ``--rounds`` rounds (median
shown):

* one request in flight (pure latency: client → relay → server and back);
* 32 requests in flight (pipelining through the multiplexed websocket);
* 256 KiB payloads, one in flight (messages above 150 KiB travel in chunks).

The ratio is relay / direct: the cost of the extra hop, the envelopes and
the acknowledgements.

    python benchmarks/remote_control.py
    python benchmarks/remote_control.py --requests 20000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from _common import AnnouncedServer, echo_window, median_rows, pin_cpus, uvloop_available

ENROLLMENT_SECRET = "bench-enrollment-secret-0123456789"
CLIENT_SECRET = "bench-client-secret-0123456789ab"
SERVER_CPU: int | None = None


class Relay(AnnouncedServer):
    """The relay subprocess; ``url`` is the ``http://`` base its banner announced."""

    pattern = r"listening on (http://127\.0\.0\.1:\d+)"


async def handshake(ws: aiohttp.ClientWebSocketResponse) -> None:
    init = {
        "id": 0,
        "method": "initialize",
        "params": {"clientInfo": {"name": "bench", "version": "1"}},
    }
    await ws.send_str(orjson.dumps(init).decode())
    while "id" not in orjson.loads((await ws.receive()).data):
        pass
    await ws.send_str('{"method":"initialized"}')


async def environment_of(session: aiohttp.ClientSession, url: str) -> str:
    """Wait until the kernel at ``url`` is connected to the relay; its environment id."""
    ws = await session.ws_connect(url)
    init = {
        "id": 0,
        "method": "initialize",
        "params": {
            "clientInfo": {"name": "bench", "version": "1"},
            "capabilities": {"experimentalApi": True},
        },
    }
    await ws.send_str(orjson.dumps(init).decode())
    async with asyncio.timeout(30):
        while True:
            message = orjson.loads((await ws.receive()).data)
            params = message.get("params") or {}
            if (
                message.get("method") == "remoteControl/status/changed"
                and params["status"] == "connected"
            ):
                await ws.close()
                return params["environmentId"]


def report(label: str, direct: tuple[float, ...], relayed: tuple[float, ...]) -> None:
    print(label)
    for name, row in (("direct", direct), ("relay ", relayed)):
        print(f"    {name} {row[0]:>8.0f} req/s  p50 {row[1]:>8.0f} us  p99 {row[2]:>8.0f} us")
    throughput, p50, p99 = relayed[0] / direct[0], relayed[1] / direct[1], relayed[2] / direct[2]
    print(
        f"    ratio  {throughput:>8.2f}x throughput, p50 x{p50:.2f}, p99 x{p99:.2f} "
        "(relay / direct; latency: lower is better)"
    )


async def main() -> None:
    global SERVER_CPU
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="per small-message round")
    parser.add_argument("--large-requests", type=int, default=200, help="per 256 KiB round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-pin", action="store_true", help="let the scheduler place processes")
    args = parser.parse_args()
    placement = "not pinned (--no-pin)"
    if not args.no_pin:
        placement, SERVER_CPU = pin_cpus()
    home = tempfile.mkdtemp(prefix="kernel-bench-rc-")
    env = {
        **os.environ,
        "KERNEL_HOME": home,
        "KERNEL_LOG": "warning",
        "KERNEL_REMOTE_CONTROL_SECRET": ENROLLMENT_SECRET,
        "KERNEL_RELAY_ENROLLMENT_SECRET": ENROLLMENT_SECRET,
        "KERNEL_RELAY_CLIENT_SECRET": CLIENT_SECRET,
    }
    relay_argv = [sys.executable, "-m", "kernel_remote_relay", "serve"]
    relay_argv += ["--listen", "127.0.0.1:0", "--log-level", "warning"]
    print(
        f"event loop: {'uvloop' if uvloop_available() else 'asyncio'} (kernel); {placement}; "
        f"{args.rounds} rounds, median shown"
    )
    async with Relay(relay_argv, env, SERVER_CPU) as relay:
        kernel_argv = [
            sys.executable,
            *("-m", "kernel", "run", "--plugins", "echo,remote_control", "--remote-control"),
            *("--listen", "ws://127.0.0.1:0"),
            *("-c", f'kernel_plugins.remote_control.base_url="{relay.url}/"'),
        ]
        async with AnnouncedServer(
            kernel_argv, {**env, "KERNEL_LOG": "info"}, SERVER_CPU
        ) as kernel:
            await compare(kernel.url, relay.url, args)


async def compare(url: str, relay_url: str, args: argparse.Namespace) -> None:
    """Run every scenario on a direct and a relayed client of the kernel at ``url``."""
    from kernel_remote_relay.credentials import client_token

    async with aiohttp.ClientSession() as session:
        environment = await environment_of(session, url)
        token = client_token(CLIENT_SECRET.encode(), environment)
        remote_url = (
            relay_url.replace("http", "ws", 1)
            + f"/wham/remote/control/environments/{environment}/connect"
        )
        direct = await session.ws_connect(url, max_msg_size=1 << 26)
        relayed = await session.ws_connect(
            remote_url, headers={"Authorization": f"Bearer {token}"}, max_msg_size=1 << 26
        )
        for ws in (direct, relayed):
            await handshake(ws)
            await echo_window(ws, 200, 8, {"message": "warm up"})
        scenarios = [
            ("one request in flight", args.requests, 1, "hello world"),
            ("32 requests in flight", args.requests, 32, "hello world"),
            ("256 KiB messages, one in flight", args.large_requests, 1, "x" * 256 * 1024),
        ]
        for label, total, window, payload in scenarios:
            rows: dict[str, list[tuple[float, float, float]]] = {"direct": [], "relay": []}
            for _ in range(args.rounds):
                for name, ws in (("direct", direct), ("relay", relayed)):
                    rows[name].append(await echo_window(ws, total, window, {"message": payload}))
            report(
                f"{label} ({total} requests)",
                median_rows(rows["direct"]),
                median_rows(rows["relay"]),
            )
        await direct.close()
        await relayed.close()


if __name__ == "__main__":
    if uvloop_available():
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
