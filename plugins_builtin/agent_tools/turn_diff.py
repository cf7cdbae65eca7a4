"""The cumulative ``turn/diff/updated`` diff of what ``apply_patch`` changed in a turn.

Each path a patch touches has its content recorded the first time (before
the patch is written); the diff compares those baselines with what is on
disk now, so several patches to one file collapse into one net change and a
file edited back to its original state drops out. The output is git's
``diff --git`` format with blob ids, which ``git apply`` accepts.
"""

from __future__ import annotations

import hashlib
import os

import attrs

from .files import LOCAL_FILES, Files
from .patch import PatchPlan
from .textdiff import unified_hunks

__all__ = ["ZERO_OID", "TurnDiffTracker", "find_git_root", "git_blob_sha1"]

ZERO_OID = "0" * 40
_DEV_NULL = "/dev/null"


def git_blob_sha1(data: bytes) -> str:
    """The object id git gives ``data`` as a blob (``git hash-object``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def find_git_root(start: str) -> str | None:
    """The nearest directory at or above ``start`` holding a ``.git`` entry."""
    current = os.path.normpath(os.path.abspath(start))
    while True:
        if os.path.lexists(os.path.join(current, ".git")):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


@attrs.frozen
class _Snapshot:
    """A file's bytes and git mode at one moment; ``data`` None means absent."""

    data: bytes | None
    mode: str = "100644"


def _text(data: bytes | None) -> str | None:
    if data is None:
        return ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


class TurnDiffTracker:
    """Baselines of the files patched during one turn, and their net diff.

    Call :meth:`before` with each plan just before writing it, and
    :meth:`unified_diff` afterwards. Paths are shown relative to the git
    repository holding ``cwd``, or to ``cwd`` itself outside a repository.
    """

    def __init__(self, cwd: str, files: Files = LOCAL_FILES) -> None:
        cwd = os.path.normpath(os.path.abspath(cwd))
        self._files = files
        self.root = find_git_root(cwd) or cwd
        self._baseline: dict[str, _Snapshot] = {}
        # Where a file now at a path came from, for files moved during the turn.
        self._origin: dict[str, str] = {}

    def before(self, plan: PatchPlan) -> None:
        """Record the pre-turn state of every path ``plan`` is about to touch."""
        for path in plan.paths():
            # Writes go through a symlink to its target, so the target changes.
            targets = [path, os.path.realpath(path)] if os.path.islink(path) else [path]
            for target in targets:
                if target not in self._baseline:
                    self._baseline[target] = self._snapshot(target)
        for op in plan.ops:
            if op.kind == "update" and op.move_to is not None:
                origin = self._origin.pop(op.path, op.path)
                self._origin.pop(op.move_to, None)
                if origin != op.move_to:
                    self._origin[op.move_to] = origin
            elif op.kind != "update":
                self._origin.pop(op.path, None)

    def _snapshot(self, path: str) -> _Snapshot:
        data, mode = self._files.snapshot(path)
        return _Snapshot(data, mode)

    def touched(self) -> list[str]:
        """Absolute paths with a recorded baseline, sorted."""
        return sorted(self._baseline)

    def unified_diff(self) -> str:
        """The net git-style diff of every touched file; empty when nothing changed."""
        current = {path: self._snapshot(path) for path in self._baseline}
        renames: dict[str, str] = {}
        for dest, origin in self._origin.items():
            if (
                self._baseline[origin].data is not None
                and current[origin].data is None
                and current[dest].data is not None
                and self._baseline[dest].data is None
            ):
                renames[origin] = dest
        destinations = set(renames.values())
        parts: list[str] = []
        for path in sorted(self._baseline, key=self._display):
            if path in destinations:
                continue
            dest = renames.get(path, path)
            parts.append(self._render(path, self._baseline[path], dest, current[dest]))
        return "".join(parts)

    def _display(self, path: str) -> str:
        relative = os.path.relpath(path, self.root)
        if relative == os.pardir or relative.startswith(os.pardir + os.sep):
            shown = path
        else:
            shown = relative
        return shown.replace(os.sep, "/")

    def _render(self, left: str, old: _Snapshot, right: str, new: _Snapshot) -> str:
        if left == right and old == new:
            return ""
        if old.data is None and new.data is None:
            return ""
        a, b = self._display(left), self._display(right)
        out = [f"diff --git a/{a} b/{b}\n"]
        if old.data is None:
            out.append(f"new file mode {new.mode}\n")
        elif new.data is None:
            out.append(f"deleted file mode {old.mode}\n")
        elif old.mode != new.mode:
            out.append(f"old mode {old.mode}\nnew mode {new.mode}\n")
        if old.data == new.data:
            if left != right:
                # A pure rename: without these headers git cannot apply it.
                out.append(f"similarity index 100%\nrename from {a}\nrename to {b}\n")
            return "".join(out)
        old_id = ZERO_OID if old.data is None else git_blob_sha1(old.data)
        new_id = ZERO_OID if new.data is None else git_blob_sha1(new.data)
        out.append(f"index {old_id}..{new_id}\n")
        old_name = _DEV_NULL if old.data is None else f"a/{a}"
        new_name = _DEV_NULL if new.data is None else f"b/{b}"
        old_text, new_text = _text(old.data), _text(new.data)
        if old_text is None or new_text is None:
            out.append(f"Binary files {old_name} and {new_name} differ\n")
            return "".join(out)
        hunks = unified_hunks(old_text, new_text, 3)
        if hunks:
            out.append(f"--- {old_name}\n+++ {new_name}\n{hunks}")
        return "".join(out)
