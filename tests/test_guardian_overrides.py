"""Overriding a denial (thread/approveGuardianDeniedAction), interrupts, and reviewer settings."""

from __future__ import annotations

import json
import shutil

import pytest

from kernel import RpcError
from tests.support.guardian_agent import escalated, guarded, review_notes
from tests.support.guardian_model import GuardianModelServer, reviewer_says
from tests.support.model_server import stall, text

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

APPROVED = "The user approved an action that automatic approval review had denied."


@pytest.fixture
async def model_server():
    async with GuardianModelServer() as server:
        yield server


def developer_texts(request) -> list[str]:
    return [
        item["content"][0]["text"]
        for item in request.body["input"]
        if item.get("role") == "developer" and item["content"][0]["text"].startswith(APPROVED)
    ]


def approved_action(message: str) -> dict:
    return json.loads(message.split("Approved action:\n", 1)[1])


async def test_an_approved_denial_reaches_the_model_and_the_next_review(
    serve, model_server, tmp_path
):
    model_server.responses.extend(
        [escalated(tmp_path / "a", "c1"), escalated(tmp_path / "b", "c2"), text("first")]
    )
    model_server.reviews.extend(
        [
            reviewer_says("deny", "high", "low", "not asked for"),
            # The second review waits until the user approved the first denial.
            reviewer_says("allow", "low", "high", "fine", {"until": "approved"}),
        ]
    )
    async with guarded(serve, model_server) as (agent, asked):
        client = agent.client
        thread = await agent.start(
            cwd=str(tmp_path), approvalPolicy="on-request", approvalsReviewer="auto_review"
        )
        thread_id = thread["thread"]["id"]
        await agent.begin(thread_id)
        seen = await agent.until("item/autoApprovalReview/completed")
        denial = seen[-1].params
        assert denial["review"]["status"] == "denied"
        # The client sends back the denial it was shown (the v2 notification's params).
        answer = await client.request(
            "thread/approveGuardianDeniedAction", {"threadId": thread_id, "event": denial}
        )
        assert answer == {}
        model_server.events["approved"].set()
        await agent.until("turn/completed")
        # Given while the turn ran: it joins the history when the turn ends, never between
        # a tool call and its output.
        assert developer_texts(model_server.agent_requests()[2]) == []

        # Idle thread: the approval (here the reference's snake_case event, for an action this
        # server never reviewed) waits for the next turn, where the reviewer sees it too.
        other = {"type": "command", "source": "unified_exec", "command": "rm -r build", "cwd": "/"}
        event = {"id": "review-elsewhere", "turn_id": "t", "status": "denied", "action": other}
        await client.request(
            "thread/approveGuardianDeniedAction", {"threadId": thread_id, "event": event}
        )
        model_server.responses.extend([escalated(tmp_path / "c", "c3"), text("second")])
        model_server.reviews.append(reviewer_says("allow"))
        await agent.turn(thread_id, "go ahead")
    assert asked == []
    fourth = model_server.agent_requests()[3]
    first, second = developer_texts(fourth)
    assert approved_action(first) == {"action": denial["action"], "outcome": "allowed"}
    assert approved_action(second) == {"action": other, "outcome": "allowed"}
    # The first closes turn 1 (before the new user message), the second opens turn 2.
    texts = [i["content"][0]["text"] for i in fourth.body["input"] if i.get("type") == "message"]
    assert texts[-4:] == ["first", first, "go ahead", second]
    prompt = model_server.reviewer_requests()[-1].body["input"][1]["content"][0]["text"]
    assert prompt.count(f"developer: {APPROVED}") == 2


async def test_bad_approvals_are_refused(serve, model_server, tmp_path):
    model_server.responses.extend([escalated(tmp_path / "a", "c1"), text("done")])
    model_server.reviews.append(reviewer_says("deny", "high", "low", "no"))
    async with guarded(serve, model_server) as (agent, _):
        client = agent.client
        start = {"cwd": str(tmp_path), "approvalsReviewer": "auto_review"}
        thread_id = (await agent.start(**start))["thread"]["id"]
        _, notes = await agent.turn(thread_id)
        denied = review_notes(notes)[-1][1]
        approved = {**denied, "review": {**denied["review"], "status": "approved"}}
        other_thread = (await agent.start(**start))["thread"]["id"]

        async def refused(thread: str, event: object) -> str:
            with pytest.raises(RpcError) as error:
                await client.request(
                    "thread/approveGuardianDeniedAction", {"threadId": thread, "event": event}
                )
            assert error.value.code == -32600
            return error.value.message

        assert await refused(thread_id, {"bogus": 1}) == (
            "invalid Guardian denial event: missing field `id`"
        )
        assert await refused(thread_id, {"id": "r", "status": "denied"}) == (
            "invalid Guardian denial event: missing field `action`"
        )
        message = await refused(thread_id, approved)
        assert message.endswith("was not denied (status approved): only a denial can be approved")
        assert await refused("no-such-thread", denied) == "thread not found: no-such-thread"
        assert await refused(other_thread, denied) == (
            f"review {denied['reviewId']} belongs to another thread, not {other_thread}"
        )
        with pytest.raises(RpcError) as error:
            await client.request("thread/approveGuardianDeniedAction", {"threadId": thread_id})
        assert error.value.code == -32602 and "event" in error.value.message


async def test_an_interrupted_review_completes_as_aborted(serve, model_server, tmp_path):
    model_server.responses.extend([escalated(tmp_path / "a"), text("never")])
    model_server.reviews.append(stall())
    async with guarded(serve, model_server) as (agent, asked):
        thread = await agent.start(
            cwd=str(tmp_path), approvalPolicy="on-request", approvalsReviewer="auto_review"
        )
        thread_id = thread["thread"]["id"]
        turn_id = await agent.begin(thread_id)
        await agent.until("item/autoApprovalReview/started")
        # Interrupt once the reviewer request reached the stand-in (the started
        # notification precedes it), so abandoning it is what is tested.
        await model_server.wait_requests(2)
        await agent.client.request("turn/interrupt", {"threadId": thread_id, "turnId": turn_id})
        notes = await agent.until("turn/completed")
        await model_server.wait_disconnect()
    (method, completed), *_ = review_notes(notes)
    assert method == "item/autoApprovalReview/completed"
    assert completed["review"]["status"] == "aborted"
    assert notes[-1].params["turn"]["status"] == "interrupted"
    assert asked == [] and not (tmp_path / "a").exists()


@pytest.mark.parametrize(
    ("config_toml", "overrides", "expected"),
    [
        ("", ['approvals_reviewer="guardian_subagent"'], "auto_review"),
        ("", ["features.guardian_approval=true"], "auto_review"),
        ("", ["features.guardian_approval=true", 'approvals_reviewer="user"'], "user"),
        ('approvals_reviewer = "user"\n', ["features.guardian_approval=true"], "auto_review"),
        ("[features]\nguardian_approval = true\n", ['approvals_reviewer="user"'], "user"),
        ("[features]\nguardian_approval = true\n", [], "auto_review"),
        ("[features]\nguardian_approval = false\n", [], "user"),
    ],
)
async def test_the_configured_reviewer(
    serve, model_server, tmp_path, config_toml, overrides, expected
):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(config_toml)
    args = [part for value in overrides for part in ("-c", value)]
    async with guarded(serve, model_server, args=args, home=home) as (agent, _):
        thread = await agent.start(cwd=str(tmp_path))
    assert thread["approvalsReviewer"] == expected


async def test_a_turn_can_switch_to_the_legacy_reviewer_name(serve, model_server, tmp_path):
    model_server.responses.extend([escalated(tmp_path / "a"), text("done")])
    model_server.reviews.append(reviewer_says("allow"))
    async with guarded(serve, model_server) as (agent, asked):
        thread = await agent.start(cwd=str(tmp_path), approvalPolicy="on-request")
        assert thread["approvalsReviewer"] == "user"
        _, notes = await agent.turn(thread["thread"]["id"], approvalsReviewer="guardian_subagent")
    assert asked == [] and (tmp_path / "a").exists()
    updated = [n.params for n in notes if n.method == "thread/settings/updated"]
    assert updated[-1]["threadSettings"]["approvalsReviewer"] == "auto_review"


async def test_resume_can_switch_the_reviewer(serve, model_server, tmp_path):
    model_server.responses.extend([text("first"), escalated(tmp_path / "a"), text("done")])
    model_server.reviews.append(reviewer_says("allow"))
    async with guarded(serve, model_server) as (agent, asked):
        thread = await agent.start(cwd=str(tmp_path), approvalPolicy="on-request")
        thread_id = thread["thread"]["id"]
        await agent.turn(thread_id)
        resumed = await agent.client.request(
            "thread/resume",
            {"threadId": thread_id, "excludeTurns": True, "approvalsReviewer": "guardian_subagent"},
        )
        assert resumed["approvalsReviewer"] == "auto_review"
        _, notes = await agent.turn(thread_id)
    assert asked == [] and (tmp_path / "a").exists()  # reviewed, never asked
    assert [m for m, _ in review_notes(notes)][-1] == "item/autoApprovalReview/completed"
