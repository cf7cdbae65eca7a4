"""``marketplace/add``, ``marketplace/remove`` and ``marketplace/upgrade``.

A local directory is recorded as it is (nothing is copied); a git source is
cloned (:mod:`.gitops`) into ``<home>/marketplaces/<name>/``, ``name``
being the one its marketplace file declares (a valid name, :mod:`.names`:
the directory is named exactly so, where discovery looks for it). Both are recorded under
``[marketplaces.<name>]`` (:mod:`.configio`). Adding the same source again
answers ``alreadyAdded: true``; another source under a taken name is
refused. ``marketplace/upgrade`` asks each git marketplace's remote for its
head and re-clones only those that moved, swapping the new clone in whole.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any

from kernel import Kernel, RpcError
from kernel.rpc.errors import INTERNAL_ERROR, INVALID_REQUEST

from . import configio
from .discovery import configured_root
from .gitops import GitError, clone, describe, discard, parse_source, remote_head
from .manifest import MarketplaceError, load_marketplace, marketplace_file
from .names import bad_name, valid_name

__all__ = ["add_marketplace", "remove_marketplace", "upgrade_marketplaces"]

log = logging.getLogger("plugins.marketplace")


def _invalid(message: str) -> RpcError:
    return RpcError(INVALID_REQUEST, message)


def _clone_dir(home: str, name: str) -> str:
    """``<home>/marketplaces/<name>``: where a git marketplace's clone lives."""
    if not valid_name(name):
        raise _invalid(bad_name(name, "marketplace name"))
    return os.path.join(home, "marketplaces", name)


def _name_of(root: str) -> str:
    """The name a marketplace directory declares (blocking)."""
    path = marketplace_file(root)
    if path is None:
        raise _invalid(
            f"invalid marketplace file `{root}`: marketplace root does not contain a supported "
            "manifest (.agents/plugins/marketplace.json or .claude-plugin/marketplace.json)"
        )
    try:
        return load_marketplace(path).name
    except MarketplaceError as exc:
        raise _invalid(str(exc)) from None


def _same_source(table: Any, kind: str, source: str, ref: str | None, sparse: list[str]) -> bool:
    return (
        isinstance(table, dict)
        and table.get("source_type") == kind
        and table.get("source") == source
        and table.get("ref") == ref
        and list(table.get("sparse_paths") or []) == sparse
    )


async def add_marketplace(
    kernel: Kernel,
    owner: object,
    source: str,
    ref: str | None,
    sparse: list[str],
    timeout: float,
) -> dict[str, Any]:
    """``marketplace/add``: ``{marketplaceName, installedRoot, alreadyAdded}``."""
    kind, where = parse_source(source)
    if kind == "local" and sparse:
        raise _invalid("sparsePaths is only supported for git marketplace sources")
    home = str(kernel.home)
    configured = kernel.config.get("marketplaces") or {}
    if kind == "local":
        if not os.path.isdir(where):
            raise _invalid(
                f"failed to resolve local marketplace source path: {where} is not a directory"
            )
        where = os.path.realpath(where)
    for name, table in configured.items() if isinstance(configured, dict) else ():
        root = configured_root(home, name, table)
        if _same_source(table, kind, where, ref, sparse) and root and marketplace_file(root):
            return {"marketplaceName": name, "installedRoot": root, "alreadyAdded": True}
    if kind == "local":
        name = await kernel.blocking.run(owner, _name_of, where, timeout=30)
        _refuse_taken(configured, name, source)
        local = {"last_updated": configio.now_rfc3339(), "source_type": "local", "source": where}
        await configio.record_marketplace(kernel, name, local)
        return {"marketplaceName": name, "installedRoot": where, "alreadyAdded": False}
    staging = os.path.join(home, "marketplaces", ".staging")
    try:
        cloned, head = await clone(
            kernel, where, staging, ref=ref, sparse=sparse or None, timeout=timeout
        )
    except GitError as exc:
        raise RpcError(
            INTERNAL_ERROR, f"failed to clone marketplace `{source}`: {describe(exc)}"
        ) from None
    try:
        name = await kernel.blocking.run(owner, _name_of, cloned, timeout=30)
        _refuse_taken(configured, name, source)
        destination = _clone_dir(home, name)
        if os.path.lexists(destination):
            raise _invalid(
                f"marketplace `{name}` is already added from a different source; remove it "
                f"before adding {source}"
            )
        os.rename(cloned, destination)
    except BaseException:
        await discard(kernel, owner, cloned)
        raise
    fields: dict[str, Any] = {
        "last_updated": configio.now_rfc3339(),
        "last_revision": head,
        "source_type": "git",
        "source": where,
        "ref": ref,
        "sparse_paths": sparse or None,
    }
    try:
        await configio.record_marketplace(kernel, name, fields)
    except BaseException:
        await discard(kernel, owner, destination)
        raise
    return {"marketplaceName": name, "installedRoot": destination, "alreadyAdded": False}


def _refuse_taken(configured: Any, name: str, source: str) -> None:
    if isinstance(configured, dict) and name in configured:
        raise _invalid(
            f"marketplace `{name}` is already added from a different source; remove it before "
            f"adding {source}"
        )


async def remove_marketplace(kernel: Kernel, owner: object, name: str) -> dict[str, Any]:
    """``marketplace/remove``: forget the entry; a git clone is deleted too."""
    configured = kernel.config.get("marketplaces") or {}
    table = configured.get(name) if isinstance(configured, dict) else None
    # A name that is not valid has no clone (none was ever made): only its entry goes.
    clone_dir = _clone_dir(str(kernel.home), name) if valid_name(name) else None
    has_clone = clone_dir is not None and os.path.isdir(clone_dir)
    if table is None and not has_clone:
        raise _invalid(f"marketplace `{name}` is not configured or installed")
    if table is not None:
        await configio.forget_marketplace(kernel, name)
    removed = None
    is_git = table is None or (isinstance(table, dict) and table.get("source_type") == "git")
    if is_git and clone_dir is not None and has_clone:
        trash = os.path.join(
            str(kernel.home), "marketplaces", ".staging", f"removed-{uuid.uuid4().hex}"
        )
        os.makedirs(os.path.dirname(trash), mode=0o700, exist_ok=True)
        os.rename(clone_dir, trash)
        await discard(kernel, owner, trash)
        removed = clone_dir
    return {"marketplaceName": name, "installedRoot": removed}


async def upgrade_marketplaces(
    kernel: Kernel, owner: object, name: str | None, timeout: float
) -> dict[str, Any]:
    """``marketplace/upgrade``: re-clone the git marketplaces whose remote moved."""
    configured = kernel.config.get("marketplaces") or {}
    gits = {
        n: t
        for n, t in (configured.items() if isinstance(configured, dict) else ())
        if isinstance(t, dict) and t.get("source_type") == "git"
    }
    if name is not None:
        if name not in gits:
            raise _invalid(f"marketplace `{name}` is not configured as a Git marketplace")
        gits = {name: gits[name]}
    home = str(kernel.home)
    upgraded: list[str] = []
    errors: list[dict[str, str]] = []
    for market, table in gits.items():
        try:
            root = await _upgrade_one(kernel, owner, market, table, home, timeout)
        except (GitError, RpcError, OSError) as exc:
            message = exc.message if isinstance(exc, RpcError) else describe(exc)
            errors.append({"marketplaceName": market, "message": message})
            continue
        if root is not None:
            upgraded.append(root)
    return {"selectedMarketplaces": list(gits), "upgradedRoots": upgraded, "errors": errors}


async def _upgrade_one(
    kernel: Kernel, owner: object, market: str, table: dict[str, Any], home: str, timeout: float
) -> str | None:
    url, ref = str(table.get("source")), table.get("ref")
    destination = _clone_dir(home, market)
    staging = os.path.join(home, "marketplaces", ".staging")
    os.makedirs(staging, mode=0o700, exist_ok=True)
    head = await remote_head(kernel, url, ref, staging, timeout)
    if head is not None and head == table.get("last_revision") and os.path.isdir(destination):
        return None
    sparse = list(table.get("sparse_paths") or []) or None
    cloned, new_head = await clone(kernel, url, staging, ref=ref, sparse=sparse, timeout=timeout)
    try:
        found = await kernel.blocking.run(owner, _name_of, cloned, timeout=30)
        if found != market:
            raise _invalid(f"the repository now declares marketplace `{found}`, not `{market}`")
        old = os.path.join(staging, f"old-{uuid.uuid4().hex}")
        if os.path.lexists(destination):
            os.rename(destination, old)
        os.rename(cloned, destination)
    except BaseException:
        await discard(kernel, owner, cloned)
        raise
    await discard(kernel, owner, old)
    fields = {**table, "last_updated": configio.now_rfc3339(), "last_revision": new_head}
    await configio.record_marketplace(kernel, market, fields)
    return destination
