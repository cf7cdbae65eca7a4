"""Sessions becoming threads, in the background, one import at a time.

Imports of sessions are serialized (one lock per kernel), and each
session's thread id is derived from its real path and content
(:func:`.sessions.thread_id_for`), so two identical requests — at once or
one after the other, even across a crash — never make two threads: the
second finds the thread stored and reports nothing new, as the reference
does for a session already imported.

Sessions are read and parsed in the kernel's blocking threads, a batch at
a time in parallel, then written one by one through
``kernel.services["threads"].import_thread``; after each batch the
imported sessions (and the connectors they used) are recorded in the
history tables, so detection stops offering them. Once the server is
shutting down (``kernel.stop_reason`` is set, before any family shuts
down) the import stops between two sessions; the ones not reached are
reported as cancelled and are offered again by the next detection.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from kernel import Kernel

from .history import HistoryStore
from .model import SESSIONS, ItemResult
from .params import SessionMigration
from .sessions import LoadedSession, connector_names, load_session, thread_id_for

__all__ = ["SessionImporter", "threads_service"]

log = logging.getLogger("plugins.external_agent")

BATCH = 8  # sessions read in parallel before they are written


def threads_service(kernel: Kernel) -> Any:
    """The threads family's published service, if it can import threads."""
    threads = kernel.services.get("threads")
    return threads if threads is not None and hasattr(threads, "import_thread") else None


class SessionImporter:
    """Turns selected sessions into threads; see the module docstring."""

    def __init__(self, kernel: Kernel, history: HistoryStore) -> None:
        """Bind to the kernel (threads service, blocking threads) and the history."""
        self.kernel = kernel
        self.history = history
        self.lock = asyncio.Lock()
        self.stopping = False

    async def run(
        self, sessions: list[tuple[str, SessionMigration]], user_home: Path
    ) -> ItemResult:
        """Import ``(real path, requested session)`` pairs; never raises."""
        result = ItemResult(SESSIONS)
        async with self.lock:
            threads = threads_service(self.kernel)
            if threads is None:
                for real, _ in sessions:
                    result.failure(
                        "session_persist",
                        "sessions become threads, and the threads family is not loaded",
                        source=real,
                    )
                return result
            for start in range(0, len(sessions), BATCH):
                batch = sessions[start : start + BATCH]
                if self.should_stop():
                    self._cancelled([real for real, _ in sessions[start:]], result)
                    break
                try:
                    await self._batch(threads, batch, user_home, result)
                except Exception:  # one bad batch must not lose the others' results
                    log.exception("importing a batch of sessions failed")
                    for real, _ in batch:
                        result.failure(
                            "session_persist",
                            "internal error while importing (see the server log)",
                            source=real,
                        )
        return result

    def should_stop(self) -> bool:
        """The server is shutting down: stop before the next session."""
        return self.stopping or self.kernel.stop_reason is not None

    @staticmethod
    def _cancelled(paths: list[str], result: ItemResult) -> None:
        """Report sessions the shutdown kept from being imported."""
        for real in paths:
            result.failure(
                "session_cancelled",
                "the server shut down before this session was imported",
                source=real,
            )

    async def _load(self, real: str) -> LoadedSession | BaseException | None:
        """Read one session in a blocking thread; the error instead of raising."""
        try:
            return await self.kernel.blocking.run(self, load_session, real, timeout=120)
        except (OSError, UnicodeDecodeError, TimeoutError) as exc:
            return exc

    async def _batch(
        self,
        threads: Any,
        batch: list[tuple[str, SessionMigration]],
        user_home: Path,
        result: ItemResult,
    ) -> None:
        """Read a batch in parallel, write its threads, record them."""
        loaded = await asyncio.gather(*(self._load(real) for real, _ in batch))
        ready: list[tuple[str, LoadedSession, dict[str, Any]]] = []
        for (real, requested), session in zip(batch, loaded, strict=True):
            call = _thread_call(real, requested, session, result)
            if call is not None:
                assert isinstance(session, LoadedSession)
                ready.append((real, session, call))
        if self.should_stop():
            self._cancelled([real for real, _, _ in ready], result)
            return
        # Written concurrently: the store keeps its own order, the hops overlap.
        outcomes = await asyncio.gather(
            *(threads.import_thread(**call) for _, _, call in ready), return_exceptions=True
        )
        ledger: list[tuple[str, str, str]] = []
        attributed: list[tuple[str, str, frozenset[str]]] = []
        for (real, session, call), outcome in zip(ready, outcomes, strict=True):
            thread_id = call["thread_id"]
            if isinstance(outcome, BaseException):
                log.error(
                    "importing session %s as thread %s failed", real, thread_id, exc_info=outcome
                )
                result.failure(
                    "session_persist", f"failed to import session: {outcome}", source=real
                )
                continue
            ledger.append((session.path, session.sha256, thread_id))
            if outcome[1]:  # created now, not found stored
                result.success(real, thread_id, title=call["name"], cwd=session.cwd)
                stem = os.path.splitext(os.path.basename(real))[0]
                attributed.append((thread_id, stem, session.attributions))
        connectors: dict[str, list[str]] = {}
        if attributed:
            try:
                connectors = await self.kernel.blocking.run(
                    self, connector_names, attributed, user_home, timeout=120
                )
            except (OSError, TimeoutError):  # connectors are a hint: the import stands
                log.warning("reading the other agent's session manifests failed", exc_info=True)
        try:
            await self.history.record_sessions(ledger, connectors)
        except Exception as exc:
            log.exception("recording imported sessions failed")
            result.failure("session_ledger_update", f"recording the import failed: {exc}")


def _thread_call(
    real: str,
    requested: SessionMigration,
    session: LoadedSession | BaseException | None,
    result: ItemResult,
) -> dict[str, Any] | None:
    """The ``import_thread`` arguments for one session, or None (failure recorded)."""
    if isinstance(session, BaseException):
        result.failure("session_prepare", f"cannot read {real}: {session}", source=real)
        return None
    if session is None:
        result.failure(
            "session_prepare",
            f"{real} holds no conversation to import (no cwd or no message)",
            source=real,
            error_type="empty_session",
        )
        return None
    turns = session.turns()
    if not turns:
        result.failure(
            "session_prepare",
            f"{real} has no user message, so no turn to import",
            source=real,
            error_type="empty_session",
        )
        return None
    times = [m.at for m in session.messages if m.at is not None]
    return {
        "cwd": session.cwd,
        "turns": turns,
        "name": requested.title or session.title,
        "preview": session.preview(),
        "created_at": int(min(times)) if times else None,
        "updated_at": int(max(times)) if times else None,
        "thread_id": thread_id_for(session.path, session.sha256),
    }
