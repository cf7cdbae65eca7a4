"""MEMORY: the other agent's auto-memory notes, copied into this server's home.

The other agent keeps Markdown notes per project in
``~/.claude/projects/<dir>/memory/``. They are detected and imported only
when ``[features] external_agent_memory_import = true`` (off by default,
as in the reference, where the feature is experimental); otherwise an
import naming MEMORY is refused with the reference's message.

A note is named ``<dir>/<path under memory/>`` in ``details.memory``; an
import copies exactly the named notes to ``<home>/memories/claude/<same
name>``, leaving a note that is already there untouched. Nothing on this
server reads those files yet: the import keeps them where a memory feature
would look, and says where each went.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .model import ItemResult
from .source import Scope

__all__ = ["FEATURE_KEY", "import_memory", "memory_notes", "missing_notes"]

FEATURE_KEY = "features.external_agent_memory_import"


def _projects(scope: Scope) -> Path:
    """``~/.claude/projects``."""
    return scope.claude_home / "projects"


def memory_notes(scope: Scope) -> list[str]:
    """Every note, as ``<project dir>/<relative path>``, sorted."""
    notes = []
    projects = _projects(scope)
    if not projects.is_dir():
        return []
    for project in sorted(projects.iterdir()):
        root = project / "memory"
        if not project.is_dir() or not root.is_dir():
            continue
        for file in sorted(root.rglob("*.md")):
            if file.is_file() and not file.is_symlink():
                notes.append(f"{project.name}/{file.relative_to(root).as_posix()}")
    return notes


def _target(scope: Scope, note: str) -> Path:
    """Where a note is copied."""
    return scope.server_home / "memories" / "claude" / note


def missing_notes(scope: Scope) -> list[str]:
    """Notes not copied yet."""
    return [note for note in memory_notes(scope) if not _target(scope, note).exists()]


def import_memory(scope: Scope, notes: list[str], result: ItemResult) -> None:
    """Copy the named notes; a name that is not a note is a failure, the rest go on."""
    known = set(memory_notes(scope))
    for note in notes:
        if note not in known:
            result.failure(
                "memory_missing",
                f"no memory note {note!r} under {_projects(scope)}",
                source=note,
                error_type="memory_not_detected",
            )
            continue
        project, _, relative = note.partition("/")
        source = _projects(scope) / project / "memory" / relative
        target = _target(scope, note)
        if target.exists():
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            os.chmod(target, 0o600)
        except OSError as exc:
            result.failure("memory_copy", f"copying {source} failed: {exc}", source=note)
            continue
        result.success(str(source), str(target))
