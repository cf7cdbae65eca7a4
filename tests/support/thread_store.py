"""Helpers for the thread store tests, and a timing routine a benchmark can reuse.

:func:`meta` makes valid metadata; :func:`ids`/:func:`walk` list through a
store; :func:`populate`/:func:`snapshot` build and capture a varied home;
:func:`measure` times creating, listing, paging, rebuilding and reading on a
fresh home and returns a one-line summary.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import attrs

from plugins_builtin.threads.store import (
    MAX_LIMIT,
    ListPage,
    ListQuery,
    LocalThreadStore,
    ThreadMeta,
)

__all__ = ["NOW", "ids", "lines", "measure", "meta", "populate", "snapshot", "walk"]

NOW = int(time.time())


def meta(**changes: Any) -> ThreadMeta:
    """Metadata of a new thread (fresh id, created now), with ``changes``."""
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "created_at": NOW,
        "updated_at": NOW,
        "cwd": "/work/a",
        "model_provider": "openai",
        "model": "gpt-5.5",
    }
    values.update(changes)
    return ThreadMeta(**values)


async def ids(store: LocalThreadStore, **query: Any) -> list[str]:
    """The ids of one big page of ``ListQuery(**query)``."""
    page = await store.list(ListQuery(limit=MAX_LIMIT, **query))
    return [m.id for m in page.items]


async def walk(store: LocalThreadStore, query: ListQuery) -> list[ListPage]:
    """Every page of ``query``, following ``next_cursor``."""
    pages = [await store.list(query)]
    while pages[-1].next_cursor is not None:
        cursor = pages[-1].next_cursor
        pages.append(await store.list(attrs.evolve(query, cursor=cursor)))
    return pages


def lines(path: str | None) -> list[bytes]:
    """A rollout's lines, newlines kept."""
    assert path is not None
    return Path(path).read_bytes().splitlines(keepends=True)


async def populate(store: LocalThreadStore, count: int = 30) -> list[ThreadMeta]:
    """Threads with varied cwds, sources, appends, updates, recency; some archived."""
    made = []
    for i in range(count):
        m = await store.create(
            meta(
                created_at=NOW - i * 3600,
                updated_at=NOW - i * 3600,
                cwd=f"/work/{i % 3}",
                source="cli" if i % 4 == 0 else "vscode",
                git_info={"branch": f"b{i}"} if i % 5 == 0 else None,
            )
        )
        if i % 2 == 0:
            await store.append(m.id, [{"type": "turn", "i": i}])
        if i % 3 == 0:
            await store.update(m.id, name=f"name {i}", preview=f"preview {i}")
        if i % 6 == 1:
            await store.update(m.id, recency_at=NOW + i, updated_at=NOW - i)
        if i % 7 == 0:
            await store.archive(m.id)
        made.append(m)
    return made


async def snapshot(store: LocalThreadStore) -> list[list[ThreadMeta]]:
    """Full listings, active and archived, in every sort order."""
    out = []
    for archived in (False, True):
        for key in ("created_at", "updated_at", "recency_at"):
            page = await store.list(ListQuery(archived=archived, sort_key=key, limit=MAX_LIMIT))
            out.append(page.items)
    return out


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


async def measure(home: Path, count: int) -> str:
    """Time the store on a fresh ``home`` holding ``count`` threads; a summary line."""
    s = LocalThreadStore(home)
    await s.open()
    started = time.perf_counter()
    for i in range(count):
        await s.create(meta(created_at=NOW - i * 60, cwd=f"/work/{i % 10}"))
    create_s = time.perf_counter() - started
    await s.close()

    async def timed(query: ListQuery) -> float:
        t0 = time.perf_counter()
        await s.list(query)
        return time.perf_counter() - t0

    s = LocalThreadStore(home)
    await s.open()
    # As if the threads were made a while ago: no directory is "racily" recent.
    for directory in [home / "sessions", *(home / "sessions").rglob("*")]:
        if directory.is_dir():
            os.utime(directory, (NOW - 60, NOW - 60))
    cold = await timed(ListQuery())
    warm = min([await timed(ListQuery()) for _ in range(20)])
    await s.create(meta(created_at=NOW))  # its directory changed: listed again
    fresh = await timed(ListQuery())
    db_only = min([await timed(ListQuery(use_state_db_only=True)) for _ in range(20)])
    cwd = min([await timed(ListQuery(use_state_db_only=True, cwds=["/work/3"])) for _ in range(20)])
    t0 = time.perf_counter()
    pages = await walk(s, ListQuery(use_state_db_only=True, limit=100))
    walk_s = time.perf_counter() - t0
    assert sum(len(p.items) for p in pages) == count + 1
    t0 = time.perf_counter()
    assert await s.rebuild() == count + 1
    rebuild_s = time.perf_counter() - t0

    big = await s.create(meta())
    turn: list[dict[str, Any]] = [
        {"type": "user", "text": "please fix the failing test " * 4},
        {"type": "item", "item": {"type": "agentMessage", "text": "Looking at it. " * 20}},
        {"type": "item", "item": {"type": "commandExecution", "output": "ok\n" * 100}},
        {"type": "turn_completed", "usage": {"input": 1234, "output": 567}},
    ]
    for _ in range(1000):
        await s.append(big.id, turn)
    t0 = time.perf_counter()
    stored = await s.read(big.id)
    read_s = time.perf_counter() - t0
    assert len(stored.records) == 4000
    size = Path(big.path or "").stat().st_size
    await s.close()
    return (
        f"thread store, {count} threads: create {_ms(create_s / count)} each; "
        f"list page of 25: first after open (full scan) {_ms(cold)}, "
        f"reconciled {_ms(warm)}, reconciled after a create {_ms(fresh)}, "
        f"useStateDbOnly {_ms(db_only)}, cwd filter {_ms(cwd)}; "
        f"all {len(pages)} pages of 100 {_ms(walk_s)}; rebuild {_ms(rebuild_s)}; "
        f"read of a 1,000-turn thread ({size / 1e6:.1f} MB, 4,000 records) {_ms(read_s)}"
    )
