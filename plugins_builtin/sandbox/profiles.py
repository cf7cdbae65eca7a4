"""Permission profiles from config.toml, in the reference's format.

::

    default_permissions = "dev"

    [permissions.dev]
    description = "project writes, no secrets"

    [permissions.dev.filesystem]
    ":root" = "read"
    ":project_roots" = { "." = "write", "**/*.pem" = "deny" }
    "/abs/secrets" = "deny"            # ("none" is accepted for deny)
    "~/.ssh" = "deny"
    glob_scan_max_depth = 4

    [permissions.dev.network]
    enabled = false

A key is a special path (``:root``, ``:minimal``, ``:project_roots``,
``:tmpdir``, ``:slash_tmp``; an unknown ``:name`` is ignored with a
warning, as the reference does), an absolute or ``~/`` path, or a glob. A
value is an access or a table of relative subpaths to accesses (``.`` is
the key itself). ``extends = "<id>"`` merges another configured profile
underneath. Network keys other than ``enabled`` (proxies, domain lists)
are not enforced here: such a profile keeps the network off.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .errors import SandboxError
from .policy import Entry, Rules, has_glob, parse_access

__all__ = ["compile_profiles", "deny_entries"]

_SPECIAL = {
    ":root": "root",
    ":minimal": "minimal",
    ":project_roots": "project_roots",
    ":workspace_roots": "project_roots",
    ":cwd": "project_roots",
    ":tmpdir": "tmpdir",
    ":slash_tmp": "slash_tmp",
}
_PROFILE_KEYS = {"description", "extends", "filesystem", "network", "workspace_roots"}


def _base_path(key: str, field: str) -> str:
    if key == "~" or key.startswith("~/"):
        return os.path.expanduser(key)
    if not os.path.isabs(key):
        raise SandboxError(field, "a path must be absolute, start with ~/ or be a :special path")
    return os.path.normpath(key) if not has_glob(key) else key


def _subpath(base: str, kind: str, sub: str, access: str, field: str) -> Entry:
    parts = sub.split("/")
    if os.path.isabs(sub) or ".." in parts or not sub:
        raise SandboxError(field, "a subpath must be relative, without '..'")
    if kind == "project_roots":
        return Entry("glob" if has_glob(sub) else "project_roots", sub, access)
    if kind != "path":
        raise SandboxError(field, "this special path takes no subpaths")
    joined = os.path.join(base, sub)
    return Entry("glob" if has_glob(joined) else "path", os.path.normpath(joined), access)


def _filesystem(
    table: Mapping[str, Any], field: str, warnings: list[str]
) -> tuple[list[Entry], int | None]:
    entries: list[Entry] = []
    depth: int | None = None
    for key, value in table.items():
        where = f"{field}.{key}"
        if key == "glob_scan_max_depth":
            if type(value) is not int or value < 1:
                raise SandboxError(where, "expected an integer of at least 1")
            depth = value
            continue
        if key.startswith(":"):
            kind = _SPECIAL.get(key)
            if kind is None:
                warnings.append(f"{where}: unknown special path {key!r} is ignored")
                continue
            base = ""
        else:
            base = _base_path(key, where)
            kind = "glob" if has_glob(base) else "path"
        if isinstance(value, Mapping):
            for sub, access in value.items():
                sub_field = f"{where}.{sub}"
                parsed = parse_access(access, sub_field)
                if sub == ".":
                    entries.append(Entry(kind, base, parsed))
                else:
                    entries.append(_subpath(base, kind, sub, parsed, sub_field))
        else:
            entries.append(Entry(kind, base, parse_access(value, where)))
    return entries, depth


def _merged(name: str, tables: Mapping[str, Any], seen: tuple[str, ...]) -> dict[str, Any]:
    table = tables.get(name)
    field = f"permissions.{name}"
    if not isinstance(table, Mapping):
        raise SandboxError(field, "expected a table")
    parent = table.get("extends")
    if parent is None:
        return dict(table)
    if not isinstance(parent, str):
        raise SandboxError(f"{field}.extends", "expected a profile id")
    if parent in seen:
        raise SandboxError(f"{field}.extends", f"inheritance cycle: {' -> '.join((*seen, parent))}")
    if parent not in tables:
        kind = "built-in" if parent.startswith(":") else "undefined"
        raise SandboxError(f"{field}.extends", f"cannot extend {kind} profile {parent!r}")
    base = _merged(parent, tables, (*seen, parent))
    merged = {**base, **{k: v for k, v in table.items() if k not in ("filesystem", "network")}}
    for section in ("filesystem", "network"):
        below, above = base.get(section) or {}, table.get(section) or {}
        if isinstance(below, Mapping) and isinstance(above, Mapping):
            merged[section] = {**below, **above}
        elif section in table:
            merged[section] = above
    return merged


def compile_profiles(tables: Mapping[str, Any]) -> tuple[dict[str, Rules], list[str]]:
    """Every ``[permissions.<id>]`` as :class:`Rules`, and warnings to log.

    Raises :class:`SandboxError` naming the config key at fault.
    """
    profiles: dict[str, Rules] = {}
    warnings: list[str] = []
    for name in tables:
        field = f"permissions.{name}"
        if name.startswith(":"):
            raise SandboxError(field, "ids starting with ':' are reserved for built-in profiles")
        table = _merged(name, tables, (name,))
        for key in table:
            if key not in _PROFILE_KEYS:
                raise SandboxError(f"{field}.{key}", "unknown key")
        fs = table.get("filesystem") or {}
        if not isinstance(fs, Mapping):
            raise SandboxError(f"{field}.filesystem", "expected a table")
        entries, depth = _filesystem(fs, f"{field}.filesystem", warnings)
        network = table.get("network") or {}
        if not isinstance(network, Mapping):
            raise SandboxError(f"{field}.network", "expected a table")
        enabled = network.get("enabled", False)
        if type(enabled) is not bool:
            raise SandboxError(f"{field}.network.enabled", "expected true or false")
        extra = sorted(k for k in network if k != "enabled")
        if extra and enabled:
            warnings.append(
                f"{field}.network: {', '.join(extra)} not enforced here; the network stays off"
            )
            enabled = False
        profiles[name] = Rules("managed", tuple(entries), enabled, depth, name)
    return profiles, warnings


def deny_entries(rules: Rules | None) -> tuple[tuple[Entry, ...], int | None]:
    """The deny-read entries of the configured default profile, kept on every override."""
    if rules is None or rules.mode != "managed":
        return (), None
    denials = tuple(e for e in rules.entries if e.access == "deny" and e.kind != "root")
    return denials, rules.glob_scan_max_depth
