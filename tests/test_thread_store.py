"""The thread store on a temporary home: round trip, updates, listing, archive.

Real rollout files and a real SQLite index: every ``thread/list`` filter,
sort keys and keyset pagination both ways, archive/unarchive. Durability
and the derived index are in test_thread_store_recovery.py.
"""

from __future__ import annotations

import asyncio
import base64
import stat
import threading
import uuid
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest

from plugins_builtin.threads.store import (
    AlreadyArchived,
    InvalidCursor,
    InvalidQuery,
    ListQuery,
    LocalThreadStore,
    NotArchived,
    StoreClosed,
    ThreadExists,
    ThreadNotFound,
    ThreadStore,
)
from tests.support.thread_store import NOW, ids, lines, meta, walk

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


# -- round trip --------------------------------------------------------------------------


async def test_create_append_read_round_trip(store: LocalThreadStore, home: Path) -> None:
    assert isinstance(store, ThreadStore)
    m = meta(created_at=1700000000, updated_at=1700000000, git_info={"branch": "main"})
    created = await store.create(m)
    expected = f"sessions/2023/11/14/rollout-2023-11-14T22-13-20-{m.id}.jsonl"
    assert created.path == str(home / expected)
    assert created == m.evolve(path=str(home / expected))
    first = orjson.loads(lines(created.path)[0])
    assert first["type"] == "session_meta" and first["meta"]["id"] == m.id
    assert "path" not in first["meta"] and "archived" not in first["meta"]

    records = [
        {"type": "turn", "n": i, "text": 'é\n"q"', "nested": {"a": [1, None]}} for i in range(5)
    ]
    await store.append(m.id, records[:2])
    await store.append(m.id, records[2:])
    await store.append(m.id, [])
    stored = await store.read(m.id)
    assert stored.records == records
    assert stored.meta.id == m.id and stored.meta.git_info == {"branch": "main"}
    assert stored.meta.updated_at >= NOW  # bumped by the appends
    assert await store.get(m.id) == stored.meta
    assert len(lines(created.path)) == 6  # one line per record, after the meta line

    for path in (home / "sessions", home / "sessions/2023", home / "sessions/2023/11/14"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert stat.S_IMODE(Path(created.path).stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "state.sqlite").stat().st_mode) == 0o600


async def test_errors(store: LocalThreadStore) -> None:
    m = await store.create(meta())
    with pytest.raises(ThreadExists):
        await store.create(meta(id=m.id))
    for bad in ("nope", m.id.upper(), "{" + m.id + "}"):
        with pytest.raises(ValueError, match="UUID"):
            await store.create(meta(id=bad))
    with pytest.raises(ValueError, match="reserved"):
        await store.append(m.id, [{"type": "ok"}, {"type": "meta_update", "changes": {}}])
    with pytest.raises(TypeError):
        await store.append(m.id, [{"x": object()}])
    assert (await store.read(m.id)).records == []  # nothing of a refused batch was written
    unknown = str(uuid.uuid4())
    assert await store.get(unknown) is None
    with pytest.raises(ThreadNotFound, match=f"no rollout found for thread id {unknown}"):
        await store.read(unknown)
    with pytest.raises(ThreadNotFound):
        await store.append(unknown, [{"type": "x"}])
    with pytest.raises(ThreadNotFound):
        await store.update(unknown, name="x")
    with pytest.raises(TypeError, match="'id' cannot be updated"):
        await store.update(m.id, id="x")
    with pytest.raises(TypeError, match="'updated_at' must be int"):
        await store.update(m.id, updated_at="soon")
    with pytest.raises(TypeError, match="'bogus' cannot be updated"):
        await store.update(m.id, bogus=1)


async def test_closed_store_refuses(home: Path) -> None:
    s = LocalThreadStore(home)
    with pytest.raises(StoreClosed, match="open"):
        await s.get(str(uuid.uuid4()))
    await s.open()
    m = await s.create(meta())
    tasks = [asyncio.create_task(s.append(m.id, [{"type": "n", "n": i}])) for i in range(50)]
    await asyncio.sleep(0)  # every append has been submitted; close() must finish them
    await s.close()
    await asyncio.gather(*tasks)
    with pytest.raises(StoreClosed, match="closed"):
        await s.get(m.id)
    again = LocalThreadStore(home)
    await again.open()
    assert [r["n"] for r in (await again.read(m.id)).records] == list(range(50))
    await again.close()
    workers = [t for t in threading.enumerate() if t.name == "kernel-thread-store"]
    assert all(t.daemon for t in workers)


async def test_update_writes_meta_update_and_index(store: LocalThreadStore) -> None:
    m = await store.create(meta())
    await store.append(m.id, [{"type": "turn"}])
    new = await store.update(m.id, name="My thread", preview="fix the bug", recency_at=NOW + 50)
    assert (new.name, new.preview, new.recency_at) == ("My thread", "fix the bug", NOW + 50)
    last = orjson.loads(lines(m.path)[-1])
    assert last == {
        "type": "meta_update",
        "changes": {
            "name": "My thread",
            "preview": "fix the bug",
            "recency_at": NOW + 50,
            "updated_at": new.updated_at,
        },
    }
    assert await store.get(m.id) == new
    assert (await store.read(m.id)).records == [{"type": "turn"}]  # meta records excluded
    newer = await store.update(m.id, updated_at=NOW + 100, model=None, git_info={"sha": "abc"})
    assert newer.updated_at == NOW + 100 and newer.model is None
    assert (await store.list(ListQuery(search_term="My thread"))).items == [newer]


# -- listing -----------------------------------------------------------------------------


async def test_list_filters(store: LocalThreadStore) -> None:
    t = {}
    specs: dict[str, dict[str, Any]] = {
        "a": {"cwd": "/work/a", "name": "Alpha task", "preview": "zzz"},
        "b": {"cwd": "/work/b", "preview": "Beta preview"},
        "c": {"cwd": "/work/b", "model_provider": "ollama", "source": "cli"},
        "exec": {"source": "exec"},
        "app": {"source": "appServer"},
        "review": {"source": {"subAgent": "review"}},
        "spawn": {"source": {"subAgent": {"thread_spawn": {"parent_thread_id": "p", "depth": 1}}}},
        "other": {"source": {"subAgent": {"other": "x"}}},
        "custom": {"source": {"custom": "bot"}},
        "unknown": {"source": "unknown"},
    }
    for i, (key, spec) in enumerate(specs.items()):
        created = await store.create(meta(created_at=NOW + i, updated_at=NOW + i))
        changes = {k: v for k, v in spec.items() if k not in ("cwd", "model_provider", "source")}
        fixed = {k: v for k, v in spec.items() if k in ("cwd", "model_provider", "source")}
        if fixed:
            await store.update(created.id, **fixed)
        if changes:
            await store.update(created.id, **changes)
        t[key] = created.id

    def of(*keys: str) -> set[str]:
        return {t[k] for k in keys}

    interactive = of("a", "b", "c")  # vscode (the default source) and cli
    assert set(await ids(store)) == interactive
    assert set(await ids(store, cwds=["/work/b"])) == of("b", "c")
    assert set(await ids(store, cwds=["/work/a", "/work/b"])) == interactive
    assert await ids(store, cwds=[]) == []
    assert await ids(store, cwds=["/nonexistent"]) == []
    assert await ids(store, cwds=["work/a"]) == []  # exact match only
    assert set(await ids(store, model_providers=["ollama"])) == of("c")
    assert set(await ids(store, model_providers=[])) == interactive
    assert set(await ids(store, model_providers=["openai", "ollama"])) == interactive
    assert set(await ids(store, source_kinds=[])) == interactive
    assert set(await ids(store, source_kinds=["cli"])) == of("c")
    assert set(await ids(store, source_kinds=["exec", "appServer"])) == of("exec", "app")
    assert set(await ids(store, source_kinds=["subAgent"])) == of("review", "spawn", "other")
    assert set(await ids(store, source_kinds=["subAgentReview"])) == of("review")
    assert set(await ids(store, source_kinds=["subAgentThreadSpawn", "subAgentOther"])) == of(
        "spawn", "other"
    )
    assert set(await ids(store, source_kinds=["unknown"])) == of("unknown")
    assert set(await ids(store, search_term="Alpha")) == of("a")
    assert await ids(store, search_term="zzz") == []  # a named thread is searched by name
    assert set(await ids(store, search_term="Beta")) == of("b")
    assert await ids(store, search_term="beta") == []  # case-sensitive
    assert set(await ids(store, excluded_ids=[t["a"], t["exec"]])) == of("b", "c")
    assert await ids(store, archived=True) == []
    await store.archive(t["b"])
    assert set(await ids(store)) == of("a", "c")
    assert await ids(store, archived=True) == [t["b"]]
    assert await ids(store, archived=True, cwds=["/work/a"]) == []
    with pytest.raises(InvalidQuery, match="source kind"):
        await store.list(ListQuery(source_kinds=["bogus"]))
    with pytest.raises(InvalidQuery, match="sort key"):
        await store.list(ListQuery(sort_key="name"))
    with pytest.raises(InvalidQuery, match="direction"):
        await store.list(ListQuery(sort_direction="up"))
    with pytest.raises(InvalidQuery, match="cwds must be a list of strings"):
        await store.list(ListQuery(cwds="/work/a"))  # type: ignore[arg-type]


async def test_sort_keys_and_directions(store: LocalThreadStore) -> None:
    # created order: x0..x3; updated order differs; recency set on two of them.
    x = [await store.create(meta(created_at=NOW + i, updated_at=NOW + i)) for i in range(4)]
    await store.update(x[0].id, updated_at=NOW + 30)
    await store.update(x[2].id, updated_at=NOW + 20)
    await store.update(x[1].id, recency_at=NOW + 25)
    await store.update(x[3].id, recency_at=NOW - 5)
    created = [m.id for m in x]
    assert await ids(store) == created[::-1]
    assert await ids(store, sort_direction="asc") == created
    updated = [x[1].id, x[3].id, x[2].id, x[0].id]
    assert await ids(store, sort_key="updated_at", sort_direction="asc") == updated
    assert await ids(store, sort_key="updated_at") == updated[::-1]
    recency = [x[3].id, x[2].id, x[1].id, x[0].id]  # -5, 20 (updated), 25, 30 (updated)
    assert await ids(store, sort_key="recency_at", sort_direction="asc") == recency
    assert await ids(store, sort_key="section_position", sort_direction="asc") == recency
    # Ties are broken by id, in the same direction.
    same = sorted([(await store.create(meta(created_at=NOW - 100))).id for _ in range(3)])
    assert (await ids(store, sort_direction="asc"))[:3] == same


@pytest.mark.parametrize(
    ("sort_key", "direction"),
    [("created_at", "desc"), ("created_at", "asc"), ("updated_at", "desc"), ("recency_at", "asc")],
)
async def test_pagination_both_ways(store: LocalThreadStore, sort_key: str, direction: str) -> None:
    for i in range(23):
        m = await store.create(meta(created_at=NOW + i % 7, updated_at=NOW + i % 5))
        if i % 3 == 0:
            await store.update(m.id, recency_at=NOW + i % 4)
    query = ListQuery(sort_key=sort_key, sort_direction=direction, limit=5)
    full = await ids(store, sort_key=sort_key, sort_direction=direction)
    pages = await walk(store, query)
    assert [len(p.items) for p in pages] == [5, 5, 5, 5, 3]
    assert [m.id for p in pages for m in p.items] == full
    assert pages[0].backwards_cursor is None
    assert all(p.backwards_cursor is not None for p in pages[1:])
    # Back from the last page: the same pages, in reverse, each in listing order.
    back = [pages[-1]]
    while back[-1].backwards_cursor is not None:
        cursor = back[-1].backwards_cursor
        back.append(await store.list(attrs.evolve(query, cursor=cursor)))
    assert [[m.id for m in p.items] for p in back] == [[m.id for m in p.items] for p in pages][::-1]
    # And forward again from a page reached backwards.
    again = await store.list(attrs.evolve(query, cursor=back[-1].next_cursor))
    assert again.items == pages[1].items


async def test_pagination_stable_under_inserts(store: LocalThreadStore) -> None:
    before = [(await store.create(meta(created_at=NOW + i))).id for i in range(12)]
    query = ListQuery(limit=4)
    first = await store.list(query)
    # New threads, newer and older than everything, appear while the client pages.
    await store.create(meta(created_at=NOW + 100))
    await store.create(meta(created_at=NOW - 100))
    seen = [m.id for m in first.items]
    cursor = first.next_cursor
    while cursor is not None:
        page = await store.list(ListQuery(limit=4, cursor=cursor))
        seen += [m.id for m in page.items]
        cursor = page.next_cursor
    assert seen[:12] == before[::-1]  # every original thread exactly once, in order
    assert len(seen) == 13 and len(set(seen)) == 13  # plus the older one, at the end


async def test_cursor_edges(store: LocalThreadStore) -> None:
    a = await store.create(meta(created_at=NOW))
    b = await store.create(meta(created_at=NOW + 1))
    first = await store.list(ListQuery(limit=1))
    assert [m.id for m in first.items] == [b.id] and first.next_cursor is not None
    last = await store.list(ListQuery(limit=1, cursor=first.next_cursor))
    assert [m.id for m in last.items] == [a.id] and last.next_cursor is None
    # The anchor thread is archived: the cursor still names a position.
    await store.archive(a.id)
    empty = await store.list(ListQuery(limit=1, cursor=first.next_cursor))
    assert empty.items == [] and empty.next_cursor is None and empty.backwards_cursor is not None
    back = await store.list(ListQuery(limit=1, cursor=empty.backwards_cursor))
    assert [m.id for m in back.items] == [b.id]
    assert len((await store.list(ListQuery(limit=0))).items) == 1  # at least one per page
    assert len((await store.list(ListQuery(limit=10**9))).items) == 1


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b'{"v": 99}').decode(),
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(
            b'{"v":1,"key":"created_at","dir":"desc","at":["x","y"],"side":"after","page":"next"}'
        ).decode(),
        "A" * 5000,
    ],
)
async def test_malformed_cursor(store: LocalThreadStore, cursor: str) -> None:
    with pytest.raises(InvalidCursor, match="malformed cursor") as info:
        await store.list(ListQuery(cursor=cursor))
    assert isinstance(info.value, ValueError)


async def test_cursor_for_another_order(store: LocalThreadStore) -> None:
    for i in range(3):
        await store.create(meta(created_at=NOW + i))
    page = await store.list(ListQuery(limit=1))
    with pytest.raises(InvalidCursor, match="made for sort key 'created_at'"):
        await store.list(ListQuery(limit=1, cursor=page.next_cursor, sort_key="updated_at"))
    with pytest.raises(InvalidCursor, match="direction"):
        await store.list(ListQuery(limit=1, cursor=page.next_cursor, sort_direction="asc"))


# -- archive -----------------------------------------------------------------------------


async def test_archive_and_unarchive(store: LocalThreadStore, home: Path) -> None:
    m = await store.create(meta(created_at=1700000000))
    await store.append(m.id, [{"type": "turn", "n": 1}])
    name = Path(m.path or "").name
    archived = await store.archive(m.id)
    assert archived.archived and archived.path == str(home / "archived_sessions" / name)
    assert not Path(m.path or "").exists() and Path(archived.path).exists()
    assert await store.get(m.id) == archived
    assert (await store.read(m.id)).records == [{"type": "turn", "n": 1}]
    assert await ids(store) == [] and await ids(store, archived=True) == [m.id]
    with pytest.raises(AlreadyArchived, match="already archived"):
        await store.archive(m.id)
    await store.append(m.id, [{"type": "turn", "n": 2}])  # appending still works
    restored = await store.unarchive(m.id)
    assert not restored.archived and restored.path == m.path
    assert await ids(store) == [m.id] and await ids(store, archived=True) == []
    assert [r["n"] for r in (await store.read(m.id)).records] == [1, 2]
    with pytest.raises(NotArchived, match="no archived rollout found"):
        await store.unarchive(m.id)
    for op in (store.archive, store.unarchive):
        with pytest.raises(ThreadNotFound):
            await op(str(uuid.uuid4()))
