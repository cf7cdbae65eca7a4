"""The process plugin over real stdio: command/exec, process/*, PTYs, limits."""

from __future__ import annotations

import asyncio
import base64

import pytest

from tests.support.calls import b64, fails


def drain(client) -> list[tuple[str, dict]]:
    """Notifications already received (the client queues them in arrival order)."""
    out = []
    queue = client._notifications
    while not queue.empty():
        note = queue.get_nowait()
        if note is None:
            queue.put_nowait(None)
            break
        out.append((note.method, note.params))
    return out


async def until_exited(client) -> list[tuple[str, dict]]:
    """Every notification up to and including the next process/exited."""
    notes = []
    while True:
        note = await client.next_notification()
        notes.append((note.method, note.params))
        if note.method == "process/exited":
            return notes


def deltas(notes, method: str, key: str, ident: str, stream: str = "stdout") -> bytes:
    return b"".join(
        base64.b64decode(p["deltaBase64"])
        for m, p in notes
        if m == method and p[key] == ident and p["stream"] == stream
    )


@pytest.fixture
async def proc(serve):
    async with serve(plugins=["process"]) as served:
        await served.client.initialize(experimental=True)
        yield served.client


async def test_buffered_exec_basics(proc, tmp_path):
    assert await proc.request("command/exec", {"command": ["echo", "hi"]}) == {
        "exitCode": 0,
        "stdout": "hi\n",
        "stderr": "",
    }
    result = await proc.request("command/exec", {"command": ["pwd"], "cwd": str(tmp_path)})
    assert result["stdout"] == f"{tmp_path}\n"
    env = {"command": ["sh", "-c", "echo ${HOME:-unset} $FOO"], "env": {"HOME": None, "FOO": "b"}}
    assert (await proc.request("command/exec", env))["stdout"] == "unset b\n"
    both = {"command": ["sh", "-c", "echo out; echo err >&2; exit 3"]}
    assert await proc.request("command/exec", both) == {
        "exitCode": 3,
        "stdout": "out\n",
        "stderr": "err\n",
    }


async def test_exit_codes_follow_the_reference(proc):
    term = await proc.request("command/exec", {"command": ["sh", "-c", "kill -TERM $$"]})
    assert term["exitCode"] == 143  # 128 + SIGTERM
    kill = await proc.request("command/exec", {"command": ["sh", "-c", "kill -KILL $$"]})
    assert kill["exitCode"] == 137
    timed = await proc.request("command/exec", {"command": ["sleep", "30"], "timeoutMs": 200})
    assert timed["exitCode"] == 124  # like timeout(1)


@pytest.mark.parametrize(
    ("params", "field", "text"),
    [
        ({"command": []}, "command", "must not be empty"),
        ({"command": [""]}, "command[0]", "must not be empty"),
        ({"command": ["true"], "cwd": "rel"}, "cwd", "expected an absolute path"),
        ({"command": ["true"], "timeoutMs": 5, "disableTimeout": True}, "timeoutMs", "together"),
        (
            {"command": ["true"], "outputBytesCap": 5, "disableOutputCap": True},
            "outputBytesCap",
            "together",
        ),
        ({"command": ["true"], "size": {"rows": 5, "cols": 5}}, "size", "requires tty: true"),
        ({"command": ["true"], "tty": True}, "processId", "required with tty"),
        ({"command": ["true"], "streamStdin": True}, "processId", "required with tty"),
        ({"command": ["true"], "streamStdoutStderr": True}, "processId", "required with tty"),
        ({"command": ["true"], "timeoutMs": -1}, "timeoutMs", "must not be negative"),
        ({"command": ["true"], "env": {"A=B": "x"}}, "env.A=B", "not a valid variable name"),
        (
            {
                "command": ["true"],
                "processId": "p",
                "tty": True,
                "size": {"rows": 70000, "cols": 5},
            },
            "size.rows",
            "between 0 and 65535",
        ),
        (
            {"command": ["true"], "sandboxPolicy": {"type": "readOnly"}, "permissionProfile": "x"},
            "sandboxPolicy",
            "together with permissionProfile",
        ),
        ({"command": ["true"], "sandboxPolicy": {"type": "nope"}}, "sandboxPolicy.type", "one of"),
        (
            {
                "command": ["true"],
                "sandboxPolicy": {"type": "workspaceWrite", "writableRoots": ["r"]},
            },
            "sandboxPolicy.writableRoots[0]",
            "absolute path",
        ),
        (
            {"command": ["true"], "sandboxPolicy": {"type": "readOnly", "networkAccess": "yes"}},
            "sandboxPolicy.networkAccess",
            "boolean",
        ),
    ],
)
async def test_flag_rules_are_invalid_params_naming_the_field(proc, params, field, text):
    error = await fails(proc, "command/exec", params)
    assert error.code == -32602, error
    assert error.message.startswith(f"Invalid params: {field}: ") and text in error.message


async def test_without_the_sandbox_plugin_restricted_policies_are_refused(proc, tmp_path):
    # Full-access shapes run; anything restricted is refused, never run unsandboxed.
    for policy in ({"type": "dangerFullAccess"}, {"type": "externalSandbox"}):
        params = {"command": ["true"], "sandboxPolicy": policy}
        assert (await proc.request("command/exec", params))["exitCode"] == 0
    marker = tmp_path / "ran"
    for field, value in (
        ("sandboxPolicy", {"type": "readOnly", "networkAccess": True}),
        ("sandboxPolicy", {"type": "workspaceWrite", "writableRoots": ["/tmp"]}),
        ("permissionProfile", ":workspace"),
    ):
        params = {"command": ["touch", str(marker)], field: value}
        error = await fails(proc, "command/exec", params)
        assert error.code == -32022 and "not loaded" in error.message
    assert not marker.exists()


async def test_a_missing_program_is_a_spawn_error(proc, tmp_path):
    error = await fails(proc, "command/exec", {"command": ["no-such-program-xyz"]})
    assert error.code == -32020 and "cannot start 'no-such-program-xyz'" in error.message
    error = await fails(proc, "command/exec", {"command": ["true"], "cwd": f"{tmp_path}/nope"})
    assert error.code == -32020 and error.data["errno"] == "ENOENT"


async def test_output_caps_buffered_and_streamed(proc):
    script = ["sh", "-c", "printf 0123456789; printf abcdefghij >&2"]
    capped = await proc.request("command/exec", {"command": script, "outputBytesCap": 4})
    assert (capped["stdout"], capped["stderr"]) == ("0123", "abcd")
    big = ["sh", "-c", "head -c 1500000 /dev/zero | tr '\\0' y"]
    default = await proc.request("command/exec", {"command": big})
    assert len(default["stdout"]) == 1 << 20  # 1 MiB per stream by default
    unlimited = await proc.request("command/exec", {"command": big, "disableOutputCap": True})
    assert len(unlimited["stdout"]) == 1_500_000
    streamed = {
        "command": script,
        "outputBytesCap": 4,
        "processId": "c",
        "streamStdoutStderr": True,
    }
    assert await proc.request("command/exec", streamed) == {
        "exitCode": 0,
        "stdout": "",
        "stderr": "",
    }
    notes = drain(proc)
    assert deltas(notes, "command/exec/outputDelta", "processId", "c") == b"0123"
    assert deltas(notes, "command/exec/outputDelta", "processId", "c", "stderr") == b"abcd"
    last = {p["stream"]: p["capReached"] for m, p in notes if m == "command/exec/outputDelta"}
    assert last == {"stdout": True, "stderr": True}


async def test_streamed_output_all_arrives_before_the_answer(proc):
    size = 3_000_000
    params = {
        "command": ["sh", "-c", f"head -c {size} /dev/zero | tr '\\0' x; echo done >&2"],
        "processId": "s",
        "streamStdoutStderr": True,
        "disableOutputCap": True,
    }
    result = await proc.request("command/exec", params)
    notes = drain(proc)  # everything queued before the answer was read
    assert result == {"exitCode": 0, "stdout": "", "stderr": ""}
    assert deltas(notes, "command/exec/outputDelta", "processId", "s") == b"x" * size
    assert deltas(notes, "command/exec/outputDelta", "processId", "s", "stderr") == b"done\n"
    await asyncio.sleep(0.3)
    assert drain(proc) == []


async def test_stdin_streaming_write_and_close(proc):
    run = asyncio.ensure_future(
        proc.request(
            "command/exec",
            {"command": ["cat"], "processId": "cat", "streamStdin": True},
        )
    )
    await asyncio.sleep(0.3)
    write = {"processId": "cat", "deltaBase64": b64(b"hello\n")}
    assert await proc.request("command/exec/write", write) == {}
    error = await fails(proc, "command/exec/write", {"processId": "cat"})
    assert error.code == -32602 and "deltaBase64 or closeStdin is required" in error.message
    error = await fails(proc, "command/exec/write", {"processId": "cat", "deltaBase64": "!"})
    assert error.code == -32602 and "deltaBase64: not valid base64" in error.message
    await proc.request("command/exec/write", {"processId": "cat", "closeStdin": True})
    assert (await run)["stdout"] == "hello\n"
    error = await fails(proc, "command/exec/write", {"processId": "cat", "closeStdin": True})
    assert error.code == -32602 and "no running command/exec with id 'cat'" in error.message


async def test_ids_terminate_resize_and_duplicates(proc):
    run = asyncio.ensure_future(
        proc.request("command/exec", {"command": ["sleep", "30"], "processId": "sl"})
    )
    await asyncio.sleep(0.3)
    duplicate = await fails(proc, "command/exec", {"command": ["true"], "processId": "sl"})
    assert duplicate.code == -32602 and "already in use" in duplicate.message
    resize = {"processId": "sl", "size": {"rows": 5, "cols": 5}}
    error = await fails(proc, "command/exec/resize", resize)
    assert error.code == -32602 and "not attached to a PTY" in error.message
    error = await fails(proc, "command/exec/write", {"processId": "sl", "deltaBase64": "eA=="})
    assert error.code == -32602 and "stdin is not streamed" in error.message
    assert await proc.request("command/exec/terminate", {"processId": "sl"}) == {}
    assert (await run)["exitCode"] == 137
    error = await fails(proc, "command/exec/terminate", {"processId": "sl"})
    assert error.code == -32602


async def test_pty_interactive_shell_and_resize(proc):
    run = asyncio.ensure_future(
        proc.request(
            "command/exec",
            {
                "command": ["sh"],
                "processId": "tty",
                "tty": True,
                "streamStdin": True,
                "size": {"rows": 33, "cols": 77},
                "env": {"PS1": "$ "},
            },
        )
    )

    async def screen_until(text: bytes) -> bytes:
        seen = b""
        async with asyncio.timeout(10):
            while text not in seen:
                note = await proc.next_notification("command/exec/outputDelta")
                seen += base64.b64decode(note.params["deltaBase64"])
        return seen

    await asyncio.sleep(0.3)
    send = {"processId": "tty", "deltaBase64": b64(b"stty size; echo hi-$((40+2))\n")}
    await proc.request("command/exec/write", send)
    out = await screen_until(b"hi-42")
    assert b"33 77" in out
    resize = {"processId": "tty", "size": {"rows": 50, "cols": 132}}
    assert await proc.request("command/exec/resize", resize) == {}
    again = {"processId": "tty", "deltaBase64": b64(b"stty size\n")}
    await proc.request("command/exec/write", again)
    assert b"50 132" in await screen_until(b"50 132")
    await proc.request("command/exec/write", {"processId": "tty", "deltaBase64": b64(b"exit 5\n")})
    assert await run == {"exitCode": 5, "stdout": "", "stderr": ""}


async def test_pty_accepts_writes_without_stream_stdin(proc):
    # A terminal is interactive: writes need no streamStdin (as the reference).
    run = asyncio.ensure_future(
        proc.request(
            "command/exec",
            {
                "command": ["sh", "-c", "stty size; read x; stty size"],
                "processId": "pty",
                "tty": True,
                "size": {"rows": 21, "cols": 63},
            },
        )
    )
    seen = b""
    async with asyncio.timeout(10):
        while b"21 63" not in seen:
            note = await proc.next_notification("command/exec/outputDelta")
            seen += base64.b64decode(note.params["deltaBase64"])
        send = {"processId": "pty", "deltaBase64": b64(b"go\n")}
        assert await proc.request("command/exec/write", send) == {}
        while seen.count(b"21 63") < 2:
            note = await proc.next_notification("command/exec/outputDelta")
            seen += base64.b64decode(note.params["deltaBase64"])
        assert (await run)["exitCode"] == 0


async def test_process_spawn_family(proc, tmp_path):
    script = ["sh", "-c", "echo P; echo E >&2; exit 7"]
    spawn = {"command": script, "cwd": str(tmp_path), "processHandle": "p1"}
    assert await proc.request("process/spawn", spawn) == {}
    exited = await proc.next_notification("process/exited")
    assert exited.params == {
        "processHandle": "p1",
        "exitCode": 7,
        "stdout": "P\n",
        "stderr": "E\n",
        "stdoutCapReached": False,
        "stderrCapReached": False,
        "outputDrainTimedOut": False,
    }
    long = {"command": ["sleep", "30"], "cwd": "/", "processHandle": "p2"}
    await proc.request("process/spawn", long)
    error = await fails(proc, "process/spawn", long)
    assert error.code == -32602 and "processHandle: already in use" in error.message
    assert await proc.request("process/kill", {"processHandle": "p2"}) == {}
    assert (await proc.next_notification("process/exited")).params["exitCode"] == 137
    assert (await fails(proc, "process/kill", {"processHandle": "p2"})).code == -32602
    streamed = {
        "command": ["sh", "-c", "printf 0123456789"],
        "cwd": "/",
        "processHandle": "p3",
        "streamStdoutStderr": True,
        "outputBytesCap": 4,
    }
    await proc.request("process/spawn", streamed)
    notes = await until_exited(proc)
    assert deltas(notes, "process/outputDelta", "processHandle", "p3") == b"0123"
    exited = notes[-1][1]
    assert exited["stdout"] == "" and exited["stdoutCapReached"] is True
    timed = {"command": ["sleep", "30"], "cwd": "/", "processHandle": "p4", "timeoutMs": 200}
    await proc.request("process/spawn", timed)
    assert (await proc.next_notification("process/exited")).params["exitCode"] == 124
    cat = {"command": ["cat"], "cwd": "/", "processHandle": "p5", "streamStdin": True}
    await proc.request("process/spawn", cat)
    write = {"processHandle": "p5", "deltaBase64": b64(b"in\n"), "closeStdin": True}
    assert await proc.request("process/writeStdin", write) == {}
    assert (await proc.next_notification("process/exited")).params["stdout"] == "in\n"
    pty = {
        "command": ["sh", "-c", "read x; stty size"],
        "cwd": "/",
        "processHandle": "p6",
        "tty": True,
        "streamStdin": True,
        "size": {"rows": 10, "cols": 20},
    }
    await proc.request("process/spawn", pty)
    resize = {"processHandle": "p6", "size": {"rows": 11, "cols": 21}}
    assert await proc.request("process/resizePty", resize) == {}
    await proc.request("process/writeStdin", {"processHandle": "p6", "deltaBase64": b64(b"\n")})
    notes = await until_exited(proc)
    assert notes[-1][1]["exitCode"] == 0
    assert b"11 21" in deltas(notes, "process/outputDelta", "processHandle", "p6")
    bad = {"command": ["true"], "cwd": "rel", "processHandle": "p7"}
    assert (await fails(proc, "process/spawn", bad)).code == -32602


async def test_process_methods_are_experimental(serve):
    async with serve(plugins=["process"]) as served:
        client = served.client
        await client.initialize(experimental=False)
        spawn = {"command": ["true"], "cwd": "/", "processHandle": "p"}
        error = await fails(client, "process/spawn", spawn)
        assert (error.code, error.message) == (
            -32600,
            "process/spawn requires experimentalApi capability",
        )
        error = await fails(client, "command/exec", {"command": ["true"], "permissionProfile": "x"})
        assert error.message == "command/exec.permissionProfile requires experimentalApi capability"
        assert (await client.request("command/exec", {"command": ["true"]}))["exitCode"] == 0


async def test_processes_per_connection_are_limited(serve):
    args = ["-c", "kernel_plugins.process.max_processes_per_connection=2"]
    async with serve(plugins=["process"], args=args) as served:
        client = served.client
        await client.initialize(experimental=True)
        for handle in ("a", "b"):
            spawn = {"command": ["sleep", "30"], "cwd": "/", "processHandle": handle}
            await client.request("process/spawn", spawn)
        error = await fails(client, "command/exec", {"command": ["true"]})
        assert error.code == -32021 and error.data == {"limit": 2}
        assert "max_processes_per_connection" in error.message
        await client.request("process/kill", {"processHandle": "a"})
        await client.next_notification("process/exited")
        assert (await client.request("command/exec", {"command": ["true"]}))["exitCode"] == 0
