"""What the model is told about skills, and which skills a user's input names.

Two messages, in the reference's form:

* every request of a turn carries a ``developer`` message
  ``<skills_instructions>...</skills_instructions>`` listing the enabled
  skills the model may pick on its own (``- name: description (file:
  path)``), kept within a character budget: descriptions are shortened
  evenly first, then skills at the end are left out and the message says
  how many;
* a skill the user names (``$name`` in the text, ``[$name](path)``, or a
  ``skill`` input item) has its ``SKILL.md`` added to the conversation as a
  ``user`` message ``<skill><name>..</name><path>..</path>body</skill>``
  right after the user's message, so the model reads it in that turn.

The wording is this project's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from .parse import Skill

__all__ = [
    "DEFAULT_BUDGET",
    "MAX_INJECTED_BYTES",
    "instructions_text",
    "mentioned_skills",
    "skill_message",
]

DEFAULT_BUDGET = 8000  # characters of skill lines in the instructions
MAX_INJECTED_BYTES = 256 * 1024

_INTRO = (
    "Skills are instructions kept in `SKILL.md` files. Each entry below gives a skill's "
    "name, what it is for, and the path of its file; open the file when you use the skill."
)
_HOW = """\
- Use a skill when the user names it (`$name`) or when the task clearly matches its \
description; use every skill the user names. A skill applies to the turn it was named in.
- Read the skill's `SKILL.md` before acting and follow it, reading only the parts you need. \
Resolve relative paths in it against the directory of that `SKILL.md`.
- Prefer the skill's own scripts, templates and assets to rewriting them.
- If a named skill is not listed here or its file cannot be read, say so briefly and carry \
on as well as you can."""

_COMMON_ENV = frozenset(
    {"PATH", "HOME", "USER", "SHELL", "PWD", "TMPDIR", "TEMP", "TMP", "LANG", "TERM"}
    | {"XDG_CONFIG_HOME"}
)
_NAME_CHARS = r"[A-Za-z0-9_:.\-]"
_LINKED = re.compile(rf"\[\$({_NAME_CHARS}+)\]\s*\(([^)]*)\)")
_PLAIN = re.compile(rf"\$({_NAME_CHARS}+)")


def _line(skill: Skill, description: str) -> str:
    if description:
        return f"- {skill.name}: {description} (file: {skill.path})"
    return f"- {skill.name}: (file: {skill.path})"


def _fit(skills: Sequence[Skill], budget: int) -> tuple[list[str], int]:
    """Skill lines within ``budget`` characters; returns them and how many were left out."""
    full = [_line(s, s.description) for s in skills]
    if sum(len(line) + 1 for line in full) <= budget:
        return full, 0
    bare = [_line(s, "") for s in skills]
    spare = budget - sum(len(line) + 1 for line in bare)
    if spare >= 0:
        # Share the room left evenly; short descriptions give theirs to the long ones.
        room = {i: len(s.description) for i, s in enumerate(skills)}
        allowed = dict.fromkeys(room, 0)
        while spare > 0 and room:
            share = max(1, spare // len(room))
            for i in list(room):
                take = min(share, room[i], spare)
                allowed[i] += take
                room[i] -= take
                spare -= take
                if room[i] == 0:
                    del room[i]
                if spare == 0:
                    break
        lines = []
        for i, s in enumerate(skills):
            n = allowed[i]
            if n >= len(s.description):
                cut = s.description
            else:
                cut = s.description[: n - 2] + "…" if n > 2 else ""
            lines.append(_line(s, cut))
        return lines, 0
    kept: list[str] = []
    used = 0
    for line in bare:
        if used + len(line) + 1 > budget:
            break
        kept.append(line)
        used += len(line) + 1
    return kept, len(skills) - len(kept)


def instructions_text(skills: Sequence[Skill], budget: int = DEFAULT_BUDGET) -> str | None:
    """The ``<skills_instructions>`` text for ``skills`` (None when there are none)."""
    if not skills:
        return None
    lines, omitted = _fit(skills, budget)
    parts = ["<skills_instructions>", "## Skills", _INTRO, "### Available skills", *lines]
    if omitted:
        parts.append(
            f"({omitted} more enabled skill{'s' if omitted != 1 else ''} left out of this list "
            "to keep it short; the user can still name them with `$name`.)"
        )
    parts += ["### How to use skills", _HOW, "</skills_instructions>"]
    return "\n".join(parts)


def skill_message(skill: Skill, contents: str) -> dict[str, Any]:
    """The ``user`` message that hands a named skill's ``SKILL.md`` to the model."""
    text = f"<skill>\n<name>{skill.name}</name>\n<path>{skill.path}</path>\n{contents}\n</skill>"
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def mentioned_skills(user_input: Iterable[dict[str, Any]], enabled: Sequence[Skill]) -> list[Skill]:
    """The enabled skills the user named, in the order of ``enabled``, each once.

    Structured ``skill`` items and ``[$name](path)`` links select by path; a
    plain ``$name`` selects only when exactly one enabled skill has that
    name, and never a common environment variable (``$HOME``).
    """
    by_path = {s.path: s for s in enabled}
    counts: dict[str, int] = {}
    for skill in enabled:
        counts[skill.name] = counts.get(skill.name, 0) + 1
    chosen: dict[str, Skill] = {}
    blocked: set[str] = set()
    items = list(user_input)
    for item in items:
        if item.get("type") == "skill" and isinstance(item.get("path"), str):
            blocked.add(str(item.get("name")))
            picked = by_path.get(_skill_path(item["path"]))
            if picked is not None:
                chosen.setdefault(picked.path, picked)
    names: set[str] = set()
    for item in items:
        text = item.get("text") if item.get("type") == "text" else None
        if not isinstance(text, str) or "$" not in text:
            continue
        for name, target in _LINKED.findall(text):
            linked = by_path.get(_skill_path(target.strip()))
            if linked is not None:
                chosen.setdefault(linked.path, linked)
            elif not target.strip().startswith(("app://", "mcp://", "plugin://")):
                names.add(name)
        names.update(_PLAIN.findall(_LINKED.sub("", text)))
    for skill in enabled:
        name = skill.name
        if name in names and name not in blocked and name.upper() not in _COMMON_ENV:
            if counts.get(name) == 1:
                chosen.setdefault(skill.path, skill)
    return [s for s in enabled if s.path in chosen]


def _skill_path(path: str) -> str:
    return path.removeprefix("skill://")
