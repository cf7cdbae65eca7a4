"""``[features] plugins = false`` turns the whole plugin-bundle surface off, consistently.

Set in config.toml or pinned by managed requirements: lists are empty,
every other ``plugin/*`` and ``marketplace/*`` method is refused (install
too, unlike the reference), and installed bundles give neither skills nor
context to the model.
"""

from __future__ import annotations

import pytest

from tests.support.calls import fails
from tests.support.marketplace_fixtures import make_bundle, make_marketplace, marketplace_server

DISABLED = "plugins feature is disabled ([features] plugins = false)"


def layout(tmp):
    repo = tmp / "repo"
    make_bundle(repo / "plugins" / "alpha", "alpha", skills={"greet": "Greets"})
    return repo, make_marketplace(
        repo, "local-mkt", [{"name": "alpha", "source": "./plugins/alpha"}]
    )


@pytest.mark.parametrize("where", ["config", "requirements"])
async def test_the_feature_gate(serve, tmp_path, where):
    repo, market = layout(tmp_path)
    home = tmp_path / "home"
    async with marketplace_server(serve, tmp_path, home=home) as served:
        install = {"marketplacePath": str(market), "pluginName": "alpha"}
        await served.client.request("plugin/install", install)
    name = "config.toml" if where == "config" else "requirements.toml"
    with (home / name).open("a") as handle:
        handle.write("\n[features]\nplugins = false\n")
    async with marketplace_server(serve, tmp_path, home=home) as served:
        client = served.client
        cwds = {"cwds": [str(repo)]}
        empty = {"marketplaces": [], "marketplaceLoadErrors": []}
        assert await client.request("plugin/list", cwds) == {**empty, "featuredPluginIds": []}
        assert await client.request("plugin/installed", cwds) == empty
        refused = [
            ("plugin/read", install),
            ("plugin/install", install),
            ("plugin/uninstall", {"pluginId": "alpha@local-mkt"}),
            (
                "plugin/skill/read",
                {"remoteMarketplaceName": "m", "remotePluginId": "p", "skillName": "s"},
            ),
            ("marketplace/add", {"source": str(repo)}),
            ("marketplace/remove", {"marketplaceName": "local-mkt"}),
            ("marketplace/upgrade", {}),
        ]
        for method, params in refused:
            error = await fails(client, method, params)
            assert (method, error.code, error.message) == (method, -32600, DISABLED)
        (entry,) = (await client.request("skills/list", cwds))["data"]
        assert entry["skills"] == []  # the installed bundle's skill is off too
    assert (home / "plugins" / "cache" / "local-mkt" / "alpha").is_dir()  # nothing was removed
