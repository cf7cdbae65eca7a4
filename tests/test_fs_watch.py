"""fs/watch, fs/unwatch and fs/changed over real transports."""

from __future__ import annotations

import asyncio
import os

import pytest

from kernel import RpcError


async def changes(client, quiet: float = 0.6, first: float = 5.0) -> list[dict]:
    """Every fs/changed until none arrives for ``quiet`` seconds."""
    notes: list[dict] = []
    timeout = first
    while len(notes) < 200:
        try:
            note = await client.next_notification("fs/changed", timeout=timeout)
        except TimeoutError:
            return notes
        notes.append(note.params)
        timeout = quiet
    raise AssertionError(f"changes never settled: {notes[-3:]}")


def changed_paths(notes: list[dict], watch_id: str | None = None) -> set[str]:
    return {p for n in notes if watch_id in (None, n["watchId"]) for p in n["changedPaths"]}


@pytest.fixture
async def fs(serve):
    async with serve(plugins=["fs"]) as served:
        await served.client.initialize()
        yield served.client


@pytest.fixture
def area(tmp_path):
    """A directory of its own: the server's log in tmp_path changes all the time."""
    path = tmp_path / "watched-area"
    path.mkdir()
    return path


async def test_directory_watch_reports_its_entries(fs, area):
    watched = area / "dir"
    (watched / "deep").mkdir(parents=True)
    (watched / "old.txt").write_text("old")
    result = await fs.request("fs/watch", {"watchId": "d", "path": str(watched)})
    assert result == {"path": str(watched)}
    (watched / "new.txt").write_text("new")
    (watched / "old.txt").write_text("changed")
    (watched / "deep" / "nested.txt").write_text("not a direct entry")
    notes = await changes(fs)
    assert {n["watchId"] for n in notes} == {"d"}
    assert changed_paths(notes) == {f"{watched}/new.txt", f"{watched}/old.txt"}
    (watched / "new.txt").unlink()
    assert changed_paths(await changes(fs)) == {f"{watched}/new.txt"}


async def test_file_watch_sees_writes_atomic_replace_and_recreation(fs, area):
    target = area / "config.json"
    target.write_text("1")
    await fs.request("fs/watch", {"watchId": "f", "path": str(target)})
    (area / "unrelated.txt").write_text("ignored")
    target.write_text("2")
    assert changed_paths(await changes(fs)) == {str(target)}
    temp = area / ".config.json.swp"
    temp.write_text("3")
    os.replace(temp, target)  # the editor's save: the inode changes
    assert changed_paths(await changes(fs)) == {str(target)}
    target.write_text("4")  # still watched after the replace
    assert changed_paths(await changes(fs)) == {str(target)}
    target.unlink()
    assert changed_paths(await changes(fs)) == {str(target)}
    target.write_text("5")
    assert changed_paths(await changes(fs)) == {str(target)}


async def test_watching_a_path_that_does_not_exist_yet(fs, area):
    target = area / "later" / "deeper" / "file.txt"
    result = await fs.request("fs/watch", {"watchId": "m", "path": str(target)})
    assert result == {"path": str(target)}
    (area / "later" / "deeper").mkdir(parents=True)
    await asyncio.sleep(0.3)  # let the watch move down the tree
    target.write_text("here")
    notes = await changes(fs)
    assert str(target) in changed_paths(notes)
    assert changed_paths(notes) <= {str(target)}


async def test_bursts_are_coalesced(fs, area):
    await fs.request("fs/watch", {"watchId": "b", "path": str(area)})
    for i in range(50):
        (area / f"f{i}.txt").write_text(str(i))
    notes = await changes(fs)
    assert changed_paths(notes) >= {f"{area}/f{i}.txt" for i in range(50)}
    assert len(notes) <= 3, f"{len(notes)} notifications for one burst"
    for note in notes:
        assert len(note["changedPaths"]) == len(set(note["changedPaths"]))


async def test_unwatch_duplicates_and_unknown_ids(fs, area):
    await fs.request("fs/watch", {"watchId": "w", "path": str(area)})
    with pytest.raises(RpcError) as dup:
        await fs.request("fs/watch", {"watchId": "w", "path": "/tmp"})
    assert dup.value.code == -32602 and "watchId: already in use" in dup.value.message
    assert await fs.request("fs/unwatch", {"watchId": "never-created"}) == {}
    assert await fs.request("fs/unwatch", {"watchId": "w"}) == {}
    (area / "after.txt").write_text("quiet")
    assert await changes(fs, first=1.0) == []
    # the id is free again
    await fs.request("fs/watch", {"watchId": "w", "path": str(area)})


async def test_watch_returns_the_canonical_path(fs, area):
    real = area / "real"
    real.mkdir()
    (area / "alias").symlink_to(real)
    result = await fs.request("fs/watch", {"watchId": "c", "path": f"{area}/alias"})
    assert result == {"path": str(real)}
    (real / "x").write_text("")
    assert changed_paths(await changes(fs)) == {f"{real}/x"}


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


async def _settle(pid: int, expected: int) -> int:
    for _ in range(100):
        if _threads(pid) == expected:
            break
        await asyncio.sleep(0.05)
    return _threads(pid)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc")
async def test_changes_go_only_to_the_watching_connection_and_close_cleans_up(listen, area):
    shared = area / "shared"
    mine = area / "mine"
    shared.mkdir()
    mine.mkdir()
    async with listen(plugins=("fs",)) as server:
        pid = server.process.pid
        a, b = await server.connect(), await server.connect()
        for client in (a, b):
            await client.initialize()
        # Warm up: the worker threads of the default executor stay once made.
        await a.request("fs/watch", {"watchId": "warm", "path": str(shared)})
        await a.request("fs/unwatch", {"watchId": "warm"})
        await asyncio.sleep(1.5)
        baseline = _threads(pid)
        # the same id on two connections is two watches
        await a.request("fs/watch", {"watchId": "same", "path": str(shared)})
        await b.request("fs/watch", {"watchId": "same", "path": str(shared)})
        await a.request("fs/watch", {"watchId": "only-a", "path": str(mine)})
        await a.request("fs/watch", {"watchId": "file", "path": str(area / "f.txt")})
        assert _threads(pid) > baseline
        (shared / "s.txt").write_text("")
        (mine / "m.txt").write_text("")
        notes_a, notes_b = await asyncio.gather(changes(a), changes(b))
        assert changed_paths(notes_a, "same") == {f"{shared}/s.txt"}
        assert changed_paths(notes_a, "only-a") == {f"{mine}/m.txt"}
        assert changed_paths(notes_b) == {f"{shared}/s.txt"}
        # closing A removes its three watches; B's watch on the same directory stays
        await a.close()
        await asyncio.sleep(0.3)
        (shared / "t.txt").write_text("")
        assert changed_paths(await changes(b)) == {f"{shared}/t.txt"}
        await b.request("fs/unwatch", {"watchId": "same"})
        assert await _settle(pid, baseline) == baseline, "observer threads leaked"
        # watching again after everything was torn down works
        await b.request("fs/watch", {"watchId": "again", "path": str(shared)})
        (shared / "u.txt").write_text("")
        assert changed_paths(await changes(b)) == {f"{shared}/u.txt"}
        await b.close()
        assert await _settle(pid, baseline) == baseline, "observer threads leaked on close"


async def test_watches_per_connection_are_limited(serve, area):
    args = ["-c", "kernel_plugins.fs.max_watches_per_connection=2"]
    async with serve(plugins=["fs"], args=args) as served:
        client = served.client
        await client.initialize()
        await client.request("fs/watch", {"watchId": "1", "path": str(area)})
        await client.request("fs/watch", {"watchId": "2", "path": str(area)})
        with pytest.raises(RpcError) as limited:
            await client.request("fs/watch", {"watchId": "3", "path": str(area)})
        assert limited.value.code == -32019 and limited.value.data["limit"] == 2
        await client.request("fs/unwatch", {"watchId": "1"})
        await client.request("fs/watch", {"watchId": "3", "path": str(area)})
