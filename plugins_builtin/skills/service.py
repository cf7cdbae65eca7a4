"""What the skills family offers other families: ``kernel.services["skills"]``.

::

    skills = kernel.services.get("skills")
    if skills is not None:
        skills.invalidate("plugin alpha@local-mkt installed")

A family whose actions change the skills without touching watched files
(the ``marketplace`` family installing, enabling or removing a plugin bundle)
calls :meth:`SkillsAccess.invalidate`; cached lists are dropped and clients
get ``skills/changed``. :meth:`SkillsAccess.list_skills` lists the skills
of one working directory as ``skills/list`` would (``SkillMetadata``
payloads), for families that show or use them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .discovery import SkillRoot, scan

if TYPE_CHECKING:
    from .catalog import SkillsCatalog

__all__ = ["SkillsAccess"]

log = logging.getLogger("plugins.skills")


class SkillsAccess:
    """The small surface other families use; see the module docstring."""

    def __init__(self, catalog: SkillsCatalog) -> None:
        self._catalog = catalog

    def invalidate(self, reason: str) -> None:
        """Skills changed (``reason`` is logged): drop caches, send ``skills/changed``."""
        log.info("skills changed: %s", reason)
        self._catalog.invalidate()

    async def skills_under(
        self,
        root: str,
        owner: object,
        *,
        namespace: str | None = None,
        plugin_id: str | None = None,
        plugin_root: str | None = None,
    ) -> list[dict[str, Any]]:
        """``SkillMetadata`` payloads of the skills under one directory (scanned now).

        ``namespace`` prefixes their names (``<namespace>:<skill>``);
        enablement follows ``[[skills.config]]``. Files that fail to parse
        are left out.
        """
        found = await self._catalog.kernel.blocking.run(
            owner,
            scan,
            [SkillRoot(root, "user", plugin_id, namespace, plugin_root)],
            timeout=60,
        )
        disabled = self._catalog.disabled(found.skills)
        return [s.wire(s.path not in disabled) for s in found.skills]

    async def list_skills(self, cwd: str | None, owner: object) -> list[dict[str, Any]]:
        """``SkillMetadata`` payloads of the skills of ``cwd`` (None: no project skills)."""
        (result,) = await self._catalog.scans([cwd], False, owner)
        disabled = self._catalog.disabled(result.skills)
        return [s.wire(s.path not in disabled) for s in result.skills]
