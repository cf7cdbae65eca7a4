"""Environments: a turn's commands and patches run on a second kernel (fs + process over ws)."""

from __future__ import annotations

import shutil

import pytest

from tests.support.calls import fails
from tests.support.model_server import text
from tests.support.tools import (
    TOOL_PLUGINS,
    exec_call,
    item_notes,
    output_of,
    patch_call,
    tools_server,
)

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

TOKEN = "s3cret-environment-token-0123456789"
AGENT = (*TOOL_PLUGINS, "environments")


async def remote_kernel(listen, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    args = ["--ws-auth", "capability-token", "--ws-token-file", str(token_file)]
    return listen(
        plugins=("fs", "process", "sandbox", "ws_auth"), args=args, home=tmp_path / "remote-home"
    )


async def test_commands_and_patches_land_on_the_remote_kernel(
    serve, listen, model_server, tmp_path
):
    remote_dir = tmp_path / "remote-work"
    remote_dir.mkdir()
    (remote_dir / "notes.txt").write_text("one\n")
    patch = (
        "*** Begin Patch\n*** Update File: notes.txt\n@@\n-one\n+ONE\n"
        "*** Add File: new.txt\n+hi\n*** End Patch"
    )
    model_server.responses.extend(
        [
            exec_call("echo remote > made.txt; cat notes.txt; echo $NO_COLOR", "c1"),
            patch_call(patch, "p1"),
            text("done"),
        ]
    )
    async with await remote_kernel(listen, tmp_path) as remote:
        async with tools_server(serve, model_server, plugins=AGENT) as agent:
            client = agent.client
            add = {"environmentId": "box", "execServerUrl": remote.url(), "authBearerToken": TOKEN}
            assert await client.request("environment/add", add) == {}
            status = await client.request("environment/status", {"environmentId": "box"})
            assert status == {"status": "pending"}
            info = await client.request("environment/info", {"environmentId": "box"})
            assert info["shell"]["path"] and info["cwd"].startswith("file:///")
            env = [{"environmentId": "box", "cwd": str(remote_dir)}]
            thread = await agent.start(
                cwd=str(tmp_path), environments=env, sandbox="workspace-write"
            )
            _, notes = await agent.turn(thread["thread"]["id"])
            status = await client.request("environment/status", {"environmentId": "box"})
            assert status == {"status": "ready"}
    assert (remote_dir / "made.txt").read_text() == "remote\n"
    assert "one\n1\n" in output_of(model_server, "c1")
    assert "Success. Updated the following files:" in output_of(model_server, "p1")
    assert (remote_dir / "notes.txt").read_text() == "ONE\n"
    assert (remote_dir / "new.txt").read_text() == "hi\n"
    deltas = [p["delta"] for m, p in item_notes(notes, "c1") if m.endswith("outputDelta")]
    assert "".join(deltas) == "one\n1\n"
    diff = next(n.params["diff"] for n in notes if n.method == "turn/diff/updated")
    assert "-one\n+ONE" in diff


async def test_environment_errors_and_no_environment(serve, model_server, tmp_path):
    model_server.responses.extend([text("no tools here")])
    async with tools_server(serve, model_server, plugins=AGENT) as agent:
        client = agent.client
        local = {"environmentId": "local", "execServerUrl": "ws://127.0.0.1:1"}
        error = await fails(client, "environment/add", local)
        assert error.code == -32600 and "reserved" in error.message
        bad = {"environmentId": "x", "execServerUrl": "not a url"}
        error = await fails(client, "environment/add", bad)
        assert error.code == -32602 and "execServerUrl" in error.message
        leak = {
            "environmentId": "x",
            "execServerUrl": "ws://example.com:9/",
            "authBearerToken": "t",
        }
        error = await fails(client, "environment/add", leak)
        assert error.code == -32602 and "authBearerToken" in error.message
        error = await fails(client, "environment/info", {"environmentId": "nope"})
        assert error.code == -32600 and error.message == "unknown environment id `nope`"
        assert await client.request("environment/status", {"environmentId": "local"}) == {
            "status": "ready"
        }
        gone = {
            "environmentId": "gone",
            "execServerUrl": "ws://127.0.0.1:9/",
            "connectTimeoutMs": 500,
        }
        await client.request("environment/add", gone)
        error = await fails(client, "environment/info", {"environmentId": "gone"})
        assert error.code == -32603 and "failed to get info for environment `gone`" in error.message
        status = await client.request("environment/status", {"environmentId": "gone"})
        assert status["status"] == "disconnected" and "cannot reach" in status["error"]
        error = await fails(
            client,
            "thread/start",
            {"cwd": str(tmp_path), "environments": [{"environmentId": "nope", "cwd": "/"}]},
        )
        assert error.code == -32600 and "unknown environment id `nope`" in error.message
        thread = await agent.start(cwd=str(tmp_path), environments=[])
        await agent.turn(thread["thread"]["id"])
    tools = {t["name"] for t in model_server.requests[0].body["tools"]}
    assert "exec_command" not in tools and "apply_patch" not in tools
