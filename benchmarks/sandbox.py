"""Sandbox: the added latency of a sandboxed ``command/exec ["true"]``, in the same run.

Every variant runs interleaved, one request at a time, against one kernel
(``process`` + ``sandbox``) and one without the sandbox plugin:

* bare: ``asyncio.create_subprocess_exec("true")`` + ``wait()`` here;
* fallback: ``process`` alone, ``dangerFullAccess`` (setpriv + token sweep);
* contained: ``dangerFullAccess`` with the sandbox plugin (own PID namespace);
* read-only / workspace-write: a real bubblewrap sandbox (mounts, no network).

    python benchmarks/sandbox.py
    python benchmarks/sandbox.py --spawns 500
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from _common import percentiles, pin_cpus

from kernel.client import Client

SERVER_CPU: int | None = None


async def spawn_kernel(plugins: list[str]) -> Client:
    home = tempfile.mkdtemp(prefix="kernel-sandbox-bench-")
    env = {**os.environ, "KERNEL_HOME": home, "KERNEL_LOG": "warning"}
    client = await Client.spawn(plugins=plugins, home=home, env=env)
    if SERVER_CPU is not None and client.process is not None:
        os.sched_setaffinity(client.process.pid, {SERVER_CPU})
    await client.initialize(experimental=True)
    return client


def exec_with(client: Client, cwd: str, **policy: object) -> Callable[[], Awaitable[None]]:
    request = {"command": ["true"], "cwd": cwd, **policy}

    async def run() -> None:
        result = await client.request("command/exec", request)
        assert result["exitCode"] == 0, result

    return run


async def bare() -> None:
    proc = await asyncio.create_subprocess_exec("true")
    await proc.wait()


async def main() -> None:
    global SERVER_CPU
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spawns", type=int, default=300)
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    if shutil.which("bwrap") is None:
        sys.exit("bubblewrap (bwrap) is not installed: nothing to measure")
    placement = "not pinned (--no-pin)"
    if not args.no_pin:
        placement, SERVER_CPU = pin_cpus()
    project = tempfile.mkdtemp(prefix="kernel-sandbox-project-")
    sandboxed = await spawn_kernel(["process", "sandbox"])
    plain = await spawn_kernel(["process"])
    full = {"sandboxPolicy": {"type": "dangerFullAccess"}}
    variants: dict[str, Callable[[], Awaitable[None]]] = {
        "bare asyncio spawn+wait": bare,
        "fallback (no sandbox plugin)": exec_with(plain, project, **full),
        "contained (own PID namespace)": exec_with(sandboxed, project, **full),
        "read-only sandbox": exec_with(sandboxed, project, sandboxPolicy={"type": "readOnly"}),
        "workspace-write sandbox": exec_with(
            sandboxed, project, sandboxPolicy={"type": "workspaceWrite"}
        ),
    }
    for run in variants.values():  # warm up
        await run()
    timings: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.spawns):
        for name, run in variants.items():
            start = time.perf_counter()
            await run()
            timings[name].append(time.perf_counter() - start)
    print(placement)
    print(f"command/exec ['true'], {args.spawns} runs of each, interleaved:")
    base50, _ = percentiles(timings["fallback (no sandbox plugin)"])
    for name, samples in timings.items():
        p50, p99 = percentiles(samples)
        ratio = f"x{p50 / base50:.2f} of fallback, +{(p50 - base50) / 1000:.2f} ms"
        print(f"    {name:<31} p50 {p50 / 1000:>7.2f} ms  p99 {p99 / 1000:>7.2f} ms  {ratio}")
    await sandboxed.close()
    await plain.close()


if __name__ == "__main__":
    asyncio.run(main())
