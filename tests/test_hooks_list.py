"""hooks/list: every discovery source, the key and hash rules, trust and state (over stdio)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.calls import fails
from tests.support.marketplace_fixtures import commit_all, git, make_bundle, make_marketplace

PLUGINS = ["hooks", "config", "threads", "models"]

PRE = {"matcher": "Bash", "hooks": [{"type": "command", "command": "echo pre", "timeout": 30}]}
PRE_TOML = (
    '[[hooks.PreToolUse]]\nmatcher = "Bash"\n[[hooks.PreToolUse.hooks]]\n'
    'type = "command"\ncommand = "echo pre"\ntimeout = 30\n'
)


def hooks_json(path: Path, hooks: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"hooks": hooks}))
    return path


async def listed(client, cwd: str | None = None, **params) -> dict:
    if cwd is not None:
        params["cwds"] = [cwd]
    data = (await client.request("hooks/list", params))["data"]
    assert len(data) == 1
    return data[0]


async def test_user_hooks_keys_hashes_order_defaults_and_warnings(serve, tmp_path):
    home = tmp_path / "home"
    hooks_json(
        home / "hooks.json",
        {
            "Stop": [{"matcher": "ignored(", "hooks": [{"type": "command", "command": "s"}]}],
            "SessionEnd": [{"hooks": [{"type": "command", "command": "bye"}]}],
            "PreToolUse": [
                PRE,
                {"matcher": "(", "hooks": [{"type": "command", "command": "never"}]},
                {"hooks": [{"type": "prompt"}, {"type": "command", "command": "  "}]},
            ],
        },
    )
    (home / "config.toml").write_text(PRE_TOML)
    async with serve(plugins=PLUGINS, home=home) as served:
        await served.client.initialize()
        entry = await listed(served.client, str(tmp_path))
    hooks = entry["hooks"]
    json_path, toml_path = str(home / "hooks.json"), str(home / "config.toml")
    assert [h["key"] for h in hooks] == [
        f"{json_path}:pre_tool_use:0:0",
        f"{json_path}:session_end:0:0",
        f"{json_path}:stop:0:0",  # canonical event order, not file order
        f"{toml_path}:pre_tool_use:0:0",
    ]
    assert [h["displayOrder"] for h in hooks] == [0, 1, 2, 3]
    first, session_end, stop, from_toml = hooks
    assert first["currentHash"] == from_toml["currentHash"]  # one definition, one hash
    assert first["currentHash"].startswith("sha256:") and len(first["currentHash"]) == 71
    assert first == {
        **first,
        "eventName": "preToolUse",
        "handlerType": "command",
        "command": "echo pre",
        "async": False,
        "matcher": "Bash",
        "timeoutSec": 30,
        "source": "user",
        "sourcePath": json_path,
        "pluginId": None,
        "isManaged": False,
        "enabled": True,
        "trustStatus": "untrusted",
    }
    assert session_end["timeoutSec"] == 1  # SessionEnd's own default
    assert stop["timeoutSec"] == 600 and stop["matcher"] is None  # Stop has no matcher
    assert entry["warnings"] == [
        f"loading hooks from both {json_path} and {toml_path}; prefer a single "
        "representation for this layer",
        f'invalid matcher "(" in {json_path}: regex parse error: missing ), unterminated '
        "subpattern at position 0",
        f"skipping prompt hook in {json_path}: prompt hooks are not supported yet",
        f"skipping empty hook command in {json_path}",
    ]
    assert entry["errors"] == [] and entry["cwd"] == str(tmp_path)


async def test_a_broken_file_is_dropped_whole_and_the_rest_still_lists(serve, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "hooks.json").write_text('{"hooks": {"PreToolUse": [{"hooks": [{"type": "bogus"}]}]}}')
    (home / "config.toml").write_text(PRE_TOML)
    async with serve(plugins=PLUGINS, home=home) as served:
        await served.client.initialize()
        entry = await listed(served.client, str(tmp_path))
        assert [h["sourcePath"] for h in entry["hooks"]] == [str(home / "config.toml")]
        assert entry["warnings"][-1] == (
            f"failed to parse hooks config {home / 'hooks.json'}: unknown variant `bogus`, "
            "expected one of `command`, `mcp_tool`, `prompt`, `agent`"
        )
        (home / "hooks.json").write_text("{nope")
        entry = await listed(served.client, str(tmp_path))
        assert entry["warnings"][-1].startswith(f"failed to parse hooks config {home}/hooks.json")


async def test_trust_and_state_round_trip_through_batch_write(serve, tmp_path):
    home = tmp_path / "home"
    path = hooks_json(home / "hooks.json", {"PreToolUse": [PRE]})
    async with serve(plugins=PLUGINS, home=home) as served:
        client = served.client
        await client.initialize()
        hook = (await listed(client, str(tmp_path)))["hooks"][0]
        key, current = hook["key"], hook["currentHash"]
        await client.request(
            "config/batchWrite",
            {
                "edits": [
                    {
                        "keyPath": "hooks.state",
                        "value": {key: {"trusted_hash": current}},
                        "mergeStrategy": "upsert",
                    }
                ]
            },
        )
        hook = (await listed(client, str(tmp_path)))["hooks"][0]
        assert (hook["trustStatus"], hook["enabled"]) == ("trusted", True)
        text = (home / "config.toml").read_text()
        assert f'[hooks.state."{key}"]' in text and f'trusted_hash = "{current}"' in text
        # A quoted key path segment disables it.
        await client.request(
            "config/value/write",
            {"keyPath": f'hooks.state."{key}".enabled', "value": False, "mergeStrategy": "upsert"},
        )
        hook = (await listed(client, str(tmp_path)))["hooks"][0]
        assert (hook["trustStatus"], hook["enabled"]) == ("trusted", False)
        # Editing the hook makes the trust stale: modified, until trusted again.
        hooks_json(path, {"PreToolUse": [{**PRE, "hooks": [{"type": "command", "command": "x"}]}]})
        hook = (await listed(client, str(tmp_path)))["hooks"][0]
        assert hook["trustStatus"] == "modified" and hook["currentHash"] != current


async def test_managed_system_and_session_flag_hooks(serve, tmp_path, _no_system_layer):
    home = tmp_path / "home"
    home.mkdir()
    system = _no_system_layer
    hooks_json(
        system / "hooks.json", {"Stop": [{"hooks": [{"type": "command", "command": "sys"}]}]}
    )
    (home / "requirements.toml").write_text(
        '[hooks]\nmanaged_dir = "/srv/managed-hooks"\n' + PRE_TOML.replace("[[hooks.", "[[hooks.")
    )
    hooks_json(home / "hooks.json", {"PreToolUse": [PRE]})
    args = ["-c", 'hooks.Stop=[{hooks=[{type="command", command="flag"}]}]']
    async with serve(plugins=PLUGINS, home=home, args=args) as served:
        await served.client.initialize()
        hooks = (await listed(served.client, str(tmp_path)))["hooks"]
    assert [(h["key"], h["source"], h["trustStatus"], h["isManaged"]) for h in hooks] == [
        ("/srv/managed-hooks:pre_tool_use:0:0", "system", "managed", True),
        (f"{system}/hooks.json:stop:0:0", "system", "managed", True),
        (f"{home}/hooks.json:pre_tool_use:0:0", "user", "untrusted", False),
        ("/<session-flags>/config.toml:stop:0:0", "sessionFlags", "untrusted", False),
    ]
    assert hooks[0]["sourcePath"] == "/srv/managed-hooks"


async def test_allow_managed_hooks_only(serve, tmp_path):
    home = tmp_path / "home"
    hooks_json(home / "hooks.json", {"PreToolUse": [PRE]})
    (home / "requirements.toml").write_text("allow_managed_hooks_only = true\n" + PRE_TOML)
    async with serve(plugins=PLUGINS, home=home) as served:
        await served.client.initialize()
        hooks = (await listed(served.client, str(tmp_path)))["hooks"]
        assert [h["source"] for h in hooks] == ["system"]
    # In ordinary config.toml the key means nothing: user hooks still list.
    (home / "requirements.toml").unlink()
    (home / "config.toml").write_text("allow_managed_hooks_only = true\n")
    async with serve(plugins=PLUGINS, home=home) as served:
        await served.client.initialize()
        hooks = (await listed(served.client, str(tmp_path)))["hooks"]
        assert [h["source"] for h in hooks] == ["user"]


async def test_project_hooks_need_trust_and_worktrees_use_the_main_checkout(serve, tmp_path):
    repo = tmp_path / "repo"
    (repo / "src" / "deep").mkdir(parents=True)
    hooks_json(repo / ".codex" / "hooks.json", {"PreToolUse": [PRE]})
    (repo / "README").write_text("x\n")
    commit_all(repo)
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", str(worktree))
    hooks_json(worktree / ".codex" / "hooks.json", {"Stop": [{"hooks": []}]})  # ignored
    home = tmp_path / "home"
    home.mkdir()
    async with serve(plugins=PLUGINS, home=home) as served:
        client = served.client
        await client.initialize()
        assert (await listed(client, str(repo)))["hooks"] == []  # not trusted yet
        await client.request(
            "config/batchWrite",
            {
                "edits": [
                    {
                        "keyPath": "projects",
                        "value": {str(repo): {"trust_level": "trusted"}},
                        "mergeStrategy": "upsert",
                    }
                ]
            },
        )
        project_file = str(repo / ".codex" / "hooks.json")
        for cwd in (repo, repo / "src" / "deep", worktree):
            hooks = (await listed(client, str(cwd)))["hooks"]
            assert [(h["source"], h["sourcePath"]) for h in hooks] == [("project", project_file)]
        # Relative and missing directories are listed with user hooks only.
        data = (await client.request("hooks/list", {"cwds": ["rel/dir", "/nonexistent"]}))["data"]
        assert [(d["cwd"], d["hooks"]) for d in data] == [("rel/dir", []), ("/nonexistent", [])]


async def test_installed_bundle_hooks_and_thread_scoped_listing(serve, tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    market = tmp_path / "market"
    make_bundle(
        market / "plugins" / "alpha",
        "alpha",
        version="1.2.0",
        hooks={"PreToolUse": [{"hooks": [{"type": "command", "command": "${PLUGIN_ROOT}/x.sh"}]}]},
    )
    marketplace = make_marketplace(
        market,
        "local-mkt",
        [{"name": "alpha", "source": {"source": "local", "path": "./plugins/alpha"}}],
    )
    home = tmp_path / "home"
    plugins = [*PLUGINS, "marketplace", "skills", "fs", "process"]
    async with serve(plugins=plugins, home=home, env={"HOME": str(user)}) as served:
        client = served.client
        await client.initialize(experimental=True)
        await client.request(
            "plugin/install", {"marketplacePath": str(marketplace), "pluginName": "alpha"}
        )
        hooks = (await listed(client, str(tmp_path)))["hooks"]
        cache = home / "plugins" / "cache" / "local-mkt" / "alpha" / "1.2.0"
        assert len(hooks) == 1
        hook = hooks[0]
        assert hook["key"] == "alpha@local-mkt:hooks/hooks.json:pre_tool_use:0:0"
        assert hook["pluginId"] == "alpha@local-mkt" and hook["source"] == "plugin"
        assert hook["command"] == f"{cache}/x.sh"
        assert hook["sourcePath"] == str(cache / "hooks" / "hooks.json")
        assert hook["currentHash"].count("sha256:") == 2
        await client.request("plugin/uninstall", {"pluginId": "alpha@local-mkt"})
        assert (await listed(client, str(tmp_path)))["hooks"] == []

        thread = (await client.request("thread/start", {"cwd": str(tmp_path)}))["thread"]
        entry = await listed(client, threadId=thread["id"])
        assert entry["cwd"] == str(tmp_path)
        error = await fails(
            client, "hooks/list", {"threadId": "0199a6f3-0000-7000-8000-000000000000"}
        )
        assert error.code == -32600 and "thread not found" in error.message
