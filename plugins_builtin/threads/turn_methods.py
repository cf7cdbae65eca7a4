"""``turn/*`` methods and the paged history reads: ``thread/turns/list``, ``thread/items/*``.

``turn/start`` answers the new turn at once (``inProgress``, no items) and
runs it in the background; the answer always precedes the turn's
notifications. Overrides given on ``turn/start`` persist for later turns
and are announced with ``thread/settings/updated`` before the answer.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

import attrs

from kernel import RequestContext, method

from .checks import check_input, check_thread_id, invalid_request
from .compaction import compact
from .engine import TurnRunner
from .params import (
    ThreadCompactStartParams,
    ThreadItemsListParams,
    ThreadItemsReadParams,
    ThreadTurnsListParams,
    TurnInterruptParams,
    TurnStartParams,
    TurnSteerParams,
)
from .state import TurnState, now_s, turn_started_record
from .wire import turn_payload

if TYPE_CHECKING:
    from .hub import LoadedThread
    from .service import ThreadService

__all__ = ["TurnMethods"]

log = logging.getLogger("plugins.threads")

_VIEWS = ("notLoaded", "summary", "full")


def _preview(items: list[dict[str, Any]]) -> str:
    text = " ".join(i.get("text", "") for i in items if i.get("type") == "text").strip()
    return text[:200]


class TurnMethods:
    """Mixin of the threads plugin: turns and paged history."""

    service: ThreadService
    max_model_requests: int

    async def _loaded(self, thread_id: str) -> LoadedThread:
        thread = self.service.hub.get(check_thread_id(thread_id))
        if thread is None:
            raise invalid_request(f"thread not loaded: {thread_id}", "threadId")
        return thread

    # -- turns -----------------------------------------------------------------

    @method("turn/start")
    async def turn_start(self, params: TurnStartParams, ctx: RequestContext) -> dict[str, Any]:
        thread = await self._loaded(params.thread_id)
        check_input(params.input)
        self.service.check_summary(params.summary)
        runner = thread.runner
        if runner is not None and not runner.compacting:
            raise invalid_request(
                f"thread {thread.id} already has an active turn {runner.turn_id}; "
                "use turn/steer to add input or turn/interrupt to stop it",
                "threadId",
            )
        settings = self._turn_settings(thread, params)
        if settings.model_provider != thread.state.settings.model_provider:
            await self.service.check_provider(settings.model_provider)
            runner = thread.runner  # a turn may have started while the provider was checked
            if runner is not None and not runner.compacting:
                raise invalid_request(
                    f"thread {thread.id} already has an active turn {runner.turn_id}", "threadId"
                )
        turn_id = str(uuid.uuid4())
        if runner is not None or thread.queued_turns:
            # A compaction runs: this turn starts when it (and earlier queued turns) end.
            connection = ctx.connection
            thread.queued_turns.append(lambda: self._launch(thread, params, connection, turn_id))
            return {"turn": turn_payload(TurnState(id=turn_id), "notLoaded")}
        return await self._launch(thread, params, ctx.connection, turn_id)

    def _turn_settings(self, thread: LoadedThread, params: TurnStartParams) -> Any:
        settings = self.service.resolve(params, thread.state.settings)
        overrides: dict[str, Any] = {}
        if params.effort is not None:
            overrides["reasoning_effort"] = params.effort
        if params.summary is not None:
            overrides["reasoning_summary"] = params.summary
        if params.sandbox_policy is not None:
            overrides["sandbox_policy"] = params.sandbox_policy
        mode = params.collaboration_mode
        if isinstance(mode, dict) and mode.get("mode") in ("plan", "default"):
            overrides["collaboration_mode"] = mode["mode"]
        return attrs.evolve(settings, **overrides)

    async def _launch(
        self, thread: LoadedThread, params: TurnStartParams, connection: Any, turn_id: str
    ) -> dict[str, Any]:
        """Apply the turn's settings, record it and start it (after its answer is sent)."""
        settings = self._turn_settings(thread, params)
        if await self._apply_settings(thread, settings):  # type: ignore[attr-defined]
            await thread.emit(
                "thread/settings/updated",
                {"threadId": thread.id, "threadSettings": _thread_settings(settings)},
            )
        runner = await self.begin_turn(
            thread, connection, params.root_turn_id, params.output_schema, turn_id
        )
        result = {"turn": turn_payload(runner.turn, "notLoaded")}
        if not thread.meta.preview:
            preview = _preview(params.input)
            if preview:
                await self.service.update_meta(thread, thread.id, preview=preview)
        # Starts once this answer is on its way: it comes before the turn's notifications.
        runner.task = asyncio.get_running_loop().create_task(
            self.run_turn(thread, runner.run(params.input, params.client_user_message_id)),
            name=f"turn-{runner.turn_id}",
        )
        return result

    @method("thread/compact/start")
    async def thread_compact_start(
        self, params: ThreadCompactStartParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """Compact the thread's history now, as a turn of its own (docs/threads.md)."""
        thread = await self._loaded(params.thread_id)
        if thread.active:
            raise invalid_request(
                f"thread {thread.id} has an active turn; compact it once the turn has ended",
                "threadId",
            )
        runner = await self.begin_turn(thread, ctx.connection)
        runner.compacting = True
        runner.task = asyncio.get_running_loop().create_task(
            self.run_turn(thread, runner.run_body(compact)), name=f"compact-{runner.turn_id}"
        )
        return {}

    async def begin_turn(
        self,
        thread: LoadedThread,
        connection: Any,
        root_turn_id: str | None = None,
        output_schema: Any = None,
        turn_id: str | None = None,
    ) -> TurnRunner:
        """A new turn of ``thread``, recorded and made its running turn (not started yet).

        The one gate every way of starting a turn goes through: a thread with
        a running turn is refused here, before anything is awaited.
        """
        if thread.runner is not None:
            raise invalid_request(
                f"thread {thread.id} already has an active turn {thread.runner.turn_id}",
                "threadId",
            )
        turn = TurnState(id=turn_id or str(uuid.uuid4()), root_turn_id=root_turn_id)
        turn.started_at = now_s()
        thread.state.turns.append(turn)
        runner = TurnRunner(
            self.service.kernel,
            thread,
            turn,
            connection,
            self.service.store,
            max_requests=self.max_model_requests,
            output_schema=output_schema,
            limits=self._limits(thread),
        )
        thread.runner = runner
        await self.service.persist(thread, [turn_started_record(turn)])
        return runner

    def _limits(self, thread: LoadedThread) -> Any:
        """How a turn learns its context window and compaction limit (asked when it runs)."""
        service = self.service

        async def limits() -> tuple[int | None, int | None]:
            settings = thread.state.settings
            window = await service.context_window(settings.model_provider, settings.model)
            return window, service.compact_limit(window)

        return limits

    async def run_turn(self, thread: LoadedThread, running: Any) -> None:
        try:
            await running
        finally:
            while thread.queued_turns and thread.runner is None:
                # Input that arrived during a compaction: the next turn, in order. One
                # that cannot start is logged and the one after it is started instead.
                start = thread.queued_turns.pop(0)
                try:
                    await start()
                except Exception:
                    log.exception("starting a queued turn of thread %s failed", thread.id)
            self.service.hub.maybe_schedule_unload(thread)

    @method("turn/steer")
    def turn_steer(self, params: TurnSteerParams, ctx: RequestContext) -> dict[str, Any]:
        thread = self.service.hub.get(check_thread_id(params.thread_id))
        runner = thread.runner if thread is not None else None
        if runner is None:
            raise invalid_request("no active turn to steer", "expectedTurnId")
        if runner.compacting:
            raise invalid_request(
                f"thread {params.thread_id} is compacting its history and cannot be steered; "
                "send the input with turn/start: it starts when the compaction ends",
                "threadId",
            )
        if params.expected_turn_id != runner.turn_id:
            raise invalid_request(
                f"expected active turn id `{params.expected_turn_id}` but found `{runner.turn_id}`",
                "expectedTurnId",
            )
        check_input(params.input)
        if not runner.steer(list(params.input), params.client_user_message_id):
            raise invalid_request(
                f"turn {runner.turn_id} runs a shell command and takes no input; send it with "
                "turn/start once the turn has ended",
                "threadId",
            )
        return {"turnId": runner.turn_id}

    @method("turn/interrupt")
    def turn_interrupt(self, params: TurnInterruptParams, ctx: RequestContext) -> dict[str, Any]:
        thread = self.service.hub.get(check_thread_id(params.thread_id))
        runner = thread.runner if thread is not None else None
        if runner is None:
            raise invalid_request("no active turn to interrupt", "turnId")
        if params.turn_id != runner.turn_id:
            raise invalid_request(
                f"expected active turn id {params.turn_id} but found {runner.turn_id}", "turnId"
            )
        runner.interrupt()
        return {}

    @method("collaborationMode/list", experimental=True)
    def collaboration_modes(self, params: None, ctx: RequestContext) -> dict[str, Any]:
        """The presets a turn's ``collaborationMode`` may name: Plan, then Default."""
        return {
            "data": [
                {"name": "Plan", "mode": "plan", "model": None, "reasoning_effort": "medium"},
                {"name": "Default", "mode": "default", "model": None, "reasoning_effort": None},
            ]
        }

    # -- paged history ----------------------------------------------------------

    async def _history(self, thread_id: str) -> Any:
        """The thread's state: loaded, else read from the store (not loaded by this)."""
        thread = self.service.hub.get(check_thread_id(thread_id))
        if thread is not None:
            return thread.state
        await self.service.stored_meta(thread_id)
        return await self.service.stored_history(thread_id)

    @method("thread/turns/list")
    async def thread_turns_list(
        self, params: ThreadTurnsListParams, ctx: RequestContext
    ) -> dict[str, Any]:
        state = await self._history(params.thread_id)
        view = params.items_view or "summary"
        if view not in _VIEWS:
            raise invalid_request(f"itemsView must be one of {', '.join(_VIEWS)}", "itemsView")
        turns = state.turns
        page, next_cursor, back_cursor = _page(
            [t.id for t in turns], params.cursor, params.limit, params.sort_direction, "turns"
        )
        by_id = {t.id: t for t in turns}
        shown = "turnsSummary" if view == "summary" else view
        return {
            "data": [turn_payload(by_id[tid], shown) for tid in page],
            "nextCursor": next_cursor,
            "backwardsCursor": back_cursor,
        }

    @method("thread/items/list")
    async def thread_items_list(
        self, params: ThreadItemsListParams, ctx: RequestContext
    ) -> dict[str, Any]:
        state = await self._history(params.thread_id)
        entries: dict[str, dict[str, Any]] = {}
        for turn in state.turns:
            if params.turn_id is not None and turn.id != params.turn_id:
                continue
            for item in turn.items:
                entries[f"{turn.id}/{item['id']}"] = _entry(turn, item)
        cursor = (
            params.cursor
            if isinstance(params.cursor, str) or params.cursor is None
            else (json.dumps(params.cursor))
        )
        page, next_cursor, back_cursor = _page(
            list(entries), cursor, params.limit, params.sort_direction or "asc", "items"
        )
        return {
            "data": [entries[key] for key in page],
            "nextCursor": next_cursor,
            "backwardsCursor": back_cursor,
        }

    @method("thread/items/read", experimental=True)
    async def thread_items_read(
        self, params: ThreadItemsReadParams, ctx: RequestContext
    ) -> dict[str, Any]:
        state = await self._history(params.thread_id)
        turn = state.turn(params.turn_id)
        if turn is None:
            raise invalid_request(f"turn not found: {params.turn_id}", "turnId")
        wanted = set(params.item_ids)
        data = [_entry(turn, item) for item in turn.items if item["id"] in wanted]
        return {"data": data}


def _entry(turn: TurnState, item: dict[str, Any]) -> dict[str, Any]:
    """A ``ThreadItemEntry``."""
    started, completed = turn.times.get(item["id"], (None, None))
    return {"turnId": turn.id, "item": item, "startedAtMs": started, "completedAtMs": completed}


def _thread_settings(settings: Any) -> dict[str, Any]:
    from .wire import approval_policy_payload, sandbox_policy

    return {
        "approvalPolicy": approval_policy_payload(settings.approval_policy),
        "approvalsReviewer": settings.approvals_reviewer,
        "collaborationMode": {
            "mode": settings.collaboration_mode,
            "settings": {
                "model": settings.model,
                "reasoning_effort": settings.reasoning_effort,
                "developer_instructions": settings.developer_instructions,
            },
        },
        "cwd": settings.cwd,
        "model": settings.model,
        "modelProvider": settings.model_provider,
        "effort": settings.reasoning_effort,
        "summary": settings.reasoning_summary,
        "sandboxPolicy": settings.sandbox_policy or sandbox_policy(settings.sandbox, settings.cwd),
        "personality": settings.personality,
    }


def _encode(scope: str, position: int, direction: str) -> str:
    raw = json.dumps({"scope": scope, "position": position, "direction": direction})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode(cursor: str, scope: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if data["scope"] != scope:
            raise ValueError(scope)
        return int(data["position"]), str(data["direction"])
    except (ValueError, KeyError, TypeError, json.JSONDecodeError):
        raise invalid_request(f"invalid cursor: {cursor}", "cursor") from None


def _page(
    keys: list[str], cursor: str | None, limit: int | None, direction: str | None, scope: str
) -> tuple[list[str], str | None, str | None]:
    """One page of ``keys`` (oldest first) in ``direction``; newest first by default for turns.

    A cursor names a position in the oldest-first list and the direction to
    go from it; ``backwardsCursor`` walks the other way from this page.
    """
    order = direction or "desc"
    if order not in ("asc", "desc"):
        raise invalid_request("sortDirection must be asc or desc", "sortDirection")
    size = len(keys)
    count = limit if limit else size or 1
    if cursor is None:
        start = 0 if order == "asc" else size - 1
    else:
        start, order = _decode(cursor, scope)
    step = 1 if order == "asc" else -1
    positions: list[int] = []
    position = start
    while 0 <= position < size and len(positions) < count:
        positions.append(position)
        position += step
    page = [keys[p] for p in positions]
    next_cursor = _encode(scope, position, order) if 0 <= position < size else None
    back = None
    if positions:
        before = positions[0] - step
        if 0 <= before < size:
            back = _encode(scope, before, "desc" if order == "asc" else "asc")
    return page, next_cursor, back
