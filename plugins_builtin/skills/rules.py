"""Which skills are enabled: ``[[skills.config]]`` rules in config.toml, and writing them.

Each rule selects skills by ``path`` (a ``SKILL.md``) or by ``name`` and
sets ``enabled``::

    [[skills.config]]
    name = "greet"
    enabled = false

Rules apply in file order, a later rule winning over an earlier one for the
same skill; a skill no rule selects is enabled. An entry with both
selectors, or neither, is ignored (logged), as the reference does.

``skills/config/write`` replaces the rules with the same selector by one new
rule at the end, so the written state is the effective one. Writing
``enabled = true`` for a skill nothing else disables leaves no rule behind
(the default needs none). The write goes through
:meth:`kernel.Kernel.write_config` (locked read-modify-write off the event
loop, atomic replace, other content kept, checked against the settings
catalog), which then runs every plugin's ``kernel_config_changed``: the
skills family's own drops its cached lists and sends ``skills/changed``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from kernel import Kernel

from .parse import Skill

__all__ = ["Rule", "disabled_paths", "effective", "read_rules", "write_rule"]

log = logging.getLogger("plugins.skills")


@attrs.frozen
class Rule:
    """One ``[[skills.config]]`` entry: ``("path", p)`` or ``("name", n)`` and ``enabled``."""

    kind: str
    value: str
    enabled: bool


def _selector(entry: Any) -> tuple[str, str] | None:
    if not isinstance(entry, dict):
        return None
    path, name = entry.get("path"), entry.get("name")
    if isinstance(path, str) and name is None and os.path.isabs(path):
        return "path", os.path.realpath(path)
    if isinstance(name, str) and path is None and name.strip():
        return "name", name.strip()
    log.warning("ignoring a skills.config entry without exactly one of path or name")
    return None


def read_rules(skills_table: Any) -> list[Rule]:
    """The rules of a ``[skills]`` table (later ones replace earlier ones of the same selector)."""
    entries = skills_table.get("config") if isinstance(skills_table, dict) else None
    rules: list[Rule] = []
    for entry in entries if isinstance(entries, list) else []:
        selector = _selector(entry)
        if selector is None or not isinstance(entry.get("enabled", True), bool):
            continue
        rules = [r for r in rules if (r.kind, r.value) != selector]
        rules.append(Rule(selector[0], selector[1], bool(entry.get("enabled", True))))
    return rules


def disabled_paths(skills: Iterable[Skill], rules: Sequence[Rule]) -> set[str]:
    """The ``SKILL.md`` paths the rules leave disabled."""
    disabled: set[str] = set()
    by_name: dict[str, list[str]] = {}
    for skill in skills:
        by_name.setdefault(skill.name, []).append(skill.path)
    for rule in rules:
        paths = [rule.value] if rule.kind == "path" else by_name.get(rule.value, [])
        for path in paths:
            if rule.enabled:
                disabled.discard(path)
            else:
                disabled.add(path)
    return disabled


async def write_rule(
    kernel: Kernel, kind: str, value: str, enabled: bool, known: Sequence[Skill]
) -> None:
    """Record ``enabled`` for the skills ``(kind, value)`` selects, in config.toml.

    ``known`` are the skills found last, used to tell whether an ``enabled``
    rule is needed at all (another rule still disabling the skill).
    """
    selected = os.path.realpath(value) if kind == "path" else value

    def change(user: dict[str, Any]) -> None:
        table = user.setdefault("skills", {})
        if not isinstance(table, dict):
            table = user["skills"] = {}
        entries = table.get("config")
        kept = (
            [e for e in entries if _selector(e) != (kind, selected)]
            if isinstance(entries, list)
            else []
        )
        if not enabled or _still_disabled(kept, kind, selected, known):
            kept.append({kind: selected, "enabled": enabled})
        if kept:
            table["config"] = kept
        else:
            table.pop("config", None)
            if not table:
                user.pop("skills", None)

    await kernel.write_config(change)


def effective(rules: Sequence[Rule], kind: str, value: str, known: Sequence[Skill]) -> bool:
    """Whether what ``(kind, value)`` selects is enabled under ``rules``.

    With known skills selected, all of them must be enabled; without, the
    last rule with this very selector decides (enabled when there is none).
    """
    selected = os.path.realpath(value) if kind == "path" else value
    targets = [s for s in known if (s.path if kind == "path" else s.name) == selected]
    if targets:
        return not (disabled_paths(targets, rules) & {s.path for s in targets})
    same = [r for r in rules if (r.kind, r.value) == (kind, selected)]
    return same[-1].enabled if same else True


def _still_disabled(entries: list[Any], kind: str, value: str, known: Sequence[Skill]) -> bool:
    """Whether the remaining rules would still disable what ``(kind, value)`` selects."""
    targets = [s for s in known if (s.path if kind == "path" else s.name) == value]
    if not targets:
        return False
    rules = read_rules({"config": entries})
    return bool(disabled_paths(targets, rules) & {s.path for s in targets})
