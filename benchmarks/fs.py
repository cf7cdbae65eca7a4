"""fs plugin throughput and watch latency, against plain Python in the same run.

* readFile: ``fs/readFile`` over stdio (read, base64, JSON, pipe, client
  decode) against ``open().read()`` + ``base64.b64encode`` in this process;
* writeFile: ``fs/writeFile`` (base64 decode, temp file, fsync, rename)
  against ``base64.b64decode`` + ``open().write()``, with and without fsync,
  and the kernel with ``kernel_plugins.fs.durable_writes=false``;
* fs/changed latency: write a file in a watched directory, time until the
  notification arrives; with the default 100 ms coalescing window and with
  the window set to 0.

Sizes 4 KiB, 1 MiB and 16 MiB. Prints MB/s (of file bytes), ratios, and
latency p50/p99.

    python benchmarks/fs.py
    python benchmarks/fs.py --rounds 5 --sizes 4096,1048576
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from _common import percentiles, pin_cpus

from kernel.client import Client

SERVER_CPU: int | None = None


async def spawn(home: str, *overrides: str) -> Client:
    args = [arg for o in overrides for arg in ("-c", o)]
    env = {**os.environ, "KERNEL_HOME": home, "KERNEL_LOG": "warning"}
    client = await Client.spawn(*args, plugins=["fs"], home=home, env=env)
    if SERVER_CPU is not None and client.process is not None:
        os.sched_setaffinity(client.process.pid, {SERVER_CPU})
    await client.initialize()
    return client


def timed(repeat: int, fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


async def atimed(repeat: int, fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        await fn()  # type: ignore[misc]
    return (time.perf_counter() - start) / repeat


def plain_read(path: str) -> str:
    with open(path, "rb") as handle:
        return base64.b64encode(handle.read()).decode()


def plain_write(path: str, encoded: str, durable: bool) -> None:
    data = base64.b64decode(encoded)
    with open(path, "wb") as handle:
        handle.write(data)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())


async def throughput(work: str, sizes: list[int], rounds: int) -> None:
    durable = await spawn(f"{work}/home-a")
    fast = await spawn(f"{work}/home-b", "kernel_plugins.fs.durable_writes=false")
    print(f"{'size':>9}  {'operation':<34} {'MB/s':>8}  {'vs plain':>8}")
    for size in sizes:
        path = f"{work}/file-{size}"
        with open(path, "wb") as handle:
            handle.write(os.urandom(size))
        encoded = plain_read(path)
        repeat = max(3, min(300, (64 << 20) // size // 4))
        best: dict[str, float] = {}
        read = {"path": path}
        write = {"path": f"{path}.k", "dataBase64": encoded}
        for _ in range(rounds):
            samples = {
                "plain read+b64encode": timed(repeat, lambda p=path: plain_read(p)),
                "kernel fs/readFile": await atimed(
                    repeat, lambda r=read: durable.request("fs/readFile", r)
                ),
                "plain b64decode+write": timed(
                    repeat, lambda p=path, e=encoded: plain_write(f"{p}.p", e, False)
                ),
                "plain b64decode+write+fsync": timed(
                    repeat, lambda p=path, e=encoded: plain_write(f"{p}.p", e, True)
                ),
                "kernel fs/writeFile (durable)": await atimed(
                    repeat, lambda w=write: durable.request("fs/writeFile", w)
                ),
                "kernel fs/writeFile (no fsync)": await atimed(
                    repeat, lambda w=write: fast.request("fs/writeFile", w)
                ),
            }
            for name, seconds in samples.items():
                best[name] = min(best.get(name, seconds), seconds)
        baseline = {
            "kernel fs/readFile": "plain read+b64encode",
            "kernel fs/writeFile (durable)": "plain b64decode+write+fsync",
            "kernel fs/writeFile (no fsync)": "plain b64decode+write",
        }
        for name, seconds in best.items():
            ratio = f"{best[baseline[name]] / seconds:>7.2f}x" if name in baseline else ""
            print(f"{size:>9}  {name:<34} {size / seconds / 1e6:>8.1f}  {ratio:>8}")
    await durable.close()
    await fast.close()


async def watch_latency(work: str, samples: int, window_ms: int) -> tuple[float, float]:
    client = await spawn(
        f"{work}/home-w{window_ms}", f"kernel_plugins.fs.watch_coalesce_ms={window_ms}"
    )
    watched = f"{work}/watched-{window_ms}"
    os.mkdir(watched)
    await client.request("fs/watch", {"watchId": "bench", "path": watched})
    latencies = []
    for i in range(samples):
        start = time.perf_counter()
        with open(f"{watched}/f{i}", "w") as handle:
            handle.write("x")
        await client.next_notification("fs/changed", timeout=10)
        latencies.append(time.perf_counter() - start)
        # let any trailing event of this write drain before the next sample
        while True:
            try:
                await client.next_notification("fs/changed", timeout=window_ms / 1000 + 0.05)
            except TimeoutError:
                break
    await client.close()
    return percentiles(latencies)


async def main() -> None:
    global SERVER_CPU
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=f"{4 << 10},{1 << 20},{16 << 20}")
    parser.add_argument("--rounds", type=int, default=3, help="best round is shown")
    parser.add_argument("--watch-samples", type=int, default=100)
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    placement = "not pinned (--no-pin)"
    if not args.no_pin:
        placement, SERVER_CPU = pin_cpus()
    work = tempfile.mkdtemp(prefix="kernel-fs-bench-", dir=os.environ.get("BENCH_DIR"))
    print(f"{placement}; files in {work}; best of {args.rounds} rounds")
    try:
        await throughput(work, [int(s) for s in args.sizes.split(",")], args.rounds)
        for window in (100, 0):
            p50, p99 = await watch_latency(work, args.watch_samples, window)
            print(
                f"fs/changed latency, write -> notification, window {window} ms: "
                f"p50 {p50 / 1000:.1f} ms  p99 {p99 / 1000:.1f} ms"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
