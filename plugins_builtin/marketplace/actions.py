"""``plugin/install`` and ``plugin/uninstall``: bundles into and out of the cache.

Install checks first and copies after: the marketplace and its entry must
exist, ``NOT_AVAILABLE`` (and a catalog's ``DISABLED_BY_ADMIN``) refuses
before anything is fetched. The bundle then comes from its local directory,
a git clone (:mod:`.gitops`) or the catalog's download (:mod:`.catalog`),
is copied into the cache (:mod:`.store`), and ``[plugins."<id>"] enabled =
true`` is written (:mod:`.configio`). Uninstall removes both and is
idempotent.
"""

from __future__ import annotations

import os
from typing import Any

from kernel import Kernel, RpcError
from kernel.rpc.errors import INTERNAL_ERROR, INVALID_REQUEST

from . import configio
from .catalog import CatalogClient, CatalogError
from .detail import apps
from .gitops import GitError, clone, describe, discard
from .manifest import Entry, Marketplace, MarketplaceError, inside, load_manifest, load_marketplace
from .names import NAME_RULE, valid_name
from .store import InstallError, Record, install_bundle, remove_bundle, scan

__all__ = ["install_local", "install_remote", "uninstall"]


def _invalid(message: str) -> RpcError:
    return RpcError(INVALID_REQUEST, message)


def resolve(path: str, plugin: str) -> tuple[Marketplace, Entry]:
    """The marketplace file at ``path`` and its entry ``plugin`` (blocking)."""
    try:
        market = load_marketplace(path)
    except MarketplaceError as exc:
        raise _invalid(str(exc)) from None
    entry = market.entry(plugin)
    if entry is None:
        raise _invalid(f"plugin `{plugin}` was not found in marketplace `{market.name}`")
    return market, entry


def _answer(auth_policy: str, bundle_root: str) -> dict[str, Any]:
    """``PluginInstallResponse``: with ``ON_INSTALL``, the bundle's apps need connecting now."""
    manifest = load_manifest(bundle_root)
    needing = apps(manifest) if manifest is not None and auth_policy == "ON_INSTALL" else []
    return {"authPolicy": auth_policy, "appsNeedingAuth": needing}


async def install_local(
    kernel: Kernel, owner: object, marketplace_path: str, plugin: str, git_timeout: float
) -> tuple[dict[str, Any], Record]:
    """Install ``plugin`` from the local marketplace file ``marketplace_path``."""
    market, entry = await kernel.blocking.run(owner, resolve, marketplace_path, plugin, timeout=30)
    if entry.install_policy == "NOT_AVAILABLE":
        raise _invalid(
            f"plugin `{plugin}` is not available for install in marketplace `{market.name}`"
        )
    home = str(kernel.home)
    meta = {
        "marketplacePath": market.path,
        "marketplaceDisplayName": market.display_name,
        "source": entry.source,
    }
    clone_dir = None
    try:
        if entry.source["type"] == "git":
            staging = os.path.join(home, "plugins", ".staging")
            try:
                clone_dir, _ = await clone(
                    kernel,
                    entry.source["url"],
                    staging,
                    ref=entry.source.get("refName"),
                    sha=entry.source.get("sha"),
                    timeout=git_timeout,
                )
            except GitError as exc:
                raise RpcError(
                    INTERNAL_ERROR, f"failed to clone plugin `{plugin}`: {describe(exc)}"
                ) from None
            sub = entry.source.get("path")
            bundle = inside(clone_dir, sub) if sub else clone_dir
            if bundle is None:
                raise _invalid(f"plugin `{plugin}`: source path {sub!r} leaves the repository")
        else:
            bundle = entry.source["path"]
        if load_manifest(bundle) is None:
            raise _invalid("missing plugin.json")
        record = await _install(kernel, owner, market.name, plugin, bundle, meta)
    finally:
        if clone_dir is not None:
            await discard(kernel, owner, clone_dir)
    answer = await kernel.blocking.run(owner, _answer, entry.auth_policy, record.root, timeout=30)
    return answer, record


async def _install(
    kernel: Kernel, owner: object, market: str, plugin: str, bundle: str, meta: dict[str, Any]
) -> Record:
    home = str(kernel.home)
    try:
        record: Record = await kernel.blocking.run(
            owner, install_bundle, home, market, plugin, bundle, meta, timeout=300
        )
    except InstallError as exc:
        raise _invalid(str(exc)) from None
    await configio.set_enabled(kernel, record.id, True)
    return record


async def install_remote(
    kernel: Kernel,
    owner: object,
    catalog: CatalogClient,
    marketplace: str,
    plugin: str,
    connection: Any,
) -> tuple[dict[str, Any], Record]:
    """Install ``plugin`` from the catalog's marketplace ``marketplace``."""
    try:
        found = await catalog.find(marketplace, plugin, connection)
    except CatalogError as exc:
        raise _invalid(f"plugin catalog: {exc}") from None
    if found is None:
        raise _invalid(f"plugin `{plugin}` was not found in marketplace `{marketplace}`")
    market, entry = found
    if not (valid_name(marketplace) and valid_name(plugin)):
        raise _invalid(
            f"the catalog's names `{plugin}@{marketplace}` cannot be installed: {NAME_RULE}"
        )
    if entry.get("availability") == "DISABLED_BY_ADMIN":
        raise _invalid(
            f"plugin `{plugin}` in marketplace `{marketplace}` is disabled by an administrator"
        )
    if entry.get("installPolicy") == "NOT_AVAILABLE":
        raise _invalid(
            f"plugin `{plugin}` is not available for install in marketplace `{marketplace}`"
        )
    staging = os.path.join(str(kernel.home), "plugins", ".staging")
    try:
        unpacked = await catalog.download(entry, staging, connection)
    except CatalogError as exc:
        raise _invalid(f"plugin catalog: {exc}") from None
    try:
        bundle = _bundle_root(unpacked)
        if bundle is None:
            raise _invalid("missing plugin.json")
        meta = {
            "marketplacePath": None,
            "marketplaceDisplayName": market.get("displayName"),
            "source": {"type": "remote"},
            "remotePluginId": entry.get("id"),
        }
        record = await _install(kernel, owner, marketplace, plugin, bundle, meta)
    finally:
        await discard(kernel, owner, unpacked)
    auth = (
        entry.get("authPolicy")
        if entry.get("authPolicy") in ("ON_INSTALL", "ON_USE")
        else "ON_INSTALL"
    )
    answer = await kernel.blocking.run(owner, _answer, auth, record.root, timeout=30)
    return answer, record


def _bundle_root(unpacked: str) -> str | None:
    """The directory of an unpacked archive that holds the manifest (root or single child)."""
    if load_manifest(unpacked) is not None:
        return unpacked
    children = [e.path for e in os.scandir(unpacked) if e.is_dir(follow_symlinks=False)]
    if len(children) == 1 and load_manifest(children[0]) is not None:
        return children[0]
    return None


async def uninstall(kernel: Kernel, owner: object, plugin_id: str) -> bool:
    """Remove ``plugin@marketplace`` (or a catalog's remote id): cache and config. Idempotent."""
    if "@" not in plugin_id:
        records = await kernel.blocking.run(owner, scan, str(kernel.home), timeout=30)
        matches = [r for r in records.values() if r.remote_plugin_id == plugin_id]
        if not matches:
            raise _invalid(
                f"plugin id `{plugin_id}` is neither `<plugin>@<marketplace>` nor the remote id "
                "of an installed plugin"
            )
        plugin_id = matches[0].id
    plugin, _, market = plugin_id.rpartition("@")
    if not (valid_name(plugin) and valid_name(market)):
        raise _invalid(
            f"invalid plugin id `{plugin_id}`: expected `<plugin>@<marketplace>`; {NAME_RULE}"
        )
    home = str(kernel.home)
    removed = await kernel.blocking.run(owner, remove_bundle, home, market, plugin, timeout=120)
    forgotten = await configio.forget_plugin(kernel, plugin_id)
    return bool(removed or forgotten)
