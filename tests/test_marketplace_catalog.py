"""The remote plugin catalog, against a local aiohttp stand-in.

The stand-in is tests/support/marketplace_catalog.py.

The kernel is pointed at the stand-in with
``kernel_plugins.marketplace.catalog_url``; the stand-in records every
request, so the tests check what was fetched (and that a plugin disabled
by an administrator is refused before any download).
"""

from __future__ import annotations

import tomllib

from plugins_builtin.marketplace.catalog import CatalogClient
from tests.support.calls import fails
from tests.support.marketplace_catalog import CatalogServer, tar_bundle
from tests.support.marketplace_fixtures import make_bundle, marketplace_server


def catalog_args(catalog: CatalogServer, *extra: str) -> list[str]:
    return ["-c", f'kernel_plugins.marketplace.catalog_url="{catalog.url}"', *extra]


def stock(catalog: CatalogServer, tmp) -> None:
    bundle = make_bundle(tmp / "src" / "alpha", "alpha", version="2.0", skills={"greet": "Greets"})
    catalog.bundles["alpha.tar.gz"] = tar_bundle(bundle)
    catalog.marketplaces = [
        {
            "name": "team",
            "displayName": "Team Catalog",
            "plugins": [
                {
                    "id": "pl_alpha",
                    "name": "alpha",
                    "version": "2.0",
                    "description": "Alpha from the catalog",
                    "authPolicy": "ON_USE",
                    "keywords": ["remote"],
                    "interface": {"displayName": "Alpha", "logoUrl": "https://cdn.example/a.png"},
                    "skills": [{"name": "greet", "description": "Greets"}],
                    "mcpServers": ["alpha-mcp"],
                    "bundleUrl": "bundles/alpha.tar.gz",
                },
                {
                    "id": "pl_locked",
                    "name": "locked",
                    "version": "1.0",
                    "availability": "DISABLED_BY_ADMIN",
                    "disabledReason": "disabled_by_admin",
                    "bundleUrl": "bundles/locked.tar.gz",
                },
            ],
        }
    ]
    catalog.featured = ["alpha@team", "ghost@team"]
    catalog.skills[("pl_alpha", "greet")] = "---\nname: greet\ndescription: Greets\n---\nWave.\n"


async def test_list_read_install_and_skill_read(serve, tmp_path):
    home = tmp_path / "home"
    async with CatalogServer() as catalog:
        stock(catalog, tmp_path)
        async with marketplace_server(
            serve, tmp_path, home=home, args=catalog_args(catalog)
        ) as served:
            client = served.client
            listing = await client.request("plugin/list", {})
            (team,) = listing["marketplaces"]
            assert (team["name"], team["path"], team["interface"]) == (
                "team",
                None,
                {"displayName": "Team Catalog"},
            )
            alpha, locked = team["plugins"]
            assert alpha["id"] == "alpha@team" and alpha["remotePluginId"] == "pl_alpha"
            assert (alpha["source"], alpha["version"], alpha["authPolicy"]) == (
                {"type": "remote"},
                "2.0",
                "ON_USE",
            )
            assert alpha["interface"]["logoUrl"] == "https://cdn.example/a.png"
            assert (locked["availability"], locked["disabledReason"]) == (
                "DISABLED_BY_ADMIN",
                "disabled_by_admin",
            )
            assert listing["featuredPluginIds"] == ["alpha@team"]

            detail = (
                await client.request(
                    "plugin/read", {"remoteMarketplaceName": "team", "pluginName": "alpha"}
                )
            )["plugin"]
            assert detail["marketplacePath"] is None and detail["mcpServers"] == ["alpha-mcp"]
            assert [(s["name"], s["path"]) for s in detail["skills"]] == [("alpha:greet", None)]

            refused = await fails(
                client, "plugin/install", {"remoteMarketplaceName": "team", "pluginName": "locked"}
            )
            assert refused.code == -32600 and "disabled by an administrator" in refused.message
            assert not any(p.startswith("/api/bundles/") for p in catalog.paths())

            answer = await client.request(
                "plugin/install", {"remoteMarketplaceName": "team", "pluginName": "alpha"}
            )
            assert answer == {"authPolicy": "ON_USE", "appsNeedingAuth": []}
            assert catalog.paths().count("/api/bundles/alpha.tar.gz") == 1
            cached = home / "plugins" / "cache" / "team" / "alpha" / "2.0"
            assert (cached / "skills" / "greet" / "SKILL.md").is_file()
            assert tomllib.loads((home / "config.toml").read_text())["plugins"] == {
                "alpha@team": {"enabled": True}
            }

            installed = await client.request("plugin/installed", {})
            (team,) = installed["marketplaces"]
            (entry,) = team["plugins"]
            assert (entry["id"], entry["installed"], entry["localVersion"]) == (
                "alpha@team",
                True,
                "2.0",
            )
            assert isinstance(entry["installedAt"], int)

            skill = {
                "remoteMarketplaceName": "team",
                "remotePluginId": "pl_alpha",
                "skillName": "alpha:greet",
            }
            assert await client.request("plugin/skill/read", skill) == {
                "contents": catalog.skills[("pl_alpha", "greet")]
            }
            missing = await client.request("plugin/skill/read", {**skill, "skillName": "nope"})
            assert missing == {"contents": None}
            bad = await fails(
                client, "plugin/skill/read", {**skill, "remotePluginId": "alpha@team"}
            )
            assert bad.message.startswith("invalid remote plugin id")
            unknown = await fails(
                client, "plugin/skill/read", {**skill, "remotePluginId": "pl_nope"}
            )
            assert unknown.message == "plugin `pl_nope` was not found in marketplace `team`"

            assert await client.request("plugin/uninstall", {"pluginId": "pl_alpha"}) == {}
            assert not (home / "plugins" / "cache" / "team").exists()


async def test_a_catalog_that_is_down(serve, tmp_path):
    async with CatalogServer() as catalog:
        stock(catalog, tmp_path)
        catalog.down = True
        (tmp_path / "user").mkdir()
        async with marketplace_server(serve, tmp_path, args=catalog_args(catalog)) as served:
            client = served.client
            quiet = await client.request("plugin/list", {})
            assert quiet == {
                "marketplaces": [],
                "marketplaceLoadErrors": [],
                "featuredPluginIds": [],
            }
            asked = await fails(client, "plugin/list", {"marketplaceKinds": ["vertical"]})
            assert asked.code == -32600 and "HTTP 503" in asked.message
            install = await fails(
                client, "plugin/install", {"remoteMarketplaceName": "team", "pluginName": "alpha"}
            )
            assert install.code == -32600 and "HTTP 503" in install.message
            before = len(catalog.requests)
            # plugin/installed never asks the catalog (clients call it at startup).
            assert await client.request("plugin/installed", {}) == {
                "marketplaces": [],
                "marketplaceLoadErrors": [],
            }
            assert len(catalog.requests) == before


async def test_catalog_requests_carry_the_configured_token(serve, tmp_path):
    async with CatalogServer() as catalog:
        stock(catalog, tmp_path)
        args = catalog_args(
            catalog, "-c", 'kernel_plugins.marketplace.catalog_token_env="CATALOG_TOKEN"'
        )
        (tmp_path / "user").mkdir()
        env = {"HOME": str(tmp_path / "user"), "CATALOG_TOKEN": "tok-123"}
        async with serve(plugins=["marketplace", "skills"], args=args, env=env) as served:
            await served.client.initialize()
            await served.client.request("plugin/list", {"forceRefetch": True})
    assert catalog.requests[-1].headers.get("Authorization") == "Bearer tok-123"


async def test_the_cached_listing_is_public_and_never_asks_the_catalog(inproc, tmp_path):
    # plugin/installed reads it (clients call that at startup): no request, however old.
    async with CatalogServer() as catalog:
        stock(catalog, tmp_path)
        async with inproc(plugins=["marketplace"]) as client:
            remote = CatalogClient(client.kernel, catalog.url, None, 0.0, 10.0)
            try:
                assert remote.cached_listing() is None
                fetched = await remote.listing(False, None)
                assert remote.cached_listing() == fetched
                assert remote.cached_listing() == fetched  # expired (ttl 0), still no request
                assert catalog.paths() == ["/api/plugins/list"]
            finally:
                await remote.close()
