"""Running agent commands: their output, their ``commandExecution`` item, background terminals.

An :class:`ExecSession` is one ``exec_command`` process. Its output is kept
twice: ``pending`` (what the model has not seen yet, drained by each
``exec_command`` / ``write_stdin`` answer) and the transcript (the item's
``aggregatedOutput``, head and tail kept past 1 MiB). Deltas go to clients
as ``item/commandExecution/outputDelta`` as they come. When the process
ends, a watcher completes the item, whenever that is: during the call that
started it, during a later poll, or after its turn ended (with the original
turn id).

A command still running when its call yields becomes a **background
terminal** of its thread (:class:`Terminals`): the model polls or writes to
it by session id, clients list and stop them. They outlive turns and
``turn/interrupt``; releasing the thread (last subscriber gone, unload) and
server shutdown kill them, and their items complete ``failed`` with exit
code -1.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import random
import time
from collections import OrderedDict
from typing import Any

__all__ = ["MAX_TERMINALS", "ExecSession", "Terminals", "Transcript"]

log = logging.getLogger("plugins.agent_tools")

MAX_TERMINALS = 64  # background terminals kept per thread, as the reference
_PROTECTED_RECENT = 8  # the most recently used are never pruned
_DELTA_BYTES = 8192
_TRANSCRIPT_CAP = 1 << 20


class Transcript:
    """Everything a command printed, with the middle dropped past the cap."""

    def __init__(self, cap: int = _TRANSCRIPT_CAP) -> None:
        self.cap = cap
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        half = self.cap // 2
        room = half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > half:
                cut = len(self.tail) - half
                self.dropped += cut
                del self.tail[:cut]

    def text(self) -> str | None:
        """The transcript as text (None when nothing was printed)."""
        if not self.head and not self.tail:
            return None
        middle = f"\n... {self.dropped} bytes omitted ...\n".encode() if self.dropped else b""
        return bytes(self.head + middle + self.tail).decode("utf-8", errors="replace")


class ExecSession:
    """One ``exec_command`` process, its item and its output; see the module docstring."""

    def __init__(
        self, *, session_id: int, item: dict[str, Any], turn: Any, tty: bool, raw_command: str
    ) -> None:
        self.session_id = session_id
        self.item = item
        self.turn = turn
        self.tty = tty
        self.raw_command = raw_command
        self.handle: Any = None
        self.pending = bytearray()
        self.transcript = Transcript()
        self.exit_code: int | None = None
        self.killed = False
        self.done = asyncio.Event()
        self.started = time.monotonic()
        self.last_used = time.monotonic()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._watcher: asyncio.Task[None] | None = None

    async def on_output(self, stream: str, chunk: bytes, cap_reached: bool) -> None:
        """The process runner's output callback: keep it, and stream it to clients."""
        self.pending += chunk
        self.transcript.add(chunk)
        for start in range(0, len(chunk), _DELTA_BYTES):
            text = self._decoder.decode(chunk[start : start + _DELTA_BYTES])
            if text:
                await self.turn.notify(
                    "item/commandExecution/outputDelta",
                    {
                        "threadId": self.turn.thread_id,
                        "turnId": self.turn.turn_id,
                        "itemId": self.item["id"],
                        "delta": text,
                    },
                )

    def watch(self, handle: Any) -> None:
        """Start watching ``handle``: the item completes when the process ends."""
        self.handle = handle
        self._watcher = asyncio.get_running_loop().create_task(
            self._watch(), name=f"exec-{self.item['id']}"
        )

    async def _watch(self) -> None:
        try:
            outcome = await self.handle.wait()
            code = int(outcome["exitCode"])
        except Exception:
            log.exception("waiting for command %s failed", self.item["id"])
            code = -1
        self.exit_code = -1 if self.killed else code
        try:
            self.item.update(
                status="completed" if self.exit_code == 0 else "failed",
                aggregatedOutput=self.transcript.text(),
                exitCode=self.exit_code,
                durationMs=int((time.monotonic() - self.started) * 1000),
            )
            await self.turn.complete_item(self.item)
        except Exception:
            log.exception("completing command item %s failed", self.item["id"])
        finally:
            self.done.set()

    async def collect(self, timeout: float) -> bytes:
        """Wait up to ``timeout`` seconds or until the process ended; the unseen output."""
        self.last_used = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.done.wait(), timeout)
        out = bytes(self.pending)
        self.pending.clear()
        return out

    async def kill(self) -> None:
        """Kill the process and wait until its item is completed."""
        if not self.done.is_set():
            self.killed = True
            if self.handle is not None:
                self.handle.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.done.wait(), 10)

    def describe(self) -> dict[str, Any]:
        """A ``ThreadBackgroundTerminal``."""
        return {
            "itemId": self.item["id"],
            "processId": str(self.session_id),
            "command": self.raw_command,
            "cwd": self.item["cwd"],
            "osPid": self.handle.pid if self.handle is not None else None,
            "cpuPercent": None,
            "rssKb": None,
        }


class Terminals:
    """The background terminals of one thread, by session id, least recently used first."""

    def __init__(self) -> None:
        self.sessions: OrderedDict[int, ExecSession] = OrderedDict()
        self._reserved: set[int] = set()

    def new_id(self) -> int:
        """A random id in 1000..99999 no live terminal of this thread has."""
        while True:
            candidate = random.randint(1000, 99999)
            if candidate not in self.sessions and candidate not in self._reserved:
                self._reserved.add(candidate)
                return candidate

    def release_id(self, session_id: int) -> None:
        self._reserved.discard(session_id)

    def get(self, session_id: int) -> ExecSession | None:
        session = self.sessions.get(session_id)
        if session is not None:
            self.sessions.move_to_end(session_id)
        return session

    def store(self, session: ExecSession) -> ExecSession | None:
        """Keep ``session``; returns a terminal pruned to make room, to be killed."""
        self._reserved.discard(session.session_id)
        self.sessions[session.session_id] = session
        self.sessions.move_to_end(session.session_id)
        if len(self.sessions) <= MAX_TERMINALS:
            return None
        candidates = list(self.sessions.values())[:-_PROTECTED_RECENT]
        victim = next((s for s in candidates if s.done.is_set()), candidates[0])
        del self.sessions[victim.session_id]
        return victim

    def remove(self, session_id: int) -> ExecSession | None:
        return self.sessions.pop(session_id, None)

    def running(self) -> list[ExecSession]:
        """Terminals whose process is still running, in start order."""
        return sorted(
            (s for s in self.sessions.values() if not s.done.is_set()), key=lambda s: s.started
        )

    async def kill_all(self) -> int:
        """Kill every terminal; how many there were."""
        sessions = list(self.sessions.values())
        self.sessions.clear()
        await asyncio.gather(*(s.kill() for s in sessions))
        return len(sessions)
