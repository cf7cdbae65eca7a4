"""The ``goals`` plugin: a thread's goal, the model's goal tools, and bounded continuation.

``thread/goal/get|set|clear`` with ``thread/goal/updated`` and
``thread/goal/cleared``; goals live in ``state.sqlite`` (:mod:`.store`) and
follow the rules of :mod:`.model`. While a thread's goal is ``active`` and
the thread is loaded, each finished turn is followed by an automatic turn
toward it, as the reference does — but bounded: the goal's token budget,
``max_automatic_turns`` in a row without a user turn, and
``max_idle_turns`` automatic turns in a row that call no tool (the
reference ran 22 turns in 1.5 s against a model that only said "ok").
When a bound stops the continuation the thread's clients get a
``warning`` saying which. Tokens of every turn count toward an active goal
(a paused one counts nothing). See docs/goals.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import attrs

from kernel import Connection, Kernel, RequestContext, RpcError, SettingError, hookimpl, method
from kernel.rpc.errors import INVALID_REQUEST

from .model import STATUSES, Goal, GoalError, changed_goal, new_goal
from .store import GoalStore
from .tools import CREATE, GET, UPDATE, continuation_message, specs

__all__ = ["GoalsPlugin"]

log = logging.getLogger("plugins.goals")

_ABSENT: Any = object()


@attrs.frozen
class GoalsSettings:
    """``[kernel_plugins.goals]``: how far automatic continuation may go."""

    max_automatic_turns: int = 10
    max_idle_turns: int = 2

    def check(self, config: Any) -> None:
        for name in ("max_automatic_turns", "max_idle_turns"):
            if getattr(self, name) < 1:
                raise SettingError(name, "must be at least 1")


@attrs.frozen
class ThreadGoalGetParams:
    """``threadId``."""

    thread_id: str


@attrs.frozen
class ThreadGoalSetParams:
    """Objective, status and budget; ``tokenBudget: null`` removes the budget, absent keeps it."""

    thread_id: str
    objective: str | None = None
    status: str | None = None
    token_budget: Any = _ABSENT
    origin: str | None = None


@attrs.frozen
class ThreadGoalClearParams:
    """``threadId`` (``origin`` is accepted)."""

    thread_id: str
    origin: str | None = None


@attrs.define
class _Running:
    """What continuation needs to know about one loaded thread."""

    automatic: set[str] = attrs.Factory(set)
    automatic_in_a_row: int = 0
    idle_in_a_row: int = 0
    started: dict[str, tuple[float, bool]] = attrs.Factory(dict)
    tool_calls: dict[str, int] = attrs.Factory(dict)


def _invalid(message: str) -> RpcError:
    return RpcError(INVALID_REQUEST, message)


class GoalsPlugin:
    """See the module docstring."""

    def __init__(self) -> None:
        self.kernel: Kernel | None = None
        self.settings = GoalsSettings()
        self.store: GoalStore | None = None
        self.running: dict[str, _Running] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    @hookimpl
    def kernel_settings(self) -> type[GoalsSettings]:
        return GoalsSettings

    @hookimpl
    def kernel_configure(self, kernel: Kernel, settings: GoalsSettings) -> None:
        self.kernel = kernel
        self.settings = settings
        self.store = GoalStore(kernel.home / "state.sqlite")

    @hookimpl
    def kernel_register(self, registrar: Any) -> None:
        registrar.notification("thread/goal/updated")
        registrar.notification("thread/goal/cleared")

    @hookimpl
    async def kernel_shutdown(self, kernel: Kernel) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self.store is not None:
            await kernel.blocking.run(self, self.store.close, timeout=10)

    # -- storage and notifications --------------------------------------------------------

    def _threads(self) -> Any:
        assert self.kernel is not None
        threads = self.kernel.services.get("threads")
        if threads is None:
            raise _invalid("goals need the threads plugin, which is not loaded")
        return threads

    async def _get(self, thread_id: str) -> Goal | None:
        assert self.kernel is not None and self.store is not None
        return await self.kernel.blocking.run(self, self.store.get, thread_id, timeout=30)

    async def _put(self, goal: Goal) -> None:
        assert self.kernel is not None and self.store is not None
        await self.kernel.blocking.run(self, self.store.put, goal, timeout=30)

    async def _require_thread(self, thread_id: str) -> dict[str, Any]:
        found = await self._threads().describe(thread_id)
        if found is None:
            raise _invalid(f"thread not found: {thread_id}")
        if found["ephemeral"]:
            raise _invalid(f"ephemeral thread does not support goals: {thread_id}")
        return dict(found)

    def _audience(self, thread_id: str, caller: Connection | None) -> list[Connection]:
        found = list(self._threads().subscribers(thread_id))
        if caller is not None and caller not in found:
            found.append(caller)
        return found

    def _later(self, coro: Any) -> None:
        """Run after the current answer went out (notifications follow results)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, connections: list[Connection], method_name: str, params: Any) -> None:
        for connection in connections:
            await connection.notify(method_name, params)

    # -- methods --------------------------------------------------------------------------

    @method("thread/goal/get")
    async def goal_get(self, params: ThreadGoalGetParams, ctx: RequestContext) -> dict[str, Any]:
        """The thread's goal, or ``{goal: null}``."""
        await self._require_thread(params.thread_id)
        goal = await self._get(params.thread_id)
        return {"goal": None if goal is None else goal.wire()}

    @method("thread/goal/set")
    async def goal_set(self, params: ThreadGoalSetParams, ctx: RequestContext) -> dict[str, Any]:
        """Create or change the goal; an active goal on an idle loaded thread starts work."""
        thread_id = params.thread_id
        if params.status is not None and params.status not in STATUSES:
            raise RpcError(-32602, f"Invalid params: status: unknown goal status {params.status!r}")
        found = await self._require_thread(thread_id)
        budget_given = params.token_budget is not _ABSENT
        budget = params.token_budget if budget_given else None
        current = await self._get(thread_id)
        try:
            if current is None:
                if params.objective is None:
                    raise GoalError(f"cannot update goal for thread {thread_id}: no goal exists")
                goal = new_goal(thread_id, params.objective, params.status, budget)
            else:
                goal = changed_goal(current, params.objective, params.status, budget, budget_given)
        except GoalError as exc:
            raise _invalid(str(exc)) from None
        await self._put(goal)
        update = {"threadId": thread_id, "turnId": None, "goal": goal.wire()}
        self._later(
            self._send(self._audience(thread_id, ctx.connection), "thread/goal/updated", update)
        )
        objective_changed = current is not None and goal.objective != current.objective
        if found["loaded"] and goal.status == "active":
            self._later(self._after_set(goal, objective_changed))
        return {"goal": goal.wire()}

    async def _after_set(self, goal: Goal, objective_changed: bool) -> None:
        """Steer a running turn toward a new objective, or start work on an idle thread."""
        threads = self._threads()
        if not threads.is_loaded(goal.thread_id):
            return
        described = await threads.describe(goal.thread_id)
        if described and described["active"]:
            if objective_changed:
                threads.steer(goal.thread_id, model_items=[continuation_message(goal)])
            return
        state = self.running.setdefault(goal.thread_id, _Running())
        state.automatic_in_a_row = state.idle_in_a_row = 0
        await self._continue(goal)

    @method("thread/goal/clear")
    async def goal_clear(
        self, params: ThreadGoalClearParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """Remove the goal: ``{cleared}``, and ``thread/goal/cleared`` when there was one."""
        await self._require_thread(params.thread_id)
        assert self.kernel is not None and self.store is not None
        cleared = await self.kernel.blocking.run(
            self, self.store.delete, params.thread_id, timeout=30
        )
        if cleared:
            audience = self._audience(params.thread_id, ctx.connection)
            note = {"threadId": params.thread_id}
            self._later(self._send(audience, "thread/goal/cleared", note))
        return {"cleared": bool(cleared)}

    # -- the threads family's hooks ---------------------------------------------------------

    @hookimpl
    async def threads_thread_resumed(self, thread_id: str, connection: Connection) -> None:
        """A resuming client gets the thread's goal (nothing when there is none)."""
        goal = await self._get(thread_id)
        if goal is not None:
            update = {"threadId": thread_id, "turnId": None, "goal": goal.wire()}
            await connection.notify("thread/goal/updated", update)

    @hookimpl
    def threads_thread_released(self, thread_id: str) -> None:
        self.running.pop(thread_id, None)

    @hookimpl
    async def threads_tools(self, turn: Any) -> list[dict[str, Any]]:
        """The goal tools; also notes when the turn started and whether its goal was active."""
        goal = await self._get(turn.thread_id)
        state = self.running.setdefault(turn.thread_id, _Running())
        state.started[turn.turn_id] = (
            time.monotonic(),
            goal is not None and goal.status == "active",
        )
        return [{"spec": spec, "call": self._tool_call} for spec in specs()]

    @hookimpl
    def threads_tool_call(self, turn: Any, call: Any) -> None:
        """Counts the turn's tool calls (reading the goal is not progress)."""
        if call.name != GET:
            state = self.running.setdefault(turn.thread_id, _Running())
            state.tool_calls[turn.turn_id] = state.tool_calls.get(turn.turn_id, 0) + 1

    async def _tool_call(self, invocation: Any) -> str:
        turn = invocation.turn
        try:
            arguments = json.loads(invocation.arguments or "{}")
        except json.JSONDecodeError:
            return f"{invocation.name} failed: the arguments are not JSON"
        if not isinstance(arguments, Mapping):
            return f"{invocation.name} failed: the arguments must be an object"
        goal = await self._get(turn.thread_id)
        try:
            if invocation.name == GET:
                return json.dumps({"goal": None if goal is None else _described(goal)})
            if invocation.name == CREATE:
                if goal is not None:
                    raise GoalError(f"a goal already exists for this thread; use {UPDATE}")
                objective = arguments.get("objective")
                if not isinstance(objective, str):
                    raise GoalError("objective must be a string")
                goal = new_goal(turn.thread_id, objective, None, arguments.get("token_budget"))
            else:
                status = arguments.get("status")
                if status not in ("complete", "blocked"):
                    raise GoalError("status must be `complete` or `blocked`")
                if goal is None:
                    raise GoalError(
                        f"cannot update goal for thread {turn.thread_id}: no goal exists"
                    )
                goal = changed_goal(goal, None, status, None, False)
        except GoalError as exc:
            return f"{invocation.name} failed: {exc}"
        await self._put(goal)
        await turn.notify(
            "thread/goal/updated",
            {"threadId": turn.thread_id, "turnId": turn.turn_id, "goal": goal.wire()},
        )
        return json.dumps({"goal": _described(goal)})

    @hookimpl
    async def threads_turn_finished(
        self, turn: Any, status: str, token_usage: Mapping[str, int] | None
    ) -> None:
        """Account the turn to an active goal, then continue toward it (within bounds)."""
        state = self.running.setdefault(turn.thread_id, _Running())
        began, was_active = state.started.pop(turn.turn_id, (None, False))
        calls = state.tool_calls.pop(turn.turn_id, 0)
        automatic = turn.turn_id in state.automatic
        state.automatic.discard(turn.turn_id)
        goal = await self._get(turn.thread_id)
        if goal is None:
            return
        if was_active or automatic:
            tokens = int((token_usage or {}).get("totalTokens") or 0)
            seconds = int(time.monotonic() - began) if began is not None else 0
            goal = goal.used(tokens, seconds)
            await self._put(goal)
            await turn.notify(
                "thread/goal/updated",
                {"threadId": turn.thread_id, "turnId": turn.turn_id, "goal": goal.wire()},
            )
        if status != "completed" or goal.status != "active":
            state.automatic_in_a_row = state.idle_in_a_row = 0
            return
        if automatic:
            state.automatic_in_a_row += 1
            state.idle_in_a_row = 0 if calls else state.idle_in_a_row + 1
        else:
            state.automatic_in_a_row = state.idle_in_a_row = 0
        reason = self._bound_reached(state)
        if reason is not None:
            state.automatic_in_a_row = state.idle_in_a_row = 0
            await turn.notify("warning", {"threadId": turn.thread_id, "message": reason})
            return
        self._later(self._continue(goal))

    def _bound_reached(self, state: _Running) -> str | None:
        limits = self.settings
        if state.idle_in_a_row >= limits.max_idle_turns:
            return (
                f"Stopped working toward the goal automatically: {state.idle_in_a_row} automatic "
                "turns in a row made no progress (no tool calls). Send a message to continue "
                "(kernel_plugins.goals.max_idle_turns)."
            )
        if state.automatic_in_a_row >= limits.max_automatic_turns:
            return (
                f"Stopped working toward the goal automatically after {state.automatic_in_a_row} "
                "turns without user input. Send a message to continue "
                "(kernel_plugins.goals.max_automatic_turns)."
            )
        return None

    async def _continue(self, goal: Goal) -> None:
        """Start an automatic turn toward ``goal`` if its thread is loaded and idle."""
        threads = self._threads()
        if not threads.is_loaded(goal.thread_id):
            return
        try:
            turn_id = await threads.start_turn(
                goal.thread_id, model_items=[continuation_message(goal)]
            )
        except RpcError as exc:  # a turn started meanwhile: it will account and continue
            log.debug("no automatic turn for thread %s: %s", goal.thread_id, exc.message)
            return
        self.running.setdefault(goal.thread_id, _Running()).automatic.add(turn_id)


def _described(goal: Goal) -> dict[str, Any]:
    described = goal.wire()
    if goal.token_budget is not None:
        described["remainingTokenBudget"] = max(0, goal.token_budget - goal.tokens_used)
    return described
