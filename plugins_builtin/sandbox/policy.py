"""Sandbox policies and permission profiles, parsed into one normal form.

Three request shapes reach the sandbox, as the reference has them:

* a ``SandboxPolicy`` (``{"type": "readOnly", "networkAccess": false}`` ...);
* a ``PermissionProfile`` tagged union: ``{"type": "managed", "fileSystem":
  {"type": "restricted", "entries": [...], "globScanMaxDepth": 3},
  "network": "restricted"}``, ``{"type": "disabled"}``, ``{"type":
  "external", "network": "enabled"}`` (snake_case member names are accepted
  too, as the reference's core serialises them);
* a permission profile id (the 0.169.0 wire type of ``permissionProfile``
  is a string): ``:read-only``, ``:workspace``, ``:danger-full-access`` or a
  ``[permissions.<id>]`` table of config.toml.

All become :class:`Rules`: filesystem entries (a special path, an absolute
path or a glob, each with ``read``, ``write`` or ``deny``), the network
switch, and whether the sandbox is ours to build at all (``managed``) or
not (``disabled``, ``external``). Nothing here touches the filesystem;
:mod:`.paths` resolves entries for one command.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .errors import SandboxError

__all__ = [
    "BUILT_IN_PROFILES",
    "Entry",
    "Rules",
    "WorkspaceWrite",
    "has_glob",
    "parse_access",
    "rules_from_permission_profile",
    "rules_from_sandbox_policy",
    "workspace_write_rules",
]

BUILT_IN_PROFILES = (":read-only", ":workspace", ":danger-full-access")
_SPECIAL_KINDS = ("root", "minimal", "project_roots", "tmpdir", "slash_tmp")
_NETWORK = ("restricted", "enabled")


@attrs.frozen
class Entry:
    """One filesystem rule: ``kind`` is ``path``, ``glob`` or a special path.

    ``value`` is the absolute path, the glob pattern (relative patterns are
    resolved against the command's cwd), or the ``project_roots`` subpath
    (``""`` for the roots themselves). ``access`` is ``read``, ``write`` or
    ``deny``.
    """

    kind: str
    value: str
    access: str


@attrs.frozen
class Rules:
    """A policy in normal form; see the module docstring."""

    mode: str  # "managed": we build the sandbox; "disabled" / "external": we do not
    entries: tuple[Entry, ...] = ()
    network: bool = True
    glob_scan_max_depth: int | None = None
    label: str = ""  # what it came from, for logs and errors

    @property
    def full_access(self) -> bool:
        """True when nothing is restricted: no sandbox is needed."""
        if self.mode != "managed":
            return True
        return self.network and all(e.kind == "root" and e.access == "write" for e in self.entries)

    def with_additions(self, extra: Mapping[str, Any]) -> Rules:
        """These rules widened by an ``AdditionalPermissionProfile`` (granted permissions)."""
        if self.mode != "managed":
            return self
        if not isinstance(extra, Mapping):
            raise SandboxError("additionalPermissions", "expected an object")
        entries = list(self.entries)
        fs = extra.get("fileSystem") or {}
        for access in ("read", "write"):
            paths = (fs.get(access) or []) if isinstance(fs, Mapping) else []
            for index, path in enumerate(paths):
                if not isinstance(path, str) or not os.path.isabs(path):
                    raise SandboxError(
                        f"additionalPermissions.fileSystem.{access}[{index}]",
                        "expected an absolute path",
                    )
                entries.append(Entry("path", os.path.normpath(path), access))
        network = extra.get("network") or {}
        enabled = isinstance(network, Mapping) and network.get("enabled") is True
        return attrs.evolve(self, entries=tuple(entries), network=self.network or enabled)

    def with_denials(self, denials: Sequence[Entry], depth: int | None) -> Rules:
        """These rules plus configured deny entries (they survive any override)."""
        if self.mode != "managed" or not denials:
            return self
        return attrs.evolve(
            self,
            entries=(*self.entries, *denials),
            glob_scan_max_depth=self.glob_scan_max_depth or depth,
        )


@attrs.frozen
class WorkspaceWrite:
    """``[sandbox_workspace_write]`` in config.toml (the reference's keys)."""

    writable_roots: list[str] = attrs.field(factory=list)
    network_access: bool = False
    exclude_tmpdir_env_var: bool = False
    exclude_slash_tmp: bool = False


def has_glob(text: str) -> bool:
    """Whether ``text`` is a glob pattern rather than a literal path."""
    return any(ch in text for ch in "*?[")


def parse_access(value: Any, field: str) -> str:
    """``read``/``write``/``deny`` (``none`` is the reference's older name for deny)."""
    if value == "none":
        return "deny"
    if value not in ("read", "write", "deny"):
        raise SandboxError(field, f"expected one of read, write, deny, got {value!r}")
    return str(value)


def workspace_write_rules(
    *,
    writable_roots: Sequence[str],
    network: bool,
    exclude_tmpdir_env_var: bool,
    exclude_slash_tmp: bool,
    configured: WorkspaceWrite,
    label: str,
) -> Rules:
    """Read everywhere; write the project roots, /tmp, $TMPDIR and the listed roots."""
    entries = [Entry("root", "", "read"), Entry("project_roots", "", "write")]
    if not exclude_slash_tmp:
        entries.append(Entry("slash_tmp", "", "write"))
    if not exclude_tmpdir_env_var:
        entries.append(Entry("tmpdir", "", "write"))
    for root in [*writable_roots, *configured.writable_roots]:
        entries.append(Entry("path", os.path.expanduser(root), "write"))
    return Rules("managed", tuple(entries), network, None, label)


def _flag(policy: Mapping[str, Any], key: str, field: str) -> bool:
    value = policy.get(key, False)
    if type(value) is not bool:
        raise SandboxError(f"{field}.{key}", "expected a boolean")
    return value


def rules_from_sandbox_policy(
    policy: Mapping[str, Any], configured: WorkspaceWrite, field: str = "sandboxPolicy"
) -> Rules:
    """The reference's ``SandboxPolicy`` union, by its ``type`` tag."""
    if not isinstance(policy, Mapping):
        raise SandboxError(field, "expected an object")
    kind = policy.get("type")
    allowed = {
        "dangerFullAccess": set(),
        "readOnly": {"networkAccess"},
        "externalSandbox": {"networkAccess"},
        "workspaceWrite": {
            "networkAccess",
            "writableRoots",
            "excludeTmpdirEnvVar",
            "excludeSlashTmp",
        },
    }
    if kind not in allowed:
        raise SandboxError(
            f"{field}.type",
            f"expected one of {', '.join(repr(k) for k in allowed)}, got {kind!r}",
        )
    for key in policy:
        if key != "type" and key not in allowed[kind]:
            raise SandboxError(f"{field}.{key}", f"unknown field for type {kind!r}")
    if kind == "dangerFullAccess":
        return Rules("disabled", label="dangerFullAccess")
    if kind == "externalSandbox":
        network = policy.get("networkAccess", "restricted")
        if network not in _NETWORK:
            raise SandboxError(f"{field}.networkAccess", "expected one of restricted, enabled")
        return Rules("external", network=network == "enabled", label="externalSandbox")
    network_on = _flag(policy, "networkAccess", field)
    if kind == "readOnly":
        return Rules("managed", (Entry("root", "", "read"),), network_on, None, "readOnly")
    roots = policy.get("writableRoots", [])
    if type(roots) is not list:
        raise SandboxError(f"{field}.writableRoots", "expected an array of absolute paths")
    for index, root in enumerate(roots):
        if type(root) is not str or not os.path.isabs(root):
            raise SandboxError(f"{field}.writableRoots[{index}]", "expected an absolute path")
    return workspace_write_rules(
        writable_roots=roots,
        network=network_on,
        exclude_tmpdir_env_var=_flag(policy, "excludeTmpdirEnvVar", field),
        exclude_slash_tmp=_flag(policy, "excludeSlashTmp", field),
        configured=configured,
        label="workspaceWrite",
    )


def _member(value: Mapping[str, Any], camel: str, snake: str) -> Any:
    return value[camel] if camel in value else value.get(snake)


def _network(value: Any, field: str) -> bool:
    if value is None:
        return False
    if isinstance(value, Mapping):  # {"enabled": bool}, as profile overlays spell it
        enabled = value.get("enabled")
        if enabled is not None and type(enabled) is not bool:
            raise SandboxError(f"{field}.enabled", "expected a boolean")
        return bool(enabled)
    if value not in _NETWORK:
        raise SandboxError(field, "expected one of restricted, enabled")
    return value == "enabled"


def _entry(raw: Any, field: str) -> Entry | None:
    if not isinstance(raw, Mapping):
        raise SandboxError(field, "expected an object with path and access")
    access = parse_access(raw.get("access"), f"{field}.access")
    path = raw.get("path")
    if not isinstance(path, Mapping):
        raise SandboxError(f"{field}.path", "expected a FileSystemPath object")
    kind = path.get("type")
    if kind == "path":
        value = path.get("path")
        if not isinstance(value, str) or not os.path.isabs(value):
            raise SandboxError(f"{field}.path.path", "expected an absolute path")
        return Entry("path", os.path.normpath(value), access)
    if kind == "glob_pattern":
        pattern = path.get("pattern")
        if not isinstance(pattern, str) or not pattern:
            raise SandboxError(f"{field}.path.pattern", "expected a glob pattern")
        return Entry("glob", pattern, access)
    if kind != "special":
        raise SandboxError(
            f"{field}.path.type", f"expected one of path, glob_pattern, special, got {kind!r}"
        )
    special = path.get("value")
    if not isinstance(special, Mapping):
        raise SandboxError(f"{field}.path.value", "expected a FileSystemSpecialPath object")
    name = special.get("kind")
    if name in ("current_working_directory", "cwd"):
        name = "project_roots"
    if name not in _SPECIAL_KINDS:
        # Forward compatible, as the reference: an unknown special path is ignored.
        return None
    subpath = special.get("subpath") or ""
    if name == "project_roots" and subpath:
        if not isinstance(subpath, str) or os.path.isabs(subpath) or ".." in subpath.split("/"):
            raise SandboxError(
                f"{field}.path.value.subpath", "expected a relative path without '..'"
            )
        return Entry("glob" if has_glob(subpath) else "project_roots", subpath, access)
    return Entry(name, "", access)


def _depth(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if type(value) is not int or value < 1:
        raise SandboxError(field, "expected an integer of at least 1")
    return value


def rules_from_profile_object(profile: Mapping[str, Any], field: str) -> Rules:
    """The ``PermissionProfile`` tagged union (managed / disabled / external)."""
    kind = profile.get("type")
    if kind == "disabled":
        return Rules("disabled", label="disabled")
    if kind == "external":
        return Rules("external", network=_network(profile.get("network"), f"{field}.network"))
    if kind != "managed":
        raise SandboxError(
            f"{field}.type", f"expected one of managed, disabled, external, got {kind!r}"
        )
    network = _network(profile.get("network"), f"{field}.network")
    fs_field = f"{field}.fileSystem"
    fs = _member(profile, "fileSystem", "file_system")
    if not isinstance(fs, Mapping):
        raise SandboxError(fs_field, "expected a ManagedFileSystemPermissions object")
    fs_kind = fs.get("type")
    if fs_kind == "unrestricted":
        return Rules("managed", (Entry("root", "", "write"),), network, None, "managed")
    if fs_kind != "restricted":
        raise SandboxError(
            f"{fs_field}.type", f"expected one of restricted, unrestricted, got {fs_kind!r}"
        )
    raw_entries = fs.get("entries", [])
    if not isinstance(raw_entries, list):
        raise SandboxError(f"{fs_field}.entries", "expected an array")
    entries = tuple(
        entry
        for index, raw in enumerate(raw_entries)
        if (entry := _entry(raw, f"{fs_field}.entries[{index}]")) is not None
    )
    depth = _depth(
        _member(fs, "globScanMaxDepth", "glob_scan_max_depth"), f"{fs_field}.globScanMaxDepth"
    )
    return Rules("managed", entries, network, depth, "managed")


def rules_from_permission_profile(
    profile: Any,
    configured: Mapping[str, Rules],
    workspace: WorkspaceWrite,
    field: str = "permissionProfile",
) -> Rules:
    """A profile id (built-in or ``[permissions.<id>]``) or a profile object."""
    if isinstance(profile, Mapping):
        return rules_from_profile_object(profile, field)
    if not isinstance(profile, str):
        raise SandboxError(field, "expected a profile id or a PermissionProfile object")
    if profile == ":read-only":
        return Rules("managed", (Entry("root", "", "read"),), False, None, profile)
    if profile == ":workspace":
        return workspace_write_rules(
            writable_roots=(),
            network=workspace.network_access,
            exclude_tmpdir_env_var=workspace.exclude_tmpdir_env_var,
            exclude_slash_tmp=workspace.exclude_slash_tmp,
            configured=workspace,
            label=profile,
        )
    if profile == ":danger-full-access":
        return Rules("disabled", label=profile)
    if profile in configured:
        return configured[profile]
    known = ", ".join([*BUILT_IN_PROFILES, *sorted(configured)])
    raise SandboxError(field, f"unknown permission profile {profile!r} (known: {known})")
