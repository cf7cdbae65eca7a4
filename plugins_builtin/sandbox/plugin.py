"""The ``sandbox`` plugin: the sandbox service, ``permissionProfile/list``, ``configWarning``.

At configure it reads the reference's config keys (``sandbox_mode``,
``[sandbox_workspace_write]``, ``default_permissions``,
``[permissions.<id>]``) and publishes ``kernel.services["sandbox"]``; at
startup it tries bubblewrap once. When bubblewrap is missing or unusable it
says so in the log and, right after each client's ``initialize`` answer,
in a ``configWarning`` notification; restricted commands are then refused,
never run unsandboxed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import attrs

from kernel import Connection, Kernel, RequestContext, RpcError, hookimpl, method, notification
from kernel.config import Config
from kernel.rpc.errors import INVALID_REQUEST
from kernel.settings import SettingError

from .bwrap import find_bwrap, probe
from .errors import SandboxError
from .policy import Rules, WorkspaceWrite, rules_from_permission_profile
from .profiles import compile_profiles, deny_entries
from .service import SandboxService
from .types import (
    ConfigWarningNotification,
    PermissionProfileListParams,
    PermissionProfileListResponse,
    PermissionProfileSummary,
    WindowsSandboxSetupCompletedNotification,
    WindowsSandboxSetupStartParams,
)

__all__ = ["SandboxPlugin", "SandboxSettings"]

log = logging.getLogger("plugins.sandbox")

_MODE_PROFILES = {
    "read-only": ":read-only",
    "workspace-write": ":workspace",
    "danger-full-access": ":danger-full-access",
}
_INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap)"
_WINDOWS_MODES = {
    "elevated": "elevated Windows sandbox setup is only supported on Windows",
    "unelevated": "legacy Windows sandbox setup is only supported on Windows",
}


@attrs.frozen
class SandboxSettings:
    """``[kernel_plugins.sandbox]`` in config.toml."""

    # The bubblewrap executable; empty: `bwrap` on PATH.
    bwrap_path: str = ""

    def check(self, config: Config) -> None:
        """An explicit path must be absolute."""
        if self.bwrap_path and not self.bwrap_path.startswith("/"):
            raise SettingError("bwrap_path", "must be an absolute path")


def _default_rules(
    config: Config, profiles: dict[str, Rules], workspace: WorkspaceWrite
) -> tuple[Rules, str]:
    """The configured default policy: ``default_permissions``, else ``sandbox_mode``."""
    chosen = config.structure_value("default_permissions", str | None)
    key = "default_permissions"
    if chosen is None:
        mode = config.get("sandbox_mode")
        key = "sandbox_mode"
        if mode is not None and mode not in _MODE_PROFILES:
            raise config.error(key, f"expected one of {', '.join(_MODE_PROFILES)}, got {mode!r}")
        chosen = _MODE_PROFILES[mode or "read-only"]
    try:
        return rules_from_permission_profile(chosen, profiles, workspace, key), chosen
    except SandboxError as exc:
        raise config.error(key, exc.problem) from None


class SandboxPlugin:
    """Publishes the sandbox service; see the module docstring and docs/sandbox.md."""

    config_warning = notification("configWarning", ConfigWarningNotification)
    windows_setup_completed = notification(
        "windowsSandbox/setupCompleted", WindowsSandboxSetupCompletedNotification
    )

    def __init__(self) -> None:
        self.settings = SandboxSettings()
        self.service = SandboxService()
        self._tasks: set[asyncio.Task[Any]] = set()

    @hookimpl
    def kernel_settings(self) -> type[SandboxSettings]:
        return SandboxSettings

    @hookimpl
    def kernel_config_keys(self) -> dict[str, Any]:
        # sandbox_mode is declared by the threads family; it is read here too.
        return {
            "sandbox_workspace_write": WorkspaceWrite | None,
            "default_permissions": str | None,
            "permissions": dict[str, Any] | None,
        }

    @hookimpl
    def kernel_configure(self, kernel: Kernel, settings: SandboxSettings) -> None:
        self.settings = settings
        config = kernel.config
        workspace = config.structure_value("sandbox_workspace_write", WorkspaceWrite | None)
        workspace = workspace or WorkspaceWrite()
        tables = config.get("permissions") or {}
        try:
            profiles, warnings = compile_profiles(tables)
        except SandboxError as exc:
            raise config.error(exc.field, exc.problem) from None
        for warning in warnings:
            log.warning("config: %s", warning)
        default, default_id = _default_rules(config, profiles, workspace)
        denials, depth = deny_entries(default if default_id in profiles else None)
        allowed = config.managed("allowed_sandbox_modes")
        self.service = SandboxService(
            workspace=workspace,
            profiles=profiles,
            descriptions={name: (tables[name] or {}).get("description") for name in profiles},
            default=default,
            denials=denials,
            deny_depth=depth,
            allowed_modes=allowed if isinstance(allowed, list) else None,
        )
        kernel.services["sandbox"] = self.service
        log.debug("default sandbox: %s; %d deny-read entries", default_id, len(denials))

    @hookimpl
    async def kernel_startup(self, kernel: Kernel) -> None:
        service = self.service
        path = find_bwrap(self.settings.bwrap_path)
        if path is None:
            where = self.settings.bwrap_path or "bwrap on PATH"
            service.reason = f"bubblewrap was not found ({where}); {_INSTALL_HINT}"
        else:
            bwrap, problem = await asyncio.to_thread(probe, path)
            service.bwrap = bwrap
            service.reason = problem
        if service.bwrap is None:
            log.warning(
                "sandboxing is unavailable: %s. Commands that need a sandbox will be refused; "
                "commands without one run without PID-namespace containment.",
                service.reason,
            )
        else:
            log.info(
                "sandboxing with %s (mount /proc: %s)",
                service.bwrap.path,
                service.bwrap.mount_proc,
            )

    @hookimpl
    def kernel_initialize_response(self, connection: Connection, params: Any) -> None:
        if self.service.available:
            return None
        # The initialize answer is queued when this hook returns; the warning
        # follows it on the wire.
        note = ConfigWarningNotification(
            summary="Sandboxing is unavailable: commands that need a sandbox will be refused.",
            details=self.service.reason,
        )
        task = asyncio.get_running_loop().create_task(connection.notify(self.config_warning, note))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return None

    @method("windowsSandbox/setupStart")
    async def windows_setup_start(
        self, params: WindowsSandboxSetupStartParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """Linux: answers ``started`` and reports at once that setup only exists on Windows."""
        if params.mode not in _WINDOWS_MODES:
            raise RpcError(
                -32602,
                f"Invalid params: mode: unknown variant `{params.mode}`, expected `elevated` or "
                "`unelevated`",
            )
        if params.cwd is not None and not params.cwd.startswith("/"):
            raise RpcError(
                INVALID_REQUEST, f"Invalid request: cwd: not an absolute path: {params.cwd}"
            )
        note = WindowsSandboxSetupCompletedNotification(
            mode=params.mode, success=False, error=_WINDOWS_MODES[params.mode]
        )
        task = asyncio.get_running_loop().create_task(
            ctx.connection.notify(self.windows_setup_completed, note)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return {"started": True}

    @method("windowsSandbox/readiness")
    def windows_readiness(self, params: None, ctx: RequestContext) -> dict[str, Any]:
        """Linux: nothing to configure."""
        return {"status": "notConfigured"}

    @method("permissionProfile/list")
    def list_profiles(
        self, params: PermissionProfileListParams, ctx: RequestContext
    ) -> PermissionProfileListResponse:
        """Built-in profiles, then ``[permissions.<id>]`` sorted; an offset cursor."""
        profiles = self.service.list_profiles()
        total = len(profiles)
        if params.limit is not None and params.limit < 0:
            raise RpcError(-32602, "Invalid params: limit: must not be negative")
        start = 0
        if params.cursor is not None:
            if not params.cursor.isdigit():
                raise RpcError(INVALID_REQUEST, f"invalid cursor: {params.cursor}")
            start = int(params.cursor)
            if start > total:
                raise RpcError(
                    INVALID_REQUEST, f"cursor {start} exceeds total permission profiles {total}"
                )
        limit = max(1, total if params.limit is None else params.limit)
        end = min(total, start + limit)
        data = [PermissionProfileSummary(**profile) for profile in profiles[start:end]]
        return PermissionProfileListResponse(data, str(end) if end < total else None)
