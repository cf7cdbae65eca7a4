"""The turn engine: model requests, streamed items, tool calls, steer and interrupt.

A turn runs as one task. Each round builds a Responses API request from the
thread's history, streams the provider's events into items and deltas, runs
the tool calls the answer asked for, feeds their outputs back, and goes
again until an answer asks for no tool. ``turn/steer`` abandons the model
request in flight and sends a new one with the steer input appended;
``turn/interrupt`` ends the turn.

Unlike the reference, an item that was started is always completed:
interrupting or steering completes the partial agent message (with the text
streamed so far) and fails an unanswered tool call, so clients never hold a
dangling item. A partial answer is never sent back to the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from kernel import ConnectionClosed

from .approvals import ask_approval
from .inputs import input_to_model, user_message_item
from .prompt import request_body
from .state import (
    ABORTED_MARKER,
    TurnState,
    item_record,
    now_ms,
    now_s,
    turn_completed_record,
    user_text_item,
    zero_usage,
)
from .streaming import ModelEventHandler
from .tools import Call, Toolbox
from .wire import turn_payload

if TYPE_CHECKING:
    from kernel import Connection, Kernel

    from .hub import LoadedThread

__all__ = ["TurnFailed", "TurnRunner"]

log = logging.getLogger("plugins.threads.engine")


class TurnRunner:
    """One running turn; also the ``turn`` object tools receive (see docs/threads.md)."""

    def __init__(
        self,
        kernel: Kernel,
        thread: LoadedThread,
        turn: TurnState,
        origin: Connection | None,
        store: Any,
        *,
        max_requests: int,
        output_schema: Any = None,
    ) -> None:
        self.kernel = kernel
        self.thread = thread
        self.turn = turn
        self.connection = origin
        self.store = store
        self.max_requests = max_requests
        self.output_schema = output_schema
        self.steer_inputs: list[tuple[list[dict[str, Any]], str | None]] = []
        self.open_items: dict[str, dict[str, Any]] = {}
        self.task: asyncio.Task[None] | None = None
        self._request: asyncio.Task[list[Call]] | None = None
        self._steered = False
        self.interrupted = False

    # -- what tools see ---------------------------------------------------------

    @property
    def thread_id(self) -> str:
        return self.thread.id

    @property
    def turn_id(self) -> str:
        return self.turn.id

    @property
    def cwd(self) -> str:
        return self.thread.state.settings.cwd

    @property
    def settings(self) -> dict[str, Any]:
        return self.thread.state.settings.to_record()

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        """Send a notification to the thread's subscribers."""
        await self.thread.emit(method, params)

    async def start_item(self, item: dict[str, Any]) -> None:
        """``item/started``; the item stays open until :meth:`complete_item`."""
        item_id = item["id"]
        self.open_items[item_id] = item
        item.setdefault("_startedAtMs", now_ms())
        params = {
            "item": _public(item),
            "threadId": self.thread_id,
            "turnId": self.turn_id,
            "startedAtMs": item["_startedAtMs"],
        }
        await self.notify("item/started", params)

    async def complete_item(self, item: dict[str, Any]) -> None:
        """``item/completed``, recorded in the turn and the rollout."""
        self.open_items.pop(item["id"], None)
        parts = item.pop("_textParts", None)
        if parts:  # streamed text is collected in parts: one join, not a copy per delta
            item["text"] = item.get("text", "") + "".join(parts)
        started = item.get("_startedAtMs")
        completed = now_ms()
        public = _public(item)
        self.turn.add_item(public, started, completed)
        await self.persist([item_record(self.turn_id, public, started, completed)])
        params = {
            "item": public,
            "threadId": self.thread_id,
            "turnId": self.turn_id,
            "completedAtMs": completed,
        }
        await self.notify("item/completed", params)

    async def request(self, method: str, params: Any, timeout: float | None = -1) -> Any:
        """Ask a client: the turn's own connection if subscribed, else another subscriber.

        After the answer, subscribers get ``serverRequest/resolved``.
        """
        conn = self._asked_connection()
        if conn is None:
            raise ConnectionClosed(f"thread {self.thread_id} has no subscribed client to ask")
        request_id = conn.next_server_request_id()
        try:
            return await conn.request(method, params, timeout=timeout, request_id=request_id)
        finally:
            await self.notify(
                "serverRequest/resolved", {"threadId": self.thread_id, "requestId": request_id}
            )

    def _asked_connection(self) -> Connection | None:
        subscribers = self.thread.subscribers
        if self.connection is not None and self.connection.id in subscribers:
            return self.connection
        return next(iter(subscribers.values()), None)

    async def set_flags(self, flags: list[str]) -> None:
        """Change the thread's active flags (``waitingOnApproval``...)."""
        await self.thread.set_flags(flags)

    async def flag(self, name: str, on: bool) -> None:
        """Set or clear one active flag of the thread (``waitingOnUserInput``...)."""
        flags = [f for f in self.thread.flags if f != name]
        await self.thread.set_flags([*flags, name] if on else flags)

    async def ask_approval(
        self, kind: str, method: str, params: dict[str, Any], allowed: Any
    ) -> dict[str, Any]:
        """Ask the reviewer hook, else the client; fails closed (see :mod:`.approvals`)."""
        return await ask_approval(self, kind, method, params, allowed)

    def keep_item_open(self, item_id: str) -> None:
        """The item outlives the turn (a background terminal): its tool completes it later.

        Without this, ending the turn (interrupt, failure) completes every
        item still open as failed.
        """
        self.open_items.pop(item_id, None)

    async def add_to_history(self, items: list[dict[str, Any]]) -> None:
        """Append Responses API input items to what the model sees next (and the rollout)."""
        await self._model_items(items)

    @property
    def session(self) -> dict[str, Any]:
        """Per-thread scratch space for tools (approvals cached for the session...)."""
        return self.thread.session

    def end_as_interrupted(self) -> None:
        """End the turn ``interrupted`` after the current tool call (an approval's ``cancel``)."""
        self.interrupt()

    async def persist(self, records: list[dict[str, Any]]) -> None:
        """Append records to the thread's rollout (nothing for an ephemeral thread)."""
        if not self.thread.ephemeral:
            await self.store.append(self.thread_id, records)

    # -- control ------------------------------------------------------------------

    def steer(self, items: list[dict[str, Any]], client_id: str | None) -> None:
        """Queue steer input; a model request in flight is abandoned for a new one."""
        self.steer_inputs.append((items, client_id))
        if self._request is not None and not self._request.done():
            self._steered = True
            self._request.cancel()

    def interrupt(self) -> None:
        """End the turn as ``interrupted`` (its result is answered first)."""
        self.interrupted = True
        if self.task is not None:
            self.task.cancel()

    # -- running --------------------------------------------------------------------

    async def run(self, user_input: list[dict[str, Any]], client_id: str | None) -> None:
        """The whole turn, from ``turn/started`` to ``turn/completed``."""

        async def body() -> None:
            await self._user_message(user_input, client_id)
            await self._rounds()

        await self._run(body)

    async def run_body(self, body: Any) -> None:
        """A turn that runs ``await body(self)`` instead of a user message and model requests.

        ``thread/shellCommand`` runs this way: its items belong to a turn of
        their own, with the usual status and turn notifications around them.
        """
        await self._run(lambda: body(self))

    async def _run(self, body: Any) -> None:
        turn = self.turn
        started = time.monotonic()
        try:
            await self.notify(
                "thread/status/changed",
                {"threadId": self.thread_id, "status": self.thread.status()},
            )
            await self.notify(
                "turn/started", {"threadId": self.thread_id, "turn": turn_payload(turn)}
            )
            await body()
            turn.status = "completed"
        except asyncio.CancelledError:
            turn.status = "interrupted"
            await self._abandon_open_items()
            await self._model_items([user_text_item(ABORTED_MARKER)])
        except TurnFailed as failure:
            turn.status = "failed"
            turn.error = failure.error
            await self._abandon_open_items()
            await self.notify(
                "error",
                {
                    "error": failure.error,
                    "threadId": self.thread_id,
                    "turnId": self.turn_id,
                    "willRetry": False,
                },
            )
        except Exception:
            log.exception("turn %s of thread %s failed", self.turn_id, self.thread_id)
            turn.status = "failed"
            turn.error = {"message": "internal error while running the turn (see the server log)"}
            await self._abandon_open_items()
        finally:
            await self._finish(started)

    async def _finish(self, started: float) -> None:
        turn = self.turn
        turn.completed_at = now_s()
        turn.duration_ms = int((time.monotonic() - started) * 1000)
        await self.persist([turn_completed_record(turn)])
        with contextlib.suppress(Exception):
            await self.store_sync()
        await self._mark_unread()
        self.thread.runner = None
        self.thread.flags = []
        await self.notify(
            "thread/status/changed", {"threadId": self.thread_id, "status": self.thread.status()}
        )
        await self.notify(
            "turn/completed", {"threadId": self.thread_id, "turn": turn_payload(turn, "summary")}
        )

    async def store_sync(self) -> None:
        """Flush the rollout to disk at the end of a turn, where the store supports it."""
        sync = getattr(self.store, "sync", None)
        if sync is not None and not self.thread.ephemeral:
            await sync(self.thread_id)

    async def _mark_unread(self) -> None:
        state = self.thread.state
        if state.read_state.get("firstUnread") is None:
            state.read_state = {
                "firstUnread": {"type": "turn", "turnId": self.turn_id},
                "revision": str(uuid.uuid4()),
            }
            await self.persist([{"type": "read_state", "readState": state.read_state}])
            await self.notify(
                "thread/readState/changed",
                {"threadId": self.thread_id, "readState": state.read_state},
            )

    async def _user_message(self, items: list[dict[str, Any]], client_id: str | None) -> None:
        item = user_message_item(items, client_id)
        await self.start_item(item)
        await self.complete_item(item)
        message = await input_to_model(items, self.kernel, self.thread)
        await self._model_items([message])

    async def _model_items(self, items: list[dict[str, Any]]) -> None:
        self.thread.state.history.extend(items)
        await self.persist([{"type": "model", "turnId": self.turn_id, "items": items}])

    async def _rounds(self) -> None:
        tools = await self._toolbox()
        for _ in range(self.max_requests):
            while self.steer_inputs:
                items, client_id = self.steer_inputs.pop(0)
                await self._user_message(items, client_id)
            self._steered = False
            body = request_body(
                self.thread_id,
                self.thread.state.settings,
                self.thread.state.history,
                tools.specs(),
                self.output_schema,
            )
            self._request = asyncio.get_running_loop().create_task(self._model_request(body))
            try:
                calls = await self._request
            except asyncio.CancelledError:
                if self._steered and not _cancelling():
                    await self._abandon_open_items()
                    continue
                raise
            finally:
                self._request = None
            if not calls:
                if not self.steer_inputs:
                    return
                continue
            outputs = await asyncio.gather(*(tools.run(self, call) for call in calls))
            await self._model_items([c.output_item(o) for c, o in zip(calls, outputs, strict=True)])
        raise TurnFailed(
            {
                "message": f"the turn made {self.max_requests} model requests without finishing "
                "(kernel_plugins.threads.max_model_requests_per_turn)",
                "codexErrorInfo": "other",
            }
        )

    async def _toolbox(self) -> Toolbox:
        offered: list[Any] = []
        for name, tools in await self.kernel.plugins.acall("threads_tools", turn=self):
            if tools:
                if isinstance(tools, list):
                    offered.extend(tools)
                else:
                    log.error("plugin %s: threads_tools returned %r, not a list", name, type(tools))
        return Toolbox(self.thread.dynamic_tools, offered)

    async def _model_request(self, body: dict[str, Any]) -> list[Call]:
        """One model request: stream its events into items; returns its tool calls."""
        handler = ModelEventHandler(self)
        stream = await self._open_stream(body)
        try:
            async for event in stream:
                await handler.handle(event)
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()
        failure = handler.failure
        if failure is not None:
            raise TurnFailed(failure)
        if not handler.completed:
            raise TurnFailed(
                {
                    "message": "the model stream ended before the response completed",
                    "codexErrorInfo": {"responseStreamDisconnected": {"httpStatusCode": None}},
                }
            )
        await self._model_items(handler.history_items)
        await self._token_usage(handler.usage)
        return handler.calls

    async def _open_stream(self, body: dict[str, Any]) -> Any:
        settings = self.thread.state.settings
        provider = settings.model_provider
        origin = self.connection
        info = origin.client_info if origin is not None else None
        headers = {
            "session-id": self.thread_id,
            "thread-id": self.thread_id,
            "x-client-request-id": self.thread_id,
            "originator": info.name if info is not None else "kernel",
            "User-Agent": _user_agent(info),
        }
        context = _RequestContext(origin, self.thread_id, self.turn_id)
        try:
            found = await self.kernel.plugins.first(
                "threads_model_stream",
                provider_id=provider,
                body=body,
                headers=headers,
                context=context,
            )
        except Exception as exc:
            log.error("opening the model stream failed: %s", exc, exc_info=exc.__cause__ or exc)
            raise TurnFailed(
                {"message": "the model provider plugin failed (see the server log)"}
            ) from None
        if found is None:
            raise TurnFailed(
                {
                    "message": f"no plugin serves model provider {provider!r}: enable the models "
                    f"plugin and configure [model_providers.{provider}] in config.toml",
                    "codexErrorInfo": "badRequest",
                }
            )
        return found[1]

    async def _token_usage(self, usage: dict[str, Any] | None) -> None:
        if usage is None:
            return
        state = self.thread.state
        last = zero_usage()
        last.update(usage)
        state.token_last = last
        state.token_total = {k: state.token_total.get(k, 0) + v for k, v in last.items()}
        await self.persist([{"type": "token_usage", "total": state.token_total, "last": last}])
        await self.notify(
            "thread/tokenUsage/updated",
            {
                "threadId": self.thread_id,
                "turnId": self.turn_id,
                "tokenUsage": {
                    "total": state.token_total,
                    "last": last,
                    "modelContextWindow": None,
                },
            },
        )

    async def _abandon_open_items(self) -> None:
        """Complete every item still open (partial text kept, tool calls failed)."""
        for item in list(self.open_items.values()):
            if item.get("type") == "dynamicToolCall":
                item.update(status="failed", success=False)
            elif "status" in item and item["status"] == "inProgress":
                item["status"] = "failed"
            await self.complete_item(item)


class TurnFailed(Exception):
    """The turn cannot go on; ``error`` is the protocol's ``TurnError``."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", "turn failed"))
        self.error = {"message": error.get("message", "turn failed"), **error}


class _RequestContext:
    """Who a model request is made for (``threads_model_stream``'s ``context``)."""

    def __init__(self, connection: Connection | None, thread_id: str, turn_id: str) -> None:
        self.connection = connection
        self.thread_id = thread_id
        self.turn_id = turn_id


def _public(item: dict[str, Any]) -> dict[str, Any]:
    """The item without the engine's private ``_`` members."""
    return {k: v for k, v in item.items() if not k.startswith("_")}


def _cancelling() -> int:
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0


def _user_agent(info: Any) -> str:
    from kernel.handshake import user_agent

    if info is None:
        from kernel import __version__

        return f"kernel/{__version__}"
    return user_agent(info)
