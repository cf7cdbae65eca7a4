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

from .compaction import compact
from .inputs import input_to_model, user_message_item
from .lifecycle import after_tool, before_tool, screen_input, stopping
from .prompt import request_body
from .state import (
    ABORTED_MARKER,
    TurnState,
    now_s,
    turn_completed_record,
    user_text_item,
    zero_usage,
)
from .streaming import ModelEventHandler
from .tools import Call, Toolbox
from .turn_api import TurnApi
from .wire import turn_payload

if TYPE_CHECKING:
    from kernel import Connection, Kernel

    from .hub import LoadedThread

__all__ = ["TurnFailed", "TurnRunner"]

log = logging.getLogger("plugins.threads.engine")


class TurnRunner(TurnApi):
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
        limits: Any = None,
    ) -> None:
        self.kernel = kernel
        self.thread = thread
        self.turn = turn
        self.connection = origin
        self.store = store
        self.max_requests = max_requests
        self.output_schema = output_schema
        # Compact before a request once the last one used this many tokens (None: never).
        # An async callable giving (context window, compaction limit), asked
        # when the turn first needs them (not while the turn is being set up).
        self.limits = limits
        self.context_window: int | None = None
        self.compact_limit: int | None = None
        self.compacting = False  # a thread/compact/start turn
        self.reads_input = True  # False for a run_body turn (compaction, shell command)
        # (items, client message id, model-only): model-only items join the
        # history without a userMessage item (a family steering the turn).
        self.steer_inputs: list[tuple[list[dict[str, Any]], str | None, bool]] = []
        self.user_input: list[dict[str, Any]] = []  # the turn's own input (threads_context)
        self.open_items: dict[str, dict[str, Any]] = {}
        self.task: asyncio.Task[None] | None = None
        self._request: asyncio.Task[list[Call]] | None = None
        self._steered = False
        self.interrupted = False
        self.usage: dict[str, int] = {}  # this turn's token usage, summed over its requests

    # -- control ------------------------------------------------------------------

    def steer(
        self, items: list[dict[str, Any]], client_id: str | None, model_only: bool = False
    ) -> bool:
        """Queue steer input; a model request in flight is abandoned for a new one.

        ``model_only``: ``items`` are Responses API input items for the model,
        not user input (no ``userMessage`` item). Returns False (nothing
        queued) for a turn that takes no input: a compaction or a user shell
        command runs a body instead of model requests.
        """
        if not self.reads_input:
            return False
        self.steer_inputs.append((items, client_id, model_only))
        if self._request is not None and not self._request.done():
            self._steered = True
            self._request.cancel()
        return True

    def interrupt(self) -> None:
        """End the turn as ``interrupted`` (its result is answered first)."""
        self.interrupted = True
        if self.task is not None:
            self.task.cancel()

    # -- running --------------------------------------------------------------------

    async def run(
        self,
        user_input: list[dict[str, Any]],
        client_id: str | None,
        model_items: list[dict[str, Any]] | None = None,
    ) -> None:
        """The whole turn, from ``turn/started`` to ``turn/completed``.

        ``model_items`` (Responses API input items) reach the model without a
        ``userMessage`` item: a turn another family starts on its own
        (``kernel.services["threads"].start_turn``) may have no user input.
        """

        self.user_input = list(user_input)

        async def body() -> None:
            kept = True
            if user_input:
                kept = await self._user_message(user_input, client_id)
            if model_items:
                await self._model_items(list(model_items))
            if kept or model_items:
                await self._rounds()

        await self._run(body)

    async def run_body(self, body: Any) -> None:
        """A turn that runs ``await body(self)`` instead of a user message and model requests.

        ``thread/shellCommand`` runs this way: its items belong to a turn of
        their own, with the usual status and turn notifications around them.
        """
        self.reads_input = False
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
        await self.kernel.plugins.acall(
            "threads_turn_finished",
            turn=self,
            status=turn.status,
            token_usage=dict(self.usage) if self.usage else None,
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

    async def _user_message(self, items: list[dict[str, Any]], client_id: str | None) -> bool:
        """The user's message as an item, then (unless a plugin drops it) for the model.

        Returns False when a ``threads_user_input`` plugin dropped it.
        """
        item = user_message_item(items, client_id)
        await self.start_item(item)
        await self.complete_item(item)
        drop, added = await screen_input(self, items)
        if not drop:
            message = await input_to_model(items, self.kernel, self.thread)
            await self._model_items([message])
        if added:
            await self._model_items(added)
        return not drop

    async def _model_items(self, items: list[dict[str, Any]]) -> None:
        self.thread.state.history.extend(items)
        await self.persist([{"type": "model", "turnId": self.turn_id, "items": items}])

    async def _rounds(self) -> None:
        if self.limits is not None:
            self.context_window, self.compact_limit = await self.limits()
        tools = await self._toolbox()
        context = await self._context()
        for _ in range(self.max_requests):
            await self._compact_if_needed()
            while self.steer_inputs:
                items, client_id, model_only = self.steer_inputs.pop(0)
                if model_only:
                    await self._model_items(items)
                else:
                    await self._user_message(items, client_id)
            self._steered = False
            body = request_body(
                self.thread_id,
                self.thread.state.settings,
                self.thread.state.history,
                tools.specs(),
                self.output_schema,
                context,
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
                if self.steer_inputs:
                    continue
                more = await stopping(self)
                if not more:
                    return
                await self._model_items(more)
                continue
            results = await asyncio.gather(*(self._call_tool(tools, call) for call in calls))
            await self._model_items(
                [c.output_item(r[0]) for c, r in zip(calls, results, strict=True)]
            )
            added = [item for _, items in results for item in items]
            if added:
                await self._model_items(added)
        raise TurnFailed(
            {
                "message": f"the turn made {self.max_requests} model requests without finishing "
                "(kernel_plugins.threads.max_model_requests_per_turn)",
                "codexErrorInfo": "other",
            }
        )

    async def _call_tool(self, tools: Toolbox, call: Call) -> tuple[Any, list[dict[str, Any]]]:
        """One tool call between the lifecycle hooks: ``(output, items to add after)``."""
        replaced = await before_tool(self, call)
        if replaced is not None:
            return replaced, []
        output = await tools.run(self, call)
        return await after_tool(self, call, output)

    async def _compact_if_needed(self) -> None:
        """Compact before a request: a fork's pending switch, or a nearly full window."""
        state = self.thread.state
        if state.compact_with_model:
            model = state.compact_with_model
            try:
                await compact(self, model)
            except TurnFailed as failure:
                # Not retried before every later turn: the new model gets the history as is.
                state.compact_with_model = None
                await self.persist([{"type": "compact_pending", "model": None}])
                reason = failure.error.get("message", "the summary request failed")
                message = (
                    f"The history could not be summarized with model `{model}` ({reason}); "
                    "the thread's model gets it as it is."
                )
                await self.notify("warning", {"threadId": self.thread_id, "message": message})
        elif self.compact_limit and state.last_request_tokens >= self.compact_limit:
            await compact(self)

    async def _toolbox(self) -> Toolbox:
        offered: list[Any] = []
        for name, tools in await self.kernel.plugins.acall("threads_tools", turn=self):
            if tools:
                if isinstance(tools, list):
                    offered.extend(tools)
                else:
                    log.error("plugin %s: threads_tools returned %r, not a list", name, type(tools))
        return Toolbox(self.thread.dynamic_tools, offered)

    async def _context(self) -> list[dict[str, Any]]:
        """Context items plugins add to every request of this turn (``threads_context``)."""
        items: list[dict[str, Any]] = []
        found = await self.kernel.plugins.acall(
            "threads_context", turn=self, user_input=self.user_input
        )
        for name, added in found:
            if isinstance(added, list):
                items.extend(item for item in added if isinstance(item, dict))
            elif added is not None:
                log.error("plugin %s: threads_context returned %r, not a list", name, type(added))
        return items

    async def _model_request(self, body: dict[str, Any]) -> list[Call]:
        """One model request: stream its events into items; returns its tool calls."""
        handler = ModelEventHandler(self)
        stream = await self.open_stream(body)
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
        await self.token_usage(handler.usage)
        return handler.calls

    async def open_stream(self, body: dict[str, Any], purpose: str = "model") -> Any:
        """Send one model request for this turn; the provider's async iterator of events.

        ``purpose`` (``"model"``, ``"compaction"``) tells outbound-request
        plugins what the request is for.
        """
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
        context = _RequestContext(origin, self.thread_id, self.turn_id, purpose)
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

    async def token_usage(self, usage: dict[str, Any] | None) -> None:
        """Account one request's usage: ``thread/tokenUsage/updated`` and the rollout."""
        if usage is None:
            return
        state = self.thread.state
        last = zero_usage()
        last.update(usage)
        self.usage = {k: self.usage.get(k, 0) + v for k, v in last.items()}
        state.last_request_tokens = int(last.get("totalTokens") or 0)
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
                    "modelContextWindow": self.context_window,
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

    def __init__(
        self, connection: Connection | None, thread_id: str, turn_id: str, purpose: str
    ) -> None:
        self.connection = connection
        self.thread_id = thread_id
        self.turn_id = turn_id
        self.purpose = purpose


def _cancelling() -> int:
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0


def _user_agent(info: Any) -> str:
    from kernel.handshake import user_agent

    if info is None:
        from kernel import __version__

        return f"kernel/{__version__}"
    return user_agent(info)
