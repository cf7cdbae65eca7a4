"""The configured MCP servers, shared by every thread, and who answers their elicitations.

One :class:`ServerConnection` per configured server, started on first use
(a turn's tool listing, a status request, a direct tool call) and shared by
every thread: one process per stdio server. A server that fails to start
stays failed until ``config/mcpServer/reload``; one that crashed after a
successful start is started anew on its next use, and the crashed
connection is retired like a reloaded one (:meth:`McpManager.close` still
stops it if its client has not closed yet).

``mcpServer/startupStatus/updated`` is sent to a thread's subscribers the
first time the thread uses a server and whenever that server's state
changed since; a start not made for a thread is announced to every client
with ``threadId: null``.

Elicitations: an MCP request does not say which call it belongs to, so each
call opens a :class:`CallScope` on its server while it runs. An elicitation
goes to the scope of the server's only call in flight, or to the newest one
when all calls in flight are of one thread; when calls of several threads
are in flight, or none, nobody can be asked and it is declined (logged).
The scope owns the asking task: when the call ends (an interrupted turn),
the ask is cancelled and awaited, so ``serverRequest/resolved`` is out
before the call's item completes and the MCP server gets ``cancel``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import attrs
import mcp_types as types

from .config import ServerSpec
from .connection import ServerConnection, StartupFailed
from .elicitation import METHOD, ask_client, policy_answer, request_params, to_result

__all__ = ["CallScope", "McpManager"]

log = logging.getLogger("plugins.mcp")

Notify = Callable[[str | None, dict[str, Any]], Awaitable[None]]


@attrs.define(eq=False)
class CallScope:
    """One call in flight on a server: whom its elicitations are asked of."""

    thread_id: str
    turn: Any = None  # the turn of a model's call
    connection: Any = None  # the client of a direct ``mcpServer/tool/call``
    asks: set[asyncio.Task[types.ElicitResult]] = attrs.Factory(set)


class McpManager:
    """Connections by server name; see the module docstring."""

    def __init__(self, specs: dict[str, ServerSpec], notify: Notify) -> None:
        self.specs = specs
        self._notify = notify
        self._connections: dict[str, ServerConnection] = {}
        self._scopes: dict[str, list[CallScope]] = {}
        self._announced: dict[str | None, dict[str, tuple[str, str | None]]] = {}
        self._retired: set[ServerConnection] = set()
        self._retiring: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- connections -------------------------------------------------------------------

    def enabled(self) -> list[str]:
        """Names of the enabled servers, sorted."""
        return [name for name, spec in self.specs.items() if spec.enabled]

    def connection(self, name: str) -> ServerConnection | None:
        """The current connection of server ``name`` (None before its first start)."""
        return self._connections.get(name)

    async def ensure(self, name: str, thread_id: str | None) -> ServerConnection:
        """Server ``name`` started (or failed), its state announced to ``thread_id``.

        Raises :class:`StartupFailed` when it is not running.
        """
        if self._closed:
            raise StartupFailed("the server is shutting down")
        if not self.specs[name].enabled:
            raise StartupFailed(f"disabled (mcp_servers.{name}.enabled)")
        conn = self._connections.get(name)
        if conn is None or (conn.crashed and not conn.ready):
            if conn is not None:
                self._retire_later(conn)  # its client closes; close() waits for it meanwhile
            conn = ServerConnection(self.specs[name], self._elicit)
            self._connections[name] = conn
        if conn.state in ("notStarted", "starting"):
            await self._announce(thread_id, name, "starting", None)
            try:
                await conn.start()
            except StartupFailed:
                pass
        if conn.ready:
            await self._announce(thread_id, name, "ready", None)
            return conn
        error = f"MCP client for `{name}` failed to start: {conn.error}"
        await self._announce(thread_id, name, "failed", error)
        raise StartupFailed(conn.error or "failed")

    async def ensure_all(self, thread_id: str | None, names: list[str] | None = None) -> None:
        """Start every enabled server (or ``names``) concurrently; failures are announced."""
        wanted = [n for n in (names if names is not None else self.enabled()) if n in self.specs]
        await asyncio.gather(*(self.ensure(n, thread_id) for n in wanted), return_exceptions=True)

    async def _announce(
        self, thread_id: str | None, name: str, status: str, error: str | None
    ) -> None:
        seen = self._announced.setdefault(thread_id, {})
        if seen.get(name) == (status, error):
            return
        seen[name] = (status, error)
        params = {
            "threadId": thread_id,
            "name": name,
            "status": status,
            "error": error,
            "failureReason": None,
        }
        await self._notify(thread_id, params)

    def forget_thread(self, thread_id: str) -> None:
        """A thread was unloaded: announce afresh if it comes back."""
        self._announced.pop(thread_id, None)

    # -- reload and shutdown -------------------------------------------------------------

    def reload(self, specs: dict[str, ServerSpec]) -> None:
        """Use ``specs`` from now on; running servers stop once their calls finished."""
        self.specs = specs
        old, self._connections = self._connections, {}
        self._announced.clear()
        for conn in old.values():
            self._retire_later(conn)

    def _retire_later(self, conn: ServerConnection) -> None:
        """Stop ``conn`` once its calls finished; until then :meth:`close` still stops it."""
        self._retired.add(conn)
        task = asyncio.get_running_loop().create_task(
            self._retire(conn), name=f"mcp-retire-{conn.name}"
        )
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _retire(self, conn: ServerConnection) -> None:
        await conn.retire()
        self._retired.discard(conn)

    async def close(self) -> None:
        """Stop every server now (shutdown): no process is left behind."""
        self._closed = True
        for task in list(self._retiring):
            task.cancel()
        conns = [*self._connections.values(), *self._retired]
        self._connections = {}
        self._retired = set()
        await asyncio.gather(*(c.stop() for c in conns), return_exceptions=True)

    # -- elicitation ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def scope(self, name: str, scope: CallScope) -> AsyncIterator[CallScope]:
        """Route ``name``'s elicitations to ``scope`` while the block runs."""
        scopes = self._scopes.setdefault(name, [])
        scopes.append(scope)
        try:
            yield scope
        finally:
            scopes.remove(scope)
            pending = [t for t in scope.asks if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    def _pick(self, name: str) -> CallScope | None:
        scopes = self._scopes.get(name) or []
        if len({s.thread_id for s in scopes}) != 1:
            return None
        return scopes[-1]

    async def _elicit(self, conn: ServerConnection, params: Any) -> types.ElicitResult:
        scope = self._pick(conn.name)
        if scope is None:
            log.warning(
                "MCP server %s asked for input with %s calls of different threads in flight; "
                "declined (nobody to ask)",
                conn.name,
                "no" if not self._scopes.get(conn.name) else "several",
            )
            return types.ElicitResult(action="decline")
        task = asyncio.get_running_loop().create_task(self._ask(scope, conn.name, params))
        scope.asks.add(task)
        try:
            await asyncio.wait({task})
        finally:
            if not task.done():  # the MCP server withdrew its request
                task.cancel()
                with anyio.CancelScope(shield=True):
                    await asyncio.wait({task})
            scope.asks.discard(task)
        if task.cancelled():
            return types.ElicitResult(action="cancel")
        return task.result()

    async def _ask(self, scope: CallScope, server: str, params: Any) -> types.ElicitResult:
        turn = scope.turn
        request = request_params(scope.thread_id, turn.turn_id if turn else None, server, params)
        if request is None:
            return types.ElicitResult(action="cancel")
        if turn is None:
            return to_result(await ask_client(scope.connection, scope.thread_id, request), request)
        answer = policy_answer(turn.settings, request)
        if answer is None:
            answer = await turn.ask_approval("mcpElicitation", METHOD, request, None)
        return to_result(answer, request)
