"""external_agent: importing a large history of the other agent's sessions.

A fake Claude Code home holds N sessions (two turns each,
``tests/support/external_agent_home.write_sessions``). The kernel
(``kernel run --plugins threads,external_agent`` over stdio, ``$HOME`` at
the fake home, a fresh server home each run) is measured:

* **detect:** ``externalAgentConfig/detect {includeHome, maxSessions: N}``
  to its answer (every session read, hashed and summarized);
* **import:** ``externalAgentConfig/import`` of the detected SESSIONS item,
  from the request to ``externalAgentConfig/import/completed`` (every
  session read again, converted, written as a thread: rollout, index,
  ledger);
* **thread/list:** all N imported threads in one page, to show they are
  ordinary stored threads.

Baselines, in the same run by this driver, in-process:

* **parse:** read the same N files and parse every line with
  ``json.loads`` (the least any importer must do);
* **store floor:** parse, then write N threads of the same size straight
  through the threads family's ``LocalThreadStore`` (create, one append of
  13 records, one metadata update, as an import does; durable as the server
  runs it), with no RPC, no conversion and no ledger.

Prints the median over runs of each figure, the per-session cost, and the
ratios of detect and import to each baseline (median and range).

    python benchmarks/external_agent.py                   # 1,000 sessions, 3 runs
    python benchmarks/external_agent.py --sessions 200 --runs 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from _common import pin_cpus

from kernel.client import Client
from plugins_builtin.threads.store import LocalThreadStore, ThreadMeta
from tests.support.external_agent_home import write_sessions

SERVER_CPU: int | None = None


def baseline(paths: list[Path]) -> float:
    """Seconds to read and parse every line of every session in-process."""
    started = time.perf_counter()
    records = 0
    for path in paths:
        with path.open("rb") as handle:
            for line in handle:
                if line.strip():
                    json.loads(line)
                    records += 1
    assert records == 4 * len(paths)
    return time.perf_counter() - started


async def store_floor(paths: list[Path]) -> float:
    """Seconds to parse the sessions and write as many threads through the store."""
    home = Path(tempfile.mkdtemp(prefix="kernel-ea-floor-"))
    store = LocalThreadStore(home, durable=True)
    await store.open()
    try:
        started = time.perf_counter()
        for path in paths:
            lines = [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
            meta = ThreadMeta(
                id=str(uuid.uuid4()),
                created_at=1_700_000_000,
                updated_at=1_700_000_000,
                cwd="/tmp",
                model_provider="openai",
                name="title",
                preview=lines[0]["message"]["content"],
            )
            meta = await store.create(meta)
            records = [{"type": "settings", "settings": {"cwd": "/tmp"}}]
            records += [{"type": "item", "item": line["message"]} for line in lines] * 3
            await store.append(meta.id, records)
            await store.update(meta.id, updated_at=1_700_000_100)
        return time.perf_counter() - started
    finally:
        await store.close()
        shutil.rmtree(home, ignore_errors=True)


async def one_run(root: Path, count: int) -> dict[str, float]:
    """Detect, import and list through a fresh kernel; seconds per phase."""
    home = Path(tempfile.mkdtemp(prefix="kernel-ea-bench-"))
    env = {**os.environ, "HOME": str(root), "KERNEL_HOME": str(home), "KERNEL_LOG": "warning"}
    client = await Client.spawn(plugins=["threads", "external_agent"], home=str(home), env=env)
    try:
        if SERVER_CPU is not None and client.process is not None:
            os.sched_setaffinity(client.process.pid, {SERVER_CPU})
        await client.initialize()
        started = time.perf_counter()
        detected = await client.request(
            "externalAgentConfig/detect", {"includeHome": True, "maxSessions": count}
        )
        detect_s = time.perf_counter() - started
        items = [i for i in detected["items"] if i["itemType"] == "SESSIONS"]
        assert len(items[0]["details"]["sessions"]) == count
        started = time.perf_counter()
        answer = await client.request("externalAgentConfig/import", {"migrationItems": items})
        while True:
            note = await client.next_notification(timeout=600)
            if note.method == "externalAgentConfig/import/completed":
                if note.params["importId"] == answer["importId"]:
                    break
        import_s = time.perf_counter() - started
        (result,) = note.params["itemTypeResults"]
        assert len(result["successes"]) == count and not result["failures"], result["failures"][:3]
        started = time.perf_counter()
        listed = await client.request("thread/list", {"limit": count})
        list_s = time.perf_counter() - started
        assert len(listed["data"]) == count
    finally:
        await client.close()
        shutil.rmtree(home, ignore_errors=True)
    return {"detect": detect_s, "import": import_s, "list": list_s}


def _ratio(values: list[float]) -> str:
    return f"{statistics.median(values):6.1f}x ({min(values):.1f}-{max(values):.1f})"


async def main() -> None:
    global SERVER_CPU
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    cfg = parser.parse_args()
    placement, SERVER_CPU = pin_cpus()
    root = Path(tempfile.mkdtemp(prefix="kernel-ea-bench-home-"))
    work = root / "work"
    work.mkdir()
    paths = write_sessions(root, cfg.sessions, work)
    size = sum(p.stat().st_size for p in paths)
    print(f"{cfg.sessions} sessions, {size / 1e6:.1f} MB, {placement}")
    rows: list[dict[str, float]] = []
    try:
        for run in range(cfg.runs):
            base = baseline(paths)
            floor = await store_floor(paths)
            figures = await one_run(root, cfg.sessions)
            rows.append({"parse": base, "store floor": floor, **figures})
            print(
                f"  run {run + 1}: "
                + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in rows[-1].items())
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    n = cfg.sessions
    print(f"{'phase':<12} {'median':>10} {'per session':>12}  {'/ parse':<20} / store floor")
    for phase in ("parse", "store floor", "detect", "import", "list"):
        values = [row[phase] for row in rows]
        median = statistics.median(values)
        ratios = [
            _ratio([r[phase] / r[base] for r in rows]) if phase in wanted else ""
            for base, wanted in (
                ("parse", ("detect", "import", "list")),
                ("store floor", ("import",)),
            )
        ]
        print(
            f"{phase:<12} {median * 1000:8.0f} ms {median / n * 1e6:9.0f} us  "
            f"{ratios[0]:<20} {ratios[1]}"
        )


if __name__ == "__main__":
    asyncio.run(main())
