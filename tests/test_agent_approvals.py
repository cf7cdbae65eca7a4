"""Command approvals end to end: each policy and decision, session caching, failing closed."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from tests.support.agent import methods
from tests.support.model_server import text
from tests.support.tools import exec_call, item_notes, output_of, tools_server

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

REJECTED = 'exec_command failed: CreateProcess { message: "Rejected(\\"rejected by user\\")" }'


def answering(*decisions):
    """An approval handler answering ``decisions`` in turn; records what it was asked."""
    asked: list[dict] = []
    queue = list(decisions)

    async def answer(params: dict) -> dict:
        asked.append(params)
        return {"decision": queue.pop(0)}

    return answer, asked


async def test_untrusted_asks_and_an_accepted_command_runs_outside_the_sandbox(
    serve, model_server, tmp_path
):
    target = tmp_path / "made.txt"
    model_server.responses.extend([exec_call(f"touch {target}", "c1"), text("done")])
    answer, asked = answering("accept")
    async with tools_server(serve, model_server) as agent:
        agent.client.on_request("item/commandExecution/requestApproval", answer)
        thread = await agent.start(cwd=str(tmp_path), approvalPolicy="untrusted")
        _, notes = await agent.turn(thread["thread"]["id"])
    assert target.exists()  # read-only sandbox, but approved: ran outside it
    (params,) = asked
    assert params["itemId"] == "c1" and params["command"].endswith(f" -c 'touch {target}'")
    assert params["cwd"] == str(tmp_path) and params["proposedExecpolicyAmendment"] == [
        "touch",
        str(target),
    ]
    assert params["availableDecisions"][:2] == ["accept", "acceptForSession"]
    assert {"decline", "cancel"} <= {d for d in params["availableDecisions"] if isinstance(d, str)}
    names = methods(notes)
    at = names.index("item/started[commandExecution]")
    assert names[at + 1 : at + 4] == [
        "thread/status/changed",
        "serverRequest/resolved",
        "thread/status/changed",
    ]
    flags = [n.params["status"].get("activeFlags") for n in notes[at + 1 : at + 4 : 2]]
    assert flags == [["waitingOnApproval"], []]
    started = notes[at].params["item"]
    assert started["source"] == "agent" and started["processId"] is None
    done = next(p for m, p in item_notes(notes, "c1") if m == "item/completed")["item"]
    assert done["source"] == "unifiedExecStartup" and done["status"] == "completed"


async def test_decline_tells_the_model_and_cancel_interrupts_the_turn(
    serve, model_server, tmp_path
):
    model_server.responses.extend(
        [exec_call("touch a", "c1"), exec_call("touch b", "c2"), text("never sent")]
    )
    answer, _asked = answering("decline", "cancel")
    async with tools_server(serve, model_server) as agent:
        agent.client.on_request("item/commandExecution/requestApproval", answer)
        thread_id = (await agent.start(cwd=str(tmp_path), approvalPolicy="untrusted"))["thread"][
            "id"
        ]
        _, notes = await agent.turn(thread_id)
    assert output_of(model_server, "c1") == REJECTED
    assert len(model_server.requests) == 2  # cancel: no further model request
    for call in ("c1", "c2"):
        done = next(p for m, p in item_notes(notes, call) if m == "item/completed")["item"]
        assert done["status"] == "declined" and done["exitCode"] is None
    assert notes[-1].params["turn"]["status"] == "interrupted"
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


async def test_accept_for_session_and_prefix_rules_skip_later_prompts(
    serve, model_server, tmp_path
):
    model_server.responses.extend(
        [
            exec_call("echo one", "c1"),
            exec_call("echo one", "c2"),  # same command: remembered for the session
            exec_call("ls -a", "c3"),
            text("first"),
        ]
    )
    decisions = [
        "acceptForSession",
        {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": ["ls"]}},
    ]
    answer, asked = answering(*decisions)
    async with tools_server(serve, model_server) as agent:
        agent.client.on_request("item/commandExecution/requestApproval", answer)
        thread_id = (await agent.start(cwd=str(tmp_path), approvalPolicy="untrusted"))["thread"][
            "id"
        ]
        await agent.turn(thread_id)
        model_server.responses.extend(
            [exec_call("echo one", "c4"), exec_call("ls -l", "c5"), text("second")]
        )
        await agent.turn(thread_id)
    assert [a["itemId"] for a in asked] == ["c1", "c3"]
    for call in ("c2", "c4", "c5"):
        assert "Process exited with code 0" in output_of(model_server, call)


async def test_on_request_runs_sandboxed_and_asks_only_to_escalate(serve, model_server, tmp_path):
    inside, outside = tmp_path / "in.txt", tmp_path / "out.txt"
    model_server.responses.extend(
        [
            exec_call(f"touch {inside}", "c1"),
            exec_call(
                f"touch {outside}",
                "c2",
                sandbox_permissions="require_escalated",
                justification="write the report",
            ),
            text("done"),
        ]
    )
    answer, asked = answering("accept")
    async with tools_server(serve, model_server) as agent:
        agent.client.on_request("item/commandExecution/requestApproval", answer)
        thread = await agent.start(cwd=str(tmp_path), approvalPolicy="on-request")
        await agent.turn(thread["thread"]["id"])
    # read-only sandbox: the plain command failed without asking; the escalated one asked.
    assert "Process exited with code 1" in output_of(model_server, "c1")
    assert not inside.exists() and outside.exists()
    assert [a["itemId"] for a in asked] == ["c2"] and asked[0]["reason"] == "write the report"


async def test_never_refuses_escalation_without_asking(serve, model_server, tmp_path):
    model_server.responses.extend(
        [exec_call("touch x", "c1", sandbox_permissions="require_escalated"), text("done")]
    )
    answer, asked = answering()
    async with tools_server(serve, model_server) as agent:
        agent.client.on_request("item/commandExecution/requestApproval", answer)
        thread = await agent.start(cwd=str(tmp_path), approvalPolicy="never")
        await agent.turn(thread["thread"]["id"])
    assert asked == []
    assert output_of(model_server, "c1") == (
        "approval policy is Never; reject command — you cannot ask for escalated permissions "
        "if the approval policy is Never"
    )


@pytest.mark.parametrize("reply", ["garbage", "error", "unknown-decision"])
async def test_a_bad_answer_fails_closed(serve, model_server, tmp_path, reply):
    from kernel import RpcError

    target = tmp_path / "x"
    model_server.responses.extend([exec_call(f"touch {target}", "c1"), text("done")])

    async def answer(params: dict) -> object:
        if reply == "error":
            raise RpcError(-32000, "client exploded")
        if reply == "garbage":
            return ["not", "an", "object"]
        return {"decision": "yesPlease"}

    async with tools_server(serve, model_server) as agent:
        agent.client.on_request("item/commandExecution/requestApproval", answer)
        thread = await agent.start(cwd=str(tmp_path), approvalPolicy="untrusted")
        await agent.turn(thread["thread"]["id"])
    assert output_of(model_server, "c1") == REJECTED and not target.exists()


async def test_interrupt_while_waiting_resolves_the_request(serve, model_server, tmp_path):
    model_server.responses.extend([exec_call("touch x", "c1"), text("never")])
    waiting = asyncio.Event()

    async def never_answer(params: dict) -> dict:
        waiting.set()
        await asyncio.sleep(3600)
        return {"decision": "accept"}

    async with tools_server(serve, model_server) as agent:
        client = agent.client
        client.on_request("item/commandExecution/requestApproval", never_answer)
        thread_id = (await agent.start(cwd=str(tmp_path), approvalPolicy="untrusted"))["thread"][
            "id"
        ]
        turn_id = await agent.begin(thread_id)
        await asyncio.wait_for(waiting.wait(), 20)
        await client.request("turn/interrupt", {"threadId": thread_id, "turnId": turn_id})
        notes = await agent.until("turn/completed")
    names = methods(notes)
    assert "serverRequest/resolved" in names
    done = [p for m, p in item_notes(notes, "c1") if m == "item/completed"]
    assert len(done) == 1 and done[0]["item"]["status"] in ("declined", "failed")
    assert notes[-1].params["turn"]["status"] == "interrupted"
    assert not (tmp_path / "x").exists()


async def test_on_failure_asks_to_rerun_what_the_sandbox_denied(serve, model_server, tmp_path):
    target = tmp_path / "made"
    model_server.responses.extend(
        [exec_call(f"touch {target}", "c1"), exec_call("exit 4", "c2"), text("done")]
    )
    answer, asked = answering("accept")
    async with tools_server(serve, model_server) as agent:
        agent.client.on_request("item/commandExecution/requestApproval", answer)
        thread = await agent.start(cwd=str(tmp_path), approvalPolicy="on-failure")
        await agent.turn(thread["thread"]["id"])
    # The read-only sandbox denied the touch: asked, rerun outside. A plain failure: not asked.
    assert len(asked) == 1 and target.exists()
    assert "Process exited with code 0" in output_of(model_server, "c1")
    assert "Process exited with code 4" in output_of(model_server, "c2")


async def test_granular_without_sandbox_approval_refuses_escalation(serve, model_server, tmp_path):
    model_server.responses.extend(
        [exec_call("true", "c1", sandbox_permissions="require_escalated"), text("done")]
    )
    policy = {"granular": {"sandbox_approval": False, "rules": True, "mcp_elicitations": True}}
    answer, asked = answering()
    async with tools_server(serve, model_server) as agent:
        agent.client.on_request("item/commandExecution/requestApproval", answer)
        thread_id = (await agent.start(cwd=str(tmp_path)))["thread"]["id"]
        _, notes = await agent.turn(thread_id, approvalPolicy=policy)
    assert asked == [] and output_of(model_server, "c1").startswith("approval policy is Granular")
    # The turn's override persisted and was announced.
    updated = [n.params for n in notes if n.method == "thread/settings/updated"]
    assert updated and updated[-1]["threadSettings"]["approvalPolicy"] == policy


@pytest.mark.parametrize(
    ("review", "ran"), [("accept", True), ("decline", False), ("raise", False)]
)
async def test_a_reviewer_plugin_decides_before_the_client(
    serve, model_server, tmp_path, review, ran
):
    target = tmp_path / "made"
    model_server.responses.extend([exec_call(f"touch {target}", "c1"), text("done")])
    answer, asked = answering("accept")
    plugins = ("threads", "models", "agent_tools", "process", "sandbox", "review_probe")
    async with tools_server(
        serve, model_server, plugins=plugins, env={"KERNEL_PROBE_REVIEW": review}
    ) as agent:
        agent.client.on_request("item/commandExecution/requestApproval", answer)
        thread = await agent.start(
            cwd=str(tmp_path), approvalPolicy="untrusted", approvalsReviewer="auto_review"
        )
        await agent.turn(thread["thread"]["id"])
    assert asked == []  # the client was never asked
    assert target.exists() is ran
    if not ran:
        assert output_of(model_server, "c1") == REJECTED
