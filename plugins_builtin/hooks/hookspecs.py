"""The hook the ``hooks`` family publishes: hooks bundled in installed plugin bundles.

The marketplace family installs the reference's plugin bundles; a bundle may
ship a hooks file. This family asks for them here instead of reading the
marketplace's files, so either family can be left out.
"""

from __future__ import annotations

from typing import Any

from kernel import hookspec

__all__ = ["HooksSpec"]


class HooksSpec:
    """Hookspecs of the ``hooks`` family (docs/hooks_family.md)."""

    @hookspec
    def hooks_bundles(self) -> list[dict[str, Any]] | None:
        """The hooks files of installed, enabled plugin bundles.

        When: every time hooks are discovered (``hooks/list``, and once per
        turn that fires an event), so an install or uninstall shows at once.

        Parameters: none.

        Returns: None, or a list of mappings: ``pluginId`` (``name@marketplace``),
        ``root`` (the installed bundle's folder, ``${PLUGIN_ROOT}``),
        ``hooksFile`` (the absolute path of its hooks.json), ``relativePath``
        (that path relative to ``root``, part of each hook's key), ``version``
        (the installed version: a new version must be trusted again) and
        ``dataDir`` (a folder the bundle may write, ``${PLUGIN_DATA}``). Lists
        of all plugins are concatenated.

        Errors: logged with traceback; that plugin's bundles are left out.
        """
