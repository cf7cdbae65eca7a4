"""What the threads family offers other families: ``kernel.services["threads"]``.

Tool families keep their own state per thread (background terminals...)
and serve methods about a thread (``thread/shellCommand``,
``thread/backgroundTerminals/*``). They reach threads only through this
object, never through this package::

    threads = kernel.services["threads"]
    threads.require_loaded(thread_id)            # -32600 thread not found: <id>
    threads.subscribers(thread_id)               # connections receiving its notifications
    await threads.run_in_turn(thread_id, connection, body)

``body(turn)`` receives the same ``turn`` object tools get (docs/threads.md,
"Tools"). Releasing a thread is announced by the ``threads_thread_released``
hook.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .checks import invalid_request
from .importing import import_thread

if TYPE_CHECKING:
    from kernel import Connection

    from .plugin import ThreadsPlugin

__all__ = ["ThreadsAccess"]

TurnBody = Callable[[Any], Coroutine[Any, Any, None]]


class ThreadsAccess:
    """Loaded threads as other families see them; see the module docstring."""

    def __init__(self, plugin: ThreadsPlugin) -> None:
        self._plugin = plugin
        self._side_tasks: set[asyncio.Task[None]] = set()

    def is_loaded(self, thread_id: str) -> bool:
        """Whether ``thread_id`` is loaded in this server."""
        return self._plugin.service.hub.get(thread_id) is not None

    def require_loaded(self, thread_id: str) -> None:
        """Raise ``-32600 thread not found: <id>`` unless the thread is loaded."""
        if not isinstance(thread_id, str) or not self.is_loaded(thread_id):
            raise invalid_request(f"thread not found: {thread_id}", "threadId")

    def subscribers(self, thread_id: str) -> list[Connection]:
        """The connections subscribed to ``thread_id`` now, in the order they subscribed.

        Empty when the thread is not loaded. For families that must reach a
        client of the thread other than the one that started the turn
        (``attestation`` asks another subscriber when the turn's own client
        cannot answer).
        """
        thread = self._plugin.service.hub.get(thread_id) if isinstance(thread_id, str) else None
        return [] if thread is None else list(thread.subscribers.values())

    def settings(self, thread_id: str) -> dict[str, Any]:
        """The thread's current settings (cwd, approval policy, sandbox...)."""
        self.require_loaded(thread_id)
        thread = self._plugin.service.hub.get(thread_id)
        assert thread is not None
        return thread.state.settings.to_record()

    async def start_turn(
        self,
        thread_id: str,
        user_input: list[dict[str, Any]] | None = None,
        *,
        model_items: list[dict[str, Any]] | None = None,
        connection: Connection | None = None,
    ) -> str:
        """Start a turn on an idle thread, as ``turn/start`` would; returns its id.

        ``user_input`` is ``turn/start``-style input (a ``userMessage``
        item); ``model_items`` are Responses API input items the model sees
        without an item (a continuation prompt). Raises ``-32600`` when the
        thread is not loaded or a turn is running.
        """
        self.require_loaded(thread_id)
        plugin = self._plugin
        thread = plugin.service.hub.get(thread_id)
        assert thread is not None
        if thread.active:  # running, or turns queued behind a compaction
            raise invalid_request(f"thread {thread_id} already has an active turn", "threadId")
        runner = await plugin.begin_turn(thread, connection)
        running = runner.run(list(user_input or []), None, model_items)
        runner.task = asyncio.get_running_loop().create_task(
            plugin.run_turn(thread, running), name=f"turn-{runner.turn_id}"
        )
        return str(runner.turn_id)

    async def describe(self, thread_id: str) -> dict[str, Any] | None:
        """``{"loaded", "ephemeral", "active"}`` of a loaded or stored thread; None if unknown.

        For families that keep per-thread state of their own (goals) and
        must tell "not found" from "not loaded".
        """
        if not isinstance(thread_id, str):
            return None
        thread = self._plugin.service.hub.get(thread_id)
        if thread is not None:
            return {"loaded": True, "ephemeral": thread.ephemeral, "active": thread.active}
        try:
            meta = await self._plugin.service.store.get(thread_id)
        except Exception:  # a malformed id is simply unknown
            return None
        if meta is None:
            return None
        return {"loaded": False, "ephemeral": False, "active": False}

    def steer(
        self,
        thread_id: str,
        user_input: list[dict[str, Any]] | None = None,
        *,
        model_items: list[dict[str, Any]] | None = None,
    ) -> bool:
        """Add input to the running turn (as ``turn/steer``); False when none takes input.

        A compaction or a user shell command takes no input: False then too.

        ``user_input`` is ``turn/steer``-style input (a ``userMessage`` item);
        ``model_items`` are Responses API input items only the model sees.
        """
        self.require_loaded(thread_id)
        thread = self._plugin.service.hub.get(thread_id)
        if thread is None or thread.runner is None:
            return False
        taken = True
        if user_input:
            taken = thread.runner.steer(list(user_input), None)
        if model_items and taken:
            taken = thread.runner.steer(list(model_items), None, model_only=True)
        return taken

    async def run_in_turn(
        self, thread_id: str, connection: Connection | None, body: TurnBody
    ) -> None:
        """Run ``body(turn)`` as a turn of its own, or inside the running turn.

        Returns once the work is scheduled: a method handler that calls this
        answers before the turn's notifications, as ``turn/start`` does. An
        idle thread gets a new turn (``turn/started`` ... ``turn/completed``)
        with no model request; when a turn is running, ``body`` runs inside
        it, beside its tool calls.
        """
        self.require_loaded(thread_id)
        plugin = self._plugin
        thread = plugin.service.hub.get(thread_id)
        assert thread is not None
        loop = asyncio.get_running_loop()
        if thread.runner is not None:
            task: asyncio.Task[None] = loop.create_task(
                body(thread.runner), name=f"side-{thread_id}"
            )
            self._side_tasks.add(task)
            task.add_done_callback(self._side_tasks.discard)
            return
        runner = await plugin.begin_turn(thread, connection)
        runner.task = loop.create_task(
            plugin.run_turn(thread, runner.run_body(body)), name=f"turn-{runner.turn_id}"
        )

    async def import_thread(
        self,
        *,
        cwd: str,
        turns: Sequence[Mapping[str, Any]],
        name: str | None = None,
        preview: str | None = None,
        created_at: int | None = None,
        updated_at: int | None = None,
        thread_id: str | None = None,
    ) -> tuple[str, bool]:
        """Store a finished conversation held elsewhere as a thread; ``(id, created)``.

        The thread lists, reads and resumes like any other (its turns,
        items, name, cwd and times as given); see :mod:`.importing` for the
        shape of ``turns``. With ``thread_id``, a thread already stored under
        that id is left alone and ``created`` is False.
        """
        return await import_thread(
            self._plugin.service,
            cwd=cwd,
            turns=turns,
            name=name,
            preview=preview,
            created_at=created_at,
            updated_at=updated_at,
            thread_id=thread_id,
        )
