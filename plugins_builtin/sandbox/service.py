"""The sandbox as a service other families use: ``kernel.services["sandbox"]``.

It turns a request's ``sandboxPolicy`` or ``permissionProfile`` into the
command line that enforces it, so ``command/exec`` and the agent's
``exec_command`` sandbox commands the same way. Families reach it by name
and never import this package::

    sandbox = kernel.services.get("sandbox")
    argv = sandbox.wrap(["make"], cwd="/abs/project",
                        sandbox_policy={"type": "workspaceWrite"})
    # -> ["/usr/bin/bwrap", "--ro-bind", "/", "/", ..., "--", "make"]

``wrap`` raises ``sandbox.SandboxError`` (a malformed policy; ``.field``
names the wire field) and ``sandbox.SandboxUnavailable`` (a restricted
command while bubblewrap is missing or unusable: the command must not
run). Without a policy (both None) the command runs with full access, but
still contained in its own PID namespace when bubblewrap works.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from .bwrap import Bwrap, contain_args, sandbox_args
from .errors import SandboxError, SandboxUnavailable
from .paths import Plan, resolve
from .policy import (
    BUILT_IN_PROFILES,
    Entry,
    Rules,
    WorkspaceWrite,
    rules_from_permission_profile,
    rules_from_sandbox_policy,
)

__all__ = ["SandboxService"]

_MODES = {
    ":read-only": "read-only",
    ":workspace": "workspace-write",
    ":danger-full-access": "danger-full-access",
}
_FULL_ACCESS = Rules("disabled", label="none")


class SandboxService:
    """Policies to command lines; see the module docstring."""

    SandboxError = SandboxError
    SandboxUnavailable = SandboxUnavailable

    def __init__(
        self,
        *,
        workspace: WorkspaceWrite | None = None,
        profiles: Mapping[str, Rules] | None = None,
        descriptions: Mapping[str, str | None] | None = None,
        default: Rules | None = None,
        denials: Sequence[Entry] = (),
        deny_depth: int | None = None,
        allowed_modes: Sequence[str] | None = None,
    ) -> None:
        self.workspace = workspace or WorkspaceWrite()
        self.profiles = dict(profiles or {})
        self.descriptions = dict(descriptions or {})
        self.default = default or rules_from_permission_profile(
            ":read-only", self.profiles, self.workspace
        )
        self.denials = tuple(denials)
        self.deny_depth = deny_depth
        self.allowed_modes = None if allowed_modes is None else tuple(allowed_modes)
        self.bwrap: Bwrap | None = None
        self.reason = "bubblewrap has not been probed yet"

    # -- state -------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """True when bubblewrap works here: restricted commands can run."""
        return self.bwrap is not None

    @property
    def writable_roots(self) -> list[str]:
        """``[sandbox_workspace_write] writable_roots`` (added to every workspace-write)."""
        return list(self.workspace.writable_roots)

    @property
    def deny_read(self) -> tuple[Entry, ...]:
        """Configured deny entries, applied to every sandboxed command."""
        return self.denials

    # -- policies -----------------------------------------------------------------------

    def rules(
        self,
        *,
        sandbox_policy: Mapping[str, Any] | None = None,
        permission_profile: Any = None,
        default_to_config: bool = False,
        additional_permissions: Mapping[str, Any] | None = None,
    ) -> Rules:
        """The normal form of a request's policy (the config default, or full access).

        ``additional_permissions`` (an ``AdditionalPermissionProfile``:
        ``{"fileSystem": {"read": [...], "write": [...]}, "network":
        {"enabled": true}}``) widens a sandbox: what a user granted through
        ``request_permissions``.
        """
        if sandbox_policy is not None and permission_profile is not None:
            raise SandboxError("sandboxPolicy", "cannot be set together with permissionProfile")
        if sandbox_policy is not None:
            rules = rules_from_sandbox_policy(sandbox_policy, self.workspace)
        elif permission_profile is not None:
            rules = rules_from_permission_profile(permission_profile, self.profiles, self.workspace)
        else:
            rules = self.default if default_to_config else _FULL_ACCESS
        if additional_permissions:
            rules = rules.with_additions(additional_permissions)
        return rules.with_denials(self.denials, self.deny_depth)

    def is_restricted(
        self,
        *,
        sandbox_policy: Mapping[str, Any] | None = None,
        permission_profile: Any = None,
        default_to_config: bool = False,
        additional_permissions: Mapping[str, Any] | None = None,
    ) -> bool:
        """Whether the request needs a sandbox (and so refuses to run without one)."""
        return not self.rules(
            sandbox_policy=sandbox_policy,
            permission_profile=permission_profile,
            default_to_config=default_to_config,
            additional_permissions=additional_permissions,
        ).full_access

    def plan(
        self,
        *,
        cwd: str,
        sandbox_policy: Mapping[str, Any] | None = None,
        permission_profile: Any = None,
        env: Mapping[str, str] | None = None,
        default_to_config: bool = False,
        additional_permissions: Mapping[str, Any] | None = None,
    ) -> Plan:
        """What the sandbox of one command looks like (mounts, network)."""
        rules = self.rules(
            sandbox_policy=sandbox_policy,
            permission_profile=permission_profile,
            default_to_config=default_to_config,
            additional_permissions=additional_permissions,
        )
        return resolve(rules, cwd, os.environ if env is None else env)

    def wrap(
        self,
        argv: Sequence[str],
        *,
        cwd: str,
        sandbox_policy: Mapping[str, Any] | None = None,
        permission_profile: Any = None,
        contain: bool = True,
        tty: bool = False,
        env: Mapping[str, str] | None = None,
        default_to_config: bool = False,
        additional_permissions: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """The command line that runs ``argv`` in ``cwd`` under the given policy.

        At most one of ``sandbox_policy`` (a ``SandboxPolicy`` object) and
        ``permission_profile`` (a ``PermissionProfile`` object or a profile
        id) may be given; with neither, the command gets full access, or the
        configured default (``sandbox_mode`` / ``default_permissions``,
        read-only when unset) with ``default_to_config=True``. Configured
        deny-read entries apply to every sandboxed command. ``contain``
        runs a full-access command in its own PID namespace too (when
        bubblewrap works; otherwise ``argv`` comes back unchanged). ``tty``
        keeps the command's terminal as its controlling terminal. ``env``
        is the command's environment (``$TMPDIR`` for ``:tmpdir``).
        ``additional_permissions`` widens the sandbox (see :meth:`rules`).
        """
        plan = self.plan(
            cwd=cwd,
            sandbox_policy=sandbox_policy,
            permission_profile=permission_profile,
            env=env,
            default_to_config=default_to_config,
            additional_permissions=additional_permissions,
        )
        if plan.enforce:
            if self.bwrap is None:
                raise SandboxUnavailable(self.reason)
            return sandbox_args(self.bwrap, plan, argv, cwd, tty=tty)
        if contain and self.bwrap is not None:
            return contain_args(self.bwrap, argv, cwd, tty=tty)
        return list(argv)

    # -- profiles ------------------------------------------------------------------------

    def list_profiles(self) -> list[dict[str, Any]]:
        """``permissionProfile/list`` data: built-ins, then configured ids sorted."""
        data = []
        for name in BUILT_IN_PROFILES:
            mode = _MODES[name]
            allowed = self.allowed_modes is None or mode in self.allowed_modes
            data.append({"id": name, "description": None, "allowed": allowed})
        for name in sorted(self.profiles):
            data.append({"id": name, "description": self.descriptions.get(name), "allowed": True})
        return data
