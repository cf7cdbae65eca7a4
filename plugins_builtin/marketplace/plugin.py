"""The ``marketplace`` plugin: the reference's plugin bundles and marketplaces.

"Plugin" in method names (``plugin/*``) and in ``[plugins."<id>"]`` means
the reference's installable bundles of skills, hooks, MCP servers and apps,
never a kernel plugin (those live under ``[kernel_plugins.<name>]``).

Listing is :mod:`.listing` (local) and :mod:`.remote` (the catalog of
:mod:`.catalog`); installs are :mod:`.actions`; marketplaces are added and
removed by :mod:`.sources`; the agent's view is :mod:`.model`. The whole
surface is off when ``[features] plugins = false`` (config or managed
requirements): lists are empty, everything else is refused, and bundles
give the agent nothing. See docs/marketplace.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import attrs

from kernel import AbsolutePath, Kernel, RequestContext, RpcError, SettingError, hookimpl, method
from kernel.config import Config
from kernel.rpc.errors import INVALID_REQUEST

from .actions import install_local, install_remote, resolve, uninstall
from .catalog import CatalogClient, CatalogError, valid_remote_id
from .listing import enabled_in, local_listing
from .model import Installed, capabilities_message, mentioned_ids, plugins_instructions
from .published import MarketplaceAccess
from .read import local_detail
from .remote import remote_detail, remote_entries, remote_summary
from .sources import add_marketplace, remove_marketplace, upgrade_marketplaces

__all__ = ["MarketplacePlugin", "MarketplaceSettings"]

log = logging.getLogger("plugins.marketplace")

Kind = Literal["local", "vertical", "workspace-directory", "shared-with-me", "created-by-me-remote"]
DISABLED = "plugins feature is disabled ([features] plugins = false)"


@attrs.frozen
class MarketplaceSettings:
    """``[kernel_plugins.marketplace]`` in config.toml."""

    catalog_url: str | None = None  # the remote plugin catalog's base URL (None: none)
    catalog_token_env: str | None = None  # env var holding a bearer token for the catalog
    catalog_ttl_seconds: float = 300.0
    catalog_timeout_seconds: float = 30.0
    git_timeout_seconds: float = 120.0

    def check(self, config: Config) -> None:
        """URL scheme and ranges."""
        if self.catalog_url is not None and not self.catalog_url.startswith(
            ("http://", "https://")
        ):
            raise SettingError("catalog_url", "must be an http:// or https:// URL")
        for key in ("catalog_ttl_seconds", "catalog_timeout_seconds", "git_timeout_seconds"):
            if getattr(self, key) < 0:
                raise SettingError(key, "must not be negative")


@attrs.frozen
class PluginListParams:
    cwds: list[AbsolutePath] | None = None
    marketplace_kinds: list[Kind] | None = None
    force_refetch: bool | None = None


@attrs.frozen
class PluginInstalledParams:
    cwds: list[AbsolutePath] | None = None
    install_suggestion_plugin_names: list[str] | None = None


@attrs.frozen
class PluginReadParams:
    plugin_name: str
    marketplace_path: AbsolutePath | None = None
    remote_marketplace_name: str | None = None


@attrs.frozen
class PluginInstallParams:
    plugin_name: str
    marketplace_path: AbsolutePath | None = None
    remote_marketplace_name: str | None = None
    install_attempt_id: str | None = None


@attrs.frozen
class PluginUninstallParams:
    plugin_id: str


@attrs.frozen
class PluginSkillReadParams:
    remote_marketplace_name: str
    remote_plugin_id: str
    skill_name: str


@attrs.frozen
class MarketplaceAddParams:
    source: str
    ref_name: str | None = None
    sparse_paths: list[str] | None = None


@attrs.frozen
class MarketplaceRemoveParams:
    marketplace_name: str


@attrs.frozen
class MarketplaceUpgradeParams:
    marketplace_name: str | None = None


def _invalid(message: str) -> RpcError:
    return RpcError(INVALID_REQUEST, message)


class MarketplacePlugin:
    """Plugin bundles and marketplaces; see the module docstring."""

    def __init__(self) -> None:
        self.settings = MarketplaceSettings()
        self.kernel: Kernel | None = None
        self.installed: Installed | None = None
        self.catalog: CatalogClient | None = None
        self.user_home = os.environ.get("HOME") or os.path.expanduser("~")
        self._mutating = asyncio.Lock()

    # -- hooks ------------------------------------------------------------------------

    @hookimpl
    def kernel_config_keys(self) -> dict[str, Any]:
        return {"plugins": dict[str, Any] | None, "marketplaces": dict[str, Any] | None}

    @hookimpl
    def kernel_configure(self, kernel: Kernel, settings: MarketplaceSettings) -> None:
        self.settings = settings
        self.kernel = kernel
        self.installed = Installed(str(kernel.home))
        kernel.services["marketplace"] = MarketplaceAccess(self)
        if settings.catalog_url:
            self.catalog = CatalogClient(
                kernel,
                settings.catalog_url,
                settings.catalog_token_env,
                settings.catalog_ttl_seconds,
                settings.catalog_timeout_seconds,
            )

    @hookimpl
    async def kernel_startup(self, kernel: Kernel) -> None:
        assert self.installed is not None
        await kernel.blocking.run(self, self.installed.refresh, timeout=60)

    @hookimpl
    async def kernel_shutdown(self, kernel: Kernel) -> None:
        if self.catalog is not None:
            await self.catalog.close()

    # -- the gate and shared helpers ------------------------------------------------------

    def _on(self) -> bool:
        """``[features] plugins`` (any layer, managed requirements included) is not false."""
        assert self.kernel is not None
        return self.kernel.config.get("features.plugins") is not False

    def _require_on(self) -> None:
        if not self._on():
            raise _invalid(DISABLED)

    def _plugins_table(self) -> Any:
        assert self.kernel is not None
        return self.kernel.config.get("plugins")

    async def _changed(self, owner: object, reason: str) -> None:
        """Bundles changed: re-read the index, tell the skills family."""
        assert self.kernel is not None and self.installed is not None
        await self.kernel.blocking.run(owner, self.installed.refresh, timeout=60)
        skills = self.kernel.services.get("skills")
        if skills is not None:
            skills.invalidate(reason)

    async def locked(self, action: Callable[[Kernel, float], Awaitable[Any]]) -> Any:
        """For :mod:`.published`: ``action(kernel, git_timeout)`` gated, under the mutation lock."""
        self._require_on()
        assert self.kernel is not None
        async with self._mutating:
            return await action(self.kernel, self.settings.git_timeout_seconds)

    async def bundles_changed(self, owner: object, reason: str) -> None:
        """For :mod:`.published`: re-read the installed bundles, tell the skills family."""
        await self._changed(owner, reason)

    # -- listing ------------------------------------------------------------------------

    async def _local(
        self, ctx: RequestContext, cwds: list[str], installed_only: bool, suggestions: list[str]
    ) -> dict[str, Any]:
        kernel = ctx.kernel
        return await kernel.blocking.run(
            ctx.connection,
            lambda: local_listing(
                str(kernel.home),
                self.user_home,
                cwds,
                kernel.config.get("marketplaces"),
                self._plugins_table(),
                installed_only=installed_only,
                suggestions=suggestions,
            ),
            timeout=120,
        )

    def _remote_installed(self, listing: dict[str, Any] | None) -> list[dict[str, Any]]:
        """Catalog bundles that are installed, summarized without asking the catalog."""
        assert self.installed is not None
        table = self._plugins_table()
        known = {}
        for market in (listing or {}).get("marketplaces") or []:
            for entry in market.get("plugins") or [] if isinstance(market, dict) else []:
                if isinstance(entry, dict):
                    known[f"{entry.get('name')}@{market.get('name')}"] = entry
        groups: dict[str, list[dict[str, Any]]] = {}
        names: dict[str, str | None] = {}
        for bundle in self.installed.bundles.values():
            record = bundle.record
            if record.remote_plugin_id is None:
                continue
            entry = known.get(record.id, {"name": record.plugin, "id": record.remote_plugin_id})
            summary = remote_summary(
                record.marketplace, entry, record, enabled_in(table, record.id)
            )
            groups.setdefault(record.marketplace, []).append(summary)
            names[record.marketplace] = record.display_name
        return [
            {"name": m, "path": None, "interface": {"displayName": names[m]} if names[m] else None,
             "plugins": sorted(groups[m], key=lambda s: s["name"])}
            for m in sorted(groups)
        ]  # fmt: skip

    @method("plugin/list")
    async def plugin_list(self, params: PluginListParams, ctx: RequestContext) -> dict[str, Any]:
        """Marketplaces and their bundles (local, plus the catalog when configured)."""
        empty: dict[str, Any] = {
            "marketplaces": [],
            "marketplaceLoadErrors": [],
            "featuredPluginIds": [],
        }
        if not self._on():
            return empty
        kinds = params.marketplace_kinds
        other = sorted({k for k in kinds or () if k not in ("local", "vertical")})
        if other:
            raise _invalid(
                f"list remote plugin catalog: `{other[0]}` marketplaces are not served here"
            )
        asked_remote = kinds is not None and "vertical" in kinds
        if asked_remote and self.catalog is None:
            raise _invalid(
                "list remote plugin catalog: no plugin catalog is configured "
                "([kernel_plugins.marketplace] catalog_url)"
            )
        result = dict(empty)
        if kinds is None or "local" in kinds:
            result.update(await self._local(ctx, list(params.cwds or []), False, []))
        if self.catalog is not None and (kinds is None or asked_remote):
            try:
                listing = await self.catalog.listing(bool(params.force_refetch), ctx.connection)
            except CatalogError as exc:
                if asked_remote:
                    raise _invalid(f"list remote plugin catalog: {exc}") from None
                log.warning("plugin catalog left out of plugin/list: %s", exc)
                result["marketplaces"] = [*result["marketplaces"], *self._remote_installed(None)]
            else:
                assert self.installed is not None
                records = {i: b.record for i, b in self.installed.bundles.items()}
                table = self._plugins_table()
                entries = remote_entries(listing, records, lambda i: enabled_in(table, i), False)
                result["marketplaces"] = [*result["marketplaces"], *entries]
                listed = {p["id"] for m in result["marketplaces"] for p in m["plugins"]}
                featured = listing.get("featuredPluginIds")
                result["featuredPluginIds"] = [
                    f for f in featured if isinstance(f, str) and f in listed
                ] if isinstance(featured, list) else []  # fmt: skip
        return result

    @method("plugin/installed")
    async def plugin_installed(
        self, params: PluginInstalledParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """Installed bundles only (never asks the catalog: clients call this at startup)."""
        if not self._on():
            return {"marketplaces": [], "marketplaceLoadErrors": []}
        suggestions = list(params.install_suggestion_plugin_names or [])
        result = await self._local(ctx, list(params.cwds or []), True, suggestions)
        cached = self.catalog.cached_listing() if self.catalog is not None else None
        result["marketplaces"] = [*result["marketplaces"], *self._remote_installed(cached)]
        return result

    # -- one bundle ---------------------------------------------------------------------

    @method("plugin/read")
    async def plugin_read(self, params: PluginReadParams, ctx: RequestContext) -> dict[str, Any]:
        """A bundle's details: skills, hooks, MCP servers, apps, interface."""
        self._require_on()
        if (params.marketplace_path is None) == (params.remote_marketplace_name is None):
            raise _invalid(
                "plugin/read requires exactly one of marketplacePath or remoteMarketplaceName"
            )
        assert self.installed is not None
        table = self._plugins_table()
        if params.remote_marketplace_name is not None:
            catalog = self._catalog("plugin/read")
            try:
                found = await catalog.find(
                    params.remote_marketplace_name, params.plugin_name, ctx.connection
                )
            except CatalogError as exc:
                raise _invalid(f"plugin catalog: {exc}") from None
            if found is None:
                raise _invalid(
                    f"plugin `{params.plugin_name}` was not found in marketplace "
                    f"`{params.remote_marketplace_name}`"
                )
            remote_market, remote_entry = found
            plugin_id = f"{params.plugin_name}@{remote_market['name']}"
            bundle = self.installed.bundles.get(plugin_id)
            record = bundle.record if bundle is not None else None
            enabled = enabled_in(table, plugin_id)
            return {"plugin": remote_detail(remote_market, remote_entry, record, enabled)}
        market, entry = await ctx.kernel.blocking.run(
            ctx.connection, resolve, params.marketplace_path, params.plugin_name, timeout=30
        )
        detail = await local_detail(ctx, market, entry, self.installed.bundles, table)
        return {"plugin": detail}

    def _catalog(self, what: str) -> CatalogClient:
        if self.catalog is None:
            raise _invalid(
                f"{what}: no plugin catalog is configured "
                "([kernel_plugins.marketplace] catalog_url)"
            )
        return self.catalog

    @method("plugin/install")
    async def plugin_install(
        self, params: PluginInstallParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """Copy a bundle into the cache and enable it (refused while the feature is off)."""
        self._require_on()
        if (params.marketplace_path is None) == (params.remote_marketplace_name is None):
            raise _invalid(
                "plugin/install requires exactly one of marketplacePath or remoteMarketplaceName"
            )
        async with self._mutating:
            if params.remote_marketplace_name is not None:
                catalog = self._catalog("plugin/install")
                answer, record = await install_remote(
                    ctx.kernel, ctx.connection, catalog, params.remote_marketplace_name,
                    params.plugin_name, ctx.connection,
                )  # fmt: skip
            else:
                assert params.marketplace_path is not None
                answer, record = await install_local(
                    ctx.kernel, ctx.connection, params.marketplace_path, params.plugin_name,
                    self.settings.git_timeout_seconds,
                )  # fmt: skip
            await self._changed(ctx.connection, f"plugin {record.id} installed")
        return answer

    @method("plugin/uninstall")
    async def plugin_uninstall(
        self, params: PluginUninstallParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """Remove a bundle's cache and config entry; uninstalling twice is fine."""
        self._require_on()
        async with self._mutating:
            if await uninstall(ctx.kernel, ctx.connection, params.plugin_id):
                await self._changed(ctx.connection, f"plugin {params.plugin_id} uninstalled")
        return {}

    @method("plugin/skill/read")
    async def plugin_skill_read(
        self, params: PluginSkillReadParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """A catalog bundle's skill, as markdown (``contents: null`` when it has none)."""
        self._require_on()
        if not valid_remote_id(params.remote_plugin_id):
            raise _invalid(
                "invalid remote plugin id: only ASCII letters, digits, `_`, `-`, and `~` are "
                "allowed"
            )
        catalog = self._catalog("read remote plugin skill details")
        try:
            found = await catalog.find(
                params.remote_marketplace_name, params.remote_plugin_id, ctx.connection, by_id=True
            )
            if found is None:
                raise _invalid(
                    f"plugin `{params.remote_plugin_id}` was not found in marketplace "
                    f"`{params.remote_marketplace_name}`"
                )
            name = params.skill_name.removeprefix(f"{found[1].get('name')}:")
            contents = await catalog.skill(params.remote_plugin_id, name, ctx.connection)
        except CatalogError as exc:
            raise _invalid(f"read remote plugin skill details: {exc}") from None
        return {"contents": contents}

    # -- marketplaces -------------------------------------------------------------------

    @method("marketplace/add")
    async def marketplace_add(
        self, params: MarketplaceAddParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """Record a local marketplace directory, or clone a git one."""
        self._require_on()
        async with self._mutating:
            return await add_marketplace(
                ctx.kernel, ctx.connection, params.source, params.ref_name,
                list(params.sparse_paths or []), self.settings.git_timeout_seconds,
            )  # fmt: skip

    @method("marketplace/remove")
    async def marketplace_remove(
        self, params: MarketplaceRemoveParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """Forget a marketplace (its installed bundles stay installed)."""
        self._require_on()
        async with self._mutating:
            return await remove_marketplace(ctx.kernel, ctx.connection, params.marketplace_name)

    @method("marketplace/upgrade")
    async def marketplace_upgrade(
        self, params: MarketplaceUpgradeParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """Refresh git marketplaces whose remote moved."""
        self._require_on()
        async with self._mutating:
            return await upgrade_marketplaces(
                ctx.kernel, ctx.connection, params.marketplace_name,
                self.settings.git_timeout_seconds,
            )  # fmt: skip

    # -- the agent (the skills and threads families' hooks) -------------------------------

    @hookimpl
    def skills_roots(self) -> list[dict[str, Any]] | None:
        """Skills of installed, enabled bundles (``<plugin>:<skill>``)."""
        if self.installed is None or self.kernel is None or not self._on():
            return None
        return self.installed.skill_roots(self._plugins_table())

    @hookimpl
    def config_features(self) -> list[dict[str, Any]]:
        """``[features] plugins`` turns the bundles on and off."""
        return [{"name": "plugins", "stage": "stable", "defaultEnabled": True}]

    @hookimpl
    def hooks_bundles(self) -> list[dict[str, Any]] | None:
        """Hooks files of installed, enabled bundles (the hooks family runs them once trusted)."""
        if self.installed is None or self.kernel is None or not self._on():
            return None
        data_root = os.path.join(str(self.kernel.home), "plugins", "data")
        return self.installed.hook_files(self._plugins_table(), data_root)

    @hookimpl
    async def threads_context(
        self, turn: Any, user_input: list[dict[str, Any]]
    ) -> list[dict[str, Any]] | None:
        """``<plugins_instructions>``; bundles the user named join the conversation."""
        if self.installed is None or self.kernel is None or not self._on():
            return None
        enabled = self.installed.enabled(self._plugins_table())
        by_id = {b.record.id: b for b in enabled}
        named = [by_id[i] for i in mentioned_ids(user_input or []) if i in by_id]
        messages = [m for m in (capabilities_message(b) for b in named) if m is not None]
        if messages:
            await turn.add_to_history(messages)
        text = plugins_instructions(enabled)
        if text is None:
            return None
        return [
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": text}],
            }
        ]
