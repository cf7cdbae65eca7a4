"""Stdio throughput and latency: the kernel against a bare JSONL responder.

Both servers run as subprocesses driven by the same client in the same
invocation. The baseline is the least a Python stdio server can do: asyncio
(uvloop too, when the kernel would use it), read a line, ``orjson.loads``,
write ``orjson.dumps({"id", "result"})``. The kernel serves ``echo/echo`` from
the example plugin (``pip install -e examples/echo_plugin``), an async
handler, through the full path: decode, handshake check, typed params,
handler task, typed result, bounded outbox, batched writes.

The driver keeps exactly W requests in flight: it reads the server's output
in chunks and, for every answer in a chunk, writes one new request in a
single write, so the client costs less than either server. With two or more
CPUs the driver and the server under test are pinned to different CPUs, so
both servers run under the same placement (``--no-pin`` to disable).

    python benchmarks/stdio.py                 # 1 and 32 in flight, 3 rounds
    python benchmarks/stdio.py --requests 50000 --rounds 5 --method echo/echo

Prints requests/s, p50/p99 latency, and kernel/bare ratios (higher is better
for throughput).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parent))
from _common import median_rows, percentiles, pin_cpus, uvloop_available

BARE = r"""
import asyncio, sys, orjson
async def main():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, protocol = await loop.connect_write_pipe(asyncio.Protocol, sys.stdout)
    while line := await reader.readline():
        msg = orjson.loads(line)
        if "id" in msg:
            transport.write(orjson.dumps({"id": msg["id"], "result": msg.get("params")}) + b"\n")
if len(sys.argv) > 1 and sys.argv[1] == "uvloop":
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
"""


SERVER_CPU: int | None = None


async def drive(
    argv: list[str], total: int, window: int, method: str, handshake: bool, env: dict[str, str]
) -> tuple[float, float, float]:
    """Run ``total`` requests with ``window`` in flight; (req/s, p50 us, p99 us)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
        limit=1 << 24,
    )
    assert proc.stdin and proc.stdout
    if SERVER_CPU is not None:
        os.sched_setaffinity(proc.pid, {SERVER_CPU})
    if handshake:
        proc.stdin.write(
            b'{"id":0,"method":"initialize","params":{"clientInfo":'
            b'{"name":"bench","version":"1"}}}\n{"method":"initialized"}\n'
        )
        await proc.stdout.readline()
    params = {"message": "hello world"}
    sent_at = [0.0] * (total + 1)
    latencies: list[float] = []
    next_id = 1

    def requests(count: int) -> bytes:
        nonlocal next_id
        out = []
        now = time.perf_counter()
        for _ in range(count):
            if next_id > total:
                break
            sent_at[next_id] = now
            out.append(orjson.dumps({"id": next_id, "method": method, "params": params}))
            next_id += 1
        return b"\n".join(out) + b"\n" if out else b""

    start = time.perf_counter()
    proc.stdin.write(requests(window))
    received = 0
    pending = b""
    while received < total:
        chunk = await proc.stdout.read(1 << 16)
        if not chunk:
            raise RuntimeError(f"server exited after {received} answers")
        now = time.perf_counter()
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            answer = orjson.loads(line)
            latencies.append(now - sent_at[answer["id"]])
        received += len(lines)
        more = requests(len(lines))
        if more:
            proc.stdin.write(more)
    elapsed = time.perf_counter() - start
    proc.stdin.close()
    await proc.wait()
    return (total / elapsed, *percentiles(latencies))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=30000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--windows", default="1,32")
    parser.add_argument("--method", default="echo/echo")
    parser.add_argument("--no-pin", action="store_true", help="let the scheduler place processes")
    args = parser.parse_args()
    global SERVER_CPU
    placement = "not pinned (--no-pin)"
    if not args.no_pin:
        placement, SERVER_CPU = pin_cpus()

    use_uvloop = uvloop_available()
    home = tempfile.mkdtemp(prefix="kernel-bench-")
    env = {**os.environ, "KERNEL_HOME": home, "KERNEL_LOG": "warning"}
    bare_script = Path(home) / "bare.py"
    bare_script.write_text(BARE)
    bare = [sys.executable, str(bare_script)] + (["uvloop"] if use_uvloop else [])
    plugin = args.method.split("/")[0]
    kernel = [sys.executable, "-m", "kernel", "run", "--plugins", plugin]
    print(
        f"event loop: {'uvloop' if use_uvloop else 'asyncio'} (both servers); {placement}; "
        f"{args.requests} requests x {args.rounds} rounds, median round shown"
    )
    for window in [int(w) for w in args.windows.split(",")]:
        results: dict[str, list[tuple[float, float, float]]] = {"bare": [], "kernel": []}
        for _ in range(args.rounds):  # interleaved so drift hits both alike
            results["bare"].append(
                await drive(bare, args.requests, window, args.method, False, env)
            )
            results["kernel"].append(
                await drive(kernel, args.requests, window, args.method, True, env)
            )
        med = {k: median_rows(v) for k, v in results.items()}
        b, k = med["bare"], med["kernel"]
        for label, row in ((f"in flight {window:>3}: bare  ", b), ("               kernel", k)):
            print(f"{label} {row[0]:>8.0f} req/s  p50 {row[1]:>7.0f} us  p99 {row[2]:>7.0f} us")
        print(
            f"               ratio  {k[0] / b[0]:>8.2f}x throughput, p50 x{k[1] / b[1]:.2f}, "
            f"p99 x{k[2] / b[2]:.2f} (latency: lower is better)"
        )


if __name__ == "__main__":
    asyncio.run(main())
