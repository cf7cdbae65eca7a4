"""The config plugin over stdio: config/read, config/value/write, config/batchWrite,
configRequirements/read (every answer is checked against the reference schema)."""

from __future__ import annotations

import hashlib
import tomllib

from tests.support.calls import fails

PLUGINS = ["config", "threads", "models"]


def version(path) -> str:
    data = path.read_bytes() if path.exists() else b""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_code(error) -> str | None:
    return (error.data or {}).get("config_write_error_code")


async def test_read_reports_values_origins_and_layers(serve, tmp_path, _no_system_layer):
    home = tmp_path / "home"
    home.mkdir()
    system = _no_system_layer
    system.mkdir()
    (system / "config.toml").write_text('model = "sys-model"\n[sandbox_workspace_write]\n')
    (home / "config.toml").write_text(
        'model = "user-model"\napprovals_reviewer = "guardian_subagent"\n'
        '[tui]\nnotices = ["a", "b"]\n'
    )
    (home / "requirements.toml").write_text(
        'allowed_sandbox_modes = ["read-only"]\nmodel_reasoning_effort = "low"\n'
    )
    args = ["-c", 'developer_instructions="be brief"']
    async with serve(plugins=PLUGINS, home=home, args=args) as served:
        client = served.client
        await client.initialize(experimental=True)
        read = await client.request("config/read", {"includeLayers": True, "cwd": "."})
        config = read["config"]
        assert config["model"] == "user-model"
        assert config["approvals_reviewer"] == "auto_review"  # the legacy name, as the reference
        assert config["developer_instructions"] == "be brief"
        assert config["model_reasoning_effort"] == "low"  # pinned by requirements.toml
        assert "allowed_sandbox_modes" not in config  # a constraint, not a value
        assert config["sandbox_mode"] is None and config["web_search"] is None
        origins = read["origins"]
        user = {"type": "user", "file": str(home / "config.toml"), "profile": None}
        assert origins["model"] == {"name": user, "version": version(home / "config.toml")}
        assert origins["tui.notices.1"]["name"] == user  # arrays are indexed
        assert origins["developer_instructions"]["name"] == {"type": "sessionFlags"}
        managed = {
            "type": "legacyManagedConfigTomlFromFile",
            "file": str(home / "requirements.toml"),
        }
        assert origins["model_reasoning_effort"]["name"] == managed
        names = [layer["name"]["type"] for layer in read["layers"]]
        assert names == ["legacyManagedConfigTomlFromFile", "sessionFlags", "user", "system"]
        system_layer = read["layers"][-1]
        assert system_layer["config"] == {"model": "sys-model", "sandbox_workspace_write": {}}
        assert system_layer["version"] == version(system / "config.toml")

        # Without includeLayers there are no layers; without experimentalApi no reviewer.
        async with serve(plugins=PLUGINS, home=home, args=args) as plain:
            await plain.client.initialize()
            read = await plain.client.request("config/read", {})
            assert "layers" not in read
            assert "approvals_reviewer" not in read["config"]
            assert "approvals_reviewer" not in read["origins"]


async def test_writes_keep_comments_and_reach_new_threads(serve, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    path = home / "config.toml"
    path.write_text('# chosen by hand\nmodel = "old-model"  # keep this note\n\n[tui]\nx = 1\n')
    async with serve(plugins=PLUGINS, home=home) as served:
        client = served.client
        await client.initialize()
        before = (await client.request("thread/start", {"cwd": str(tmp_path)}))["model"]
        assert before == "old-model"
        answer = await client.request(
            "config/value/write",
            {
                "keyPath": "model",
                "value": "new-model",
                "mergeStrategy": "replace",
                "expectedVersion": version(path),
            },
        )
        assert answer == {
            "status": "ok",
            "version": version(path),
            "filePath": str(path),
            "overriddenMetadata": None,
        }
        text = path.read_text()
        assert text.startswith('# chosen by hand\nmodel = "new-model"  # keep this note\n')
        # The threads family took the new default without a restart.
        after = (await client.request("thread/start", {"cwd": str(tmp_path)}))["model"]
        assert after == "new-model"

        # Quoted segments, upsert into a table, null deletes.
        answer = await client.request(
            "config/batchWrite",
            {
                "edits": [
                    {"keyPath": 'tui."a.b"', "value": True, "mergeStrategy": "replace"},
                    {"keyPath": "tui", "value": {"y": 2}, "mergeStrategy": "upsert"},
                    {"keyPath": "model", "value": None, "mergeStrategy": "replace"},
                ]
            },
        )
        assert answer["status"] == "ok" and answer["version"] == version(path)
        assert tomllib.loads(path.read_text()) == {"tui": {"x": 1, "a.b": True, "y": 2}}
        await client.request(
            "config/value/write", {"keyPath": "tui", "value": {"z": 3}, "mergeStrategy": "replace"}
        )
        assert tomllib.loads(path.read_text()) == {"tui": {"z": 3}}
        assert "# chosen by hand" in path.read_text()


async def test_refused_writes_name_the_reason_and_write_nothing(serve, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    path = home / "config.toml"
    path.write_text('model = "m"\n')
    original = path.read_bytes()
    async with serve(plugins=PLUGINS, home=home) as served:
        client = served.client
        await client.initialize()

        async def refused(method: str, params: dict) -> tuple[str | None, str]:
            error = await fails(client, method, params)
            assert error.code == -32600, error.message
            return write_code(error), error.message

        def one(key, value, merge="replace", **extra):
            return {"keyPath": key, "value": value, "mergeStrategy": merge, **extra}

        code, message = await refused("config/value/write", one("model", 5))
        assert code == "configValidationError" and "model" in message and "string" in message
        code, message = await refused("config/value/write", one("", "x"))
        assert (code, message) == ("configValidationError", "keyPath must not be empty")
        code, message = await refused(
            "config/value/write", one("model", "x", expectedVersion="sha256:stale")
        )
        assert code == "configVersionConflict"
        assert message == (
            "Configuration was modified since last read. Fetch latest version and retry."
        )
        for file_path in ("/etc/passwd", "config.toml"):
            code, message = await refused(
                "config/value/write", one("model", "x", filePath=file_path)
            )
            assert (code, message) == (
                "configLayerReadonly",
                "Only writes to the user config are allowed",
            )
        code, message = await refused("config/value/write", one("tui", {"a": None}))
        assert code == "configValidationError" and "null" in message
        code, message = await refused("config/value/write", one("no_such_key.x", 1))
        assert code == "configValidationError" and "no installed plugin reads" in message
        code, message = await refused("config/value/write", one("sandbox_mode", "bogus"))
        assert code == "configValidationError" and "sandbox_mode" in message
        error = await fails(client, "config/value/write", one("model", "x", "merge"))
        assert error.code == -32602 and "`replace` or `upsert`" in error.message
        # A batch is all or nothing: the good first edit is not written either.
        code, _ = await refused(
            "config/batchWrite", {"edits": [one("model", "fine"), one("model_provider", 7)]}
        )
        assert code == "configValidationError"
        assert path.read_bytes() == original
        read = await client.request("config/read", {})
        assert read["config"]["model"] == "m"


async def test_managed_requirements_refuse_or_override_writes(serve, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "requirements.toml").write_text(
        'allowed_sandbox_modes = ["read-only", "workspace-write"]\n'
        'allowed_approval_policies = ["on-request"]\nmodel = "pinned"\n'
        "allow_managed_hooks_only = true\n[features]\nplugins = false\n"
        '[hooks]\nmanaged_dir = "/srv/hooks"\n[[hooks.PreToolUse]]\nmatcher = "Bash"\n'
        '[[hooks.PreToolUse.hooks]]\ntype = "command"\ncommand = "check"\ntimeout = 5\n'
    )
    args = ["-c", 'model_reasoning_effort="high"']
    async with serve(plugins=PLUGINS, home=home, args=args) as served:
        client = served.client
        await client.initialize()
        error = await fails(
            client,
            "config/value/write",
            {"keyPath": "sandbox_mode", "value": "danger-full-access", "mergeStrategy": "replace"},
        )
        assert (error.data or {})["config_write_error_code"] == "configValidationError"
        assert "allowed_sandbox_modes" in error.message and "workspace-write" in error.message
        assert not (home / "config.toml").exists()
        ok = await client.request(
            "config/value/write",
            {"keyPath": "sandbox_mode", "value": "workspace-write", "mergeStrategy": "replace"},
        )
        assert ok["status"] == "ok"
        pinned = await client.request(
            "config/value/write", {"keyPath": "model", "value": "mine", "mergeStrategy": "replace"}
        )
        assert pinned["status"] == "okOverridden"
        meta = pinned["overriddenMetadata"]
        assert meta["effectiveValue"] == "pinned"
        assert meta["overridingLayer"]["name"]["type"] == "legacyManagedConfigTomlFromFile"
        flagged = await client.request(
            "config/value/write",
            {"keyPath": "model_reasoning_effort", "value": "low", "mergeStrategy": "replace"},
        )
        assert flagged["overriddenMetadata"]["overridingLayer"]["name"] == {"type": "sessionFlags"}

        requirements = (await client.request("configRequirements/read"))["requirements"]
        assert requirements["allowedSandboxModes"] == ["read-only", "workspace-write"]
        assert requirements["allowedApprovalPolicies"] == ["on-request"]
        assert requirements["allowManagedHooksOnly"] is True
        assert requirements["featureRequirements"] == {"plugins": False}
        assert requirements["allowRemoteControl"] is None
        hooks = requirements["hooks"]
        assert hooks["managedDir"] == "/srv/hooks"
        assert hooks["PreToolUse"] == [
            {
                "matcher": "Bash",
                "hooks": [
                    {
                        "type": "command",
                        "command": "check",
                        "commandWindows": None,
                        "timeoutSec": 5,
                        "async": False,
                        "statusMessage": None,
                        "additionalContextLimit": None,
                    }
                ],
            }
        ]
        assert hooks["Stop"] == []


async def test_no_requirements_and_reloading_a_hand_edited_file(serve, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    path = home / "config.toml"
    async with serve(plugins=PLUGINS, home=home) as served:
        client = served.client
        await client.initialize()
        assert await client.request("configRequirements/read", {}) == {
            "requirements": None,
            "supportsIndependentSpeedModes": False,
        }
        path.write_text('model = "edited-by-hand"\n')
        answer = await client.request("config/batchWrite", {"edits": [], "reloadUserConfig": True})
        assert answer["status"] == "ok" and answer["version"] == version(path)
        thread = await client.request("thread/start", {"cwd": str(tmp_path)})
        assert thread["model"] == "edited-by-hand"
        # A broken hand edit is refused and changes nothing.
        path.write_text("model = \n")
        error = await fails(client, "config/batchWrite", {"edits": [], "reloadUserConfig": True})
        assert (error.data or {})["config_write_error_code"] == "configValidationError"
        read = await client.request("config/read", {})
        assert read["config"]["model"] == "edited-by-hand"


async def test_feature_flags_list_and_enable(serve, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("[features]\nplugins = false\n")
    plugins = [*PLUGINS, "agent_tools", "marketplace", "skills", "fs", "process"]
    async with serve(plugins=plugins, home=home, env={"HOME": str(tmp_path)}) as served:
        client = served.client
        await client.initialize()
        listed = await client.request("experimentalFeature/list", {})
        flags = {f["name"]: f for f in listed["data"]}
        assert listed["nextCursor"] is None
        assert {"plugins", "request_permissions_tool", "guardian_approval"} <= set(flags)
        assert flags["plugins"]["enabled"] is False and flags["plugins"]["defaultEnabled"] is True
        assert flags["request_permissions_tool"]["stage"] == "beta"
        first = await client.request("experimentalFeature/list", {"limit": 1})
        assert len(first["data"]) == 1 and first["nextCursor"] == "1"
        error = await fails(client, "experimentalFeature/list", {"cursor": "bogus"})
        assert (error.code, error.message) == (-32600, "invalid cursor: bogus")
        answer = await client.request(
            "experimentalFeature/enablement/set",
            {"enablement": {"plugins": True, "request_permissions_tool": True}},
        )
        assert answer == {"enablement": {"plugins": True, "request_permissions_tool": True}}
        assert tomllib.loads((home / "config.toml").read_text())["features"] == {
            "plugins": True,
            "request_permissions_tool": True,
        }
        error = await fails(
            client, "experimentalFeature/enablement/set", {"enablement": {"warp_drive": True}}
        )
        assert "unknown feature: warp_drive" in error.message


async def test_writes_leave_other_empty_tables_and_hand_edits_keep_versions_usable(
    serve, tmp_path, _no_system_layer
):
    home = tmp_path / "home"
    home.mkdir()
    path = home / "config.toml"
    path.write_text("# defaults on purpose\n[sandbox_workspace_write]\n\n[tui]\nx = 1\n")
    system = _no_system_layer
    system.mkdir()
    (system / "config.toml").write_text('[tui]\nnotices = ["a", "b", "c"]\nbox = {deep = 1}\n')
    async with serve(plugins=["config", "threads"], home=home) as served:
        client = served.client
        await client.initialize()
        await client.request(
            "config/value/write", {"keyPath": "tui.x", "value": None, "mergeStrategy": "replace"}
        )
        # The emptied [tui] went away; the user's own empty table stayed.
        assert tomllib.loads(path.read_text()) == {"sandbox_workspace_write": {}}
        await client.request(
            "config/value/write",
            {"keyPath": "tui", "value": {"notices": ["d"], "box": 2}, "mergeStrategy": "upsert"},
        )
        origins = (await client.request("config/read", {}))["origins"]
        assert [k for k in origins if k.startswith("tui.")] == ["tui.notices.0", "tui.box"]
        # A hand edit: config/read shows it, and its version is the one to name.
        path.write_text('model = "by-hand"\n' + path.read_text())
        read = await client.request("config/read", {"includeLayers": True})
        assert read["config"]["model"] == "by-hand"
        user = next(layer for layer in read["layers"] if layer["name"]["type"] == "user")
        assert user["version"] == version(path)
        answer = await client.request(
            "config/value/write",
            {
                "keyPath": "model",
                "value": "next",
                "mergeStrategy": "replace",
                "expectedVersion": user["version"],
            },
        )
        assert answer["status"] == "ok"


async def test_a_declared_flag_is_writable_without_the_plugin_owning_the_features_table(
    serve, tmp_path
):
    home = tmp_path / "home"
    home.mkdir()
    async with serve(plugins=["config", "threads"], home=home) as served:
        client = served.client
        await client.initialize()
        flags = {f["name"] for f in (await client.request("experimentalFeature/list"))["data"]}
        assert flags == {"guardian_approval"}  # declared by threads; agent_tools is not loaded
        answer = await client.request(
            "experimentalFeature/enablement/set", {"enablement": {"guardian_approval": True}}
        )
        assert answer == {"enablement": {"guardian_approval": True}}
    assert tomllib.loads((home / "config.toml").read_text()) == {
        "features": {"guardian_approval": True}
    }


async def test_a_written_reviewer_reaches_new_threads(serve, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    async with serve(plugins=PLUGINS, home=home) as served:
        client = served.client
        await client.initialize(experimental=True)
        first = await client.request("thread/start", {"cwd": str(tmp_path)})
        assert first["approvalsReviewer"] == "user"
        await client.request(
            "experimentalFeature/enablement/set", {"enablement": {"guardian_approval": True}}
        )
        legacy = await client.request("thread/start", {"cwd": str(tmp_path)})
        assert legacy["approvalsReviewer"] == "auto_review"
        await client.request(
            "config/value/write",
            {"keyPath": "approvals_reviewer", "value": "user", "mergeStrategy": "replace"},
        )
        chosen = await client.request("thread/start", {"cwd": str(tmp_path)})
        assert chosen["approvalsReviewer"] == "user"


async def test_a_provider_edit_reaches_model_list_at_once(serve, tmp_path, model_server):
    from tests.support.model_server import ModelServer

    home = tmp_path / "home"
    home.mkdir()
    model_server.models = ["old-one"]
    (home / "config.toml").write_text(
        'model_provider = "mock"\n[model_providers.mock]\n'
        f'name = "mock"\nbase_url = "{model_server.base_url}"\n'
    )
    async with ModelServer() as other, serve(plugins=PLUGINS, home=home) as served:
        other.models = ["new-one"]
        client = served.client
        await client.initialize()
        listed = await client.request("model/list", {})
        assert "old-one" in [m["id"] for m in listed["data"]]
        await client.request(
            "config/value/write",
            {
                "keyPath": "model_providers.mock.base_url",
                "value": other.base_url,
                "mergeStrategy": "replace",
            },
        )
        listed = await client.request("model/list", {})
        ids = [m["id"] for m in listed["data"]]
        assert "new-one" in ids and "old-one" not in ids
