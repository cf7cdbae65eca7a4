"""The thread store recovers: the index is derived from rollouts, and rollouts survive crashes.

Rebuilding and reconciling the index, torn and damaged lines, ``kill -9``
at random moments, concurrent appends, durable sync, and a timing print
for listing (not asserted).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from plugins_builtin.threads.store import (
    LocalThreadStore,
    ThreadNotFound,
)
from tests.support.thread_store import NOW, ids, lines, measure, meta, populate, snapshot

REPO = Path(__file__).parent.parent


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
async def store(home: Path):
    s = LocalThreadStore(home)
    await s.open()
    yield s
    await s.close()


# -- the index is derived from the rollouts -----------------------------------------------


async def test_rebuild_gives_the_same_list(store: LocalThreadStore) -> None:
    await populate(store)
    before = await snapshot(store)
    assert sum(len(items) for items in before[::3]) == 30
    assert await store.rebuild() == 30
    assert await snapshot(store) == before


async def test_missing_or_old_database_is_rebuilt_on_open(home: Path) -> None:
    s = LocalThreadStore(home)
    await s.open()
    await populate(s, 12)
    before = await snapshot(s)
    await s.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{home / 'state.sqlite'}{suffix}").unlink(missing_ok=True)
    s = LocalThreadStore(home)
    await s.open()
    assert await snapshot(s) == before
    await s.close()
    # An older schema version: rebuilt; other families' tables survive.
    with sqlite3.connect(home / "state.sqlite") as db:
        db.execute("UPDATE thread_store_meta SET value = '0' WHERE key = 'schema_version'")
        db.execute("DELETE FROM threads")
        db.execute("CREATE TABLE goals (id TEXT)")
        db.execute("INSERT INTO goals VALUES ('g1')")
    db.close()
    s = LocalThreadStore(home)
    await s.open()
    assert await snapshot(s) == before
    await s.close()
    with sqlite3.connect(home / "state.sqlite") as db:
        assert db.execute("SELECT id FROM goals").fetchall() == [("g1",)]
    db.close()
    # A file that is not a database at all: moved aside, rebuilt.
    (home / "state.sqlite").write_bytes(b"this is not sqlite" * 100)
    s = LocalThreadStore(home)
    await s.open()
    assert await snapshot(s) == before
    await s.close()
    assert list(home.glob("state.sqlite.corrupt-*"))


async def test_reconcile_indexes_unknown_rollouts(store: LocalThreadStore, home: Path) -> None:
    kept = await store.create(meta(created_at=NOW))
    # Rollouts written by another store (as after a crash before indexing, or copied in).
    other_home = home.parent / "other"
    other = LocalThreadStore(other_home)
    await other.open()
    copied = await other.create(meta(created_at=NOW + 5, cwd="/copied"))
    await other.append(copied.id, [{"type": "turn"}])
    await other.update(copied.id, name="copied in")
    archived = await other.create(meta(created_at=NOW + 6))
    archived = await other.archive(archived.id)
    expected = await other.get(copied.id)
    await other.close()
    assert await ids(store, use_state_db_only=True) == [kept.id]
    for m in (copied, archived):
        rel = Path(m.path or "").relative_to(other_home)
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(m.path or "", home / rel)
    assert await ids(store, use_state_db_only=True) == [kept.id]  # trusts the index
    got = await store.get(copied.id)  # an unknown id: get() reconciles before answering
    assert store.last_reconcile is not None and store.last_reconcile.indexed == 2
    assert await ids(store) == [copied.id, kept.id]
    assert got is not None and expected is not None and expected.path is not None
    assert got == expected.evolve(path=str(home / Path(expected.path).relative_to(other_home)))
    assert await ids(store, archived=True) == [archived.id]
    assert (await store.read(copied.id)).records == [{"type": "turn"}]
    # A rollout that vanished: its row goes too.
    Path(got.path or "").unlink()
    assert await ids(store) == [kept.id]
    assert await store.get(copied.id) is None
    shutil.rmtree(home / "archived_sessions")
    assert await ids(store, archived=True) == []


async def test_reconcile_follows_a_rollout_moved_by_hand(
    store: LocalThreadStore, home: Path
) -> None:
    m = await store.create(meta())
    await store.append(m.id, [{"type": "turn"}])
    assert await ids(store) == [m.id]
    moved = home / "archived_sessions" / Path(m.path or "").name
    moved.parent.mkdir(mode=0o700)
    os.rename(m.path or "", moved)
    assert await ids(store) == [] and await ids(store, archived=True) == [m.id]
    got = await store.get(m.id)
    assert got is not None and got.archived and got.path == str(moved)
    await store.append(m.id, [{"type": "turn"}])  # the append handle follows the move
    assert len((await store.read(m.id)).records) == 2
    shutil.copy2(moved, m.path or "")  # now in both places: one thread, listed once
    assert await ids(store) + await ids(store, archived=True) == [m.id]


# -- crashes -----------------------------------------------------------------------------


@pytest.mark.parametrize("tail", [b'{"type":"n","n":', b'{"type":"n","n":99}', b"\xff\xfe garbage"])
async def test_torn_last_line(home: Path, tail: bytes) -> None:
    s = LocalThreadStore(home)
    await s.open()
    m = await s.create(meta())
    await s.append(m.id, [{"type": "n", "n": 0}, {"type": "n", "n": 1}])
    await s.close()
    with open(m.path or "", "ab") as file:  # a crash in the middle of a write
        file.write(tail)
    s = LocalThreadStore(home)
    await s.open()
    assert [r["n"] for r in (await s.read(m.id)).records] == [0, 1]
    await s.append(m.id, [{"type": "n", "n": 2}])
    assert [r["n"] for r in (await s.read(m.id)).records] == [0, 1, 2]
    assert lines(m.path)[-1] == b'{"type":"n","n":2}\n'
    assert all(line.endswith(b"}\n") for line in lines(m.path))
    await s.close()


async def test_damaged_middle_line_is_skipped(store: LocalThreadStore) -> None:
    m = await store.create(meta())
    await store.append(m.id, [{"type": "n", "n": 0}])
    with open(m.path or "", "ab") as file:
        file.write(b"\x00\x00\x00 not json\n")
    await store.append(m.id, [{"type": "n", "n": 1}])
    assert [r["n"] for r in (await store.read(m.id)).records] == [0, 1]


async def test_kill_9_leaves_a_readable_prefix(home: Path) -> None:
    rng = random.Random(1234)
    s = LocalThreadStore(home)
    await s.open()
    m = await s.create(meta())
    await s.close()
    expected_next = 0
    torn_seen = 0
    for iteration in range(6):
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.thread_store_writer",
                *(str(home), m.id, str(expected_next), str(iteration)),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert child.stdout is not None
        assert await asyncio.to_thread(child.stdout.readline) == b"ready\n"
        await asyncio.sleep(rng.uniform(0.0, 0.25))
        child.send_signal(signal.SIGKILL)
        await asyncio.to_thread(child.wait)
        assert child.returncode == -signal.SIGKILL
        torn_seen += not Path(m.path or "").read_bytes().endswith(b"\n")

        s = LocalThreadStore(home)
        await s.open()
        records = (await s.read(m.id)).records
        numbers = [r["n"] for r in records if r["type"] == "n"]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
        assert numbers[0] == 0 and len(numbers) > expected_next
        assert all(len(r["pad"]) == r["len"] for r in records if r["type"] == "n")
        expected_next = numbers[-1] + 1
        await s.append(m.id, [{"type": "after-crash", "i": iteration}])
        records = (await s.read(m.id)).records
        assert records[-1] == {"type": "after-crash", "i": iteration}
        await s.close()
    print(f"\nkill -9: {expected_next} records over 6 kills, {torn_seen} torn tails repaired")


# -- concurrency -------------------------------------------------------------------------


async def test_concurrent_appends_keep_each_threads_order(store: LocalThreadStore) -> None:
    threads = [await store.create(meta()) for _ in range(5)]
    calls = []
    for seq in range(200):
        for t in threads:
            batch = [{"type": "n", "seq": seq, "part": part} for part in range(seq % 3 + 1)]
            calls.append(store.append(t.id, batch))
    random.Random(7).shuffle(threads)  # reads in another order than writes
    await asyncio.gather(*calls)
    for t in threads:
        records = (await store.read(t.id)).records
        got = [(r["seq"], r["part"]) for r in records]
        assert got == [(seq, part) for seq in range(200) for part in range(seq % 3 + 1)]


async def test_durable_sync(home: Path) -> None:
    s = LocalThreadStore(home, durable=True)
    await s.open()
    m = await s.create(meta())
    await s.append(m.id, [{"type": "turn"}])
    await s.sync(m.id)
    await s.sync(m.id)
    with pytest.raises(ThreadNotFound):
        await s.sync(str(uuid.uuid4()))
    await s.archive(m.id)
    await s.unarchive(m.id)
    await s.close()


# -- timing (printed, not asserted; the 10,000-thread figures come from the benchmark) -----


async def test_list_timing_print(home: Path) -> None:
    count = int(os.environ.get("THREAD_STORE_TIMING_THREADS", "2000"))
    print("\n" + await measure(home, count))
