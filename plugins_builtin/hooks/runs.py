"""Running the hooks of one event in a turn, with ``hook/started`` and ``hook/completed``.

Every runnable hook whose matcher selects the event runs at once (they run
concurrently); ``hook/started`` goes out for each in display order before
they start, ``hook/completed`` for each in display order when all have
finished, and their outcomes fold together (any block blocks, the first
reason wins; contexts keep their order). ``async: true`` hooks run in the
background and never change the turn.

A command runs as ``$SHELL -lc <command>`` (``/bin/sh`` without ``SHELL``)
in the turn's cwd through the process family's runner
(``kernel.services["process"]``): its own process group, a timeout, its
output capped, killed at shutdown. The event is written to its stdin as JSON.
A hook that hangs or crashes costs its timeout at most, never the turn.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from .discovery import Hook
from .events import Event, matcher_matches
from .outcome import Outcome, interpret

__all__ = ["Folded", "HookRunner"]

log = logging.getLogger("plugins.hooks")

_OUTPUT_CAP = 1 << 20


class Folded:
    """The outcomes of one event's hooks, folded."""

    def __init__(self, runs: Sequence[tuple[str, Outcome]]) -> None:
        self.runs = list(runs)
        blocked = [(run_id, o) for run_id, o in runs if o.status == "blocked"]
        self.blocked = bool(blocked)
        self.block_reason = blocked[0][1].block_reason if blocked else None
        self.block_runs = blocked
        stopped = [o for _, o in runs if o.status == "stopped"]
        self.stopped = bool(stopped)
        self.stop_reason = stopped[0].stop_reason if stopped else None
        self.context = [text for _, o in runs for text in o.context]
        self.allow = any(o.allow for _, o in runs)


class HookRunner:
    """Runs hooks for one kernel; ``notify(method, params)`` reaches the thread's clients."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self._background: set[asyncio.Task[Any]] = set()

    async def close(self) -> None:
        """Cancel background (``async``) hooks still running (their processes die with them)."""
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def run_event(
        self,
        turn: Any,
        event: Event,
        hooks: Sequence[Hook],
        subject: str | None,
        payload: Mapping[str, Any],
        suffix: str | None = None,
    ) -> Folded:
        """Run the hooks of ``event`` that select ``subject`` (a tool name...); fold them."""
        chosen = [
            h
            for h in hooks
            if h.definition.event == event
            and h.runnable
            and (subject is None or matcher_matches(h.definition.matcher, subject))
        ]
        if not chosen:
            return Folded([])
        sync = [h for h in chosen if not h.definition.handler.run_async]
        for hook in chosen:
            if hook.definition.handler.run_async:
                task = asyncio.get_running_loop().create_task(
                    self._one(turn, event, hook, payload, suffix, announce=True)
                )
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        started = time.time()
        for hook in sync:
            await self._notify(turn, "hook/started", event, hook, suffix, None, int(started), None)
        results = await asyncio.gather(
            *(self._one(turn, event, h, payload, suffix, announce=False) for h in sync)
        )
        for hook, (outcome, begun, duration) in zip(sync, results, strict=True):
            await self._notify(
                turn, "hook/completed", event, hook, suffix, outcome, begun, duration
            )
        return Folded(
            [(self.run_id(event, h, suffix), r[0]) for h, r in zip(sync, results, strict=True)]
        )

    @staticmethod
    def run_id(event: Event, hook: Hook, suffix: str | None) -> str:
        """``<event label>:<display order>:<source path>[:<call id>]``."""
        run_id = f"{event.label}:{hook.display_order}:{hook.source_path}"
        return f"{run_id}:{suffix}" if suffix else run_id

    async def _one(
        self,
        turn: Any,
        event: Event,
        hook: Hook,
        payload: Mapping[str, Any],
        suffix: str | None,
        announce: bool,
    ) -> tuple[Outcome, int, int]:
        begun = int(time.time())
        if announce:
            await self._notify(turn, "hook/started", event, hook, suffix, None, begun, None)
        clock = time.monotonic()
        try:
            outcome = await self._execute(turn, event, hook, payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("hook %s failed to run", hook.key)
            outcome = Outcome().fail(f"hook could not run: {type(exc).__name__}: {exc}")
        duration = int((time.monotonic() - clock) * 1000)
        if announce:
            outcome.block_reason = outcome.stop_reason = None  # async hooks never steer the turn
            await self._notify(
                turn, "hook/completed", event, hook, suffix, outcome, begun, duration
            )
        return outcome, begun, duration

    async def _execute(
        self, turn: Any, event: Event, hook: Hook, payload: Mapping[str, Any]
    ) -> Outcome:
        handler = hook.definition.handler
        if handler.type != "command":
            return Outcome().fail(f"{handler.type} hooks are not run by this server")
        runner = self.kernel.services.get("process")
        if runner is None:
            return Outcome().fail("hooks need the process plugin, which is not loaded")
        shell = os.environ.get("SHELL") or "/bin/sh"
        env: dict[str, str | None] = {}
        if hook.plugin is not None:
            env.update(
                PLUGIN_ROOT=hook.plugin.root,
                CLAUDE_PLUGIN_ROOT=hook.plugin.root,
                PLUGIN_DATA=hook.plugin.data_dir,
                CLAUDE_PLUGIN_DATA=hook.plugin.data_dir,
            )
        handle = await runner.start(
            [shell, "-lc", handler.command],
            cwd=turn.cwd,
            env=env,
            stdin=True,
            output_cap=_OUTPUT_CAP,
            timeout=handler.timeout,
        )
        try:
            try:
                await handle.write(orjson.dumps(dict(payload)), close=True)
            except (OSError, ValueError):
                pass  # the command does not read its stdin: fine
            result = await handle.wait()
        finally:
            handle.kill()
        return interpret(
            event,
            result["exitCode"],
            bytes(result["stdout"] or b"").decode("utf-8", "replace"),
            bytes(result["stderr"] or b"").decode("utf-8", "replace"),
            bool(result["timedOut"]),
            handler.timeout,
        )

    @staticmethod
    async def _notify(
        turn: Any,
        method: str,
        event: Event,
        hook: Hook,
        suffix: str | None,
        outcome: Outcome | None,
        started: int,
        duration: int | None,
    ) -> None:
        handler = hook.definition.handler
        run = {
            "id": HookRunner.run_id(event, hook, suffix),
            "eventName": event.wire,
            "handlerType": handler.wire_type,
            "executionMode": "async" if handler.run_async else "sync",
            "scope": event.scope,
            "sourcePath": hook.source_path,
            "source": hook.source,
            "displayOrder": hook.display_order,
            "status": "running" if outcome is None else outcome.status,
            "statusMessage": handler.status_message,
            "startedAt": started,
            "completedAt": None if outcome is None else int(time.time()),
            "durationMs": duration,
            "entries": [] if outcome is None else list(outcome.entries),
        }
        await turn.notify(method, {"threadId": turn.thread_id, "turnId": turn.turn_id, "run": run})
