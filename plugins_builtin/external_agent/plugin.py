"""The ``external_agent`` plugin: ``externalAgentConfig/*``, importing another agent's setup.

The other agent is Claude Code, read from ``$HOME`` (:mod:`.source`).
``detect`` lists what could be imported (:mod:`.detect`, sessions from
:mod:`.sessions`, plugins from :mod:`.marketplaces`); ``import`` imports
the client's selection: every item but sessions and git-hosted plugin
marketplaces before the answer (:mod:`.apply`, serialized), those in the
background (:mod:`.plugin_import`, :mod:`.session_import`), then
``externalAgentConfig/import/progress`` per item and one
``externalAgentConfig/import/completed``, always, even for an empty
selection. Finished imports are kept in ``state.sqlite`` (:mod:`.history`)
for ``import/readHistories``; ``import/recordHistory`` adds one a client
made elsewhere. See docs/external_agent.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import attrs

from kernel import Kernel, RequestContext, hookimpl, method

from .apply import ItemImporter
from .checks import check_counts, check_cwds, check_items, check_source
from .detect import detect_scope
from .history import HistoryStore
from .marketplaces import plugin_view
from .memory import FEATURE_KEY
from .model import PLUGINS, SESSIONS, ItemResult, detected_item, merge_results
from .params import (
    ExternalAgentConfigDetectParams,
    ExternalAgentConfigImportHistoryRecordParams,
    ExternalAgentConfigImportParams,
    ExternalAgentConfigMigrationItem,
    SessionMigration,
)
from .plugin_import import DeferredPlugins
from .session_import import SessionImporter, threads_service
from .sessions import LoadedSession, connector_names, find_sessions, session_source_path
from .source import Scope, external_home, find_repo_root

__all__ = ["ExternalAgentPlugin"]

log = logging.getLogger("plugins.external_agent")

PROGRESS = "externalAgentConfig/import/progress"
COMPLETED = "externalAgentConfig/import/completed"
DEFAULT_MAX_SESSIONS = 50
DEFAULT_MAX_AGE_DAYS = 30
_STOP_WAIT = 10.0  # seconds shutdown waits for a running import to reach a stopping point


class ExternalAgentPlugin:
    """``externalAgentConfig/*``; see the module docstring."""

    def __init__(self) -> None:
        self.kernel: Kernel | None = None
        self.history: HistoryStore | None = None
        self.sessions: SessionImporter | None = None
        self.items: ItemImporter | None = None
        self._sync_lock = asyncio.Lock()
        self._jobs: set[asyncio.Task[None]] = set()

    # -- hooks ---------------------------------------------------------------------------

    @hookimpl
    def kernel_configure(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.history = HistoryStore(kernel)
        self.sessions = SessionImporter(kernel, self.history)
        self.items = ItemImporter(kernel, self)

    @hookimpl
    def kernel_register(self, registrar: Any) -> None:
        registrar.notification(PROGRESS)
        registrar.notification(COMPLETED)

    @hookimpl
    async def kernel_startup(self, kernel: Kernel) -> None:
        assert self.history is not None
        await self.history.open()

    @hookimpl
    async def kernel_shutdown(self, kernel: Kernel) -> None:
        assert self.sessions is not None and self.history is not None
        self.sessions.stopping = True
        jobs = list(self._jobs)
        if jobs:
            _, pending = await asyncio.wait(jobs, timeout=_STOP_WAIT)
            for job in pending:
                job.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        with contextlib.suppress(Exception):
            await self.history.close()

    # -- helpers -------------------------------------------------------------------------

    def _memory_enabled(self) -> bool:
        """``[features] external_agent_memory_import`` (off unless set to true)."""
        assert self.kernel is not None
        return self.kernel.config.get(FEATURE_KEY) is True

    async def _blocking(self, ctx: RequestContext, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` in the kernel's blocking threads, charged to the caller."""
        assert self.kernel is not None
        return await self.kernel.blocking.run(ctx.connection, fn, *args, timeout=120)

    async def _scope(self, ctx: RequestContext, claude_home: Path, cwd: str | None) -> Scope | None:
        """The scope of an item or a detection cwd; None when the directory is missing."""
        assert self.kernel is not None
        home = Path(self.kernel.home)
        if not cwd:
            return Scope(claude_home, home)
        root = await self._blocking(ctx, find_repo_root, cwd)
        return None if root is None else Scope(claude_home, home, root)

    # -- detect --------------------------------------------------------------------------

    @method("externalAgentConfig/detect")
    async def detect(
        self, params: ExternalAgentConfigDetectParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """What the other agent has that this server could import now; writes nothing."""
        check_source(params.migration_source)
        check_cwds(params.cwds)
        check_counts(params.max_sessions, params.max_session_age_days)
        assert self.kernel is not None
        claude_home = external_home()
        memory = self._memory_enabled()
        items: list[dict[str, Any]] = []
        connectors: list[dict[str, Any]] = []
        scopes: list[Scope] = []
        if params.include_home:
            scopes.append(Scope(claude_home, Path(self.kernel.home)))
        for cwd in params.cwds or ():
            scope = await self._scope(ctx, claude_home, cwd)
            if scope is not None and scope not in scopes:
                scopes.append(scope)
        view = await plugin_view(self.kernel.services.get("marketplace"), ctx.connection)
        for scope in scopes:
            items += await self._blocking(
                ctx, lambda s=scope: detect_scope(s, memory=memory, plugins=view)
            )
        if params.include_home and threads_service(self.kernel) is not None:
            found = await self._recent_sessions(ctx, claude_home, params)
            if found:
                items.append(_sessions_item(claude_home, found))
                connectors = await self._detected_connectors(ctx, claude_home, found)
        return {"items": items, "connectors": connectors}

    async def _recent_sessions(
        self, ctx: RequestContext, claude_home: Path, params: ExternalAgentConfigDetectParams
    ) -> list[LoadedSession]:
        """Sessions to offer: recent, not imported in this content."""
        assert self.history is not None
        imported = await self.history.imported_sessions()
        days = params.max_session_age_days
        max_age = (DEFAULT_MAX_AGE_DAYS if days is None else days) * 86400.0
        count = params.max_sessions
        count = DEFAULT_MAX_SESSIONS if count is None else count
        return list(
            await self._blocking(
                ctx, find_sessions, claude_home, imported, max_age, count, time.time()
            )
        )

    async def _detected_connectors(
        self, ctx: RequestContext, claude_home: Path, found: list[LoadedSession]
    ) -> list[dict[str, Any]]:
        """Remote connectors the offered sessions used, with counts."""
        keyed = [(s.path, Path(s.path).stem, s.attributions) for s in found if s.attributions]
        if not keyed:
            return []
        per_session = await self._blocking(ctx, connector_names, keyed, claude_home.parent)
        counts: dict[str, dict[str, Any]] = {}
        for names in per_session.values():
            for name in names:
                entry = counts.setdefault(
                    name.lower(),
                    {"name": name, "sessionCount": 0, "source": "remoteMcpServersConfig"},
                )
                entry["sessionCount"] += 1
        return [counts[key] for key in sorted(counts)]

    # -- import --------------------------------------------------------------------------

    @method("externalAgentConfig/import")
    async def import_(
        self, params: ExternalAgentConfigImportParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """Import the selection: answers ``importId`` once all but sessions and git is done."""
        check_source(params.migration_source)
        check_items(params.migration_items, self._memory_enabled())
        assert self.kernel is not None and self.items is not None
        import_id = str(uuid.uuid4())
        claude_home = external_home()
        results: list[ItemResult] = []
        deferred: list[DeferredPlugins] = []
        session_items = [i for i in params.migration_items if i.item_type == SESSIONS]
        async with self._sync_lock:
            for item in params.migration_items:
                if item.item_type == SESSIONS:
                    continue
                scope = await self._scope(ctx, claude_home, item.cwd)
                if scope is None:
                    missing = ItemResult(item.item_type, item.cwd)
                    missing.failure(
                        "import_request_failed",
                        f"{item.cwd} does not exist",
                        error_type="external_agent_config_import_error",
                    )
                    results.append(missing)
                    continue
                results.append(await self.items.run(item, scope, deferred))
        selected: list[tuple[str, SessionMigration]] = []
        if session_items:
            validation, selected = await self._blocking(
                ctx, _validate_sessions, claude_home, session_items
            )
            results.insert(0, validation)
        job = asyncio.get_running_loop().create_task(
            self._finish(
                import_id,
                params.provider_id,
                params.source,
                results,
                _Later(deferred, selected),
                claude_home,
            ),
            name=f"external-agent-import-{import_id}",
        )
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        return {"importId": import_id}

    async def _finish(
        self,
        import_id: str,
        provider_id: str | None,
        source: str | None,
        results: list[ItemResult],
        later: _Later,
        claude_home: Path,
    ) -> None:
        """Progress per item, git plugin marketplaces, sessions, then the completion."""
        assert self.kernel is not None and self.sessions is not None
        assert self.items is not None
        done = list(results)
        sessions = later.sessions
        try:
            for result in results:
                await self._progress(import_id, result)
            for plugins in later.plugins:
                plugin_result = ItemResult(PLUGINS, plugins.cwd)
                done.append(plugin_result)  # kept even when the shutdown cancels the rest
                await self.items.plugins.run_deferred(plugins, plugin_result, self._sync_lock)
                await self._progress(import_id, plugin_result)
            if sessions:
                session_result = await self.sessions.run(sessions, claude_home.parent)
                done.append(session_result)
                await self._progress(import_id, session_result)
        except Exception:
            log.exception("external agent import %s failed", import_id)
        finally:
            merged = merge_results(done)
            if done:
                await self._record(import_id, provider_id, merged)
            log.info(
                "external agent import %s finished (source %s): %s",
                import_id,
                source,
                ", ".join(
                    f"{r['itemType']} {len(r['successes'])} ok {len(r['failures'])} failed"
                    for r in merged
                ),
            )
            with contextlib.suppress(Exception):
                await self.kernel.broadcast(
                    COMPLETED, {"importId": import_id, "itemTypeResults": merged}
                )

    async def _progress(self, import_id: str, result: ItemResult) -> None:
        """Tell every client how one item went."""
        assert self.kernel is not None
        await self.kernel.broadcast(
            PROGRESS, {"importId": import_id, "itemTypeResults": [result.payload()]}
        )

    async def _record(
        self, import_id: str, provider_id: str | None, merged: list[dict[str, Any]]
    ) -> int | None:
        """Keep the finished import in the history (failures logged, not raised)."""
        assert self.history is not None
        successes = [s for r in merged for s in r["successes"]]
        failures = [f for r in merged for f in r["failures"]]
        try:
            return await self.history.record(import_id, provider_id, successes, failures)
        except Exception:
            log.exception("recording external agent import %s failed", import_id)
            return None

    # -- history -------------------------------------------------------------------------

    @method("externalAgentConfig/import/recordHistory")
    async def record_history(
        self, params: ExternalAgentConfigImportHistoryRecordParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """Keep an import the client made elsewhere; answers its new ``importId``."""
        assert self.history is not None
        import_id = str(uuid.uuid4())
        successes = []
        failures = []
        for result in params.item_type_results:
            for success in result.successes:
                successes.append(
                    {
                        "itemType": success.item_type,
                        "cwd": success.cwd,
                        "source": success.source,
                        "target": success.target,
                        "title": success.title,
                    }
                )
            for failure in result.failures:
                failures.append(
                    {
                        "itemType": failure.item_type,
                        "failureStage": failure.failure_stage,
                        "message": failure.message,
                        "cwd": failure.cwd,
                        "source": failure.source,
                        "errorType": failure.error_type,
                        "subErrorType": failure.sub_error_type,
                    }
                )
        await self.history.record(import_id, params.provider_id, successes, failures)
        return {"importId": import_id}

    @method("externalAgentConfig/import/readHistories")
    async def read_histories(self, params: None, ctx: RequestContext) -> dict[str, Any]:
        """Every recorded import, newest first, and the connectors imported sessions used."""
        assert self.history is not None
        return {
            "data": await self.history.histories(),
            "connectors": await self.history.imported_connectors(),
        }


@attrs.frozen
class _Later:
    """What an import does after its answer: git plugin marketplaces, then sessions."""

    plugins: list[DeferredPlugins]
    sessions: list[tuple[str, SessionMigration]]


def _sessions_item(claude_home: Path, found: list[LoadedSession]) -> dict[str, Any]:
    """The SESSIONS item of a detect answer."""
    sessions = [{"path": s.path, "cwd": s.cwd, "title": s.title} for s in found]
    description = f"Migrate recent sessions from {claude_home / 'projects'}"
    return detected_item(SESSIONS, description, None, sessions=sessions)


def _validate_sessions(
    claude_home: Path, items: list[ExternalAgentConfigMigrationItem]
) -> tuple[ItemResult, list[tuple[str, SessionMigration]]]:
    """Only the other agent's own session files, each once (by real path)."""
    result = ItemResult(SESSIONS)
    selected: list[tuple[str, SessionMigration]] = []
    seen: set[str] = set()
    named = [s for item in items if item.details is not None for s in item.details.sessions]
    if not named:
        result.failure(
            "session_missing",
            "no session was named (details.sessions is empty)",
            error_type="session_not_detected",
        )
    for session in named:
        real = session_source_path(claude_home, session.path)
        if real is None:
            result.failure(
                "session_missing",
                f"external agent session was not detected for import: {session.path}",
                source=session.path,
                error_type="session_missing",
                sub_error_type="session_not_detected",
            )
        elif real not in seen:
            seen.add(real)
            selected.append((real, session))
    return result, selected
