"""The sandbox rules again, through the agent's ``exec_command`` (one service for both paths)."""

from __future__ import annotations

import asyncio
import re
import shutil
import sys

import pytest

from tests.support.model_server import text
from tests.support.tools import exec_call, item_notes, output_of, tools_server

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

EXIT = re.compile(r"Process exited with code (-?\d+)")
NO_TMP = {"excludeSlashTmp": True, "excludeTmpdirEnvVar": True}


def exit_code(model_server, call_id: str) -> int:
    found = EXIT.search(output_of(model_server, call_id))
    assert found, output_of(model_server, call_id)
    return int(found.group(1))


async def test_workspace_write_confines_writes_to_the_cwd(serve, model_server, tmp_path):
    project, outside = tmp_path / "project", tmp_path / "outside"
    (project / "sub").mkdir(parents=True)
    outside.mkdir()
    (project / ".git").mkdir()
    model_server.responses.extend(
        [
            exec_call("touch inside", "c1"),
            exec_call(f"touch {outside}/x", "c2"),
            exec_call("touch .git/config", "c3"),
            exec_call("touch here", "c4", workdir="sub"),  # :project_roots follows the cwd
            text("done"),
        ]
    )
    policy = {"type": "workspaceWrite", **NO_TMP}
    async with tools_server(serve, model_server) as agent:
        thread_id = (await agent.start(cwd=str(project)))["thread"]["id"]
        _, notes = await agent.turn(thread_id, sandboxPolicy=policy, approvalPolicy="never")
    assert [exit_code(model_server, c) for c in ("c1", "c2", "c3", "c4")] == [0, 1, 1, 0]
    assert (project / "inside").exists() and (project / "sub" / "here").exists()
    assert not (outside / "x").exists() and not (project / ".git" / "config").exists()
    # A command the sandbox blocks still has its item, completed as failed.
    blocked = [p for m, p in item_notes(notes, "c2") if m == "item/completed"]
    assert blocked[0]["item"]["status"] == "failed" and blocked[0]["item"]["exitCode"] == 1


async def test_network_needs_the_network_permission(serve, model_server, tmp_path):
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hi\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    probe = (
        f"{sys.executable} -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 5)\""
    )
    model_server.responses.extend(
        [exec_call(probe, "c1"), text("a"), exec_call(probe, "c2"), text("b")]
    )
    try:
        async with tools_server(serve, model_server) as agent:
            thread_id = (await agent.start(cwd=str(tmp_path)))["thread"]["id"]
            closed = {"type": "workspaceWrite", "networkAccess": False}
            await agent.turn(thread_id, sandboxPolicy=closed, approvalPolicy="never")
            opened = {"type": "workspaceWrite", "networkAccess": True}
            await agent.turn(thread_id, sandboxPolicy=opened, approvalPolicy="never")
    finally:
        server.close()
        await server.wait_closed()
    assert exit_code(model_server, "c1") != 0 and exit_code(model_server, "c2") == 0


async def test_configured_deny_read_and_full_access(serve, model_server, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        'default_permissions = "dev"\n'
        "[permissions.dev.filesystem]\n"
        '":root" = "read"\n'
        '":project_roots" = { "." = "write", "**/*.key" = "deny" }\n'
        "glob_scan_max_depth = 3\n"
    )
    project, outside = tmp_path / "project", tmp_path / "outside"
    project.mkdir()
    outside.mkdir()
    (project / "prod.key").write_text("SECRET\n")
    model_server.responses.extend(
        [
            exec_call("cat prod.key", "c1"),
            text("a"),
            exec_call(f"touch {outside}/y", "c2"),
            text("b"),
        ]
    )
    async with tools_server(serve, model_server, home=home) as agent:
        thread_id = (await agent.start(cwd=str(project), sandbox="workspace-write"))["thread"]["id"]
        await agent.turn(thread_id, approvalPolicy="never")
        await agent.turn(thread_id, sandboxPolicy={"type": "dangerFullAccess"})
    hidden = output_of(model_server, "c1")
    assert exit_code(model_server, "c1") != 0 and "SECRET" not in hidden
    assert exit_code(model_server, "c2") == 0 and (outside / "y").exists()
