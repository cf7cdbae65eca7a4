"""What the marketplace family offers other families: ``kernel.services["marketplace"]``.

An importer (the ``external_agent`` family bringing over another agent's
plugins) adds marketplaces and installs bundles exactly as ``marketplace/add``
and ``plugin/install`` do, without importing this package::

    market = kernel.services.get("marketplace")
    if market is not None and market.enabled:
        added = await market.add_marketplace("/srv/market", None, owner)
        plugin_id = await market.install(added["installedRoot"], "alpha", owner)

Both go through the family's own functions, gated by ``[features] plugins``
and serialized with ``marketplace/*`` and ``plugin/*`` by the family's
mutation lock; an install re-reads the installed bundles and tells the
skills family, as ``plugin/install`` does. Errors are
:class:`kernel.RpcError` carrying the family's own messages (the same a
client of ``marketplace/add`` or ``plugin/install`` would see). ``owner`` is
whom blocking work is charged to (a connection, or the calling plugin).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from kernel import Kernel, RpcError
from kernel.rpc.errors import INVALID_REQUEST

from .actions import install_local
from .discovery import Found, discover
from .gitops import parse_source
from .manifest import MARKETPLACE_FILES, marketplace_file
from .sources import add_marketplace

if TYPE_CHECKING:
    from .plugin import MarketplacePlugin

__all__ = ["MarketplaceAccess"]


class MarketplaceAccess:
    """Marketplaces and bundle installs for other families; see the module docstring."""

    def __init__(self, plugin: MarketplacePlugin) -> None:
        self._plugin = plugin

    @property
    def _kernel(self) -> Kernel:
        kernel = self._plugin.kernel
        assert kernel is not None, "the marketplace family is not configured yet"
        return kernel

    @property
    def enabled(self) -> bool:
        """``[features] plugins`` is not false: adding and installing are allowed."""
        return self._kernel.config.get("features.plugins") is not False

    def source_kind(self, source: str) -> str | None:
        """``"local"`` or ``"git"`` for a ``marketplace/add`` source; None when it is invalid.

        Pure (no file or network access): a local path need not exist yet.
        """
        try:
            kind, _ = parse_source(source)
        except RpcError:
            return None
        return kind

    def present_plugin_ids(self) -> frozenset[str]:
        """Ids (``<plugin>@<marketplace>``) installed, or named in ``[plugins]`` of config.toml.

        A bundle the user has in either way is theirs already: an importer
        leaves it alone (the user may have disabled it on purpose).
        """
        installed = self._plugin.installed
        ids = set(installed.bundles) if installed is not None else set()
        table = self._kernel.config.get("plugins")
        if isinstance(table, dict):
            ids.update(key for key in table if isinstance(key, str))
        return frozenset(ids)

    async def installable(self, owner: object) -> dict[str, frozenset[str]]:
        """The marketplaces this server sees without a project, with their installable entries.

        Marketplace name → names of its entries whose ``policy.installation``
        is not ``NOT_AVAILABLE``. Seen are the user's
        ``$HOME/.agents/plugins/marketplace.json`` and every
        ``[marketplaces.<name>]``; files that cannot be read are left out.
        """
        found = await self._seen(owner)
        return {
            market.name: frozenset(
                e.name for e in market.entries if e.install_policy != "NOT_AVAILABLE"
            )
            for market in found.marketplaces
        }

    async def _seen(self, owner: object) -> Found:
        """The marketplaces of :meth:`installable` (discovered in a blocking thread)."""
        kernel = self._kernel
        found: Found = await kernel.blocking.run(
            owner,
            discover,
            (),
            str(kernel.home),
            self._plugin.user_home,
            kernel.config.get("marketplaces"),
            timeout=60,
        )
        return found

    async def add_marketplace(
        self, source: str, ref_name: str | None, owner: object
    ) -> dict[str, Any]:
        """``marketplace/add``: ``{marketplaceName, installedRoot, alreadyAdded}``.

        ``source`` is an absolute directory, a git URL or GitHub's
        ``owner/repo``; a git one is cloned through the process family.
        Adding an identical source again answers ``alreadyAdded: true``.
        Raises :class:`kernel.RpcError` with ``marketplace/add``'s messages.
        """
        added: dict[str, Any] = await self._plugin.locked(
            lambda kernel, git_timeout: add_marketplace(
                kernel, owner, source, ref_name, [], git_timeout
            )
        )
        return added

    async def install(self, marketplace: str, plugin_name: str, owner: object) -> str:
        """``plugin/install`` of ``plugin_name``; returns the installed bundle's id.

        ``marketplace`` is a marketplace file, the directory holding one
        (``installedRoot`` of :meth:`add_marketplace`), or the name of a
        marketplace this server sees (see :meth:`installable`). Installing
        again replaces the cached copy, as ``plugin/install`` does. Raises
        :class:`kernel.RpcError` with ``plugin/install``'s messages (not
        found, ``NOT_AVAILABLE``, missing ``plugin.json``, clone failures)
        or ``marketplace `<name>` is not configured or installed``.
        """

        async def install(kernel: Kernel, git_timeout: float) -> str:
            path = await self._marketplace_path(marketplace, owner)
            _, record = await install_local(kernel, owner, path, plugin_name, git_timeout)
            await self._plugin.bundles_changed(owner, f"plugin {record.id} installed")
            return record.id

        plugin_id: str = await self._plugin.locked(install)
        return plugin_id

    async def _marketplace_path(self, marketplace: str, owner: object) -> str:
        """The marketplace file ``marketplace`` (a file, a directory, or a name) designates."""
        if os.path.isabs(marketplace):
            if not os.path.isdir(marketplace):
                return marketplace
            found = marketplace_file(marketplace)
            return found or os.path.join(marketplace, MARKETPLACE_FILES[0])
        for market in (await self._seen(owner)).marketplaces:
            if market.name == marketplace:
                return market.path
        raise RpcError(
            INVALID_REQUEST, f"marketplace `{marketplace}` is not configured or installed"
        )
