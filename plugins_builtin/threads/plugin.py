"""The ``threads`` plugin: hooks, settings, and the declarations of its wire surface.

Methods live in :mod:`.thread_methods` and :mod:`.turn_methods`; turns run
in :mod:`.engine`; the store is :mod:`.store`. The family publishes the
hooks of :mod:`.hookspecs` (model providers, tools) for other plugins.
Payloads are the reference protocol's JSON, built as dicts and checked
against its schema by the tests, so the notifications below are declared
without Python types.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import attrs
import pluggy

from kernel import Connection, Kernel, SettingError, hookimpl, server_request
from kernel.config import Config

from .hookspecs import ThreadsSpec
from .hub import Hub, LoadedThread
from .published import ThreadsAccess
from .service import ThreadConfig, ThreadService
from .store import LocalThreadStore
from .thread_methods import ThreadMethods
from .turn_methods import TurnMethods

__all__ = ["ThreadsPlugin", "ThreadsSettings"]

log = logging.getLogger("plugins.threads")

_NOTIFICATIONS = (
    "thread/started",
    "thread/status/changed",
    "thread/archived",
    "thread/unarchived",
    "thread/closed",
    "thread/name/updated",
    "thread/settings/updated",
    "thread/tokenUsage/updated",
    "thread/compacted",
    "thread/readState/changed",
    "turn/started",
    "turn/completed",
    "item/started",
    "item/completed",
    "item/agentMessage/delta",
    "item/reasoning/summaryTextDelta",
    "item/reasoning/summaryPartAdded",
    "item/reasoning/textDelta",
    "serverRequest/resolved",
    "error",
    "warning",
    "deprecationNotice",
)


@attrs.frozen
class ThreadsSettings:
    """``[kernel_plugins.threads]`` in config.toml."""

    # A loaded thread with no subscriber and no turn is unloaded after this long.
    idle_unload_seconds: float = 1800.0
    # A turn that keeps asking for tools is failed after this many model requests.
    max_model_requests_per_turn: int = 200
    # fsync each rollout at the end of every turn (a power loss keeps whole turns).
    durable_rollouts: bool = True

    def check(self, config: Config) -> None:
        """Ranges."""
        if self.idle_unload_seconds <= 0:
            raise SettingError("idle_unload_seconds", "must be positive")
        if self.max_model_requests_per_turn < 1:
            raise SettingError("max_model_requests_per_turn", "must be at least 1")


class ThreadsPlugin(ThreadMethods, TurnMethods):
    """Threads that persist, and turns that run against a model."""

    tool_call = server_request("item/tool/call", experimental=False)

    def __init__(self) -> None:
        self.settings = ThreadsSettings()
        self.max_model_requests = self.settings.max_model_requests_per_turn
        self.kernel: Kernel | None = None
        self.service: ThreadService = None  # type: ignore[assignment]
        self._releases: set[asyncio.Task[Any]] = set()

    # -- hooks ----------------------------------------------------------------------

    @hookimpl
    def kernel_add_hookspecs(self, pluginmanager: pluggy.PluginManager) -> None:
        pluginmanager.add_hookspecs(ThreadsSpec)

    @hookimpl
    def kernel_config_keys(self) -> dict[str, Any]:
        return ThreadConfig.keys()

    @hookimpl
    def config_features(self) -> list[dict[str, Any]]:
        # The older switch for approvals_reviewer = "auto_review".
        return [{"name": "guardian_approval", "stage": "deprecated", "defaultEnabled": False}]

    @staticmethod
    def _thread_config(kernel: Kernel) -> ThreadConfig:
        values = {
            key: kernel.config.structure_value(key, tp) for key, tp in ThreadConfig.keys().items()
        }
        return ThreadConfig(**values)

    @hookimpl
    def kernel_config_changed(self, kernel: Kernel, changed: Sequence[str]) -> None:
        """New threads and turns take the new defaults (``model``, ``approval_policy``...)."""
        keys = {*ThreadConfig.keys(), "features"}  # features.guardian_approval: the reviewer
        if any(path.split(".", 1)[0] in keys for path in changed):
            self.service.configure(self._thread_config(kernel))

    @hookimpl
    def kernel_configure(self, kernel: Kernel, settings: ThreadsSettings) -> None:
        self.settings = settings
        self.max_model_requests = settings.max_model_requests_per_turn
        self.kernel = kernel
        store = LocalThreadStore(kernel.home, durable=settings.durable_rollouts)
        hub = Hub(settings.idle_unload_seconds, self._unloaded, self._released)
        self.service = ThreadService(kernel, store, hub, self._thread_config(kernel))
        # Other families (agent_tools) reach loaded threads through this.
        kernel.services["threads"] = ThreadsAccess(self)

    @hookimpl
    def kernel_register(self, registrar: Any) -> None:
        for name in _NOTIFICATIONS:
            registrar.notification(name)

    @hookimpl
    async def kernel_startup(self, kernel: Kernel) -> None:
        await self.service.store.open()

    @hookimpl
    async def kernel_shutdown(self, kernel: Kernel) -> None:
        runners = [t.runner for t in self.service.hub.threads.values() if t.runner is not None]
        for runner in runners:
            runner.interrupt()
        tasks = [r.task for r in runners if r.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        if self._releases:
            await asyncio.wait(list(self._releases), timeout=5.0)
        with contextlib.suppress(Exception):
            await self.service.store.close()

    @hookimpl
    def kernel_connection_closed(self, connection: Connection) -> None:
        if self.service is not None:
            self.service.hub.drop_connection(connection)

    def _released(self, thread: LoadedThread) -> None:
        """Tell other families the thread has nobody left (they stop its terminals)."""
        kernel = self.kernel
        if kernel is None:
            return
        task = asyncio.get_running_loop().create_task(
            kernel.plugins.acall("threads_thread_released", thread_id=thread.id)
        )
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _unloaded(self, thread: LoadedThread) -> None:
        assert self.kernel is not None
        status = {"threadId": thread.id, "status": {"type": "notLoaded"}}
        await self.kernel.broadcast("thread/status/changed", status)
        await self.kernel.broadcast("thread/closed", {"threadId": thread.id})
