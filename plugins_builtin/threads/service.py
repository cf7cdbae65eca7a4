"""Loading, creating and configuring threads: what the method handlers share.

Settings resolve as the reference resolves them: the request's value, else
config.toml (``model``, ``model_provider``, ``approval_policy``,
``sandbox_mode``, ``model_reasoning_effort``, ``model_reasoning_summary``,
``approvals_reviewer``, ``developer_instructions``), else the defaults below.
A resumed thread keeps its recorded model and reasoning effort unless the
request overrides them.
"""

from __future__ import annotations

import logging
import os
import typing
import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Literal

import attrs

from kernel import RpcError, __version__
from kernel.config import MANAGED, SESSION_FLAGS, SYSTEM, USER

from .checks import (
    REASONING_SUMMARIES,
    SANDBOX_MODES,
    check_approval_policy,
    check_dynamic_tools,
    check_enum,
    invalid_request,
)
from .hub import Hub, LoadedThread
from .state import Settings, ThreadState, now_s, replay
from .store.api import ThreadMeta, ThreadNotFound
from .tools import BUILTIN_TOOL_NAMES

if TYPE_CHECKING:
    from kernel import Connection, Kernel

__all__ = ["DEFAULT_MODEL", "DEFAULT_PROVIDER", "ThreadConfig", "ThreadService"]

log = logging.getLogger("plugins.threads")

DEFAULT_MODEL = "gpt-5.5"
DEFAULT_PROVIDER = "openai"
_HISTORY_CACHE = 8  # unloaded threads whose replayed history is kept
_REVIEWERS = ("user", "auto_review", "guardian_subagent")


@attrs.frozen
class ThreadConfig:
    """The reference's top-level config.toml keys this family reads."""

    model: str | None = None
    model_provider: str | None = None
    approval_policy: Any = None
    sandbox_mode: Literal["read-only", "workspace-write", "danger-full-access"] | None = None
    model_reasoning_effort: str | None = None
    model_reasoning_summary: Literal["auto", "concise", "detailed", "none"] | None = None
    approvals_reviewer: Literal["user", "auto_review", "guardian_subagent"] | None = None
    developer_instructions: str | None = None
    model_context_window: int | None = None
    model_auto_compact_token_limit: int | None = None

    @classmethod
    def keys(cls) -> dict[str, Any]:
        """What ``kernel_config_keys`` declares: each key with its type."""
        hints = typing.get_type_hints(cls)
        return {a.name: hints[a.name] for a in attrs.fields(cls)}


def _reviewer(value: str | None) -> str | None:
    # The legacy name is accepted everywhere and reported as auto_review.
    return "auto_review" if value == "guardian_subagent" else value


def _default_reviewer(config: Any, configured: str | None) -> str:
    """The reviewer when a request names none.

    ``approvals_reviewer``, else ``user``; the older switch
    ``features.guardian_approval = true`` means ``auto_review`` in the
    config layer that sets it, unless that layer or a later one also sets
    ``approvals_reviewer`` (layers, lowest first: system config.toml, the
    user's config.toml, ``-c``, requirements.toml).
    """
    features = config.get("features")
    if isinstance(features, dict) and features.get("guardian_approval") is True:
        legacy = _LAYERS.index(config.layer_of("features.guardian_approval"))
        if configured is None or legacy > _LAYERS.index(config.layer_of("approvals_reviewer")):
            return "auto_review"
    return _reviewer(configured) or "user"


_LAYERS = (None, SYSTEM, USER, SESSION_FLAGS, MANAGED)  # None: no layer sets the key


class ThreadService:
    """Threads of one kernel: the store, the loaded ones, and their settings."""

    def __init__(self, kernel: Kernel, store: Any, hub: Hub, config: ThreadConfig) -> None:
        self.kernel = kernel
        self.store = store
        self.hub = hub
        self.config = config
        self.default_reviewer = _default_reviewer(kernel.config, config.approvals_reviewer)
        # Replayed history of unloaded threads, by thread id: (store version, state).
        self._history: OrderedDict[str, tuple[str, ThreadState]] = OrderedDict()

    def configure(self, config: ThreadConfig) -> None:
        """Take new defaults from config.toml (new threads and turns use them)."""
        self.config = config
        self.default_reviewer = _default_reviewer(self.kernel.config, config.approvals_reviewer)

    # -- settings -------------------------------------------------------------------

    def resolve(self, params: Any, base: Settings | None = None) -> Settings:
        """Settings from request ``params`` over ``base`` (a resumed thread) over config."""
        config = self.config
        cwd = getattr(params, "cwd", None)
        if cwd is not None and not os.path.isabs(cwd):
            raise RpcError(
                -32602,
                f"Invalid params: cwd: expected an absolute path, got relative path {cwd!r}",
                {"problems": [{"path": "cwd", "message": "expected an absolute path"}]},
            )
        sandbox = getattr(params, "sandbox", None)
        check_enum(sandbox, SANDBOX_MODES, "sandbox")
        policy = getattr(params, "approval_policy", None)
        check_approval_policy(policy)
        reviewer = getattr(params, "approvals_reviewer", None)
        check_enum(reviewer, _REVIEWERS, "approvalsReviewer")
        environments = self._environments(getattr(params, "environments", None))
        if base is None:
            base = Settings(
                model=config.model or DEFAULT_MODEL,
                model_provider=config.model_provider or DEFAULT_PROVIDER,
                cwd=os.getcwd(),
                approval_policy=config.approval_policy or "on-request",
                approvals_reviewer=self.default_reviewer,
                sandbox=config.sandbox_mode or "read-only",
                reasoning_effort=config.model_reasoning_effort,
                reasoning_summary=config.model_reasoning_summary,
                developer_instructions=config.developer_instructions,
            )
        changes: dict[str, Any] = {}
        for name, value in (
            ("model", getattr(params, "model", None)),
            ("model_provider", getattr(params, "model_provider", None)),
            ("cwd", cwd),
            ("approval_policy", policy),
            ("approvals_reviewer", _reviewer(reviewer)),
            ("sandbox", sandbox),
            ("personality", getattr(params, "personality", None)),
            ("base_instructions", getattr(params, "base_instructions", None)),
            ("developer_instructions", getattr(params, "developer_instructions", None)),
            ("environments", environments),
        ):
            if value is not None:
                changes[name] = value
        return attrs.evolve(base, **changes)

    def _environments(self, value: Any) -> list[dict[str, Any]] | None:
        """``environments`` checked: ids the environments family knows, absolute cwds."""
        if value is None:
            return None
        known = self.kernel.services.get("environments")
        chosen = []
        for index, entry in enumerate(value):
            where = f"environments[{index}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("environmentId"), str):
                raise RpcError(-32602, f"Invalid params: {where}.environmentId: expected a string")
            cwd = entry.get("cwd")
            if not isinstance(cwd, str) or not os.path.isabs(cwd):
                raise RpcError(-32602, f"Invalid params: {where}.cwd: expected an absolute path")
            env_id = entry["environmentId"]
            if env_id != "local" and (known is None or not known.known(env_id)):
                raise RpcError(-32600, f"unknown environment id `{env_id}`")
            chosen.append(
                {
                    "environmentId": env_id,
                    "cwd": cwd,
                    "runtimeWorkspaceRoots": list(entry.get("runtimeWorkspaceRoots") or [cwd]),
                }
            )
        return chosen

    async def context_window(self, provider: str, model: str) -> int | None:
        """``model_context_window``, else what the provider's plugin knows of the model."""
        if self.config.model_context_window is not None:
            return self.config.model_context_window or None
        try:
            found = await self.kernel.plugins.first(
                "threads_model_metadata", provider_id=provider, model=model
            )
        except Exception:
            log.exception("threads_model_metadata failed for %s/%s", provider, model)
            return None
        window = found[1].get("contextWindow") if found and isinstance(found[1], dict) else None
        return window if isinstance(window, int) and window > 0 else None

    def compact_limit(self, window: int | None) -> int | None:
        """Tokens after which a turn compacts before its next request (None: never).

        ``model_auto_compact_token_limit`` (0: never), else 90% of the window.
        """
        limit = self.config.model_auto_compact_token_limit
        if limit is not None:
            return limit or None
        return int(window * 0.9) if window else None

    async def check_provider(self, provider: str) -> None:
        """Refuse a provider no plugin serves, saying what to configure."""
        try:
            found = await self.kernel.plugins.first("threads_model_provider", provider_id=provider)
        except Exception:
            log.exception("threads_model_provider failed")
            found = None
        if found is None:
            raise invalid_request(
                f"unknown model provider: {provider} (configure [model_providers.{provider}] in "
                "config.toml, and keep the models plugin enabled)",
                "modelProvider",
            )

    @staticmethod
    def check_summary(value: str | None) -> None:
        """A reasoning summary mode, if given."""
        check_enum(value, REASONING_SUMMARIES, "summary")

    @staticmethod
    def check_tools(tools: list[Any] | None) -> list[Any]:
        """The dynamic tools of ``thread/start``, checked (the reference's messages)."""
        if not tools:
            return []
        check_dynamic_tools(tools, BUILTIN_TOOL_NAMES)
        return list(tools)

    # -- threads ---------------------------------------------------------------------

    async def create(
        self,
        settings: Settings,
        conn: Connection,
        *,
        ephemeral: bool,
        dynamic_tools: list[Any],
        forked_from: str | None = None,
        name: str | None = None,
        preview: str = "",
        thread_source: str | None = None,
    ) -> LoadedThread:
        """A new thread, stored unless ephemeral, loaded and subscribed to by ``conn``."""
        now = now_s()
        info = conn.client_info
        meta = ThreadMeta(
            id=str(uuid.uuid4()),
            created_at=now,
            updated_at=now,
            cwd=settings.cwd,
            model=settings.model,
            model_provider=settings.model_provider,
            reasoning_effort=settings.reasoning_effort,
            name=name,
            preview=preview,
            source="vscode",
            thread_source=thread_source,
            forked_from_id=forked_from,
            cli_version=__version__,
            originator=info.name if info is not None else None,
        )
        if not ephemeral:
            meta = await self.store.create(meta)
        state = ThreadState(id=meta.id, settings=settings)
        thread = LoadedThread(meta, state, ephemeral=ephemeral, dynamic_tools=dynamic_tools)
        await self.persist(thread, [{"type": "settings", "settings": settings.to_record()}])
        if dynamic_tools:
            await self.persist(thread, [{"type": "dynamic_tools", "tools": dynamic_tools}])
        self.hub.add(thread)
        self.hub.subscribe(thread, conn)
        return thread

    async def persist(self, thread: LoadedThread, records: list[dict[str, Any]]) -> None:
        """Append to the rollout of a stored thread."""
        if not thread.ephemeral:
            await self.store.append(thread.id, records)

    async def load(self, thread_id: str) -> LoadedThread:
        """The loaded thread ``thread_id``, loading it from the store if needed."""
        thread = self.hub.get(thread_id)
        if thread is not None:
            return thread
        meta = await self.store.get(thread_id)
        if meta is None or meta.archived:
            raise invalid_request(f"no rollout found for thread id {thread_id}", "threadId")
        try:
            stored = await self.store.read(thread_id)
        except ThreadNotFound:
            raise invalid_request(
                f"no rollout found for thread id {thread_id}", "threadId"
            ) from None
        thread = self.from_records(stored.meta, stored.records)
        if self.hub.get(thread_id) is not None:  # loaded meanwhile
            return self.hub.get(thread_id)  # type: ignore[return-value]
        self.hub.add(thread)
        return thread

    def from_records(self, meta: Any, records: list[dict[str, Any]]) -> LoadedThread:
        """A loaded thread rebuilt from its stored records."""
        settings = Settings(
            model=meta.model or self.config.model or DEFAULT_MODEL,
            model_provider=meta.model_provider or DEFAULT_PROVIDER,
            cwd=meta.cwd,
            reasoning_effort=meta.reasoning_effort,
        )
        state = replay(ThreadState(id=meta.id, settings=settings), records)
        tools: list[Any] = []
        for record in records:
            if record.get("type") == "dynamic_tools":
                tools = list(record.get("tools") or [])
        return LoadedThread(meta, state, ephemeral=False, dynamic_tools=tools)

    async def stored_history(self, thread_id: str) -> ThreadState:
        """The replayed state of an unloaded thread, for reading only.

        Paging through a long thread would otherwise read and replay the whole
        rollout once per page; a replay is reused while the store reports the
        same version of the thread.
        """
        version = await self.store.version(thread_id)
        cached = self._history.get(thread_id)
        if cached is not None and version is not None and cached[0] == version:
            self._history.move_to_end(thread_id)
            return cached[1]
        stored = await self.store.read(thread_id)
        state = self.from_records(stored.meta, stored.records).state
        if version is not None:
            self._history[thread_id] = (version, state)
            self._history.move_to_end(thread_id)
            while len(self._history) > _HISTORY_CACHE:
                self._history.popitem(last=False)
        return state

    async def stored_meta(self, thread_id: str) -> Any:
        """Metadata of a loaded or stored (even archived) thread; -32600 if unknown."""
        thread = self.hub.get(thread_id)
        if thread is not None:
            return thread.meta
        meta = await self.store.get(thread_id)
        if meta is None:
            raise invalid_request(f"thread not loaded: {thread_id}", "threadId")
        return meta

    async def update_meta(self, thread: LoadedThread | None, thread_id: str, **changes: Any) -> Any:
        """Change stored metadata (and the loaded copy); returns the new metadata."""
        if thread is not None and thread.ephemeral:
            thread.meta = attrs.evolve(thread.meta, **changes)
            return thread.meta
        meta = await self.store.update(thread_id, **changes)
        if thread is not None:
            thread.meta = meta
        return meta
