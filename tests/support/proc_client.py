"""A client process for teardown tests: starts long-running commands, then waits.

    python proc_client.py ws://127.0.0.1:PORT MARKER
    python proc_client.py stdio HOME MARKER
    python proc_client.py ws://127.0.0.1:PORT --escapers MARKER

It starts ``command/exec`` (pipes and PTY) and ``process/spawn`` children
whose command lines contain MARKER (each spawning a grandchild too), prints
``ready`` and sleeps until it is killed. The test then kills it with -9.
With ``--escapers`` the grandchildren leave the process group (``setsid``).
"""

from __future__ import annotations

import asyncio
import sys

from kernel.client import Client


async def main() -> None:
    target, marker = sys.argv[1], sys.argv[-1]
    if target == "stdio":
        client = await Client.spawn(plugins=["process"], home=sys.argv[2])
    else:
        client = await Client.connect(target)
    await client.initialize(experimental=True)
    script = f"sleep {marker} & sleep {marker}"
    if "--escapers" in sys.argv:
        script = f"setsid sleep {marker} & (sleep {marker} &) ; sleep {marker}"
    client.request_nowait("command/exec", {"command": ["sh", "-c", script], "disableTimeout": True})
    client.request_nowait(
        "command/exec",
        {
            "command": ["sh", "-c", script],
            "processId": "tty",
            "tty": True,
            "disableTimeout": True,
        },
    )
    await client.request(
        "process/spawn",
        {"command": ["sh", "-c", script], "cwd": "/", "processHandle": "spawned"},
    )
    print("ready", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main())
