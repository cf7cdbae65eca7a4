"""Hook commands during turns: real scripts that allow, block, add context and time out.

The model is the Responses stand-in; the hooks are shell scripts in the
test's folder, trusted through config/batchWrite exactly as a client would.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from tests.support.model_server import text
from tests.support.processes import live_processes
from tests.support.tools import exec_call, output_of, tools_server

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

PLUGINS = ("threads", "models", "agent_tools", "process", "sandbox", "hooks", "config")


def script(folder: Path, name: str, body: str) -> str:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def write_hooks(home: Path, hooks: dict) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "hooks.json").write_text(json.dumps({"hooks": hooks}))


def command(path: str, **extra) -> dict:
    return {"hooks": [{"type": "command", "command": path, **extra}]}


async def trust_all(client, cwd: str) -> None:
    """Trust every hook listed for ``cwd`` (as a client's trust prompt would)."""
    data = (await client.request("hooks/list", {"cwds": [cwd]}))["data"][0]
    state = {h["key"]: {"trusted_hash": h["currentHash"]} for h in data["hooks"]}
    await client.request(
        "config/batchWrite",
        {"edits": [{"keyPath": "hooks.state", "value": state, "mergeStrategy": "upsert"}]},
    )


def runs(notes, method: str) -> list[dict]:
    return [n.params["run"] for n in notes if n.method == method]


def developer_texts(request) -> list[str]:
    return [
        part["text"]
        for item in request.body["input"]
        if item.get("role") == "developer"
        for part in item["content"]
    ]


async def test_pre_tool_use_blocks_and_untrusted_hooks_never_run(serve, model_server, tmp_path):
    home, seen = tmp_path / "home", tmp_path / "pre.json"
    blocker = script(tmp_path, "block.sh", f'cat > {seen}\necho "no touching" >&2\nexit 2\n')
    target = tmp_path / "made.txt"
    write_hooks(home, {"PreToolUse": [{"matcher": "Bash", **command(blocker)}]})
    model_server.responses.extend([exec_call(f"touch {target}", "call_1"), text("done")])
    async with tools_server(serve, model_server, plugins=PLUGINS, home=home) as agent:
        thread = (await agent.start(cwd=str(tmp_path)))["thread"]
        # Untrusted: the hook does not run (no notification, the command runs).
        _, notes = await agent.turn(thread["id"])
        assert runs(notes, "hook/started") == [] and not seen.exists()
        await trust_all(agent.client, str(tmp_path))
        model_server.responses.extend([exec_call(f"touch {target}", "call_2"), text("done")])
        _, notes = await agent.turn(thread["id"])
    assert output_of(model_server, "call_2") == (
        f"Command blocked by PreToolUse hook: no touching. Command: touch {target}"
    )
    (started,) = runs(notes, "hook/started")
    (completed,) = runs(notes, "hook/completed")
    run_id = f"pre-tool-use:0:{home / 'hooks.json'}:call_2"
    assert started["id"] == completed["id"] == run_id
    assert (started["status"], started["entries"], started["completedAt"]) == ("running", [], None)
    assert completed["status"] == "blocked" and completed["scope"] == "turn"
    assert completed["entries"] == [{"kind": "feedback", "text": "no touching"}]
    assert completed["eventName"] == "preToolUse" and completed["source"] == "user"
    payload = json.loads(seen.read_text())
    assert payload["hook_event_name"] == "PreToolUse" and payload["tool_name"] == "Bash"
    assert payload["tool_input"] == {"command": f"touch {target}"}
    assert payload["tool_use_id"] == "call_2" and payload["session_id"] == thread["id"]
    assert payload["cwd"] == str(tmp_path) and payload["permission_mode"] == "default"
    assert payload["transcript_path"] == thread["path"]


async def test_post_tool_use_context_and_a_hook_that_times_out(serve, model_server, tmp_path):
    home = tmp_path / "home"
    slow = script(tmp_path, "slow.sh", "exec sleep 30.4242\n")
    context = script(
        tmp_path,
        "context.sh",
        "cat > /dev/null\n"
        'echo \'{"hookSpecificOutput": {"hookEventName": "PostToolUse", '
        '"additionalContext": "remember the ledger"}}\'\n',
    )
    write_hooks(
        home,
        {
            "PreToolUse": [{"matcher": "Bash", **command(slow, timeout=1)}],
            "PostToolUse": [{"matcher": "^Ba", **command(context)}],
        },
    )
    model_server.responses.extend([exec_call("echo ran-anyway", "call_1"), text("done")])
    async with tools_server(serve, model_server, plugins=PLUGINS, home=home) as agent:
        thread = (await agent.start(cwd=str(tmp_path)))["thread"]
        await trust_all(agent.client, str(tmp_path))
        _, notes = await agent.turn(thread["id"], timeout=30)
    assert "ran-anyway" in output_of(model_server, "call_1")  # a failed hook never blocks
    completed = {r["eventName"]: r for r in runs(notes, "hook/completed")}
    assert completed["preToolUse"]["status"] == "failed"
    assert completed["preToolUse"]["entries"] == [
        {"kind": "error", "text": "hook timed out after 1s"}
    ]
    assert completed["postToolUse"]["entries"] == [
        {"kind": "context", "text": "remember the ledger"}
    ]
    last = model_server.requests[-1]
    kinds = [i.get("type") or i.get("role") for i in last.body["input"]]
    assert kinds.index("function_call_output") < len(kinds) - 1
    assert "remember the ledger" in developer_texts(last)
    await asyncio.sleep(0.2)
    assert not live_processes("30.4242")  # the timed-out hook was killed and reaped


async def test_user_prompt_submit_blocks_or_adds_context(serve, model_server, tmp_path):
    home = tmp_path / "home"
    gate = script(
        tmp_path,
        "gate.sh",
        "input=$(cat)\n"
        'case "$input" in *password*) echo "looks like a secret" >&2; exit 2;; esac\n'
        'echo "The user is on call today."\n',
    )
    write_hooks(home, {"UserPromptSubmit": [command(gate)]})
    model_server.responses.append(text("fine"))
    async with tools_server(serve, model_server, plugins=PLUGINS, home=home) as agent:
        thread = (await agent.start(cwd=str(tmp_path)))["thread"]
        await trust_all(agent.client, str(tmp_path))
        _, notes = await agent.turn(thread["id"], text="my password is hunter2")
        assert model_server.requests == []  # dropped: the model never saw it
        assert notes[-1].params["turn"]["status"] == "completed"
        (blocked,) = runs(notes, "hook/completed")
        assert blocked["status"] == "blocked" and blocked["eventName"] == "userPromptSubmit"
        _, notes = await agent.turn(thread["id"], text="hello")
    (request,) = model_server.requests
    assert "The user is on call today." in developer_texts(request)
    assert "hunter2" not in json.dumps(request.body)


async def test_stop_hook_continues_the_turn_once(serve, model_server, tmp_path):
    home = tmp_path / "home"
    stop = script(
        tmp_path,
        "stop.sh",
        'case "$(cat)" in *\'"stop_hook_active":true\'*) exit 0;; esac\n'
        'echo \'{"decision": "block", "reason": "run the <tests> first"}\'\n',
    )
    write_hooks(home, {"Stop": [command(stop)]})
    model_server.responses.extend([text("first"), text("second")])
    async with tools_server(serve, model_server, plugins=PLUGINS, home=home) as agent:
        thread = (await agent.start(cwd=str(tmp_path)))["thread"]
        await trust_all(agent.client, str(tmp_path))
        _, notes = await agent.turn(thread["id"])
    assert len(model_server.requests) == 2
    last = model_server.requests[-1].body["input"][-1]
    run_id = f"stop:0:{home / 'hooks.json'}"
    assert last == {
        "type": "message",
        "role": "user",
        "content": [
            {
                "type": "input_text",
                "text": f'<hook_prompt hook_run_id="{run_id}">run the &lt;tests&gt; first'
                "</hook_prompt>",
            }
        ],
    }
    assert [r["status"] for r in runs(notes, "hook/completed")] == ["blocked", "completed"]
    assert notes[-1].params["turn"]["status"] == "completed"


async def test_permission_request_decides_before_the_client(serve, model_server, tmp_path):
    home = tmp_path / "home"
    decide = script(
        tmp_path,
        "decide.sh",
        'case "$(cat)" in *forbidden*) b=deny;; *) b=allow;; esac\n'
        'echo "{\\"hookSpecificOutput\\": {\\"hookEventName\\": \\"PermissionRequest\\", '
        '\\"decision\\": {\\"behavior\\": \\"$b\\", \\"message\\": \\"not that one\\"}}}"\n',
    )
    write_hooks(home, {"PermissionRequest": [{"matcher": "Bash", **command(decide)}]})
    made = tmp_path / "allowed.txt"
    model_server.responses.extend(
        [
            exec_call(f"touch {made}", "call_ok"),
            exec_call(f"touch {tmp_path / 'forbidden.txt'}", "call_no"),
            text("done"),
        ]
    )
    asked: list[dict] = []

    async def client_answer(params: dict) -> dict:
        asked.append(params)
        return {"decision": "decline"}

    async with tools_server(serve, model_server, plugins=PLUGINS, home=home) as agent:
        agent.client.on_request("item/commandExecution/requestApproval", client_answer)
        thread = (await agent.start(cwd=str(tmp_path), approvalPolicy="untrusted"))["thread"]
        await trust_all(agent.client, str(tmp_path))
        await agent.turn(thread["id"])
    assert asked == []  # the hook decided both; the client was never asked
    assert made.exists() and not (tmp_path / "forbidden.txt").exists()
    assert "not that one" in output_of(model_server, "call_no")


async def test_session_start_context_reaches_the_first_request(serve, model_server, tmp_path):
    home = tmp_path / "home"
    start = script(tmp_path, "start.sh", 'cat > /dev/null\necho "Branch: main, CI is red"\n')
    write_hooks(home, {"SessionStart": [{"matcher": "startup", **command(start)}]})
    model_server.responses.extend([text("one"), text("two")])
    async with tools_server(serve, model_server, plugins=PLUGINS, home=home) as agent:
        thread = (await agent.start(cwd=str(tmp_path)))["thread"]
        await trust_all(agent.client, str(tmp_path))
        _, notes = await agent.turn(thread["id"])
        (run,) = runs(notes, "hook/completed")
        assert run["scope"] == "thread" and run["entries"][0]["kind"] == "context"
        _, notes = await agent.turn(thread["id"])
        assert runs(notes, "hook/completed") == []  # once per thread
    first, second = model_server.requests
    assert "Branch: main, CI is red" in developer_texts(first)
    assert developer_texts(second).count("Branch: main, CI is red") == 1  # kept, not repeated
