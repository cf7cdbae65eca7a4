"""Helpers shared by the benchmarks: CPU placement, event loop, summaries."""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson

__all__ = [
    "AnnouncedServer",
    "echo_window",
    "median_rows",
    "percentiles",
    "pin_cpus",
    "start_announced",
    "uvloop_available",
]


def pin_cpus() -> tuple[str, int | None]:
    """Pin this driver and the servers to different CPUs, if there are two.

    Returns a description and the CPU for servers (None when not pinned).
    Otherwise the scheduler sometimes puts driver and server on one core and
    sometimes not, and that alone moves results by 30% between runs.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return "not pinned (fewer than 2 CPUs)", None
    os.sched_setaffinity(0, {cpus[0]})
    return f"driver on CPU {cpus[0]}, server on CPU {cpus[1]}", cpus[1]


def uvloop_available() -> bool:
    """Whether uvloop can be imported (the kernel uses it when it can)."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def percentiles(latencies: list[float]) -> tuple[float, float]:
    """(p50, p99) of ``latencies`` in seconds, returned in microseconds."""
    ordered = sorted(latencies)
    return ordered[len(ordered) // 2] * 1e6, ordered[int(len(ordered) * 0.99)] * 1e6


def median_rows(rows: Sequence[Sequence[float]]) -> tuple[float, ...]:
    """Column-wise median of equally long rows (one row per round)."""
    return tuple(statistics.median(row[i] for row in rows) for i in range(len(rows[0])))


async def start_announced(
    argv: list[str], env: dict[str, str], pattern: str, cpu: int | None = None
) -> tuple[asyncio.subprocess.Process, str]:
    """Start ``argv`` (on ``cpu``) and return it with the first match of ``pattern`` on stderr.

    Servers announce where they listen on stderr (``listening on ws://...``);
    the rest of stderr is drained in the background so the server never
    blocks on a full pipe.
    """
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env
    )
    if cpu is not None:
        os.sched_setaffinity(process.pid, {cpu})
    assert process.stderr is not None
    while True:
        line = (await process.stderr.readline()).decode()
        if not line:
            raise RuntimeError(f"{argv[:4]} exited before it was ready")
        found = re.search(pattern, line)
        if found:
            asyncio.get_running_loop().create_task(process.stderr.read())
            return process, found.group(1)


async def echo_window(
    ws: aiohttp.ClientWebSocketResponse, total: int, window: int, params: Any
) -> tuple[float, float, float]:
    """``total`` ``echo/echo`` requests with ``window`` in flight: (requests/s, p50 us, p99 us).

    Notifications arriving meanwhile are skipped.
    """
    sent_at = [0.0] * (total + 1)
    latencies: list[float] = []
    next_id = 1

    async def send_one() -> None:
        nonlocal next_id
        if next_id <= total:
            sent_at[next_id] = time.perf_counter()
            frame = orjson.dumps({"id": next_id, "method": "echo/echo", "params": params})
            next_id += 1
            await ws.send_frame(frame, aiohttp.WSMsgType.TEXT)

    start = time.perf_counter()
    for _ in range(window):
        await send_one()
    while len(latencies) < total:
        message = await ws.receive()
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"connection ended after {len(latencies)} answers: {message}")
        answer = orjson.loads(message.data)
        if "id" not in answer:
            continue
        latencies.append(time.perf_counter() - sent_at[answer["id"]])
        await send_one()
    return (total / (time.perf_counter() - start), *percentiles(latencies))


class AnnouncedServer:
    """A server subprocess and the ``ws://`` URL its stderr banner announced.

    An async context manager: started (on ``cpu``) on enter, terminated and
    reaped on exit.
    """

    pattern = r"listening on (ws://\S+)"

    def __init__(self, argv: list[str], env: dict[str, str], cpu: int | None = None) -> None:
        self.argv, self.env, self.cpu = argv, env, cpu
        self.url = ""
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Any:
        self.proc, self.url = await start_announced(self.argv, self.env, self.pattern, self.cpu)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        await self.proc.wait()
