"""The threads family: turn overhead, delta throughput, thread/list and history reads.

Each scenario runs the kernel (``kernel run --plugins threads,models`` over
stdio, provider ``mock`` pointed at the model stand-in of
``tests/support/model_server.py``, which runs in this process) against a
baseline measured in the same run by the same driver:

1. **Turn latency:** N simple text turns on one thread, ``turn/start`` to
   ``turn/completed``, every notification read. Baseline: the same streaming
   ``POST /v1/responses`` (the very body and headers the kernel sent for that
   turn) made by this driver straight to the stand-in, stream read to its
   end. The difference is what the server itself adds per turn.
2. **Deltas/s:** one turn streaming K small ``item/agentMessage/delta``
   notifications, counted by the client. Baseline: the same SSE stream read
   straight from the stand-in. The stand-in writes it in 16 KiB chunks (the
   same bytes): written event by event, it would bound the baseline itself.
3. **thread/list** over a home of T threads (written through
   ``LocalThreadStore`` before the server starts): first page of 25, the
   first call after start, and all pages of 100, with and without
   ``useStateDbOnly``. Baseline: the same keyset query on ``state.sqlite``
   with ``sqlite3``.
4. **History** of a 1,000-turn thread: ``thread/read {includeTurns}``,
   ``thread/turns/list`` (first page of 25, all pages of 100), not loaded and
   loaded. Baseline: read the rollout and parse every line with orjson (once,
   also for "all pages").

The driver (and the stand-in) run on one CPU, the kernel on another (with two
or more CPUs). Prints one line per scenario: median over runs of the kernel
and baseline figures, the ratio (median and range over runs) and, for
latencies, kernel minus baseline.

    python benchmarks/threads.py                 # full size, 3 runs
    python benchmarks/threads.py --quick         # smoke run, 1 run
    python benchmarks/threads.py --runs 5 --only turns,deltas
    python benchmarks/threads.py -c kernel_plugins.threads.durable_rollouts=false
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).parent))
from _common import pin_cpus, uvloop_available
from _threads_support import (
    Rpc,
    build_long_thread,
    chunked,
    median_time,
    model_server,
    p99,
    parse_rollout,
    populate_threads,
    sql_first_page,
    sql_walk,
    sse_post,
)

SERVER_CPU: int | None = None
SCENARIOS = ("turns", "deltas", "list", "history")

# key, label, kind ("s": seconds, lower is better; "rate": per second, higher is better)
ROWS = [
    ("turn_p50", "turn latency p50", "s"),
    ("turn_p99", "turn latency p99", "s"),
    ("deltas", "agentMessage deltas/s", "rate"),
    ("list_cold", "thread/list 25, first call after start", "s"),
    ("list_first", "thread/list 25", "s"),
    ("list_first_db", "thread/list 25, useStateDbOnly", "s"),
    ("list_all", "thread/list all pages of 100", "s"),
    ("list_all_db", "thread/list all pages of 100, useStateDbOnly", "s"),
    ("read", "thread/read includeTurns", "s"),
    ("turns_first", "thread/turns/list 25", "s"),
    ("turns_all", "thread/turns/list all pages of 100", "s"),
    ("turns_first_loaded", "thread/turns/list 25, loaded", "s"),
    ("turns_all_loaded", "thread/turns/list all pages, loaded", "s"),
]

Results = dict[str, tuple[float, float]]  # key -> (kernel, baseline)


async def spawn(cfg: argparse.Namespace, ms: Any, home: Path, work: Path) -> Rpc:
    """A kernel on ``home``, pinned to the server CPU, its stderr appended to the work dir."""
    return await Rpc.spawn(home, ms.base_url, SERVER_CPU, work / "stderr.log", *cfg.kernel_args)


async def turn_scenarios(
    cfg: argparse.Namespace, ms: model_server.ModelServer, session: Any, work: Path, run: int
) -> Results:
    """Scenarios 1 and 2 on a fresh home."""
    rpc = await spawn(cfg, ms, work / f"turns-{run}", work)
    url = f"{ms.base_url}/responses"
    results: Results = {}

    async def replay_last() -> tuple[float, int]:
        """The kernel's last model request, made again by the driver."""
        sent = ms.requests[0]
        drop = ("host", "content-length")
        headers = {k: v for k, v in sent.headers.items() if k.lower() not in drop}
        started = time.perf_counter()
        deltas = await sse_post(session, url, sent.raw, headers)
        return time.perf_counter() - started, deltas

    if "turns" in cfg.only:
        simple = model_server.text("Hel", "lo", " world")
        ms.router = lambda request: simple
        thread = (await rpc.call("thread/start", {"cwd": "/tmp"}))["thread"]["id"]
        kernel, bare = [], []
        for i in range(cfg.warmup + cfg.turns):  # interleaved: drift hits both alike
            ms.requests.clear()
            seconds, _, deltas = await rpc.turn(thread, f"turn {i}: say hello")
            base, base_deltas = await replay_last()
            assert deltas == base_deltas == 3, (deltas, base_deltas)
            if i >= cfg.warmup:
                kernel.append(seconds)
                bare.append(base)
        results["turn_p50"] = (statistics.median(kernel), statistics.median(bare))
        results["turn_p99"] = (p99(kernel), p99(bare))

    if "deltas" in cfg.only:
        words = [f" w{i % 1000}" for i in range(cfg.deltas)]
        big = chunked(model_server.text(*words))
        ms.router = lambda request: big
        kernel, bare = [], []
        for _ in range(cfg.delta_reps):
            thread = (await rpc.call("thread/start", {"cwd": "/tmp"}))["thread"]["id"]
            ms.requests.clear()
            seconds, _, deltas = await rpc.turn(thread, "stream a long answer")
            base, base_deltas = await replay_last()
            assert deltas == base_deltas == cfg.deltas, (deltas, base_deltas)
            kernel.append(seconds)
            bare.append(base)
        results["deltas"] = (
            cfg.deltas / statistics.median(kernel),
            cfg.deltas / statistics.median(bare),
        )
    await rpc.close()
    return results


async def list_scenarios(
    cfg: argparse.Namespace, ms: model_server.ModelServer, work: Path, run: int
) -> Results:
    """Scenario 3 on the shared pre-populated home."""
    home = work / "list-home"
    rpc = await spawn(cfg, ms, home, work)
    db_path = home / "state.sqlite"

    async def timed(params: dict[str, Any]) -> float:
        started = time.perf_counter()
        page = await rpc.call("thread/list", params)
        elapsed = time.perf_counter() - started
        assert len(page["data"]) == min(params["limit"], cfg.threads)
        return elapsed

    async def walk(extra: dict[str, Any]) -> float:
        started = time.perf_counter()
        cursor, count = None, 0
        while True:
            params = {"limit": 100, **extra, **({"cursor": cursor} if cursor else {})}
            page = await rpc.call("thread/list", params)
            count += len(page["data"])
            if (cursor := page["nextCursor"]) is None:
                break
        elapsed = time.perf_counter() - started
        assert count == cfg.threads, count
        return elapsed

    results: Results = {}
    cold = await timed({"limit": 25})
    started = time.perf_counter()
    fresh = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    sql_first_page(fresh, 25)
    results["list_cold"] = (cold, time.perf_counter() - started)
    fresh.close()

    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    for key, extra in (("list_first", {}), ("list_first_db", {"useStateDbOnly": True})):
        kernel, bare = [], []
        for _ in range(cfg.list_reps):
            kernel.append(await timed({"limit": 25, **extra}))
            bare.append(median_time(lambda: sql_first_page(db, 25), 1))
        results[key] = (statistics.median(kernel), statistics.median(bare))
    for key, extra in (("list_all", {}), ("list_all_db", {"useStateDbOnly": True})):
        kernel, bare = [], []
        for _ in range(cfg.walk_reps):
            kernel.append(await walk(extra))
            bare.append(median_time(lambda: sql_walk(db, 100), 1))
        results[key] = (statistics.median(kernel), statistics.median(bare))
    db.close()
    await rpc.close()
    return results


async def history_scenarios(
    cfg: argparse.Namespace, ms: model_server.ModelServer, work: Path, thread: tuple[str, str]
) -> Results:
    """Scenario 4 on the shared home holding the long thread."""
    thread_id, path = thread
    rpc = await spawn(cfg, ms, work / "history-home", work)
    turns = cfg.history_turns

    async def timed(method: str, params: dict[str, Any]) -> float:
        started = time.perf_counter()
        result = await rpc.call(method, {"threadId": thread_id, **params})
        elapsed = time.perf_counter() - started
        if method == "thread/read":
            assert len(result["thread"]["turns"]) == turns
            assert all(len(t["items"]) == 2 for t in result["thread"]["turns"])
        else:
            assert len(result["data"]) == min(params["limit"], turns)
        return elapsed

    async def walk() -> float:
        started = time.perf_counter()
        cursor, count = None, 0
        while True:
            params = {"threadId": thread_id, "limit": 100}
            if cursor:
                params["cursor"] = cursor
            page = await rpc.call("thread/turns/list", params)
            count += len(page["data"])
            if (cursor := page["nextCursor"]) is None:
                break
        elapsed = time.perf_counter() - started
        assert count == turns, count
        return elapsed

    async def median_of(fn: Any, repeat: int) -> float:
        return statistics.median([await fn() for _ in range(repeat)])

    reps = cfg.read_reps
    kernel: dict[str, float] = {
        "read": await median_of(lambda: timed("thread/read", {"includeTurns": True}), reps),
        "turns_first": await median_of(lambda: timed("thread/turns/list", {"limit": 25}), reps),
        "turns_all": await median_of(walk, max(1, reps // 2)),
    }
    await rpc.call("thread/resume", {"threadId": thread_id, "excludeTurns": True})
    kernel["turns_first_loaded"] = await median_of(
        lambda: timed("thread/turns/list", {"limit": 25}), reps
    )
    kernel["turns_all_loaded"] = await median_of(walk, max(1, reps // 2))
    await rpc.close()
    parsed = median_time(lambda: parse_rollout(path), reps)
    return {key: (value, parsed) for key, value in kernel.items()}


def _fmt(value: float, kind: str) -> str:
    if kind == "rate":
        return f"{value:,.0f}/s"
    ms = value * 1e3
    return f"{ms:.3f} ms" if ms < 1 else f"{ms:.2f} ms" if ms < 100 else f"{ms:.0f} ms"


def _num(ratio: float) -> str:
    return f"{ratio:.2f}" if ratio < 1 else f"{ratio:.1f}"


def report(runs: list[Results]) -> None:
    """One line per scenario: medians over runs, ratio median (range), kernel - baseline."""
    print(
        f"\n{'scenario':<46} {'kernel':>12} {'baseline':>12}  "
        f"{'ratio: median (range)':<24} kernel - baseline"
    )
    for key, label, kind in ROWS:
        rows = [r[key] for r in runs if key in r]
        if not rows:
            continue
        kernel = statistics.median(k for k, _ in rows)
        bare = statistics.median(b for _, b in rows)
        ratios = [k / b for k, b in rows]
        r_med, r_lo, r_hi = statistics.median(ratios), min(ratios), max(ratios)
        if kind == "rate":
            ratio = f"{r_med:.2f}x ({r_lo:.2f}-{r_hi:.2f})"
            diff = ""
        else:
            ratio = f"x{_num(r_med)} (x{_num(r_lo)}-x{_num(r_hi)})"
            diffs = [(k - b) * 1e3 for k, b in rows]
            d_med = statistics.median(diffs)
            diff = f"{d_med:+.2f} ms ({min(diffs):+.2f} to {max(diffs):+.2f})"
        print(f"{label:<46} {_fmt(kernel, kind):>12} {_fmt(bare, kind):>12}  {ratio:<24} {diff}")


async def main() -> None:
    global SERVER_CPU
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 run (smoke test)")
    parser.add_argument("--runs", type=int, help="kernel starts per scenario (default 3)")
    parser.add_argument("--turns", type=int, help="timed turns per run (300)")
    parser.add_argument("--deltas", type=int, help="deltas in the streaming turn (20000)")
    parser.add_argument("--threads", type=int, help="stored threads for thread/list (10000)")
    parser.add_argument("--history-turns", type=int, help="turns of the long thread (1000)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated subset")
    parser.add_argument(
        "-c",
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="passed to every kernel as -c (e.g. kernel_plugins.threads.durable_rollouts=false)",
    )
    parser.add_argument("--no-pin", action="store_true", help="let the scheduler place processes")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    cfg = parser.parse_args()
    quick = cfg.quick
    defaults = {
        "runs": 1 if quick else 3,
        "turns": 20 if quick else 300,
        "deltas": 2000 if quick else 20000,
        "threads": 500 if quick else 10000,
        "history_turns": 100 if quick else 1000,
    }
    for name, value in defaults.items():
        if getattr(cfg, name) is None:
            setattr(cfg, name, value)
    cfg.warmup = 3 if quick else 10
    cfg.delta_reps = 1 if quick else 3
    cfg.list_reps = 10 if quick else 50
    cfg.walk_reps = 2 if quick else 3
    cfg.read_reps = 4 if quick else 10
    cfg.only = set(cfg.only.split(","))
    cfg.kernel_args = [arg for value in cfg.config for arg in ("-c", value)]
    unknown = cfg.only - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    placement = "not pinned (--no-pin)"
    if not cfg.no_pin:
        placement, SERVER_CPU = pin_cpus()
    work = Path(tempfile.mkdtemp(prefix="kernel-threads-bench-", dir=os.environ.get("BENCH_DIR")))
    print(
        f"{placement}; kernel event loop: {'uvloop' if uvloop_available() else 'asyncio'}; "
        f"{cfg.runs} run(s); turns {cfg.turns} (+{cfg.warmup} warm-up), deltas {cfg.deltas}, "
        f"threads {cfg.threads}, history {cfg.history_turns} turns; work in {work}"
        + (f"; kernel {' '.join(cfg.kernel_args)}" if cfg.kernel_args else "")
    )
    runs: list[Results] = [{} for _ in range(cfg.runs)]
    try:
        long_thread = ("", "")
        if "list" in cfg.only:
            started = time.perf_counter()
            await populate_threads(work / "list-home", cfg.threads)
            print(f"  {cfg.threads} threads written in {time.perf_counter() - started:.1f} s")
        if "history" in cfg.only:
            long_thread = await build_long_thread(work / "history-home", cfg.history_turns)
            size = Path(long_thread[1]).stat().st_size
            print(f"  {cfg.history_turns}-turn rollout: {size / 1e6:.1f} MB")
        async with model_server.ModelServer() as ms, aiohttp.ClientSession() as session:
            for run in range(cfg.runs):
                started = time.perf_counter()
                if cfg.only & {"turns", "deltas"}:
                    runs[run].update(await turn_scenarios(cfg, ms, session, work, run))
                if "list" in cfg.only:
                    runs[run].update(await list_scenarios(cfg, ms, work, run))
                if "history" in cfg.only:
                    runs[run].update(await history_scenarios(cfg, ms, work, long_thread))
                print(f"  run {run + 1} done in {time.perf_counter() - started:.1f} s")
        report(runs)
    finally:
        if cfg.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
