"""The sandbox's configuration: defaults, profiles, kept denials, listing, a missing bubblewrap."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.calls import fails

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

DEV_PROFILE = """
default_permissions = "dev"

[permissions.dev]
description = "project writes, no keys"

[permissions.dev.filesystem]
":root" = "read"
":project_roots" = { "." = "write", "**/*.key" = "deny" }
glob_scan_max_depth = 3

[permissions.ci]
extends = "dev"

[permissions.ci.network]
enabled = true
"""


def configure(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)
    return home


def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "conf").mkdir(parents=True)
    (root / "conf" / "prod.key").write_text("KEY\n")
    (root / "conf" / "app.toml").write_text("ok\n")
    return root


async def cat(client, cwd: Path, path: str, **params: object) -> dict:
    request = {"command": ["cat", path], "cwd": str(cwd), **params}
    return await client.request("command/exec", request)


@needs_bwrap
async def test_the_configured_profile_is_the_default_and_its_denials_survive_overrides(
    serve, tmp_path
):
    root = project(tmp_path)
    home = configure(tmp_path / "home", DEV_PROFILE)
    async with serve(plugins=["process", "sandbox"], home=home) as served:
        client = served.client
        await client.initialize(experimental=True)
        # No policy: the configured default (dev) applies.
        assert (await cat(client, root, "conf/app.toml"))["stdout"] == "ok\n"
        assert (await cat(client, root, "conf/prod.key"))["exitCode"] != 0
        write = {"command": ["sh", "-c", "echo x > made"], "cwd": str(root)}
        assert (await client.request("command/exec", write))["exitCode"] == 0
        # A one-off override never drops the configured deny-read entries.
        for override in (
            {"permissionProfile": ":workspace"},
            {"permissionProfile": "ci"},
            {"sandboxPolicy": {"type": "readOnly"}},
            {"sandboxPolicy": {"type": "workspaceWrite", "networkAccess": True}},
        ):
            result = await cat(client, root, "conf/prod.key", **override)
            assert result["exitCode"] != 0 and "KEY" not in result["stdout"], override
        # Full access is no sandbox at all: the user asked for it explicitly.
        full = await cat(client, root, "conf/prod.key", sandboxPolicy={"type": "dangerFullAccess"})
        assert full["stdout"] == "KEY\n"


@needs_bwrap
async def test_sandbox_mode_sets_the_default_of_command_exec(serve, tmp_path):
    root = project(tmp_path)
    home = configure(tmp_path / "home", 'sandbox_mode = "read-only"\n')
    async with serve(plugins=["process", "sandbox"], home=home) as served:
        await served.client.initialize(experimental=True)
        write = {"command": ["sh", "-c", "echo x > made"], "cwd": str(root)}
        result = await served.client.request("command/exec", write)
        assert result["exitCode"] != 0 and not (root / "made").exists()


async def test_permission_profile_list_pages_built_ins_then_configured(serve, tmp_path):
    home = configure(tmp_path / "home", DEV_PROFILE)
    async with serve(plugins=["process", "sandbox"], home=home) as served:
        client = served.client
        await client.initialize(experimental=True)
        whole = await client.request("permissionProfile/list", {})
        assert [p["id"] for p in whole["data"]] == [
            ":read-only",
            ":workspace",
            ":danger-full-access",
            "ci",
            "dev",
        ]
        assert whole["nextCursor"] is None
        assert {p["id"]: p["description"] for p in whole["data"]}["dev"] == (
            "project writes, no keys"
        )
        first = await client.request("permissionProfile/list", {"limit": 2})
        assert [p["id"] for p in first["data"]] == [":read-only", ":workspace"]
        rest = await client.request("permissionProfile/list", {"cursor": first["nextCursor"]})
        assert [p["id"] for p in rest["data"]] == [":danger-full-access", "ci", "dev"]
        error = await fails(client, "permissionProfile/list", {"cursor": "x"})
        assert error.code == -32600 and "invalid cursor" in error.message
        error = await fails(client, "permissionProfile/list", {"cursor": "9"})
        assert error.code == -32600 and "exceeds" in error.message


async def test_without_bubblewrap_restricted_commands_are_refused_with_a_warning(serve, tmp_path):
    missing = tmp_path / "no" / "bwrap"
    home = configure(tmp_path / "home", f'[kernel_plugins.sandbox]\nbwrap_path = "{missing}"\n')
    marker = tmp_path / "ran"
    async with serve(plugins=["process", "sandbox"], home=home) as served:
        client = served.client
        await client.initialize(experimental=True)
        warning = await client.next_notification("configWarning")
        assert "Sandboxing is unavailable" in warning.params["summary"]
        assert "bubblewrap" in warning.params["details"]
        touch = ["touch", str(marker)]
        for params in (
            {},  # the configured default is read-only
            {"sandboxPolicy": {"type": "workspaceWrite"}},
            {"permissionProfile": ":read-only"},
        ):
            error = await fails(client, "command/exec", {"command": touch, **params})
            assert error.code == -32022 and "refusing to run" in error.message
        assert not marker.exists()
        full = {"command": touch, "sandboxPolicy": {"type": "dangerFullAccess"}}
        assert (await client.request("command/exec", full))["exitCode"] == 0
        assert marker.exists()
    assert "sandboxing is unavailable" in served.log_path.read_text()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('sandbox_mode = "bogus"\n', "sandbox_mode"),
        ('default_permissions = "nope"\n', "default_permissions"),
        ("[permissions.a]\nextends = 'b'\n[permissions.b]\nextends = 'a'\n", "cycle"),
        ("[permissions.x.filesystem]\n'relative/path' = 'read'\n", "permissions.x.filesystem"),
        ("[permissions.x.filesystem]\n':root' = 'sideways'\n", "sideways"),
    ],
)
async def test_a_bad_sandbox_config_stops_startup_with_the_key_named(serve, tmp_path, text, needle):
    home = configure(tmp_path / "home", text)
    async with serve(plugins=["process", "sandbox"], home=home, close=False) as served:
        code = await served.process.wait()
    assert code != 0
    log = served.log_path.read_text()
    assert needle in log and "Traceback" not in log
