"""Where skills live for a working directory, and the scan that finds them.

Roots, highest precedence first (the reference's order):

* ``repo``: for every directory from the project root down to the cwd,
  ``<dir>/.codex/skills`` and ``<dir>/.agents/skills``. The project root is
  the nearest ancestor of the cwd holding ``.git`` (else the cwd itself);
* ``user``: ``<home>/skills`` (the server's home, as the reference's
  ``$CODEX_HOME/skills``), ``$HOME/.agents/skills``, roots another family
  contributes (installed plugins' skills, via the ``skills_roots`` hook) and
  the roots set with ``skills/extraRoots/set``;
* ``system``: ``<home>/skills/.system``.

A scan walks each root breadth-first, at most :data:`MAX_DEPTH` levels deep
and :data:`MAX_DIRS` directories per root, skipping hidden entries, and
parses every ``SKILL.md``. User and repo roots follow symlinked directories;
the system root does not. A skill found twice (two roots reaching one file)
is listed once. Skills sort by scope (repo, user, system, admin), then name,
then path. Everything here is blocking I/O: callers run it in the kernel's
blocking threads.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterable, Sequence

import attrs

from .parse import SKILL_FILE, Skill, SkillParseError, parse_skill

__all__ = ["MAX_DEPTH", "MAX_DIRS", "Scan", "SkillRoot", "project_root", "roots_for", "scan"]

log = logging.getLogger("plugins.skills")

MAX_DEPTH = 6
MAX_DIRS = 2000
_SCOPE_RANK = {"repo": 0, "user": 1, "system": 2, "admin": 3}


@attrs.frozen
class SkillRoot:
    """A directory to scan for skills, and what the skills found there are."""

    path: str
    scope: str
    plugin_id: str | None = None
    namespace: str | None = None  # the plugin name that prefixes its skills' names
    plugin_root: str | None = None


@attrs.frozen
class Scan:
    """The skills of some roots, and the files that failed to parse."""

    skills: tuple[Skill, ...]
    errors: tuple[dict[str, str], ...]
    roots: tuple[str, ...]  # every root scanned (existing or not), for watching


def project_root(cwd: str, markers: Sequence[str] = (".git",)) -> str:
    """The nearest ancestor of ``cwd`` (itself included) holding a marker, else ``cwd``."""
    path = cwd
    while True:
        if any(os.path.lexists(os.path.join(path, marker)) for marker in markers):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            return cwd
        path = parent


def roots_for(
    cwd: str | None,
    home: str,
    user_home: str | None,
    contributed: Iterable[SkillRoot] = (),
) -> list[SkillRoot]:
    """Every root for ``cwd`` (None: no project roots), highest precedence first."""
    roots: list[SkillRoot] = []
    if cwd is not None:
        top = project_root(cwd)
        chain = [cwd]
        while chain[-1] != top and os.path.dirname(chain[-1]) != chain[-1]:
            chain.append(os.path.dirname(chain[-1]))
        for directory in chain:  # nearest the cwd first: the most specific project config
            roots.append(SkillRoot(os.path.join(directory, ".codex", "skills"), "repo"))
        for directory in reversed(chain):
            roots.append(SkillRoot(os.path.join(directory, ".agents", "skills"), "repo"))
    roots.append(SkillRoot(os.path.join(home, "skills"), "user"))
    if user_home:
        roots.append(SkillRoot(os.path.join(user_home, ".agents", "skills"), "user"))
    roots.extend(contributed)
    roots.append(SkillRoot(os.path.join(home, "skills", ".system"), "system"))
    seen: set[str] = set()
    unique = []
    for root in roots:
        if root.path not in seen:
            seen.add(root.path)
            unique.append(root)
    return unique


def scan(roots: Sequence[SkillRoot]) -> Scan:
    """Find and parse the skills under ``roots`` (see the module docstring)."""
    skills: list[Skill] = []
    errors: list[dict[str, str]] = []
    seen: set[str] = set()
    for root in roots:
        for skill_md in _skill_files(root):
            if skill_md in seen:
                continue
            seen.add(skill_md)
            try:
                skill = parse_skill(
                    skill_md,
                    root.scope,
                    plugin_id=root.plugin_id,
                    namespace=root.namespace,
                    plugin_root=root.plugin_root,
                )
            except (SkillParseError, OSError, UnicodeError) as exc:
                if root.scope != "system":
                    message = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                    errors.append({"path": skill_md, "message": str(message)})
                continue
            skills.append(skill)
    skills.sort(key=lambda s: (_SCOPE_RANK.get(s.scope, 9), s.name, s.path))
    return Scan(tuple(skills), tuple(errors), tuple(root.path for root in roots))


def _skill_files(root: SkillRoot) -> list[str]:
    """Canonical paths of the ``SKILL.md`` files under ``root`` (breadth-first)."""
    try:
        start = os.path.realpath(root.path)
        if not os.path.isdir(start):
            return []
    except OSError:
        return []
    follow = root.scope != "system"
    found: list[str] = []
    visited = {start}
    queue: deque[tuple[str, int]] = deque([(start, 0)])
    truncated = False
    while queue:
        directory, depth = queue.popleft()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            log.info("skills: cannot read %s: %s", directory, exc.strerror or exc)
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_symlink():
                    if not follow or not entry.is_dir():
                        if follow and entry.name == SKILL_FILE and entry.is_file():
                            found.append(os.path.realpath(entry.path))
                        continue
                    child = os.path.realpath(entry.path)
                elif entry.is_dir(follow_symlinks=False):
                    child = entry.path
                else:
                    if entry.name == SKILL_FILE and entry.is_file(follow_symlinks=False):
                        found.append(entry.path)
                    continue
            except OSError:
                continue
            if depth + 1 > MAX_DEPTH or child in visited:
                continue
            if len(visited) >= MAX_DIRS:
                truncated = True
                continue
            visited.add(child)
            queue.append((child, depth + 1))
    if truncated:
        log.warning("skills: scan of %s stopped after %d directories", root.path, MAX_DIRS)
    return found
