"""AGENTS_MD, SKILLS, COMMANDS and SUBAGENTS: the other agent's Markdown, converted.

* AGENTS_MD: ``CLAUDE.md`` (home: ``~/.claude/CLAUDE.md``; repository:
  ``CLAUDE.md``, else ``.claude/CLAUDE.md``) becomes ``AGENTS.md``, only
  where that is missing or empty.
* SKILLS: each directory of ``.claude/skills`` is copied to the skills
  folder (``<home>/skills``, or ``<repo>/.agents/skills``) unless one of
  that name exists; its ``SKILL.md`` must have a ``description``.
* COMMANDS: each ``.claude/commands/**/*.md`` with a ``description``
  becomes a skill ``source-command-<path>``. Commands that use what a
  skill cannot do (``$ARGUMENTS``, ``$1``, ``{{...}}``, ``!`cmd```,
  ``@file``), have no description, or whose name would pass 64
  characters or clash are reported, not converted.
* SUBAGENTS: each ``.claude/agents/*.md`` with ``name`` and
  ``description`` becomes ``agents/<file>.toml`` (``name``,
  ``description``, ``developer_instructions``, and ``model_reasoning_effort``
  / ``sandbox_mode`` when its ``effort``/``permissionMode`` map).

Text copied into instructions has the other agent's names replaced
(:func:`.source.rewrite_terms`). Everything here blocks (file I/O).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import tomlkit

from kernel import atomic_write

from .model import ItemResult
from .source import Scope, is_missing_or_empty, parse_document, rewrite_terms

__all__ = [
    "command_sources",
    "import_agents_md",
    "import_commands",
    "import_skills",
    "import_subagents",
    "missing_skills",
    "subagent_sources",
]

MAX_SKILL_NAME = 64
_EFFORTS = {"none", "minimal", "low", "medium", "high", "xhigh"}
_PERMISSION_MODES = {"acceptEdits": "workspace-write", "readOnly": "read-only"}
_NUMBERED_ARG = re.compile(r"\$\d")


def _write_text(path: Path, text: str) -> None:
    """Write a text file atomically, creating its folder (readable by all: docs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text.encode("utf-8"), mode=0o644)


# -- AGENTS.md ----------------------------------------------------------------------------


def import_agents_md(scope: Scope, result: ItemResult) -> None:
    """Copy the instructions file to ``AGENTS.md`` when that is missing or empty."""
    source = scope.agents_md_source()
    target = scope.target_agents_md
    if source is None or not is_missing_or_empty(target):
        return
    _write_text(target, rewrite_terms(source.read_text(encoding="utf-8")))
    result.success(str(source), str(target))


# -- skills -------------------------------------------------------------------------------


def _skill_dirs(scope: Scope) -> list[Path]:
    """The skill directories of the scope (hidden ones left out)."""
    root = scope.source_dir / "skills"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def missing_skills(scope: Scope) -> list[str]:
    """Valid skills of the other agent with no namesake in the target folder."""
    target = scope.target_skills
    return [
        d.name
        for d in _skill_dirs(scope)
        if not (target / d.name).exists() and _skill_problem(d) is None
    ]


def _skill_problem(skill: Path) -> str | None:
    """Why a skill directory is not a usable skill, or None."""
    file = skill / "SKILL.md"
    if not file.is_file():
        return f"{skill} has no SKILL.md"
    try:
        front, _ = parse_document(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot read {file}: {exc}"
    if front is None:
        return f"{file}: the frontmatter is not a YAML mapping"
    if not front.get("description"):
        return f"{file}: the frontmatter has no description"
    return None


def _copy_skill(source: Path, target: Path) -> None:
    """Copy a skill directory; ``SKILL.md`` files get the other agent's names replaced."""
    target.mkdir(parents=True)
    for entry in sorted(source.iterdir()):
        destination = target / entry.name
        if entry.is_symlink():
            continue  # a link may point anywhere; copy only what the skill holds
        if entry.is_dir():
            _copy_skill(entry, destination)
        elif entry.name.lower() == "skill.md":
            _write_text(destination, rewrite_terms(entry.read_text(encoding="utf-8")))
        elif entry.is_file():
            shutil.copy2(entry, destination)


def import_skills(scope: Scope, result: ItemResult, selected: set[str] | None = None) -> list[str]:
    """Copy every valid skill the target lacks (those ``selected``); returns their names."""
    imported = []
    for skill in _skill_dirs(scope):
        if selected is not None and skill.name not in selected:
            continue
        target = scope.target_skills / skill.name
        if target.exists():
            continue
        problem = _skill_problem(skill)
        if problem is not None:
            result.failure("skill_invalid", problem, source=skill.name, error_type="invalid_skill")
            continue
        try:
            _copy_skill(skill, target)
        except (OSError, UnicodeDecodeError) as exc:
            shutil.rmtree(target, ignore_errors=True)
            result.failure("skill_copy", f"copying {skill} failed: {exc}", source=skill.name)
            continue
        result.success(skill.name, skill.name)
        imported.append(skill.name)
    return imported


# -- commands -----------------------------------------------------------------------------


def _slug(text: str) -> str:
    """Lowercase letters, digits and single dashes (a skill name)."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "migrated"


def _unsupported(body: str) -> str | None:
    """Why a command's template cannot become a skill, or None."""
    if "$ARGUMENTS" in body or _NUMBERED_ARG.search(body):
        return "it takes arguments ($ARGUMENTS, $1...), which a skill cannot receive"
    if "{{" in body and "}}" in body:
        return "it uses {{...}} templates"
    if "!`" in body or "! `" in body:
        return "it runs shell commands when expanded (!`...`)"
    if any(token.startswith("@") and len(token) > 1 for token in body.split()):
        return "it includes files by @path"
    return None


def command_sources(
    scope: Scope,
) -> tuple[dict[str, tuple[Path, dict[str, Any], str]], dict[str, str]]:
    """``({skill name: (file, frontmatter, body)}, {relative path: why not})``."""
    root = scope.source_dir / "commands"
    if not root.is_dir():
        return {}, {}
    found: dict[str, list[tuple[Path, dict[str, Any], str]]] = {}
    refused: dict[str, str] = {}
    for file in sorted(root.rglob("*.md")):
        if not file.is_file() or file.stem == "README":
            continue
        relative = file.relative_to(root).with_suffix("")
        label = "-".join(relative.parts)
        try:
            front, body = parse_document(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            refused[label] = f"cannot read it: {exc}"
            continue
        name = _slug(f"source-command-{label}")
        why = _unsupported(body)
        if front is None or not front.get("description"):
            why = "it has no description in its frontmatter"
        elif len(name) > MAX_SKILL_NAME:
            why = f"the skill name {name!r} would be longer than {MAX_SKILL_NAME} characters"
        if why is not None:
            refused[label] = why
            continue
        found.setdefault(name, []).append((file, front or {}, body))
    unique = {}
    for name, files in found.items():
        if len(files) == 1:
            unique[name] = files[0]
        else:
            for file, _, _ in files:
                refused[str(file.relative_to(root))] = f"another command also becomes {name!r}"
    return unique, refused


def _render_command(name: str, label: str, description: str, body: str) -> str:
    """The SKILL.md a command becomes."""
    text = rewrite_terms(body.strip()) or "(The command had no text.)"
    quoted = [s.replace("\\", "\\\\").replace('"', '\\"') for s in (name, description)]
    return (
        f'---\nname: "{quoted[0]}"\ndescription: "{quoted[1]}"\n---\n\n# {name}\n\n'
        f"Migrated from the previous agent's command `{label}`: when the user asks for "
        f"it, do what the template below says.\n\n## Template\n\n{text}\n"
    )


def import_commands(
    scope: Scope, result: ItemResult, selected: set[str] | None = None
) -> list[str]:
    """Convert the supported commands the target lacks (those ``selected``) into skills."""
    sources, refused = command_sources(scope)
    for label, why in sorted(refused.items() if selected is None else ()):
        result.failure(
            "command_unsupported",
            f"command {label} was not migrated: {why}",
            source=label,
            error_type="unsupported_command",
        )
    imported = []
    for name, (file, front, body) in sorted(sources.items()):
        target = scope.target_skills / name
        if target.exists() or (selected is not None and name not in selected):
            continue
        label = "-".join(file.relative_to(scope.source_dir / "commands").with_suffix("").parts)
        description = rewrite_terms(front["description"])
        _write_text(target / "SKILL.md", _render_command(name, label, description, body))
        result.success(label, name)
        imported.append(name)
    return imported


# -- subagents ----------------------------------------------------------------------------


def subagent_sources(
    scope: Scope,
) -> tuple[dict[str, tuple[Path, dict[str, Any], str]], dict[str, str]]:
    """``({file stem: (file, frontmatter, body)}, {file name: why not})``."""
    root = scope.source_dir / "agents"
    if not root.is_dir():
        return {}, {}
    usable: dict[str, tuple[Path, dict[str, Any], str]] = {}
    refused: dict[str, str] = {}
    for file in sorted(root.glob("*.md")):
        if not file.is_file() or file.stem == "README":
            continue
        try:
            front, body = parse_document(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            refused[file.name] = f"cannot read it: {exc}"
            continue
        if front is None:
            refused[file.name] = "its frontmatter is not a YAML mapping"
        elif not front.get("name") or not front.get("description"):
            refused[file.name] = "its frontmatter lacks a name or a description"
        elif not body.strip():
            refused[file.name] = "it has no instructions"
        else:
            usable[file.stem] = (file, front, body)
    return usable, refused


def _agent_toml(front: dict[str, Any], body: str) -> str:
    """The TOML a subagent becomes."""
    document: dict[str, Any] = {
        "name": front["name"],
        "description": rewrite_terms(front["description"]),
    }
    effort = "xhigh" if front.get("effort") == "max" else front.get("effort")
    if effort in _EFFORTS:
        document["model_reasoning_effort"] = effort
    sandbox = _PERMISSION_MODES.get(str(front.get("permissionMode")))
    if sandbox is not None:
        document["sandbox_mode"] = sandbox
    document["developer_instructions"] = rewrite_terms(body.strip())
    return tomlkit.dumps(document)


def import_subagents(
    scope: Scope, result: ItemResult, selected: set[str] | None = None
) -> list[str]:
    """Convert the usable subagents the target lacks (those ``selected``); their names."""
    usable, refused = subagent_sources(scope)
    for file_name, why in sorted(refused.items() if selected is None else ()):
        result.failure(
            "subagent_unsupported",
            f"subagent {file_name} was not migrated: {why}",
            source=file_name,
            error_type="unsupported_subagent",
        )
    imported = []
    for stem, (_, front, body) in sorted(usable.items()):
        target = scope.target_agents / f"{stem}.toml"
        if os.path.lexists(target) or (selected is not None and front["name"] not in selected):
            continue
        _write_text(target, _agent_toml(front, body))
        result.success(front["name"], front["name"])
        imported.append(front["name"])
    return imported
