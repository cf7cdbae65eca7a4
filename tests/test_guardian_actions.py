"""What automatic review covers: patches, permissions, MCP tools; when the client is asked."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.support.guardian_agent import RISK_TAIL, escalated, guarded, review_notes
from tests.support.guardian_model import GuardianModelServer, reviewer_says
from tests.support.mcp_agent import MCP_PLUGINS, mcp_agent, mcp_call, stdio_server
from tests.support.model_server import function_call, text
from tests.support.tools import TOOL_PLUGINS, exec_call, item_notes, output_of, patch_call

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

PERMISSIONS_ON = ["-c", "features.request_permissions_tool=true"]
ADD = "*** Begin Patch\n*** Add File: hello.txt\n+hello from the patch\n*** End Patch"


@pytest.fixture
async def model_server():
    async with GuardianModelServer() as server:
        yield server


@pytest.mark.parametrize("outcome", ["allow", "deny"])
async def test_a_patch_outside_the_sandbox_is_reviewed(serve, model_server, tmp_path, outcome):
    model_server.responses.extend([patch_call(ADD, "p1"), text("done")])
    model_server.reviews.append(reviewer_says(outcome, "high", "low", "writes outside"))
    async with guarded(serve, model_server) as (agent, asked):
        thread = await agent.start(
            cwd=str(tmp_path), approvalPolicy="on-request", approvalsReviewer="auto_review"
        )
        _, notes = await agent.turn(thread["thread"]["id"])
    assert asked == []
    target = tmp_path / "hello.txt"
    (_, started), _, (_, completed) = review_notes(notes)
    assert started["targetItemId"] == "p1"
    assert started["action"] == {"type": "applyPatch", "cwd": str(tmp_path), "files": [str(target)]}
    prompt = model_server.reviewer_requests()[0].body["input"][1]["content"][0]["text"]
    planned = json.loads(prompt.split("Planned action JSON:\n")[1].split("\n>>> APPROVAL")[0])
    assert planned["tool"] == "apply_patch"
    assert planned["changes"] == [
        {"path": str(target), "kind": "add", "diff": "hello from the patch\n"}
    ]
    done = next(p for m, p in item_notes(notes, "p1") if m == "item/completed")["item"]
    if outcome == "allow":
        assert completed["review"]["status"] == "approved" and done["status"] == "completed"
        assert target.read_text() == "hello from the patch\n"
    else:
        assert completed["review"]["status"] == "denied" and done["status"] == "declined"
        assert not target.exists()
        assert output_of(model_server, "p1") == (
            "This action was rejected due to unacceptable risk.\nReason: writes outside\n"
            + RISK_TAIL
        )


@pytest.mark.parametrize("outcome", ["allow", "deny"])
async def test_a_permission_request_is_reviewed(serve, model_server, tmp_path, outcome):
    target = tmp_path / "granted"
    target.mkdir()
    arguments = {"permissions": {"file_system": {"write": [str(target)]}}, "reason": "output"}
    model_server.responses.extend(
        [
            function_call("request_permissions", json.dumps(arguments), call_id="r1"),
            exec_call(f"touch {target}/after", "c1"),
            text("done"),
        ]
    )
    model_server.reviews.append(reviewer_says(outcome))
    async with guarded(serve, model_server, args=PERMISSIONS_ON) as (agent, asked):
        thread = await agent.start(
            cwd=str(tmp_path), approvalPolicy="on-request", approvalsReviewer="auto_review"
        )
        _, notes = await agent.turn(thread["thread"]["id"])
    assert asked == []
    (_, started), _, (_, completed) = review_notes(notes)
    assert completed["review"]["status"] == ("approved" if outcome == "allow" else "denied")
    assert started["targetItemId"] == "r1"
    assert started["action"] == {
        "type": "requestPermissions",
        "reason": "output",
        "permissions": {
            "network": None,
            "fileSystem": {
                "read": None,
                "write": [str(target)],
                "entries": [{"path": {"type": "path", "path": str(target)}, "access": "write"}],
            },
        },
    }
    granted = json.loads(output_of(model_server, "r1"))
    if outcome == "allow":
        assert granted["permissions"]["file_system"] == {"write": [str(target)]}
        assert (target / "after").exists()  # the sandbox now lets the turn write there
    else:
        assert granted == {"permissions": {"network": None, "file_system": None}, "scope": "turn"}
        assert not (target / "after").exists()


@pytest.mark.parametrize(
    ("reviewer", "policy", "plugins"),
    [
        ("user", "on-request", None),
        ("auto_review", "untrusted", None),  # the reference reviews on-request/granular only
        ("auto_review", "on-request", TOOL_PLUGINS),  # no guardian: the user decides
    ],
    ids=["user-reviewer", "untrusted-policy", "guardian-disabled"],
)
async def test_the_client_is_asked_otherwise(
    serve, model_server, tmp_path, reviewer, policy, plugins
):
    # untrusted refuses escalation outright, and asks for any plain command instead.
    call = exec_call("true", "c1") if policy == "untrusted" else escalated(tmp_path / "x")
    model_server.responses.extend([call, text("done")])
    extra = {} if plugins is None else {"plugins": plugins}
    async with guarded(serve, model_server, **extra) as (agent, asked):
        thread = await agent.start(
            cwd=str(tmp_path), approvalPolicy=policy, approvalsReviewer=reviewer
        )
        _, notes = await agent.turn(thread["thread"]["id"])
    assert [m for m, _ in asked] == ["item/commandExecution/requestApproval"]
    assert review_notes(notes) == [] and model_server.reviewer_requests() == []


async def test_granular_policies_are_reviewed(serve, model_server, tmp_path):
    model_server.responses.extend([escalated(tmp_path / "x"), text("done")])
    model_server.reviews.append(reviewer_says("allow"))
    policy = {"granular": {"sandbox_approval": True, "rules": True, "mcp_elicitations": True}}
    async with guarded(serve, model_server) as (agent, asked):
        thread = await agent.start(cwd=str(tmp_path), approvalsReviewer="auto_review")
        await agent.turn(thread["thread"]["id"], approvalPolicy=policy)
    assert asked == [] and (tmp_path / "x").exists()


@pytest.mark.parametrize("outcome", ["allow", "deny"])
async def test_an_mcp_tool_call_is_reviewed(serve, model_server, tmp_path, outcome):
    model_server.responses.extend([mcp_call("echo", {"text": "hey"}, "c1"), text("done")])
    model_server.reviews.append(reviewer_says(outcome))
    plugins = (*MCP_PLUGINS, "guardian")
    async with mcp_agent(serve, model_server, {"demo": stdio_server()}, plugins=plugins) as agent:
        asked = []
        agent.client.on_request("mcpServer/elicitation/request", asked.append)
        thread = await agent.start(approvalsReviewer="auto_review")
        _, notes = await agent.turn(thread["thread"]["id"])
    assert asked == []
    (_, started), _, (_, completed) = review_notes(notes)
    assert started["action"] == {
        "type": "mcpToolCall",
        "server": "demo",
        "toolName": "echo",
        "connectorId": None,
        "connectorName": None,
        "toolTitle": None,
    }
    prompt = model_server.reviewer_requests()[0].body["input"][1]["content"][0]["text"]
    planned = json.loads(prompt.split("Planned action JSON:\n")[1].split("\n>>> APPROVAL")[0])
    assert planned["tool"] == "mcp_tool_call" and planned["arguments"] == {"text": "hey"}
    (call,) = [
        n.params["item"]
        for n in notes
        if n.method == "item/completed" and n.params["item"]["type"] == "mcpToolCall"
    ]
    if outcome == "allow":
        assert call["result"]["structuredContent"] == {"result": "hey"}
    else:
        assert completed["review"]["status"] == "denied"
        assert call["error"] == {"message": "user rejected MCP tool call"}
