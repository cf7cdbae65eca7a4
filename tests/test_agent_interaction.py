"""request_permissions, request_user_input, update_plan, view_image, thread/shellCommand."""

from __future__ import annotations

import base64
import json
import shutil

import pytest

from tests.support.agent import methods
from tests.support.calls import fails
from tests.support.model_server import function_call, text
from tests.support.tools import exec_call, item_notes, output_of, tools_server

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

PERMISSIONS_ON = ["-c", "features.request_permissions_tool=true"]
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def ask_permissions(call_id: str, write: list[str], **extra) -> object:
    arguments = {"permissions": {"file_system": {"write": write}}, **extra}
    return function_call("request_permissions", json.dumps(arguments), call_id=call_id)


@pytest.mark.parametrize("policy", ["on-request", "never"])
async def test_granted_permissions_widen_the_sandbox_for_the_turn(
    serve, model_server, tmp_path, policy
):
    target = tmp_path / "granted"
    target.mkdir()
    model_server.responses.extend(
        [
            exec_call(f"touch {target}/before", "c1"),
            ask_permissions("r1", [str(target)], reason="write the output"),
            exec_call(f"touch {target}/after", "c2"),
            text("first"),
        ]
    )
    asked = []

    async def grant(params):
        asked.append(params)
        return {"permissions": {"fileSystem": {"write": [str(target), "/etc"]}}, "scope": "turn"}

    async with tools_server(serve, model_server, args=PERMISSIONS_ON) as agent:
        agent.client.on_request("item/permissions/requestApproval", grant)
        thread_id = (await agent.start(cwd=str(tmp_path), approvalPolicy=policy))["thread"]["id"]
        _, notes = await agent.turn(thread_id)
        model_server.responses.extend([exec_call(f"touch {target}/next", "c3"), text("second")])
        await agent.turn(thread_id)
    assert "request_permissions" in {t["name"] for t in model_server.requests[0].body["tools"]}
    (params,) = asked
    assert params["reason"] == "write the output" and params["cwd"] == str(tmp_path)
    assert params["permissions"]["fileSystem"]["write"] == [str(target)]
    assert params["permissions"]["fileSystem"]["entries"] == [
        {"path": {"type": "path", "path": str(target)}, "access": "write"}
    ]
    # /etc was not asked for: the grant is cut to the request.
    assert json.loads(output_of(model_server, "r1")) == {
        "permissions": {"network": None, "file_system": {"write": [str(target)]}},
        "scope": "turn",
    }
    assert not (target / "before").exists() and (target / "after").exists()
    assert not (target / "next").exists()  # a turn grant ends with its turn
    assert "waitingOnApproval" in json.dumps([n.params for n in notes])


async def test_a_session_grant_lasts_and_a_failing_client_grants_nothing(
    serve, model_server, tmp_path
):
    target = tmp_path / "granted"
    target.mkdir()
    model_server.responses.extend(
        [ask_permissions("r1", [str(target)]), ask_permissions("r2", [str(tmp_path)]), text("a")]
    )
    answers = [{"permissions": {"fileSystem": {"write": [str(target)]}}, "scope": "session"}, None]

    async def grant(params):
        answer = answers.pop(0)
        if answer is None:
            raise RuntimeError("the client fails")
        return answer

    async with tools_server(serve, model_server, args=PERMISSIONS_ON) as agent:
        agent.client.on_request("item/permissions/requestApproval", grant)
        thread_id = (await agent.start(cwd=str(tmp_path)))["thread"]["id"]
        await agent.turn(thread_id)
        model_server.responses.extend([exec_call(f"touch {target}/later", "c1"), text("b")])
        await agent.turn(thread_id)
    assert json.loads(output_of(model_server, "r2")) == {
        "permissions": {"network": None, "file_system": None},
        "scope": "turn",
    }
    assert (target / "later").exists()


async def test_request_user_input_only_in_plan_mode(serve, model_server, tmp_path):
    question = {
        "id": "color",
        "header": "Color",
        "question": "Which color?",
        "options": [
            {"label": "Blue", "description": "calm"},
            {"label": "Red", "description": "bold"},
        ],
    }
    call = function_call("request_user_input", json.dumps({"questions": [question]}), "u1")
    call2 = function_call("request_user_input", json.dumps({"questions": [question]}), "u2")
    model_server.responses.extend([call, text("a"), call2, text("b")])
    asked = []

    async def answer(params):
        asked.append(params)
        return {"answers": {"color": {"answers": ["Blue"]}}}

    async with tools_server(serve, model_server) as agent:
        agent.client.on_request("item/tool/requestUserInput", answer)
        thread_id = (await agent.start(cwd=str(tmp_path)))["thread"]["id"]
        await agent.turn(thread_id)
        plan = {"mode": "plan", "settings": {"model": "gpt-5.5"}}
        _, notes = await agent.turn(thread_id, collaborationMode=plan)
    assert output_of(model_server, "u1") == "request_user_input is unavailable in Default mode"
    assert output_of(model_server, "u2") == '{"answers":{"color":{"answers":["Blue"]}}}'
    (params,) = asked
    assert params["itemId"] == "u2" and params["isBlocking"] is True
    assert params["questions"][0]["isOther"] is True and params["questions"][0]["isSecret"] is False
    flags = [
        n.params["status"].get("activeFlags") for n in notes if n.method == "thread/status/changed"
    ]
    assert ["waitingOnUserInput"] in flags


async def test_update_plan_and_view_image(serve, model_server, tmp_path):
    (tmp_path / "dot.png").write_bytes(PNG)
    plan = {
        "explanation": "start small",
        "plan": [
            {"step": "read", "status": "completed"},
            {"step": "write", "status": "in_progress"},
            {"step": "test", "status": "pending"},
        ],
    }
    model_server.responses.extend(
        [
            function_call("update_plan", json.dumps(plan), "p1"),
            function_call("view_image", json.dumps({"path": "dot.png"}), "v1"),
            function_call("view_image", json.dumps({"path": "none.png"}), "v2"),
            text("done"),
        ]
    )
    async with tools_server(serve, model_server) as agent:
        thread_id = (await agent.start(cwd=str(tmp_path)))["thread"]["id"]
        _, notes = await agent.turn(thread_id)
    assert output_of(model_server, "p1") == "Plan updated"
    update = next(n.params for n in notes if n.method == "turn/plan/updated")
    assert update["explanation"] == "start small"
    assert [s["status"] for s in update["plan"]] == ["completed", "inProgress", "pending"]
    image = output_of(model_server, "v1")
    assert image == [
        {
            "type": "input_image",
            "image_url": "data:image/png;base64," + base64.b64encode(PNG).decode(),
            "detail": "original",
        }
    ]
    viewed = item_notes(notes, "v1")
    assert [m for m, _ in viewed] == ["item/started", "item/completed"]
    assert viewed[-1][1]["item"] == {
        "type": "imageView",
        "id": "v1",
        "path": str(tmp_path / "dot.png"),
    }
    assert output_of(model_server, "v2").startswith(
        f"unable to locate image at `{tmp_path}/none.png`"
    )
    assert item_notes(notes, "v2") == []


async def test_shell_command_runs_as_its_own_turn_and_reaches_the_model(
    serve, model_server, tmp_path
):
    async with tools_server(serve, model_server) as agent:
        client = agent.client
        thread_id = (await agent.start(cwd=str(tmp_path)))["thread"]["id"]
        command = "echo hi; echo err >&2; touch made; exit 3"
        assert (
            await client.request("thread/shellCommand", {"threadId": thread_id, "command": command})
            == {}
        )
        notes = await agent.until("turn/completed")
        assert (tmp_path / "made").exists()  # unsandboxed: the user typed it
        names = methods(notes)
        at = names.index("turn/started")
        assert names[at - 1] == "thread/status/changed"
        assert "item/completed[userMessage]" not in names
        item = next(n.params["item"] for n in notes if n.method == "item/completed")
        assert item["source"] == "userShell" and item["exitCode"] == 3
        assert item["status"] == "failed" and item["aggregatedOutput"] == "hi\nerr\n"
        assert notes[-1].params["turn"]["status"] == "completed"
        assert (
            "".join(
                n.params["delta"] for n in notes if n.method == "item/commandExecution/outputDelta"
            )
            == "hi\nerr\n"
        )
        model_server.responses.append(text("seen"))
        await agent.turn(thread_id)
        error = await fails(client, "thread/shellCommand", {"threadId": thread_id, "command": " "})
        assert error.code == -32600 and error.message == "command must not be empty"
        error = await fails(client, "thread/shellCommand", {"threadId": "nope", "command": "ls"})
        assert error.code == -32600 and error.message == "thread not found: nope"
    history = json.dumps(model_server.requests[0].body["input"])
    assert "<user_shell_command>\\n<command>\\necho hi; echo err >&2; touch made; exit 3" in history
    assert "Exit code: 3\\nDuration: " in history and "Output:\\nhi\\nerr\\n\\n</result>" in history


async def test_a_shell_command_turn_refuses_steer_input(serve, model_server, tmp_path):
    async with tools_server(serve, model_server) as agent:
        client = agent.client
        thread_id = (await agent.start(cwd=str(tmp_path)))["thread"]["id"]
        await client.request("thread/shellCommand", {"threadId": thread_id, "command": "sleep 1"})
        started = await agent.until("turn/started")
        turn_id = started[-1].params["turn"]["id"]
        error = await fails(
            client,
            "turn/steer",
            {
                "threadId": thread_id,
                "expectedTurnId": turn_id,
                "input": [{"type": "text", "text": "x"}],
            },
        )
        assert error.code == -32600 and "takes no input" in error.message  # never silently lost
        await agent.until("turn/completed")
