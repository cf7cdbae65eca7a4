"""Automatic approval review end to end: the reviewer request, its verdicts, failing closed.

The kernel runs threads, models, agent_tools, process, sandbox and
guardian against the model stand-in; the stand-in answers the reviewer's
requests (``x-openai-subagent: guardian``) from a queue of their own
(tests/support/guardian_model.py). Every frame is validated against the
reference schema by the ``serve`` fixture.
"""

from __future__ import annotations

import json
import shutil

import pytest

from tests.support.agent import methods
from tests.support.guardian_agent import RISK_TAIL, escalated, guarded, review_notes
from tests.support.guardian_model import GuardianModelServer, reviewer_says, two_calls
from tests.support.model_server import http_error, stall, text
from tests.support.tools import item_notes, output_of

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "risk_level": {"type": "string", "enum": ["low", "medium", "high", "critical"]},
        "user_authorization": {"type": "string", "enum": ["unknown", "low", "medium", "high"]},
        "outcome": {"type": "string", "enum": ["allow", "deny"]},
        "rationale": {"type": "string"},
    },
    "required": ["outcome"],
}


@pytest.fixture
async def model_server():
    async with GuardianModelServer() as server:
        yield server


async def run_turn(serve, model_server, tmp_path, *, args=(), policy="on-request", **start):
    """One turn under auto review; returns (thread id, notifications, client approval requests)."""
    async with guarded(serve, model_server, args=args) as (agent, asked):
        start.setdefault("approvalsReviewer", "auto_review")
        thread = await agent.start(cwd=str(tmp_path), approvalPolicy=policy, **start)
        thread_id = thread["thread"]["id"]
        assert thread["approvalsReviewer"] == "auto_review"
        _, notes = await agent.turn(thread_id, "please touch the file")
    return thread_id, notes, asked


async def test_an_approved_command_runs_without_asking_the_client(serve, model_server, tmp_path):
    target = tmp_path / "made"
    model_server.responses.extend([escalated(target), text("done")])
    model_server.reviews.append(reviewer_says("allow", "low", "high", "the user asked for it"))
    thread_id, notes, asked = await run_turn(
        serve, model_server, tmp_path, approvalsReviewer="guardian_subagent"
    )
    assert asked == [] and target.exists()
    names = methods(notes)
    at = names.index("item/started[commandExecution]")
    assert names[at : at + 5] == [
        "item/started[commandExecution]",
        "item/autoApprovalReview/started",
        "guardianWarning",
        "item/autoApprovalReview/completed",
        "item/completed[commandExecution]",
    ]
    (_, started), (_, warning), (_, completed) = review_notes(notes)
    command = notes[at].params["item"]["command"]
    action = {"type": "command", "source": "unifiedExec", "command": command, "cwd": str(tmp_path)}
    assert started["targetItemId"] == "c1" and started["action"] == action
    assert started["review"] == {
        "status": "inProgress",
        "riskLevel": None,
        "userAuthorization": None,
        "rationale": None,
    }
    assert completed["reviewId"] == started["reviewId"] and completed["decisionSource"] == "agent"
    assert completed["startedAtMs"] == started["startedAtMs"] <= completed["completedAtMs"]
    assert completed["review"] == {
        "status": "approved",
        "riskLevel": "low",
        "userAuthorization": "high",
        "rationale": "the user asked for it",
    }
    assert warning == {
        "threadId": thread_id,
        "message": "Automatic approval review approved (risk: low, authorization: high): "
        "the user asked for it",
    }
    assert "Process exited with code 0" in output_of(model_server, "c1")


async def test_the_reviewer_request(serve, model_server, tmp_path):
    model_server.responses.extend([escalated(tmp_path / "x"), text("done")])
    model_server.reviews.append(reviewer_says("allow"))
    thread_id, _, _ = await run_turn(
        serve, model_server, tmp_path, developerInstructions="Never touch /etc."
    )
    (request,) = model_server.reviewer_requests()
    agent_request = model_server.agent_requests()[0]
    assert request.path == agent_request.path == "/v1/responses"
    assert request.headers["x-openai-subagent"] == "guardian"
    assert request.headers["x-codex-parent-thread-id"] == thread_id
    body = request.body
    assert body["model"] == agent_request.body["model"]
    assert body["reasoning"] == {"effort": "low"}
    assert body["prompt_cache_key"] == f"guardian:{thread_id}"
    assert body["stream"] is True and body["store"] is False and "tools" not in body
    assert body["text"]["format"] == {
        "type": "json_schema",
        "name": "codex_output_schema",
        "strict": False,
        "schema": SCHEMA,
    }
    policy, review = body["input"]
    assert policy["role"] == "developer"
    assert '"outcome": "allow" | "deny"' in policy["content"][0]["text"]
    assert review["role"] == "user"
    prompt = review["content"][0]["text"]
    assert "Never touch /etc." in prompt  # the thread's instructions
    assert "[1] user: please touch the file" in prompt  # the user's words
    assert "tool exec_command call:" in prompt  # the call under review
    planned = json.loads(prompt.split("Planned action JSON:\n")[1].split("\n>>> APPROVAL")[0])
    assert planned["tool"] == "exec_command" and planned["justification"] == "needed"
    assert planned["command"].endswith(f"touch {tmp_path / 'x'}'")


async def test_a_denial_reaches_the_model_with_the_rationale(serve, model_server, tmp_path):
    target = tmp_path / "made"
    model_server.responses.extend([escalated(target), text("done")])
    model_server.reviews.append(reviewer_says("deny", "high", "low", "too risky\nreally"))
    _, notes, asked = await run_turn(serve, model_server, tmp_path)
    assert asked == [] and not target.exists()
    reason = "This action was rejected due to unacceptable risk.\nReason: too risky\nreally\n"
    # As the reference prints it: the reason in the debug form of its error.
    inner = (reason + RISK_TAIL).replace("\n", "\\\\n")
    assert output_of(model_server, "c1") == (
        f'exec_command failed: CreateProcess {{ message: "Rejected(\\"{inner}\\")" }}'
    )
    done = next(p for m, p in item_notes(notes, "c1") if m == "item/completed")["item"]
    assert done["status"] == "declined"
    (_, _), (_, warning), (_, completed) = review_notes(notes)
    assert completed["review"]["status"] == "denied"
    assert warning["message"] == (
        "Automatic approval review denied (risk: high, authorization: low): too risky\nreally"
    )


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (text("not json at all"), "guardian assessment was not valid JSON"),
        (reviewer_says("maybe"), "the assessment's outcome is not allow or deny: 'maybe'"),
        (
            http_error(500, {"error": {"message": "reviewer down", "type": "server_error"}}),
            "the reviewer returned an error: ",
        ),
    ],
    ids=["garbage", "bad-outcome", "http-error"],
)
async def test_a_failed_review_denies_and_says_why(serve, model_server, tmp_path, answer, why):
    target = tmp_path / "made"
    model_server.responses.extend([escalated(target), text("done")])
    model_server.reviews.append(answer)
    _, notes, asked = await run_turn(serve, model_server, tmp_path)
    assert asked == [] and not target.exists()
    (_, _), (_, warning), (_, completed) = review_notes(notes)
    review = completed["review"]
    assert review["status"] == "denied" and review["riskLevel"] is None
    assert review["rationale"].startswith(f"Automatic approval review failed: {why}")
    assert warning["message"] == review["rationale"]
    output = output_of(model_server, "c1")
    assert "Automatic approval review failed: " in output
    assert "This is a review failure, not a determination that the action is unsafe." in output


async def test_a_review_that_times_out_denies(serve, model_server, tmp_path):
    target = tmp_path / "made"
    model_server.responses.extend([escalated(target), text("done")])
    model_server.reviews.append(stall())
    args = ["-c", "kernel_plugins.guardian.timeout_seconds=0.5"]
    _, notes, asked = await run_turn(serve, model_server, tmp_path, args=args)
    assert asked == [] and not target.exists()
    await model_server.wait_disconnect()  # the reviewer request was abandoned, not leaked
    (_, _), (_, warning), (_, completed) = review_notes(notes)
    rationale = "Automatic approval review timed out while evaluating the requested approval."
    assert completed["review"] == {
        "status": "timedOut",
        "riskLevel": None,
        "userAuthorization": None,
        "rationale": rationale,
    }
    assert warning["message"] == rationale
    assert "did not finish before its deadline" in output_of(model_server, "c1")


async def test_parallel_calls_are_reviewed_in_parallel(serve, model_server, tmp_path):
    first, second = tmp_path / "one", tmp_path / "two"
    calls = [
        {
            "call_id": call_id,
            "name": "exec_command",
            "arguments": json.dumps(
                {"cmd": f"touch {path}", "login": False, "sandbox_permissions": "require_escalated"}
            ),
        }
        for path, call_id in ((first, "c1"), (second, "c2"))
    ]
    model_server.responses.extend([two_calls(*calls), text("done")])
    # The first verdict waits for the second review's request: serial reviews would never end.
    model_server.reviews.extend(
        [reviewer_says("allow", "low", "high", "ok", {"until_requests": 3}), reviewer_says("allow")]
    )
    _, notes, asked = await run_turn(serve, model_server, tmp_path)
    assert asked == [] and first.exists() and second.exists()
    order = [m for m, _ in review_notes(notes) if m != "guardianWarning"]
    assert order[:2] == ["item/autoApprovalReview/started"] * 2
    assert {p["targetItemId"] for _, p in review_notes(notes) if "targetItemId" in p} == {
        "c1",
        "c2",
    }
