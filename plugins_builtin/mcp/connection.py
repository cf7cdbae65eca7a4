"""One running MCP server, reached through the official SDK's client.

A :class:`ServerConnection` owns one server: a stdio child process (the
SDK spawns it in its own session and reaps its whole process group when the
client closes) or a streamable HTTP endpoint. The SDK's client lives in one
task of its own, the *owner*: anyio contexts must be entered and left by
the same task, and nothing outside it ever cancels it except as a last
resort at shutdown. Callers in other tasks (tool calls of several turns,
status requests) share the session, which correlates their requests.

Startup is bounded by ``startup_timeout_sec``; it covers the ``initialize``
handshake and listing the tools. Each tool call is bounded by
``tool_timeout_sec``. The initialize handshake is the 2025 one
(``mode="legacy"``): servers elicit with ``elicitation/create`` requests,
which every MCP server in use today understands.

Processes die with the server: the stdio command is started through
``setpriv --pdeathsig KILL`` when util-linux has it, so a ``kill -9`` of the
kernel takes its MCP servers along (their own children excepted). Normal
shutdown, reload, a stopped connection and one whose server closed it (a
crash, seen by a call) close the SDK client, which closes stdin, waits,
then signals the process group.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from kernel import __version__

from .config import ServerSpec, StartupProblem
from .containment import pdeathsig_prefix
from .naming import model_names

__all__ = ["ServerConnection", "StartupFailed", "describe_error"]

log = logging.getLogger("plugins.mcp")

ElicitHook = Callable[["ServerConnection", Any], Awaitable[Any]]
_CLIENT_INFO = types.Implementation(name="kernel-app-server", version=__version__)
_STOP_SECONDS = 8.0  # the SDK's own bounded shutdown takes at most ~6.5 s
_PAGES = 100  # a paginator that never ends cannot hang a listing


class StartupFailed(Exception):
    """The server could not be started; the message says why."""


def describe_error(exc: BaseException) -> str:
    """A one-line reason for ``exc`` (the first leaf of an exception group)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} (os error {exc.errno})"
    if isinstance(exc, MCPError):
        return exc.error.message
    text = str(exc).strip()
    return text or type(exc).__name__


class ServerConnection:
    """One configured server and its SDK client (see the module docstring)."""

    def __init__(self, spec: ServerSpec, elicit: ElicitHook) -> None:
        self.spec = spec
        self.name = spec.name
        self.state = "notStarted"  # starting, connected, failed (McpServerConnectionStatus)
        self.error: str | None = None
        self.crashed = False  # failed after a successful start: the next use starts anew
        self.client: Client | None = None
        self.server_info: dict[str, Any] | None = None
        self.capabilities: dict[str, Any] | None = None
        self.tools: list[types.Tool] = []  # the exposed ones (enabled_tools, disabled_tools)
        self.tools_meta: Any = None
        self.model_names: dict[str, str] = {}  # model-facing name -> MCP tool name
        self._elicit = elicit
        self._stale = False
        self._http_status: str | None = None
        self._ready: asyncio.Future[None] | None = None
        self._stop = asyncio.Event()
        self._scope = anyio.CancelScope()  # entered by the owner task; cancels a handshake
        self._task: asyncio.Task[None] | None = None
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.state == "connected"

    async def start(self) -> None:
        """Start once and wait until ready; raises :class:`StartupFailed`."""
        if self._task is None:
            loop = asyncio.get_running_loop()
            self.state = "starting"
            self._ready = loop.create_future()
            self._task = loop.create_task(self._run(), name=f"mcp-{self.name}")
        assert self._ready is not None
        if not self._ready.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._ready), self.spec.startup_timeout)
            except TimeoutError:
                self._failed(
                    f"timed out after {self.spec.startup_timeout:g}s "
                    f"(mcp_servers.{self.name}.startup_timeout_sec)"
                )
                self._abort()
        if self.state != "connected":
            raise StartupFailed(self.error or "the server stopped")

    def _abort(self) -> None:
        """Stop, and cut a handshake still in progress short (anyio-native cancellation)."""
        self._stop.set()
        if self.state != "connected":
            self._scope.cancel()

    async def stop(self) -> None:
        """Close the client (reaping a stdio server); bounded, idempotent."""
        self._abort()
        task = self._task
        if task is None:
            return
        if not task.done():
            await asyncio.wait({task}, timeout=_STOP_SECONDS)
        if not task.done():  # the SDK's shielded shutdown did not finish: last resort
            log.warning("MCP server %s did not stop in time; cancelling its client", self.name)
            task.cancel()
            await asyncio.wait({task}, timeout=2.0)

    async def retire(self) -> None:
        """Stop once the calls in flight have finished (``config/mcpServer/reload``)."""
        await self._idle.wait()
        await self.stop()

    def _crashed(self) -> None:
        """The server closed the connection: fail, and let the owner task close the client.

        Without the stop, the owner would keep waiting, holding the SDK client and
        its transport, while the manager starts a replacement on the next use.
        """
        self.crashed = True
        self._failed("the server closed the connection")
        self._stop.set()

    def _failed(self, reason: str) -> None:
        if self.state != "failed":
            self.state, self.error = "failed", reason
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    async def _run(self) -> None:
        """The owner task: enter the SDK client, serve until stopped, leave it (reaping)."""
        try:
            with self._scope:
                await self._serve()
        except Exception as exc:
            log.info("MCP server %s failed: %s", self.name, exc, exc_info=exc)
            reason = describe_error(exc)
            if self._http_status is not None:
                reason = f"{reason} ({self._http_status})"
            self._failed(f"MCP startup failed: {reason}")
        finally:
            self.client = None
            if self.state == "connected":
                # Ending without being asked to is a crash: the next use starts a new one.
                self.crashed = not self._stop.is_set()
                self.state, self.error = "failed", "the server stopped"
            self._failed("the server stopped")

    async def _serve(self) -> None:
        if self._stop.is_set():
            return
        async with contextlib.AsyncExitStack() as stack:
            transport = await self._transport(stack)
            client = Client(
                transport,
                mode="legacy",
                cache=None,
                # A safety net: startup is bounded by the scope, calls by their own timeouts.
                read_timeout_seconds=max(self.spec.startup_timeout, self.spec.tool_timeout),
                elicitation_callback=self._on_elicitation,
                message_handler=self._on_message,
                client_info=_CLIENT_INFO,
            )
            await stack.enter_async_context(client)
            self.client = client
            await self._list_tools(client)
            info = client.server_info
            self.server_info = None if info is None else _server_info(info)
            self.capabilities = client.server_capabilities.model_dump(
                mode="json", by_alias=True, exclude_none=True
            )
            if self._stop.is_set():
                return
            self.state = "connected"
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
            log.info("MCP server %s ready (%d tools)", self.name, len(self.tools))
            await self._stop.wait()

    async def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        spec = self.spec
        if spec.transport == "stdio":
            env = spec.environment()
            command = _executable(spec.command, env.get("PATH"), spec.cwd)
            argv = [*pdeathsig_prefix(), command, *spec.args]
            params = StdioServerParameters(command=argv[0], args=argv[1:], env=env, cwd=spec.cwd)
            return stdio_client(params, errlog=sys.stderr)
        try:
            headers = spec.headers()
        except StartupProblem as exc:
            raise StartupFailed(str(exc)) from None
        http = httpx2.AsyncClient(
            headers=headers,
            timeout=httpx2.Timeout(30.0, read=300.0),
            event_hooks={"response": [self._note_http_status]},
        )
        await stack.enter_async_context(http)
        return streamable_http_client(spec.url, http_client=http)

    async def _note_http_status(self, response: httpx2.Response) -> None:
        # The SDK reports any HTTP error as "Server returned an error response".
        if response.status_code >= 400:
            self._http_status = f"HTTP {response.status_code} {response.reason_phrase}"

    async def _list_tools(self, client: Client) -> None:
        tools: list[types.Tool] = []
        cursor: str | None = None
        for page_number in range(_PAGES):
            page = await client.list_tools(cursor=cursor)
            if page_number == 0:
                self.tools_meta = page.meta
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        self.tools = [t for t in tools if self.spec.exposes(t.name)]
        self.model_names = model_names(self.name, [t.name for t in self.tools])
        self._stale = False

    async def refresh_tools(self) -> None:
        """List the tools again if the server said they changed (failures keep the old list)."""
        client = self.client
        if client is None or not self._stale:
            return
        try:
            with anyio.fail_after(self.spec.startup_timeout):
                await self._list_tools(client)
        except Exception as exc:
            log.warning("MCP server %s: listing tools again failed: %s", self.name, exc)

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self._stale = True
        elif isinstance(message, Exception):
            log.warning("MCP server %s: transport error: %s", self.name, describe_error(message))

    async def _on_elicitation(self, context: Any, params: Any) -> Any:
        return await self._elicit(self, params)

    # -- requests ------------------------------------------------------------------------

    def tool(self, name: str) -> types.Tool | None:
        """The exposed tool called ``name`` (its MCP name), if any."""
        return next((t for t in self.tools if t.name == name), None)

    @contextlib.asynccontextmanager
    async def _using(self) -> Any:
        client = self.client
        if client is None or self.state != "connected":
            raise MCPError(types.CONNECTION_CLOSED, f"MCP server {self.name} is not running")
        self._inflight += 1
        self._idle.clear()
        try:
            yield client
        except MCPError as exc:
            if exc.error.code == types.CONNECTION_CLOSED:
                self._crashed()
            raise
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any] | None,
        *,
        timeout: float,
        progress: Callable[[float, float | None, str | None], Awaitable[None]] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> types.CallToolResult:
        """``tools/call``; raises ``MCPError`` (a timeout is ``REQUEST_TIMEOUT``)."""
        async with self._using() as client:
            return await client.call_tool(
                name,
                arguments,
                read_timeout_seconds=timeout,
                progress_callback=progress,
                meta=meta,  # type: ignore[arg-type]
            )

    async def read_resource(self, uri: str, meta: dict[str, Any] | None = None) -> Any:
        """``resources/read``, bounded by the tool timeout."""
        async with self._using() as client:
            with anyio.fail_after(self.spec.tool_timeout):
                return await client.read_resource(uri, meta=meta)  # type: ignore[arg-type]

    async def list_all(self, kind: str) -> list[Any]:
        """Every resource (``kind="resources"``) or resource template, all pages."""
        async with self._using() as client:
            found: list[Any] = []
            cursor: str | None = None
            with anyio.fail_after(self.spec.tool_timeout):
                for _ in range(_PAGES):
                    if kind == "resources":
                        page: Any = await client.list_resources(cursor=cursor)
                        found.extend(page.resources)
                    else:
                        page = await client.list_resource_templates(cursor=cursor)
                        found.extend(page.resource_templates)
                    cursor = page.next_cursor
                    if not cursor:
                        break
            return found

    def has_capability(self, name: str) -> bool:
        """Whether the server advertised capability ``name`` (``resources``...)."""
        return bool(self.capabilities and self.capabilities.get(name) is not None)


def _executable(command: str, path: str | None, cwd: str | None) -> str:
    """The program to run, found now: through setpriv a missing one would only show as EOF."""
    if "/" in command and cwd is not None:
        command = os.path.join(cwd, command)
    found = shutil.which(command, path=path)
    if found is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), command)
    return found


def _server_info(info: types.Implementation) -> dict[str, Any]:
    return {
        "name": info.name,
        "title": info.title,
        "version": info.version,
        "description": getattr(info, "description", None),
        "icons": None
        if not info.icons
        else [i.model_dump(mode="json", by_alias=True, exclude_none=True) for i in info.icons],
        "websiteUrl": getattr(info, "website_url", None),
    }
