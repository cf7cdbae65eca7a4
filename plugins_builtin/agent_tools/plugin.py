"""The ``agent_tools`` plugin: the tools a turn offers its model, and the methods around them.

Tools go to the threads family through its ``threads_tools`` hook;
background terminals are stopped through ``threads_thread_released`` and at
shutdown. Loaded threads are reached only through
``kernel.services["threads"]``, processes through
``kernel.services["process"]``. See docs/agent_tools.md.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import attrs

from kernel import Kernel, RequestContext, RpcError, hookimpl, method
from kernel.rpc.errors import INVALID_REQUEST

from .context import AgentConfig, ToolContext
from .exec_tool import ExecTools
from .interaction import InteractionTools
from .patch_runner import PatchTool
from .shell_command import DEFAULT_TIMEOUT_MS, run_shell_command

__all__ = ["AgentToolsPlugin"]

log = logging.getLogger("plugins.agent_tools")

_NOTIFICATIONS = (
    "item/commandExecution/outputDelta",
    "item/commandExecution/terminalInteraction",
    "turn/diff/updated",
    "turn/plan/updated",
)
_SERVER_REQUESTS = (
    "item/commandExecution/requestApproval",
    "item/fileChange/requestApproval",
    "item/permissions/requestApproval",
    "item/tool/requestUserInput",
)


@attrs.frozen
class ThreadShellCommandParams:
    """Run a user command in the thread."""

    thread_id: str
    command: str
    timeout_ms: int | None = None


@attrs.frozen
class ThreadBackgroundTerminalsListParams:
    """The thread's running background terminals."""

    thread_id: str
    cursor: str | None = None
    limit: int | None = None


@attrs.frozen
class ThreadBackgroundTerminalsCleanParams:
    """Kill every background terminal of the thread."""

    thread_id: str


@attrs.frozen
class ThreadBackgroundTerminalsTerminateParams:
    """Kill one background terminal by its process id (the model's session id)."""

    thread_id: str
    process_id: str


class AgentToolsPlugin:
    """The agent's shell, patch and interaction tools; see the module docstring."""

    def __init__(self) -> None:
        self.context: ToolContext | None = None
        self.exec_tools: ExecTools | None = None
        self.patch_tool: PatchTool | None = None
        self.interaction: InteractionTools | None = None

    # -- configuration -------------------------------------------------------------------

    @hookimpl
    def kernel_config_keys(self) -> dict[str, Any]:
        return {
            "features": dict[str, Any] | None,
            "allow_login_shell": bool | None,
            "background_terminal_max_timeout": int | None,
        }

    @hookimpl
    def config_features(self) -> list[dict[str, Any]]:
        return [
            {
                "name": "request_permissions_tool",
                "stage": "beta",
                "defaultEnabled": False,
                "displayName": "Permission requests from the agent",
            }
        ]

    @hookimpl
    def kernel_configure(self, kernel: Kernel) -> None:
        config = kernel.config
        features = config.structure_value("features", dict[str, Any] | None) or {}
        login = config.structure_value("allow_login_shell", bool | None)
        longest = config.structure_value("background_terminal_max_timeout", int | None)
        if longest is not None and longest < 5000:
            raise config.error("background_terminal_max_timeout", "must be at least 5000 (ms)")
        agent_config = AgentConfig(
            features=features,
            allow_login_shell=True if login is None else login,
            background_terminal_max_timeout=longest or 300_000,
        )
        self.context = ToolContext(kernel, agent_config)
        self.patch_tool = PatchTool(self.context)
        self.context.patch_tool = self.patch_tool
        self.exec_tools = ExecTools(self.context)
        self.interaction = InteractionTools(self.context)

    @hookimpl
    def kernel_register(self, registrar: Any) -> None:
        for name in _NOTIFICATIONS:
            registrar.notification(name)
        for name in _SERVER_REQUESTS:
            registrar.server_request(name)

    @hookimpl
    async def kernel_shutdown(self, kernel: Kernel) -> None:
        if self.context is not None:
            await asyncio.gather(
                *(t.terminals.kill_all() for t in self.context.threads.values()),
                return_exceptions=True,
            )

    # -- the threads family's hooks ------------------------------------------------------

    @hookimpl
    def threads_tools(self, turn: Any) -> list[dict[str, Any]] | None:
        """exec_command, write_stdin, request_user_input, [request_permissions], apply_patch,
        update_plan, view_image (the reference's order)."""
        if self.exec_tools is None or self.patch_tool is None or self.interaction is None:
            return None
        interaction = self.interaction.tools(turn)
        if self.context is not None and not self.context.has_environment(turn):
            # environments: [] selects none: nothing to run commands in or edit.
            return interaction[:-1]
        return [
            *self.exec_tools.tools(),
            *interaction[:-2],
            *self.patch_tool.tools(),
            *interaction[-2:],
        ]

    @hookimpl
    async def threads_thread_released(self, thread_id: str) -> None:
        """Nobody is left on the thread: stop its background terminals."""
        if self.context is None:
            return
        state = self.context.threads.get(thread_id)
        if state is not None:
            count = await state.terminals.kill_all()
            if count:
                log.info("thread %s released: %d background terminal(s) stopped", thread_id, count)
            if not self.context.kernel.services["threads"].is_loaded(thread_id):
                self.context.threads.pop(thread_id, None)

    # -- methods -------------------------------------------------------------------------

    def _threads(self, thread_id: str) -> Any:
        assert self.context is not None
        threads = self.context.kernel.services.get("threads")
        if threads is None:
            raise RpcError(INVALID_REQUEST, "the threads plugin is not loaded")
        threads.require_loaded(thread_id)
        return threads

    @method("thread/shellCommand")
    async def shell_command(
        self, params: ThreadShellCommandParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """Run ``command`` as its own turn, unsandboxed (the user typed it)."""
        threads = self._threads(params.thread_id)
        if not params.command.strip():
            raise RpcError(INVALID_REQUEST, "command must not be empty")
        timeout = DEFAULT_TIMEOUT_MS if params.timeout_ms is None else params.timeout_ms
        if timeout < 0:
            raise RpcError(-32602, "Invalid params: timeoutMs: must not be negative")
        context = self.context
        assert context is not None

        async def body(turn: Any) -> None:
            await run_shell_command(context, turn, params.command, timeout)

        await threads.run_in_turn(params.thread_id, ctx.connection, body)
        return {}

    @method("thread/backgroundTerminals/list", experimental=True)
    def list_terminals(
        self, params: ThreadBackgroundTerminalsListParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """The thread's running background terminals, in start order."""
        self._threads(params.thread_id)
        assert self.context is not None
        running = self.context.of(params.thread_id).terminals.running()
        start = 0
        if params.cursor is not None:
            if not params.cursor.isdigit():
                raise RpcError(INVALID_REQUEST, f"invalid cursor: {params.cursor}")
            start = int(params.cursor)
        limit = len(running) if params.limit is None else max(1, params.limit)
        page = running[start : start + limit]
        end = start + len(page)
        return {
            "data": [s.describe() for s in page],
            "nextCursor": str(end) if end < len(running) else None,
        }

    @method("thread/backgroundTerminals/terminate", experimental=True)
    async def terminate_terminal(
        self, params: ThreadBackgroundTerminalsTerminateParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """Kill one terminal: ``{terminated: false}`` when there is none with that id."""
        self._threads(params.thread_id)
        assert self.context is not None
        terminals = self.context.of(params.thread_id).terminals
        session = terminals.remove(int(params.process_id)) if params.process_id.isdigit() else None
        if session is None:
            return {"terminated": False}
        await session.kill()
        return {"terminated": True}

    @method("thread/backgroundTerminals/clean", experimental=True)
    async def clean_terminals(
        self, params: ThreadBackgroundTerminalsCleanParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """Kill every background terminal of the thread."""
        self._threads(params.thread_id)
        assert self.context is not None
        await self.context.of(params.thread_id).terminals.kill_all()
        return {}
