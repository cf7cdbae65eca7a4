"""The ``marketplace`` plugin: the reference's plugin bundles, marketplaces and catalog.

``plugin/*`` and ``marketplace/*``: bundles of skills, hooks, MCP servers and
apps (the reference's "plugins", not kernel plugins) listed from marketplace
files and a remote catalog, installed into ``<home>/plugins/cache/``. See
docs/marketplace.md.
"""

from __future__ import annotations

from .plugin import MarketplacePlugin

__all__ = ["MarketplacePlugin"]
