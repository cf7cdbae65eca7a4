"""Compaction: the server's own time to compact a 1,000-turn thread, the model excluded.

A 1,000-turn thread is written to a home, the kernel resumes it and runs
``thread/compact/start`` against the Responses stand-in, which answers the
summary at once. Server time = ``thread/compact/start`` → ``turn/completed``
at the client (the stand-in's answer, one short stream, is a fraction of a
millisecond of it). Baseline, same run and process: the pure work, replaying nothing —
building the compacted history from the same 2,000 items and encoding the
rollout record.

    python benchmarks/compaction.py
    python benchmarks/compaction.py --turns 2000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from _common import pin_cpus
from _threads_support import build_long_thread

from kernel.client import Client
from plugins_builtin.threads.compaction import compacted_history
from plugins_builtin.threads.state import Settings, ThreadState, replay
from tests.support.agent import provider_args
from tests.support.model_server import ModelServer, text

SERVER_CPU: int | None = None


async def one_round(turns: int) -> tuple[float, float]:
    """(server-side compaction time, baseline time) in seconds for one fresh home."""
    home = Path(tempfile.mkdtemp(prefix="kernel-compact-bench-"))
    thread_id, path = await build_long_thread(home, turns)
    async with ModelServer() as model:
        model.responses.append(text("A short summary of the work so far."))
        env = {**os.environ, "KERNEL_HOME": str(home), "KERNEL_LOG": "warning"}
        args = [*provider_args(model.base_url), "-c", 'model_provider="mock"']
        client = await Client.spawn(*args, plugins=["threads", "models"], home=home, env=env)
        if SERVER_CPU is not None and client.process is not None:
            os.sched_setaffinity(client.process.pid, {SERVER_CPU})
        await client.initialize()
        # The stored thread was recorded with provider "openai": resume it on the stand-in.
        await client.request(
            "thread/resume",
            {"threadId": thread_id, "excludeTurns": True, "modelProvider": "mock"},
        )
        start = time.perf_counter()
        await client.request("thread/compact/start", {"threadId": thread_id})
        while (note := await client.next_notification(timeout=60)).method != "turn/completed":
            pass
        total = time.perf_counter() - start
        await client.close()
        status = note.params["turn"]["status"]
        if status != "completed" or len(model.requests) != 1:
            count = len(model.requests)
            raise SystemExit(f"the compaction did not run ({status}, {count} requests)")
    with open(path, "rb") as handle:
        records = [orjson.loads(line) for line in handle if line.strip()]
    settings = Settings(model="gpt-5.5", model_provider="openai", cwd="/work/app")
    state = replay(ThreadState(thread_id, settings), records)
    start = time.perf_counter()
    history = compacted_history(state.history, "A short summary of the work so far.")
    orjson.dumps({"type": "compacted", "history": history})
    baseline = time.perf_counter() - start
    return total, baseline


async def main() -> None:
    global SERVER_CPU
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    placement = "not pinned (--no-pin)"
    if not args.no_pin:
        placement, SERVER_CPU = pin_cpus()
    rows = [await one_round(args.turns) for _ in range(args.rounds)]
    server = statistics.median(r[0] for r in rows)
    base = statistics.median(r[1] for r in rows)
    print(placement)
    print(f"compacting a {args.turns}-turn thread, median of {args.rounds}:")
    print(f"    baseline: compacted history + record encoding   {base * 1000:>8.2f} ms")
    print(f"    kernel: thread/compact/start -> turn/completed {server * 1000:>8.2f} ms")
    print(f"    ratio                                           x{server / base:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
