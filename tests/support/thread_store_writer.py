"""A child process that appends to one stored thread as fast as it can, until killed.

``python -m tests.support.thread_store_writer HOME THREAD_ID START SEED``
opens a :class:`LocalThreadStore` on ``HOME`` and appends batches of 1-4
records ``{"type": "n", "n": i, "len": L, "pad": "x" * L}`` (``i`` counting
from ``START``; ``L`` mostly small, a few up to 256 KiB so some writes
are large and a kill may land inside one) to
``THREAD_ID``, printing ``ready`` once the first batch is written. The kill -9
test kills it at a random moment and checks what the rollout holds.
"""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

from plugins_builtin.threads.store import LocalThreadStore


async def main(home: Path, thread_id: str, start: int, seed: int) -> None:
    rng = random.Random(seed)
    store = LocalThreadStore(home)
    await store.open()
    n = start
    announced = False
    while True:
        batch = []
        for _ in range(rng.randint(1, 4)):
            size = rng.randint(0, 200) if rng.random() < 0.97 else rng.randint(8192, 262144)
            batch.append({"type": "n", "n": n, "len": size, "pad": "x" * size})
            n += 1
        await store.append(thread_id, batch)
        if not announced:
            sys.stdout.write("ready\n")
            sys.stdout.flush()
            announced = True


if __name__ == "__main__":
    home, thread_id, start, seed = sys.argv[1:5]
    asyncio.run(main(Path(home), thread_id, int(start), int(seed)))
