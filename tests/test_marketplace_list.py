"""``plugin/list``, ``plugin/installed`` and ``plugin/read`` over real marketplace folders.

"Plugin" here is the reference's bundle of skills, hooks, MCP servers and
apps. Each test lays out marketplace files and bundles on disk, starts a
kernel subprocess with ``HOME`` in the test directory, and checks the
answers (every frame is validated against the reference schema).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.calls import fails
from tests.support.marketplace_fixtures import make_bundle, make_marketplace, marketplace_server

INTERFACE = {
    "displayName": "Alpha",
    "shortDescription": "short",
    "longDescription": "long",
    "developerName": "dev",
    "category": "Tools",
    "capabilities": ["Read"],
    "websiteURL": "https://a.example",
    "privacyPolicyURL": "https://p.example",
    "termsOfServiceURL": "https://t.example",
    "defaultPrompt": "Try alpha",
    "brandColor": "#112233",
    "composerIcon": "./assets/icon.png",
    "logo": "./assets/logo.png",
    "screenshots": ["./assets/s1.png", "../../escape.png"],
}
HOOKS = {
    "Stop": [{"hooks": [{"type": "command", "command": "echo stop"}]}],
    "PreToolUse": [
        {
            "matcher": "Bash",
            "hooks": [
                {"type": "command", "command": "echo a"},
                {"type": "command", "command": "echo b"},
            ],
        }
    ],
}


def project(tmp: Path) -> tuple[Path, Path]:
    """A repository with a marketplace of five entries; returns (repo, marketplace file)."""
    repo = tmp / "repo"
    (repo / ".git").mkdir(parents=True)
    plugins = repo / "plugins"
    make_bundle(
        plugins / "alpha",
        "alpha",
        version="1.2.0",
        skills={"greet": "Greets"},
        hooks=HOOKS,
        mcp=["alpha-mcp"],
        apps={"cal": {"id": "asdk_app_1", "name": "Calendar", "installUrl": "https://i.example"}},
        interface=INTERFACE,
        manifest={"keywords": ["k1"]},
    )
    make_bundle(plugins / "beta", "beta")
    make_bundle(plugins / "gamma", "gamma", version="0.1")
    entries = [
        {
            "name": "alpha",
            "source": {"source": "local", "path": "./plugins/alpha"},
            "policy": {"installation": "AVAILABLE", "authentication": "ON_USE"},
            "category": "Dev",
        },
        {"name": "beta", "source": "./plugins/beta"},
        {"name": "gamma", "source": "./plugins/gamma", "policy": {"installation": "NOT_AVAILABLE"}},
        {"name": "bad", "source": {"source": "local", "path": "plugins/alpha"}},
        {"name": "g", "source": {"source": "url", "url": "https://example.invalid/x.git"}},
    ]
    return repo, make_marketplace(repo, "local-mkt", entries, display="Local Market")


def summary(name: str, source: dict, **overrides):
    base = {
        "id": f"{name}@local-mkt",
        "remotePluginId": None,
        "version": None,
        "localVersion": None,
        "name": name,
        "shareContext": None,
        "source": source,
        "installed": False,
        "installedAt": None,
        "enabled": False,
        "installPolicy": "AVAILABLE",
        "installPolicySource": None,
        "mustShowInstallationInterstitial": None,
        "authPolicy": "ON_INSTALL",
        "availability": "AVAILABLE",
        "disabledReason": None,
        "eligiblePlanTypes": None,
        "interface": None,
        "keywords": [],
    }
    return {**base, **overrides}


async def test_list_with_defaults_interfaces_and_load_errors(serve, tmp_path):
    repo, market = project(tmp_path)
    broken = tmp_path / "broken"
    (broken / ".agents" / "plugins").mkdir(parents=True)
    (broken / ".agents" / "plugins" / "marketplace.json").write_text('{"name": bad json')
    twin = tmp_path / "twin"
    make_marketplace(twin, "local-mkt", [], claude=True)
    user_market = make_marketplace(tmp_path / "user", "home-mkt", [])
    alpha = repo / "plugins" / "alpha"
    async with marketplace_server(serve, tmp_path) as served:
        cwds = [str(repo / "plugins"), str(broken), str(twin)]
        result = await served.client.request("plugin/list", {"cwds": cwds})
    assert result["featuredPluginIds"] == []
    local, home = result["marketplaces"]
    assert home == {"name": "home-mkt", "path": str(user_market), "interface": None, "plugins": []}
    assert local["name"] == "local-mkt" and local["path"] == str(market)
    assert local["interface"] == {"displayName": "Local Market"}
    assert local["plugins"] == [
        summary(
            "alpha",
            {"type": "local", "path": str(alpha)},
            localVersion="1.2.0",
            authPolicy="ON_USE",
            keywords=["k1"],
            interface={
                "displayName": "Alpha",
                "shortDescription": "short",
                "longDescription": "long",
                "developerName": "dev",
                "category": "Dev",  # the marketplace's category wins
                "capabilities": ["Read"],
                "websiteUrl": "https://a.example",
                "privacyPolicyUrl": "https://p.example",
                "termsOfServiceUrl": "https://t.example",
                "defaultPrompt": ["Try alpha"],
                "brandColor": "#112233",
                "composerIcon": str(alpha / "assets" / "icon.png"),
                "composerIconUrl": None,
                "logo": str(alpha / "assets" / "logo.png"),
                "logoDark": None,
                "logoUrl": None,
                "logoUrlDark": None,
                "screenshots": [str(alpha / "assets" / "s1.png")],
                "screenshotUrls": [],
            },
        ),
        summary("beta", {"type": "local", "path": str(repo / "plugins" / "beta")}),
        summary(
            "gamma",
            {"type": "local", "path": str(repo / "plugins" / "gamma")},
            localVersion="0.1",
            installPolicy="NOT_AVAILABLE",
        ),
        summary(
            "g",
            {
                "type": "git",
                "url": "https://example.invalid/x.git",
                "path": None,
                "refName": None,
                "sha": None,
            },
        ),
    ]
    errors = {e["marketplacePath"]: e["message"] for e in result["marketplaceLoadErrors"]}
    broken_file = str(broken / ".agents" / "plugins" / "marketplace.json")
    assert errors[broken_file].startswith(f"invalid marketplace file `{broken_file}`: ")
    # Better than the reference: the malformed entry is reported, not silently dropped.
    assert errors[str(market)] == (
        "plugins[3] left out: plugin `bad`: local source path 'plugins/alpha' must start with `./`"
    )
    twin_file = str(twin / ".claude-plugin" / "marketplace.json")
    assert errors[twin_file] == f"marketplace name `local-mkt` is already used by `{market}`"


async def test_kinds_and_bad_params(serve, tmp_path):
    repo, _ = project(tmp_path)
    async with marketplace_server(serve, tmp_path) as served:
        client = served.client
        local = await client.request(
            "plugin/list", {"cwds": [str(repo)], "marketplaceKinds": ["local"]}
        )
        assert [m["name"] for m in local["marketplaces"]] == ["local-mkt"]
        error = await fails(client, "plugin/list", {"marketplaceKinds": ["shared-with-me"]})
        assert error.code == -32600 and "`shared-with-me` marketplaces" in error.message
        error = await fails(client, "plugin/list", {"marketplaceKinds": ["vertical"]})
        assert error.code == -32600 and "no plugin catalog is configured" in error.message
        error = await fails(client, "plugin/list", {"cwds": ["relative/dir"]})
        assert error.code == -32602 and "cwds" in error.message
        error = await fails(client, "plugin/installed", {"cwds": ["relative/dir"]})
        assert error.code == -32602


async def test_installed_on_a_fresh_home_is_empty(serve, tmp_path):
    repo, _ = project(tmp_path)
    async with marketplace_server(serve, tmp_path) as served:
        for params in ({}, {"cwds": None}):
            answer = await served.client.request("plugin/installed", params)
            assert answer == {"marketplaces": [], "marketplaceLoadErrors": []}
        answer = await served.client.request("plugin/installed", {"cwds": [str(repo)]})
        assert answer["marketplaces"] == []
        assert [e["message"][:20] for e in answer["marketplaceLoadErrors"]] == [
            "plugins[3] left out:"
        ]
        suggested = {"cwds": [str(repo)], "installSuggestionPluginNames": ["beta"]}
        answer = await served.client.request("plugin/installed", suggested)
        assert [p["id"] for m in answer["marketplaces"] for p in m["plugins"]] == ["beta@local-mkt"]


async def test_read_a_bundle(serve, tmp_path):
    repo, market = project(tmp_path)
    alpha = repo / "plugins" / "alpha"
    async with marketplace_server(serve, tmp_path) as served:
        client = served.client
        read = {"marketplacePath": str(market), "pluginName": "alpha"}
        detail = (await client.request("plugin/read", read))["plugin"]
        git_read = {"marketplacePath": str(market), "pluginName": "g"}
        git_detail = (await client.request("plugin/read", git_read))["plugin"]
        errors = [
            await fails(client, "plugin/read", {**read, "pluginName": "missing"}),
            await fails(client, "plugin/read", {"pluginName": "alpha"}),
            await fails(client, "plugin/read", {**read, "remoteMarketplaceName": "x"}),
            await fails(
                client, "plugin/read", {**read, "marketplacePath": str(tmp_path / "no.json")}
            ),
        ]
    assert detail["marketplaceName"] == "local-mkt"
    assert detail["marketplacePath"] == str(market)
    assert detail["summary"]["id"] == "alpha@local-mkt"
    assert detail["description"] == "the alpha bundle"
    assert detail["skills"] == [
        {
            "name": "alpha:greet",
            "description": "Greets",
            "shortDescription": None,
            "interface": None,
            "path": str(alpha / "skills" / "greet" / "SKILL.md"),
            "enabled": True,
        }
    ]
    assert detail["hooks"] == [
        {"key": "alpha@local-mkt:hooks/hooks.json:pre_tool_use:0:0", "eventName": "preToolUse"},
        {"key": "alpha@local-mkt:hooks/hooks.json:pre_tool_use:0:1", "eventName": "preToolUse"},
        {"key": "alpha@local-mkt:hooks/hooks.json:stop:0:0", "eventName": "stop"},
    ]
    assert detail["mcpServers"] == ["alpha-mcp"]
    assert detail["apps"] == [
        {
            "id": "asdk_app_1",
            "name": "Calendar",
            "description": None,
            "installUrl": "https://i.example",
            "category": None,
        }
    ]
    assert (detail["appTemplates"], detail["onboardingSkill"], detail["scheduledTasks"]) == (
        [],
        None,
        None,
    )
    assert (
        git_detail["skills"] == [] and "https://example.invalid/x.git" in git_detail["description"]
    )
    assert [(e.code, e.message) for e in errors] == [
        (-32600, "plugin `missing` was not found in marketplace `local-mkt`"),
        (-32600, "plugin/read requires exactly one of marketplacePath or remoteMarketplaceName"),
        (-32600, "plugin/read requires exactly one of marketplacePath or remoteMarketplaceName"),
        (-32600, f"marketplace file `{tmp_path / 'no.json'}` does not exist"),
    ]


async def test_read_refuses_a_bundle_without_manifest(serve, tmp_path):
    repo = tmp_path / "repo"
    (repo / "plugins" / "empty").mkdir(parents=True)
    market = make_marketplace(repo, "m", [{"name": "empty", "source": "./plugins/empty"}])
    async with marketplace_server(serve, tmp_path) as served:
        error = await fails(
            served.client, "plugin/read", {"marketplacePath": str(market), "pluginName": "empty"}
        )
    assert (error.code, error.message) == (-32600, "missing or invalid plugin.json")


async def test_a_claude_plugin_marketplace_is_listed(serve, tmp_path):
    repo = tmp_path / "claude-repo"
    (repo / ".git").mkdir(parents=True)
    make_bundle(repo / "plugins" / "omega", "omega", version="2.0.0")
    path = make_marketplace(
        repo, "claude-mkt", [{"name": "omega", "source": "./plugins/omega"}], claude=True
    )
    async with marketplace_server(serve, tmp_path) as served:
        listing = await served.client.request("plugin/list", {"cwds": [str(repo)]})
    found = [m for m in listing["marketplaces"] if m["name"] == "claude-mkt"]
    assert len(found) == 1 and found[0]["path"] == str(path)
    assert [p["id"] for p in found[0]["plugins"]] == ["omega@claude-mkt"]
    assert found[0]["plugins"][0]["localVersion"] == "2.0.0"
