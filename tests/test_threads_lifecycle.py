"""Thread lifecycle over real stdio: read, list, archive, names, metadata, fork, paging."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.agent import agent_server, methods
from tests.support.calls import fails
from tests.support.model_server import stall, text

UNKNOWN = "6f1c2d4e-0000-4000-8000-000000000000"


async def test_read_with_and_without_turns(serve, model_server):
    model_server.responses.append(text("answer"))
    async with agent_server(serve, model_server) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        await agent.turn(thread_id, "question")
        await agent.drain()
        plain = await agent.client.request("thread/read", {"threadId": thread_id})
        assert plain["thread"]["turns"] == [] and plain["thread"]["preview"] == "question"
        assert "readState" in plain  # experimental clients see it
        full = await agent.client.request(
            "thread/read", {"threadId": thread_id, "includeTurns": True}
        )
        (turn,) = full["thread"]["turns"]
        assert turn["itemsView"] == "full"
        assert [i["type"] for i in turn["items"]] == ["userMessage", "agentMessage"]
        notice = await agent.until("deprecationNotice")
        assert "Full-history hydration is deprecated" in notice[-1].params["summary"]
        error = await fails(agent.client, "thread/read", {"threadId": UNKNOWN})
        assert (error.code, error.message) == (-32600, f"thread not loaded: {UNKNOWN}")
        error = await fails(agent.client, "thread/read", {"threadId": "nope"})
        assert error.message.startswith(
            "invalid thread id: invalid character: expected an optional prefix of `urn:uuid:` "
            "followed by [0-9a-fA-F-], found `n` at 1"
        )


async def test_list_filters_and_pages(serve, model_server, tmp_path):
    dirs = [tmp_path / "a", tmp_path / "b"]
    for d in dirs:
        d.mkdir()
    async with agent_server(serve, model_server) as agent:
        ids = []
        for index in range(5):
            ids.append((await agent.start(cwd=str(dirs[index % 2])))["thread"]["id"])
        ephemeral = (await agent.start(ephemeral=True))["thread"]
        assert ephemeral["ephemeral"] is True and ephemeral["path"] is None
        listed = await agent.client.request("thread/list", {})
        assert {t["id"] for t in listed["data"]} == set(ids)  # ephemeral threads are not stored
        assert all(t["status"] == {"type": "idle"} for t in listed["data"])  # all loaded
        only_a = await agent.client.request("thread/list", {"cwd": str(dirs[0])})
        assert {t["id"] for t in only_a["data"]} == {ids[0], ids[2], ids[4]}
        both = await agent.client.request("thread/list", {"cwd": [str(d) for d in dirs]})
        assert len(both["data"]) == 5
        for cwd in ([], "/nonexistent", "work"):
            assert (await agent.client.request("thread/list", {"cwd": cwd}))["data"] == []
        state_db = await agent.client.request("thread/list", {"useStateDbOnly": True})
        assert [t["id"] for t in state_db["data"]] == [t["id"] for t in listed["data"]]
        # Pages of two, forward then back.
        seen, cursor, pages = [], None, []
        while True:
            page = await agent.client.request("thread/list", {"limit": 2, "cursor": cursor})
            pages.append(page)
            seen += [t["id"] for t in page["data"]]
            cursor = page["nextCursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(ids) and len(seen) == 5
        back = await agent.client.request(
            "thread/list", {"limit": 2, "cursor": pages[-1]["backwardsCursor"]}
        )
        assert [t["id"] for t in back["data"]] == [t["id"] for t in pages[-2]["data"]]
        error = await fails(agent.client, "thread/list", {"cursor": "garbage"})
        assert error.code == -32602 and error.data["problems"][0]["path"] == "cursor"
        error = await fails(agent.client, "thread/list", {"sourceKinds": ["nope"]})
        assert error.code == -32602 and "nope" in error.message


async def test_archive_unarchive_moves_the_rollout(serve, model_server):
    async with agent_server(serve, model_server) as agent:
        started = (await agent.start())["thread"]
        thread_id, path = started["id"], Path(started["path"])
        assert path.exists() and "sessions" in path.parts
        await agent.drain()
        assert await agent.client.request("thread/archive", {"threadId": thread_id}) == {}
        notes = await agent.drain()
        assert methods(notes) == ["thread/status/changed", "thread/archived"]
        assert notes[0].params["status"] == {"type": "notLoaded"}
        assert not path.exists()
        archived = list((agent.served.home / "archived_sessions").iterdir())
        assert [p.name for p in archived] == [path.name]
        assert (await agent.client.request("thread/list", {}))["data"] == []
        listed = await agent.client.request("thread/list", {"archived": True})
        assert [t["id"] for t in listed["data"]] == [thread_id]
        read = await agent.client.request("thread/read", {"threadId": thread_id})
        assert read["thread"]["status"] == {"type": "notLoaded"}
        again = await fails(agent.client, "thread/archive", {"threadId": thread_id})
        assert again.message == f"no rollout found for thread id {thread_id}"
        restored = await agent.client.request("thread/unarchive", {"threadId": thread_id})
        assert restored["thread"]["status"] == {"type": "notLoaded"}
        assert path.exists()
        assert methods(await agent.drain()) == ["thread/unarchived"]
        error = await fails(agent.client, "thread/unarchive", {"threadId": thread_id})
        assert error.message == f"no archived rollout found for thread id {thread_id}"
        ephemeral = (await agent.start(ephemeral=True))["thread"]["id"]
        error = await fails(agent.client, "thread/archive", {"threadId": ephemeral})
        assert error.message == f"no rollout found for thread id {ephemeral}"


async def test_names_metadata_and_unsubscribe(serve, model_server):
    async with agent_server(serve, model_server) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        await agent.drain()
        assert (
            await agent.client.request(
                "thread/name/set", {"threadId": thread_id, "name": "My work"}
            )
            == {}
        )
        (note,) = await agent.drain()
        assert (note.method, note.params) == (
            "thread/name/updated",
            {"threadId": thread_id, "threadName": "My work"},
        )
        error = await fails(agent.client, "thread/name/set", {"threadId": thread_id, "name": " "})
        assert error.message == "thread name must not be empty"
        listed = await agent.client.request("thread/list", {"searchTerm": "My w"})
        assert [t["name"] for t in listed["data"]] == ["My work"]
        update = {"threadId": thread_id, "gitInfo": {"branch": "feature"}}
        thread = (await agent.client.request("thread/metadata/update", update))["thread"]
        assert thread["gitInfo"] == {"sha": None, "branch": "feature", "originUrl": None}
        update = {"threadId": thread_id, "gitInfo": {"sha": "abc"}}
        thread = (await agent.client.request("thread/metadata/update", update))["thread"]
        assert thread["gitInfo"] == {"sha": "abc", "branch": "feature", "originUrl": None}
        update = {"threadId": thread_id, "gitInfo": None}
        assert (await agent.client.request("thread/metadata/update", update))["thread"][
            "gitInfo"
        ] is None
        unsub = {"threadId": thread_id}
        assert await agent.client.request("thread/unsubscribe", unsub) == {"status": "unsubscribed"}
        assert await agent.client.request("thread/unsubscribe", unsub) == {
            "status": "notSubscribed"
        }
        unknown = {"threadId": UNKNOWN}
        assert await agent.client.request("thread/unsubscribe", unknown) == {"status": "notLoaded"}
        loaded = await agent.client.request("thread/loaded/list", {})
        assert loaded == {"data": [thread_id], "nextCursor": None}


async def test_resume_keeps_history_and_the_recorded_model(serve, model_server, tmp_path):
    home = tmp_path / "home"
    model_server.responses.extend([text("remembered"), text("next")])
    async with agent_server(serve, model_server, home=home) as agent:
        thread_id = (await agent.start(model="model-a"))["thread"]["id"]
        await agent.turn(thread_id, "first")
    args = ["-c", 'model="model-b"']  # the config default changed meanwhile
    async with agent_server(serve, model_server, home=home, args=args) as agent:
        resumed = await agent.client.request("thread/resume", {"threadId": thread_id})
        assert resumed["model"] == "model-a" and resumed["thread"]["model"] == "model-a"
        assert [t["status"] for t in resumed["thread"]["turns"]] == ["completed"]
        notes = await agent.drain()
        assert "deprecationNotice" in methods(notes)
        assert "thread/tokenUsage/updated" in methods(notes)
        await agent.turn(thread_id, "second")
        body = model_server.requests[-1].body
        assert body["model"] == "model-a"
        texts = [
            "".join(p.get("text", "") for p in i.get("content", [])) for i in body["input"][2:]
        ]
        assert texts == ["first", "remembered", "second"]
        override = await agent.client.request(
            "thread/resume", {"threadId": thread_id, "model": "model-c", "excludeTurns": True}
        )
        assert override["model"] == "model-c" and override["thread"]["turns"] == []
        warning = next(n for n in await agent.drain() if n.method == "warning")
        assert (
            "recorded with model `model-a` but is resuming with `model-c`"
            in warning.params["message"]
        )
        error = await fails(agent.client, "thread/resume", {"threadId": UNKNOWN})
        assert error.message == f"no rollout found for thread id {UNKNOWN}"


async def test_fork_copies_history_and_marks_a_running_turn(serve, model_server):
    model_server.responses.extend([text("one"), stall()])
    async with agent_server(serve, model_server) as agent:
        source = (await agent.start(model="model-a"))["thread"]["id"]
        await agent.turn(source, "first")
        error = await fails(agent.client, "thread/fork", {"threadId": source, "ephemeral": True})
        assert error.message == "ephemeral paginated thread/fork requires `excludeTurns: true`"
        fork = await agent.client.request("thread/fork", {"threadId": source})
        thread = fork["thread"]
        assert thread["id"] != source and thread["forkedFromId"] == source
        assert thread["sessionId"] == thread["id"] and fork["model"] == "model-a"
        assert [t["status"] for t in thread["turns"]] == ["completed"]
        notes = await agent.drain()
        assert methods(notes)[-2:] == ["thread/tokenUsage/updated", "thread/started"]
        # Fork while a turn runs: the copy is interrupted, with the marker.
        running = await agent.client.request(
            "turn/start", {"threadId": source, "input": [{"type": "text", "text": "long"}]}
        )
        await agent.until("item/completed")
        fork = await agent.client.request(
            "thread/fork", {"threadId": source, "ephemeral": True, "excludeTurns": True}
        )
        assert fork["thread"]["ephemeral"] is True and fork["thread"]["path"] is None
        copy = await agent.client.request(
            "thread/read", {"threadId": fork["thread"]["id"], "includeTurns": True}
        )
        assert [t["status"] for t in copy["thread"]["turns"]] == ["completed", "interrupted"]
        await agent.client.request(
            "turn/interrupt", {"threadId": source, "turnId": running["turn"]["id"]}
        )
        await agent.until("turn/completed")


async def test_turns_and_items_pages(serve, model_server):
    async with agent_server(serve, model_server) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        for index in range(5):
            model_server.responses.append(text(f"answer {index}"))
            await agent.turn(thread_id, f"question {index}")
        listed = await agent.client.request("thread/turns/list", {"threadId": thread_id})
        turns = listed["data"]
        assert len(turns) == 5 and listed["nextCursor"] is None
        assert turns[0]["items"][0]["content"][0]["text"] == "question 4"  # newest first
        assert {t["itemsView"] for t in turns} == {"summary"}
        none = await agent.client.request(
            "thread/turns/list", {"threadId": thread_id, "itemsView": "notLoaded"}
        )
        assert all(t["items"] == [] for t in none["data"])
        asc = await agent.client.request(
            "thread/turns/list", {"threadId": thread_id, "sortDirection": "asc"}
        )
        assert [t["id"] for t in asc["data"]] == [t["id"] for t in reversed(turns)]
        seen, cursor = [], None
        while True:
            page = await agent.client.request(
                "thread/turns/list", {"threadId": thread_id, "limit": 2, "cursor": cursor}
            )
            seen += [t["id"] for t in page["data"]]
            cursor = page["nextCursor"]
            if cursor is None:
                break
        assert seen == [t["id"] for t in turns]
        back = await agent.client.request(
            "thread/turns/list",
            {"threadId": thread_id, "limit": 2, "cursor": page["backwardsCursor"]},
        )
        assert [t["id"] for t in back["data"]] == seen[-3:-1][::-1]
        items = await agent.client.request("thread/items/list", {"threadId": thread_id})
        assert len(items["data"]) == 10 and items["data"][0]["item"]["type"] == "userMessage"
        first_turn = turns[-1]["id"]
        one = await agent.client.request(
            "thread/items/list", {"threadId": thread_id, "turnId": first_turn, "limit": 1}
        )
        assert len(one["data"]) == 1 and one["nextCursor"] is not None
        item_id = items["data"][1]["item"]["id"]
        read = await agent.client.request(
            "thread/items/read",
            {"threadId": thread_id, "turnId": first_turn, "itemIds": [item_id, "missing"]},
        )
        assert [e["item"]["id"] for e in read["data"]] == [item_id]


async def test_read_state_updates_check_the_revision(serve, model_server):
    async with agent_server(serve, model_server) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        _, notes = await agent.turn(thread_id)
        state = next(n for n in notes if n.method == "thread/readState/changed").params["readState"]
        assert state["firstUnread"]["type"] == "turn"
        updated = await agent.client.request(
            "thread/readState/update",
            {
                "threadId": thread_id,
                "operation": {"type": "read"},
                "expectedRevision": state["revision"],
            },
        )
        assert updated["readState"]["firstUnread"] is None
        assert updated["readState"]["revision"] != state["revision"]
        stale = await fails(
            agent.client,
            "thread/readState/update",
            {
                "threadId": thread_id,
                "operation": {"type": "read"},
                "expectedRevision": state["revision"],
            },
        )
        assert stale.code == -32600 and stale.data["field"] == "expectedRevision"


@pytest.mark.parametrize("relative", ["work", "./x"])
async def test_relative_cwd_is_refused(serve, model_server, relative):
    async with agent_server(serve, model_server) as agent:
        error = await fails(agent.client, "thread/start", {"cwd": relative})
    assert error.code == -32602 and "cwd" in error.message
    assert not os.path.isabs(relative)


async def test_thread_notifications_reach_subscribers_only(serve, model_server, tmp_path):
    async with agent_server(serve, model_server) as agent:
        thread_id = (await agent.start())["thread"]["id"]
        await agent.drain()
        await agent.client.request("thread/unsubscribe", {"threadId": thread_id})
        model_server.responses.append(text("quiet"))
        await agent.client.request(
            "turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": "x"}]}
        )
        notes = await agent.drain(0.5)
        assert notes == []  # nothing about the thread reaches a client that left it
