"""The marketplace family's config.toml writes go through the kernel's writer.

``marketplace/add``, ``plugin/install``, ``plugin/uninstall`` and
``marketplace/remove`` write ``[marketplaces]`` and ``[plugins]`` with
``kernel.write_config``: checked against the settings catalog and followed
by ``kernel_config_changed``, which a recording plugin (in process) sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kernel import hookimpl
from tests.support.marketplace_fixtures import make_bundle, make_marketplace


class Recorder:
    """Every ``kernel_config_changed``, by top-level key."""

    def __init__(self) -> None:
        self.roots: list[set[str]] = []

    @hookimpl
    def kernel_config_changed(self, kernel: Any, changed: Sequence[str]) -> None:
        self.roots.append({path.split(".", 1)[0] for path in changed})


async def test_every_write_is_announced_to_the_plugins(inproc, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    market = tmp_path / "market"
    make_bundle(market / "plugins" / "alpha", "alpha", skills={"greet": "hello"})
    make_marketplace(market, "local-mkt", [{"name": "alpha", "source": "./plugins/alpha"}])
    recorder = Recorder()
    plugins = ["marketplace", "skills", "fs", "recorder"]
    async with inproc(plugins=plugins, extra_plugins={"recorder": recorder}) as client:
        await client.initialize()
        await client.request("marketplace/add", {"source": str(market)})
        assert recorder.roots == [{"marketplaces"}]
        install = {"marketplacePath": str(market / ".agents/plugins/marketplace.json")}
        await client.request("plugin/install", {**install, "pluginName": "alpha"})
        assert recorder.roots[1:] == [{"plugins"}]
        await client.request("plugin/uninstall", {"pluginId": "alpha@local-mkt"})
        assert recorder.roots[2:] == [{"plugins"}]
        await client.request("marketplace/remove", {"marketplaceName": "local-mkt"})
        assert recorder.roots[3:] == [{"marketplaces"}]
