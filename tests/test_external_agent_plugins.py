"""PLUGINS: the other agent's enabled plugins, detected, then installed by the marketplace family.

Claude Code's setup is real files in a fake ``$HOME``
(tests/support/external_agent_plugins.py); marketplaces are a real local
folder and a real bare git repository cloned over ``file://`` with the
system git (through the process family).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from tests.support.external_agent_client import by_type, importer, items_of, run_import
from tests.support.external_agent_plugins import build_plugin_home

MARKET = ("marketplace", "process")
DISABLED = "plugins feature is disabled ([features] plugins = false)"


def _groups(item: dict) -> list[tuple[str, list[str]]]:
    return [(g["marketplaceName"], g["pluginNames"]) for g in item["details"]["plugins"]]


def _installed(listing: dict) -> dict[str, list[str]]:
    return {
        m["name"]: sorted(p["id"] for p in m["plugins"] if p["installed"])
        for m in listing["marketplaces"]
    }


def _tree(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


async def test_detect_offers_enabled_plugins_per_marketplace_then_import_installs_them(
    serve, model_server, tmp_path
):
    fake = build_plugin_home(tmp_path)
    async with importer(serve, model_server, fake.root, extra=MARKET) as agent:
        client, home = agent.client, agent.served.home
        detect = {"includeHome": True, "cwds": [str(fake.repo / "tools")]}
        detected = await client.request("externalAgentConfig/detect", detect)
        (item,) = items_of(detected, "PLUGINS")
        assert item["description"] == (
            f"Migrate enabled plugins from {fake.claude / 'settings.json'}"
        )
        # Sorted by marketplace and name; `false`, malformed ids and `nowhere` (no source)
        # are left out; settings.local.json adds beta.
        assert _groups(item) == [
            ("git-mkt", ["gamma"]),
            ("gone-mkt", ["x"]),
            ("local-mkt", ["alpha", "beta", "locked", "missing"]),
        ]
        (repo_item,) = items_of(detected, "PLUGINS", str(fake.repo))
        assert _groups(repo_item) == [("repo-mkt", ["delta"])]
        assert repo_item["description"] == (
            f"Migrate enabled plugins from {fake.repo / '.claude' / 'settings.json'}"
        )

        _, progress, completed = await run_import(client, [item, repo_item])
        # The local marketplaces before the answer (one progress per item), then the
        # git ones in the background (one more progress), then the completion.
        kinds = [p.params["itemTypeResults"][0] for p in progress]
        assert [(r["itemType"], len(r["successes"])) for r in kinds] == [
            ("PLUGINS", 2),
            ("PLUGINS", 1),
            ("PLUGINS", 1),
        ]
        assert [s["source"] for s in kinds[2]["successes"]] == ["gamma@git-mkt"]
        plugins = by_type(completed)["PLUGINS"]
        assert sorted((s["source"], s["target"], s["cwd"]) for s in plugins["successes"]) == [
            ("alpha@local-mkt", "alpha@local-mkt", None),
            ("beta@local-mkt", "beta@local-mkt", None),
            ("delta@repo-mkt", "delta@repo-mkt", str(fake.repo)),
            ("gamma@git-mkt", "gamma@git-mkt", None),
        ]
        failures = {f["source"]: f for f in plugins["failures"]}
        assert sorted(failures) == ["locked@local-mkt", "missing@local-mkt", "x@gone-mkt"]
        assert {f["failureStage"] for f in failures.values()} == {"plugin_import"}
        assert failures["locked@local-mkt"]["message"] == (
            "plugin `locked` is not available for install in marketplace `local-mkt`"
        )
        assert failures["missing@local-mkt"]["message"] == (
            "plugin `missing` was not found in marketplace `local-mkt`"
        )
        assert failures["x@gone-mkt"]["message"].startswith(
            f"failed to clone marketplace `file://{fake.gone}`"
        )

        # Installed as plugin/install would: listed, enabled, marketplaces recorded.
        listing = await client.request("plugin/installed", {})
        assert _installed(listing) == {
            "git-mkt": ["gamma@git-mkt"],
            "local-mkt": ["alpha@local-mkt", "beta@local-mkt"],
            "repo-mkt": ["delta@repo-mkt"],
        }
        assert all(p["enabled"] for m in listing["marketplaces"] for p in m["plugins"])
        config = tomllib.loads((home / "config.toml").read_text())
        markets = config["marketplaces"]
        assert (markets["local-mkt"]["source_type"], markets["local-mkt"]["source"]) == (
            "local",
            str(fake.local_market),
        )
        assert (markets["repo-mkt"]["source"], markets["git-mkt"]["source"]) == (
            str(fake.repo_market),
            fake.git_url,
        )
        assert sorted(config["plugins"]) == [
            "alpha@local-mkt",
            "beta@local-mkt",
            "delta@repo-mkt",
            "gamma@git-mkt",
        ]

        # Importing again adds nothing: no success, the same failures, nothing rewritten.
        before = _tree(home / "plugins" / "cache")
        config_bytes = (home / "config.toml").read_bytes()
        _, _, again = await run_import(client, [item, repo_item])
        plugins = by_type(again)["PLUGINS"]
        assert plugins["successes"] == []
        assert sorted(f["source"] for f in plugins["failures"]) == sorted(failures)
        assert _tree(home / "plugins" / "cache") == before
        assert (home / "config.toml").read_bytes() == config_bytes

        # Detection now leaves out what is installed and what the added marketplaces
        # cannot install (NOT_AVAILABLE, absent); only the unreachable one remains.
        detected = await client.request("externalAgentConfig/detect", detect)
        (item,) = items_of(detected, "PLUGINS")
        assert _groups(item) == [("gone-mkt", ["x"])]
        assert items_of(detected, "PLUGINS", str(fake.repo)) == []


async def test_a_missing_marketplace_or_plugin_fails_alone(serve, model_server, tmp_path):
    fake = build_plugin_home(tmp_path)
    async with importer(serve, model_server, fake.root, extra=MARKET) as agent:
        client = agent.client
        # A marketplace the server has by name, though Claude Code has no source for it.
        await client.request("marketplace/add", {"source": str(fake.side)})
        groups = [
            {"marketplaceName": "nowhere", "pluginNames": ["ghost"]},
            {"marketplaceName": "local-mkt", "pluginNames": ["missing", "alpha", "alpha"]},
            {"marketplaceName": "side-mkt", "pluginNames": ["eps"]},
        ]
        items = [
            {"itemType": "PLUGINS", "description": "plugins", "details": {"plugins": groups}},
            {"itemType": "PLUGINS", "description": "no details"},
        ]
        _, progress, completed = await run_import(client, items)
        assert len(progress) == 2
        plugins = by_type(completed)["PLUGINS"]
        assert [(s["source"], s["target"]) for s in plugins["successes"]] == [
            ("alpha@local-mkt", "alpha@local-mkt"),
            ("eps@side-mkt", "eps@side-mkt"),
        ]
        assert [(f["source"], f["message"]) for f in plugins["failures"]] == [
            ("ghost@nowhere", "external agent plugin marketplace source was not found: nowhere"),
            ("missing@local-mkt", "plugin `missing` was not found in marketplace `local-mkt`"),
            (None, "plugins migration item is missing details"),
        ]
        listing = await client.request("plugin/installed", {})
        assert _installed(listing) == {
            "local-mkt": ["alpha@local-mkt"],
            "side-mkt": ["eps@side-mkt"],
        }


async def test_without_the_marketplace_family_or_with_plugins_off_nothing_is_installed(
    serve, model_server, tmp_path
):
    fake = build_plugin_home(tmp_path)
    groups = [{"marketplaceName": "local-mkt", "pluginNames": ["alpha"]}]
    items = [{"itemType": "PLUGINS", "description": "p", "details": {"plugins": groups}}]
    async with importer(serve, model_server, fake.root) as agent:
        detected = await agent.client.request("externalAgentConfig/detect", {"includeHome": True})
        assert items_of(detected, "PLUGINS") == []
        _, _, completed = await run_import(agent.client, items)
        (failure,) = by_type(completed)["PLUGINS"]["failures"]
        assert (failure["source"], failure["errorType"]) == ("alpha@local-mkt", "unsupported")
        assert "needs the marketplace family" in failure["message"]

    off = ["-c", "features.plugins=false"]
    async with importer(serve, model_server, fake.root, extra=MARKET, args=off) as agent:
        home = agent.served.home
        detected = await agent.client.request("externalAgentConfig/detect", {"includeHome": True})
        assert items_of(detected, "PLUGINS") == []
        _, _, completed = await run_import(agent.client, items)
        (failure,) = by_type(completed)["PLUGINS"]["failures"]
        assert (failure["source"], failure["message"]) == ("alpha@local-mkt", DISABLED)
        assert not (home / "plugins").exists()
        config = home / "config.toml"
        assert not config.exists() or "marketplaces" not in tomllib.loads(config.read_text())
