"""The hook the ``skills`` family publishes, for other plugins to implement.

* :meth:`SkillsSpec.skills_roots`: more directories of skills (the
  ``marketplace`` family contributes its installed plugins' skills).

Other families also reach the skills family through ``kernel.services["skills"]``
(:class:`plugins_builtin.skills.service.SkillsAccess`): ``invalidate(reason)``
tells it that skills changed in a way no file watch sees (a plugin was
installed, enabled or removed), so cached lists are dropped and clients get
``skills/changed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernel import hookspec

__all__ = ["SkillsSpec"]


class SkillsSpec:
    """Hook specifications of the skills family."""

    @hookspec
    def skills_roots(self) -> list[Mapping[str, Any]] | None:
        """Contribute directories to scan for skills (``user`` scope).

        When: every time skills are listed (``skills/list``) or offered to the
        model (each turn), unless a cached list is still valid; keep it cheap
        (no network, little disk).

        Parameters: none.

        Returns: None, or a list of mappings with ``path`` (an absolute
        directory, scanned like every skills root), and optionally
        ``pluginId`` (the owning bundle's id, ``name@marketplace``, reported as
        the skills' ``pluginId``), ``namespace`` (prefixes the skills' names:
        ``<namespace>:<skill>``) and ``pluginRoot`` (the bundle's directory,
        whose ``assets/`` may hold the skills' icons). Every plugin's roots
        are scanned, in load order.

        Errors: logged with traceback; skills are listed without that
        plugin's roots.
        """
