"""Approvals waiting for a thread's history: which hook adds them, and when they are dropped.

Unit tests of the guardian plugin with stand-ins for the kernel's threads
service and a turn (no model, no sandbox needed).
"""

from __future__ import annotations

from typing import Any

from plugins_builtin.guardian.plugin import GuardianPlugin

ACTION = {"type": "command", "source": "shell", "command": "rm -r build", "cwd": "/"}


class Threads:
    """The threads service as the guardian sees it: which threads are loaded."""

    def __init__(self, *loaded: str) -> None:
        self.loaded = set(loaded)

    def is_loaded(self, thread_id: str) -> bool:
        return thread_id in self.loaded


class Kernel:
    """Just ``services``."""

    def __init__(self, threads: Threads) -> None:
        self.services: dict[str, Any] = {"threads": threads}


class Turn:
    """A turn of ``thread_id`` recording what joins its history."""

    def __init__(self, thread_id: str) -> None:
        self.thread_id = thread_id
        self.history: list[dict[str, Any]] = []

    async def add_to_history(self, items: list[dict[str, Any]]) -> None:
        self.history.extend(items)


def guardian(threads: Threads) -> GuardianPlugin:
    plugin = GuardianPlugin()
    plugin.kernel = Kernel(threads)  # type: ignore[assignment]
    return plugin


def approve(plugin: GuardianPlugin, thread_id: str) -> None:
    event = {"id": f"review-{thread_id}", "status": "denied", "action": ACTION}
    plugin.overrides.approve(thread_id, event)


async def test_waiting_approvals_join_the_history_as_turn_context():
    """threads_context (the hook for add_to_history) flushes them; no empty tool offer."""
    plugin = guardian(Threads("t1"))
    assert not hasattr(plugin, "threads_tools")
    approve(plugin, "t1")
    turn = Turn("t1")
    assert await plugin.threads_context(turn) is None
    (message,) = turn.history
    assert message["role"] == "developer" and "rm -r build" in message["content"][0]["text"]
    assert plugin.overrides.pending == {}


async def test_an_unloaded_threads_approvals_are_dropped():
    threads = Threads("t1", "t2")
    plugin = guardian(threads)
    approve(plugin, "t1")
    approve(plugin, "t2")
    # The last subscriber left, the thread is still loaded: its approval still waits.
    plugin.threads_thread_released("t1")
    assert set(plugin.overrides.pending) == {"t1", "t2"}
    threads.loaded.discard("t1")
    plugin.threads_thread_released("t1")
    assert set(plugin.overrides.pending) == {"t2"}
    plugin.threads_thread_released("t1")  # released again: nothing left to drop
    turn = Turn("t2")
    await plugin.threads_turn_finished(turn)
    assert len(turn.history) == 1 and plugin.overrides.pending == {}
