"""``plugin/install`` and ``plugin/uninstall``: the cache, config.toml, and what follows from them.

A bundle installed from a real marketplace folder lands in
``<home>/plugins/cache/<marketplace>/<plugin>/<version|local>/``, is enabled
in config.toml, shows as installed (with ``installedAt``), and its skills
are listed (namespaced ``<plugin>:<skill>``, ``pluginId`` set) and offered
to the model. A git-sourced bundle is cloned from a local bare repository.
"""

from __future__ import annotations

import time
import tomllib

from tests.support.agent import agent_server
from tests.support.calls import fails
from tests.support.marketplace_fixtures import (
    commit_all,
    git,
    make_bundle,
    make_marketplace,
    marketplace_server,
)
from tests.support.model_server import text


def layout(tmp):
    repo = tmp / "repo"
    (repo / ".git").mkdir(parents=True)
    make_bundle(
        repo / "plugins" / "alpha",
        "alpha",
        version="1.2.0",
        skills={"greet": "Greets people"},
        mcp=["alpha-mcp"],
        apps={"cal": {"id": "asdk_app_1", "name": "Calendar"}},
    )
    make_bundle(repo / "plugins" / "beta", "beta", skills={"wave": "Waves"})
    make_bundle(repo / "plugins" / "gamma", "gamma")
    (repo / "plugins" / "nomanifest").mkdir()
    entries = [
        {"name": "alpha", "source": "./plugins/alpha", "policy": {"authentication": "ON_USE"}},
        {"name": "beta", "source": "./plugins/beta"},
        {"name": "gamma", "source": "./plugins/gamma", "policy": {"installation": "NOT_AVAILABLE"}},
        {"name": "nomanifest", "source": "./plugins/nomanifest"},
    ]
    return repo, make_marketplace(repo, "local-mkt", entries)


def ids(listing):
    return {p["id"]: p for m in listing["marketplaces"] for p in m["plugins"]}


async def test_install_list_skills_and_uninstall(serve, tmp_path):
    repo, market = layout(tmp_path)
    home = tmp_path / "home"
    async with marketplace_server(serve, tmp_path, home=home) as served:
        client = served.client
        before = int(time.time())
        install = {"marketplacePath": str(market), "pluginName": "alpha"}
        answer = await client.request("plugin/install", install)
        assert answer == {"authPolicy": "ON_USE", "appsNeedingAuth": []}
        beta = await client.request("plugin/install", {**install, "pluginName": "beta"})
        assert beta == {"authPolicy": "ON_INSTALL", "appsNeedingAuth": []}
        cache = home / "plugins" / "cache" / "local-mkt"
        assert (cache / "alpha" / "1.2.0" / ".codex-plugin" / "plugin.json").is_file()
        assert (cache / "beta" / "local" / "skills" / "wave" / "SKILL.md").is_file()
        config = tomllib.loads((home / "config.toml").read_text())
        assert config["plugins"] == {
            "alpha@local-mkt": {"enabled": True},
            "beta@local-mkt": {"enabled": True},
        }

        installed = ids(await client.request("plugin/installed", {"cwds": [str(repo)]}))
        assert sorted(installed) == ["alpha@local-mkt", "beta@local-mkt"]
        alpha = installed["alpha@local-mkt"]
        assert (alpha["installed"], alpha["enabled"], alpha["localVersion"]) == (
            True,
            True,
            "1.2.0",
        )
        assert before <= alpha["installedAt"] <= int(time.time())
        listed = ids(await client.request("plugin/list", {"cwds": [str(repo)]}))
        assert (
            listed["alpha@local-mkt"] == alpha and listed["gamma@local-mkt"]["installed"] is False
        )
        # Installed bundles stay visible without the cwd that shows their marketplace.
        anywhere = await client.request("plugin/installed", {})
        assert [m["path"] for m in anywhere["marketplaces"]] == [str(market)]
        assert sorted(ids(anywhere)) == ["alpha@local-mkt", "beta@local-mkt"]

        (entry,) = (await client.request("skills/list", {"cwds": [str(tmp_path)]}))["data"]
        assert [(s["name"], s["scope"], s["pluginId"], s["enabled"]) for s in entry["skills"]] == [
            ("alpha:greet", "user", "alpha@local-mkt", True),
            ("beta:wave", "user", "beta@local-mkt", True),
        ]
        assert entry["skills"][0]["path"] == str(
            cache / "alpha" / "1.2.0" / "skills" / "greet" / "SKILL.md"
        )

        again = await client.request("plugin/install", install)  # reinstall: same answer
        assert again == answer
        assert sorted(p.name for p in (cache / "alpha").iterdir()) == [".install.json", "1.2.0"]

        assert await client.request("plugin/uninstall", {"pluginId": "alpha@local-mkt"}) == {}
        await client.next_notification("skills/changed")
        assert not (cache / "alpha").exists()
        config = tomllib.loads((home / "config.toml").read_text())
        assert config["plugins"] == {"beta@local-mkt": {"enabled": True}}
        assert await client.request("plugin/uninstall", {"pluginId": "alpha@local-mkt"}) == {}
        assert await client.request("plugin/uninstall", {"pluginId": "nope@nowhere"}) == {}
        (entry,) = (await client.request("skills/list", {"cwds": [str(tmp_path)]}))["data"]
        assert [s["name"] for s in entry["skills"]] == ["beta:wave"]


async def test_install_refusals(serve, tmp_path):
    _, market = layout(tmp_path)
    home = tmp_path / "home"
    async with marketplace_server(serve, tmp_path, home=home) as served:
        client = served.client

        async def refused(params):
            error = await fails(client, "plugin/install", params)
            return error.code, error.message

        base = {"marketplacePath": str(market)}
        assert await refused({**base, "pluginName": "gamma"}) == (
            -32600,
            "plugin `gamma` is not available for install in marketplace `local-mkt`",
        )
        assert await refused({**base, "pluginName": "zzz"}) == (
            -32600,
            "plugin `zzz` was not found in marketplace `local-mkt`",
        )
        assert await refused({**base, "pluginName": "nomanifest"}) == (
            -32600,
            "missing plugin.json",
        )
        assert await refused({"pluginName": "alpha"}) == (
            -32600,
            "plugin/install requires exactly one of marketplacePath or remoteMarketplaceName",
        )
        both = await refused({**base, "pluginName": "alpha", "remoteMarketplaceName": "x"})
        assert both[0] == -32600
        error = await fails(client, "plugin/uninstall", {"pluginId": "../../etc@x"})
        assert error.code == -32600
        error = await fails(client, "plugin/uninstall", {"pluginId": "noat"})
        assert error.code == -32600 and "remote id" in error.message
    assert not (home / "plugins" / "cache").exists() or not any(
        (home / "plugins" / "cache").iterdir()
    )


async def test_install_a_git_sourced_bundle(serve, tmp_path):
    source = tmp_path / "bundle-src"
    make_bundle(source / "sub", "remote-one", version="3.0", skills={"hop": "Hops"})
    commit_all(source)
    bare = tmp_path / "bundle.git"
    git(tmp_path, "clone", "-q", "--bare", str(source), str(bare))
    repo = tmp_path / "repo"
    url = f"file://{bare}"
    entry = {"name": "remote-one", "source": {"source": "url", "url": url, "path": "sub"}}
    broken = {
        "name": "broken",
        "source": {"source": "url", "url": f"file://{tmp_path}/missing.git"},
    }
    market = make_marketplace(repo, "git-mkt", [entry, broken])
    home = tmp_path / "home"
    async with marketplace_server(serve, tmp_path, home=home) as served:
        client = served.client
        install = {"marketplacePath": str(market), "pluginName": "remote-one"}
        assert (await client.request("plugin/install", install))["authPolicy"] == "ON_INSTALL"
        error = await fails(client, "plugin/install", {**install, "pluginName": "broken"})
        listing = ids(await client.request("plugin/installed", {"cwds": [str(repo)]}))
    bundle = home / "plugins" / "cache" / "git-mkt" / "remote-one" / "3.0"
    assert (bundle / "skills" / "hop" / "SKILL.md").is_file()
    assert not (bundle / ".git").exists()
    assert listing["remote-one@git-mkt"]["source"] == {
        "type": "git", "url": url, "path": "sub", "refName": None, "sha": None,
    }  # fmt: skip
    assert error.code == -32603 and error.message.startswith("failed to clone plugin `broken`: ")
    assert not any((home / "plugins" / ".staging").iterdir())


async def test_installed_skills_reach_the_model(serve, model_server, tmp_path):
    repo, market = layout(tmp_path)
    home = tmp_path / "home"
    env = {"HOME": str(tmp_path / "user")}
    plugins = ("threads", "models", "skills", "fs", "marketplace")
    model_server.responses.extend([text("ok")])
    async with agent_server(serve, model_server, plugins=plugins, env=env, home=home) as agent:
        install = {"marketplacePath": str(market), "pluginName": "alpha"}
        await agent.client.request("plugin/install", install)
        thread = await agent.start(cwd=str(repo))
        mention = [
            {"type": "text", "text": "use it"},
            {"type": "mention", "name": "alpha", "path": "plugin://alpha@local-mkt"},
        ]
        await agent.client.request(
            "turn/start", {"threadId": thread["thread"]["id"], "input": mention}
        )
        await agent.until("turn/completed")
    body = model_server.requests[0].body
    texts = [p.get("text", "") for i in body["input"] for p in i.get("content", [])]
    skills = next(t for t in texts if t.startswith("<skills_instructions>"))
    cached = (
        home
        / "plugins"
        / "cache"
        / "local-mkt"
        / "alpha"
        / "1.2.0"
        / "skills"
        / "greet"
        / "SKILL.md"
    )
    assert f"- alpha:greet: Greets people (file: {cached})" in skills
    plugins_text = next(t for t in texts if t.startswith("<plugins_instructions>"))
    assert "- `alpha`: the alpha bundle" in plugins_text
    assert texts[-1] == (
        "Capabilities from the `alpha` plugin:\n- Its skills are listed with the prefix `alpha:`.\n"
        "- Its MCP servers: `alpha-mcp`.\n- Its apps: `Calendar`."
    )


async def test_on_install_bundles_name_the_apps_to_connect(serve, tmp_path):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    apps = {
        "cal": {"id": "asdk_app_1", "name": "Calendar", "installUrl": "https://example.test/c"},
        "mail": {"name": "Mail"},
    }
    make_bundle(repo / "plugins" / "delta", "delta", apps=apps)
    market = make_marketplace(repo, "local-mkt", [{"name": "delta", "source": "./plugins/delta"}])
    async with marketplace_server(serve, tmp_path, home=tmp_path / "home") as served:
        answer = await served.client.request(
            "plugin/install", {"marketplacePath": str(market), "pluginName": "delta"}
        )
    assert answer["authPolicy"] == "ON_INSTALL"
    assert answer["appsNeedingAuth"] == [
        {
            "id": "asdk_app_1",
            "name": "Calendar",
            "description": None,
            "installUrl": "https://example.test/c",
            "category": None,
        },
        {"id": "mail", "name": "Mail", "description": None, "installUrl": None, "category": None},
    ]
