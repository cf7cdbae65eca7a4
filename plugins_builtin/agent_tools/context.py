"""What the agent's tools share: settings, per-thread state, the turn's sandbox.

Per loaded thread the family keeps :class:`ThreadTools`: its background
terminals, what the user approved for the session, permissions granted per
turn, and each turn's cumulative diff. The threads family is reached only
through the ``turn`` object and ``kernel.services["threads"]``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

import attrs

from .approval_rules import ApprovalMemory
from .files import LOCAL_FILES, Files, RemoteFiles
from .terminals import Terminals
from .turn_diff import TurnDiffTracker

__all__ = ["AgentConfig", "Grants", "Placement", "ThreadTools", "ToolContext", "ToolUnavailable"]

_MODE_PROFILES = {
    "read-only": ":read-only",
    "workspace-write": ":workspace",
    "danger-full-access": ":danger-full-access",
}
_FULL_ACCESS_POLICIES = ("dangerFullAccess", "externalSandbox")


@attrs.frozen
class AgentConfig:
    """The reference's config.toml keys this family reads."""

    features: dict[str, Any] = attrs.Factory(dict)
    allow_login_shell: bool = True
    background_terminal_max_timeout: int = 300_000  # ms: the longest empty poll

    def feature(self, name: str) -> bool:
        return bool(self.features.get(name, False))


class ToolUnavailable(Exception):
    """The turn's environment cannot be used; the message is for the model."""


@attrs.frozen
class Placement:
    """Where a turn's commands and edits happen: an executor, its files, its cwd."""

    environment_id: str
    cwd: str
    executor: Any  # ``start(argv, **kw)``: kernel.services["process"] or a remote environment
    files: Files
    remote: bool


class Grants:
    """Permissions granted through ``request_permissions``, accumulated."""

    def __init__(self) -> None:
        self.read: list[str] = []
        self.write: list[str] = []
        self.network = False

    def add(self, granted: Mapping[str, Any]) -> None:
        fs = granted.get("fileSystem") or {}
        for access, into in (("read", self.read), ("write", self.write)):
            for path in fs.get(access) or []:
                if path not in into:
                    into.append(path)
        network = granted.get("network") or {}
        self.network = self.network or network.get("enabled") is True

    def merged(self, other: Grants | None) -> Grants:
        both = Grants()
        for source in (self, other):
            if source is not None:
                both.add(source.profile() or {})
        return both

    def profile(self) -> dict[str, Any] | None:
        """An ``AdditionalPermissionProfile``, or None when nothing was granted."""
        if not (self.read or self.write or self.network):
            return None
        return {
            "fileSystem": {"read": list(self.read), "write": list(self.write)},
            "network": {"enabled": self.network},
        }


class ThreadTools:
    """The family's state for one loaded thread."""

    def __init__(self) -> None:
        self.terminals = Terminals()
        self.memory = ApprovalMemory()
        self.session_grants = Grants()
        self.turn_grants: dict[str, Grants] = {}
        self.diffs: dict[str, TurnDiffTracker] = {}

    def grants(self, turn_id: str) -> Grants:
        return self.session_grants.merged(self.turn_grants.get(turn_id))

    def diff(self, turn_id: str, cwd: str, files: Files = LOCAL_FILES) -> TurnDiffTracker:
        tracker = self.diffs.get(turn_id)
        if tracker is None:
            self.diffs = {turn_id: TurnDiffTracker(cwd, files)}  # only the running turn's
            tracker = self.diffs[turn_id]
        return tracker


class ToolContext:
    """Shared by every tool of the family: kernel, config, per-thread state."""

    def __init__(self, kernel: Any, config: AgentConfig) -> None:
        self.kernel = kernel
        self.config = config
        self.threads: dict[str, ThreadTools] = {}
        self.patch_tool: Any = None  # exec_command hands heredoc patches to it

    def of(self, thread_id: str) -> ThreadTools:
        tools = self.threads.get(thread_id)
        if tools is None:
            tools = self.threads[thread_id] = ThreadTools()
        return tools

    @property
    def processes(self) -> Any:
        runner = self.kernel.services.get("process")
        if runner is None:
            raise RuntimeError("the process plugin is not loaded: commands cannot run")
        return runner

    # -- where the turn works ------------------------------------------------------------

    @staticmethod
    def has_environment(turn: Any) -> bool:
        """False when the turn selected no environment at all (``environments: []``)."""
        return turn.settings.get("environments") != []

    def placement(self, turn: Any) -> Placement:
        """The turn's primary environment (the first selected; default: this machine)."""
        selected = turn.settings.get("environments")
        if selected is None:
            return Placement("local", turn.cwd, self.processes, LOCAL_FILES, False)
        if not selected:
            raise ToolUnavailable("this turn has no environment to run commands in")
        primary = selected[0]
        env_id, cwd = primary["environmentId"], primary["cwd"]
        if env_id == "local":
            return Placement("local", cwd, self.processes, LOCAL_FILES, False)
        registry = self.kernel.services.get("environments")
        remote = registry.get(env_id) if registry is not None else None
        if remote is None:
            raise ToolUnavailable(f"environment `{env_id}` is not available on this server")
        loop = asyncio.get_running_loop()
        return Placement(env_id, cwd, remote, RemoteFiles(remote, loop), True)

    # -- the turn's sandbox ------------------------------------------------------------

    @staticmethod
    def full_access(settings: Mapping[str, Any]) -> bool:
        policy = settings.get("sandbox_policy")
        if isinstance(policy, Mapping):
            return policy.get("type") in _FULL_ACCESS_POLICIES
        return settings.get("sandbox") == "danger-full-access"

    def sandbox(self, turn: Any, sandboxed: bool) -> dict[str, Any]:
        """Keyword arguments of ``kernel.services["process"].start`` for this turn's sandbox."""
        if not sandboxed:
            return {}
        settings = turn.settings
        policy = settings.get("sandbox_policy")
        if isinstance(policy, Mapping):
            chosen: dict[str, Any] = {"sandbox_policy": dict(policy)}
        else:
            mode = settings.get("sandbox") or "read-only"
            chosen = {"permission_profile": _MODE_PROFILES.get(mode, ":read-only")}
        extra = self.of(turn.thread_id).grants(turn.turn_id).profile()
        if extra is not None:
            chosen["additional_permissions"] = extra
        return chosen

    def writable_roots(self, turn: Any, cwd: str) -> list[str]:
        """Where the turn's sandbox lets commands write (patches there need no approval)."""
        settings = turn.settings
        if self.full_access(settings):
            return ["/"]
        policy = settings.get("sandbox_policy")
        roots: list[str] = []
        workspace = isinstance(policy, Mapping) and policy.get("type") == "workspaceWrite"
        if workspace or (policy is None and settings.get("sandbox") == "workspace-write"):
            spec = policy if isinstance(policy, Mapping) else {}
            roots.append(cwd)
            roots.extend(spec.get("writableRoots") or [])
            if not spec.get("excludeSlashTmp"):
                roots.append("/tmp")
            tmpdir = os.environ.get("TMPDIR")
            if tmpdir and not spec.get("excludeTmpdirEnvVar"):
                roots.append(tmpdir)
            sandbox = self.kernel.services.get("sandbox")
            if sandbox is not None:
                roots.extend(sandbox.writable_roots)
        roots.extend(self.of(turn.thread_id).grants(turn.turn_id).write)
        return [os.path.realpath(r) for r in roots]
