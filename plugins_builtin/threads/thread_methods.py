"""``thread/*`` methods: start, resume, fork, read, list, archive, names, metadata.

Notification order follows the reference: ``thread/start`` answers, then
``thread/started``; ``thread/resume`` answers, then
``thread/tokenUsage/updated``; ``thread/fork`` answers, then
``thread/tokenUsage/updated`` and ``thread/started``. Notifications about a
thread go to its subscribers; ``thread/archived``, ``thread/unarchived`` and
``thread/name/updated`` go to every initialized client.
"""

from __future__ import annotations

import asyncio
import copy
from typing import TYPE_CHECKING, Any

from kernel import RequestContext, RpcError, invalid_field, method

from .checks import check_thread_id, invalid_request
from .params import (
    UNSET,
    ThreadArchiveParams,
    ThreadForkParams,
    ThreadListParams,
    ThreadLoadedListParams,
    ThreadMetadataUpdateParams,
    ThreadReadParams,
    ThreadReadStateUpdateParams,
    ThreadResumeParams,
    ThreadSetNameParams,
    ThreadStartParams,
    ThreadUnsubscribeParams,
)
from .state import (
    ABORTED_MARKER,
    item_record,
    now_s,
    turn_completed_record,
    turn_started_record,
    user_text_item,
)
from .store.api import InvalidCursor, InvalidQuery, ListQuery
from .wire import settings_payload, status_payload, thread_payload

if TYPE_CHECKING:
    from .hub import LoadedThread
    from .service import ThreadService

__all__ = ["ThreadMethods"]

_TURNS_DEPRECATED = (
    "Full-history hydration is deprecated for paginated threads; omit `includeTurns` or set it "
    "to `false`, then page with `thread/turns/list` and `thread/items/list`."
)
_RESUME_DEPRECATED = (
    "Returning turns from thread/resume is deprecated for paginated threads; use "
    "`excludeTurns: true`, then page with `thread/turns/list` and `thread/items/list`."
)


def _later(coro: Any) -> None:
    """Run ``coro`` after the current answer has been sent (notifications follow results)."""
    asyncio.get_running_loop().create_task(coro)


class ThreadMethods:
    """Mixin of the threads plugin: the thread lifecycle methods."""

    service: ThreadService

    # -- start / resume / fork -------------------------------------------------------

    @method("thread/start")
    async def thread_start(self, params: ThreadStartParams, ctx: RequestContext) -> dict[str, Any]:
        service = self.service
        settings = service.resolve(params)
        tools = service.check_tools(params.dynamic_tools)
        await service.check_provider(settings.model_provider)
        thread = await service.create(
            settings,
            ctx.connection,
            ephemeral=bool(params.ephemeral),
            dynamic_tools=tools,
            thread_source=params.thread_source,
        )
        _later(thread.emit("thread/started", {"thread": thread.payload()}))
        return {"thread": thread.payload(), **settings_payload(settings)}

    @method("thread/resume")
    async def thread_resume(
        self, params: ThreadResumeParams, ctx: RequestContext
    ) -> dict[str, Any]:
        service = self.service
        thread_id = check_thread_id(params.thread_id)
        thread = await service.load(thread_id)
        recorded = thread.state.settings
        settings = service.resolve(params, recorded)
        if params.model_provider is not None:
            await service.check_provider(settings.model_provider)
        await self._apply_settings(thread, settings)
        service.hub.subscribe(thread, ctx.connection)
        include = not params.exclude_turns
        if include:
            await ctx.notify("deprecationNotice", {"summary": _RESUME_DEPRECATED, "details": None})
        if params.model is not None and params.model != recorded.model:
            message = (
                f"This session was recorded with model `{recorded.model}` but is resuming with "
                f"`{params.model}`. Answers may differ from the earlier turns."
            )
            _later(ctx.notify("warning", {"threadId": thread.id, "message": message}))
        _later(self._resumed(thread, ctx))
        return {"thread": thread.payload(include_turns=include), **settings_payload(settings)}

    async def _resumed(self, thread: LoadedThread, ctx: RequestContext) -> None:
        await self._usage_update(thread, ctx)
        await ctx.kernel.plugins.acall(
            "threads_thread_resumed", thread_id=thread.id, connection=ctx.connection
        )

    @method("thread/fork")
    async def thread_fork(self, params: ThreadForkParams, ctx: RequestContext) -> dict[str, Any]:
        service = self.service
        if params.ephemeral and not params.exclude_turns:
            raise invalid_request(
                "ephemeral paginated thread/fork requires `excludeTurns: true`", "excludeTurns"
            )
        source = await service.load(check_thread_id(params.thread_id))
        settings = service.resolve(params, source.state.settings)
        tools = list(source.dynamic_tools)
        thread = await service.create(
            settings,
            ctx.connection,
            ephemeral=params.ephemeral,
            dynamic_tools=tools,
            forked_from=source.id,
            name=source.meta.name,
            preview=source.meta.preview,
            thread_source=params.thread_source,
        )
        await self._copy_history(source, thread, params.last_turn_id)
        include = not params.exclude_turns
        if include:
            await ctx.notify("deprecationNotice", {"summary": _TURNS_DEPRECATED, "details": None})
        result = {"thread": thread.payload(include_turns=include), **settings_payload(settings)}
        _later(self._fork_notifications(thread, ctx))
        return result

    async def _fork_notifications(self, thread: LoadedThread, ctx: RequestContext) -> None:
        await self._usage_update(thread, ctx)
        await thread.emit("thread/started", {"thread": thread.payload()})

    async def _copy_history(
        self, source: LoadedThread, thread: LoadedThread, last_turn_id: str | None
    ) -> None:
        """Give the fork the source's turns and model history (up to ``last_turn_id``).

        A running turn of the source is copied as interrupted, with the
        interruption marker in the model's history, as ``turn/interrupt``
        would leave it.
        """
        turns = list(source.state.turns)
        if last_turn_id is not None:
            ids = [t.id for t in turns]
            if last_turn_id not in ids:
                raise invalid_request(f"turn not found: {last_turn_id}", "lastTurnId")
            turns = turns[: ids.index(last_turn_id) + 1]
        state = thread.state
        state.turns = [copy.deepcopy(t) for t in turns]
        state.history = copy.deepcopy(source.state.history)
        state.token_total = dict(source.state.token_total)
        records: list[dict[str, Any]] = []
        for turn in state.turns:
            records.append(turn_started_record(turn))
            for item in turn.items:
                records.append(
                    item_record(turn.id, item, *turn.times.get(item["id"], (None, None)))
                )
            if not turn.done:
                turn.status = "interrupted"
                state.history.append(user_text_item(ABORTED_MARKER))
            records.append(turn_completed_record(turn))
        records.append({"type": "model", "turnId": None, "items": state.history})
        source_model = source.state.settings.model
        if state.history and thread.state.settings.model != source_model:
            # The new model gets a summary, not another model's raw history.
            state.compact_with_model = source_model
            records.append({"type": "compact_pending", "model": source_model})
        await self.service.persist(thread, records)

    async def _usage_update(self, thread: LoadedThread, ctx: RequestContext) -> None:
        state = thread.state
        last_turn = state.turns[-1].id if state.turns else ""
        await ctx.notify(
            "thread/tokenUsage/updated",
            {
                "threadId": thread.id,
                "turnId": last_turn,
                "tokenUsage": {
                    "total": state.token_total,
                    "last": state.token_last,
                    "modelContextWindow": None,
                },
            },
        )

    async def _apply_settings(self, thread: LoadedThread, settings: Any) -> bool:
        """Adopt ``settings``; persist them and tell subscribers when they changed."""
        if settings == thread.state.settings:
            return False
        thread.state.settings = settings
        await self.service.persist(thread, [{"type": "settings", "settings": settings.to_record()}])
        if settings.model != thread.meta.model or settings.reasoning_effort != (
            thread.meta.reasoning_effort
        ):
            await self.service.update_meta(
                thread, thread.id, model=settings.model, reasoning_effort=settings.reasoning_effort
            )
        return True

    # -- read / list --------------------------------------------------------------

    @method("thread/read")
    async def thread_read(self, params: ThreadReadParams, ctx: RequestContext) -> dict[str, Any]:
        thread_id = check_thread_id(params.thread_id)
        thread = self.service.hub.get(thread_id)
        if params.include_turns:
            await ctx.notify("deprecationNotice", {"summary": _TURNS_DEPRECATED, "details": None})
        if thread is not None:
            result: dict[str, Any] = {"thread": thread.payload(include_turns=params.include_turns)}
            state = thread.state
        else:
            meta = await self.service.stored_meta(thread_id)
            state = None
            if params.include_turns:
                state = await self.service.stored_history(thread_id)
            payload = thread_payload(
                meta, status_payload(False, False), state, params.include_turns
            )
            result = {"thread": payload}
        if ctx.connection.experimental and state is not None:
            result["readState"] = state.read_state
        return result

    @method("thread/list")
    async def thread_list(self, params: ThreadListParams, ctx: RequestContext) -> dict[str, Any]:
        cwd = params.cwd
        if cwd is not None and not isinstance(cwd, (str, list)):
            raise invalid_request("cwd must be a string or an array of strings", "cwd")
        query = ListQuery(
            archived=bool(params.archived),
            cwds=None if cwd is None else ([cwd] if isinstance(cwd, str) else list(cwd)),
            model_providers=params.model_providers or None,
            source_kinds=params.source_kinds or None,
            search_term=params.search_term,
            sort_key=params.sort_key or "created_at",
            sort_direction=params.sort_direction or "desc",
            limit=params.limit if params.limit is not None else 25,
            cursor=params.cursor,
            use_state_db_only=params.use_state_db_only,
            excluded_ids=params.excluded_thread_ids,
        )
        try:
            page = await self.service.store.list(query)
        except InvalidCursor as exc:
            raise invalid_field("cursor", str(exc)) from None
        except InvalidQuery as exc:
            raise RpcError(-32602, f"Invalid params: {exc}") from None
        data = []
        for meta in page.items:
            loaded = self.service.hub.get(meta.id)
            status = loaded.status() if loaded is not None else status_payload(False, False)
            data.append(thread_payload(meta, status))
        return {
            "data": data,
            "nextCursor": page.next_cursor,
            "backwardsCursor": page.backwards_cursor,
        }

    @method("thread/loaded/list")
    def thread_loaded_list(
        self, params: ThreadLoadedListParams, ctx: RequestContext
    ) -> dict[str, Any]:
        ids = sorted(self.service.hub.threads)
        start = 0
        if params.cursor:
            start = next((i for i, tid in enumerate(ids) if tid > params.cursor), len(ids))
        limit = params.limit or len(ids) or 1
        page = ids[start : start + limit]
        more = start + limit < len(ids)
        return {"data": page, "nextCursor": page[-1] if more and page else None}

    # -- archive / names / metadata / subscriptions ---------------------------------------

    @method("thread/archive")
    async def thread_archive(
        self, params: ThreadArchiveParams, ctx: RequestContext
    ) -> dict[str, Any]:
        thread_id = check_thread_id(params.thread_id)
        thread = self.service.hub.get(thread_id)
        if thread is not None:
            if thread.ephemeral:
                raise invalid_request(f"no rollout found for thread id {thread_id}", "threadId")
            if thread.active:
                raise invalid_request(
                    f"thread {thread_id} has a running turn; interrupt it before archiving",
                    "threadId",
                )
            await thread.emit(
                "thread/status/changed",
                {"threadId": thread_id, "status": status_payload(False, False)},
            )
            self.service.hub.remove(thread)
        meta = await self.service.store.get(thread_id)
        if meta is None or meta.archived:
            raise invalid_request(f"no rollout found for thread id {thread_id}", "threadId")
        await self.service.store.archive(thread_id)
        _later(ctx.kernel.broadcast("thread/archived", {"threadId": thread_id}))
        return {}

    @method("thread/unarchive")
    async def thread_unarchive(
        self, params: ThreadArchiveParams, ctx: RequestContext
    ) -> dict[str, Any]:
        thread_id = check_thread_id(params.thread_id)
        meta = await self.service.store.get(thread_id)
        if meta is None or not meta.archived:
            raise invalid_request(
                f"no archived rollout found for thread id {thread_id}", "threadId"
            )
        meta = await self.service.store.unarchive(thread_id)
        _later(ctx.kernel.broadcast("thread/unarchived", {"threadId": thread_id}))
        return {"thread": thread_payload(meta, status_payload(False, False))}

    @method("thread/name/set")
    async def thread_name_set(
        self, params: ThreadSetNameParams, ctx: RequestContext
    ) -> dict[str, Any]:
        thread_id = check_thread_id(params.thread_id)
        name = params.name.strip()
        if not name:
            raise invalid_request("thread name must not be empty", "name")
        await self.service.stored_meta(thread_id)
        await self.service.update_meta(self.service.hub.get(thread_id), thread_id, name=name)
        _later(
            ctx.kernel.broadcast("thread/name/updated", {"threadId": thread_id, "threadName": name})
        )
        return {}

    @method("thread/metadata/update")
    async def thread_metadata_update(
        self, params: ThreadMetadataUpdateParams, ctx: RequestContext
    ) -> dict[str, Any]:
        thread_id = check_thread_id(params.thread_id)
        meta = await self.service.stored_meta(thread_id)
        thread = self.service.hub.get(thread_id)
        if params.git_info is not UNSET:
            git = dict(meta.git_info or {})
            patch = params.git_info
            if patch is None:
                git = {}
            elif isinstance(patch, dict):
                for key in ("sha", "branch", "originUrl"):
                    if key in patch:
                        git[key] = patch[key]
            else:
                raise invalid_request("gitInfo must be an object or null", "gitInfo")
            value = (
                None
                if not any(git.get(k) for k in ("sha", "branch", "originUrl"))
                else {
                    "sha": git.get("sha"),
                    "branch": git.get("branch"),
                    "originUrl": git.get("originUrl"),
                }
            )
            meta = await self.service.update_meta(thread, thread_id, git_info=value)
        status = thread.status() if thread is not None else status_payload(False, False)
        return {"thread": thread_payload(meta, status, ephemeral=bool(thread and thread.ephemeral))}

    @method("thread/unsubscribe")
    def thread_unsubscribe(
        self, params: ThreadUnsubscribeParams, ctx: RequestContext
    ) -> dict[str, Any]:
        thread = self.service.hub.get(check_thread_id(params.thread_id))
        if thread is None:
            return {"status": "notLoaded"}
        removed = self.service.hub.unsubscribe(thread, ctx.connection)
        return {"status": "unsubscribed" if removed else "notSubscribed"}

    @method("thread/readState/update", experimental=True)
    async def thread_read_state_update(
        self, params: ThreadReadStateUpdateParams, ctx: RequestContext
    ) -> dict[str, Any]:
        thread = await self.service.load(check_thread_id(params.thread_id))
        state = thread.state
        if params.expected_revision != state.read_state.get("revision"):
            raise invalid_request(
                f"read state revision mismatch: expected {params.expected_revision} but the "
                f"thread is at {state.read_state.get('revision')}",
                "expectedRevision",
            )
        operation = params.operation.get("type") if isinstance(params.operation, dict) else None
        if operation == "read":
            first = None
        elif operation == "unread":
            first = {"type": "turn", "turnId": state.turns[-1].id} if state.turns else None
        else:
            raise invalid_request("operation.type must be read or unread", "operation.type")
        import uuid

        state.read_state = {"firstUnread": first, "revision": str(uuid.uuid4())}
        await self.service.persist(thread, [{"type": "read_state", "readState": state.read_state}])
        _later(
            thread.emit(
                "thread/readState/changed", {"threadId": thread.id, "readState": state.read_state}
            )
        )
        if not thread.ephemeral:
            await self.service.store.update(thread.id, updated_at=now_s())
        return {"readState": state.read_state}
