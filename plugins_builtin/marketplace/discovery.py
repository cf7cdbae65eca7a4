"""Which marketplace files a request sees.

In order, each file once:

1. for every ``cwds`` entry, its project root (the nearest ancestor holding
   ``.git``, else the cwd itself): ``.agents/plugins/marketplace.json`` and
   ``.claude-plugin/marketplace.json``;
2. the user's ``$HOME/.agents/plugins/marketplace.json``;
3. every ``[marketplaces.<name>]`` of config.toml: a ``local`` one's
   directory, a ``git`` one's clone under ``<home>/marketplaces/<name>/``
   (exactly where ``marketplace/add`` clones it; a ``git`` entry whose name
   is not valid, :mod:`.names`, has no clone and is reported).

Parsing each file is :func:`.manifest.load_marketplace`'s job; a file that
fails becomes a ``marketplaceLoadErrors`` entry and the others still list.
Two files may not share a marketplace name (their bundles would share ids):
the later one is reported instead of listed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import attrs

from .manifest import MARKETPLACE_FILES, Marketplace, MarketplaceError, load_marketplace
from .names import bad_name, valid_name

__all__ = ["Found", "configured_root", "discover", "project_root"]


@attrs.frozen
class Found:
    """The marketplaces a request sees, and the files that failed (``MarketplaceLoadErrorInfo``)."""

    marketplaces: tuple[Marketplace, ...]
    errors: tuple[dict[str, str], ...]


def project_root(cwd: str) -> str:
    """The nearest ancestor of ``cwd`` (itself included) holding ``.git``, else ``cwd``."""
    path = cwd
    while True:
        if os.path.lexists(os.path.join(path, ".git")):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            return cwd
        path = parent


def configured_root(home: str, name: str, table: Any) -> str | None:
    """The directory of configured marketplace ``name`` (None when the entry is unusable)."""
    if not isinstance(table, dict):
        return None
    kind, source = table.get("source_type"), table.get("source")
    if kind == "local" and isinstance(source, str) and os.path.isabs(source):
        return source
    if kind == "git" and valid_name(name):
        return os.path.join(home, "marketplaces", name)
    return None


def _files(cwds: Iterable[str], home: str, user_home: str | None, configured: Any) -> list[str]:
    files: list[str] = []
    for cwd in cwds:
        root = project_root(cwd)
        files += [os.path.join(root, name) for name in MARKETPLACE_FILES]
    if user_home:
        files.append(os.path.join(user_home, MARKETPLACE_FILES[0]))
    for name, table in (configured or {}).items() if isinstance(configured, dict) else ():
        where = configured_root(home, name, table)
        if where is not None:
            found = [os.path.join(where, f) for f in MARKETPLACE_FILES]
            existing = [f for f in found if os.path.isfile(f)]
            files.append(existing[0] if existing else found[0])
    return files


def discover(
    cwds: Iterable[str],
    home: str,
    user_home: str | None,
    configured: Any,
    *,
    required: Iterable[str] = (),
) -> Found:
    """The marketplaces of the module docstring; ``required`` files are reported when missing.

    Project and user files that do not exist are simply not there;
    configured marketplaces (``required``, and every ``[marketplaces]``
    entry) that lost their file are reported.
    """
    files = _files(cwds, home, user_home, configured)
    must = set(required)
    if isinstance(configured, dict):
        for name, table in configured.items():
            root = configured_root(home, name, table)
            if root is not None:
                must.add(os.path.join(root, MARKETPLACE_FILES[0]))
    markets: list[Marketplace] = []
    errors: list[dict[str, str]] = []
    for name, table in configured.items() if isinstance(configured, dict) else ():
        if isinstance(table, dict) and table.get("source_type") == "git" and not valid_name(name):
            errors.append(
                {
                    "marketplacePath": os.path.join(home, "marketplaces"),
                    "message": f"[marketplaces] entry cannot be used: "
                    f"{bad_name(name, 'marketplace name')}",
                }
            )
    seen_files: set[str] = set()
    names: dict[str, str] = {}
    for path in files:
        try:
            real = os.path.realpath(path)
        except OSError:
            continue
        if real in seen_files:
            continue
        seen_files.add(real)
        if not os.path.isfile(path):
            if path in must:
                errors.append(
                    {
                        "marketplacePath": path,
                        "message": f"marketplace file `{path}` does not exist",
                    }
                )
            continue
        try:
            market = load_marketplace(path)
        except MarketplaceError as exc:
            errors.append({"marketplacePath": path, "message": str(exc)})
            continue
        if market.name in names:
            message = f"marketplace name `{market.name}` is already used by `{names[market.name]}`"
            errors.append({"marketplacePath": path, "message": message})
            continue
        names[market.name] = path
        markets.append(market)
        for problem in market.problems:
            errors.append({"marketplacePath": path, "message": problem})
    return Found(tuple(markets), tuple(errors))
