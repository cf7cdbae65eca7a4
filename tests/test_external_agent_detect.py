"""externalAgentConfig/detect over real stdio against a fake Claude Code home."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.calls import fails
from tests.support.external_agent_client import importer, items_of, run_import
from tests.support.external_agent_home import SESSION_IDS, build_home


def _tree(root: Path) -> dict[str, float]:
    """Every file under ``root`` with its mtime (what a read-only call must not change)."""
    found = {}
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory) / name
            found[str(path.relative_to(root))] = path.stat().st_mtime
    return found


def _names(item: dict, member: str) -> list[str]:
    return [entry["name"] for entry in item["details"][member]]


async def test_detect_lists_every_type_per_scope_and_writes_nothing(serve, model_server, tmp_path):
    fake = build_home(tmp_path / "user")
    async with importer(serve, model_server, fake.root) as agent:
        home = agent.served.home
        before_home, before_fake = _tree(home), _tree(fake.root)
        detected = await agent.client.request(
            "externalAgentConfig/detect",
            {"includeHome": True, "cwds": [str(fake.repo / "src"), str(fake.repo)]},
        )
        assert _tree(home) == before_home and _tree(fake.root) == before_fake

    home_types = [i["itemType"] for i in detected["items"] if i["cwd"] is None]
    assert home_types == [
        "CONFIG",
        "MCP_SERVER_CONFIG",
        "HOOKS",
        "SKILLS",
        "COMMANDS",
        "SUBAGENTS",
        "AGENTS_MD",
        "SESSIONS",
    ]
    (mcp,) = items_of(detected, "MCP_SERVER_CONFIG")
    # legacy is SSE (not runnable here), muted is disabled by settings.json.
    assert _names(mcp, "mcpServers") == ["docs", "search", "tracker"]
    (hooks,) = items_of(detected, "HOOKS")
    assert _names(hooks, "hooks") == ["PreToolUse", "Stop", "UserPromptSubmit"]
    assert _names(items_of(detected, "SKILLS")[0], "skills") == [
        "review"
    ]  # broken has no description
    assert _names(items_of(detected, "COMMANDS")[0], "commands") == [
        "source-command-deploy",
        "source-command-pr-review",
    ]
    assert _names(items_of(detected, "SUBAGENTS")[0], "subagents") == ["reviewer"]
    (config,) = items_of(detected, "CONFIG")
    assert config["details"] is None
    assert config["description"] == (
        f"Migrate {fake.claude / 'settings.json'} into {agent.served.home / 'config.toml'}"
    )
    (sessions,) = items_of(detected, "SESSIONS")
    # Newest first; broken (no record), ancient (60 days), orphan (no user message) are not offered.
    assert [Path(s["path"]).stem for s in sessions["details"]["sessions"]] == [
        SESSION_IDS["alpha"],
        SESSION_IDS["beta"],
        SESSION_IDS["gamma"],
    ]
    assert [s["title"] for s in sessions["details"]["sessions"]] == [
        "Safari login fix",
        "Write a README",
        "Rename the module",
    ]
    assert {s["cwd"] for s in sessions["details"]["sessions"]} == {str(fake.repo)}
    assert detected["connectors"] == [
        {"name": "Linear", "sessionCount": 1, "source": "remoteMcpServersConfig"}
    ]
    # The repository: src and the root are one scope (the .git root), listed once.
    repo = str(fake.repo)
    assert [i["itemType"] for i in detected["items"] if i["cwd"] == repo] == [
        "CONFIG",
        "MCP_SERVER_CONFIG",
        "HOOKS",
        "SKILLS",
        "AGENTS_MD",
    ]
    assert _names(items_of(detected, "HOOKS", repo)[0], "hooks") == [
        "PostToolUse",
        "SessionStart",
        "Stop",
    ]
    assert _names(items_of(detected, "MCP_SERVER_CONFIG", repo)[0], "mcpServers") == [
        "lint",
        "repo-only",
    ]
    assert items_of(detected, "AGENTS_MD", repo)[0]["description"] == (
        f"Migrate {fake.repo / 'CLAUDE.md'} to {fake.repo / 'AGENTS.md'}"
    )


async def test_detect_session_limits_and_param_errors(serve, model_server, tmp_path):
    fake = build_home(tmp_path / "user")
    async with importer(serve, model_server, fake.root) as agent:
        client = agent.client

        async def sessions(**params) -> list[str]:
            found = await client.request(
                "externalAgentConfig/detect", {"includeHome": True, **params}
            )
            return [
                Path(s["path"]).stem
                for item in items_of(found, "SESSIONS")
                for s in item["details"]["sessions"]
            ]

        assert await sessions(maxSessions=1) == [SESSION_IDS["alpha"]]
        assert await sessions(maxSessions=0) == []
        assert SESSION_IDS["ancient"] in await sessions(maxSessionAgeDays=90)
        assert await sessions(migrationSource="Claude", source="settings") != []
        nothing = await client.request("externalAgentConfig/detect", {})
        assert nothing == {"items": [], "connectors": []}
        missing = await client.request(
            "externalAgentConfig/detect", {"cwds": [str(tmp_path / "nowhere")]}
        )
        assert missing["items"] == []

        error = await fails(client, "externalAgentConfig/detect", {"cwds": ["work/app"]})
        assert (error.code, error.message) == (
            -32602,
            "Invalid params: cwds[0]: expected an absolute path, got 'work/app'",
        )
        error = await fails(client, "externalAgentConfig/detect", {"migrationSource": "cursor"})
        assert error.code == -32602 and "migrationSource" in error.message
        error = await fails(client, "externalAgentConfig/detect", {"maxSessions": -1})
        assert error.code == -32602 and "maxSessions" in error.message
        error = await fails(client, "externalAgentConfig/detect", {"includeHome": "yes"})
        assert error.code == -32602 and "includeHome" in error.message
        # Still serving after the errors.
        assert await sessions(maxSessions=2) == [SESSION_IDS["alpha"], SESSION_IDS["beta"]]


async def test_a_broken_settings_file_hides_only_what_depends_on_it(serve, model_server, tmp_path):
    fake = build_home(tmp_path / "user")
    (fake.claude / "settings.json").write_text("{not json")
    async with importer(serve, model_server, fake.root) as agent:
        detected = await agent.client.request("externalAgentConfig/detect", {"includeHome": True})
        kinds = [i["itemType"] for i in detected["items"] if i["cwd"] is None]
        assert "CONFIG" not in kinds and "HOOKS" not in kinds
        assert {"SKILLS", "COMMANDS", "SUBAGENTS", "AGENTS_MD", "SESSIONS"} <= set(kinds)
        config = {"itemType": "CONFIG", "description": "settings"}
        _, _, completed = await run_import(agent.client, [config])
        (result,) = completed.params["itemTypeResults"]
        (failure,) = result["failures"]
        assert failure["failureStage"] == "import_request_failed"
        assert failure["errorType"] == "external_agent_config_import_error"
        assert failure["message"].startswith(f"invalid JSON in {fake.claude / 'settings.json'}")
    assert "config detection skipped for home" in agent.served.log()


async def test_memory_is_detected_and_imported_only_when_enabled(serve, model_server, tmp_path):
    fake = build_home(tmp_path / "user")
    memory_item = {"itemType": "MEMORY", "description": "notes", "details": {"memory": []}}
    async with importer(serve, model_server, fake.root) as agent:
        detected = await agent.client.request("externalAgentConfig/detect", {"includeHome": True})
        assert not items_of(detected, "MEMORY")
        error = await fails(
            agent.client, "externalAgentConfig/import", {"migrationItems": [memory_item]}
        )
        assert (error.code, error.message) == (-32600, "external agent memory import is disabled")

    enabled = ["-c", "features.external_agent_memory_import=true"]
    async with importer(serve, model_server, fake.root, args=enabled) as agent:
        detected = await agent.client.request("externalAgentConfig/detect", {"includeHome": True})
        (item,) = items_of(detected, "MEMORY")
        assert item["details"]["memory"] == ["-work-app/notes.md"]
        error = await fails(
            agent.client, "externalAgentConfig/import", {"migrationItems": [memory_item]}
        )
        assert (error.code, error.message) == (
            -32600,
            "memory import requires at least one selected memory",
        )
        item["details"]["memory"].append("-work-app/absent.md")
        _, _, completed = await run_import(agent.client, [item])
        (result,) = completed.params["itemTypeResults"]
        target = agent.served.home / "memories" / "claude" / "-work-app" / "notes.md"
        assert [s["target"] for s in result["successes"]] == [str(target)]
        assert target.read_text() == "Prefers tabs.\n"
        assert [f["failureStage"] for f in result["failures"]] == ["memory_missing"]
        detected = await agent.client.request("externalAgentConfig/detect", {"includeHome": True})
        assert not items_of(detected, "MEMORY")  # copied: nothing left to offer
