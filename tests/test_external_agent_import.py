"""externalAgentConfig/import of everything but sessions, and the import history."""

from __future__ import annotations

import asyncio
import json
import tomllib

from tests.support.calls import fails
from tests.support.external_agent_client import (
    by_type,
    importer,
    items_of,
    run_import,
    wait_completed,
)
from tests.support.external_agent_home import build_home

HISTORIES = "#/definitions/v2/ExternalAgentConfigImportHistoriesReadResponse"


def _pairs(result: dict) -> list[tuple[str, str]]:
    return [(s["source"], s["target"]) for s in result["successes"]]


async def test_import_writes_each_item_where_the_server_keeps_it(
    serve, model_server, tmp_path, checker
):
    fake = build_home(tmp_path / "user")
    async with importer(serve, model_server, fake.root, extra=("skills", "mcp")) as agent:
        client, home = agent.client, agent.served.home
        detected = await client.request(
            "externalAgentConfig/detect", {"includeHome": True, "cwds": [str(fake.repo)]}
        )
        items = [i for i in detected["items"] if i["itemType"] != "SESSIONS"]
        import_id, progress, completed = await run_import(client, items, providerId="claude")

        # One progress per item, in the order given, then the completion merged per type.
        assert [p.params["itemTypeResults"][0]["itemType"] for p in progress] == [
            i["itemType"] for i in items
        ]
        results = by_type(completed)
        assert list(results) == [
            "CONFIG",
            "SKILLS",
            "AGENTS_MD",
            "MCP_SERVER_CONFIG",
            "SUBAGENTS",
            "HOOKS",
            "COMMANDS",
        ]
        assert all(not r["failures"] for r in results.values())

        config = tomllib.loads((home / "config.toml").read_text())
        assert config["sandbox_mode"] == "workspace-write"
        assert config["shell_environment_policy"] == {
            "inherit": "core",
            "set": {"FOO": "bar", "DEBUG": "1", "LOCAL_ONLY": "yes"},
        }
        assert config["mcp_servers"] == {
            "docs": {
                "command": "npx",
                "args": ["-y", "docs-server"],
                "env_vars": ["API_KEY"],
                "env": {"MODE": "fast"},
            },
            "search": {"command": "search-mcp"},
            "tracker": {
                "url": "https://tracker.example/mcp",
                "bearer_token_env_var": "TRACKER_TOKEN",
                "http_headers": {"X-Team": "core"},
            },
        }
        hooks = json.loads((home / "hooks.json").read_text())["hooks"]
        assert hooks["PreToolUse"] == [
            {
                "matcher": "Bash",
                "hooks": [
                    {
                        "type": "command",
                        "command": f"python3 '{home / 'hooks' / 'check.py'}'",
                        "timeout": 5,
                    }
                ],
            }
        ]
        assert hooks["Stop"] == [{"hooks": [{"type": "command", "command": "echo claude stopped"}]}]
        assert set(hooks) == {"PreToolUse", "Stop", "UserPromptSubmit"}  # async and unknown: left
        assert (home / "hooks" / "check.py").read_text() == "print('checked')\n"
        assert (home / "AGENTS.md").read_text() == "# Rules\n\nCodex must read AGENTS.md first.\n"
        assert (
            "Review code like Codex does" in (home / "skills" / "review" / "SKILL.md").read_text()
        )
        assert (home / "skills" / "review" / "scripts" / "lint.sh").is_file()
        command = (home / "skills" / "source-command-pr-review" / "SKILL.md").read_text()
        assert command.startswith('---\nname: "source-command-pr-review"\n')
        assert "Read the diff with Codex care." in command
        agent_toml = tomllib.loads((home / "agents" / "reviewer.toml").read_text())
        assert agent_toml == {
            "name": "reviewer",
            "description": "Reviews changes for Codex",
            "model_reasoning_effort": "high",
            "sandbox_mode": "read-only",
            "developer_instructions": "You review code carefully.",
        }
        repo_config = tomllib.loads((fake.repo / ".codex" / "config.toml").read_text())
        assert repo_config == {
            "shell_environment_policy": {"inherit": "core", "set": {"REPO": "1"}},
            "mcp_servers": {
                "lint": {"command": "lint-mcp"},
                "repo-only": {"command": "repo-server"},
            },
        }
        assert (fake.repo / "AGENTS.md").read_text() == "Repository rules for Codex.\n"
        scripts = fake.repo / ".codex" / "hooks"
        repo_hooks = json.loads((fake.repo / ".codex" / "hooks.json").read_text())["hooks"]
        commands = {e: g[0]["hooks"][0]["command"] for e, g in repo_hooks.items()}
        assert commands == {
            "PostToolUse": f"'{scripts / 'fmt.sh'}'",
            "SessionStart": f"bash '{scripts / 'start up.sh'}' --quiet",
            # An assignment's value and a path with an expansion stay as written.
            "Stop": "A=.claude/hooks/x.sh run ./.claude/hooks/$NAME",
        }
        assert repo_hooks["PostToolUse"][0]["matcher"] == "Edit"
        assert (scripts / "fmt.sh").read_text() == "#!/bin/sh\nexit 0\n"
        assert (fake.repo / ".agents" / "skills" / "fmt" / "SKILL.md").is_file()
        assert ("search", "search") in _pairs(results["MCP_SERVER_CONFIG"])

        # The skills family finds what was imported, in the home and in the repository.
        listed = await client.request("skills/list", {"cwds": [str(fake.repo)]})
        names = {s["name"] for entry in listed["data"] for s in entry["skills"]}
        assert {"review", "source-command-deploy", "source-command-pr-review", "fmt"} <= names

        # The history keeps what completion said.
        histories = await client.request("externalAgentConfig/import/readHistories", None)
        checker._validate(HISTORIES, histories, "readHistories")
        (entry,) = histories["data"]
        assert entry["importId"] == import_id and entry["providerId"] == "claude"
        assert entry["successes"] == [s for r in results.values() for s in r["successes"]]

        # Detecting again offers nothing more for these scopes.
        again = await client.request(
            "externalAgentConfig/detect", {"includeHome": True, "cwds": [str(fake.repo)]}
        )
        assert [i["itemType"] for i in again["items"]] == ["SESSIONS"]


async def test_a_failing_item_does_not_stop_the_others_and_reimport_adds_nothing(
    serve, model_server, tmp_path
):
    fake = build_home(tmp_path / "user")
    (fake.repo / ".codex").mkdir()
    (fake.repo / ".codex" / "config.toml").write_text("this is = = not toml")
    items = [
        {"itemType": kind, "description": kind.lower()}
        for kind in ("SKILLS", "COMMANDS", "MCP_SERVER_CONFIG", "AGENTS_MD", "HOOKS")
    ]
    items += [
        {"itemType": "CONFIG", "description": "repo", "cwd": str(fake.repo)},
        {"itemType": "AGENTS_MD", "description": "gone", "cwd": str(tmp_path / "gone")},
        {
            "itemType": "PLUGINS",
            "description": "plugins",
            "details": {"plugins": [{"marketplaceName": "mkt", "pluginNames": ["lint"]}]},
        },
    ]
    async with importer(serve, model_server, fake.root) as agent:
        _, progress, completed = await run_import(agent.client, items)
        assert len(progress) == len(items)
        results = by_type(completed)
        assert _pairs(results["SKILLS"]) == [("review", "review")]
        assert [f["source"] for f in results["SKILLS"]["failures"]] == ["broken"]
        assert [s["target"] for s in results["COMMANDS"]["successes"]] == [
            "source-command-deploy",
            "source-command-pr-review",
        ]
        (unsupported,) = results["COMMANDS"]["failures"]
        assert unsupported["failureStage"] == "command_unsupported"
        assert "$ARGUMENTS" in unsupported["message"]
        assert [f["source"] for f in results["MCP_SERVER_CONFIG"]["failures"]] == ["legacy"]
        assert len(results["MCP_SERVER_CONFIG"]["successes"]) == 3
        bad_config = results["CONFIG"]["failures"][0]
        assert bad_config["errorType"] == "invalid_existing_config"
        assert bad_config["cwd"] == str(fake.repo)
        (gone,) = results["AGENTS_MD"]["failures"]
        assert gone["message"] == f"{tmp_path / 'gone'} does not exist"
        assert (
            len(results["AGENTS_MD"]["successes"]) == 1 and len(results["HOOKS"]["successes"]) == 3
        )
        (plugin,) = results["PLUGINS"]["failures"]
        assert plugin["source"] == "lint@mkt" and plugin["errorType"] == "unsupported"

        home = agent.served.home
        written = {
            p: p.read_bytes() for p in home.rglob("*") if p.is_file() and "sqlite" not in p.name
        }
        _, _, completed = await run_import(agent.client, items)
        again = by_type(completed)
        assert all(not r["successes"] for r in again.values())
        (hooks_failure,) = again["HOOKS"]["failures"]  # hooks.json exists now: left alone
        assert hooks_failure["failureStage"] == "hooks_target_exists"
        assert {p: p.read_bytes() for p in written} == written


async def test_bad_import_params_are_refused_before_anything_happens(serve, model_server, tmp_path):
    fake = build_home(tmp_path / "user")
    skills = {"itemType": "SKILLS", "description": "skills"}
    cases = [
        ({"migrationItems": [{**skills, "cwd": "work/app"}]}, "migrationItems[0].cwd"),
        ({"migrationItems": [{"itemType": "WIDGETS", "description": "x"}]}, "migrationItems"),
        ({"migrationItems": [{"itemType": "SKILLS"}]}, "description"),
        ({"migrationItems": [skills], "migrationSource": "cursor"}, "migrationSource"),
        ({}, "migrationItems"),
        (
            {
                "migrationItems": [
                    {
                        "itemType": "SESSIONS",
                        "description": "s",
                        "details": {"sessions": [{"path": "a.jsonl", "cwd": "/tmp"}]},
                    }
                ]
            },
            "migrationItems[0].details.sessions[0].path",
        ),
    ]
    async with importer(serve, model_server, fake.root) as agent:
        for params, field in cases:
            error = await fails(agent.client, "externalAgentConfig/import", params)
            assert error.code == -32602, params
            assert field in error.message, (field, error.message)
        assert not (agent.served.home / "skills").exists()
        quiet = await agent.drain(0.3)
        assert not [n for n in quiet if n.method.startswith("externalAgentConfig/")]
        _, progress, completed = await run_import(agent.client, [])
        assert progress == [] and completed.params["itemTypeResults"] == []
        histories = await agent.client.request("externalAgentConfig/import/readHistories", None)
        assert histories == {"data": [], "connectors": []}  # an empty import is not history


async def test_recorded_histories_survive_a_restart(serve, model_server, tmp_path, checker):
    fake = build_home(tmp_path / "user")
    home = tmp_path / "server-home"
    record = {
        "providerId": "claude",
        "itemTypeResults": [
            {
                "itemType": "SKILLS",
                "successes": [{"itemType": "SKILLS", "source": "a", "target": "a", "title": "A"}],
                "failures": [
                    {
                        "itemType": "SKILLS",
                        "failureStage": "copy",
                        "message": "disk full",
                        "errorType": "io",
                    }
                ],
            }
        ],
    }
    async with importer(serve, model_server, fake.root, home=home) as agent:
        first = await agent.client.request("externalAgentConfig/import/recordHistory", record)
        await asyncio.sleep(0.01)
        second = await agent.client.request(
            "externalAgentConfig/import/recordHistory",
            {"providerId": "other", "itemTypeResults": []},
        )
        error = await fails(
            agent.client, "externalAgentConfig/import/recordHistory", {"itemTypeResults": []}
        )
        assert error.code == -32602 and "providerId" in error.message
        error = await fails(
            agent.client,
            "externalAgentConfig/import/recordHistory",
            {"providerId": "x", "itemTypeResults": [{"itemType": "SKILLS", "successes": []}]},
        )
        assert error.code == -32602 and "failures" in error.message
    async with importer(serve, model_server, fake.root, home=home) as agent:
        histories = await agent.client.request("externalAgentConfig/import/readHistories", None)
    checker._validate(HISTORIES, histories, "readHistories")
    assert [h["importId"] for h in histories["data"]] == [second["importId"], first["importId"]]
    entry = histories["data"][1]
    assert entry["providerId"] == "claude"
    assert entry["successes"] == [
        {"itemType": "SKILLS", "cwd": None, "source": "a", "target": "a", "title": "A"}
    ]
    assert entry["failures"] == [
        {
            "itemType": "SKILLS",
            "failureStage": "copy",
            "message": "disk full",
            "cwd": None,
            "source": None,
            "errorType": "io",
            "subErrorType": None,
        }
    ]


async def test_every_client_sees_an_import_that_outlives_its_requester(listen, tmp_path):
    fake = build_home(tmp_path / "user")
    plugins = ["threads", "external_agent"]
    async with listen(plugins=plugins, env={"HOME": str(fake.root)}) as server:
        watcher = await server.connect()
        await watcher.initialize()
        requester = await server.connect()
        await requester.initialize()
        detected = await requester.request("externalAgentConfig/detect", {"includeHome": True})
        items = items_of(detected, "AGENTS_MD") + items_of(detected, "SESSIONS")
        answer = await requester.request("externalAgentConfig/import", {"migrationItems": items})
        await requester.close()  # the import goes on without the client that asked
        progress, completed = await wait_completed(watcher, answer["importId"])
        assert [p.params["itemTypeResults"][0]["itemType"] for p in progress] == [
            "SESSIONS",
            "AGENTS_MD",
            "SESSIONS",
        ]
        results = by_type(completed)
        assert len(results["SESSIONS"]["successes"]) == 3
        assert len(results["AGENTS_MD"]["successes"]) == 1
        listed = await watcher.request("thread/list", {})
        assert len(listed["data"]) == 3
        await watcher.close()


async def test_a_config_toml_broken_since_startup_is_reported_and_kept(
    serve, model_server, tmp_path
):
    fake = build_home(tmp_path / "user")
    async with importer(serve, model_server, fake.root) as agent:
        target = agent.served.home / "config.toml"
        broken = 'model = "gpt-5.5"\n[[[ not toml\n'
        target.write_text(broken)  # edited by hand while serving
        items = [
            {"itemType": "CONFIG", "description": "config"},
            {"itemType": "MCP_SERVER_CONFIG", "description": "mcp"},
            {"itemType": "AGENTS_MD", "description": "instructions"},
        ]
        _, _, completed = await run_import(agent.client, items)
        results = by_type(completed)
        for kind in ("CONFIG", "MCP_SERVER_CONFIG"):
            (failure,) = results[kind]["failures"]
            assert failure["errorType"] == "invalid_existing_config", failure
            assert failure["message"].startswith(f"invalid existing config.toml {target}")
            assert results[kind]["successes"] == []
        assert len(results["AGENTS_MD"]["successes"]) == 1
        assert target.read_text() == broken
