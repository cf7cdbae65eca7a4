"""Every descriptor has one owner: mixed fs + exec load loses no write, on both loops.

Under uvloop the process plugin once closed each exec's output pipes twice
(by the loop and by ``Popen``'s file objects). The second ``close()`` hit
whatever file another thread had opened in between with the same number,
and ``fs/writeFile`` answered success for files that read back empty,
doubled or stale. These tests run fs and exec traffic side by side on one
server, read back every write, check that the server's descriptor count
returns to where it started (nothing leaked), and, where ``strace`` works,
that the server's main thread never closed a descriptor that was already
closed.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")

WRITERS = 8
EXECUTORS = 4
ROUNDS = 50


def _strace_works() -> bool:
    if shutil.which("strace") is None:
        return False
    try:
        done = subprocess.run(
            ["strace", "-qq", "-o", "/dev/null", "true"], capture_output=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


STRACE = _strace_works()


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def _writer(client, directory: Path, n: int, problems: list[str]) -> None:
    rng = random.Random(n)
    path = directory / f"file-{n}"
    for i in range(ROUNDS):
        data = f"writer {n} round {i}\n".encode() + rng.randbytes(rng.randrange(0, 200_000))
        await client.request(
            "fs/writeFile", {"path": str(path), "dataBase64": base64.b64encode(data).decode()}
        )
        back = await client.request("fs/readFile", {"path": str(path)})
        if base64.b64decode(back["dataBase64"]) != data:
            problems.append(f"{path} round {i}: read back differs from what was written")
        if i % 10 == 0:
            listing = await client.request("fs/readDirectory", {"path": str(directory)})
            if f"file-{n}" not in {e["fileName"] for e in listing["entries"]}:
                problems.append(f"{directory}: listing lacks file-{n}")
            meta = await client.request("fs/getMetadata", {"path": str(path)})
            if not meta["isFile"]:
                problems.append(f"{path}: not reported as a file")


async def _executor(client, n: int, problems: list[str]) -> None:
    for i in range(ROUNDS):
        tag = f"exec-{n}-{i}"
        params: dict = {"command": ["sh", "-c", 'echo "$0"; echo err >&2', tag]}
        if i % 5 == 4:  # a PTY now and then: its descriptors too
            params = {"command": ["sh", "-c", 'echo "$0"', tag], "tty": True, "processId": tag}
        result = await client.request("command/exec", params)
        if result["exitCode"] != 0 or ("tty" not in params and result["stdout"] != tag + "\n"):
            problems.append(f"{tag}: unexpected result {result}")


@pytest.mark.parametrize("event_loop", ["uvloop", "asyncio"])
async def test_mixed_fs_and_exec_load_keeps_every_write(serve, tmp_path, event_loop):
    if event_loop == "uvloop":
        pytest.importorskip("uvloop")
    trace = tmp_path / "strace.out"
    # Without -f: the event loop runs on the main thread, where every pipe
    # is closed; children and fs worker threads are not traced.
    prefix = ["strace", "-qq", "-Z", "-e", "trace=close", "-o", str(trace)] if STRACE else []
    args = ["-c", f'kernel.event_loop="{event_loop}"']
    work = tmp_path / "work"
    work.mkdir()
    async with serve(plugins=["fs", "process", "probe"], args=args, prefix=prefix) as served:
        client = served.client
        await client.initialize()
        pid = (await client.request("probe/state"))["pid"]
        # Warm up once so lazily opened descriptors (thread pools) exist before counting.
        await _executor_once(client)
        await client.request("fs/readDirectory", {"path": str(work)})
        before = _open_fds(pid)
        problems: list[str] = []
        await asyncio.gather(
            *(_writer(client, work, n, problems) for n in range(WRITERS)),
            *(_executor(client, n, problems) for n in range(EXECUTORS)),
        )
        after = _open_fds(pid)
    assert not problems, "\n".join(problems[:20])
    assert f"(event loop: {event_loop})" in served.log()
    # A few descriptors come and go (thread wake-up pipes); hundreds of execs
    # leaking one each would not hide in this margin.
    assert after - before < 10, f"descriptors grew from {before} to {after}"
    if STRACE:
        failed = [line for line in trace.read_text().splitlines() if "EBADF" in line]
        assert not failed, f"{len(failed)} close() calls on closed descriptors: {failed[:5]}"


async def _executor_once(client) -> None:
    await client.request("command/exec", {"command": ["true"]})
    await client.request("command/exec", {"command": ["true"], "tty": True, "processId": "w"})
