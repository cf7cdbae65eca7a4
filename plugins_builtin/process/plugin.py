"""The ``process`` plugin: ``command/exec*`` and (experimental) ``process/*``.

Processes belong to the connection that started them: ids and handles are
looked up only there, and closing the connection (any way) kills every
process it started, with their process groups. ``command/exec`` runs under
its ``sandboxPolicy`` / ``permissionProfile`` (the configured default when
neither is given); ``process/spawn`` runs with full access. Either way the
command is contained: see :mod:`.sandboxing`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from typing import Any

import attrs

from kernel import (
    Connection,
    Kernel,
    RequestContext,
    RpcError,
    hookimpl,
    invalid_field,
    method,
    notification,
)
from kernel.config import Config
from kernel.settings import SettingError

from .checks import (
    TOO_MANY_PROCESSES,
    check_argv,
    check_env,
    check_sandbox_policy,
    check_size,
    spawn_failed,
)
from .containment import Fallback
from .runner import RunningProcess, SpawnRequest, merged_env
from .sandboxing import launch
from .service import ProcessService
from .types import (
    CommandExecOutputDeltaNotification,
    CommandExecParams,
    CommandExecResizeParams,
    CommandExecResizeResponse,
    CommandExecResponse,
    CommandExecTerminateParams,
    CommandExecTerminateResponse,
    CommandExecWriteParams,
    CommandExecWriteResponse,
    ProcessExitedNotification,
    ProcessKillParams,
    ProcessKillResponse,
    ProcessOutputDeltaNotification,
    ProcessResizePtyParams,
    ProcessResizePtyResponse,
    ProcessSpawnParams,
    ProcessSpawnResponse,
    ProcessWriteStdinParams,
    ProcessWriteStdinResponse,
)

__all__ = ["ProcessPlugin", "ProcessSettings"]

log = logging.getLogger("plugins.process")
# How long a closing connection waits for its killed processes to be reaped.
_CLOSE_WAIT_SECONDS = 1.0


@attrs.frozen
class ProcessSettings:
    """``[kernel_plugins.process]`` in config.toml."""

    default_output_bytes_cap: int = 1 << 20
    default_exec_timeout_ms: int = 10_000
    max_processes_per_connection: int = 64

    def check(self, config: Config) -> None:
        """Ranges."""
        if self.default_output_bytes_cap < 0:
            raise SettingError("default_output_bytes_cap", "must not be negative")
        if self.default_exec_timeout_ms < 0:
            raise SettingError("default_exec_timeout_ms", "must not be negative")
        if self.max_processes_per_connection < 1:
            raise SettingError("max_processes_per_connection", "must be at least 1")


class _Jobs:
    """The processes of one connection, by kind and client-chosen key."""

    def __init__(self) -> None:
        self.exec: dict[str, RunningProcess] = {}
        self.spawned: dict[str, RunningProcess] = {}
        self.running: set[RunningProcess] = set()
        self.starting = 0
        self.watchers: set[asyncio.Task[None]] = set()


def _jobs(conn: Connection) -> _Jobs:
    jobs = conn.state.get("process")
    if jobs is None:
        jobs = conn.state["process"] = _Jobs()
    return jobs


def _decode(field: str, data: str | None) -> bytes:
    if data is None:
        return b""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid_field(field, f"not valid base64 ({exc})") from None


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


class ProcessPlugin:
    """Runs commands for clients; see docs/process.md."""

    exec_output = notification("command/exec/outputDelta", CommandExecOutputDeltaNotification)
    process_output = notification("process/outputDelta", ProcessOutputDeltaNotification)
    process_exited = notification("process/exited", ProcessExitedNotification)

    def __init__(self) -> None:
        self.settings = ProcessSettings()
        self.service: ProcessService | None = None
        self.kernel: Kernel | None = None
        self.fallback = Fallback()

    @hookimpl
    def kernel_settings(self) -> type[ProcessSettings]:
        return ProcessSettings

    @hookimpl
    def kernel_configure(self, kernel: Kernel, settings: ProcessSettings) -> None:
        self.settings = settings
        self.kernel = kernel
        # Other families (the agent's exec_command) start processes through this.
        self.service = ProcessService(
            settings.default_output_bytes_cap, kernel=kernel, fallback=self.fallback
        )
        kernel.services["process"] = self.service

    @hookimpl
    async def kernel_startup(self, kernel: Kernel) -> None:
        await asyncio.to_thread(self.fallback.detect)
        if kernel.services.get("sandbox") is None:
            log.warning(
                "the sandbox plugin is not loaded: commands run without a sandbox or "
                "PID-namespace containment, and requests for a sandbox are refused"
            )

    @hookimpl
    async def kernel_shutdown(self, kernel: Kernel) -> None:
        if self.service is not None:
            await self.service.close()

    @hookimpl
    async def kernel_connection_closed(self, connection: Connection) -> None:
        jobs = connection.state.get("process")
        if not isinstance(jobs, _Jobs) or not jobs.running:
            return
        running = list(jobs.running)
        for process in running:
            process.kill()
        log.info("connection %s closed: killed %d process group(s)", connection.id, len(running))
        # Reap them, so nothing is left behind as a zombie or an orphan. Their
        # groups are dead, so this is quick; one whose output a runaway
        # descendant still holds finishes reaping in the background.
        waits = [asyncio.ensure_future(p.wait()) for p in running]
        _, slow = await asyncio.wait(waits, timeout=_CLOSE_WAIT_SECONDS)
        if slow:
            log.info(
                "connection %s closed: %d process(es) still draining output in the background",
                connection.id,
                len(slow),
            )
        for watcher in list(jobs.watchers):
            watcher.cancel()

    # -- building a spawn request ----------------------------------------------------

    def _request(
        self,
        params: CommandExecParams | ProcessSpawnParams,
        cap: int | None,
        timeout_ms: int | None,
        stream_output: bool,
    ) -> SpawnRequest:
        check_argv(params.command)
        check_env(params.env)
        if params.size is not None:
            if not params.tty:
                raise invalid_field("size", "requires tty: true")
            check_size("size", params.size.rows, params.size.cols)
        if cap is not None and cap < 0:
            raise invalid_field("outputBytesCap", "must not be negative")
        if timeout_ms is not None and timeout_ms < 0:
            raise invalid_field("timeoutMs", "must not be negative")
        size = params.size
        return SpawnRequest(
            argv=list(params.command),
            cwd=params.cwd,
            env=merged_env(params.env),
            tty=params.tty,
            rows=size.rows if size else 24,
            cols=size.cols if size else 80,
            stream_stdin=params.stream_stdin,
            stream_output=stream_output,
            cap=cap,
            timeout=None if timeout_ms is None else timeout_ms / 1000,
        )

    async def _start(self, jobs: _Jobs, process: RunningProcess, argv0: str) -> None:
        limit = self.settings.max_processes_per_connection
        if len(jobs.running) + jobs.starting >= limit:
            raise RpcError(
                TOO_MANY_PROCESSES,
                f"this connection already runs {limit} processes "
                "(kernel_plugins.process.max_processes_per_connection)",
                {"limit": limit},
            )
        jobs.starting += 1
        try:
            await process.start()
        except OSError as exc:
            raise spawn_failed(argv0, exc) from None
        finally:
            jobs.starting -= 1
        jobs.running.add(process)

    # -- command/exec ------------------------------------------------------------------

    @method("command/exec")
    async def exec(self, params: CommandExecParams, ctx: RequestContext) -> CommandExecResponse:
        if params.timeout_ms is not None and params.disable_timeout:
            raise invalid_field("timeoutMs", "cannot be set together with disableTimeout")
        if params.output_bytes_cap is not None and params.disable_output_cap:
            raise invalid_field("outputBytesCap", "cannot be set together with disableOutputCap")
        if params.sandbox_policy is not None and params.permission_profile is not None:
            raise invalid_field("sandboxPolicy", "cannot be set together with permissionProfile")
        if params.sandbox_policy is not None:
            check_sandbox_policy(params.sandbox_policy)
        streaming = params.tty or params.stream_stdin or params.stream_stdout_stderr
        if streaming and params.process_id is None:
            raise invalid_field("processId", "required with tty, streamStdin or streamStdoutStderr")
        settings = self.settings
        cap = None if params.disable_output_cap else params.output_bytes_cap
        if cap is None and not params.disable_output_cap:
            cap = settings.default_output_bytes_cap
        timeout_ms = None if params.disable_timeout else params.timeout_ms
        if timeout_ms is None and not params.disable_timeout:
            timeout_ms = settings.default_exec_timeout_ms
        stream_output = params.tty or params.stream_stdout_stderr
        request = launch(
            self.kernel,
            self.fallback,
            self._request(params, cap, timeout_ms, stream_output),
            sandbox_policy=params.sandbox_policy,
            permission_profile=params.permission_profile,
            default_to_config=True,
        )
        jobs = _jobs(ctx.connection)
        process_id = params.process_id
        if process_id is not None and process_id in jobs.exec:
            raise invalid_field("processId", f"already in use by a running command: {process_id!r}")
        conn = ctx.connection

        async def sink(stream: str, chunk: bytes, cap_reached: bool) -> None:
            note = CommandExecOutputDeltaNotification(
                process_id or "",
                stream,  # type: ignore[arg-type]
                base64.b64encode(chunk).decode(),
                cap_reached,
            )
            await conn.notify(self.exec_output, note)

        process = RunningProcess(request, sink)
        await self._start(jobs, process, request.argv[0])
        if process_id is not None:
            jobs.exec[process_id] = process
        try:
            outcome = await process.wait()
        finally:
            if not process.finished:  # the request was cancelled: take the child down
                process.kill()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(process.wait(), _CLOSE_WAIT_SECONDS)
            jobs.running.discard(process)
            if process_id is not None and jobs.exec.get(process_id) is process:
                del jobs.exec[process_id]
        # Every delta was awaited by the sink before wait() returned, so the
        # answer follows the last one on the wire.
        return CommandExecResponse(outcome.exit_code, _text(outcome.stdout), _text(outcome.stderr))

    def _exec_job(self, ctx: RequestContext, process_id: str) -> RunningProcess:
        process = _jobs(ctx.connection).exec.get(process_id)
        if process is None:
            raise invalid_field("processId", f"no running command/exec with id {process_id!r}")
        return process

    @method("command/exec/write")
    async def exec_write(
        self, params: CommandExecWriteParams, ctx: RequestContext
    ) -> CommandExecWriteResponse:
        process = self._exec_job(ctx, params.process_id)
        await self._write(process, "processId", params.delta_base64, params.close_stdin)
        return CommandExecWriteResponse()

    @method("command/exec/resize")
    def exec_resize(
        self, params: CommandExecResizeParams, ctx: RequestContext
    ) -> CommandExecResizeResponse:
        self._resize(self._exec_job(ctx, params.process_id), "processId", params.size)
        return CommandExecResizeResponse()

    @method("command/exec/terminate")
    def exec_terminate(
        self, params: CommandExecTerminateParams, ctx: RequestContext
    ) -> CommandExecTerminateResponse:
        self._exec_job(ctx, params.process_id).kill()
        return CommandExecTerminateResponse()

    # -- process/* ---------------------------------------------------------------------

    @method("process/spawn", experimental=True)
    async def spawn(self, params: ProcessSpawnParams, ctx: RequestContext) -> ProcessSpawnResponse:
        jobs = _jobs(ctx.connection)
        handle = params.process_handle
        if handle in jobs.spawned:
            raise invalid_field("processHandle", f"already in use by a running process: {handle!r}")
        cap = params.output_bytes_cap
        if cap is None:
            cap = self.settings.default_output_bytes_cap
        stream_output = params.tty or params.stream_stdout_stderr
        # Unsandboxed, as in the reference, but contained like every command.
        request = launch(
            self.kernel, self.fallback, self._request(params, cap, params.timeout_ms, stream_output)
        )
        conn = ctx.connection

        async def sink(stream: str, chunk: bytes, cap_reached: bool) -> None:
            note = ProcessOutputDeltaNotification(
                handle,
                stream,  # type: ignore[arg-type]
                base64.b64encode(chunk).decode(),
                cap_reached,
            )
            await conn.notify(self.process_output, note)

        process = RunningProcess(request, sink)
        await self._start(jobs, process, request.argv[0])
        jobs.spawned[handle] = process
        watcher = asyncio.get_running_loop().create_task(self._report_exit(conn, handle, process))
        jobs.watchers.add(watcher)
        watcher.add_done_callback(jobs.watchers.discard)
        return ProcessSpawnResponse()

    async def _report_exit(self, conn: Connection, handle: str, process: RunningProcess) -> None:
        jobs = _jobs(conn)
        try:
            outcome = await process.wait()
        finally:
            jobs.running.discard(process)
            if jobs.spawned.get(handle) is process:
                del jobs.spawned[handle]
        await conn.notify(
            self.process_exited,
            ProcessExitedNotification(
                process_handle=handle,
                exit_code=outcome.exit_code,
                stdout=_text(outcome.stdout),
                stderr=_text(outcome.stderr),
                stdout_cap_reached=outcome.stdout_cap_reached,
                stderr_cap_reached=outcome.stderr_cap_reached,
                output_drain_timed_out=outcome.drain_timed_out,
            ),
        )

    def _spawned(self, ctx: RequestContext, handle: str) -> RunningProcess:
        process = _jobs(ctx.connection).spawned.get(handle)
        if process is None:
            raise invalid_field("processHandle", f"no running process with handle {handle!r}")
        return process

    @method("process/writeStdin", experimental=True)
    async def spawn_write(
        self, params: ProcessWriteStdinParams, ctx: RequestContext
    ) -> ProcessWriteStdinResponse:
        process = self._spawned(ctx, params.process_handle)
        await self._write(process, "processHandle", params.delta_base64, params.close_stdin)
        return ProcessWriteStdinResponse()

    @method("process/resizePty", experimental=True)
    def spawn_resize(
        self, params: ProcessResizePtyParams, ctx: RequestContext
    ) -> ProcessResizePtyResponse:
        self._resize(self._spawned(ctx, params.process_handle), "processHandle", params.size)
        return ProcessResizePtyResponse()

    @method("process/kill", experimental=True)
    def spawn_kill(self, params: ProcessKillParams, ctx: RequestContext) -> ProcessKillResponse:
        self._spawned(ctx, params.process_handle).kill()
        return ProcessKillResponse()

    # -- shared -----------------------------------------------------------------------

    @staticmethod
    async def _write(process: RunningProcess, key: str, data: str | None, close: bool) -> None:
        if data is None and not close:
            raise invalid_field("deltaBase64", "deltaBase64 or closeStdin is required")
        payload = _decode("deltaBase64", data)
        try:
            await process.write(payload, close)
        except ValueError as exc:
            raise invalid_field(key, str(exc)) from None

    @staticmethod
    def _resize(process: RunningProcess, key: str, size: Any) -> None:
        check_size("size", size.rows, size.cols)
        try:
            process.resize(size.rows, size.cols)
        except ValueError as exc:
            raise invalid_field(key, str(exc)) from None
