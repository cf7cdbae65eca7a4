"""Which rollout files exist, cheaply: re-list only directories that changed.

Reconcile (``thread/list`` without ``useStateDbOnly``) must notice rollout
files added or removed behind the index's back. Listing every directory each
time costs a few milliseconds per 10,000 threads; instead the scanner keeps
each directory's listing with its modification time and re-lists a
directory only when that changed (adding, removing or renaming an entry
changes it; appending to a file does not). A steady home costs one ``stat``
per directory.

A directory modified within :data:`RACY_SECONDS` of being listed is listed
again next time: a second change inside one timestamp tick would otherwise
leave the mtime unchanged and go unseen (git's "racily clean" problem).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import attrs

__all__ = ["RACY_SECONDS", "Scanner"]

RACY_SECONDS = 2.0


@attrs.define
class _Dir:
    mtime_ns: int
    subdirs: frozenset[str]
    files: frozenset[str]


def _is_rollout(name: str) -> bool:
    return name.startswith("rollout-") and name.endswith(".jsonl")


class Scanner:
    """Tracks ``rollout-*.jsonl`` files under some roots of the home.

    ``roots`` maps a root (relative to the home) to how many directory levels
    below it are searched (``sessions``: 3 for ``YYYY/MM/DD``;
    ``archived_sessions``: 0). Paths are relative to the home, ``/``-separated.
    """

    def __init__(self, home: Path, roots: dict[str, int]) -> None:
        self.home = home
        self.roots = roots
        self.files: set[str] = set()
        self._dirs: dict[str, _Dir] = {}

    def reset(self) -> None:
        """Forget everything: the next :meth:`scan` reports every file as added."""
        self.files.clear()
        self._dirs.clear()

    def scan(self) -> tuple[list[str], list[str]]:
        """``(added, removed)`` rollout files since the previous scan."""
        added: list[str] = []
        removed: list[str] = []
        racy_after = time.time_ns() - int(RACY_SECONDS * 1e9)
        for root, depth in self.roots.items():
            self._visit(root, depth, racy_after, added, removed)
        return added, removed

    def _visit(
        self, rel: str, depth: int, racy_after: int, added: list[str], removed: list[str]
    ) -> None:
        try:
            mtime_ns = os.stat(self.home / rel).st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            self._forget(rel, removed)
            return
        entry = self._dirs.get(rel)
        if entry is None or entry.mtime_ns != mtime_ns:
            subdirs, files = self._list(rel, depth)
            old_files = entry.files if entry is not None else frozenset()
            for name in files - old_files:
                path = f"{rel}/{name}"
                self.files.add(path)
                added.append(path)
            for name in old_files - files:
                path = f"{rel}/{name}"
                self.files.discard(path)
                removed.append(path)
            if entry is not None:
                for name in entry.subdirs - subdirs:
                    self._forget(f"{rel}/{name}", removed)
            # A recent change may hide a second one in the same tick: list again next time.
            entry = _Dir(-1 if mtime_ns > racy_after else mtime_ns, subdirs, files)
            self._dirs[rel] = entry
        for name in entry.subdirs:
            self._visit(f"{rel}/{name}", depth - 1, racy_after, added, removed)

    def _list(self, rel: str, depth: int) -> tuple[frozenset[str], frozenset[str]]:
        subdirs: list[str] = []
        files: list[str] = []
        try:
            if depth <= 0:  # the common, large case: names only, no per-entry type check
                names = os.listdir(self.home / rel)
                return frozenset(), frozenset(n for n in names if _is_rollout(n))
            with os.scandir(self.home / rel) as entries:
                for item in entries:
                    if _is_rollout(item.name):
                        if item.is_file():
                            files.append(item.name)
                    elif item.is_dir(follow_symlinks=False):
                        subdirs.append(item.name)
        except (FileNotFoundError, NotADirectoryError):
            pass
        return frozenset(subdirs), frozenset(files)

    def _forget(self, rel: str, removed: list[str]) -> None:
        entry = self._dirs.pop(rel, None)
        if entry is None:
            return
        for name in entry.files:
            path = f"{rel}/{name}"
            self.files.discard(path)
            removed.append(path)
        for name in entry.subdirs:
            self._forget(f"{rel}/{name}", removed)
