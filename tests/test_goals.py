"""Goals end to end against the Responses stand-in.

Methods, rules, accounting, bounded continuation, the model's goal tools,
and goals that survive a restart.
"""

from __future__ import annotations

import asyncio
import json

from tests.support.agent import agent_server
from tests.support.calls import fails
from tests.support.model_server import function_call, message_steps, text, usage

PLUGINS = ("threads", "models", "goals")


def goal_updates(notes) -> list[dict]:
    return [n.params for n in notes if n.method == "thread/goal/updated"]


def automatic(request) -> bool:
    last = request.body["input"][-1]
    texts = [part.get("text", "") for part in last.get("content") or []]
    return last.get("role") == "user" and any('source="goal"' in t for t in texts)


async def test_methods_rules_and_errors(serve, model_server, tmp_path):
    async with agent_server(serve, model_server, plugins=PLUGINS) as agent:
        client = agent.client
        thread = (await agent.start(cwd=str(tmp_path)))["thread"]
        tid = thread["id"]
        assert await client.request("thread/goal/get", {"threadId": tid}) == {"goal": None}
        assert await client.request("thread/goal/clear", {"threadId": tid}) == {"cleared": False}
        for params, message in [
            ({"status": "paused"}, f"cannot update goal for thread {tid}: no goal exists"),
            ({"objective": "  "}, "goal objective must not be empty"),
            ({"objective": "x", "tokenBudget": 0}, "goal budgets must be positive when provided"),
        ]:
            error = await fails(client, "thread/goal/set", {"threadId": tid, **params})
            assert (error.code, error.message) == (-32600, message)
        unknown = "0199a6f3-0000-7000-8000-000000000000"
        error = await fails(client, "thread/goal/get", {"threadId": unknown})
        assert error.message == f"thread not found: {unknown}"
        ephemeral = (await agent.start(cwd=str(tmp_path), ephemeral=True))["thread"]["id"]
        error = await fails(client, "thread/goal/set", {"threadId": ephemeral, "objective": "x"})
        assert error.message == f"ephemeral thread does not support goals: {ephemeral}"

        # A paused goal: no automatic turn starts, a user turn counts nothing.
        answer = await client.request(
            "thread/goal/set",
            {"threadId": tid, "objective": "ship it", "status": "paused", "tokenBudget": 500},
        )
        goal = answer["goal"]
        assert goal["status"] == "paused" and goal["tokensUsed"] == 0
        note = await client.next_notification("thread/goal/updated")
        assert note.params == {"threadId": tid, "turnId": None, "goal": goal}
        model_server.responses.append(text("hi", usage=usage(100, 20)))
        _, notes = await agent.turn(tid)
        assert goal_updates(notes) == []
        assert len(model_server.requests) == 1

        # Editing keeps the accounting; complete becomes active on a new objective.
        answer = await client.request(
            "thread/goal/set", {"threadId": tid, "status": "complete", "tokenBudget": None}
        )
        assert answer["goal"]["status"] == "complete" and answer["goal"]["tokenBudget"] is None
        paused = await client.request(
            "thread/goal/set", {"threadId": tid, "objective": "ship it twice", "status": "paused"}
        )
        assert paused["goal"]["createdAt"] == goal["createdAt"]
        assert paused["goal"]["status"] == "paused"
        cleared = await client.request("thread/goal/clear", {"threadId": tid})
        assert cleared == {"cleared": True}
        await agent.until("thread/goal/cleared")
        assert await client.request("thread/goal/get", {"threadId": tid}) == {"goal": None}


async def test_an_active_goal_continues_but_stops_when_turns_make_no_progress(
    serve, model_server, tmp_path
):
    model_server.router = lambda request: text("ok", usage=usage(40, 10))
    async with agent_server(serve, model_server, plugins=PLUGINS) as agent:
        client = agent.client
        tid = (await agent.start(cwd=str(tmp_path)))["thread"]["id"]
        await client.request("thread/goal/set", {"threadId": tid, "objective": "refactor"})
        notes = await agent.until("warning", timeout=30)
        await asyncio.sleep(0.5)
        notes += await agent.drain()
        goal = (await client.request("thread/goal/get", {"threadId": tid}))["goal"]
    # Two automatic turns that only said "ok", then the bound (max_idle_turns = 2).
    assert len(model_server.requests) == 2 and all(automatic(r) for r in model_server.requests)
    assert [n.method for n in notes].count("turn/completed") == 2
    warning = next(n for n in notes if n.method == "warning")
    assert "no progress" in warning.params["message"] and warning.params["threadId"] == tid
    assert goal["status"] == "active" and goal["tokensUsed"] == 100  # both turns counted
    turn_updates = [u for u in goal_updates(notes) if u["turnId"] is not None]
    assert [u["goal"]["tokensUsed"] for u in turn_updates] == [50, 100]
    objective = automatic_text = json.dumps(model_server.requests[0].body["input"][-1])
    assert "refactor" in objective and "update_goal" in automatic_text
    # No userMessage item for an automatic turn.
    assert not any(
        n.method == "item/started" and n.params["item"]["type"] == "userMessage" for n in notes
    )


async def test_the_budget_and_the_turn_count_bound_continuation(serve, model_server, tmp_path):
    def router(request):
        last = request.body["input"][-1]
        if last.get("type") == "function_call_output":
            return text("working", usage=usage(30, 10))
        return function_call("create_goal", json.dumps({"objective": "again"}), usage=usage(30, 10))

    model_server.router = router
    args = ["-c", "kernel_plugins.goals.max_automatic_turns=3"]
    async with agent_server(serve, model_server, plugins=PLUGINS, args=args) as agent:
        client = agent.client
        tid = (await agent.start(cwd=str(tmp_path)))["thread"]["id"]
        await client.request("thread/goal/set", {"threadId": tid, "objective": "busy work"})
        notes = await agent.until("warning", timeout=40)
        assert "after 3 turns without user input" in notes[-1].params["message"]
        assert [n.method for n in notes].count("turn/completed") == 3
        goal = (await client.request("thread/goal/get", {"threadId": tid}))["goal"]
        assert goal["tokensUsed"] == 3 * 80 and goal["status"] == "active"

        # A budget: the next turn that uses it up makes the goal budgetLimited and stops.
        await client.request("thread/goal/set", {"threadId": tid, "tokenBudget": 300})
        notes = await agent.until("turn/completed", timeout=30)
        await asyncio.sleep(0.5)
        notes += await agent.drain()
        goal = (await client.request("thread/goal/get", {"threadId": tid}))["goal"]
    assert goal["status"] == "budgetLimited" and goal["tokensUsed"] == 4 * 80
    assert [n.method for n in notes].count("turn/completed") == 1


async def test_the_model_creates_and_completes_goals_with_its_tools(serve, model_server, tmp_path):
    model_server.responses.extend(
        [
            function_call("get_goal", "{}", call_id="g1"),
            function_call(
                "create_goal",
                json.dumps({"objective": "write docs", "token_budget": 9000}),
                call_id="c1",
            ),
            text("created"),
            # The automatic turn that follows: the model says it is done.
            function_call("update_goal", json.dumps({"status": "complete"}), call_id="u1"),
            text("all done"),
        ]
    )
    async with agent_server(serve, model_server, plugins=PLUGINS) as agent:
        client = agent.client
        tid = (await agent.start(cwd=str(tmp_path)))["thread"]["id"]
        _, notes = await agent.turn(tid, text="please set a goal to write docs")
        tools = {t["name"] for t in model_server.requests[0].body["tools"]}
        assert {"get_goal", "create_goal", "update_goal"} <= tools
        created = goal_updates(notes)[0]
        assert created["turnId"] is not None and created["goal"]["objective"] == "write docs"
        notes = await agent.until("turn/completed", timeout=30)  # the automatic turn
        await asyncio.sleep(0.5)
        notes += await agent.drain()
        goal = (await client.request("thread/goal/get", {"threadId": tid}))["goal"]
    assert goal["status"] == "complete" and goal["tokenBudget"] == 9000
    outputs = {
        item["call_id"]: item["output"]
        for request in model_server.requests
        for item in request.body["input"]
        if item.get("type") == "function_call_output"
    }
    assert json.loads(outputs["g1"]) == {"goal": None}
    assert json.loads(outputs["u1"])["goal"]["status"] == "complete"
    assert len(model_server.requests) == 5  # no continuation after complete


async def test_a_goal_survives_a_restart_and_is_shown_on_resume(serve, model_server, tmp_path):
    home = tmp_path / "home"
    async with agent_server(serve, model_server, plugins=PLUGINS, home=home) as agent:
        tid = (await agent.start(cwd=str(tmp_path)))["thread"]["id"]
        model_server.responses.append(text("hi"))
        await agent.turn(tid)  # materialize the rollout
        await agent.client.request(
            "thread/goal/set", {"threadId": tid, "objective": "keep me", "status": "paused"}
        )
    async with agent_server(serve, model_server, plugins=PLUGINS, home=home) as agent:
        client = agent.client
        # Readable before the thread is loaded.
        goal = (await client.request("thread/goal/get", {"threadId": tid}))["goal"]
        assert goal["objective"] == "keep me"
        await client.request("thread/resume", {"threadId": tid, "excludeTurns": True})
        note = await client.next_notification("thread/goal/updated")
        assert note.params == {"threadId": tid, "turnId": None, "goal": goal}


async def test_a_new_objective_steers_the_running_turn(serve, model_server, tmp_path):
    from tests.support.model_server import sleep, stream

    slow = stream(sleep(1.5), *message_steps(["still on it"]))
    model_server.responses.extend([slow, text("switched")])
    async with agent_server(serve, model_server, plugins=PLUGINS) as agent:
        client = agent.client
        tid = (await agent.start(cwd=str(tmp_path)))["thread"]["id"]
        await client.request(
            "thread/goal/set", {"threadId": tid, "objective": "old plan", "status": "paused"}
        )
        await agent.begin(tid, "work on it")
        await model_server.wait_requests(1)
        await client.request(
            "thread/goal/set", {"threadId": tid, "objective": "new plan", "status": "active"}
        )
        notes = await agent.until("turn/completed", timeout=30)
        await client.request("thread/goal/set", {"threadId": tid, "status": "paused"})
    user_items = [
        n for n in notes if n.method == "item/started" and n.params["item"]["type"] == "userMessage"
    ]
    assert len(user_items) == 1  # the user's own message only: the steer is for the model
    steered = model_server.requests[1].body["input"]
    texts = [p.get("text", "") for item in steered for p in item.get("content") or []]
    assert any("new plan" in t and 'source="goal"' in t for t in texts)
