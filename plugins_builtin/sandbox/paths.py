"""Resolve :class:`~.policy.Rules` for one command into a mount :class:`Plan`.

Special paths become absolute (``:project_roots`` is the command's cwd,
``:tmpdir`` its ``$TMPDIR``, ``:slash_tmp`` is ``/tmp``), globs are
expanded against the filesystem as it is now (``glob_scan_max_depth``
bounds the scan; a recursive glob rooted at ``/`` without it is refused
rather than silently dropped), symlinked ancestors are resolved, and
protected paths inside writable roots (``.git``, the gitdir a ``.git``
file points to, ``.codex``, ``.agents``) become read-only unless an entry
names them. When two entries name one path, ``deny`` beats ``write``
beats ``read``; a deeper entry beats a shallower one.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping

import attrs

from .errors import SandboxError
from .policy import Entry, Rules, has_glob

__all__ = ["MAX_GLOB_SCAN_ENTRIES", "Mount", "Plan", "expand_glob", "resolve"]

MAX_GLOB_SCAN_ENTRIES = 100_000
_RANK = {"read": 0, "write": 1, "deny": 2}
_PROTECTED = (".git", ".codex", ".agents")
# ``:minimal``: what a program needs to start when "/" itself is not readable.
_MINIMAL = ("/bin", "/sbin", "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/etc")


@attrs.frozen
class Mount:
    """One path and its access inside the sandbox."""

    path: str
    access: str


@attrs.frozen
class Plan:
    """What the sandbox of one command looks like; see :mod:`.bwrap`."""

    enforce: bool  # False: no sandbox at all (full access, disabled, external)
    root: str = "write"  # access of "/"
    mounts: tuple[Mount, ...] = ()  # shallow first: later (deeper) ones win
    network: bool = True
    # Top-level symlinks recreated when "/" is hidden (/lib -> usr/lib...).
    symlinks: tuple[tuple[str, str], ...] = ()

    def access(self, path: str) -> str:
        """The effective access of ``path`` (an absolute, resolved path)."""
        found = self.root
        for mount in self.mounts:
            if _within(path, mount.path):
                found = mount.access
        return found


def _within(path: str, root: str) -> bool:
    return path == root or root == "/" or path.startswith(root.rstrip("/") + "/")


def _depth(path: str) -> int:
    return 0 if path == "/" else path.count("/")


def _effective(path: str) -> str:
    """``path`` with its existing ancestors' symlinks resolved (it may not exist)."""
    head, tail = path, ""
    while True:
        if os.path.lexists(head) or head == "/":
            real = os.path.realpath(head)
            return os.path.normpath(os.path.join(real, tail)) if tail else real
        head, name = os.path.split(head)
        tail = os.path.join(name, tail) if tail else name


def _match(pattern: list[str], parts: list[str]) -> bool:
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_match(pattern[1:], parts[i:]) for i in range(len(parts) + 1))
    return (
        bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and _match(pattern[1:], parts[1:])
    )


def expand_glob(pattern: str, cwd: str, max_depth: int | None) -> list[str]:
    """Existing paths matching ``pattern`` (relative patterns start at ``cwd``)."""
    full = pattern if os.path.isabs(pattern) else os.path.join(cwd, pattern)
    parts = [p for p in full.split("/") if p and p != "."]
    first = next((i for i, p in enumerate(parts) if has_glob(p)), len(parts))
    base = "/" + "/".join(parts[:first])
    rest = parts[first:]
    if not rest:
        return [base] if os.path.lexists(base) else []
    if max_depth is None:
        if "**" in rest and base == "/":
            raise SandboxError(
                "",
                f"the deny glob {pattern!r} cannot be expanded from / without "
                "glob_scan_max_depth; set it or give the pattern a directory prefix",
            )
        limit = None if "**" in rest else len(rest)
    else:
        limit = max_depth
    found: list[str] = []
    budget = MAX_GLOB_SCAN_ENTRIES
    queue: list[tuple[str, list[str]]] = [(base, [])]
    while queue:
        directory, prefix = queue.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        budget -= len(entries)
        if budget < 0:
            raise SandboxError(
                "", f"the glob {pattern!r} matches too large a tree; narrow it or set a depth"
            )
        for entry in entries:
            rel = [*prefix, entry.name]
            if _match(rest, rel):
                found.append(entry.path)
                continue
            if (limit is None or len(rel) < limit) and entry.is_dir(follow_symlinks=False):
                queue.append((entry.path, rel))
    return sorted(found)


def _protected(root: str) -> list[str]:
    found = []
    for name in _PROTECTED:
        candidate = os.path.join(root, name)
        if name == ".git" and os.path.isfile(candidate):
            found.append(candidate)
            gitdir = _gitdir(candidate)
            if gitdir:
                found.append(gitdir)
        elif os.path.isdir(candidate):
            found.append(candidate)
    return found


def _gitdir(pointer: str) -> str | None:
    try:
        with open(pointer, encoding="utf-8", errors="replace") as handle:
            text = handle.read(4096).strip()
    except OSError:
        return None
    key, _, value = text.partition(":")
    if key.strip() != "gitdir" or not value.strip():
        return None
    target = os.path.join(os.path.dirname(pointer), value.strip())
    return _effective(target) if os.path.exists(target) else None


def _paths_of(entry: Entry, cwd: str, env: Mapping[str, str], depth: int | None) -> list[str]:
    if entry.kind == "project_roots":
        return [os.path.join(cwd, entry.value) if entry.value else cwd]
    if entry.kind == "tmpdir":
        tmpdir = env.get("TMPDIR", "")
        return [tmpdir] if tmpdir and os.path.isabs(tmpdir) else []
    if entry.kind == "slash_tmp":
        return ["/tmp"] if os.path.isdir("/tmp") else []
    if entry.kind == "glob":
        return expand_glob(entry.value, cwd, depth)
    if entry.kind == "path":
        return [entry.value]
    return []


def resolve(rules: Rules, cwd: str, env: Mapping[str, str]) -> Plan:
    """The mount plan of ``rules`` for a command running in ``cwd`` with ``env``."""
    if rules.full_access:
        return Plan(enforce=False, network=rules.network)
    root = ""
    symlinks: list[tuple[str, str]] = []
    chosen: dict[str, tuple[str, bool]] = {}  # path -> (access, explicit)

    def put(path: str, access: str, explicit: bool) -> None:
        nonlocal root
        if path == "/":
            if not root or _RANK[access] > _RANK[root]:
                root = access
            return
        old = chosen.get(path)
        if (
            old is None
            or (explicit and not old[1])
            or (explicit == old[1] and _RANK[access] > _RANK[old[0]])
        ):
            chosen[path] = (access, explicit)

    for entry in rules.entries:
        if entry.kind == "root":
            put("/", entry.access, True)
        elif entry.kind == "minimal":
            if entry.access == "deny":
                continue
            for path in _MINIMAL:
                if os.path.islink(path):
                    symlinks.append((os.readlink(path), path))
                elif os.path.isdir(path):
                    put(path, "read", False)
        else:
            for path in _paths_of(entry, cwd, env, rules.glob_scan_max_depth):
                if os.path.lexists(path):
                    put(_effective(path), entry.access, True)
    for path, (access, _) in list(chosen.items()):
        if access == "write":
            for protected in _protected(path):
                put(_effective(protected), "read", False)
    root = root or "deny"
    plan = Plan(True, root, (), rules.network, tuple(symlinks) if root == "deny" else ())
    mounts: list[Mount] = []
    for path, (access, _) in sorted(
        chosen.items(), key=lambda item: (_depth(item[0]), _RANK[item[1][0]], item[0])
    ):
        inherited = attrs.evolve(plan, mounts=tuple(mounts)).access(path)
        if inherited != access:
            mounts.append(Mount(path, access))
    plan = attrs.evolve(plan, mounts=tuple(mounts))
    if plan.access(_effective(cwd)) == "deny":
        raise SandboxError("cwd", f"the working directory {cwd} is not readable in this sandbox")
    return plan
