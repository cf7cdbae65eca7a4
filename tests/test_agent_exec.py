"""``exec_command`` / ``write_stdin`` end to end: items, model output, background terminals."""

from __future__ import annotations

import asyncio
import json
import re
import shutil

import pytest

from tests.support.agent import methods
from tests.support.calls import fails
from tests.support.model_server import function_call, text
from tests.support.tools import exec_call, item_notes, output_of, tools_server
from tests.test_process_teardown import gone, new_marker, running

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

EXITED = re.compile(
    r"^Chunk ID: [0-9a-f]{6}\nWall time: \d+\.\d{4} seconds\nProcess exited with code (-?\d+)\n"
    r"Original token count: (\d+)\nOutput:\n(.*)$",
    re.S,
)
RUNNING = re.compile(
    r"^Chunk ID: [0-9a-f]{6}\nWall time: \d+\.\d{4} seconds\nProcess running with session ID "
    r"(\d+)\nOriginal token count: \d+\nOutput:\n(.*)$",
    re.S,
)


def write_stdin(session_id: int, call_id: str, chars: str = "", **fields) -> object:
    arguments = json.dumps({"session_id": session_id, "chars": chars, **fields})
    return function_call("write_stdin", arguments, call_id=call_id)


async def test_a_short_command_runs_and_reports_its_item_and_output(serve, model_server, tmp_path):
    model_server.responses.extend(
        [exec_call("echo hello; echo oops >&2; exit 3", "c1"), text("done")]
    )
    async with tools_server(serve, model_server) as agent:
        thread = (await agent.start(cwd=str(tmp_path), sandbox="workspace-write"))["thread"]
        _, notes = await agent.turn(thread["id"])
    tools = {t["name"] for t in model_server.requests[0].body["tools"]}
    assert {"exec_command", "write_stdin", "apply_patch", "view_image"} <= tools
    assert "request_permissions" not in tools  # behind features.request_permissions_tool
    exited = EXITED.match(output_of(model_server, "c1"))
    assert exited, output_of(model_server, "c1")
    assert exited.group(1) == "3" and exited.group(3) == "hello\noops\n"
    about = item_notes(notes, "c1")
    kinds = [m for m, _ in about]
    assert kinds[0] == "item/started" and kinds[-1] == "item/completed"
    assert set(kinds[1:-1]) == {"item/commandExecution/outputDelta"}
    started, done = about[0][1]["item"], about[-1][1]["item"]
    assert started["source"] == "unifiedExecStartup" and started["status"] == "inProgress"
    assert started["command"].endswith(" -c 'echo hello; echo oops >&2; exit 3'")
    assert started["cwd"] == str(tmp_path) and started["processId"].isdigit()
    assert done["status"] == "failed" and done["exitCode"] == 3
    assert done["aggregatedOutput"] == "hello\noops\n" and isinstance(done["durationMs"], int)
    deltas = "".join(p["delta"] for m, p in about if m.endswith("outputDelta"))
    assert deltas == "hello\noops\n"


async def test_workdir_environment_and_a_missing_directory(serve, model_server, tmp_path):
    (tmp_path / "sub").mkdir()
    model_server.responses.extend(
        [
            exec_call("pwd; echo $NO_COLOR $TERM $PAGER", "c1", workdir="sub"),
            exec_call("true", "c2", workdir="missing"),
            text("done"),
        ]
    )
    async with tools_server(serve, model_server) as agent:
        thread = (await agent.start(cwd=str(tmp_path), sandbox="workspace-write"))["thread"]
        _, notes = await agent.turn(thread["id"])
    assert EXITED.match(output_of(model_server, "c1")).group(3) == f"{tmp_path}/sub\n1 dumb cat\n"
    missing = output_of(model_server, "c2")
    assert missing.startswith("exec_command failed: ") and "No such file or directory" in missing
    failed = item_notes(notes, "c2")
    assert [m for m, _ in failed] == ["item/started", "item/completed"]
    assert failed[-1][1]["item"]["status"] == "failed"


async def test_a_background_terminal_is_polled_across_turns(serve, model_server, tmp_path):
    script = "echo start; read line; echo got $line; sleep 0.2; echo done"
    model_server.responses.extend(
        [exec_call(script, "c1", tty=True, yield_time_ms=300), text("waiting")]
    )
    async with tools_server(serve, model_server) as agent:
        client = agent.client
        thread_id = (await agent.start(cwd=str(tmp_path), sandbox="workspace-write"))["thread"][
            "id"
        ]
        _, first = await agent.turn(thread_id)
        running_out = RUNNING.match(output_of(model_server, "c1"))
        assert running_out and "start" in running_out.group(2)
        session = int(running_out.group(1))
        listed = await client.request("thread/backgroundTerminals/list", {"threadId": thread_id})
        assert [(t["itemId"], t["processId"]) for t in listed["data"]] == [("c1", str(session))]
        assert listed["data"][0]["command"] == script and listed["nextCursor"] is None
        assert "item/completed[commandExecution]" not in methods(first)
        model_server.responses.extend(
            [
                write_stdin(session, "w1", "hi\n", yield_time_ms=5000),
                write_stdin(session, "w2"),
                text("finished"),
            ]
        )
        _, second = await agent.turn(thread_id)
    wrote = output_of(model_server, "w1")
    assert "got hi" in wrote and "done" in wrote and "Process exited with code 0" in wrote
    assert output_of(model_server, "w2") == f"write_stdin failed: Unknown process id {session}"
    interactions = [n.params for n in second if n.method.endswith("terminalInteraction")]
    assert interactions[0]["stdin"] == "hi\n" and interactions[0]["processId"] == str(session)
    completed = [p for m, p in item_notes(second, "c1") if m == "item/completed"]
    assert completed and completed[0]["item"]["exitCode"] == 0
    first_turn = next(n.params["turn"]["id"] for n in first if n.method == "turn/started")
    assert completed[0]["turnId"] == first_turn  # completed under the turn that started it


async def test_write_stdin_needs_a_terminal(serve, model_server, tmp_path):
    model_server.responses.extend([exec_call("sleep 5", "c1", yield_time_ms=250), text("x")])
    async with tools_server(serve, model_server) as agent:
        thread_id = (await agent.start(cwd=str(tmp_path)))["thread"]["id"]
        await agent.turn(thread_id)
        session = int(RUNNING.match(output_of(model_server, "c1")).group(1))
        model_server.responses.extend([write_stdin(session, "w1", "x"), text("y")])
        await agent.turn(thread_id)
        assert output_of(model_server, "w1").startswith(
            "write_stdin failed: stdin is closed for this session; rerun exec_command with tty=true"
        )


async def test_terminate_and_clean_complete_the_items_with_exit_minus_one(
    serve, model_server, tmp_path
):
    marker = new_marker()
    model_server.responses.extend(
        [
            exec_call(f"sleep {marker}", "c1", yield_time_ms=250),
            exec_call(f"sleep {marker}", "c2", yield_time_ms=250),
            exec_call(f"sleep {marker}", "c3", yield_time_ms=250),
            text("three running"),
        ]
    )
    async with tools_server(serve, model_server) as agent:
        client = agent.client
        thread_id = (await agent.start(cwd=str(tmp_path)))["thread"]["id"]
        await agent.turn(thread_id)
        assert len(running(marker)) >= 3
        first = RUNNING.match(output_of(model_server, "c1")).group(1)
        params = {"threadId": thread_id, "processId": first}
        assert await client.request("thread/backgroundTerminals/terminate", params) == {
            "terminated": True
        }
        assert await client.request("thread/backgroundTerminals/terminate", params) == {
            "terminated": False
        }
        killed = await agent.until("item/completed")
        assert killed[-1].params["item"]["id"] == "c1"
        assert killed[-1].params["item"]["exitCode"] == -1
        assert killed[-1].params["item"]["status"] == "failed"
        await client.request("thread/backgroundTerminals/clean", {"threadId": thread_id})
        rest = await agent.drain()
        assert {n.params["item"]["id"] for n in rest if n.method == "item/completed"} == {
            "c2",
            "c3",
        }
        assert await gone(marker) == []
        listed = await client.request("thread/backgroundTerminals/list", {"threadId": thread_id})
        assert listed["data"] == []
        error = await fails(client, "thread/backgroundTerminals/list", {"threadId": "nope"})
        assert error.code == -32600 and error.message == "thread not found: nope"


async def test_interrupt_keeps_terminals_unsubscribing_stops_them(serve, model_server, tmp_path):
    marker = new_marker()
    model_server.responses.extend(
        [exec_call(f"sleep {marker}", "c1", yield_time_ms=250), text("later")]
    )
    async with tools_server(serve, model_server) as agent:
        client = agent.client
        thread_id = (await agent.start(cwd=str(tmp_path)))["thread"]["id"]
        await agent.turn(thread_id)
        model_server.responses.append(exec_call("sleep 30", "long", yield_time_ms=30000))
        turn_id = await agent.begin(thread_id)
        await agent.until("item/started")
        await client.request("turn/interrupt", {"threadId": thread_id, "turnId": turn_id})
        await agent.until("turn/completed")
        await asyncio.sleep(0.3)
        assert running(marker)  # the interrupt ended the turn, not the terminal
        await client.request("thread/unsubscribe", {"threadId": thread_id})
        assert await gone(marker) == []


async def test_server_shutdown_leaves_no_terminal_behind(serve, model_server, tmp_path):
    marker = new_marker()
    model_server.responses.extend(
        [exec_call(f"setsid sleep {marker} & sleep {marker}", "c1", yield_time_ms=250), text("x")]
    )
    async with tools_server(serve, model_server) as agent:
        thread_id = (await agent.start(cwd=str(tmp_path)))["thread"]["id"]
        await agent.turn(thread_id)
        assert len(running(marker)) >= 2
    assert await gone(marker) == []
