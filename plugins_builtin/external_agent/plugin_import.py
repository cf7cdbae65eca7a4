"""Importing PLUGINS through the marketplace family (``kernel.services["marketplace"]``).

For each marketplace of the item's ``details.plugins``, the plugins this
server does not have yet (installed, or named in ``[plugins]``: a re-import
adds nothing and a plugin the user disabled stays disabled) are installed:

* the marketplace's source (:mod:`.marketplaces`) is added with the
  service's ``add_marketplace`` (an identical source already added is
  reused), then each plugin is installed from it;
* with no source, a marketplace this server already sees under that name
  is installed from directly (the reference fails here);
* a local directory is added and installed before the import answers; a
  git or GitHub source is cloned afterwards, in the background, as the
  reference does (:class:`DeferredPlugins`, reported in a progress
  notification of its own before the completion).

Every plugin that cannot be installed is its own ``plugin_import`` failure
whose ``source`` is ``<plugin>@<marketplace>`` and whose message is the
marketplace family's (not found, not available, clone failed...); the
others still install. A success's ``source`` is the other agent's id, its
``target`` the installed id (the same unless the marketplace file declares
another name).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import attrs

from kernel import Kernel, RpcError

from .marketplaces import MarketplaceSource, marketplace_sources
from .model import ItemResult
from .source import Scope, effective_settings

__all__ = ["DeferredPlugins", "PluginImporter"]

log = logging.getLogger("plugins.external_agent")

STAGE = "plugin_import"
UNSUPPORTED = (
    "installing the other agent's plugins needs the marketplace family, which is not loaded "
    "on this server"
)
MISSING_DETAILS = "plugins migration item is missing details"
_SHUT_DOWN = "the server shut down before this plugin was installed"


@attrs.frozen
class _Group:
    """One marketplace's plugins still to install (names as the other agent has them)."""

    marketplace: str
    source: MarketplaceSource | None
    plugins: tuple[str, ...]


@attrs.define
class DeferredPlugins:
    """The git marketplaces of one PLUGINS item, imported after the answer."""

    cwd: str | None
    groups: list[_Group] = attrs.Factory(list)


class PluginImporter:
    """Installs the other agent's plugins for one kernel; ``owner`` is charged for blocking work."""

    def __init__(self, kernel: Kernel, owner: object, blocking: Callable[..., Any]) -> None:
        """Keep the kernel (services), the owner, and the caller's blocking runner."""
        self.kernel = kernel
        self.owner = owner
        self._blocking = blocking

    async def run(self, scope: Scope, details: Any, result: ItemResult) -> DeferredPlugins | None:
        """Import what can be now into ``result``; returns the git part for later (or None)."""
        groups = list(details.plugins) if details is not None else []
        market = self.kernel.services.get("marketplace")
        if market is None:
            ids: list[str | None] = [
                f"{n}@{g.marketplace_name}" for g in groups for n in g.plugin_names
            ]
            for plugin_id in ids or [None]:
                result.failure(STAGE, UNSUPPORTED, source=plugin_id, error_type="unsupported")
            return None
        if not groups:
            result.failure(STAGE, MISSING_DETAILS)
            return None
        settings = await self._blocking(effective_settings, scope.settings)
        sources = await self._blocking(marketplace_sources, scope, settings)
        present = market.present_plugin_ids()
        deferred = DeferredPlugins(scope.cwd)
        for group in groups:
            name = group.marketplace_name
            wanted = [p for p in dict.fromkeys(group.plugin_names) if f"{p}@{name}" not in present]
            if not wanted:
                continue
            todo = _Group(name, sources.get(name), tuple(wanted))
            if todo.source is not None and market.source_kind(todo.source.source) == "git":
                deferred.groups.append(todo)
            else:
                await self._group(market, todo, result)
        return deferred if deferred.groups else None

    async def run_deferred(
        self, deferred: DeferredPlugins, result: ItemResult, lock: asyncio.Lock
    ) -> None:
        """Import the git marketplaces holding ``lock`` (imports are serialized).

        On cancellation (shutdown) the plugins not reached are reported as
        failures, then the cancellation goes on.
        """
        market = self.kernel.services.get("marketplace")
        pending = list(deferred.groups)
        try:
            async with lock:
                while pending:
                    await self._group(market, pending[0], result)
                    pending.pop(0)
        except asyncio.CancelledError:
            for group in pending:
                for plugin in group.plugins:
                    plugin_id = f"{plugin}@{group.marketplace}"
                    if not any(s["source"] == plugin_id for s in result.successes):
                        result.failure(STAGE, _SHUT_DOWN, source=plugin_id)
            raise

    async def _group(self, market: Any, group: _Group, result: ItemResult) -> None:
        """Add one marketplace (when it has a source) and install its plugins, one by one."""
        name = group.marketplace
        where, declared = name, name
        if group.source is None:
            if name not in await market.installable(self.owner):
                message = f"external agent plugin marketplace source was not found: {name}"
                for plugin in group.plugins:
                    result.failure(STAGE, message, source=f"{plugin}@{name}")
                return
        else:
            try:
                added = await market.add_marketplace(
                    group.source.source, group.source.ref_name, self.owner
                )
            except Exception as exc:
                message = _message(exc, f"adding marketplace {name}")
                for plugin in group.plugins:
                    result.failure(STAGE, message, source=f"{plugin}@{name}")
                return
            where, declared = added["installedRoot"], added["marketplaceName"]
        for plugin in group.plugins:
            if f"{plugin}@{declared}" in market.present_plugin_ids():
                continue  # imported meanwhile (or under the marketplace's own name)
            try:
                plugin_id = await market.install(where, plugin, self.owner)
            except Exception as exc:
                message = _message(exc, f"installing plugin {plugin}@{name}")
                result.failure(STAGE, message, source=f"{plugin}@{name}")
                continue
            result.success(f"{plugin}@{name}", plugin_id)


def _message(exc: Exception, what: str) -> str:
    """The marketplace family's message, or (logged) a generic one for anything else."""
    if isinstance(exc, RpcError):
        return exc.message
    log.error("%s failed", what, exc_info=exc)
    return f"{what} failed: internal error (see the server log)"
