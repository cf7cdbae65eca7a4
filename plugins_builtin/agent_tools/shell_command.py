"""``thread/shellCommand``: the user runs a command in the thread (the TUI's ``!cmd``).

It runs as a turn of its own (no model request) with a ``userShell``
``commandExecution`` item and output deltas, unsandboxed and without
approval, as in the reference: the user typed it. The model sees it from its
next request on, as a user message in the reference's
``<user_shell_command>`` format.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from kernel import RpcError

from .command_actions import parse_command, shlex_join
from .context import ToolContext
from .exec_format import default_user_shell, forced_env
from .terminals import ExecSession

__all__ = ["DEFAULT_TIMEOUT_MS", "run_shell_command", "shell_history_text"]

DEFAULT_TIMEOUT_MS = 3_600_000


def shell_history_text(command: str, exit_code: int, seconds: float, output: str) -> str:
    """How the model is told about a user shell command."""
    return (
        f"<user_shell_command>\n<command>\n{command}\n</command>\n<result>\n"
        f"Exit code: {exit_code}\nDuration: {seconds:.4f} seconds\nOutput:\n{output}\n"
        "</result>\n</user_shell_command>"
    )


async def run_shell_command(context: ToolContext, turn: Any, command: str, timeout_ms: int) -> None:
    """The body of the shell-command turn: run, stream, complete, tell the model."""
    argv = [default_user_shell(), "-lc", command]
    item: dict[str, Any] = {
        "type": "commandExecution",
        "id": str(uuid.uuid4()),
        "command": shlex_join(argv),
        "cwd": turn.cwd,
        "processId": None,
        "source": "userShell",
        "status": "inProgress",
        "commandActions": parse_command(argv, turn.cwd),
        "aggregatedOutput": None,
        "exitCode": None,
        "durationMs": None,
    }
    session = ExecSession(session_id=0, item=item, turn=turn, tty=False, raw_command=command)
    started = time.monotonic()
    try:
        handle = await context.processes.start(
            argv,
            cwd=turn.cwd,
            env=forced_env(),
            on_output=session.on_output,
            output_cap=None,
            timeout=timeout_ms / 1000,
        )
    except (OSError, RpcError) as exc:
        text = exc.strerror if isinstance(exc, OSError) else exc.message
        item.update(status="failed", exitCode=-1, durationMs=0, aggregatedOutput=str(text))
        await turn.start_item(item)
        await turn.complete_item(item)
        return
    await turn.start_item(item)
    session.watch(handle)
    try:
        await session.done.wait()
    except BaseException:
        await session.kill()
        raise
    code = session.exit_code if session.exit_code is not None else -1
    output = session.transcript.text() or ""
    if code == 124 and timeout_ms >= 0:
        output += f"\ncommand timed out after {timeout_ms} ms\n"
    text = shell_history_text(command, code, time.monotonic() - started, output)
    await turn.add_to_history(
        [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}]
    )
