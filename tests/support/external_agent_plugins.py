"""Claude Code's plugin setup in a fake home, with real marketplaces, for the PLUGINS tests.

``build_plugin_home(tmp)`` writes, as Claude Code and marketplace authors lay
them out:

* ``user/`` (the fake ``$HOME``) with ``.claude/settings.json`` enabling
  ``alpha``, ``locked`` (``NOT_AVAILABLE`` there), ``missing`` (not in the
  marketplace) of ``local-mkt``; ``gamma@git-mkt``; ``x@gone-mkt``;
  ``ghost@nowhere`` (no source anywhere); ``off@local-mkt`` set to
  ``false``; a key that is no plugin id. ``settings.local.json`` enables
  ``beta@local-mkt``. ``extraKnownMarketplaces`` names ``local-mkt`` by a
  path relative to ``~/.claude``;
* ``user/.claude/plugins/known_marketplaces.json`` (what ``/plugin
  marketplace add`` records) with ``git-mkt`` (a ``file://`` URL of a
  bare repository) and ``gone-mkt`` (a repository that does not exist);
* ``user/markets/local``: marketplace ``local-mkt`` (``.claude-plugin/``)
  with bundles ``alpha`` and ``beta`` (a skill each) and ``locked``;
* ``git-mkt.git``: a bare repository holding marketplace ``git-mkt`` with
  bundle ``gamma``;
* ``user/work/app``: a repository whose ``.claude/settings.json`` enables
  ``delta@repo-mkt``, its marketplace given as ``"source": "./tools/market"``
  (relative to the repository);
* ``side``: marketplace ``side-mkt`` (bundle ``eps``) Claude Code does not
  know, for adding to the server by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.marketplace_fixtures import commit_all, git, make_bundle, make_marketplace

__all__ = ["PluginHome", "build_plugin_home"]


class PluginHome:
    """Paths of a built plugin home."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.root = tmp / "user"
        self.claude = self.root / ".claude"
        self.local_market = self.root / "markets" / "local"
        self.bare = tmp / "git-mkt.git"
        self.gone = tmp / "gone.git"
        self.repo = self.root / "work" / "app"
        self.repo_market = self.repo / "tools" / "market"
        self.side = tmp / "side"

    @property
    def git_url(self) -> str:
        return f"file://{self.bare}"


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2))


def _marketplaces(home: PluginHome) -> None:
    market = home.local_market
    make_bundle(market / "plugins" / "alpha", "alpha", version="1.0", skills={"greet": "greets"})
    make_bundle(market / "plugins" / "beta", "beta", skills={"wave": "waves"})
    make_bundle(market / "plugins" / "locked", "locked")
    entries = [
        {"name": "alpha", "source": "./plugins/alpha"},
        {"name": "beta", "source": {"source": "local", "path": "./plugins/beta"}},
        {
            "name": "locked",
            "source": "./plugins/locked",
            "policy": {"installation": "NOT_AVAILABLE"},
        },
    ]
    make_marketplace(market, "local-mkt", entries, claude=True)

    work = home.tmp / "git-work"
    make_bundle(work / "plugins" / "gamma", "gamma", version="2.0")
    make_marketplace(work, "git-mkt", [{"name": "gamma", "source": "./plugins/gamma"}])
    commit_all(work, "marketplace")
    git(home.tmp, "clone", "-q", "--bare", str(work), str(home.bare))

    make_bundle(home.repo_market / "plugins" / "delta", "delta")
    make_marketplace(
        home.repo_market, "repo-mkt", [{"name": "delta", "source": "./plugins/delta"}], claude=True
    )
    make_bundle(home.side / "plugins" / "eps", "eps")
    make_marketplace(home.side, "side-mkt", [{"name": "eps", "source": "./plugins/eps"}])


def _settings(home: PluginHome) -> None:
    settings = {
        "enabledPlugins": {
            "alpha@local-mkt": True,
            "locked@local-mkt": True,
            "missing@local-mkt": True,
            "off@local-mkt": False,
            "gamma@git-mkt": True,
            "x@gone-mkt": True,
            "ghost@nowhere": True,
            "not-a-plugin-id": True,
        },
        "extraKnownMarketplaces": {
            "local-mkt": {"source": {"source": "directory", "path": "../markets/local"}}
        },
    }
    _write_json(home.claude / "settings.json", settings)
    _write_json(home.claude / "settings.local.json", {"enabledPlugins": {"beta@local-mkt": True}})
    known = {
        "git-mkt": {
            "source": {"source": "git", "url": home.git_url},
            "installLocation": str(home.claude / "plugins" / "marketplaces" / "git-mkt"),
            "lastUpdated": "2026-01-09T15:25:06.447Z",
        },
        "gone-mkt": {"source": {"source": "git", "url": f"file://{home.gone}"}},
    }
    _write_json(home.claude / "plugins" / "known_marketplaces.json", known)
    (home.repo / ".git").mkdir(parents=True)
    repo_settings = {
        "enabledPlugins": {"delta@repo-mkt": True},
        "extraKnownMarketplaces": {"repo-mkt": {"source": "./tools/market"}},
    }
    _write_json(home.repo / ".claude" / "settings.json", repo_settings)


def build_plugin_home(tmp: Path) -> PluginHome:
    """Write everything of the module docstring under ``tmp``."""
    home = PluginHome(tmp)
    home.root.mkdir(parents=True)
    _marketplaces(home)
    _settings(home)
    return home
