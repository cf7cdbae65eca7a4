"""The ``skills`` plugin: ``skills/list``, ``skills/config/write``, ``skills/changed``.

Skills (``SKILL.md`` instructions in user, project, plugin and system
directories) are listed for clients and offered to the model through the
threads family's ``threads_context`` hook. See docs/skills.md.
"""

from __future__ import annotations

from .plugin import SkillsPlugin

__all__ = ["SkillsPlugin"]
