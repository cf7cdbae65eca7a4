"""The sandbox enforced from the outside: ``command/exec`` under bubblewrap, over real stdio.

Each rule is proved by what a command can and cannot do: write outside the
writable roots, read a denied file, reach the network, write anywhere with
full access. pytest's ``tmp_path`` lives under ``/tmp``, which
``workspaceWrite`` makes writable, so the policies here exclude ``/tmp``
and ``$TMPDIR`` unless a test is about them.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import sys
from pathlib import Path

import pytest

from tests.support.calls import fails

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

NO_TMP = {"excludeSlashTmp": True, "excludeTmpdirEnvVar": True}


def workspace(**extra: object) -> dict:
    return {"type": "workspaceWrite", **NO_TMP, **extra}


@pytest.fixture
async def sandboxed(serve):
    async with serve(plugins=["process", "sandbox"]) as served:
        await served.client.initialize(experimental=True)
        yield served.client


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    project, outside = tmp_path / "project", tmp_path / "outside"
    project.mkdir()
    outside.mkdir()
    return {"project": project, "outside": outside}


async def run(client, argv: list[str], cwd: Path | str, **params: object) -> dict:
    return await client.request("command/exec", {"command": argv, "cwd": str(cwd), **params})


def touch(path: Path) -> list[str]:
    return ["sh", "-c", f"echo written > '{path}'"]


async def test_read_only_reads_everything_and_writes_nothing(sandboxed, layout):
    project = layout["project"]
    (project / "notes.txt").write_text("visible\n")
    policy = {"type": "readOnly"}
    result = await run(sandboxed, ["cat", "notes.txt"], project, sandboxPolicy=policy)
    assert (result["exitCode"], result["stdout"]) == (0, "visible\n")
    result = await run(sandboxed, touch(project / "new"), project, sandboxPolicy=policy)
    assert result["exitCode"] != 0 and "Read-only file system" in result["stderr"]
    assert not (project / "new").exists()


async def test_workspace_write_allows_the_cwd_and_nothing_outside(sandboxed, layout):
    project, outside = layout["project"], layout["outside"]
    ok = await run(sandboxed, touch(project / "inside"), project, sandboxPolicy=workspace())
    assert ok["exitCode"] == 0 and (project / "inside").read_text() == "written\n"
    denied = await run(sandboxed, touch(outside / "x"), project, sandboxPolicy=workspace())
    assert denied["exitCode"] != 0 and not (outside / "x").exists()
    # An extra writable root opens exactly that directory.
    extra = workspace(writableRoots=[str(outside)])
    assert (await run(sandboxed, touch(outside / "x"), project, sandboxPolicy=extra))[
        "exitCode"
    ] == 0


async def test_slash_tmp_is_writable_unless_excluded(sandboxed, layout):
    project = layout["project"]
    target = layout["outside"] / "under-tmp"  # tmp_path is below /tmp
    policy = {"type": "workspaceWrite", "excludeTmpdirEnvVar": True}
    assert (await run(sandboxed, touch(target), project, sandboxPolicy=policy))["exitCode"] == 0
    target.unlink()
    strict = workspace()
    assert (await run(sandboxed, touch(target), project, sandboxPolicy=strict))["exitCode"] != 0
    assert not target.exists()


async def test_git_metadata_stays_read_only_inside_a_writable_root(sandboxed, layout):
    project = layout["project"]
    (project / ".git").mkdir()
    (project / ".codex").mkdir()
    for protected in (project / ".git" / "config", project / ".codex" / "x"):
        result = await run(sandboxed, touch(protected), project, sandboxPolicy=workspace())
        assert result["exitCode"] != 0 and not protected.exists()
    assert (await run(sandboxed, touch(project / "src"), project, sandboxPolicy=workspace()))[
        "exitCode"
    ] == 0


async def test_a_deny_read_glob_hides_matching_files(sandboxed, layout):
    project = layout["project"]
    (project / "keys").mkdir()
    (project / "keys" / "server.pem").write_text("SECRET\n")
    (project / "keys" / "readme").write_text("public\n")
    profile = {
        "type": "managed",
        "network": "restricted",
        "fileSystem": {
            "type": "restricted",
            "globScanMaxDepth": 4,
            "entries": [
                {"path": {"type": "special", "value": {"kind": "root"}}, "access": "read"},
                {
                    "path": {"type": "special", "value": {"kind": "project_roots"}},
                    "access": "write",
                },
                {"path": {"type": "glob_pattern", "pattern": "**/*.pem"}, "access": "deny"},
            ],
        },
    }
    hidden = await run(sandboxed, ["cat", "keys/server.pem"], project, permissionProfile=profile)
    assert hidden["exitCode"] != 0 and "SECRET" not in hidden["stdout"]
    shown = await run(sandboxed, ["cat", "keys/readme"], project, permissionProfile=profile)
    assert shown["stdout"] == "public\n"
    wrote = await run(sandboxed, touch(project / "out"), project, permissionProfile=profile)
    assert wrote["exitCode"] == 0


async def test_the_network_is_unreachable_without_the_network_permission(sandboxed, layout):
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    probe = [
        sys.executable,
        "-c",
        f"import socket; print(socket.create_connection(('127.0.0.1', {port}), 5).recv(6))",
    ]
    try:
        cut = await run(sandboxed, probe, layout["project"], sandboxPolicy=workspace())
        assert cut["exitCode"] != 0 and "hello" not in cut["stdout"]
        wired = workspace(networkAccess=True)
        open_ = await run(sandboxed, probe, layout["project"], sandboxPolicy=wired)
        assert (open_["exitCode"], open_["stdout"]) == (0, "b'hello\\n'\n")
    finally:
        server.close()
        await server.wait_closed()


async def test_project_roots_follow_the_command_cwd(sandboxed, tmp_path):
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    profile = {
        "type": "managed",
        "fileSystem": {
            "type": "restricted",
            "entries": [
                {"path": {"type": "special", "value": {"kind": "root"}}, "access": "read"},
                {
                    "path": {"type": "special", "value": {"kind": "project_roots"}},
                    "access": "write",
                },
            ],
        },
    }
    for cwd, other in ((first, second), (second, first)):
        own = await run(sandboxed, touch(cwd / "mine"), cwd, permissionProfile=profile)
        assert own["exitCode"] == 0
        theirs = await run(sandboxed, touch(other / "theirs"), cwd, permissionProfile=profile)
        assert theirs["exitCode"] != 0
    assert not (first / "theirs").exists() and not (second / "theirs").exists()


async def test_danger_full_access_writes_anywhere(sandboxed, layout):
    target = layout["outside"] / "anywhere"
    policy = {"type": "dangerFullAccess"}
    result = await run(sandboxed, touch(target), layout["project"], sandboxPolicy=policy)
    assert result["exitCode"] == 0 and target.read_text() == "written\n"
    profile = await run(
        sandboxed, touch(target), layout["project"], permissionProfile=":danger-full-access"
    )
    assert profile["exitCode"] == 0


async def test_a_terminal_command_keeps_its_terminal_inside_the_sandbox(sandboxed):
    params = {"tty": True, "processId": "t", "sandboxPolicy": {"type": "readOnly"}}
    argv = ["sh", "-c", "tty >/dev/null && echo on-a-tty; exit 3"]
    result = await run(sandboxed, argv, "/", **params)
    output = b""
    while not sandboxed._notifications.empty():
        note = sandboxed._notifications.get_nowait()
        if note is not None and note.method == "command/exec/outputDelta":
            output += base64.b64decode(note.params["deltaBase64"])
    assert result["exitCode"] == 3 and b"on-a-tty" in output


async def test_malformed_or_conflicting_policies_are_invalid_params(sandboxed, layout):
    cwd = layout["project"]
    both = {"sandboxPolicy": {"type": "readOnly"}, "permissionProfile": ":read-only"}
    error = await fails(sandboxed, "command/exec", {"command": ["true"], "cwd": str(cwd), **both})
    assert error.code == -32602 and "sandboxPolicy" in error.message
    cases = [
        ({"sandboxPolicy": {"type": "sideways"}}, "sandboxPolicy.type"),
        ({"sandboxPolicy": workspace(writableRoots=["rel"])}, "sandboxPolicy.writableRoots[0]"),
        ({"permissionProfile": ":nope"}, "permissionProfile"),
        (
            {"permissionProfile": {"type": "managed", "fileSystem": {"type": "odd"}}},
            "permissionProfile.fileSystem.type",
        ),
    ]
    for extra, field in cases:
        error = await fails(
            sandboxed, "command/exec", {"command": ["true"], "cwd": str(cwd), **extra}
        )
        assert error.code == -32602 and field in error.message, error.message
