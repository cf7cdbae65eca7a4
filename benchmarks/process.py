"""Process plugin: spawn latency and output streaming, against plain asyncio in the same run.

* latency: ``command/exec ["true"]`` over stdio (validate, spawn in a new
  session, wait, drain, answer) against ``asyncio.create_subprocess_exec
  ("true")`` + ``wait()`` in this process;
* streaming: a child writes ``--megabytes`` MB to stdout; the kernel streams
  it as ``command/exec/outputDelta`` (base64, JSON, pipe, client decode)
  against this process reading the same child's stdout pipe directly.

    python benchmarks/process.py
    python benchmarks/process.py --spawns 500 --megabytes 200
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from _common import percentiles, pin_cpus

from kernel.client import Client

SERVER_CPU: int | None = None


async def spawn_kernel(home: str) -> Client:
    env = {**os.environ, "KERNEL_HOME": home, "KERNEL_LOG": "warning"}
    client = await Client.spawn(plugins=["process"], home=home, env=env)
    if SERVER_CPU is not None and client.process is not None:
        os.sched_setaffinity(client.process.pid, {SERVER_CPU})
    await client.initialize()
    return client


async def latency(client: Client, spawns: int) -> tuple[list[float], list[float]]:
    kernel, bare = [], []
    for _ in range(spawns):
        start = time.perf_counter()
        await client.request("command/exec", {"command": ["true"]})
        kernel.append(time.perf_counter() - start)
        start = time.perf_counter()
        proc = await asyncio.create_subprocess_exec("true")
        await proc.wait()
        bare.append(time.perf_counter() - start)
    return kernel, bare


def producer(megabytes: int) -> list[str]:
    return ["head", "-c", str(megabytes * 1_000_000), "/dev/zero"]


async def stream_kernel(client: Client, megabytes: int) -> float:
    received = 0
    done = asyncio.Event()

    async def count() -> None:
        nonlocal received
        async for note in client.notifications():
            if note.method == "command/exec/outputDelta":
                received += len(base64.b64decode(note.params["deltaBase64"]))
                if received >= megabytes * 1_000_000:
                    done.set()

    counter = asyncio.ensure_future(count())
    start = time.perf_counter()
    await client.request(
        "command/exec",
        {
            "command": producer(megabytes),
            "processId": "bench",
            "streamStdoutStderr": True,
            "disableOutputCap": True,
            "disableTimeout": True,
        },
    )
    await done.wait()
    elapsed = time.perf_counter() - start
    counter.cancel()
    return received / elapsed / 1e6


async def stream_bare(megabytes: int) -> float:
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *producer(megabytes), stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    received = 0
    while chunk := await proc.stdout.read(1 << 16):
        received += len(chunk)
    await proc.wait()
    return received / (time.perf_counter() - start) / 1e6


async def main() -> None:
    global SERVER_CPU
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spawns", type=int, default=300)
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="streaming rounds (median)")
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    placement = "not pinned (--no-pin)"
    if not args.no_pin:
        placement, SERVER_CPU = pin_cpus()
    home = tempfile.mkdtemp(prefix="kernel-proc-bench-")
    client = await spawn_kernel(home)
    print(f"{placement}")
    kernel, bare = await latency(client, args.spawns)
    (kp50, kp99), (bp50, bp99) = percentiles(kernel), percentiles(bare)
    print(f"command/exec ['true'], {args.spawns} runs, interleaved:")
    print(f"    bare asyncio spawn+wait  p50 {bp50 / 1000:>7.2f} ms  p99 {bp99 / 1000:>7.2f} ms")
    print(f"    kernel command/exec      p50 {kp50 / 1000:>7.2f} ms  p99 {kp99 / 1000:>7.2f} ms")
    print(f"    ratio (kernel / bare)    p50 x{kp50 / bp50:.2f}  p99 x{kp99 / bp99:.2f}")
    rows = []
    for _ in range(args.rounds):
        rows.append(
            (await stream_bare(args.megabytes), await stream_kernel(client, args.megabytes))
        )
    rows.sort(key=lambda r: r[1])
    bare_mbs, kernel_mbs = rows[len(rows) // 2]
    print(f"streaming {args.megabytes} MB of stdout, median of {args.rounds}:")
    print(f"    bare pipe read             {bare_mbs:>8.1f} MB/s")
    print(
        f"    kernel outputDelta         {kernel_mbs:>8.1f} MB/s   ({kernel_mbs / bare_mbs:.2f}x)"
    )
    await client.close()


if __name__ == "__main__":
    asyncio.run(main())
