"""``marketplace/add``, ``marketplace/remove`` and ``marketplace/upgrade``, local and git.

Git marketplaces come from a local bare repository (``file://`` URL),
cloned with the system git through the process family; upgrading follows
new commits pushed to it.
"""

from __future__ import annotations

import tomllib

from tests.support.calls import fails
from tests.support.marketplace_fixtures import (
    commit_all,
    git,
    make_bundle,
    make_marketplace,
    marketplace_server,
)


def config(home):
    return tomllib.loads((home / "config.toml").read_text())


async def test_add_and_remove_a_local_marketplace(serve, tmp_path):
    added = tmp_path / "added"
    make_bundle(added / "plugins" / "delta", "delta")
    make_marketplace(added, "added-mkt", [{"name": "delta", "source": "./plugins/delta"}])
    home = tmp_path / "home"
    async with marketplace_server(serve, tmp_path, home=home) as served:
        client = served.client
        first = await client.request("marketplace/add", {"source": str(added)})
        assert first == {
            "marketplaceName": "added-mkt",
            "installedRoot": str(added),
            "alreadyAdded": False,
        }
        table = config(home)["marketplaces"]["added-mkt"]
        assert (table["source_type"], table["source"]) == ("local", str(added))
        assert table["last_updated"].endswith("Z")
        second = await client.request("marketplace/add", {"source": str(added)})
        assert second == {**first, "alreadyAdded": True}
        listing = await client.request("plugin/list", {})
        assert [(m["name"], [p["id"] for p in m["plugins"]]) for m in listing["marketplaces"]] == [
            ("added-mkt", ["delta@added-mkt"])
        ]
        removed = await client.request("marketplace/remove", {"marketplaceName": "added-mkt"})
        assert removed == {"marketplaceName": "added-mkt", "installedRoot": None}
        assert "marketplaces" not in config(home)
        assert added.is_dir()  # a local marketplace is only forgotten, never deleted
        assert (await client.request("plugin/list", {}))["marketplaces"] == []

        errors = [
            await fails(client, "marketplace/remove", {"marketplaceName": "nope"}),
            await fails(client, "marketplace/add", {"source": str(tmp_path / "missing")}),
            await fails(client, "marketplace/add", {"source": str(tmp_path)}),
            await fails(client, "marketplace/add", {"source": "./relative"}),
            await fails(client, "marketplace/add", {"source": str(added), "sparsePaths": ["x"]}),
        ]
    assert [e.code for e in errors] == [-32600] * 5
    assert errors[0].message == "marketplace `nope` is not configured or installed"
    assert "failed to resolve local marketplace source path" in errors[1].message
    assert "does not contain a supported manifest" in errors[2].message
    assert errors[3].message.startswith("invalid marketplace source format")


async def test_a_git_marketplace_is_cloned_upgraded_and_removed(serve, tmp_path):
    work = tmp_path / "work"
    make_bundle(work / "plugins" / "eps", "eps", version="1.0")
    make_marketplace(work, "git-mkt", [{"name": "eps", "source": "./plugins/eps"}])
    first_head = commit_all(work, "first")
    bare = tmp_path / "market.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    git(work, "remote", "add", "origin", str(bare))
    url = f"file://{bare}"
    home = tmp_path / "home"
    async with marketplace_server(serve, tmp_path, home=home) as served:
        client = served.client
        added = await client.request("marketplace/add", {"source": url})
        root = home / "marketplaces" / "git-mkt"
        assert added == {
            "marketplaceName": "git-mkt",
            "installedRoot": str(root),
            "alreadyAdded": False,
        }
        table = config(home)["marketplaces"]["git-mkt"]
        assert (table["source_type"], table["source"], table["last_revision"]) == (
            "git",
            url,
            first_head,
        )
        again = await client.request("marketplace/add", {"source": url})
        assert again["alreadyAdded"] is True
        listing = await client.request("plugin/list", {})
        (market,) = listing["marketplaces"]
        assert market["path"] == str(root / ".agents" / "plugins" / "marketplace.json")
        assert [p["localVersion"] for p in market["plugins"]] == ["1.0"]

        unchanged = await client.request("marketplace/upgrade", {})
        assert unchanged == {"selectedMarketplaces": ["git-mkt"], "upgradedRoots": [], "errors": []}

        make_bundle(work / "plugins" / "zed", "zed")
        make_marketplace(
            work,
            "git-mkt",
            [
                {"name": "eps", "source": "./plugins/eps"},
                {"name": "zed", "source": "./plugins/zed"},
            ],
        )
        second_head = commit_all(work, "second")
        git(work, "push", "-q", "origin", "main")
        upgraded = await client.request("marketplace/upgrade", {"marketplaceName": "git-mkt"})
        assert upgraded == {
            "selectedMarketplaces": ["git-mkt"],
            "upgradedRoots": [str(root)],
            "errors": [],
        }
        assert config(home)["marketplaces"]["git-mkt"]["last_revision"] == second_head
        listing = await client.request("plugin/list", {})
        assert [p["name"] for p in listing["marketplaces"][0]["plugins"]] == ["eps", "zed"]

        error = await fails(client, "marketplace/upgrade", {"marketplaceName": "nope"})
        assert error.message == "marketplace `nope` is not configured as a Git marketplace"

        removed = await client.request("marketplace/remove", {"marketplaceName": "git-mkt"})
        assert removed == {"marketplaceName": "git-mkt", "installedRoot": str(root)}
        assert not root.exists()
        bad = await fails(client, "marketplace/add", {"source": f"file://{tmp_path}/missing.git"})
    assert bad.code == -32603 and "failed to clone marketplace" in bad.message
    assert not any((home / "marketplaces" / ".staging").iterdir())


async def test_upgrade_reports_a_broken_remote_and_keeps_the_clone(serve, tmp_path):
    work = tmp_path / "work"
    make_marketplace(work, "gone-mkt", [])
    commit_all(work)
    bare = tmp_path / "gone.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    home = tmp_path / "home"
    async with marketplace_server(serve, tmp_path, home=home) as served:
        client = served.client
        await client.request("marketplace/add", {"source": f"file://{bare}"})
        git(tmp_path, "-C", str(bare), "update-ref", "-d", "refs/heads/main")
        (bare / "HEAD").write_text("ref: refs/heads/absent\n")
        result = await client.request("marketplace/upgrade", {})
    assert result["selectedMarketplaces"] == ["gone-mkt"] and result["upgradedRoots"] == []
    (error,) = result["errors"]
    assert error["marketplaceName"] == "gone-mkt" and error["message"]
    assert (
        home / "marketplaces" / "gone-mkt" / ".agents" / "plugins" / "marketplace.json"
    ).is_file()


async def test_names_that_are_not_plain_directory_names_are_refused(serve, tmp_path):
    # "My Market" used to be cloned as My_Market and then reported missing;
    # ".x" was accepted, and an installed ".x" bundle was never seen again.
    spaced = tmp_path / "spaced"
    make_marketplace(spaced, "My Market", [])
    commit_all(spaced)
    bare = tmp_path / "spaced.git"
    git(tmp_path, "clone", "-q", "--bare", str(spaced), str(bare))
    hidden = tmp_path / "hidden"
    make_marketplace(hidden, ".x", [])
    entries = tmp_path / "entries"
    make_bundle(entries / "plugins" / "ok", "ok")
    make_bundle(entries / "plugins" / "dot", ".dot")
    make_marketplace(
        entries,
        "entries-mkt",
        [
            {"name": "ok", "source": "./plugins/ok"},
            {"name": ".dot", "source": "./plugins/dot"},
            {"name": "a b", "source": "./plugins/ok"},
        ],
    )
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        '[marketplaces."bad name"]\nsource_type = "git"\nsource = "https://example.invalid/x.git"\n'
    )
    async with marketplace_server(serve, tmp_path, home=home) as served:
        client = served.client
        git_error = await fails(client, "marketplace/add", {"source": f"file://{bare}"})
        local_error = await fails(client, "marketplace/add", {"source": str(hidden)})
        await client.request("marketplace/add", {"source": str(entries)})
        listing = await client.request("plugin/list", {})
        uninstall = await fails(client, "plugin/uninstall", {"pluginId": ".dot@entries-mkt"})
    rule = "a name must be ASCII letters, digits, `.`, `_`, `+`, `~` or `-`, not starting with `.`"
    assert git_error.code == -32600
    assert "name `My Market` is not valid: " + rule in git_error.message
    assert [p.name for p in (home / "marketplaces").iterdir()] == [".staging"]
    assert not any((home / "marketplaces" / ".staging").iterdir())
    assert local_error.code == -32600 and "name `.x` is not valid: " + rule in local_error.message
    assert [(m["name"], [p["name"] for p in m["plugins"]]) for m in listing["marketplaces"]] == [
        ("entries-mkt", ["ok"])
    ]
    errors = [(e["marketplacePath"], e["message"]) for e in listing["marketplaceLoadErrors"]]
    file = str(entries / ".agents" / "plugins" / "marketplace.json")
    assert errors == [
        (
            str(home / "marketplaces"),
            "[marketplaces] entry cannot be used: marketplace name `bad name` is not valid: "
            + rule
            + ", at most 128 characters",
        ),
        (
            file,
            "plugins[1] left out: name `.dot` is not valid: " + rule + ", at most 128 characters",
        ),
        (
            file,
            "plugins[2] left out: name `a b` is not valid: " + rule + ", at most 128 characters",
        ),
    ]
    assert uninstall.code == -32600
    assert uninstall.message.startswith("invalid plugin id `.dot@entries-mkt`: ")
