"""The ``mcp`` plugin: MCP servers from ``[mcp_servers.<name>]`` as the agent's tools.

Reads the reference's ``mcp_servers`` table (:mod:`.config`), runs the
servers with the official MCP Python SDK (:mod:`.connection`), shares each
server between threads (:mod:`.manager`), offers their tools to the model
through the threads family's ``threads_tools`` hook (:mod:`.toolcalls`,
:mod:`.resource_tools`), and serves the client's MCP methods
(:mod:`.methods`). Loaded threads are reached only through the ``turn``
object and ``kernel.services["threads"]``. See docs/mcp.md.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs

from kernel import ConfigError, Kernel, RequestContext, RpcError, hookimpl, method
from kernel.rpc.errors import INVALID_REQUEST

from .config import McpServerSettings, ServerSpec, read_servers
from .containment import pdeathsig_prefix
from .params import ListMcpServerStatusParams, McpResourceReadParams, McpServerToolCallParams

if TYPE_CHECKING:
    from .manager import McpManager
    from .resource_tools import ResourceTools
    from .toolcalls import McpTools

__all__ = ["McpPlugin"]

log = logging.getLogger("plugins.mcp")

STARTUP_STATUS = "mcpServer/startupStatus/updated"
ELICITATION = "mcpServer/elicitation/request"
_NOTIFICATIONS = ("item/mcpToolCall/progress", STARTUP_STATUS)


def _touches_servers(changed: Any) -> bool:
    """Whether the changed config paths include ``[mcp_servers]``."""
    return any(path.split(".", 1)[0] == "mcp_servers" for path in changed)


class McpPlugin:
    """MCP servers as tools and the ``mcpServer*`` methods; see the module docstring.

    The SDK takes most of a second to import, so it is imported when a
    server is first needed, not when the kernel loads the plugin.
    """

    def __init__(self) -> None:
        self.kernel: Kernel | None = None
        self._specs: dict[str, ServerSpec] = {}
        self._manager: McpManager | None = None
        self._tools: McpTools | None = None
        self._resources: ResourceTools | None = None
        self._config_error: str | None = None  # why the last change was not applied

    def _runtime(self) -> tuple[McpManager, McpTools, ResourceTools]:
        """The servers and the model's tools (created, importing the SDK, on first use)."""
        if self._manager is None or self._tools is None or self._resources is None:
            from .manager import McpManager
            from .resource_tools import ResourceTools
            from .toolcalls import McpTools

            self._manager = McpManager(self._specs, self._notify)
            self._tools = McpTools(self._manager, self._persist_always)
            self._resources = ResourceTools(self._manager)
        return self._manager, self._tools, self._resources

    @property
    def manager(self) -> McpManager:
        """The configured servers (see :meth:`_runtime`)."""
        return self._runtime()[0]

    # -- configuration and lifecycle -----------------------------------------------------

    @hookimpl
    def kernel_config_keys(self) -> dict[str, Any]:
        return {"mcp_servers": dict[str, McpServerSettings] | None}

    @hookimpl
    def kernel_configure(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._specs = read_servers(kernel.config)

    @hookimpl
    def kernel_register(self, registrar: Any) -> None:
        for name in _NOTIFICATIONS:
            registrar.notification(name)
        registrar.server_request(ELICITATION)

    @hookimpl
    def kernel_startup(self, kernel: Kernel) -> None:
        if any(s.transport == "stdio" and s.enabled for s in self._specs.values()):
            pdeathsig_prefix()  # found once, now, rather than at the first turn

    @hookimpl
    async def kernel_shutdown(self, kernel: Kernel) -> None:
        if self._manager is not None:
            await self._manager.close()

    async def _notify(self, thread_id: str | None, params: dict[str, Any]) -> None:
        """``mcpServer/startupStatus/updated`` to a thread's subscribers, else to everyone."""
        assert self.kernel is not None
        if thread_id is None:
            await self.kernel.broadcast(STARTUP_STATUS, params)
            return
        threads = self.kernel.services.get("threads")
        for connection in threads.subscribers(thread_id) if threads is not None else []:
            await connection.notify(STARTUP_STATUS, params)

    async def _persist_always(self, server: str, tool: str) -> None:
        """Write ``tools.<tool>.approval_mode = "approve"`` to the server's config.toml table."""
        assert self.kernel is not None
        config = self.kernel.config
        spec = self.manager.specs[server]
        key = f"mcp_servers.{server}.{'command' if spec.transport == 'stdio' else 'url'}"
        if config.origin(key) != str(config.user_path):
            raise ConfigError(f"MCP server {server} is not configured in {config.user_path}")

        def change(user: dict[str, Any]) -> None:
            table = user["mcp_servers"][server]
            table.setdefault("tools", {}).setdefault(tool, {})["approval_mode"] = "approve"

        await self.kernel.blocking.run(self, config.update_user, change, read_servers, timeout=10)
        modes = {**spec.tool_approval_modes, tool: "approve"}
        self.manager.specs[server] = attrs.evolve(spec, tool_approval_modes=modes)
        conn = self.manager.connection(server)
        if conn is not None:
            conn.spec = self.manager.specs[server]

    # -- the threads family's hooks ------------------------------------------------------

    @hookimpl
    async def threads_tools(self, turn: Any) -> list[dict[str, Any]] | None:
        """Each running server's tools as a namespace, and the resource tools."""
        if not any(spec.enabled for spec in self._specs.values()):
            return None
        _, tools, resources = self._runtime()
        return [*await tools.offer(turn), *resources.tools()]

    @hookimpl
    def threads_thread_released(self, thread_id: str) -> None:
        """Forget what the thread was told about the servers once it is unloaded."""
        threads = self.kernel.services.get("threads") if self.kernel is not None else None
        if self._manager is not None and (threads is None or not threads.is_loaded(thread_id)):
            self._manager.forget_thread(thread_id)

    # -- methods -------------------------------------------------------------------------

    def _require_thread(self, thread_id: str) -> None:
        assert self.kernel is not None
        threads = self.kernel.services.get("threads")
        if threads is None:
            raise RpcError(INVALID_REQUEST, "the threads plugin is not loaded")
        threads.require_loaded(thread_id)

    @method("mcpServerStatus/list")
    async def status_list(
        self, params: ListMcpServerStatusParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """Every configured server with its tools, resources and state."""
        from .methods import status_page

        if params.thread_id is not None:
            self._require_thread(params.thread_id)
        return await status_page(self.manager, params)

    @method("config/mcpServer/reload")
    async def reload(self, params: None, ctx: RequestContext) -> dict[str, Any]:
        """Re-read config.toml; servers restart from it when next used.

        The kernel validates the file against the settings catalog (the
        tables' own rules included) before anything changes; when
        ``[mcp_servers]`` changed, :meth:`kernel_config_changed` applies it,
        else the same tables apply again here: either way once.
        """
        assert self.kernel is not None
        try:
            changed = await self.kernel.reload_config()
        except ConfigError as exc:
            raise RpcError(INVALID_REQUEST, str(exc)) from None
        if not _touches_servers(changed):
            self._apply_config(self.kernel.config)
        if self._config_error is not None:
            raise RpcError(INVALID_REQUEST, self._config_error)
        return {}

    def _apply_config(self, config: Any) -> None:
        """Use ``config``'s servers; a refused one keeps the running servers (logged).

        Only a server name can be refused here: every other rule runs in the
        settings catalog, which refuses the file before it is used.
        """
        try:
            specs = read_servers(config)
        except ConfigError as exc:
            self._config_error = str(exc)
            log.error("MCP servers not reloaded: %s", exc)
            return
        self._config_error = None
        self._apply(specs)

    def _apply(self, specs: dict[str, Any]) -> None:
        self._specs = specs
        if self._manager is not None:
            self._manager.reload(specs)
        log.info("MCP servers reloaded: %s", ", ".join(specs) or "none configured")

    @hookimpl
    def kernel_config_changed(self, kernel: Kernel, changed: Any) -> None:
        """``[mcp_servers]`` written through the config methods applies at once."""
        if _touches_servers(changed):
            self._apply_config(kernel.config)

    @method("mcpServer/tool/call")
    async def tool_call(
        self, params: McpServerToolCallParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """Call a tool of a configured server for a loaded thread."""
        from .methods import tool_call

        self._require_thread(params.thread_id)
        return await tool_call(self.manager, params, ctx.connection)

    @method("mcpServer/resource/read")
    async def resource_read(
        self, params: McpResourceReadParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """Read a resource of a configured server."""
        from .methods import read_resource

        if params.thread_id is not None:
            self._require_thread(params.thread_id)
        return await read_resource(self.manager, params)
