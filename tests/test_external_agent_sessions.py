"""Sessions of the other agent imported as stored threads (list, read, resume, continue)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.support.external_agent_client import (
    by_type,
    importer,
    items_of,
    run_import,
    wait_all,
    wait_completed,
)
from tests.support.external_agent_home import SESSION_IDS, build_home, write_sessions
from tests.support.model_server import text


def _item(paths: list[Path], cwd: Path) -> dict:
    sessions = [{"path": str(p), "cwd": str(cwd), "title": None} for p in paths]
    return {"itemType": "SESSIONS", "description": "sessions", "details": {"sessions": sessions}}


async def test_sessions_become_threads_that_list_read_resume_and_continue(
    serve, model_server, tmp_path
):
    fake = build_home(tmp_path / "user")
    async with importer(serve, model_server, fake.root) as agent:
        client = agent.client
        detected = await client.request("externalAgentConfig/detect", {"includeHome": True})
        (item,) = items_of(detected, "SESSIONS")
        answer = await client.request("externalAgentConfig/import", {"migrationItems": [item]})
        progress, completed = await wait_completed(client, answer["importId"])

        # The answer came first; the sessions were imported after it.
        frames = agent.served.stream.received
        answered = next(i for i, f in enumerate(frames) if f.get("result") == answer)
        first_note = next(i for i, f in enumerate(frames) if f.get("method", "").startswith("ext"))
        assert answered < first_note
        assert [len(p.params["itemTypeResults"][0]["successes"]) for p in progress] == [0, 3]
        (sessions,) = completed.params["itemTypeResults"]
        assert sessions["failures"] == []
        imported = {Path(s["source"]).stem: s for s in sessions["successes"]}
        assert set(imported) == {SESSION_IDS[n] for n in ("alpha", "beta", "gamma")}
        alpha = imported[SESSION_IDS["alpha"]]
        assert alpha["title"] == "Safari login fix" and alpha["cwd"] == str(fake.repo)

        listed = await client.request("thread/list", {})
        threads = {t["id"]: t for t in listed["data"]}
        assert set(threads) == {s["target"] for s in sessions["successes"]}
        thread = threads[alpha["target"]]
        assert thread["name"] == "Safari login fix"
        assert thread["preview"] == "Fix the login bug\nIt fails on Safari"
        assert thread["cwd"] == str(fake.repo) and thread["modelProvider"] == "mock"
        assert thread["createdAt"] < thread["updatedAt"] <= thread["createdAt"] + 60
        assert [t["name"] for t in listed["data"]] == [
            "Safari login fix",
            "Write a README",
            "Rename the module",
        ]  # by when the conversations happened, newest first
        searched = await client.request("thread/list", {"searchTerm": "README"})
        assert [t["name"] for t in searched["data"]] == ["Write a README"]

        read = await client.request(
            "thread/read", {"threadId": alpha["target"], "includeTurns": True}
        )
        (turn,) = read["thread"]["turns"]
        assert turn["status"] == "completed" and turn["startedAt"] == thread["createdAt"]
        kinds = [i["type"] for i in turn["items"]]
        assert kinds == ["userMessage", "agentMessage", "agentMessage", "agentMessage"]
        assert turn["items"][1]["text"] == "Let me look.\n\n[tool call: Bash]\ncommand: ls src"
        assert turn["items"][2]["text"] == "[tool result]\nlogin.py\nmain.py"
        assert "secret thoughts" not in json.dumps(read)
        gamma = imported[SESSION_IDS["gamma"]]["target"]
        read = await client.request("thread/read", {"threadId": gamma, "includeTurns": True})
        (turn,) = read["thread"]["turns"]  # garbage and the torn line are skipped
        assert [i.get("text") for i in turn["items"][1:]] == ["Renamed."]
        beta = imported[SESSION_IDS["beta"]]["target"]
        turns = await client.request("thread/turns/list", {"threadId": beta})
        assert len(turns["data"]) == 2

        resumed = await client.request("thread/resume", {"threadId": beta})
        assert resumed["thread"]["id"] == beta and resumed["cwd"] == str(fake.repo)
        model_server.responses.append(text("Even shorter."))
        await agent.turn(beta, "One line please")
        body = json.dumps(model_server.requests[-1].body["input"])
        assert "Write a README" in body and "Shorter draft." in body  # the history went along
        assert "One line please" in body


async def test_identical_imports_at_once_make_each_thread_once(serve, model_server, tmp_path):
    fake = build_home(tmp_path / "user")
    async with importer(serve, model_server, fake.root) as agent:
        client = agent.client
        detected = await client.request("externalAgentConfig/detect", {"includeHome": True})
        items = items_of(detected, "SESSIONS")
        request = {"migrationItems": items}
        answers = await asyncio.gather(
            client.request("externalAgentConfig/import", request),
            client.request("externalAgentConfig/import", request),
        )
        finished = await wait_all(client, [a["importId"] for a in answers])
        done = list(finished.values())
        counts = sorted(len(by_type(c)["SESSIONS"]["successes"]) for _, c in done)
        assert counts == [0, 3]
        assert all(not by_type(c)["SESSIONS"]["failures"] for _, c in done)
        _, _, third = await run_import(client, items)
        assert by_type(third)["SESSIONS"]["successes"] == []
        listed = await client.request("thread/list", {})
        assert len(listed["data"]) == 3
        again = await client.request("externalAgentConfig/detect", {"includeHome": True})
        assert items_of(again, "SESSIONS") == []  # imported: no longer offered

        # A session that grew since is new content: offered again, imported as a new thread.
        beta = fake.session("beta")
        with beta.open("a") as handle:
            handle.write(
                json.dumps({"type": "custom-title", "customTitle": "README, take 2"}) + "\n"
            )
        grown = await client.request("externalAgentConfig/detect", {"includeHome": True})
        (item,) = items_of(grown, "SESSIONS")
        assert [s["title"] for s in item["details"]["sessions"]] == ["README, take 2"]
        _, _, completed = await run_import(client, [item])
        (success,) = by_type(completed)["SESSIONS"]["successes"]
        listed = await client.request("thread/list", {})
        assert len(listed["data"]) == 4 and success["target"] in {t["id"] for t in listed["data"]}
        histories = await client.request("externalAgentConfig/import/readHistories", None)
        assert histories["connectors"] == [
            {"name": "Linear", "sessionCount": 1, "source": "remoteMcpServersConfig"}
        ]


async def test_unusable_and_foreign_sessions_fail_alone(serve, model_server, tmp_path):
    fake = build_home(tmp_path / "user")
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_text(fake.session("beta").read_text())
    link = fake.project / "link.jsonl"
    link.symlink_to(outside)
    paths = [
        fake.session("broken"),
        fake.session("orphan"),
        outside,
        link,
        fake.project / "memory" / "notes.md",
        fake.project / "absent.jsonl",
        fake.session("beta"),
        fake.session("beta"),  # named twice: imported once
    ]
    async with importer(serve, model_server, fake.root) as agent:
        _, progress, completed = await run_import(agent.client, [_item(paths, fake.repo)])
        validation = progress[0].params["itemTypeResults"][0]
        assert [f["source"] for f in validation["failures"]] == [
            str(outside),
            str(link),
            str(fake.project / "memory" / "notes.md"),
            str(fake.project / "absent.jsonl"),
        ]
        assert {f["subErrorType"] for f in validation["failures"]} == {"session_not_detected"}
        result = by_type(completed)["SESSIONS"]
        stages = {Path(f["source"]).stem: f["failureStage"] for f in result["failures"]}
        assert stages[SESSION_IDS["broken"]] == "session_prepare"
        assert stages[SESSION_IDS["orphan"]] == "session_prepare"
        (success,) = result["successes"]
        assert success["source"] == str(fake.session("beta"))
        listed = await agent.client.request("thread/list", {})
        assert [t["id"] for t in listed["data"]] == [success["target"]]


async def test_a_large_history_of_1000_sessions(serve, model_server, tmp_path):
    root = tmp_path / "user"
    work = root / "work"
    work.mkdir(parents=True)
    write_sessions(root, 1000, work)
    async with importer(serve, model_server, root) as agent:
        client = agent.client
        detected = await client.request(
            "externalAgentConfig/detect", {"includeHome": True, "maxSessions": 5000}
        )
        (item,) = items_of(detected, "SESSIONS")
        assert len(item["details"]["sessions"]) == 1000
        import_id, _, completed = await run_import(client, [item])
        result = by_type(completed)["SESSIONS"]
        assert len(result["successes"]) == 1000 and result["failures"] == []
        listed = await client.request("thread/list", {"limit": 1000})
        assert len(listed["data"]) == 1000 and listed["nextCursor"] is None
        assert {t["id"] for t in listed["data"]} == {s["target"] for s in result["successes"]}
        assert listed["data"][0]["name"] == "question 0"  # the newest conversation first
        histories = await client.request("externalAgentConfig/import/readHistories", None)
        assert histories["data"][0]["importId"] == import_id
        assert len(histories["data"][0]["successes"]) == 1000


async def test_shutdown_during_an_import_keeps_threads_and_history_consistent(
    serve, model_server, tmp_path
):
    root = tmp_path / "user"
    work = root / "work"
    work.mkdir(parents=True)
    write_sessions(root, 400, work)
    home = tmp_path / "server-home"
    async with importer(serve, model_server, root, home=home) as agent:
        detected = await agent.client.request(
            "externalAgentConfig/detect", {"includeHome": True, "maxSessions": 1000}
        )
        answer = await agent.client.request(
            "externalAgentConfig/import", {"migrationItems": items_of(detected, "SESSIONS")}
        )
        while not (await agent.client.request("thread/list", {}))["data"]:
            await asyncio.sleep(0.02)  # the import has begun writing threads
        await agent.client.close()  # stdin EOF: the server shuts down mid-import
        assert await agent.served.process.wait() == 0
    async with importer(serve, model_server, root, home=home) as agent:
        histories = await agent.client.request("externalAgentConfig/import/readHistories", None)
        (entry,) = histories["data"]
        assert entry["importId"] == answer["importId"]
        assert {f["failureStage"] for f in entry["failures"]} <= {"session_cancelled"}
        assert len(entry["successes"]) >= 1
        assert len(entry["successes"]) + len(entry["failures"]) == 400
        listed = await agent.client.request("thread/list", {"limit": 1000})
        assert {t["id"] for t in listed["data"]} == {s["target"] for s in entry["successes"]}
        detected = await agent.client.request(
            "externalAgentConfig/detect", {"includeHome": True, "maxSessions": 1000}
        )
        left = [s for item in items_of(detected, "SESSIONS") for s in item["details"]["sessions"]]
        assert len(left) == len(entry["failures"])  # what was not reached is offered again
