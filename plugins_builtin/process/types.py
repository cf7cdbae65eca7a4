"""Wire types of ``command/exec*`` and ``process/*`` (shapes from the reference)."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from kernel import AbsolutePath, field

__all__ = [
    "CommandExecOutputDeltaNotification",
    "CommandExecParams",
    "CommandExecResizeParams",
    "CommandExecResizeResponse",
    "CommandExecResponse",
    "CommandExecTerminalSize",
    "CommandExecTerminateParams",
    "CommandExecTerminateResponse",
    "CommandExecWriteParams",
    "CommandExecWriteResponse",
    "ProcessExitedNotification",
    "ProcessKillParams",
    "ProcessKillResponse",
    "ProcessOutputDeltaNotification",
    "ProcessResizePtyParams",
    "ProcessResizePtyResponse",
    "ProcessSpawnParams",
    "ProcessSpawnResponse",
    "ProcessTerminalSize",
    "ProcessWriteStdinParams",
    "ProcessWriteStdinResponse",
]

Stream = Literal["stdout", "stderr"]


# Types are named after their method as in the reference, so generated
# schema names match; the ``{}`` results are one class per method for that.


@attrs.frozen
class CommandExecTerminalSize:
    """PTY size in character cells."""

    rows: int
    cols: int


@attrs.frozen
class ProcessTerminalSize:
    """PTY size in character cells."""

    rows: int
    cols: int


@attrs.frozen
class CommandExecWriteResponse:
    """``{}``."""


@attrs.frozen
class CommandExecResizeResponse:
    """``{}``."""


@attrs.frozen
class CommandExecTerminateResponse:
    """``{}``."""


@attrs.frozen
class ProcessSpawnResponse:
    """``{}``: the process started."""


@attrs.frozen
class ProcessWriteStdinResponse:
    """``{}``."""


@attrs.frozen
class ProcessResizePtyResponse:
    """``{}``."""


@attrs.frozen
class ProcessKillResponse:
    """``{}``."""


@attrs.frozen
class CommandExecParams:
    """Run ``command`` (argv) to completion; optionally streamed or on a PTY."""

    command: list[str]
    cwd: AbsolutePath | None = None
    env: dict[str, str | None] | None = None
    timeout_ms: int | None = None
    disable_timeout: bool = False
    output_bytes_cap: int | None = None
    disable_output_cap: bool = False
    process_id: str | None = None
    stream_stdin: bool = False
    stream_stdout_stderr: bool = False
    tty: bool = False
    size: CommandExecTerminalSize | None = None
    sandbox_policy: dict[str, Any] | None = None
    # A profile id (the 0.169.0 wire type) or a PermissionProfile object.
    permission_profile: Any = field(default=None, experimental=True)


@attrs.frozen
class CommandExecResponse:
    """Exit code and the output that was not streamed."""

    exit_code: int
    stdout: str
    stderr: str


@attrs.frozen
class CommandExecOutputDeltaNotification:
    """A chunk of a streamed command's output, base64-encoded."""

    process_id: str
    stream: Stream
    delta_base64: str
    cap_reached: bool


@attrs.frozen
class CommandExecWriteParams:
    """Write to (and/or close) a running command's stdin."""

    process_id: str
    delta_base64: str | None = None
    close_stdin: bool = False


@attrs.frozen
class CommandExecResizeParams:
    """Resize a running command's PTY."""

    process_id: str
    size: CommandExecTerminalSize


@attrs.frozen
class CommandExecTerminateParams:
    """End a running command."""

    process_id: str


@attrs.frozen
class ProcessSpawnParams:
    """Start ``command`` and answer at once; ``process/exited`` follows."""

    command: list[str]
    cwd: AbsolutePath
    process_handle: str
    env: dict[str, str | None] | None = None
    timeout_ms: int | None = None
    output_bytes_cap: int | None = None
    stream_stdin: bool = False
    stream_stdout_stderr: bool = False
    tty: bool = False
    size: ProcessTerminalSize | None = None


@attrs.frozen
class ProcessWriteStdinParams:
    """Write to (and/or close) a spawned process's stdin."""

    process_handle: str
    delta_base64: str | None = None
    close_stdin: bool = False


@attrs.frozen
class ProcessResizePtyParams:
    """Resize a spawned process's PTY."""

    process_handle: str
    size: ProcessTerminalSize


@attrs.frozen
class ProcessKillParams:
    """End a spawned process."""

    process_handle: str


@attrs.frozen
class ProcessOutputDeltaNotification:
    """A chunk of a spawned process's output, base64-encoded."""

    process_handle: str
    stream: Stream
    delta_base64: str
    cap_reached: bool


@attrs.frozen
class ProcessExitedNotification:
    """A spawned process ended: exit code and the output that was not streamed."""

    process_handle: str
    exit_code: int
    stdout: str
    stderr: str
    stdout_cap_reached: bool
    stderr_cap_reached: bool
    output_drain_timed_out: bool | None = None
