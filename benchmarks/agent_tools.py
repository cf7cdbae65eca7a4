"""Agent tools: the server's overhead per tool round trip, against a bare spawn in the same run.

The model stand-in (tests/support/model_server.py) answers each turn's first
request with a tool call and its second with text. A round trip is the time
between the stand-in receiving the first request and receiving the second,
which carries the tool's output: stream the call, parse it, run the tool
(spawn, wait, format), persist, build and send the next request. Measured
interleaved, per turn:

* ``exec_command "true"`` in the turn's read-only sandbox (bubblewrap);
* ``exec_command "true"`` with full access (still in its own PID namespace);
* ``update_plan`` (no process: the framework's own cost);
* bare: ``asyncio.create_subprocess_exec(shell, "-c", "true")`` here.

    python benchmarks/agent_tools.py
    python benchmarks/agent_tools.py --turns 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from tests.support.agent import provider_args
from tests.support.model_server import ModelServer, function_call, text

SERVER_CPU: int | None = None
PLAN = json.dumps({"plan": [{"step": "measure", "status": "in_progress"}]})


async def spawn_kernel(model: ModelServer) -> Client:
    home = tempfile.mkdtemp(prefix="kernel-tools-bench-")
    env = {**os.environ, "KERNEL_HOME": home, "KERNEL_LOG": "warning"}
    plugins = ["threads", "models", "agent_tools", "process", "sandbox"]
    client = await Client.spawn(*provider_args(model.base_url), plugins=plugins, home=home, env=env)
    if SERVER_CPU is not None and client.process is not None:
        os.sched_setaffinity(client.process.pid, {SERVER_CPU})
    await client.initialize(experimental=True)
    return client


async def round_trip(
    client: Client, model: ModelServer, thread_id: str, call: object, **turn: object
) -> float:
    """One turn: tool call, then text; the gap between the two model requests."""
    model.responses.extend([call, text("ok")])
    before = len(model.requests)
    await client.request(
        "turn/start",
        {"threadId": thread_id, "input": [{"type": "text", "text": "go"}], **turn},
    )
    while True:
        note = await client.next_notification(timeout=30)
        if note.method == "turn/completed":
            break
    first, second = model.requests[before], model.requests[before + 1]
    return second.at - first.at


async def main() -> None:
    global SERVER_CPU
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    if shutil.which("bwrap") is None:
        sys.exit("bubblewrap (bwrap) is not installed: the sandboxed variant cannot run")
    placement = "not pinned (--no-pin)"
    if not args.no_pin:
        placement, SERVER_CPU = pin_cpus()
    shell = shutil.which("bash") or "/bin/sh"
    async with ModelServer() as model:
        client = await spawn_kernel(model)
        cwd = tempfile.mkdtemp(prefix="kernel-tools-cwd-")
        thread_id = (await client.request("thread/start", {"cwd": cwd}))["thread"]["id"]
        exec_true = json.dumps({"cmd": "true", "login": False})
        full = {"sandboxPolicy": {"type": "dangerFullAccess"}}
        read_only = {"sandboxPolicy": {"type": "readOnly"}}

        async def bare() -> float:
            start = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(shell, "-c", "true")
            await proc.wait()
            return time.perf_counter() - start

        variants: dict[str, Callable[[], Awaitable[float]]] = {
            "bare spawn (shell -c true)": bare,
            "update_plan (no process)": lambda: round_trip(
                client, model, thread_id, function_call("update_plan", PLAN), **read_only
            ),
            "exec_command, read-only sandbox": lambda: round_trip(
                client, model, thread_id, function_call("exec_command", exec_true), **read_only
            ),
            "exec_command, full access": lambda: round_trip(
                client, model, thread_id, function_call("exec_command", exec_true), **full
            ),
        }
        for run in variants.values():  # warm up
            await run()
        timings: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.turns):
            for name, run in variants.items():
                timings[name].append(await run())
        await client.close()
    print(placement)
    print(f"tool round trip (model asks -> output reaches the model), {args.turns} turns each:")
    base50, _ = percentiles(timings["bare spawn (shell -c true)"])
    for name, samples in timings.items():
        p50, p99 = percentiles(samples)
        extra = f"x{p50 / base50:.2f} of bare, +{(p50 - base50) / 1000:.2f} ms"
        print(f"    {name:<33} p50 {p50 / 1000:>7.2f} ms  p99 {p99 / 1000:>7.2f} ms  {extra}")


if __name__ == "__main__":
    asyncio.run(main())
