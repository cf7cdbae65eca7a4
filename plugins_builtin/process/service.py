"""The process runner as a service other families use: ``kernel.services["process"]``.

The agent's ``exec_command`` runs commands exactly as ``command/exec`` does
(own process group, sandbox, containment, output caps, timeouts, PTYs,
teardown) through this object, so there is one copy of process code.
Families reach it by name and use only what is documented here; they never
import this package.

::

    runner = kernel.services["process"]
    handle = await runner.start(["sh", "-c", "make"], cwd="/abs/dir", on_output=sink,
                                sandbox_policy={"type": "workspaceWrite"})
    outcome = await handle.wait()      # {"exitCode", "stdout", "stderr", ...}

Every process started here is killed (with its group and its PID namespace)
at server shutdown, whoever started it; callers kill their own earlier when
they are done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kernel import invalid_field

from .checks import SANDBOX_UNAVAILABLE
from .containment import Fallback
from .runner import DRAIN_SECONDS, RunningProcess, SpawnRequest, merged_env
from .sandboxing import launch

__all__ = ["ProcessHandle", "ProcessService"]

OutputCallback = Callable[[str, bytes, bool], Awaitable[None]]
"""``on_output(stream, chunk, cap_reached)``: ``stream`` is ``"stdout"`` or ``"stderr"``."""


class ProcessHandle:
    """One started process (see :meth:`ProcessService.start`)."""

    def __init__(self, process: RunningProcess, service: ProcessService) -> None:
        self._process = process
        self._service = service

    @property
    def pid(self) -> int:
        """The process id (the leader of its own process group)."""
        return self._process.pid

    @property
    def finished(self) -> bool:
        """True once the process ended and its output was delivered."""
        return self._process.finished

    async def wait(self) -> dict[str, Any]:
        """How it ended: ``exitCode`` (128+N after signal N, 124 after the
        timeout), ``stdout``/``stderr`` (bytes kept when output is not
        streamed), ``stdoutCapReached``/``stderrCapReached``, ``timedOut``.
        """
        outcome = await self._process.wait()
        return {
            "exitCode": outcome.exit_code,
            "stdout": outcome.stdout,
            "stderr": outcome.stderr,
            "stdoutCapReached": outcome.stdout_cap_reached,
            "stderrCapReached": outcome.stderr_cap_reached,
            "timedOut": outcome.exit_code == 124,
        }

    async def write(self, data: bytes, close: bool = False) -> None:
        """Write to stdin (``stdin=True`` or ``tty=True``); ``ValueError`` once closed."""
        await self._process.write(data, close)

    def resize(self, rows: int, cols: int) -> None:
        """Resize the terminal of a ``tty`` process."""
        self._process.resize(rows, cols)

    def kill(self) -> None:
        """SIGKILL the process and its whole group (idempotent)."""
        self._process.kill()


class ProcessService:
    """Starts processes for other families; see the module docstring."""

    # The RpcError code of a restricted command that cannot be sandboxed here.
    SANDBOX_UNAVAILABLE = SANDBOX_UNAVAILABLE

    def __init__(
        self, default_cap: int, *, kernel: Any = None, fallback: Fallback | None = None
    ) -> None:
        self.default_cap = default_cap
        self.kernel = kernel
        self.fallback = fallback or Fallback()
        self._running: set[RunningProcess] = set()

    async def start(
        self,
        argv: list[str],
        *,
        cwd: str,
        env: Mapping[str, str | None] | None = None,
        tty: bool = False,
        rows: int = 24,
        cols: int = 80,
        stdin: bool = False,
        on_output: OutputCallback | None = None,
        output_cap: int | None = -1,
        timeout: float | None = None,
        sandbox_policy: Mapping[str, Any] | None = None,
        permission_profile: Mapping[str, Any] | str | None = None,
        additional_permissions: Mapping[str, Any] | None = None,
    ) -> ProcessHandle:
        """Start ``argv`` in ``cwd``; raises ``OSError`` when it cannot start.

        ``env`` is merged over the server's environment (None unsets).
        With ``on_output`` output is streamed to it as it comes (and not
        kept); without, it is kept for :meth:`ProcessHandle.wait`.
        ``output_cap`` is bytes per stream (-1: the process plugin's
        default, None: no cap); ``timeout`` in seconds (None: none).

        ``sandbox_policy`` / ``permission_profile`` take the JSON shapes of
        ``command/exec``'s ``sandboxPolicy`` / ``permissionProfile`` (a
        profile may also be an id such as ``":workspace"``); at most one.
        With neither, the command runs unsandboxed (an approved escalation)
        but still contained: its whole process tree dies with it. Raises
        :class:`kernel.RpcError` with code :attr:`SANDBOX_UNAVAILABLE`
        (-32022) when the policy needs a sandbox that cannot be built here
        (the command is not run), and -32602 when a policy is malformed.
        ``additional_permissions`` (``{"fileSystem": {"read": [...],
        "write": [...]}, "network": {"enabled": true}}``) widens the sandbox
        with what the user granted.
        """
        if sandbox_policy is not None and permission_profile is not None:
            raise invalid_field("sandboxPolicy", "cannot be set together with permissionProfile")
        request = SpawnRequest(
            argv=list(argv),
            cwd=cwd,
            env=merged_env(env),
            tty=tty,
            rows=rows,
            cols=cols,
            stream_stdin=stdin,
            stream_output=on_output is not None,
            cap=self.default_cap if output_cap == -1 else output_cap,
            timeout=timeout,
        )
        request = launch(
            self.kernel,
            self.fallback,
            request,
            sandbox_policy=sandbox_policy,
            permission_profile=permission_profile,
            additional_permissions=additional_permissions,
        )
        process = RunningProcess(request, on_output)
        await process.start()
        self._running.add(process)
        asyncio.get_running_loop().create_task(self._forget(process))
        return ProcessHandle(process, self)

    async def _forget(self, process: RunningProcess) -> None:
        try:
            await process.wait()
        finally:
            self._running.discard(process)

    async def close(self) -> None:
        """Kill everything still running and reap it (server shutdown)."""
        running = list(self._running)
        for process in running:
            process.kill()
        if running:
            await asyncio.wait(
                [asyncio.ensure_future(p.wait()) for p in running], timeout=DRAIN_SECONDS
            )
